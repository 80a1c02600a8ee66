package cluster

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlookupd/raftlookupd/wire"
)

// A node keeps several batches in flight (queue.go), so they may reach the
// leader out of order. The state machine applies a batch only if its
// sequence number is above the last one applied from its origin, so a batch
// proposed before its predecessor would make the predecessor a "duplicate"
// and lose it. The sequencer proposes each origin's batches in sequence
// order: batch s of incarnation i goes to Raft only once s-1 was proposed by
// this leader in this term, or is already applied (s = 1 opens an
// incarnation's numbering). Raft keeps the order of Apply calls, and a log
// holds a later entry only with every earlier one, so when batch s commits,
// s-1 did too.
type sequencer struct {
	mu   sync.Mutex
	cond chan struct{} // closed and replaced when last changes
	last map[string]seqMark
}

type seqMark struct{ inc, seq uint64 }

func newSequencer() *sequencer {
	return &sequencer{cond: make(chan struct{}), last: map[string]seqMark{}}
}

// reset forgets what was proposed: a leader that regains leadership must not
// trust proposals of an earlier term, which may have been lost.
func (s *sequencer) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = map[string]seqMark{}
	close(s.cond)
	s.cond = make(chan struct{})
}

// propose calls apply (which must hand the entry to Raft before it returns
// a future) once the batch may go, and returns its future. applied reports
// the last batch the state machine applied from origin.
func (s *sequencer) propose(ctx context.Context, origin string, inc, seq uint64,
	applied func(string) (uint64, uint64, bool), apply func() raft.ApplyFuture) (raft.ApplyFuture, error) {
	for {
		s.mu.Lock()
		last, proposed := s.last[origin]
		ready := seq <= 1 || (proposed && last.inc == inc && last.seq >= seq-1)
		if !ready {
			ainc, aseq, ok := applied(origin)
			// Applied up to the predecessor; or the origin has moved on to
			// a later incarnation (incarnations are log indexes, so they
			// grow), whose state machine answers this one's batches as
			// stale or duplicate whatever their order (found by e2e/chaos:
			// a batch of an ended incarnation waited, forever, for a
			// predecessor that had been answered stale). A batch of an
			// incarnation newer than the applied state waits for it.
			if ok && (inc < ainc || (ainc == inc && aseq >= seq-1)) {
				ready = true
			}
		}
		if ready {
			f := apply()
			if !proposed || last.inc != inc || last.seq < seq {
				s.last[origin] = seqMark{inc, seq}
				close(s.cond)
				s.cond = make(chan struct{})
			}
			s.mu.Unlock()
			return f, nil
		}
		wait := s.cond
		s.mu.Unlock()
		// The predecessor may also become applied (proposed by an earlier
		// leader): look again shortly even if nothing is proposed here.
		select {
		case <-wait:
		case <-time.After(5 * time.Millisecond):
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: batch %d of %s/%d arrived before its predecessor, which never came", wire.ErrNoLeader, seq, origin, inc)
		}
	}
}

// skip records that batch seq will never be proposed (the leader refused it
// for good), so its successors need not wait for it.
func (s *sequencer) skip(origin string, inc, seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if last, ok := s.last[origin]; !ok || last.inc != inc || last.seq < seq {
		s.last[origin] = seqMark{inc, seq}
		close(s.cond)
		s.cond = make(chan struct{})
	}
}
