package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/raftlookupd/raftlookupd/cluster"
	"github.com/raftlookupd/raftlookupd/fsm"
	"github.com/raftlookupd/raftlookupd/wire"
)

// After a leadership transfer the new leader's commit index ends with its
// no-op entry, which never reaches the state machine. A linearizable read
// must not wait for the next command to move the applied index (with a 10s
// lease renewal, nothing else writes for seconds).
func TestLinearizableReadRightAfterTransfer(t *testing.T) {
	tc := newTestCluster(t)
	startThreeWith(tc, func(c *cluster.Config) {
		c.LeaseRenewInterval = 10 * time.Second
		c.LeaseTimeout = 60 * time.Second
	})
	old := tc.leader()
	if err := old.node.TransferLeadership(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() error {
		if l := tc.leader(); l.id == old.id {
			return errors.New("leadership not transferred yet")
		}
		return nil
	})
	for _, n := range tc.all() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		start := time.Now()
		err := n.node.ReadBarrier(ctx, wire.Linearizable)
		cancel()
		if err != nil {
			t.Fatalf("linearizable read on %s after the transfer: %v", n.id, err)
		}
		t.Logf("linearizable read on %s after the transfer: %v", n.id, time.Since(start))
	}
	waitFor(t, 2*time.Second, func() error {
		for _, n := range tc.all() {
			if !n.node.Ready() {
				return fmt.Errorf("%s not ready after the transfer", n.id)
			}
		}
		return nil
	})
}

// A follower cut off while the leader commits, then back: heartbeats reach
// it again before its state catches up. No bounded read it answers may lack
// a write committed more than MaxStaleness before the read began.
func TestBoundedReadIsBoundedAfterPartition(t *testing.T) {
	tc := newTestCluster(t)
	startThreeWith(tc, func(c *cluster.Config) {
		c.MaxStaleness = 500 * time.Millisecond
		c.LeaseTimeout = 30 * time.Second
	})
	l := tc.leader()
	f := tc.follower()
	tc.partition(f.id)
	ctx := context.Background()
	committed := map[string]time.Time{}
	for i := range 300 {
		name := fmt.Sprintf("w%02d", i)
		if err := l.node.Propose(ctx, fsm.Command{Op: fsm.OpCreateTopic, Topic: name}); err != nil {
			t.Fatal(err)
		}
		committed[name] = time.Now()
	}
	// Cut off, the follower soon refuses bounded reads: its state is older
	// than MaxStaleness.
	waitFor(t, 5*time.Second, func() error {
		if f.node.ReadBarrier(ctx, wire.Bounded) == nil {
			return errors.New("a cut-off follower still serves bounded reads")
		}
		return nil
	})
	tc.reconnect(f.id)
	deadline := time.Now().Add(3 * time.Second)
	answered, refused := 0, 0
	for time.Now().Before(deadline) {
		began := time.Now()
		if err := f.node.ReadBarrier(ctx, wire.Bounded); err != nil {
			refused++
			continue
		}
		answered++
		have := map[string]bool{}
		for _, tp := range f.node.Registry().Topics() {
			have[tp] = true
		}
		for name, at := range committed {
			if began.Sub(at) > 500*time.Millisecond && !have[name] {
				t.Fatalf("a bounded read at %v lacks %s, committed %v before it", began, name, began.Sub(at))
			}
		}
	}
	if answered == 0 {
		t.Fatal("the follower never served a bounded read after it caught up")
	}
	t.Logf("after the partition healed: %d bounded reads answered, %d refused", answered, refused)
}

// A node removed from the configuration cannot commit: it stops
// acknowledging nsqd (new sessions refused) and reports not ready, and the
// others keep working. Leaving the leader through a follower hands
// leadership over first and answers once it is out.
func TestRemovedNodeStopsAcknowledging(t *testing.T) {
	tc := newTestCluster(t)
	tc.startThree()
	l := tc.leader()
	f := tc.follower()
	sid := l.open(t, 4150)
	l.register(t, sid, "t", "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.node.Leave(ctx, l.id); err != nil {
		t.Fatalf("leave of the leader through a follower: %v", err)
	}
	st, err := f.node.Status(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Members) != 2 {
		t.Fatalf("%d members after the leader left, want 2", len(st.Members))
	}
	for _, m := range st.Members {
		if m.ID == l.id {
			t.Fatalf("%s still a member", l.id)
		}
	}
	nl := tc.leader()
	if nl.id == l.id {
		t.Fatal("the removed node still leads")
	}
	if err := nl.node.Propose(ctx, fsm.Command{Op: fsm.OpCreateTopic, Topic: "after"}); err != nil {
		t.Fatalf("write after the leader left: %v", err)
	}
	// Told before it was removed, the node acknowledges nothing from the
	// moment the leave answered: nothing it says OK to can be lost.
	if _, err := l.node.OpenSession(peer(4152)); !errors.Is(err, wire.ErrNotServing) {
		t.Fatalf("removed node opened a session: %v", err)
	}
	if err := l.node.Register(sid, "u", ""); !errors.Is(err, wire.ErrNotServing) {
		t.Fatalf("removed node acknowledged a REGISTER: %v", err)
	}
	if l.node.Ready() {
		t.Fatal("removed node reports ready")
	}
	// What it acknowledged before is committed: its session's topic.
	tc.waitProducers("t", "nsqd:4150", nl.id)
	select {
	case <-l.expired:
	case <-time.After(5 * time.Second):
		t.Fatal("the removed node did not close its clients")
	}
	// A repeated leave succeeds and changes nothing, so scripts can retry.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	if err := f.node.Leave(ctx2, l.id); err != nil {
		t.Fatalf("repeated leave through a member: %v", err)
	}
}

