package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/raftlookupd/raftlookupd/cluster"
	"github.com/raftlookupd/raftlookupd/fsm"
	"github.com/raftlookupd/raftlookupd/wire"
)

func TestSingleNodeBootstrapAndRestart(t *testing.T) {
	tc := newTestCluster(t)
	n := tc.start("n1", nil)
	tc.waitReady("n1")
	ctx := context.Background()
	if err := n.node.Propose(ctx, fsm.Command{Op: fsm.OpCreateChannel, Topic: "t", Channel: "c"}); err != nil {
		t.Fatal(err)
	}
	sid, err := n.node.OpenSession(peer(4150))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.node.Register(sid, "t", "c"); err != nil {
		t.Fatal(err)
	}
	tc.waitProducers("t", "nsqd:4150", "n1")

	// A restart keeps HTTP-made keys and drops the old incarnation's session.
	n.stop()
	n = tc.start("n1", nil)
	tc.waitReady("n1")
	waitFor(t, 5*time.Second, func() error {
		chs, ps, ok := n.node.Registry().Lookup("t", fsm.Filter{Now: time.Now(), InactiveTimeout: time.Hour})
		if !ok || len(chs) != 1 || len(ps) != 0 {
			return fmt.Errorf("after restart: found=%v channels=%v producers=%v", ok, chs, ps)
		}
		return nil
	})
	if err := n.node.Register(sid, "t", ""); !errors.Is(err, wire.ErrSessionGone) {
		t.Fatalf("register on an old incarnation's session: %v, want wire.ErrSessionGone", err)
	}
}

func TestFollowerWritesReachEveryNode(t *testing.T) {
	tc := newTestCluster(t)
	tc.startThree()
	f := tc.follower()
	sid, err := f.node.OpenSession(peer(4150))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		if err := f.node.Register(sid, fmt.Sprintf("t%d", i), "c"); err != nil {
			t.Fatal(err)
		}
	}
	tc.waitProducers("t199", "nsqd:4150", "n1", "n2", "n3")
	// Group commit: 200 registrations took far fewer log entries.
	if st, _ := f.node.Status(context.Background(), false); st.AppliedIndex > 100 {
		t.Errorf("applied index %d after 200 registrations: commands are not batched", st.AppliedIndex)
	}
	// HTTP mutations through a follower return the command's own result.
	err = f.node.Propose(context.Background(), fsm.Command{Op: fsm.OpDeleteChannel, Topic: "t1", Channel: "nope"})
	if !errors.Is(err, fsm.ErrChannelNotFound) {
		t.Fatalf("delete of a missing channel via follower: %v, want ErrChannelNotFound", err)
	}
}

func TestSameNSQDThroughTwoNodesIsListedOnce(t *testing.T) {
	tc := newTestCluster(t)
	tc.startThree()
	a, b := tc.node("n1"), tc.node("n2")
	sa, _ := a.node.OpenSession(peer(4150))
	sb, _ := b.node.OpenSession(peer(4150))
	a.node.Register(sa, "t", "")
	b.node.Register(sb, "t", "")
	tc.waitProducers("t", "nsqd:4150", "n1", "n2", "n3")
	waitFor(t, 5*time.Second, func() error {
		if d := a.node.Registry().Debug()["topic:t:"]; len(d) != 2 {
			return fmt.Errorf("want 2 sessions under topic:t:, got %d", len(d))
		}
		return nil
	})
	// Still listed while one of its sessions lives.
	a.node.CloseSession(sa)
	waitFor(t, 5*time.Second, func() error {
		if d := b.node.Registry().Debug()["topic:t:"]; len(d) != 1 {
			return fmt.Errorf("want 1 session under topic:t:, got %d", len(d))
		}
		return nil
	})
	tc.waitProducers("t", "nsqd:4150", "n1", "n2", "n3")
	b.node.CloseSession(sb)
	tc.waitProducers("t", "", "n1", "n2", "n3")
}

