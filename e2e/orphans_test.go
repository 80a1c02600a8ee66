package e2e

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// A lookupd's own restart never hides a live nsqd (docs/COMPATIBILITY.md,
// orphaned sessions). These run a real nsqd.

// TestRestartOfOnlyLookupdKeepsNSQDListed: nsqd registered with one node
// only. SIGTERM that node and start it again at once: over the 25 s that
// follow, no bounded lookup on the other nodes lacks the nsqd (its sessions
// are orphaned, not dropped), and once nsqd re-dialed (its next heartbeat)
// every node lists it, then through its new session alone.
func TestRestartOfOnlyLookupdKeepsNSQDListed(t *testing.T) {
	c := StartCluster(t, 3)
	owner := c.Followers(failoverTimeout)[0]
	others := haOthers(c.Nodes, owner)
	d := StartNSQD(t, owner.TCPAddr())
	id := haNSQDIdentity(d)
	const topic = "orphan_topic"
	mustPost(t, d.HTTPAddr, "/topic/create?topic="+topic, nil)
	for _, n := range c.Nodes {
		waitFor(t, registerTimeout, func() error { return haListedOnce(n.HTTPAddr(), id, topic, "", true) })
	}

	poll := haPoll(others, nil, func(n *Node) error { return haListedOnce(n.HTTPAddr(), id, topic, "", true) })
	defer poll.Stop()
	down := time.Now()
	owner.Term()
	owner.Restart()
	owner.WaitReady(restartTimeout)
	t.Logf("%s SIGTERM -> ready again after %dms", owner.ID, haMillis(time.Since(down)))
	// nsqd re-dials on its next heartbeat (15 s) and registers again.
	waitFor(t, 2*haNSQDPingInterval+5*time.Second, func() error {
		owned, err := haMetric(owner.HTTPAddr(), "raftlookupd_owned_sessions")
		if err == nil && owned != 1 {
			err = fmt.Errorf("%s owns %v sessions, want nsqd's", owner, owned)
		}
		return err
	})
	redialed := time.Since(down)
	if rest := 25*time.Second - time.Since(down); rest > 0 {
		if err := holdsFor(rest, poll.Err); err != nil {
			t.Fatal(err)
		}
	}
	poll.Stop()
	if err := poll.Err(); err != nil {
		t.Fatalf("lookups on the other nodes lacked the live nsqd after its lookupd restarted: %v", err)
	}
	if n := poll.Passed(others[0].ID, down, down.Add(25*time.Second)); n == 0 {
		t.Fatalf("no lookup on %s passed in the 25 s after the restart: the check is vacuous", others[0].ID)
	}
	// Its first PING on the new session (15 s after it re-dialed) settles
	// it, and the orphan goes: one session left everywhere.
	waitFor(t, 2*haNSQDPingInterval+5*time.Second, haSessions(c.Nodes, 1, -1))
	t.Logf("lookupd restart: 0 lookups lacked the nsqd over 25 s (%s); nsqd re-registered %dms after SIGTERM, orphan superseded %dms after",
		poll.Summary(), haMillis(redialed), haMillis(time.Since(down)))
}

// TestRollingRestartAtOperatorPace: nsqd registered with all three nodes;
// each node SIGTERMed and restarted as soon as the previous one is ready,
// without waiting for nsqd to re-dial. No lookup on a node that is up fails.
func TestRollingRestartAtOperatorPace(t *testing.T) {
	c := StartCluster(t, 3)
	d := StartNSQD(t, haTCPAddrs(c.Nodes)...)
	id := haNSQDIdentity(d)
	const topic = "orphan_roll"
	mustPost(t, d.HTTPAddr, "/topic/create?topic="+topic, nil)
	for _, n := range c.Nodes {
		waitFor(t, registerTimeout, func() error { return haListedOnce(n.HTTPAddr(), id, topic, "", true) })
	}
	gates := map[*Node]*haGate{}
	for _, n := range c.Nodes {
		gates[n] = &haGate{up: true}
	}
	poll := haPoll(c.Nodes, gates, func(n *Node) error { return haListedOnce(n.HTTPAddr(), id, topic, "", true) })
	defer poll.Stop()
	start := time.Now()
	for _, n := range c.Nodes {
		gates[n].set(false)
		n.Term()
		n.Restart()
		n.WaitReady(restartTimeout)
		gates[n].set(true)
	}
	rolled := time.Since(start)
	// Keep polling through nsqd's re-dials.
	if err := holdsFor(2*haNSQDPingInterval, poll.Err); err != nil {
		t.Fatal(err)
	}
	poll.Stop()
	if err := poll.Err(); err != nil {
		t.Fatalf("failed lookups during a rolling restart at operator pace: %v", err)
	}
	for _, n := range c.Nodes {
		if poll.Passed(n.ID, start, time.Now()) == 0 {
			t.Fatalf("no lookup on %s passed: the check is vacuous", n.ID)
		}
	}
	t.Logf("rolling restart of 3 nodes in %dms: %s", haMillis(rolled), poll.Summary())
}

