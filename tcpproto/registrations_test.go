package tcpproto

import (
	"fmt"
	"math/rand"
	"runtime"
	"strings"
	"testing"
	"unsafe"
)

// TestRegistrationsMatchModel drives the mirror and a plain map of sets with
// the same random REGISTERs and UNREGISTERs, over topics with more channels
// than a channelSet keeps in its slice, and compares them after every step.
func TestRegistrationsMatchModel(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	var r registrations
	model := map[string]map[string]bool{}
	modelCount := func() int {
		n := 0
		for _, chans := range model {
			n += 1 + len(chans)
		}
		return n
	}
	for step := 0; step < 20000; step++ {
		topic := fmt.Sprintf("t%d", rng.Intn(4))
		channel := ""
		if rng.Intn(5) > 0 {
			channel = fmt.Sprintf("c%d", rng.Intn(3*fewChannels))
		}
		if rng.Intn(3) > 0 {
			want := 0
			if model[topic] == nil {
				want++
			}
			if channel != "" && !model[topic][channel] {
				want++
			}
			if got := r.added(topic, channel); got != want {
				t.Fatalf("step %d: added(%q, %q) = %d, want %d", step, topic, channel, got, want)
			}
			r.register(topic, channel)
			if model[topic] == nil {
				model[topic] = map[string]bool{}
			}
			if channel != "" {
				model[topic][channel] = true
			}
		} else {
			r.unregister(topic, channel)
			if channel != "" {
				delete(model[topic], channel)
			} else {
				delete(model, topic)
			}
		}
		if r.count != modelCount() {
			t.Fatalf("step %d: count %d, want %d", step, r.count, modelCount())
		}
		for topic, chans := range model {
			set, ok := r.topics[topic]
			if !ok {
				t.Fatalf("step %d: topic %q missing", step, topic)
			}
			if set.len() != len(chans) {
				t.Fatalf("step %d: topic %q holds %d channels, want %d", step, topic, set.len(), len(chans))
			}
			for c := range chans {
				if !set.has(c) {
					t.Fatalf("step %d: topic %q lost channel %q", step, topic, c)
				}
			}
		}
		if len(r.topics) != len(model) {
			t.Fatalf("step %d: %d topics, want %d", step, len(r.topics), len(model))
		}
	}
}

// TestChannelSetGrowsIntoMap checks the switch from slice to map keeps every
// name and that a map-backed set removes as the slice does.
func TestChannelSetGrowsIntoMap(t *testing.T) {
	var s channelSet
	for i := 0; i <= fewChannels; i++ {
		if !s.add(fmt.Sprint(i)) {
			t.Fatalf("add %d: not new", i)
		}
	}
	if s.many == nil || s.few != nil {
		t.Fatalf("after %d channels: few %v, many %v; want a map", fewChannels+1, s.few, s.many)
	}
	if s.add("0") {
		t.Fatal("add of a held name reported new")
	}
	for i := 0; i <= fewChannels; i++ {
		if !s.remove(fmt.Sprint(i)) {
			t.Fatalf("remove %d: not found", i)
		}
	}
	if s.len() != 0 || s.remove("0") {
		t.Fatalf("emptied set has %d, or removed a name twice", s.len())
	}
}

// TestRegistrationsKeepCopies checks that the mirror keeps its own copies of
// names, never the caller's, which are cut from the whole command line.
func TestRegistrationsKeepCopies(t *testing.T) {
	line := "REGISTER topic channel"
	topic, channel := line[9:14], line[15:]
	var r registrations
	r.register(topic, "")
	r.register(topic, channel)
	line2 := "REGISTER topic other"
	r.register(line2[9:14], line2[15:])
	cut := func(s string) bool {
		p := unsafe.StringData(s)
		return p == unsafe.StringData(topic) || p == unsafe.StringData(channel) ||
			p == unsafe.StringData(line2[9:14]) || p == unsafe.StringData(line2[15:])
	}
	for k, chans := range r.topics {
		if cut(k) {
			t.Errorf("topic key %q is the caller's string", k)
		}
		for _, c := range chans.few {
			if cut(c) {
				t.Errorf("channel %q is the caller's string", c)
			}
		}
	}
	if r.count != 3 {
		t.Errorf("count %d, want 3", r.count)
	}
}

// BenchmarkRegistrationsMemory reports the live bytes the mirror holds per
// topic for a connection that registered 10,000 topics with 2 channels
// each, its names cut from command lines as conn.run cuts them.
func BenchmarkRegistrationsMemory(b *testing.B) {
	const topics = 10000
	lines := make([]string, 0, 3*topics)
	for i := range topics {
		lines = append(lines, fmt.Sprintf("REGISTER topic-%d", i),
			fmt.Sprintf("REGISTER topic-%d channel-a", i), fmt.Sprintf("REGISTER topic-%d channel-b", i))
	}
	var perTopic float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		var r registrations
		for _, l := range lines {
			// As conn.run: the line becomes a string of its own, and the
			// names are cut from it.
			params := strings.Split(strings.Clone(l), " ")
			channel := ""
			if len(params) > 2 {
				channel = params[2]
			}
			r.register(params[1], channel)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perTopic = float64(after.HeapAlloc-before.HeapAlloc) / topics
		runtime.KeepAlive(&r)
	}
	b.ReportMetric(perTopic, "B/topic")
}
