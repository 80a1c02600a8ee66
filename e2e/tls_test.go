package e2e

// Mutual TLS on the Raft port, end to end: a three-node cluster with
// -tls-cert, -tls-key and -tls-ca keeps its high-availability behaviour; a
// node with a certificate from another CA, or without TLS, can neither
// join, nor be replicated to, nor forward; certificates rotate on SIGHUP
// (CA bundle first, then node certificates) without a restart. Every CA and
// certificate is made by the test (tls_helpers_test.go).

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

// tlsCluster starts a three-node cluster whose nodes each have a
// certificate from ca and trust ca only.
func tlsCluster(t *testing.T, ca *testCA, extra ...string) (*Cluster, map[string]tlsFiles) {
	t.Helper()
	base := t.TempDir()
	files := map[string]tlsFiles{}
	c := startClusterEach(t, 3, func(id string) []string {
		f := writeTLSFiles(t, filepath.Join(base, id), ca.issue(t, id), ca)
		files[id] = f
		return f.args()
	}, extra...)
	return c, files
}

// checkRaftPortTLS: the RPC answers a client with a certificate from ca,
// and gives no answer at all to a client without TLS or with a
// certificate from another CA.
func checkRaftPortTLS(t *testing.T, c *Cluster, ca, foreign *testCA) {
	t.Helper()
	good, bad := ca.issue(t, "operator"), foreign.issue(t, "intruder")
	for _, n := range c.Nodes {
		if res := rpcCall(n.RaftAddr(), nil, good.clientConfig(t), "GET", "/rpc/status", nil); res.Err != nil || res.Status != http.StatusOK {
			t.Errorf("GET /rpc/status on %s with a certificate from the cluster's CA: %s; want 200", n.ID, res)
		}
		if res := rpcCall(n.RaftAddr(), nil, nil, "GET", "/rpc/status", nil); res.Err == nil {
			t.Errorf("GET /rpc/status on %s without TLS was answered: %s; want the connection refused", n.ID, res)
		}
		if res := rpcCall(n.RaftAddr(), nil, bad.clientConfig(t), "POST", "/rpc/apply", forgedCreate("tls_intruder")); res.Err == nil {
			t.Errorf("POST /rpc/apply on %s with a certificate from another CA was answered: %s; want the handshake refused", n.ID, res)
		}
	}
}

// TestTLSClusterHA: with TLS, a leader SIGKILLed while bounded lookups run
// on both survivors: none fails, a new leader is elected, writes go on
// through the survivors, and the killed node restarts and catches up.
func TestTLSClusterHA(t *testing.T) {
	ca, foreign := newTestCA(t, "cluster CA"), newTestCA(t, "other CA")
	c, _ := tlsCluster(t, ca, "-lease-timeout", "3s", "-lease-renew-interval", "500ms")
	checkRaftPortTLS(t, c, ca, foreign)

	d := StartNSQD(t, haTCPAddrs(c.Nodes)...)
	id := haNSQDIdentity(d)
	const topic, after = "tls_failover", "tls_after_kill"
	mustPost(t, d.HTTPAddr, "/topic/create?topic="+topic, nil)
	for _, n := range c.Nodes {
		waitFor(t, registerTimeout, func() error { return haListedOnce(n.HTTPAddr(), id, topic, "", true) })
	}
	waitFor(t, registerTimeout, haSessions(c.Nodes, 3, 1))

	leader := c.Leader(failoverTimeout)
	survivors := haOthers(c.Nodes, leader)
	poll := haPoll(survivors, nil, func(n *Node) error { return haListedOnce(n.HTTPAddr(), id, topic, "", false) })
	defer poll.Stop()
	waitFor(t, registerTimeout, func() error {
		for _, n := range survivors {
			if poll.Passed(n.ID, poll.started, time.Now()) == 0 {
				return fmt.Errorf("no lookup on %s passed yet", n)
			}
		}
		return poll.Err()
	})

	leader.Kill()
	killed := time.Now()
	mustPost(t, d.HTTPAddr, "/topic/create?topic="+after, nil)
	var elected time.Time
	waitFor(t, failoverTimeout, func() error {
		l, err := haLeaderOf(survivors)
		if err != nil {
			return err
		}
		if l == leader.ID {
			return fmt.Errorf("survivors still follow the killed %s", l)
		}
		if elected.IsZero() {
			elected = time.Now()
		}
		for _, n := range survivors {
			if err := haListedOnce(n.HTTPAddr(), id, after, "", false); err != nil {
				return err
			}
		}
		return nil
	})
	visible := time.Now()
	// HTTP writes through each survivor (one of them forwards over TLS).
	for _, n := range survivors {
		waitFor(t, failoverTimeout, func() error { return postOK(n, "/topic/create?topic=tls_w_"+n.ID) })
	}
	if err := holdsFor(300*time.Millisecond, poll.Err); err != nil {
		t.Fatalf("bounded lookups on the survivors failed during the failover (%s): %v", poll.Summary(), err)
	}
	poll.Stop()
	if err := poll.Err(); err != nil {
		t.Fatalf("bounded lookups on the survivors failed (%s): %v", poll.Summary(), err)
	}
	t.Logf("TLS: leader %s SIGKILL -> new leader known by both survivors %dms, nsqd's new topic on both %dms; %s",
		leader.ID, haMillis(elected.Sub(killed)), haMillis(visible.Sub(killed)), poll.Summary())

	leader.Restart()
	restarted := time.Now()
	c.WaitReady(restartTimeout, c.Nodes...)
	for _, n := range survivors {
		waitFor(t, registerTimeout, hasTopic(leader, "tls_w_"+n.ID))
	}
	waitFor(t, failoverTimeout, func() error { return postOK(leader, "/topic/create?topic=tls_w_restarted") })
	for _, n := range c.Nodes {
		waitFor(t, registerTimeout, hasTopic(n, "tls_w_restarted"))
		waitFor(t, registerTimeout, hasTopic(n, after))
	}
	t.Logf("TLS: %s restarted, caught up and took a write %dms after its restart", leader.ID, haMillis(time.Since(restarted)))
}

