package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsqio/go-nsq"
)

// maxStaleness is raftlookupd's default -max-staleness, which the compose
// file keeps: a node cut off from the leader refuses bounded reads after it.
const maxStaleness = 3 * time.Second

// TestCompose drives deploy/docker-compose.yml through one cluster's life.
// The steps share the cluster and run in order; a failed step ends the test.
func TestCompose(t *testing.T) {
	p := newProject(t)
	const (
		httpTopic = "http_topic"      // created through a node's HTTP API
		nsqTopic  = "nsqd_topic"      // created in nsqd, registered over TCP
		partTopic = "partition_topic" // created while a follower is cut off
	)
	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"Up", func(t *testing.T) { testUp(t, p, httpTopic) }},
		{"NSQ", func(t *testing.T) { testNSQ(t, p, nsqTopic) }},
		{"KillLeader", func(t *testing.T) { testKillLeader(t, p, nsqTopic) }},
		{"PartitionFollower", func(t *testing.T) { testPartition(t, p, nsqTopic, partTopic) }},
		{"RollingRestart", func(t *testing.T) { testRollingRestart(t, p, nsqTopic) }},
		{"JoinLeave", func(t *testing.T) { testJoinLeave(t, p) }},
		{"DownUp", func(t *testing.T) { testDownUp(t, p, httpTopic, partTopic) }},
	}
	for _, s := range steps {
		start := time.Now()
		ok := t.Run(s.name, s.run)
		t.Logf("%s: %v", s.name, time.Since(start).Round(time.Millisecond))
		if !ok {
			t.FailNow()
		}
	}
}

// testUp starts the three nodes, waits for their health checks and checks
// the image's user and version and the cluster they formed.
func testUp(t *testing.T, p *project, topic string) {
	p.run(t, nil, "up", "-d")
	p.waitHealthy(t, time.Minute, nil, nodes...)

	id := p.container(t, nil, "node1")
	out, err := command(t, time.Minute, "", nil, "docker", "inspect", "-f",
		`{{.Config.User}} {{index .Config.Labels "org.opencontainers.image.version"}}`, id)
	if err != nil {
		t.Fatalf("inspect: %v %s", err, out)
	}
	user, label, _ := strings.Cut(strings.TrimSpace(out), " ")
	if user != "65534:65534" || label == "" {
		t.Errorf("node1 runs as %q with version label %q; want 65534:65534 and a version", user, label)
	}
	if out, err := command(t, time.Minute, "", nil, "docker", "exec", id, "raftlookupctl", "version"); err != nil || !strings.Contains(out, label) {
		t.Errorf("raftlookupctl version = %q, %v; want it to mention %q", out, err, label)
	}

	waitFor(t, 30*time.Second, "one leader and three voters", func() error {
		if _, err := p.agreedLeader(nodes...); err != nil {
			return err
		}
		st, err := p.status("node1")
		if err != nil {
			return err
		}
		if len(st.Members) != 3 {
			return fmt.Errorf("members %+v", st.Members)
		}
		return nil
	})
	// The admin token is enforced (the calls above send it).
	resp, err := p.http.Get(p.url("node1", "/cluster/status"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/cluster/status without the admin token: %d, want 401", resp.StatusCode)
	}

	// nsqd may be given the one name all three nodes answer to.
	nw, _ := network(t, id)
	r := probe(t, nw, "-resolve", "raftlookupd", "-addrs", "3")
	t.Logf("raftlookupd resolves to %s", r.Body)

	p.mustDo(t, http.MethodPost, p.url("node2", "/topic/create?topic="+topic), "")
	waitFor(t, 10*time.Second, topic+" on every node", func() error {
		for _, n := range nodes {
			if err := hasTopic(p, n, topic); err != nil {
				return err
			}
		}
		return nil
	})
}

// testNSQ starts nsqd and nsqadmin, publishes through nsqd and consumes with
// go-nsq through the three nodes.
func testNSQ(t *testing.T, p *project, topic string) {
	p.run(t, []string{"nsq"}, "up", "-d", "nsqd", "nsqadmin")
	nsqdHTTP := fmt.Sprintf("http://127.0.0.1:%d", p.hostPort("nsqd", "HTTP"))
	waitFor(t, 30*time.Second, "nsqd /ping", func() error {
		code, b, err := p.do(http.MethodGet, nsqdHTTP+"/ping", "")
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("%d %s %v", code, b, err)
		}
		return nil
	})
	p.mustDo(t, http.MethodPost, nsqdHTTP+"/topic/create?topic="+topic, "")
	const body = "hello through raftlookupd"
	p.mustDo(t, http.MethodPost, nsqdHTTP+"/pub?topic="+topic, body)

	// nsqd registers the topic with every node (REGISTER over each TCP
	// connection); each node lists nsqd once, under its broadcast address.
	waitFor(t, 30*time.Second, "nsqd listed for "+topic+" on every node", func() error {
		for _, n := range nodes {
			if err := p.lookupNSQD(n, topic); err != nil {
				return err
			}
		}
		return nil
	})
	for _, n := range nodes {
		waitNSQDSession(t, p, n, topic)
	}

	adminURL := fmt.Sprintf("http://127.0.0.1:%d/api/topics", p.hostPort("nsqadmin", "HTTP"))
	waitFor(t, 30*time.Second, "nsqadmin listing "+topic, func() error {
		code, b, err := p.do(http.MethodGet, adminURL, "")
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("%d %s %v", code, b, err)
		}
		var v struct{ Topics []string }
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		if !slices.Contains(v.Topics, topic) {
			return fmt.Errorf("nsqadmin topics: %s", b)
		}
		return nil
	})

	consume(t, p, topic, body)
}