// The cluster-wide caps refuse new sessions, registrations and HTTP creates
// on every node, with wire.ErrLimit, once the registry holds them.
func TestClusterCaps(t *testing.T) {
	tc := newTestCluster(t)
	startThreeWith(tc, func(c *cluster.Config) { c.MaxSessions = 2; c.MaxRegistrations = 4 })
	l, f := tc.leader(), tc.follower()
	a := l.open(t, 4150)
	b := f.open(t, 4152)
	waitFor(t, 5*time.Second, func() error {
		if _, err := f.node.OpenSession(peer(4154)); !errors.Is(err, wire.ErrLimit) {
			return fmt.Errorf("third session: %v, want wire.ErrLimit", err)
		}
		return nil
	})
	l.register(t, a, "t1", "c1") // topic key, channel key, two producer records
	waitFor(t, 5*time.Second, func() error {
		if err := f.node.Register(b, "t2", ""); !errors.Is(err, wire.ErrLimit) {
			return fmt.Errorf("register beyond the cap: %v, want wire.ErrLimit", err)
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.node.Propose(ctx, fsm.Command{Op: fsm.OpCreateTopic, Topic: "t3"}); !errors.Is(err, wire.ErrLimit) {
		t.Fatalf("HTTP create beyond the cap: %v, want wire.ErrLimit", err)
	}
	// Deleting is always allowed, and frees room.
	if err := f.node.Propose(ctx, fsm.Command{Op: fsm.OpDeleteTopic, Topic: "t1"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() error {
		return f.node.Propose(ctx, fsm.Command{Op: fsm.OpCreateTopic, Topic: "t3"})
	})
}

// Regression (found by e2e/chaos, seed 10080): an HTTP mutation queued on a
// node whose incarnation the cluster ended meanwhile went out in a stale
// batch, did not apply, and was answered 500. It is queued again under the
// next incarnation and applies.
func TestProposeSurvivesIncarnationEnd(t *testing.T) {
	tc := newTestCluster(t)
	tc.startThree()
	f := tc.follower()
	tc.partition(f.id)
	// Queued while f is cut off: its batch is in flight, under f's
	// incarnation, when the leader ends that incarnation.
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		done <- f.node.Propose(ctx, fsm.Command{Op: fsm.OpCreateTopic, Topic: "through_the_gap"})
	}()
	// Cut off past the lease timeout: the leader orphans f's incarnation.
	others := othersThan(f.id)
	waitFor(t, 10*time.Second, func() error {
		o, ok := tc.node(others[0]).node.Registry().Owner(f.id)
		if !ok || !o.Expired {
			return fmt.Errorf("%s's incarnation not ended yet: %+v", f.id, o)
		}
		return nil
	})
	tc.reconnect(f.id)
	if err := <-done; err != nil {
		t.Fatalf("HTTP mutation across the end of its node's incarnation: %v", err)
	}
	for _, id := range []string{"n1", "n2", "n3"} {
		waitFor(t, 5*time.Second, func() error {
			for _, tp := range tc.node(id).node.Registry().Topics() {
				if tp == "through_the_gap" {
					return nil
				}
			}
			return fmt.Errorf("%s lacks the topic", id)
		})
	}
}

// A node the leader told it is being removed acknowledges nothing until the
// removal reaches it, however often it re-checks whether it may serve
// (hashicorp/raft's GetConfiguration().Index() is 0, and a retirement
// recorded at 0 read as none: the next check served again, and
// TestRemovedNodeStopsAcknowledging failed when that check came first).
func TestRetiredNodeStaysRetiredUntilRemoved(t *testing.T) {
	tc := newTestCluster(t)
	tc.startThree()
	l := tc.leader()
	f := tc.follower()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.node.RetireForTest(ctx, l.node.LastIndexForTest()); err != nil {
		t.Fatal(err)
	}
	f.node.CheckServingForTest()
	if _, err := f.node.OpenSession(peer(4160)); !errors.Is(err, wire.ErrNotServing) {
		t.Fatalf("a retired node opened a session after its serving check: %v", err)
	}
}
