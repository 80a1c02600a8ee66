package chaos

import (
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// The checkers must be able to fail: these histories are built by hand,
// each either linearizable (or fresh enough) or not.

const ms = int64(time.Millisecond)

func w(client int, kind opKind, topic, channel int, call, ret int64, found bool) op {
	return op{Client: client, Kind: kind, Topic: topic, Channel: channel, Call: call * ms, Return: ret * ms, Status: 200, Found: found}
}

func r(client int, kind opKind, topic int, call, ret int64, found bool, mask uint32) op {
	return op{Client: client, Kind: kind, Topic: topic, Call: call * ms, Return: ret * ms, Status: 200, Found: found, Mask: mask}
}

func ambiguous(o op) op { o.Ambiguous = true; o.Found = false; return o }

func TestModelChecksLinearizability(t *testing.T) {
	cases := []struct {
		name string
		ops  []op
		want porcupine.CheckResult
	}{
		{"create then read", []op{
			w(0, opChannelCreate, 0, 1, 0, 10, true),
			r(1, opLookup, 0, 20, 30, true, 0b10),
			r(1, opTopics, 0, 40, 50, true, 0b1),
		}, porcupine.Ok},
		{"read misses an acknowledged create", []op{
			w(0, opTopicCreate, 1, 0, 0, 10, true),
			r(1, opTopics, 0, 20, 30, true, 0),
		}, porcupine.Illegal},
		{"concurrent create may or may not be seen", []op{
			w(0, opTopicCreate, 1, 0, 0, 100, true),
			r(1, opTopics, 0, 10, 20, true, 0),
			r(1, opTopics, 0, 30, 40, true, 0b10),
		}, porcupine.Ok},
		{"a read goes back in time", []op{
			w(0, opTopicCreate, 1, 0, 0, 100, true),
			r(1, opTopics, 0, 10, 20, true, 0b10),
			r(1, opTopics, 0, 30, 40, true, 0),
		}, porcupine.Illegal},
		{"delete 404 then 200 with no create between", []op{
			w(0, opChannelCreate, 2, 0, 0, 10, true),
			w(1, opTopicDelete, 2, 0, 20, 30, true),
			w(2, opChannelDelete, 2, 0, 40, 50, false),
			w(3, opChannelDelete, 2, 0, 60, 70, true),
		}, porcupine.Illegal},
		{"an ambiguous create explains a later delete", []op{
			ambiguous(w(0, opChannelCreate, 2, 0, 0, 10, false)),
			w(2, opChannelDelete, 2, 0, 40, 50, false),
			w(3, opChannelDelete, 2, 0, 60, 70, true),
		}, porcupine.Ok},
		{"an ambiguous create that never happened", []op{
			ambiguous(w(0, opTopicCreate, 0, 0, 0, 10, false)),
			r(1, opTopics, 0, 20, 30, true, 0),
			r(1, opLookup, 0, 40, 50, false, 0),
		}, porcupine.Ok},
		{"topic delete takes its channels", []op{
			w(0, opChannelCreate, 0, 0, 0, 10, true),
			w(0, opTopicDelete, 0, 0, 20, 30, true),
			w(0, opTopicCreate, 0, 0, 40, 50, true),
			r(1, opChannels, 0, 60, 70, true, 0b1),
		}, porcupine.Illegal},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hist := porcupineHistory(c.ops)
			res, info := porcupine.CheckOperationsVerbose(registryModel, hist, 10*time.Second)
			if res != c.want {
				t.Fatalf("porcupine says %s, want %s", res, c.want)
			}
			if res == porcupine.Illegal && !strings.Contains(explain(info, hist), "longest linearizable prefix") {
				t.Fatalf("explain says nothing useful:\n%s", explain(info, hist))
			}
		})
	}
}

func TestStalenessChecker(t *testing.T) {
	const S = 3 * time.Second
	create := w(0, opTopicCreate, 1, 0, 0, 10, true)
	cases := []struct {
		name  string
		ops   []op
		stale bool
	}{
		{"bounded read misses a write acknowledged long before", []op{
			create, r(1, opBoundedTopics, 0, 4000, 4010, true, 0),
		}, true},
		{"bounded read misses a recent write", []op{
			create, r(1, opBoundedTopics, 0, 2000, 2010, true, 0),
		}, false},
		{"a later delete explains the read", []op{
			create, w(2, opTopicDelete, 1, 0, 3900, 3950, true), r(1, opBoundedTopics, 0, 4000, 4010, true, 0),
		}, false},
		{"an ambiguous delete explains the read", []op{
			create, ambiguous(w(2, opTopicDelete, 1, 0, 100, 200, false)), r(1, opBoundedTopics, 0, 4000, 4010, true, 0),
		}, false},
		{"a delete that ended before the create does not", []op{
			w(2, opTopicDelete, 1, 0, 0, 5, true), w(0, opTopicCreate, 1, 0, 6, 10, true), r(1, opBoundedTopics, 0, 4000, 4010, true, 0),
		}, true},
		{"bounded channels miss a delete", []op{
			w(0, opChannelCreate, 0, 1, 0, 10, true), w(0, opChannelDelete, 0, 1, 20, 30, true),
			r(1, opBoundedChannels, 0, 5000, 5010, true, 0b10),
		}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := staleness(c.ops, S)
			if (len(got) > 0) != c.stale {
				t.Fatalf("staleness found %q, want stale=%v", got, c.stale)
			}
		})
	}
}

func TestScheduleIsSeeded(t *testing.T) {
	a := makeSchedule(newRand(42), 3, 30*time.Second)
	b := makeSchedule(newRand(42), 3, 30*time.Second)
	c := makeSchedule(newRand(43), 3, 30*time.Second)
	if len(a) == 0 || fmtSchedule(a) != fmtSchedule(b) {
		t.Fatalf("seed 42 gave two schedules:\n%s\n---\n%s", fmtSchedule(a), fmtSchedule(b))
	}
	if fmtSchedule(a) == fmtSchedule(c) {
		t.Fatalf("seeds 42 and 43 gave the same schedule")
	}
	var procEnd time.Duration
	for _, f := range a {
		if f.At+f.Dur > 30*time.Second {
			t.Errorf("%s ends after the fault phase", f)
		}
		if isProcessFault(f.Kind) {
			if f.At < procEnd {
				t.Errorf("%s overlaps another process fault", f)
			}
			procEnd = f.At + f.Dur
		}
	}
}