// postOK POSTs to a node and wants 200.
func postOK(n *Node, pathq string) error {
	res, err := httpDo("POST", "http://"+n.HTTPAddr()+pathq, nil, nil)
	if err != nil {
		return err
	}
	if res.Status != http.StatusOK {
		return fmt.Errorf("POST %s on %s: %s", pathq, n.ID, httpSummary(res))
	}
	return nil
}

// TestTLSForeignNodeRefused: a node whose certificate comes from another CA
// (it trusts the cluster's CA) and a node without TLS ask to join: they
// never become members. Added by an operator anyway (as non-voters), they
// receive nothing: the leader cannot replicate to them. A write sent to
// them is never forwarded. The cluster's registry and members are as
// before.
func TestTLSForeignNodeRefused(t *testing.T) {
	ca, foreign := newTestCA(t, "cluster CA"), newTestCA(t, "other CA")
	c, _ := tlsCluster(t, ca)
	leader := c.Leader(failoverTimeout)
	mustPost(t, leader.HTTPAddr(), "/channel/create?topic=tls_before&channel=ch", nil)
	for _, n := range c.Nodes {
		waitFor(t, registerTimeout, hasTopic(n, "tls_before"))
	}
	handshakes := func() int {
		return opsLogCount(t, c.Nodes, "refused a raft port connection")
	}
	before := handshakes()

	join := "-join=" + c.Nodes[0].RaftAddr() + "," + c.Nodes[1].RaftAddr()
	fdir := t.TempDir()
	wrongCA := writeTLSFiles(t, fdir, foreign.issue(t, "n4"), ca)
	n4 := opsStartNode(t, "n4", nil, append(wrongCA.args(), join, "-write-timeout", "1s")...)
	n5 := opsStartNode(t, "n5", nil, join, "-write-timeout", "1s")
	outsiders := []*Node{n4, n5}

	// Both try (the members log refused connections) and keep failing.
	waitFor(t, registerTimeout, func() error {
		if got := handshakes() - before; got < 2 {
			return fmt.Errorf("%d refused raft port connections logged since the outsiders started", got)
		}
		return nil
	})
	for _, n := range outsiders {
		waitFor(t, registerTimeout, func() error {
			if opsLogCount(t, []*Node{n}, "join attempt failed") == 0 {
				return fmt.Errorf("%s logged no failed join attempt", n)
			}
			return nil
		})
	}
	notMembers := func() error {
		for _, n := range c.Nodes {
			st, err := n.Status()
			if err != nil {
				return err
			}
			if err := opsMembersAre(st, opsVoters(c.Nodes...)); err != nil {
				return err
			}
		}
		for _, n := range outsiders {
			if err := n.exitError(); err != nil {
				return err
			}
			if err := opsReady(n, ""); err == nil {
				return fmt.Errorf("%s is ready", n)
			}
		}
		return nil
	}
	if err := holdsFor(3*time.Second, notMembers); err != nil {
		t.Fatalf("a node without a certificate from the cluster's CA: %v", err)
	}

	// A write sent to an outsider is not forwarded: it fails there and
	// never reaches the cluster.
	for _, n := range outsiders {
		res, err := httpDo("POST", "http://"+n.HTTPAddr()+"/topic/create?topic=tls_forwarded_"+n.ID, nil, nil)
		if err == nil && res.Status == http.StatusOK {
			t.Errorf("POST /topic/create on %s answered 200", n)
		}
	}

	// An operator adds both anyway, as non-voters (so the quorum does not
	// change): the configuration lists them, the leader cannot replicate
	// to them, they stay empty.
	for _, n := range outsiders {
		body, _ := json.Marshal(map[string]any{"id": n.ID, "raft_address": n.RaftAddr(), "voter": false})
		mustPost(t, leader.HTTPAddr(), "/cluster/join", body)
	}
	refusedAtAdd := handshakes()
	waitFor(t, registerTimeout, func() error {
		if handshakes() == refusedAtAdd {
			return fmt.Errorf("no refused raft port connection since the outsiders were added")
		}
		return nil
	})
	mustPost(t, leader.HTTPAddr(), "/topic/create?topic=tls_while_added", nil)
	for _, n := range c.Nodes {
		waitFor(t, registerTimeout, hasTopic(n, "tls_while_added"))
	}
	if err := holdsFor(3*time.Second, func() error {
		for _, n := range outsiders {
			if err := n.exitError(); err != nil {
				return err
			}
			topics, err := opsTopics(n, "/topics?consistency=stale")
			if err != nil {
				return err
			}
			if len(topics) != 0 {
				return fmt.Errorf("the leader replicated to %s: it lists %v", n, topics)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, n := range outsiders {
		mustPost(t, leader.HTTPAddr(), "/cluster/leave", []byte(`{"id":"`+n.ID+`"}`))
	}
	opsWaitMembers(t, "", c.Nodes, opsVoters(c.Nodes...))

	// The cluster's registry: what it was asked for, nothing from outside.
	want := []string{"tls_before", "tls_while_added"}
	for _, n := range c.Nodes {
		topics, err := opsTopics(n, "/topics")
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(topics)
		if !slices.Equal(topics, want) {
			t.Errorf("%s lists topics %v, want %v", n, topics, want)
		}
	}
	checkRaftPortTLS(t, c, ca, foreign)
	t.Logf("%d raft port connections refused in all", handshakes()-before)
}

// TestTLSRotation: every node gets a CA bundle with the old and a new CA
// (SIGHUP), then a certificate from the new CA (SIGHUP), at the same paths.
// Nothing restarts; the Raft ports present the new certificates, the
// cluster keeps taking writes and surviving a leader kill, and a node whose
// certificate is valid under the new CA only, and which trusts the new CA
// only, joins.
func TestTLSRotation(t *testing.T) {
	oldCA, newCA := newTestCA(t, "rotation CA 1"), newTestCA(t, "rotation CA 2")
	c, files := tlsCluster(t, oldCA)
	mustPost(t, c.Nodes[0].HTTPAddr(), "/topic/create?topic=rot_before", nil)
	for _, n := range c.Nodes {
		waitFor(t, registerTimeout, hasTopic(n, "rot_before"))
	}
	pids := map[string]int{}
	for _, n := range c.Nodes {
		pids[n.ID] = n.current().cmd.Process.Pid
	}

	// Step 1: trust both CAs.
	for _, n := range c.Nodes {
		files[n.ID].writeCA(t, oldCA, newCA)
	}
	sighupAll(t, c.Nodes)
	probe := newCA.issue(t, "probe")
	for _, n := range c.Nodes {
		if res := rpcCall(n.RaftAddr(), nil, probe.clientConfig(t), "GET", "/rpc/status", nil); res.Err != nil || res.Status != http.StatusOK {
			t.Fatalf("after the CA bundle reload, %s refuses a certificate from the new CA: %s", n.ID, res)
		}
	}
	writeEverywhere(t, c, "rot_bundle")

	// Step 2: node certificates from the new CA.
	for _, n := range c.Nodes {
		files[n.ID].writePair(t, newCA.issue(t, n.ID))
	}
	sighupAll(t, c.Nodes)
	for _, n := range c.Nodes {
		issuer, err := presentedIssuer(n.RaftAddr(), probe, t)
		if err != nil || issuer != newCA.name {
			t.Fatalf("%s's Raft port presents a certificate issued by %q (%v), want %q", n.ID, issuer, err, newCA.name)
		}
	}
	writeEverywhere(t, c, "rot_certs")
	for _, n := range c.Nodes {
		if pid := n.current().cmd.Process.Pid; pid != pids[n.ID] {
			t.Fatalf("%s restarted during the rotation (pid %d, was %d)", n.ID, pid, pids[n.ID])
		}
	}

	// A node that knows only the new CA joins: whoever dials it (the
	// leader replicating) must show a new certificate.
	dir := t.TempDir()
	nf := writeTLSFiles(t, dir, newCA.issue(t, "n4"), newCA)
	n4 := opsStartNode(t, "n4", nil, append(nf.args(), "-join="+c.Nodes[0].RaftAddr()+","+c.Nodes[1].RaftAddr())...)
	four := append(slices.Clone(c.Nodes), n4)
	opsWaitMembers(t, "", four, opsVoters(four...))
	waitFor(t, opsTimeout, func() error { return opsReady(n4, "") })
	for _, tp := range []string{"rot_before", "rot_bundle_n1", "rot_certs_n3"} {
		waitFor(t, registerTimeout, hasTopic(n4, tp))
	}

	// The rotated cluster survives its leader's death; four voters keep
	// a quorum of three.
	leader := c.Leader(failoverTimeout)
	leader.Kill()
	rest := haOthers(four, leader)
	waitFor(t, failoverTimeout, func() error {
		l, err := haLeaderOf(rest)
		if err != nil {
			return err
		}
		if l == leader.ID {
			return fmt.Errorf("the survivors still follow the killed %s", l)
		}
		return nil
	})
	for _, n := range rest {
		waitFor(t, failoverTimeout, func() error { return postOK(n, "/topic/create?topic=rot_after_kill_"+n.ID) })
	}
	leader.Restart()
	waitFor(t, restartTimeout, func() error { return opsReady(leader, "") })
	for _, n := range rest {
		waitFor(t, registerTimeout, hasTopic(leader, "rot_after_kill_"+n.ID))
	}
	t.Logf("rotation done without restarts; %s joined with a new-CA-only trust store; leader %s killed and restarted", n4.ID, leader.ID)
}

// sighupAll sends SIGHUP to every node and waits until each logged the
// reload of its certificates (and no failed reload).
func sighupAll(t *testing.T, nodes []*Node) {
	t.Helper()
	counts := map[string]int{}
	for _, n := range nodes {
		counts[n.ID] = opsLogCount(t, []*Node{n}, "TLS certificates reloaded")
		if err := n.current().signal(syscall.SIGHUP); err != nil {
			t.Fatalf("SIGHUP %s: %v", n, err)
		}
	}
	for _, n := range nodes {
		waitFor(t, registerTimeout, func() error {
			if err := n.exitError(); err != nil {
				return err
			}
			if opsLogCount(t, []*Node{n}, "TLS certificates reloaded") == counts[n.ID] {
				return fmt.Errorf("%s has not logged a certificate reload since SIGHUP", n)
			}
			return nil
		})
	}
	if got := opsLogCount(t, nodes, "reload failed"); got != 0 {
		t.Fatalf("%d failed reloads logged", got)
	}
}

// writeEverywhere creates prefix_ID through every node and waits until
// every node lists all of them.
func writeEverywhere(t *testing.T, c *Cluster, prefix string) {
	t.Helper()
	for _, n := range c.Nodes {
		waitFor(t, failoverTimeout, func() error { return postOK(n, "/topic/create?topic="+prefix+"_"+n.ID) })
	}
	for _, n := range c.Nodes {
		for _, w := range c.Nodes {
			waitFor(t, registerTimeout, hasTopic(n, prefix+"_"+w.ID))
		}
	}
}
