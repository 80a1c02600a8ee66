package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/raftlookupd/raftlookupd/fsm"
	"github.com/raftlookupd/raftlookupd/wire"
)

const benchProducers = 10

// benchRegistry is the bench/ lookup layout: 10 nsqds, each registering n
// topics with 2 channels (20*n registrations), applied in batches as the
// cluster writes them. Sessions were last seen now, so the default filter
// shows them all.
func benchRegistry(b *testing.B, n int) (*fsm.Registry, []string) {
	b.Helper()
	f := fsm.New()
	var idx uint64
	apply := func(c fsm.Command) {
		idx++
		data, err := c.Encode()
		if err != nil {
			b.Fatal(err)
		}
		if res, ok := f.Apply(&raft.Log{Index: idx, Data: data}).([]error); ok {
			for _, err := range res {
				if err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	now := time.Now().UnixNano()
	apply(fsm.Command{Op: fsm.OpRenewLease, Session: fsm.SessionID{Owner: "n1", Incarnation: 1}, Time: now})
	for i := range benchProducers {
		apply(fsm.Command{Op: fsm.OpOpenSession, Session: fsm.SessionID{Owner: "n1", Incarnation: 1, Seq: uint64(i + 1)}, Time: now,
			Peer: fsm.PeerInfo{RemoteAddress: fmt.Sprintf("127.0.0.1:%d", 50000+i), Hostname: "bench",
				BroadcastAddress: "127.0.0.1", TCPPort: 20000 + 2*i, HTTPPort: 20001 + 2*i, Version: "1.3.0"}})
	}
	names := make([]string, n)
	pending := fsm.Command{Op: fsm.OpBatch, Session: fsm.SessionID{Owner: "n1", Incarnation: 1}}
	for t := range n {
		names[t] = fmt.Sprintf("t%d", t)
		for s := range benchProducers {
			id := fsm.SessionID{Owner: "n1", Incarnation: 1, Seq: uint64(s + 1)}
			for _, ch := range []string{"ch0", "ch1"} {
				pending.Batch = append(pending.Batch, fsm.Command{Op: fsm.OpRegister, Session: id, Topic: names[t], Channel: ch})
			}
		}
		if len(pending.Batch) >= 1000 || t == n-1 {
			pending.BatchSeq++
			apply(pending)
			pending.Batch = pending.Batch[:0]
		}
	}
	return f.Registry(), names
}

// benchCluster is a follower that may always answer bounded reads.
type benchCluster struct{ Cluster }

func (benchCluster) ReadBarrier(context.Context, wire.Consistency) error { return nil }
func (benchCluster) ReadState() wire.ReadState {
	return wire.ReadState{LeaderID: "n1", AppliedIndex: 12345, LastContact: 3 * time.Millisecond}
}

// discardWriter is the least a ResponseWriter can cost: one header map,
// reused, and a byte count.
type discardWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }
func (w *discardWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

// forgetful is the registry with every memo missing: each request encodes.
type forgetful struct{ *fsm.Registry }

func (forgetful) Recall(string, fsm.Filter) ([]byte, bool) { return nil, false }

// BenchmarkLookup is one /lookup request through the whole handler (router,
// metrics, parameters, read barrier, registry, encoding) on a real registry of
// the bench/ layout, with net/http's server and the network left out; topics
// are read in a spread order. "remembered" answers from the topic's memo,
// "encoded" computes and encodes every answer.
//
// Before the memo and the hand-written encoder (json.Marshal of the answer,
// a map per merge, a timer per read barrier): 7.8 us, 5040 B and 25
// allocations per lookup at 3k registrations on the 2-core AMD EPYC.
func BenchmarkLookup(b *testing.B) {
	for _, topics := range []int{150, 1500, 15000} {
		fresh, names := benchRegistry(b, topics)
		reqs := make([]*http.Request, len(names))
		for i, name := range names {
			reqs[i], _ = http.NewRequest(http.MethodGet, "/lookup?topic="+name, nil)
			reqs[i].Header.Set("Accept", "application/vnd.nsq; version=1.0")
		}
		for _, mode := range []string{"remembered", "encoded"} {
			var reg Registry = fresh
			if mode == "encoded" {
				reg = forgetful{fresh}
			}
			s := newTestServer(b, reg, benchCluster{}, nil)
			b.Cleanup(func() { s.Shutdown(context.Background()) })
			h := s.Handler()
			b.Run(fmt.Sprintf("regs=%dk/%s", topics*benchProducers*2/1000, mode), func(b *testing.B) {
				b.ReportAllocs()
				w := &discardWriter{h: http.Header{}}
				i := 0
				for b.Loop() {
					clear(w.h)
					w.status, w.n = 0, 0
					h.ServeHTTP(w, reqs[(i*7919)%len(reqs)])
					if w.status != http.StatusOK || w.n < 1000 {
						b.Fatalf("status %d, %d bytes", w.status, w.n)
					}
					i++
				}
			})
		}
	}
}