func TestLeaderLossKeepsReadsAndWrites(t *testing.T) {
	tc := newTestCluster(t)
	tc.startThree()
	old := tc.leader()
	var survivors []string
	for _, id := range []string{"n1", "n2", "n3"} {
		if id != old.id {
			survivors = append(survivors, id)
		}
	}
	f := tc.node(survivors[0])
	sid, _ := f.node.OpenSession(peer(4150))
	f.node.Register(sid, "before", "")
	tc.waitProducers("before", "nsqd:4150", "n1", "n2", "n3")

	tc.kill(old.id)
	// wire.Bounded reads keep being served on the survivors through the election.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		for _, id := range survivors {
			if err := tc.node(id).node.ReadBarrier(context.Background(), wire.Bounded); err != nil {
				t.Fatalf("bounded read on %s during the election: %v", id, err)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := f.node.Register(sid, "after", ""); err != nil {
		t.Fatal(err)
	}
	tc.waitProducers("after", "nsqd:4150", survivors...)
	if l := tc.leader(); l.id == old.id {
		t.Fatal("the killed node is still the leader")
	}
}

func TestOwnerLeaseExpiresAndNodeRecovers(t *testing.T) {
	tc := newTestCluster(t)
	tc.startThree()
	f := tc.follower()
	sid, _ := f.node.OpenSession(peer(4150))
	f.node.Register(sid, "t", "c")
	tc.waitProducers("t", "nsqd:4150", "n1", "n2", "n3")

	tc.partition(f.id)
	others := []string{}
	for _, id := range []string{"n1", "n2", "n3"} {
		if id != f.id {
			others = append(others, id)
		}
	}
	// The leader drops the cut-off node's sessions after the lease timeout.
	tc.waitProducers("t", "", others...)

	tc.reconnect(f.id)
	select {
	case <-f.expired:
	case <-time.After(10 * time.Second):
		t.Fatal("the node did not notice its lease expired")
	}
	if err := f.node.Register(sid, "t", ""); !errors.Is(err, wire.ErrSessionGone) {
		t.Fatalf("old session after expiry: %v, want wire.ErrSessionGone", err)
	}
	// nsqd reconnects: a new session of the new incarnation is listed again.
	sid2, err := f.node.OpenSession(peer(4150))
	if err != nil {
		t.Fatal(err)
	}
	f.node.Register(sid2, "t", "c")
	tc.waitProducers("t", "nsqd:4150", "n1", "n2", "n3")
}

func TestReadConsistencyUnderPartition(t *testing.T) {
	tc := newTestCluster(t)
	tc.startThree()
	f := tc.follower()
	ctx := context.Background()
	for _, level := range []wire.Consistency{wire.Stale, wire.Bounded, wire.Linearizable} {
		if err := f.node.ReadBarrier(ctx, level); err != nil {
			t.Fatalf("%s read on a healthy follower: %v", level, err)
		}
	}
	tc.partition(f.id)
	waitFor(t, 5*time.Second, func() error {
		if err := f.node.ReadBarrier(ctx, wire.Bounded); !errors.Is(err, wire.ErrLeaderUnreachable) {
			return fmt.Errorf("bounded read on a cut-off follower: %v", err)
		}
		return nil
	})
	if err := f.node.ReadBarrier(ctx, wire.Stale); err != nil {
		t.Fatalf("stale read on a cut-off follower: %v", err)
	}
	// The forwarded read index arrives over HTTP, but the node cannot apply
	// it while cut off from Raft.
	lctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := f.node.ReadBarrier(lctx, wire.Linearizable); !errors.Is(err, wire.ErrLeaderUnreachable) {
		t.Fatalf("linearizable read on a cut-off follower: %v", err)
	}
	// Meanwhile the majority commits a write the follower has not seen.
	l := tc.leader()
	if err := l.node.Propose(ctx, fsm.Command{Op: fsm.OpCreateTopic, Topic: "late"}); err != nil {
		t.Fatal(err)
	}
	tc.reconnect(f.id)
	// The returning node may force one more election; wait it out.
	waitFor(t, 10*time.Second, func() error { return f.node.ReadBarrier(ctx, wire.Linearizable) })
	if topics := f.node.Registry().Topics(); len(topics) != 1 || topics[0] != "late" {
		t.Fatalf("linearizable read did not see the write: %v", topics)
	}
}

func TestJoinLeave(t *testing.T) {
	tc := newTestCluster(t)
	tc.startThree()
	n4 := tc.start("n4", func(c *cluster.Config) { c.Join = []string{raftAddr("n2")} })
	waitFor(t, 10*time.Second, func() error {
		st, err := tc.leader().node.Status(context.Background(), false)
		if err != nil || len(st.Members) != 4 {
			return fmt.Errorf("members %v err %v", st.Members, err)
		}
		return nil
	})
	tc.waitReady("n4")
	// Joining again with the same id and address changes nothing.
	ctx := context.Background()
	if err := tc.node("n3").node.Join(ctx, wire.JoinRequest{ID: "n4", RaftAddress: raftAddr("n4")}); err != nil {
		t.Fatalf("repeated join: %v", err)
	}
	// Leaving is idempotent for scripts: a non-member leaves successfully
	// and nothing changes.
	if err := tc.node("n1").node.Leave(ctx, "n9"); err != nil {
		t.Fatalf("leave of a non-member: %v, want success", err)
	}
	if st, err := tc.leader().node.Status(ctx, true); err != nil || len(st.Members) != 4 {
		t.Fatalf("after leaving a non-member: %d members, err %v; want 4", len(st.Members), err)
	}
	if err := tc.node("n1").node.Leave(ctx, "n4"); err != nil {
		t.Fatal(err)
	}
	if err := tc.node("n1").node.Leave(ctx, "n4"); err != nil {
		t.Fatalf("repeated leave: %v, want success", err)
	}
	waitFor(t, 10*time.Second, func() error {
		for _, id := range []string{"n1", "n2", "n3"} {
			st, _ := tc.node(id).node.Status(ctx, false)
			for _, m := range st.Members {
				if m.ID == "n4" {
					return fmt.Errorf("%s still lists n4", id)
				}
			}
			if _, ok := tc.node(id).node.Registry().Member("n4"); ok {
				return fmt.Errorf("%s still has n4's addresses", id)
			}
		}
		return nil
	})
	_ = n4
}

func TestRecoverFromQuorumLoss(t *testing.T) {
	tc := newTestCluster(t)
	tc.startThree()
	l := tc.leader()
	if err := l.node.Propose(context.Background(), fsm.Command{Op: fsm.OpCreateTopic, Topic: "kept"}); err != nil {
		t.Fatal(err)
	}
	survivor := tc.follower()
	waitFor(t, 5*time.Second, func() error {
		if len(survivor.node.Registry().Topics()) != 1 {
			return fmt.Errorf("survivor has not applied the write")
		}
		return nil
	})
	// Two of three die: the survivor alone can never elect itself.
	for _, id := range []string{"n1", "n2", "n3"} {
		if id != survivor.id {
			tc.kill(id)
		}
	}
	survivor.stop()
	peers := fmt.Sprintf(`[{"id":%q,"address":%q}]`, survivor.id, raftAddr(survivor.id))
	if err := os.WriteFile(filepath.Join(survivor.dir, cluster.PeersFile), []byte(peers), 0o600); err != nil {
		t.Fatal(err)
	}
	survivor = tc.start(survivor.id, nil)
	tc.waitReady(survivor.id)
	if err := survivor.node.Propose(context.Background(), fsm.Command{Op: fsm.OpCreateTopic, Topic: "new"}); err != nil {
		t.Fatalf("write after recovery: %v", err)
	}
	if got := survivor.node.Registry().Topics(); len(got) != 2 {
		t.Fatalf("topics after recovery: %v, want kept and new", got)
	}
	if _, err := os.Stat(filepath.Join(survivor.dir, cluster.PeersFile+".applied")); err != nil {
		t.Fatalf("peers file not marked applied: %v", err)
	}
}

func TestDrainClosesSessionsWithOneCommand(t *testing.T) {
	tc := newTestCluster(t)
	tc.startThree()
	f := tc.follower()
	var ids []fsm.SessionID
	for port := 4150; port < 4160; port += 2 {
		sid, _ := f.node.OpenSession(peer(port))
		f.node.Register(sid, "t", "")
		ids = append(ids, sid)
	}
	waitFor(t, 5*time.Second, func() error {
		if n := len(tc.producers("n1", "t")); n != 5 {
			return fmt.Errorf("%d producers", n)
		}
		return nil
	})
	f.node.StartDrain()
	for _, id := range ids {
		f.node.CloseSession(id) // connections closing during shutdown
	}
	// The queue is FIFO: once a later command committed, any close queued
	// before it would have too. None was: the sessions are still there.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.node.Propose(ctx, fsm.Command{Op: fsm.OpCreateTopic, Topic: "marker"}); err != nil {
		t.Fatal(err)
	}
	if n := len(f.node.Registry().Debug()["topic:t:"]); n != 5 {
		t.Fatalf("%d sessions left before Drain, want 5: closes were queued one by one", n)
	}
	if err := f.node.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	tc.waitProducers("t", "", "n1", "n2", "n3")
}

