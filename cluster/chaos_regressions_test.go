package cluster_test

// Regression tests for bugs e2e/chaos found (issue 11), each deterministic.

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

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

// A server that joins after a leave never sees a configuration naming the
// server that left: not in a snapshot, not in the log it is sent. It used to
// be sent the log from the first entry, with the bootstrap configuration; a
// wiped server that joined again under its old name then campaigned in that
// old configuration, and won with another wiped server's vote over committed
// entries (e2e/chaos seed 50066; Node.compactLog says more).
func TestJoinAfterLeaveSeesNoOldConfiguration(t *testing.T) {
	tc := newTestCluster(t)
	tc.startThree()
	l := tc.leader()
	if err := l.node.Propose(context.Background(), fsm.Command{Op: fsm.OpCreateTopic, Topic: "before"}); err != nil {
		t.Fatal(err)
	}
	gone := tc.follower()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.node.Leave(ctx, gone.id); err != nil {
		t.Fatalf("leave %s: %v", gone.id, err)
	}
	// The leader's latest snapshot, before it answers; the others' soon after.
	if ids := latestSnapshotServers(t, l.dir); slices.Contains(ids, gone.id) {
		t.Fatalf("leave of %s answered, but the leader's latest snapshot names it: %v", gone.id, ids)
	}
	for _, n := range tc.all() {
		if n == gone {
			continue
		}
		waitFor(t, 10*time.Second, func() error {
			if ids := latestSnapshotServers(t, n.dir); slices.Contains(ids, gone.id) {
				return fmt.Errorf("%s: latest snapshot names %s: %v", n.id, gone.id, ids)
			}
			return nil
		})
	}
	n4 := tc.start("n4", func(c *cluster.Config) { c.Bootstrap = false })
	if err := l.node.Join(ctx, wire.JoinRequest{ID: "n4", RaftAddress: raftAddr("n4")}); err != nil {
		t.Fatal(err)
	}
	tc.waitReady("n4")
	n4.stop()
	for _, c := range storedConfigurations(t, n4.dir) {
		for _, s := range c.Servers {
			if string(s.ID) == gone.id {
				t.Fatalf("n4 joined after %s left, and was sent a configuration naming it: %v", gone.id, c.Servers)
			}
		}
	}
}

// latestSnapshotServers lists the servers of the configuration in the newest
// snapshot under a node's data dir.
func latestSnapshotServers(t *testing.T, dir string) []string {
	t.Helper()
	metas := snapshotMetas(t, dir)
	if len(metas) == 0 {
		return nil
	}
	var ids []string
	for _, s := range metas[0].Configuration.Servers {
		ids = append(ids, string(s.ID))
	}
	return ids
}

// snapshotMetas lists the snapshots under a node's data dir, newest first.
func snapshotMetas(t *testing.T, dir string) []*raft.SnapshotMeta {
	t.Helper()
	store, err := raft.NewFileSnapshotStore(dir, 1, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	metas, err := store.List()
	if err != nil {
		t.Fatal(err)
	}
	return metas
}

// storedConfigurations returns every configuration a stopped node holds: in
// its snapshots and in its log.
func storedConfigurations(t *testing.T, dir string) []raft.Configuration {
	t.Helper()
	var out []raft.Configuration
	for _, m := range snapshotMetas(t, dir) {
		out = append(out, m.Configuration)
	}
	store, err := raftboltdb.NewBoltStore(filepath.Join(dir, "raft.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	first, err := store.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	last, err := store.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	for i := first; i != 0 && i <= last; i++ {
		var l raft.Log
		if err := store.GetLog(i, &l); err != nil {
			t.Fatalf("log %d: %v", i, err)
		}
		if l.Type == raft.LogConfiguration {
			out = append(out, raft.DecodeConfiguration(l.Data))
		}
	}
	return out
}