// consume reads one message of topic with a go-nsq consumer that discovers
// nsqd through the three nodes' published HTTP ports.
func consume(t *testing.T, p *project, topic, want string) {
	cfg := nsq.NewConfig()
	cfg.LookupdPollInterval = time.Second
	c, err := nsq.NewConsumer(topic, "compose_test", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	c.SetLogger(&logs, nsq.LogLevelInfo)
	defer func() {
		if t.Failed() {
			t.Logf("go-nsq log:\n%s", logs.String())
		}
	}()
	// The nodes answer with nsqd's broadcast address, a name that only
	// resolves inside the compose network.
	c.SetBehaviorDelegate(rewriteAddress{
		from: "nsqd:4150",
		to:   fmt.Sprintf("127.0.0.1:%d", p.hostPort("nsqd", "TCP")),
	})
	got := make(chan string, 16)
	c.AddHandler(nsq.HandlerFunc(func(m *nsq.Message) error {
		got <- string(m.Body)
		return nil
	}))
	var lookupds []string
	for _, n := range nodes {
		lookupds = append(lookupds, fmt.Sprintf("127.0.0.1:%d", p.hostPort(n, "HTTP")))
	}
	if err := c.ConnectToNSQLookupds(lookupds); err != nil {
		t.Fatal(err)
	}
	defer func() {
		c.Stop()
		select {
		case <-c.StopChan:
		case <-time.After(10 * time.Second):
			t.Error("consumer did not stop")
		}
	}()
	select {
	case m := <-got:
		if m != want {
			t.Errorf("consumed %q, want %q", m, want)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no message on %s within 30s", topic)
	}
}

// rewriteAddress is a go-nsq DiscoveryFilter mapping nsqd's in-network
// address to its published host port.
type rewriteAddress struct{ from, to string }

func (r rewriteAddress) Filter(addrs []string) []string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		if a == r.from {
			a = r.to
		}
		out[i] = a
	}
	return out
}

// syncBuffer is a go-nsq logger collecting output for failure reports.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Output(_ int, msg string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.WriteString(msg + "\n")
	return nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testKillLeader SIGKILLs the leader's container: the other two keep
// answering lookups, every one listing nsqd, and elect a new leader; the
// restarted node gets nsqd's session back.
func testKillLeader(t *testing.T, p *project, topic string) {
	leader := currentLeader(t, p)
	survivors := others(leader)
	id := p.container(t, nil, leader)
	w := p.watchLookups(topic, survivors...)
	killed := time.Now()
	if out, err := command(t, time.Minute, "", nil, "docker", "kill", id); err != nil {
		w.finish(t)
		t.Fatalf("docker kill %s: %v %s", leader, err, out)
	}
	var newLeader string
	waitFor(t, 20*time.Second, "a new leader", func() error {
		l, err := p.agreedLeader(survivors...)
		if err != nil {
			return err
		}
		if l == leader {
			return fmt.Errorf("survivors still follow %s", leader)
		}
		newLeader = l
		return nil
	})
	t.Logf("killed %s; %s leads after %v", leader, newLeader, time.Since(killed).Round(time.Millisecond))
	// Keep polling past -max-staleness: a follower that lost track of the
	// leader would start refusing bounded reads by then.
	time.Sleep(time.Until(killed.Add(maxStaleness + 2*time.Second)))
	w.finish(t)
	// The shared name now leads to the two live nodes only.
	nw, _ := network(t, p.container(t, nil, newLeader))
	probe(t, nw, "-resolve", "raftlookupd", "-addrs", "2")

	p.run(t, nil, "start", leader)
	p.waitHealthy(t, time.Minute, nil, nodes...)
	waitNSQDSession(t, p, leader, topic)
}

