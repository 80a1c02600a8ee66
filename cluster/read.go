package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// ReadBarrier decides whether a read at the given level may be answered from
// local state now; for linearizable reads it first waits until local state
// includes everything committed before the read arrived.
func (n *Node) ReadBarrier(ctx context.Context, level Consistency) error {
	switch level {
	case Stale:
		return nil
	case Bounded:
		if n.raft.State() == raft.Leader {
			return nil
		}
		if !n.caughtUp.Load() {
			return fmt.Errorf("%w: still catching up with the leader", ErrLeaderUnreachable)
		}
		// During an election no leader is known, but state is at most
		// MaxStaleness old all the same: keep serving, so lookups do not
		// fail while a new leader is chosen.
		if lc := n.raft.LastContact(); lc.IsZero() || time.Since(lc) > n.cfg.MaxStaleness {
			return ErrLeaderUnreachable
		}
		return nil
	case Linearizable:
		ctx, cancel := context.WithTimeout(ctx, n.cfg.WriteTimeout)
		defer cancel()
		index, err := n.readIndex(ctx)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrLeaderUnreachable, err)
		}
		if err := n.fsm.waitApplied(ctx, index); err != nil {
			return fmt.Errorf("%w: wait for index %d: %v", ErrLeaderUnreachable, index, err)
		}
		return nil
	}
	return fmt.Errorf("%w: consistency %q", ErrBadRequest, level)
}

// readIndex returns a commit index that includes every write committed
// before the call: the leader's, after it confirmed it still leads.
func (n *Node) readIndex(ctx context.Context) (uint64, error) {
	index, err := n.ReadIndex(ctx)
	if err == nil || !isNotLeader(err) {
		return index, err
	}
	addr, err := n.leaderHTTP()
	if err != nil {
		return 0, err
	}
	var out struct {
		Index uint64 `json:"index"`
	}
	if err := n.call(ctx, http.MethodGet, addr, PathReadIndex, "", nil, &out); err != nil {
		return 0, err
	}
	return out.Index, nil
}

// ReadIndex, on the leader, confirms leadership with a quorum and returns the
// commit index. ErrNotLeader on a follower.
func (n *Node) ReadIndex(ctx context.Context) (uint64, error) {
	if n.raft.State() != raft.Leader {
		return 0, ErrNotLeader
	}
	// A new leader's commit index may trail entries committed in earlier
	// terms until its first entry commits; leaderReady is set after the
	// Barrier that guarantees it does not.
	for !n.leaderReady.Load() {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
		if n.raft.State() != raft.Leader {
			return 0, ErrNotLeader
		}
	}
	index := n.raft.CommitIndex()
	if err := n.raft.VerifyLeader().Error(); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrNotLeader, err)
	}
	return index, nil
}

func isNotLeader(err error) bool {
	return err != nil && (errors.Is(err, ErrNotLeader) || errors.Is(err, raft.ErrNotLeader))
}

// ReadState describes local state for the X-Raftlookupd-* headers.
func (n *Node) ReadState() ReadState {
	_, id := n.raft.LeaderWithID()
	rs := ReadState{LeaderID: string(id), AppliedIndex: n.fsm.appliedIndex(), LastContact: -1}
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

// Status describes this node and the members of the configuration. Unless
// local, it also asks every other member (concurrently, briefly) for its
// applied index, and reports each member's lag behind the leader's commit
// index; a member that does not answer has no lag.
func (n *Node) Status(ctx context.Context, local bool) (Status, error) {
	st := n.localStatus()
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return st, err
	}
	for _, s := range cf.Configuration().Servers {
		ms := MemberStatus{
			ID:          string(s.ID),
			RaftAddress: string(s.Address),
			Suffrage:    s.Suffrage.String(),
			Leader:      string(s.ID) == st.LeaderID,
		}
		if m, ok := n.Registry().Member(ms.ID); ok {
			ms.HTTPAddress, ms.TCPAddress = m.HTTPAddress, m.TCPAddress
		}
		st.Members = append(st.Members, ms)
	}
	applied := map[string]uint64{st.NodeID: st.AppliedIndex}
	leaderCommit, known := st.CommitIndex, st.State == raft.Leader.String()
	if !local {
		for id, peer := range n.peerStatuses(ctx, st.Members) {
			applied[id] = peer.AppliedIndex
			if id == st.LeaderID {
				leaderCommit, known = peer.CommitIndex, true
			}
		}
	}
	for i, m := range st.Members {
		a, ok := applied[m.ID]
		if !ok || !known {
			continue
		}
		lag := leaderCommit - min(leaderCommit, a)
		st.Members[i].Lag = &lag
	}
	return st, nil
}

func (n *Node) localStatus() Status {
	stats := n.raft.Stats()
	leaderAddr, leaderID := n.raft.LeaderWithID()
	return Status{
		NodeID:        n.cfg.NodeID,
		State:         n.raft.State().String(),
		LeaderID:      string(leaderID),
		LeaderAddress: string(leaderAddr),
		Term:          parseUint(stats["term"]),
		LastLogIndex:  parseUint(stats["last_log_index"]),
		CommitIndex:   n.raft.CommitIndex(),
		AppliedIndex:  n.fsm.appliedIndex(),
		Members:       []MemberStatus{},
	}
}

// peerStatuses fetches the local status of every other member that
// published an HTTP address, waiting at most half a second.
func (n *Node) peerStatuses(ctx context.Context, members []MemberStatus) map[string]Status {
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	out := map[string]Status{}
	for _, m := range members {
		if m.ID == n.cfg.NodeID || m.HTTPAddress == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var st Status
			if err := n.call(ctx, http.MethodGet, m.HTTPAddress, PathStatus+"?local=true", "", nil, &st); err != nil || st.NodeID != m.ID {
				return
			}
			mu.Lock()
			out[m.ID] = st
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

func parseUint(s string) uint64 {
	v, _ := strconv.ParseUint(s, 10, 64)
	return v
}

// catchUp sets caughtUp once a linearizable barrier succeeds.
func (n *Node) catchUp() {
	if n.caughtUp.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.LeaseRenewInterval)
	defer cancel()
	if n.ReadBarrier(ctx, Linearizable) == nil {
		n.caughtUp.Store(true)
		n.logger.Info("caught up with the leader", "applied_index", n.fsm.appliedIndex())
	}
}