// TestLeaveLeaderThroughFollower: right after the cluster formed, `leave`
// of the leader sent to a follower exits 0; two members remain with a
// leader among them and writes work; the removed node acknowledges no nsqd
// from then on (it was told before its removal), so nothing it says OK to
// is lost with it.
func TestLeaveLeaderThroughFollower(t *testing.T) {
	c := StartCluster(t, 3)
	leader := c.Leader(failoverTimeout)
	follower := haOthers(c.Nodes, leader)[0]
	survivors := haOthers(c.Nodes, leader)
	opsMustCtl(t, nil, "-addr", follower.HTTPAddr(), "leave", leader.ID)
	opsWaitMembers(t, "", survivors, opsVoters(survivors...))
	waitFor(t, failoverTimeout, func() error {
		id, err := haLeaderOf(survivors)
		if err == nil && id == leader.ID {
			err = fmt.Errorf("%s still leads after leaving", leader)
		}
		return err
	})
	mustPost(t, follower.HTTPAddr(), "/topic/create?topic=after_leave", nil)
	for _, n := range survivors {
		waitFor(t, registerTimeout, opsHasTopics(n, "after_leave"))
	}
	if p, err := haTryDialProducer(t, leader.TCPAddr(), haIdentity{"zombie.example", 7700, 7701}); err == nil {
		reply, _, rerr := p.roundTrip("REGISTER zombie_topic\n")
		t.Fatalf("the removed node took a session and answered REGISTER with %q (%v)", reply, rerr)
	}
	// Leaving again is not an error for scripts.
	opsMustCtl(t, nil, "-addr", follower.HTTPAddr(), "leave", leader.ID)
}

// TestBoundedReadsAfterSIGSTOP: a follower frozen while the leader commits
// 300 writes hears heartbeats again at once when it resumes, before its
// state catches up. No bounded read it answers lacks a write committed more
// than -max-staleness before the read began.
func TestBoundedReadsAfterSIGSTOP(t *testing.T) {
	for _, role := range []string{"follower", "leader"} {
		t.Run(role, func(t *testing.T) { boundedAfterSIGSTOP(t, role == "leader") })
	}
}

// boundedAfterSIGSTOP freezes a follower, or the leader (which, resumed,
// still calls itself leader for a moment: found by e2e/chaos), while the
// cluster commits writes.
func boundedAfterSIGSTOP(t *testing.T, leader bool) {
	const maxStaleness = time.Second
	c := StartCluster(t, 3, "-max-staleness", maxStaleness.String(), "-lease-timeout", "30s")
	l := c.Leader(failoverTimeout)
	f := haOthers(c.Nodes, l)[0]
	writer := l
	if leader {
		f, writer = l, haOthers(c.Nodes, l)[0]
	}
	f.Stop()
	stopped := time.Now()
	committed := map[string]time.Time{}
	// At least 300 writes, and for longer than twice the staleness bound,
	// so the frozen node's state is surely too old when it resumes. With
	// the leader frozen, the first writes wait for a new one.
	for i := 0; i < 300 || time.Since(stopped) < 2*maxStaleness; i++ {
		name := fmt.Sprintf("stopped_%04d", i)
		res, err := httpDo("POST", "http://"+writer.HTTPAddr()+"/topic/create?topic="+name, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != 200 {
			continue // no leader yet: not acknowledged
		}
		committed[name] = time.Now()
	}
	f.Cont()
	answered, refused := 0, 0
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		began := time.Now()
		res, err := haGet(f.HTTPAddr(), haWithConsistency("/topics", "bounded"))
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != 200 {
			refused++
			continue
		}
		answered++
		var doc topicsDoc
		if err := json.Unmarshal(res.Body, &doc); err != nil {
			t.Fatal(err)
		}
		have := map[string]bool{}
		for _, tp := range doc.Topics {
			have[tp] = true
		}
		for name, at := range committed {
			if began.Sub(at) > maxStaleness && !have[name] {
				t.Fatalf("a bounded read begun %v after %s was committed lacks it", began.Sub(at), name)
			}
		}
	}
	if answered == 0 {
		t.Fatal("the resumed node never answered a bounded read")
	}
	if len(committed) < 300 {
		t.Fatalf("only %d writes acknowledged", len(committed))
	}
	t.Logf("resumed node: %d bounded reads answered, %d refused (503) while catching up", answered, refused)
}
