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
	sid := n.open(t, 4150)
	n.register(t, sid, "t", "c")
	tc.waitProducers("t", "nsqd:4150", "n1")

	// A restart keeps HTTP-made keys. The old incarnation's session is
	// orphaned, not dropped (its nsqd is alive and re-dials within a
	// heartbeat), and goes when its grace passes.
	n.stop()
	n = tc.start("n1", func(c *cluster.Config) { c.OrphanGrace = 2 * time.Second })
	tc.waitReady("n1")
	if d := tc.debug("n1", "topic:t:"); len(d) != 1 || !d[0].Orphaned {
		t.Fatalf("right after the restart: %+v, want the old session listed as an orphan", d)
	}
	tc.waitProducers("t", "nsqd:4150", "n1")
	waitFor(t, 10*time.Second, func() error {
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
	sid := f.open(t, 4150)
	before, err := f.node.Status(context.Background(), true)
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
	st, err := f.node.Status(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	if grew := st.AppliedIndex - before.AppliedIndex; grew > 20 {
		t.Errorf("200 registrations took %d log entries: commands are not batched", grew)
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
	sa, sb := a.open(t, 4150), b.open(t, 4150)
	a.register(t, sa, "t", "")
	b.register(t, sb, "t", "")
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
	survivors := othersThan(old.id)
	f := tc.node(survivors[0])
	sid := f.open(t, 4150)
	f.register(t, sid, "before", "")
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

// A node cut off longer than the lease timeout: the leader orphans its
// sessions (listed for the grace, then gone); back, the node notices, closes
// its clients and opens a new incarnation, and the nsqd that reconnects is
// listed again.
func TestOwnerLeaseExpiresAndNodeRecovers(t *testing.T) {
	tc := newTestCluster(t)
	tc.startThree()
	f := tc.follower()
	sid := f.open(t, 4150)
	f.register(t, sid, "t", "c")
	tc.waitProducers("t", "nsqd:4150", "n1", "n2", "n3")

	tc.cutOffPastLease(f, "t")

	tc.reconnect(f.id)
	select {
	case <-f.expired:
	case <-time.After(10 * time.Second):
		t.Fatal("the node did not notice its lease expired")
	}
	if err := f.node.Register(sid, "t", ""); !errors.Is(err, wire.ErrSessionGone) && !errors.Is(err, wire.ErrNotServing) {
		t.Fatalf("old session after expiry: %v, want wire.ErrSessionGone", err)
	}
	// nsqd reconnects: a session of the next incarnation is listed again.
	sid2 := f.reopen(t, 4150, sid)
	f.register(t, sid2, "t", "c")
	tc.waitProducers("t", "nsqd:4150", "n1", "n2", "n3")
}

// A node cut off for several seconds is sent entries again only when the
// leader's Raft stops backing off (it doubles its wait after each failed
// append, up to 10.24 s): after this partition, about 5 s after the heal.
// The node learns its next incarnation from the leader's answer and renews
// it at once, so the leader does not orphan the new incarnation during that
// wait (its lease timeout here is 1.5 s), and the nsqd that reconnected
// stays listed.
func TestNewIncarnationOutlivesLaggingLog(t *testing.T) {
	tc := newTestCluster(t)
	// A grace long enough that the partition outlasts raft's 5.12 s step.
	startThreeWith(tc, func(c *cluster.Config) { c.OrphanGrace = 5 * time.Second })
	f := tc.follower()
	sid := f.open(t, 4150)
	f.register(t, sid, "t", "c")
	tc.waitProducers("t", "nsqd:4150", "n1", "n2", "n3")

	others := tc.cutOffPastLease(f, "t") // the grace passed: about 6.5 s cut off

	healedAt := tc.leader().node.LastIndexForTest()
	tc.reconnect(f.id)
	// The leader answers the node's old batches as stale: it opens its
	// next incarnation, and the nsqd reconnects.
	sid2 := f.reopen(t, 4150, sid)
	f.register(t, sid2, "t", "c")
	tc.waitProducers("t", "nsqd:4150", others...)
	// The node's own copy catches up once raft sends it entries again; by
	// then the new incarnation has lived well past its lease timeout.
	tc.waitProducers("t", "nsqd:4150", f.id)
	l := tc.leader()
	if o, ok := l.node.Registry().Owner(f.id); !ok || o.Expired || o.Incarnation != sid2.Incarnation {
		t.Fatalf("the leader's record of %s: %+v; want incarnation %d, live", f.id, o, sid2.Incarnation)
	}
	// One incarnation opened since the heal, and none orphaned.
	log, err := l.node.LogCommandsForTest(healedAt)
	if err != nil {
		t.Fatal(err)
	}
	opens, orphaned := 0, 0
	for _, c := range log {
		switch {
		case c.Session.Owner != f.id:
		case c.Op == fsm.OpOpenIncarnation:
			opens++
		case c.Op == fsm.OpOrphanLease:
			orphaned++
		}
	}
	if opens != 1 || orphaned != 0 {
		t.Fatalf("since the heal the log opened %d incarnations of %s and orphaned %d; want 1 and 0", opens, f.id, orphaned)
	}
	tc.waitProducers("t", "nsqd:4150", "n1", "n2", "n3")
}

// A drained node's sessions are orphaned, not dropped: the nsqd re-dials
// another node and registers again; once that session is settled (its
// first PING replicated) it supersedes the orphan long before the grace.
func TestOrphanSupersededByReregistration(t *testing.T) {
	tc := newTestCluster(t)
	startThreeWith(tc, func(c *cluster.Config) { c.OrphanGrace = time.Minute })
	a, b := tc.follower(), tc.leader()
	sa := a.open(t, 4150)
	a.register(t, sa, "t", "c")
	tc.waitProducers("t", "nsqd:4150", "n1", "n2", "n3")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a.node.StartDrain()
	if err := a.node.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() error {
		if d := tc.debug(b.id, "topic:t:"); len(d) != 1 || !d[0].Orphaned {
			return fmt.Errorf("%+v, want the drained node's session orphaned", d)
		}
		return nil
	})
	tc.waitProducers("t", "nsqd:4150", b.id) // no gap: still listed

	// The nsqd re-dials b: IDENTIFY, REGISTERs, and 15s later its first PING.
	sb := b.open(t, 4150)
	b.register(t, sb, "t", "c")
	if n := len(tc.debug(b.id, "topic:t:")); n != 2 {
		waitFor(t, 5*time.Second, func() error {
			if n := len(tc.debug(b.id, "topic:t:")); n != 2 {
				return fmt.Errorf("%d records, want the orphan and the new session", n)
			}
			return nil
		})
	}
	if err := b.node.Ping(sb); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() error {
		d := tc.debug(b.id, "topic:t:")
		if len(d) != 1 || d[0].Orphaned || d[0].Session != sb {
			return fmt.Errorf("%+v, want only the new session: the settled session supersedes the orphan", d)
		}
		return nil
	})
	tc.waitProducers("t", "nsqd:4150", b.id)
}

// A connection that closes while its node is healthy is the nsqd going
// away: removed at once, with any orphan of the same nsqd.
func TestHealthyCloseRemovesAtOnce(t *testing.T) {
	tc := newTestCluster(t)
	tc.startThree()
	f := tc.follower()
	sid := f.open(t, 4150)
	f.register(t, sid, "t", "")
	tc.waitProducers("t", "nsqd:4150", "n1", "n2", "n3")
	f.node.CloseSession(sid)
	tc.waitProducers("t", "", "n1", "n2", "n3")
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

// A leader whose host vanishes (its streams end; a dial to it hangs, as a
// SYN to an address nobody answers does until ARP gives up, about 3 s) must
// not hold a read on a survivor until the read's deadline: the question
// moves to the next leader as soon as the survivor sees the change. Found by
// the compose test that SIGKILLs the leader's container: the survivors'
// freshness loop asked the dead leader and waited all of -max-staleness, so
// the new leader refused bounded reads for a moment.
func TestLinearizableReadMovesOnWhenTheLeaderVanishes(t *testing.T) {
	tc := newTestCluster(t)
	tc.startThree()
	old, f := tc.leader(), tc.follower()
	ctx := context.Background()
	if err := f.node.ReadBarrier(ctx, wire.Linearizable); err != nil {
		t.Fatalf("linearizable read on a healthy follower: %v", err)
	}
	tc.vanish(old.id)
	// Asked at once, while the follower still takes old for the leader.
	// Before the fix this waited for the dial until WriteTimeout and failed.
	if err := f.node.ReadBarrier(ctx, wire.Linearizable); err != nil {
		t.Fatalf("linearizable read on a survivor after the leader vanished: %v", err)
	}
	if l := f.node.ReadState().LeaderID; l == old.id || l == "" {
		t.Fatalf("the read succeeded but the survivor's leader is %q", l)
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
			st, err := tc.node(id).node.Status(ctx, false)
			if err != nil {
				return err
			}
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

func TestDrainOrphansSessionsWithOneCommand(t *testing.T) {
	tc := newTestCluster(t)
	// Renewals far apart, so the log growth below is the drain's own.
	startThreeWith(tc, func(c *cluster.Config) { c.LeaseRenewInterval = 5 * time.Second; c.LeaseTimeout = 20 * time.Second })
	f := tc.follower()
	var ids []fsm.SessionID
	for port := 4150; port < 4160; port += 2 {
		sid := f.open(t, port)
		f.register(t, sid, "t", "")
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
	if d := f.node.Registry().Debug()["topic:t:"]; len(d) != 5 || d[0].Orphaned {
		t.Fatalf("%d sessions left before Drain (orphaned: %v), want 5 live: closes were queued one by one", len(d), len(d) > 0 && d[0].Orphaned)
	}
	before := f.node.Registry().AppliedIndex()
	if err := f.node.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if grew, err := f.node.CommandsForTest(before, f.node.Registry().AppliedIndex()); err != nil || grew != 1 {
		t.Errorf("drain took %d commands (%v), want one", grew, err)
	}
	// One command orphaned all five: still listed everywhere, as orphans.
	for _, id := range []string{"n1", "n2", "n3"} {
		waitFor(t, 5*time.Second, func() error {
			d := tc.debug(id, "topic:t:")
			for _, p := range d {
				if !p.Orphaned {
					return fmt.Errorf("%s: %+v is not orphaned", id, p)
				}
			}
			if len(d) != 5 {
				return fmt.Errorf("%s: %d records, want 5 orphans", id, len(d))
			}
			return nil
		})
	}
	// The grace passes: the leader removes them.
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
	local, err := f.node.Status(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	if len(local.Members) != 3 {
		t.Fatalf("local status lists %d members, want 3", len(local.Members))
	}
	for _, m := range local.Members {
		if m.ID != f.id && m.Lag != nil {
			t.Errorf("local status: member %s has lag %v", m.ID, *m.Lag)
		}
	}
}

// A follower learns that an entry committed from the leader's next append.
// With nothing more to append, hashicorp/raft sends that only after
// CommitTimeout; the leader's nudge (nudge.go) sends it at once, so the last
// registration of a burst reaches every node's registry without that wait.
func TestFollowersApplyTheLastWriteWithoutWaitingForCommitTimeout(t *testing.T) {
	tc := newTestCluster(t)
	// A commit timeout far beyond the wait below, and renewals far apart
	// (a renewal is an append that would carry the commit index too).
	startThreeWith(tc, func(c *cluster.Config) {
		c.CommitTimeout = time.Minute
		c.LeaseRenewInterval = 5 * time.Second
		c.LeaseTimeout = 20 * time.Second
	})
	for i, n := range []*testNode{tc.leader(), tc.follower()} {
		sid := n.open(t, 4150+2*i)
		topic := fmt.Sprintf("last-%d", i)
		n.register(t, sid, topic, "")
		want := fmt.Sprintf("nsqd:%d", 4150+2*i)
		waitFor(t, 3*time.Second, func() error {
			for _, id := range []string{"n1", "n2", "n3"} {
				if got := tc.producers(id, topic); len(got) != 1 || got[0] != want {
					return fmt.Errorf("%s: /lookup %s = %q, want [%s]", id, topic, got, want)
				}
			}
			return nil
		})
	}
}