// waitNSQDSession waits until nsqd has a session on node again and node
// lists it for topic. nsqd notices a closed lookupd connection only on its
// next command and reconnects on the one after; each try therefore creates
// a topic on nsqd (one REGISTER to every node) rather than waiting for two
// of its 15 s heartbeats.
func waitNSQDSession(t *testing.T, p *project, node, topic string) {
	t.Helper()
	nsqdHTTP := fmt.Sprintf("http://127.0.0.1:%d", p.hostPort("nsqd", "HTTP"))
	start := time.Now()
	var nudged time.Time
	nudges := 0
	waitFor(t, 45*time.Second, "nsqd's session on "+node, func() error {
		owned, err := p.metric(node, "raftlookupd_owned_sessions")
		if err == nil && owned != 1 {
			err = fmt.Errorf("%s owns %v sessions, want nsqd's one", node, owned)
		}
		if err == nil {
			err = p.lookupNSQD(node, topic)
		}
		if err != nil && time.Since(nudged) > time.Second {
			nudges++
			nudged = time.Now()
			if code, b, perr := p.do(http.MethodPost, fmt.Sprintf("%s/topic/create?topic=nudge_%s_%d", nsqdHTTP, node, nudges), ""); perr != nil || code != http.StatusOK {
				return fmt.Errorf("nudge nsqd: %d %s %v (while: %v)", code, b, perr, err)
			}
		}
		return err
	})
	t.Logf("nsqd's session on %s back after %v (%d nudges)", node, time.Since(start).Round(time.Millisecond), nudges)
}

// testPartition disconnects a follower from the network: it refuses
// bounded reads within -max-staleness while the other two keep accepting
// writes, and once reconnected it has those writes.
func testPartition(t *testing.T, p *project, lookupTopic, topic string) {
	leader := currentLeader(t, p)
	majority := []string{leader}
	var cut string
	for _, n := range others(leader) {
		if cut == "" {
			cut = n
		} else {
			majority = append(majority, n)
		}
	}
	id := p.container(t, nil, cut)
	lookup := "http://127.0.0.1:4161/lookup?topic=" + lookupTopic
	probe(t, "container:"+id, "-url", lookup, "-status", "200") // the probe reaches the node

	nw, aliases := network(t, id)
	cutAt := time.Now()
	if out, err := command(t, time.Minute, "", nil, "docker", "network", "disconnect", nw, id); err != nil {
		t.Fatalf("disconnect %s: %v %s", cut, err, out)
	}
	connected := false
	reconnect := func() {
		if connected {
			return
		}
		connected = true
		args := []string{"network", "connect"}
		for _, a := range aliases {
			args = append(args, "--alias", a)
		}
		args = append(args, nw, id)
		if out, err := command(t, time.Minute, "", nil, "docker", args...); err != nil {
			t.Errorf("reconnect %s: %v %s", cut, err, out)
		}
	}
	defer reconnect() // also when a check below fails the test

	r := probe(t, "container:"+id, "-url", lookup, "-status", "503", "-contains", "LEADER_UNREACHABLE", "-timeout", "30s")
	refusedAfter := time.Unix(0, r.MatchedAt).Sub(cutAt)
	t.Logf("%s cut off; refuses bounded reads after %v", cut, refusedAfter.Round(time.Millisecond))
	if refusedAfter > maxStaleness+2*time.Second {
		t.Errorf("%s refused bounded reads %v after the cut; want within -max-staleness %v (+2s slack)", cut, refusedAfter, maxStaleness)
	}

	p.mustDo(t, http.MethodPost, p.url(majority[1], "/topic/create?topic="+topic), "")
	for _, n := range majority {
		if err := hasTopic(p, n, topic); err != nil {
			t.Errorf("after a committed write: %v", err)
		}
	}
	r = probe(t, "container:"+id, "-url", "http://127.0.0.1:4161/topics?consistency=stale", "-status", "200")
	if strings.Contains(r.Body, topic) {
		t.Errorf("%s, cut off, already has %s: %s", cut, topic, r.Body)
	}

	reconnect()
	if t.Failed() {
		return
	}
	waitFor(t, 30*time.Second, topic+" on "+cut, func() error { return hasTopic(p, cut, topic) })
	p.waitHealthy(t, time.Minute, nil, nodes...)
}

