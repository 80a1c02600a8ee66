package e2e

// Node lifecycle claims of the README, each pinned against real processes:
// SIGTERM (docs/COMPATIBILITY.md#diff-sigterm), PING replication
// (#diff-ping), a node back after its lease expired (#diff-expired-node) and
// a restarted follower's bounded reads (#diff-consistency).

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// lifecycleMembers checks that a node's /cluster/status lists exactly the
// given ids, every one a voter.
func lifecycleMembers(n *Node, ids ...string) error {
	st, err := n.Status()
	if err != nil {
		return err
	}
	var got []string
	for _, m := range st.Members {
		if m.Suffrage != "Voter" {
			return fmt.Errorf("%s lists %s as %s", n, m.ID, m.Suffrage)
		}
		got = append(got, m.ID)
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(ids))
	if !slices.Equal(got, want) {
		return fmt.Errorf("%s lists members %v, want %v", n, got, want)
	}
	return nil
}

// lifecycleListed checks that /lookup?topic= on every node lists n producers.
func lifecycleListed(nodes []*Node, topic string, n int) func() error {
	return func() error {
		for _, node := range nodes {
			doc, err := lookupProducers(node.HTTPAddr(), topic)
			if err != nil {
				return fmt.Errorf("%s: %v", node, err)
			}
			if len(doc.Producers) != n {
				return fmt.Errorf("%s lists %d producers of %s, want %d", node, len(doc.Producers), topic, n)
			}
		}
		return nil
	}
}

// TestSIGTERMHandsLeadershipOver: SIGTERM on the leader orphans its sessions
// with one command (their nsqds are alive: they stay listed for the orphan
// grace, and go then, long before the lease timeout), hands leadership to
// another voter before the process exits with status 0, and leaves the node
// a member: the others keep listing it as a voter while it is down, and it
// takes its place again on restart without any join.
func TestSIGTERMHandsLeadershipOver(t *testing.T) {
	// A lease far longer than the waits below: a producer that disappears
	// in time was orphaned by the drain, not dropped by lease expiry.
	const leaseTimeout = 60 * time.Second
	const grace = 4 * time.Second
	c := StartCluster(t, 3, "-lease-timeout", leaseTimeout.String(), "-orphan-grace", grace.String())
	leader := c.Leader(failoverTimeout)
	survivors := haOthers(c.Nodes, leader)
	ids := []string{"n1", "n2", "n3"}

	const topic = "sigterm_topic"
	p := haDialProducer(t, leader.TCPAddr(), haIdentity{"sigterm.example", 7300, 7301})
	p.Register(t, topic, "")
	waitFor(t, registerTimeout, lifecycleListed(c.Nodes, topic, 1))

	// The drain stamps the orphans' deadline after the signal, so time is
	// measured from the signal: the exit may come later (it waits for
	// requests in progress).
	signalled := time.Now()
	leader.Term() // fails the test unless the process exits with status 0
	stopped := time.Since(signalled)

	// Leadership was handed over: the drain's transfer succeeded before the
	// process exited, and the survivors agree on one of themselves.
	if n := opsLogCount(t, []*Node{leader}, "leadership transferred"); n != 1 {
		t.Errorf("%s logged %d successful leadership transfers on SIGTERM, want 1", leader, n)
	}
	next := c.Leader(failoverTimeout)
	if next == leader {
		t.Fatalf("%s still leads after SIGTERM", leader)
	}

	// A lookupd's own stop never hides a live nsqd: still listed now...
	asked := time.Since(signalled)
	if err := lifecycleListed(survivors, topic, 1)(); err != nil && asked < grace {
		t.Errorf("right after SIGTERM (within the orphan grace): %v", err)
	}
	// ...and gone once the grace passed (this test's producer never
	// re-dials), far sooner than the lease timeout.
	waitFor(t, grace+10*time.Second, func() error { return lifecycleListed(survivors, topic, 0)() })
	if gone := time.Since(signalled); gone < grace {
		t.Errorf("orphan gone %v after SIGTERM, before its grace %v", gone, grace)
	}
	t.Logf("SIGTERM of leader %s: exited after %dms, %s leads; its producer orphaned, gone from the survivors %dms after the signal (grace %v, lease timeout %v)",
		leader.ID, haMillis(stopped), next.ID, haMillis(time.Since(signalled)), grace, leaseTimeout)

	// Still a member while stopped, and back without a join.
	for _, n := range survivors {
		if err := lifecycleMembers(n, ids...); err != nil {
			t.Errorf("after SIGTERM: %v", err)
		}
	}
	leader.Restart()
	c.WaitReady(failoverTimeout, c.Nodes...)
	for _, n := range c.Nodes {
		waitFor(t, failoverTimeout, func() error { return lifecycleMembers(n, ids...) })
	}
}

