package e2e

// A real nsqd registered with every node of a three-node cluster, through
// SIGSTOP/SIGCONT of a follower, SIGKILL of the leader and its restart.

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

const failoverTimeout = 20 * time.Second

// listsNSQD checks that a node's /lookup?topic= lists the nsqd exactly once
// (one producer per identity although nsqd has a session on every node).
func listsNSQD(n *Node, d *NSQD, topic string) func() error {
	tcpPort, httpPort := d.Ports()
	return func() error {
		doc, err := lookupProducers(n.HTTPAddr(), topic)
		if err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
		if len(doc.Producers) != 1 {
			return fmt.Errorf("%s: /lookup?topic=%s lists %d producers, want the nsqd once: %+v", n, topic, len(doc.Producers), doc.Producers)
		}
		p := doc.Producers[0]
		if p.BroadcastAddress != "127.0.0.1" || p.TCPPort != tcpPort || p.HTTPPort != httpPort {
			return fmt.Errorf("%s: producer %+v is not the nsqd (tcp %d http %d)", n, p, tcpPort, httpPort)
		}
		return nil
	}
}

// hasTopic checks that a node's /topics lists topic.
func hasTopic(n *Node, topic string) func() error {
	return func() error {
		var td topicsDoc
		if err := getJSON(n.HTTPAddr(), "/topics", &td); err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
		if !slices.Contains(td.Topics, topic) {
			return fmt.Errorf("%s: /topics = %v lacks %s", n, td.Topics, topic)
		}
		return nil
	}
}

func TestClusterFailover(t *testing.T) {
	t.Parallel()
	c := StartCluster(t, 3)
	var tcpAddrs []string
	for _, n := range c.Nodes {
		tcpAddrs = append(tcpAddrs, n.TCPAddr())
	}
	d := StartNSQD(t, tcpAddrs...)
	mustPost(t, d.HTTPAddr, "/topic/create?topic=ha_topic", nil)
	for _, n := range c.Nodes {
		waitFor(t, registerTimeout, listsNSQD(n, d, "ha_topic"))
	}

	// A frozen follower misses a write and catches up after SIGCONT.
	leader := c.Leader(failoverTimeout)
	frozen := c.Followers(failoverTimeout)[0]
	frozen.Stop()
	mustPost(t, leader.HTTPAddr(), "/topic/create?topic=while_stopped", nil)
	frozen.Cont()
	waitFor(t, failoverTimeout, hasTopic(frozen, "while_stopped"))

	// SIGKILL the leader: the survivors elect a new one, accept writes on a
	// follower (forwarded to the leader) and keep listing the nsqd, whose
	// sessions on them live on.
	leader.Kill()
	newLeader := c.Leader(failoverTimeout)
	if newLeader == leader {
		t.Fatalf("the killed node %s is still the leader", leader)
	}
	var follower *Node
	for _, n := range c.Running() {
		if n != newLeader {
			follower = n
		}
	}
	mustPost(t, follower.HTTPAddr(), "/channel/create?topic=after_failover&channel=ch", nil)
	for _, n := range c.Running() {
		waitFor(t, failoverTimeout, hasTopic(n, "after_failover"))
		waitFor(t, failoverTimeout, listsNSQD(n, d, "ha_topic"))
	}

	// The killed node restarts from its data dir and catches up.
	leader.Restart()
	c.WaitReady(failoverTimeout, c.Nodes...)
	waitFor(t, failoverTimeout, hasTopic(leader, "after_failover"))
	waitFor(t, failoverTimeout, listsNSQD(leader, d, "ha_topic"))
}