// testRollingRestart restarts each node in turn (SIGTERM, start): the other
// two never fail a lookup nor stop listing nsqd, and the restarted node comes
// back healthy with nsqd's session before the next one goes down.
func testRollingRestart(t *testing.T, p *project, topic string) {
	for _, n := range nodes {
		w := p.watchLookups(topic, others(n)...)
		start := time.Now()
		if _, err := p.tryRun(t, nil, "restart", n); err != nil {
			w.finish(t)
			t.Fatalf("restart %s: %v", n, err)
		}
		p.waitHealthy(t, time.Minute, nil, n)
		waitFor(t, 30*time.Second, n+" ready", func() error {
			code, b, err := p.do(http.MethodGet, p.url(n, "/cluster/ready"), "")
			if err != nil || code != http.StatusOK {
				return fmt.Errorf("%d %s %v", code, b, err)
			}
			return nil
		})
		t.Logf("%s restarted and healthy in %v", n, time.Since(start).Round(time.Millisecond))
		// The next node may go down only once nsqd is registered here
		// again; the watch runs until then, so the other two must keep
		// listing nsqd meanwhile.
		waitNSQDSession(t, p, n, topic)
		w.finish(t)
		if t.Failed() {
			return
		}
	}
	waitFor(t, 30*time.Second, "one leader", func() error {
		_, err := p.agreedLeader(nodes...)
		return err
	})
}

// testJoinLeave starts the join profile's node4, waits until it is a voter,
// then removes it with raftlookupctl inside node1's container.
func testJoinLeave(t *testing.T, p *project) {
	join := []string{"join"}
	p.run(t, join, "up", "-d", "node4")
	p.waitHealthy(t, time.Minute, join, "node4")
	waitFor(t, 30*time.Second, "node4 a voter on every node", func() error {
		for _, n := range append(slices.Clone(nodes), "node4") {
			if err := hasMember(p, n, "node4", 4); err != nil {
				return err
			}
		}
		return nil
	})

	id := p.container(t, nil, "node1")
	if out, err := command(t, time.Minute, "", nil, "docker", "exec", id, "raftlookupctl", "leave", "node4"); err != nil {
		t.Fatalf("raftlookupctl leave node4: %v %s", err, out)
	}
	waitFor(t, 30*time.Second, "node4 gone from every node", func() error {
		for _, n := range nodes {
			if err := hasMember(p, n, "", 3); err != nil {
				return err
			}
		}
		return nil
	})
	p.run(t, join, "rm", "-s", "-f", "node4")
}

// testDownUp removes the containers, keeps the volumes, and starts the
// cluster again: the topics made through HTTP are still there.
func testDownUp(t *testing.T, p *project, topics ...string) {
	p.run(t, []string{"nsq", "join"}, "down")
	p.run(t, nil, "up", "-d")
	p.waitHealthy(t, time.Minute, nil, nodes...)
	waitFor(t, 30*time.Second, "three voters", func() error { return hasMember(p, "node1", "", 3) })
	for _, n := range nodes {
		for _, topic := range topics {
			if err := hasTopic(p, n, topic); err != nil {
				t.Errorf("after down and up: %v", err)
			}
		}
	}
}

// currentLeader waits until the three nodes agree on a leader.
func currentLeader(t *testing.T, p *project) string {
	t.Helper()
	var leader string
	waitFor(t, 30*time.Second, "an agreed leader", func() error {
		var err error
		leader, err = p.agreedLeader(nodes...)
		return err
	})
	return leader
}

// others returns the nodes other than n.
func others(n string) []string {
	return slices.DeleteFunc(slices.Clone(nodes), func(s string) bool { return s == n })
}

// hasTopic checks a bounded read of /topics on node lists topic.
func hasTopic(p *project, node, topic string) error {
	topics, err := p.topics(node)
	if err != nil {
		return err
	}
	if !slices.Contains(topics, topic) {
		return fmt.Errorf("%s lists topics %v, not %s", node, topics, topic)
	}
	return nil
}

// hasMember checks node's /cluster/status lists n members and, when id is
// set, that id is one of them, a voter.
func hasMember(p *project, node, id string, n int) error {
	st, err := p.status(node)
	if err != nil {
		return err
	}
	found := id == ""
	for _, m := range st.Members {
		found = found || (m.ID == id && m.Suffrage == "Voter")
	}
	if len(st.Members) != n || !found {
		return fmt.Errorf("%s members %+v; want %d with %q a voter", node, st.Members, n, id)
	}
	return nil
}