func TestStatusReportsEveryMembersLag(t *testing.T) {
	tc := newTestCluster(t)
	tc.startThree()
	f := tc.follower()
	waitFor(t, 5*time.Second, func() error {
		st, err := f.node.Status(context.Background(), false)
		if err != nil {
			return err
		}
		if len(st.Members) != 3 {
			return fmt.Errorf("members %+v", st.Members)
		}
		for _, m := range st.Members {
			if m.Lag == nil || m.HTTPAddress == "" {
				return fmt.Errorf("member %s: lag %v, http %q", m.ID, m.Lag, m.HTTPAddress)
			}
		}
		return nil
	})
	// A member that does not answer has no lag; the others still do.
	l := tc.leader()
	var down *testNode
	for _, n := range tc.all() {
		if n != l && n != f {
			down = n
		}
	}
	tc.net.cut(raftAddr(down.id))
	st, err := f.node.Status(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range st.Members {
		if (m.ID == down.id) != (m.Lag == nil) {
			t.Errorf("member %s: lag %v (down: %v)", m.ID, m.Lag, m.ID == down.id)
		}
	}
	// local=true asks nobody: no other member's lag is known.
	local, _ := f.node.Status(context.Background(), true)
	for _, m := range local.Members {
		if m.ID != f.id && m.Lag != nil {
			t.Errorf("local status: member %s has lag %v", m.ID, *m.Lag)
		}
	}
}
