package cluster

import (
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// A follower applies an entry once it learns that the entry committed, and
// it learns that only from the leader's next AppendEntries. hashicorp/raft
// sends one as soon as it appends a new entry, or else after CommitTimeout
// (10 to 20 ms with the defaults) with nothing to append. So without help
// the last batch of every burst reached the followers' registries one
// CommitTimeout after the leader committed it: most of the time a
// reconnect storm took to be visible on all three nodes.
//
// The nudger closes that gap. When the last proposal this leader had in
// flight commits, it appends a barrier: an entry the state machine never
// sees, whose replication carries the new commit index to every follower
// at once. At most one barrier is in flight, and one that finds proposals
// in flight again is not sent (their own replication carries the commit
// index), so a burst costs about one more entry.
type nudger struct {
	inflight atomic.Int64
	kick     chan struct{}
}

func newNudger() *nudger { return &nudger{kick: make(chan struct{}, 1)} }

// begin counts a proposal this node makes as leader; done must follow once
// its future is resolved.
func (g *nudger) begin() { g.inflight.Add(1) }

func (g *nudger) done() {
	if g.inflight.Add(-1) == 0 {
		select {
		case g.kick <- struct{}{}:
		default:
		}
	}
}

// nudgeLoop appends a barrier each time this leader's proposals in flight
// all committed, when it has followers to tell.
func (n *Node) nudgeLoop() {
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.nudge.kick:
		}
		if n.nudge.inflight.Load() != 0 || n.raft.State() != raft.Leader || len(n.configuration()) < 2 {
			continue
		}
		// Raft answers the barrier even when leadership is lost (and
		// runs until this loop ended: Shutdown waits for it first).
		_ = n.raft.Barrier(n.cfg.WriteTimeout).Error()
	}
}
