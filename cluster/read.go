package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlookupd/raftlookupd/wire"
)

// ReadBarrier decides whether a read at the given level may be answered from
// local state now; for linearizable reads it first waits until local state
// includes everything committed before the read arrived.
func (n *Node) ReadBarrier(ctx context.Context, level wire.Consistency) error {
	switch level {
	case wire.Stale:
		return nil
	case wire.Bounded:
		// The leader too: one that was paused, or cut off and not yet
		// aware of it, still calls itself leader (found by e2e/chaos).
		if !n.caughtUp.Load() {
			return fmt.Errorf("%w: still catching up with the leader", wire.ErrLeaderUnreachable)
		}
		// Not "heard a heartbeat lately": a follower that was paused,
		// cut off or installing a snapshot hears heartbeats again before
		// its state catches up. What counts is when this node last had
		// applied the leader's commit index (freshness below). During an
		// election state stays within MaxStaleness all the same, so
		// lookups keep working while a new leader is chosen.
		if age := time.Since(n.freshAsOf()); age > n.cfg.MaxStaleness {
			return fmt.Errorf("%w: local state may be %v old, more than the maximum staleness %v",
				wire.ErrLeaderUnreachable, age.Round(time.Millisecond), n.cfg.MaxStaleness)
		}
		return nil
	case wire.Linearizable:
		ctx, cancel := context.WithTimeout(ctx, n.cfg.WriteTimeout)
		defer cancel()
		index, err := n.readIndex(ctx)
		if err != nil {
			return fmt.Errorf("%w: %v", wire.ErrLeaderUnreachable, err)
		}
		if err := n.fsm.waitApplied(ctx, index); err != nil {
			return fmt.Errorf("%w: wait for index %d: %v", wire.ErrLeaderUnreachable, index, err)
		}
		return nil
	}
	return fmt.Errorf("%w: consistency %q", wire.ErrBadRequest, level)
}

// readIndex returns a commit index that includes every write committed
// before the call: the leader's, after it confirmed it still leads.
//
// During an election no leader is known for a moment: it waits for one
// (until ctx ends) rather than fail a read a new leader can serve. A call
// the leader change cut short (callLeader) goes to the next leader,
// possibly this node. Before, a survivor's freshness loop could wait on a
// dead leader for all of -max-staleness, and the new leader itself refused
// bounded reads for a moment (found by the compose test that SIGKILLs the
// leader's container).
func (n *Node) readIndex(ctx context.Context) (uint64, error) {
	for {
		index, err := n.leaderReadIndex(ctx)
		if err == nil || !isNotLeader(err) {
			return index, err
		}
		var out indexDoc
		changed, err := n.callLeader(ctx, rpcReadIndex, nil, &out)
		switch {
		case err == nil:
			return out.Index, nil
		case errors.Is(err, errNoLeaderKnown):
			select {
			case <-ctx.Done():
				return 0, err
			case <-time.After(5 * time.Millisecond):
			}
		case !changed:
			return 0, err
		}
	}
}

// leaderReadIndex, on the leader, confirms leadership with a quorum and
// returns the commit index. wire.ErrNotLeader on a follower.
func (n *Node) leaderReadIndex(ctx context.Context) (uint64, error) {
	if n.raft.State() != raft.Leader {
		return 0, wire.ErrNotLeader
	}
	// A new leader's commit index may trail entries committed in earlier
	// terms until its first entry commits; leader.ready is set after the
	// Barrier that guarantees it does not.
	for !n.leader.ready.Load() {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
		if n.raft.State() != raft.Leader {
			return 0, wire.ErrNotLeader
		}
	}
	index := n.lastCommand(n.raft.CommitIndex())
	if err := n.raft.VerifyLeader().Error(); err != nil {
		return 0, fmt.Errorf("%w: %v", wire.ErrNotLeader, err)
	}
	return index, nil
}

// lastCommand returns the index of the last entry at or before index that
// reaches the state machine. Raft never hands its no-op (a new leader's
// first entry) or configuration entries to Apply, so waiting for the
// applied index to reach a commit index that ends with one would wait for
// the next client command; the last command before it is what the state
// must include. Entries at or before a commit index are committed, so the
// walk reads this node's own log. An entry no longer in the log is in a
// snapshot, which the state includes once restored.
func (n *Node) lastCommand(index uint64) uint64 {
	var l raft.Log
	for i := index; i > 0; i-- {
		if err := n.store.GetLog(i, &l); err != nil || l.Type == raft.LogCommand {
			return i
		}
	}
	return 0
}

func isNotLeader(err error) bool {
	return err != nil && (errors.Is(err, wire.ErrNotLeader) || errors.Is(err, raft.ErrNotLeader))
}

// ReadState describes local state for the X-Raftlookupd-* headers.
func (n *Node) ReadState() wire.ReadState {
	_, id := n.raft.LeaderWithID()
	rs := wire.ReadState{LeaderID: string(id), AppliedIndex: n.fsm.appliedIndex(), LastContact: -1}
	if n.raft.State() == raft.Leader {
		rs.LastContact = 0
	} else if lc := n.raft.LastContact(); !lc.IsZero() {
		rs.LastContact = time.Since(lc)
	}
	return rs
}

// Ready reports whether this node knows a leader, has applied everything it
// knows to be committed, can commit, and has an incarnation (so it takes
// nsqd sessions).
func (n *Node) Ready() bool {
	if !n.caughtUp.Load() {
		return false
	}
	if _, id := n.raft.LeaderWithID(); id == "" || !n.serving.Load() || n.sessions.incarnation() == 0 {
		return false
	}
	return n.fsm.appliedIndex() >= n.lastCommand(n.raft.CommitIndex())
}

// freshAsOf is the newest time at which this node's applied state was
// known to include everything the leader had committed.
func (n *Node) freshAsOf() time.Time {
	return n.born.Add(time.Duration(n.fresh.Load()))
}

// freshnessLoop keeps a follower's freshness: at a steady pace it asks the
// leader for its confirmed commit index (the read index, as a linearizable
// read does) and waits until it applied that much; the state then includes
// every write committed before the question left. The first success marks
// the node caught up; until then it asks again as soon as an answer came
// (a restarted node is not ready before it is caught up, and waiting for
// the next tick cost it up to a quarter of a second), 25ms after the last.
func (n *Node) freshnessLoop() {
	every := min(max(n.cfg.MaxStaleness/8, 10*time.Millisecond), 250*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if n.caughtUp.Load() {
			select {
			case <-n.ctx.Done():
				return
			case <-t.C:
			}
		} else {
			select {
			case <-n.ctx.Done():
				return
			case <-time.After(25 * time.Millisecond):
			}
		}
		asked := time.Now()
		ctx, cancel := context.WithTimeout(n.ctx, max(n.cfg.MaxStaleness, every))
		err := n.ReadBarrier(ctx, wire.Linearizable)
		cancel()
		if err != nil {
			continue
		}
		if since := int64(asked.Sub(n.born)); since > n.fresh.Load() {
			n.fresh.Store(since)
		}
		if !n.caughtUp.Swap(true) {
			n.logger.Info("caught up with the leader", "applied_index", n.fsm.appliedIndex())
		}
	}
}
