package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlookupd/raftlookupd/cluster"
	"github.com/raftlookupd/raftlookupd/fsm"
)

// dnsName stands for a DNS name with one record per registered node, as a
// network alias shared by containers: records appear as nodes start.
type dnsName struct {
	mu    sync.Mutex
	hosts []string
}

func (d *dnsName) add(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.hosts = append(d.hosts, id)
}

func (d *dnsName) resolve(_ context.Context, host string) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if host != "lookupd.test" || len(d.hosts) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return slices.Clone(d.hosts), nil
}

// startDiscovering starts node id with the flags every node shares:
// -join lookupd.test:7000 -bootstrap-expect expect.
func (tc *testCluster) startDiscovering(dns *dnsName, id string, expect int) *testNode {
	dns.add(id)
	return tc.start(id, func(c *cluster.Config) {
		c.Join = []string{"lookupd.test:7000"}
		c.BootstrapExpect = expect
		c.Network.Resolve = dns.resolve
	})
}

// helloOf asks node id's RPC who it is, as a discovering node does.
func (tc *testCluster) helloOf(id string) (map[string]any, error) {
	dial := tc.net.dialer("test:7000")
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
		return dial(ctx, addr)
	}}, Timeout: time.Second}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get("http://" + raftAddr(id) + "/rpc/hello")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var doc map[string]any
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("hello of %s: %s", id, resp.Status)
	}
	return doc, json.NewDecoder(resp.Body).Decode(&doc)
}

func (tc *testCluster) configurationOf(id string) string {
	f := tc.node(id).node.Raft().GetConfiguration()
	if f.Error() != nil {
		return f.Error().Error()
	}
	var out []string
	for _, s := range f.Configuration().Servers {
		out = append(out, fmt.Sprintf("%s=%s/%s", s.ID, s.Address, s.Suffrage))
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

// Nodes with identical settings and no static peers form one cluster once
// the expected number found each other through the name; not before. A
// node started later with the same settings joins that cluster.
func TestBootstrapExpectThroughDNS(t *testing.T) {
	tc := newTestCluster(t)
	dns := &dnsName{}
	tc.startDiscovering(dns, "n1", 3)
	tc.startDiscovering(dns, "n2", 3)
	// Two of three: both find each other, and wait.
	waitFor(t, 10*time.Second, func() error {
		for _, id := range []string{"n1", "n2"} {
			h, err := tc.helloOf(id)
			if err != nil {
				return err
			}
			if fmt.Sprint(h["found"]) != "[n1 n2]" || h["has_state"] != false || h["expect"] != float64(3) {
				return fmt.Errorf("%s says %v", id, h)
			}
		}
		return nil
	})
	for _, id := range []string{"n1", "n2"} {
		if got := tc.configurationOf(id); got != "" {
			t.Fatalf("%s bootstrapped with two of three nodes: %s", id, got)
		}
	}

	tc.startDiscovering(dns, "n3", 3)
	tc.waitReady("n1", "n2", "n3")
	want := "n1=n1:7000/Voter,n2=n2:7000/Voter,n3=n3:7000/Voter"
	l := tc.leader()
	for _, id := range []string{"n1", "n2", "n3"} {
		if got := tc.configurationOf(id); got != want {
			t.Errorf("%s: configuration %s, want %s", id, got, want)
		}
		if _, lid := tc.node(id).node.Raft().LeaderWithID(); string(lid) != l.id {
			t.Errorf("%s follows %q, the leader is %s", id, lid, l.id)
		}
	}
	if err := tc.node("n2").node.Propose(context.Background(), fsm.Command{Op: fsm.OpCreateTopic, Topic: "formed"}); err != nil {
		t.Fatal(err)
	}

	// A fourth node with the same settings finds members and joins.
	tc.startDiscovering(dns, "n4", 3)
	tc.waitReady("n4")
	waitFor(t, 10*time.Second, func() error {
		if got := tc.configurationOf("n1"); !strings.Contains(got, "n4=n4:7000/Voter") {
			return fmt.Errorf("configuration %s lacks n4", got)
		}
		if !slices.Contains(tc.node("n4").node.Registry().Topics(), "formed") {
			return fmt.Errorf("n4 has not replicated the cluster's state")
		}
		return nil
	})
	if st := tc.node("n4").node.Raft().State(); st == raft.Leader && l.node.Raft().State() == raft.Leader {
		t.Fatal("two leaders")
	}
}

func TestBootstrapExpectNeedsJoin(t *testing.T) {
	c := fastConfig()
	c.NodeID, c.DataDir, c.RaftAdvertise = "n1", t.TempDir(), "n1:7000"
	c.BootstrapExpect = 3
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "bootstrap expect") {
		t.Fatalf("Validate: %v, want a bootstrap expect error", err)
	}
	c.Join = []string{"lookupd.test:7000"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.BootstrapExpect = -1
	if err := c.Validate(); err == nil {
		t.Fatal("a negative bootstrap expect was accepted")
	}
}

// Nodes with the same admin token find each other; a caller without it
// learns nothing.
func TestHelloNeedsTheAdminToken(t *testing.T) {
	tc := newTestCluster(t)
	dns := &dnsName{}
	for _, id := range []string{"n1", "n2"} {
		dns.add(id)
		tc.start(id, func(c *cluster.Config) {
			c.Join = []string{"lookupd.test:7000"}
			c.BootstrapExpect = 2
			c.Network.Resolve = dns.resolve
			c.AdminToken = "secret"
		})
	}
	tc.waitReady("n1", "n2")
	if h, err := tc.helloOf("n1"); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("hello without the token: %v %v, want 403", h, err)
	}
}