// TestPingsRideOnLeaseRenewals: a burst of PINGs from many connections
// reaches the registry (every session's last_update moves on) through the
// lease renewals alone: neither the commands this node's queue committed nor
// the Raft log grow by anything near one per PING.
func TestPingsRideOnLeaseRenewals(t *testing.T) {
	node := StartNode(t, "-lease-renew-interval", "500ms")
	const conns, pingsPerConn = 10, 100
	const topic = "ping_topic"
	var producers []*haRawProducer
	for i := range conns {
		p := haDialProducer(t, node.TCPAddr(), haIdentity{fmt.Sprintf("ping%d.example", i), 7400 + i, 7500 + i})
		p.Register(t, topic, "")
		producers = append(producers, p)
	}
	waitFor(t, registerTimeout, lifecycleListed([]*Node{node}, topic, conns))

	lastUpdates := func() (map[string]int64, error) {
		var dump map[string][]struct {
			ID         string `json:"id"`
			LastUpdate int64  `json:"last_update"`
		}
		if err := getJSON(node.HTTPAddr(), "/debug", &dump); err != nil {
			return nil, err
		}
		out := map[string]int64{}
		for _, r := range dump["client::"] {
			out[r.ID] = r.LastUpdate
		}
		return out, nil
	}
	before, err := lastUpdates()
	if err != nil || len(before) != conns {
		t.Fatalf("/debug client:: before the PINGs: %v, %v", before, err)
	}
	counters := func() (commands, lastIndex float64) {
		t.Helper()
		var err1, err2 error
		commands, err1 = haMetric(node.HTTPAddr(), "raftlookupd_replication_commands_total")
		lastIndex, err2 = haMetric(node.HTTPAddr(), "raftlookupd_raft_last_log_index")
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		return commands, lastIndex
	}
	commands0, index0 := counters()

	pings := strings.Repeat("PING\n", pingsPerConn)
	for _, p := range producers {
		p.conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(p.conn, pings); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range producers {
		for i := range pingsPerConn {
			if reply, err := readFrame(p.conn); err != nil || string(reply) != "OK" {
				t.Fatalf("%s: PING %d answered %q, %v", p.ID, i, reply, err)
			}
		}
	}
	// The PINGs are replicated (a renewal carries them) ...
	waitFor(t, 10*time.Second, func() error {
		after, err := lastUpdates()
		if err != nil {
			return err
		}
		for id, lu := range before {
			if after[id] <= lu {
				return fmt.Errorf("session %s: last_update %d, not after %d", id, after[id], lu)
			}
		}
		return nil
	})
	// ... and cost next to nothing: a renewal per interval, not an entry
	// (nor a command) per PING.
	commands1, index1 := counters()
	const total = conns * pingsPerConn
	t.Logf("%d PINGs: %v commands committed, %v log entries", total, commands1-commands0, index1-index0)
	if d := commands1 - commands0; d >= total/10 {
		t.Errorf("%d PINGs made this node commit %v commands; PINGs must ride on lease renewals", total, d)
	}
	if d := index1 - index0; d >= total/10 {
		t.Errorf("%d PINGs grew the Raft log by %v entries; PINGs must ride on lease renewals", total, d)
	}
}

// TestExpiredNodeClosesItsClients: a follower frozen (SIGSTOP) for longer
// than the lease timeout has its sessions orphaned, and after the orphan
// grace they are gone from the other nodes. When it
// resumes it learns its lease expired and closes its client connections, so
// nsqd reconnects and registers again; a new connection is listed everywhere.
func TestExpiredNodeClosesItsClients(t *testing.T) {
	c := StartCluster(t, 3, "-lease-timeout", "3s", "-lease-renew-interval", "500ms", "-orphan-grace", "2s")
	f := c.Followers(failoverTimeout)[0]
	others := haOthers(c.Nodes, f)
	id := haIdentity{"expiry.example", 7600, 7601}
	const topic = "expiry_topic"

	p := haDialProducer(t, f.TCPAddr(), id)
	p.Register(t, topic, "")
	waitFor(t, registerTimeout, lifecycleListed(c.Nodes, topic, 1))

	f.Stop()
	stopped := true
	defer func() {
		if stopped {
			f.Cont()
		}
	}()
	waitFor(t, 20*time.Second, lifecycleListed(others, topic, 0))
	f.Cont()
	stopped = false
	resumed := time.Now()

	// The server closes the connection: no frame, just EOF or a reset.
	p.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	var b [64]byte
	n, err := p.conn.Read(b[:])
	if n > 0 || classify(err) != "closed" {
		t.Fatalf("%s's connection to %s after its lease expired: read %q, %v (%s); want it closed by the server",
			id, f, b[:n], err, classify(err))
	}
	t.Logf("%s closed its client connection %dms after SIGCONT", f.ID, haMillis(time.Since(resumed)))

	// nsqd would reconnect: the node takes a new connection once it commits
	// again (until then it answers E_UNAVAILABLE, and nsqd retries at its
	// next heartbeat), and every node lists it again.
	var p2 *haRawProducer
	waitFor(t, 10*time.Second, func() (err error) {
		p2, err = haTryDialProducer(t, f.TCPAddr(), id)
		return err
	})
	p2.Register(t, topic, "")
	waitFor(t, registerTimeout, lifecycleListed(c.Nodes, topic, 1))
}

// TestRestartedFollowerWaitsToCatchUp: a follower restarted after the
// cluster moved on never answers a bounded read from its old state. Until it
// has applied a commit index it got from the leader it refuses (503
// LEADER_UNREACHABLE); every 200 it gives lists what was committed before it
// came back, including what was created while it was down.
func TestRestartedFollowerWaitsToCatchUp(t *testing.T) {
	c := StartCluster(t, 3)
	leader := c.Leader(failoverTimeout)
	f := c.Followers(failoverTimeout)[0]
	mustPost(t, leader.HTTPAddr(), "/topic/create?topic=before_stop", nil)
	waitFor(t, registerTimeout, func() error { return opsHasTopics(f, "before_stop")() })

	f.Term()
	// While it is down: many entries, then the topic every answer must show.
	for i := range 50 {
		mustPost(t, leader.HTTPAddr(), fmt.Sprintf("/topic/create?topic=while_down_%02d", i), nil)
	}
	mustPost(t, leader.HTTPAddr(), "/topic/create?topic=while_down_last", nil)

	type result struct {
		ok, refused, other int
		stale              string
	}
	var mu sync.Mutex
	var res result
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		client := &http.Client{Timeout: 2 * time.Second}
		url := "http://" + f.HTTPAddr() + "/topics"
		for {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := client.Get(url)
			if err != nil {
				// Not listening yet: retry soon, without spinning.
				select {
				case <-stop:
					return
				case <-time.After(5 * time.Millisecond):
				}
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			mu.Lock()
			switch {
			case resp.StatusCode == http.StatusOK:
				res.ok++
				if !strings.Contains(string(body), `"before_stop"`) || !strings.Contains(string(body), `"while_down_last"`) {
					if res.stale == "" {
						res.stale = string(body)
					}
				}
			case haRefused(&httpResult{Status: resp.StatusCode, Body: body}):
				res.refused++
			default:
				res.other++
			}
			mu.Unlock()
		}
	}()

	f.Restart()
	f.WaitReady(restartTimeout)
	// Keep polling past readiness: the check is for every answer, not only
	// the first.
	answered := func() int {
		mu.Lock()
		defer mu.Unlock()
		return res.ok
	}
	seen := answered()
	waitFor(t, 10*time.Second, func() error {
		if n := answered(); n < seen+20 {
			return fmt.Errorf("%d bounded reads answered since ready, want 20", n-seen)
		}
		return nil
	})
	close(stop)
	<-done

	t.Logf("bounded /topics on the restarted follower: %d answered, %d refused, %d other", res.ok, res.refused, res.other)
	if res.stale != "" {
		t.Errorf("the restarted follower answered a bounded read from stale state: %s", res.stale)
	}
	if res.ok == 0 {
		t.Errorf("the restarted follower never answered a bounded read")
	}
	if res.other != 0 {
		t.Errorf("%d answers were neither 200 nor 503 LEADER_UNREACHABLE", res.other)
	}
}
