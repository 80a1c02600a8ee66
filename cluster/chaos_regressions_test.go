package cluster_test

// Regression tests for bugs e2e/chaos found (issue 11), each deterministic.

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlookupd/raftlookupd/cluster"
	"github.com/raftlookupd/raftlookupd/fsm"
	"github.com/raftlookupd/raftlookupd/wire"
)

// A follower that missed a removal still lists the removed server in its
// configuration. A join of that server through it must reach the leader;
// answering "already a member" from the stale local view acknowledges a
// join that never happened.
func TestJoinThroughStaleFollowerReachesLeader(t *testing.T) {
	tc := newTestCluster(t)
	ids := []string{"n1", "n2", "n3", "n4"}
	var peers []cluster.Server
	for _, id := range ids {
		peers = append(peers, cluster.Server{ID: id, RaftAddress: raftAddr(id)})
	}
	for _, id := range ids {
		tc.start(id, func(c *cluster.Config) { c.Servers = peers })
	}
	tc.waitReady(ids...)
	l := tc.leader()
	var others []*testNode
	for _, id := range ids {
		if id != l.id {
			others = append(others, tc.node(id))
		}
	}
	stale, gone := others[0], others[1]
	tc.partition(stale.id)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.node.Leave(ctx, gone.id); err != nil {
		t.Fatalf("leave %s: %v", gone.id, err)
	}
	// Cut off, the follower cannot reach the leader: it must say so, not
	// answer "already a member" from its stale configuration.
	if err := stale.node.Join(ctx, wire.JoinRequest{ID: gone.id, RaftAddress: raftAddr(gone.id)}); err == nil {
		t.Fatalf("join of %s through the cut-off %s answered OK from its stale configuration", gone.id, stale.id)
	}
	tc.reconnect(stale.id)
	if err := stale.node.Join(ctx, wire.JoinRequest{ID: gone.id, RaftAddress: raftAddr(gone.id)}); err != nil {
		t.Fatalf("join %s through %s: %v", gone.id, stale.id, err)
	}
	cf := l.node.Raft().GetConfiguration()
	if err := cf.Error(); err != nil {
		t.Fatal(err)
	}
	for _, s := range cf.Configuration().Servers {
		if s.ID == raft.ServerID(gone.id) {
			return
		}
	}
	t.Fatalf("join of %s through %s answered OK, but the leader's configuration is %v", gone.id, stale.id, cf.Configuration().Servers)
}

// Leave of the leader hands leadership over, then the next leader removes
// it; the call succeeds (it answered 500 "leadership lost while committing
// log" before).
func TestLeaveOfTheLeaderSucceeds(t *testing.T) {
	tc := newTestCluster(t)
	tc.startThree()
	l := tc.leader()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.node.Leave(ctx, l.id); err != nil {
		t.Fatalf("leave of the leader %s: %v", l.id, err)
	}
}

// A bounded read must not be served from state older than MaxStaleness.
// Raft refreshes a follower's LastContact when it grants a vote, which
// brings it no data: a cut-off follower that grants a vote must still
// refuse bounded reads while it lacks a write acknowledged more than
// MaxStaleness ago.
func TestBoundedReadAfterVoteGrantIsFresh(t *testing.T) {
	tc := newTestCluster(t)
	tc.startThree()
	l := tc.leader()
	var f, g *testNode
	for _, n := range tc.all() {
		if n == l {
			continue
		}
		if f == nil {
			f = n
		} else {
			g = n
		}
	}
	tc.partition(f.id)
	if err := l.node.Propose(context.Background(), fsm.Command{Op: fsm.OpCreateTopic, Topic: "missed"}); err != nil {
		t.Fatal(err)
	}
	acked := time.Now()
	// Wait until f itself refuses: the write is then older than MaxStaleness
	// and f has not heard from a leader since.
	waitFor(t, 10*time.Second, func() error {
		if time.Since(acked) <= f.cfg.MaxStaleness {
			return fmt.Errorf("write not yet older than max staleness")
		}
		if err := f.node.ReadBarrier(context.Background(), wire.Bounded); err == nil {
			return fmt.Errorf("cut-off follower still serves bounded reads")
		}
		return nil
	})
	// g (a member) asks f for its vote at a higher term with a longer log.
	_, fake := raft.NewInmemTransport(raft.ServerAddress(raftAddr(g.id)))
	fake.Connect(f.transport.LocalAddr(), f.transport)
	var resp raft.RequestVoteResponse
	req := &raft.RequestVoteRequest{
		RPCHeader:    raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(g.id), Addr: []byte(raftAddr(g.id))},
		Term:         1 << 20,
		LastLogIndex: 1 << 40,
		LastLogTerm:  1 << 20,
	}
	if err := fake.RequestVote(raft.ServerID(f.id), f.transport.LocalAddr(), req, &resp); err != nil {
		t.Fatal(err)
	}
	if !resp.Granted {
		t.Fatalf("vote not granted: %+v", resp)
	}
	if slices.Contains(f.node.Registry().Topics(), "missed") {
		t.Fatal("f has the write it was cut off from")
	}
	if err := f.node.ReadBarrier(context.Background(), wire.Bounded); err == nil {
		t.Fatalf("f serves bounded reads %v after a write it lacks was acknowledged (max staleness %v)", time.Since(acked).Round(time.Millisecond), f.cfg.MaxStaleness)
	}
}
