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
		if n.raft.State() == raft.Leader {
			return nil
		}
		if !n.caughtUp.Load() {
			return fmt.Errorf("%w: still catching up with the leader", wire.ErrLeaderUnreachable)
		}
		// During an election no leader is known, but state is at most
		// MaxStaleness old all the same: keep serving, so lookups do not
		// fail while a new leader is chosen.
		if lc := n.raft.LastContact(); lc.IsZero() || time.Since(lc) > n.cfg.MaxStaleness {
			return wire.ErrLeaderUnreachable
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
func (n *Node) readIndex(ctx context.Context) (uint64, error) {
	index, err := n.leaderReadIndex(ctx)
	if err == nil || !isNotLeader(err) {
		return index, err
	}
	addr, err := n.leaderRaftAddress()
	if err != nil {
		return 0, err
	}
	var out indexDoc
	if err := n.rpcc.call(ctx, addr, rpcReadIndex, nil, &out); err != nil {
		return 0, err
	}
	return out.Index, nil
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
	index := n.raft.CommitIndex()
	if err := n.raft.VerifyLeader().Error(); err != nil {
		return 0, fmt.Errorf("%w: %v", wire.ErrNotLeader, err)
	}
	return index, nil
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

// Ready reports whether this node knows a leader and has applied everything
// it knows to be committed.
func (n *Node) Ready() bool {
	if !n.caughtUp.Load() {
		return false
	}
	if _, id := n.raft.LeaderWithID(); id == "" {
		return false
	}
	return n.fsm.appliedIndex() >= n.raft.CommitIndex()
}

// catchUp sets caughtUp once a linearizable barrier succeeds.
func (n *Node) catchUp() {
	if n.caughtUp.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.LeaseRenewInterval)
	defer cancel()
	if n.ReadBarrier(ctx, wire.Linearizable) == nil {
		n.caughtUp.Store(true)
		n.logger.Info("caught up with the leader", "applied_index", n.fsm.appliedIndex())
	}
}
