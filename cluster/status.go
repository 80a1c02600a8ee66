package cluster

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlookupd/raftlookupd/wire"
)

// Status describes this node and the members of the configuration. Unless
// local, it also asks every other member (concurrently, briefly) for its
// applied index, and reports each member's lag behind the leader's commit
// index; a member that does not answer has no lag.
func (n *Node) Status(ctx context.Context, local bool) (wire.Status, error) {
	st := n.localStatus()
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return st, err
	}
	for _, s := range cf.Configuration().Servers {
		ms := wire.MemberStatus{
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
	counts := map[string]wire.RegistryCounts{st.NodeID: st.Registry}
	leaderCommit, known := st.CommitIndex, st.State == raft.Leader.String()
	if !local {
		for id, peer := range n.memberStatuses(ctx, st.Members) {
			applied[id] = peer.AppliedIndex
			counts[id] = peer.Registry
			if id == st.LeaderID {
				leaderCommit, known = peer.CommitIndex, true
			}
		}
	}
	for i, m := range st.Members {
		if c, ok := counts[m.ID]; ok {
			st.Members[i].Registry = &c
		}
		a, ok := applied[m.ID]
		if !ok || !known {
			continue
		}
		lag := leaderCommit - min(leaderCommit, a)
		st.Members[i].Lag = &lag
	}
	return st, nil
}

func (n *Node) localStatus() wire.Status {
	stats := n.raft.Stats()
	rs := n.Registry().Stats()
	leaderAddr, leaderID := n.raft.LeaderWithID()
	return wire.Status{
		NodeID:        n.cfg.NodeID,
		State:         n.raft.State().String(),
		LeaderID:      string(leaderID),
		LeaderAddress: string(leaderAddr),
		Term:          parseUint(stats["term"]),
		LastLogIndex:  parseUint(stats["last_log_index"]),
		CommitIndex:   n.raft.CommitIndex(),
		AppliedIndex:  n.fsm.appliedIndex(),
		Registry: wire.RegistryCounts{Sessions: rs.Sessions, Orphans: rs.Orphans, Topics: rs.Topics,
			Channels: rs.Channels, Producers: rs.Producers},
		Members: []wire.MemberStatus{},
	}
}

// memberStatuses fetches the local status of every other member over the
// RPC (at its Raft address, which the configuration always has), waiting
// at most half a second.
func (n *Node) memberStatuses(ctx context.Context, members []wire.MemberStatus) map[string]wire.Status {
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	out := map[string]wire.Status{}
	for _, m := range members {
		if m.ID == n.cfg.NodeID {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var st wire.Status
			if err := n.rpcc.call(ctx, m.RaftAddress, rpcStatus, nil, &st); err != nil || st.NodeID != m.ID {
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
