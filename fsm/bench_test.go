package fsm

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/hashicorp/raft"
)

const benchSessions = 10

// benchRegistry builds 10 sessions (10 distinct nsqds) x n topics x 2
// channels: 30*n registrations (topic + 2 channel records per session and
// topic), applied through the log in batches as the cluster writes them.
func benchRegistry(b *testing.B, n int) (*FSM, []string) {
	b.Helper()
	f := New()
	var idx uint64
	apply := func(c Command) {
		idx++
		if res, ok := f.Apply(&raft.Log{Index: idx, Data: enc(c)}).([]error); ok {
			for _, err := range res {
				if err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	apply(renew("n1", 1, t0))
	for i := range benchSessions {
		p := peerA
		p.BroadcastAddress = fmt.Sprintf("nsqd-%d.example", i)
		apply(open(SessionID{"n1", 1, uint64(i + 1)}, p, t0))
	}
	names := make([]string, n)
	var seq uint64
	pending := batch("n1", 1, 0)
	for t := range n {
		names[t] = fmt.Sprintf("topic-%06d", t)
		for s := range benchSessions {
			id := SessionID{"n1", 1, uint64(s + 1)}
			pending.Batch = append(pending.Batch, register(id, names[t], "ch-a"), register(id, names[t], "ch-b"))
		}
		if len(pending.Batch) >= 1000 || t == n-1 {
			seq++
			pending.BatchSeq = seq
			apply(pending)
			pending.Batch = pending.Batch[:0]
		}
	}
	st := f.Registry().Stats()
	if st.Producers != 30*n || st.Topics != n || st.Sessions != benchSessions {
		b.Fatalf("built %+v, want %d producer records over %d topics", st, 30*n, n)
	}
	return f, names
}

// BenchmarkLookup shows /lookup's cost does not grow with the registry: it
// goes through the topic index and touches only that topic's producers.
// "hot" reads one topic; "spread" walks every topic, so the larger registries
// also pay cache misses (memory, not work: allocations stay equal).
func BenchmarkLookup(b *testing.B) {
	for _, n := range []int{100, 1_000, 10_000} {
		f, names := benchRegistry(b, n)
		r := f.Registry()
		flt := now()
		for _, mode := range []string{"hot", "spread"} {
			b.Run(fmt.Sprintf("regs=%dk/%s", 30*n/1000, mode), func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					name := names[len(names)/2]
					if mode == "spread" {
						name = names[(i*7919)%len(names)]
					}
					ch, ps, found := r.Lookup(name, flt)
					if !found || len(ch) != 2 || len(ps) != benchSessions {
						b.Fatalf("Lookup = %v %d producers %v", ch, len(ps), found)
					}
					i++
				}
			})
		}
	}
}

// BenchmarkApplyBatch measures one group-commit entry of 101 commands (a lease
// renewal with 10 touches, 50 REGISTERs, 50 UNREGISTERs) on a registry of
// 30k registrations, decode included.
func BenchmarkApplyBatch(b *testing.B) {
	f, _ := benchRegistry(b, 1_000)
	r := f.Registry()
	idx := r.AppliedIndex()
	cmds := []Command{renew("n1", 1, t0)}
	for s := range benchSessions {
		cmds[0].Touches = append(cmds[0].Touches, Touch{Seq: uint64(s + 1), LastUpdate: t0})
	}
	for i := range 50 {
		id := SessionID{"n1", 1, uint64(i%benchSessions + 1)}
		cmds = append(cmds, register(id, fmt.Sprintf("bench-%d", i), "c"))
	}
	for i := range 50 {
		id := SessionID{"n1", 1, uint64(i%benchSessions + 1)}
		cmds = append(cmds, unregister(id, fmt.Sprintf("bench-%d", i), ""))
	}
	b.ReportAllocs()
	var seq uint64 = 1 << 20
	var bytes int
	for b.Loop() {
		b.StopTimer()
		seq++
		idx++
		data := enc(batch("n2", 1, seq, cmds...))
		bytes = len(data)
		b.StartTimer()
		res := f.Apply(&raft.Log{Index: idx, Data: data})
		if errs, ok := res.([]error); !ok || len(errs) != len(cmds) {
			b.Fatalf("Apply = %#v", res)
		}
	}
	b.ReportMetric(float64(len(cmds)), "cmds/op")
	b.SetBytes(int64(bytes))
}

// BenchmarkApplyStormBatch measures the entry a reconnect storm commits:
// 33 nsqds that just connected (their sessions opened in the same batch)
// each register 25 topics with 2 channels, 1,683 commands in all, decode
// included. Every round's sessions are new, and closed again (untimed)
// after it, so every record is new and the registry stays the same size.
func BenchmarkApplyStormBatch(b *testing.B) {
	f := New()
	idx := uint64(1)
	f.Apply(&raft.Log{Index: idx, Data: enc(renew("n1", 1, t0))})
	topics := make([]string, 25)
	for t := range topics {
		topics[t] = fmt.Sprintf("storm%d", t)
	}
	var seq, sess uint64
	var c, closes Command
	b.ReportAllocs()
	var bytes int
	for b.Loop() {
		b.StopTimer()
		c = batch("n1", 1, 0)
		closes = batch("n1", 1, 0)
		for range 33 {
			sess++
			id := SessionID{"n1", 1, sess}
			p := peerA
			p.BroadcastAddress = fmt.Sprintf("nsqd-%d.example", sess)
			c.Batch = append(c.Batch, open(id, p, t0))
			for _, t := range topics {
				c.Batch = append(c.Batch, register(id, t, "ch0"), register(id, t, "ch1"))
			}
			closes.Batch = append(closes.Batch, closeSession(id))
		}
		seq++
		idx++
		c.BatchSeq = seq
		data := enc(c)
		bytes = len(data)
		b.StartTimer()
		res := f.Apply(&raft.Log{Index: idx, Data: data})
		b.StopTimer()
		if errs, ok := res.([]error); !ok || len(errs) != len(c.Batch) || errs[0] != nil {
			b.Fatalf("Apply = %#v", res)
		}
		seq++
		idx++
		closes.BatchSeq = seq
		f.Apply(&raft.Log{Index: idx, Data: enc(closes)})
		b.StartTimer()
	}
	if st := f.Registry().Stats(); st.Sessions != 0 || st.Producers != 0 {
		b.Fatalf("registry holds %+v after every session closed", st)
	}
	b.ReportMetric(33*51, "cmds/op")
	b.SetBytes(int64(bytes))
}

// BenchmarkEncodeBatch measures what the queue pays per batch entry: Encode
// (Validate included) of 101 commands shaped as in BenchmarkApplyBatch.
func BenchmarkEncodeBatch(b *testing.B) {
	c := batch("n1", 1, 1, renew("n1", 1, t0, Touch{Seq: 1, LastUpdate: t0}))
	for i := range 50 {
		id := SessionID{"n1", 1, uint64(i + 1)}
		c.Batch = append(c.Batch, register(id, fmt.Sprintf("bench-%d", i), "c"), unregister(id, fmt.Sprintf("bench-%d", i), ""))
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Encode(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(c.Batch)), "cmds/op")
}

// BenchmarkRestore decodes a snapshot of the bench/ scale layout (sessions
// of one owner, each registering 100 topics without channels), as a
// restarted node does before it serves.
func BenchmarkRestore(b *testing.B) {
	for _, sessions := range []int{300, 3000} {
		f := New()
		var idx uint64
		apply := func(c Command) {
			idx++
			f.Apply(&raft.Log{Index: idx, Data: enc(c)})
		}
		apply(renew("n1", 1, t0))
		var seq uint64
		pending := batch("n1", 1, 0)
		for s := range sessions {
			id := SessionID{"n1", 1, uint64(s + 1)}
			p := peerA
			p.BroadcastAddress = fmt.Sprintf("nsqd-%d.example", s)
			pending.Batch = append(pending.Batch, open(id, p, t0))
			for t := range 100 {
				pending.Batch = append(pending.Batch, register(id, fmt.Sprintf("scale%d", t), ""))
			}
			seq++
			pending.BatchSeq = seq
			apply(pending)
			pending.Batch = pending.Batch[:0]
		}
		snap := snapshotBytes(b, f)
		b.Run(fmt.Sprintf("registrations=%dk", sessions*100/1000), func(b *testing.B) {
			b.SetBytes(int64(len(snap)))
			for b.Loop() {
				if _, err := decodeSnapshot(snap); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRegistryMemory reports the live bytes the registry holds per
// registration (producer record) in the /lookup bench's layout: 10 nsqds
// x 10,000 topics x 2 channels, 300,000 records.
func BenchmarkRegistryMemory(b *testing.B) {
	const topics = 10000
	var perRecord float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		f, _ := benchRegistry(b, topics)
		runtime.GC()
		runtime.ReadMemStats(&after)
		perRecord = float64(after.HeapAlloc-before.HeapAlloc) / (30 * topics)
		runtime.KeepAlive(f)
	}
	b.ReportMetric(perRecord, "B/registration")
}
