package cluster_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/raftlookupd/raftlookupd/cluster"
	"github.com/raftlookupd/raftlookupd/fsm"
)

// testCluster runs nodes in-process: real Raft on real boltdb files, and
// in-memory links (raft's in-memory transport, memNet for the node-to-node
// RPC) so tests can cut them.
type testCluster struct {
	t     *testing.T
	mu    sync.Mutex
	nodes map[string]*testNode
	net   *memNet
	// base holds the nodes' data dirs. It is made before the cleanup that
	// stops the nodes is registered, so it is removed after they stopped
	// (cleanups run last first): a node may still be writing a snapshot.
	base string
}

type testNode struct {
	id        string
	dir       string
	node      *cluster.Node
	rpc       *memListener
	transport *raft.InmemTransport
	expired   chan struct{}
	cfg       cluster.Config
}

func fastConfig() cluster.Config {
	c := cluster.DefaultConfig()
	c.HeartbeatTimeout = 100 * time.Millisecond
	c.ElectionTimeout = 100 * time.Millisecond
	c.LeaderLeaseTimeout = 50 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	c.LeaseRenewInterval = 100 * time.Millisecond
	c.LeaseTimeout = 1500 * time.Millisecond
	c.OrphanGrace = time.Second
	c.MaxStaleness = time.Second
	c.WriteTimeout = 2 * time.Second
	return c
}

func newTestCluster(t *testing.T) *testCluster {
	tc := &testCluster{t: t, nodes: map[string]*testNode{}, net: newMemNet(), base: t.TempDir()}
	t.Cleanup(func() {
		for _, n := range tc.all() {
			n.stop()
		}
	})
	return tc
}

func (tc *testCluster) all() []*testNode {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	out := make([]*testNode, 0, len(tc.nodes))
	for _, n := range tc.nodes {
		out = append(out, n)
	}
	return out
}

// start creates (or restarts, keeping its data dir) node id. Static peers
// are given as ids; raft addresses are the ids themselves.
func (tc *testCluster) start(id string, mutate func(*cluster.Config)) *testNode {
	tc.t.Helper()
	tc.mu.Lock()
	prev := tc.nodes[id]
	tc.mu.Unlock()
	var dir string
	if prev != nil {
		dir = prev.dir
	} else {
		var err error
		if dir, err = os.MkdirTemp(tc.base, id+"-"); err != nil {
			tc.t.Fatal(err)
		}
	}
	_, trans := raft.NewInmemTransport(raft.ServerAddress(raftAddr(id)))
	rpcLn := tc.net.listen(raftAddr(id))
	cfg := fastConfig()
	cfg.NodeID = id
	cfg.DataDir = dir
	cfg.Network = &cluster.Network{Transport: trans, RPC: rpcLn, Dial: tc.net.dialer(raftAddr(id))}
	cfg.RaftAdvertise = raftAddr(id)
	cfg.HTTPAdvertise = id + ":4161"
	cfg.TCPAdvertise = id + ":4160"
	if mutate != nil {
		mutate(&cfg)
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: id, Level: hclog.Warn, Output: testWriter{tc.t}})
	node, err := cluster.New(cfg, logger)
	if err != nil {
		rpcLn.Close()
		tc.t.Fatalf("start %s: %v", id, err)
	}
	n := &testNode{id: id, dir: dir, node: node, rpc: rpcLn, transport: trans, expired: make(chan struct{}, 16), cfg: cfg}
	go func() {
		for range node.Expired() {
			n.expired <- struct{}{}
		}
	}()
	tc.mu.Lock()
	tc.nodes[id] = n
	tc.mu.Unlock()
	tc.reconnect(id)
	return n
}

// reconnect links node id's transport with every other running node.
func (tc *testCluster) reconnect(id string) {
	n := tc.node(id)
	tc.net.heal(raftAddr(id))
	for _, o := range tc.all() {
		if o.id == id || o.node == nil {
			continue
		}
		n.transport.Connect(o.transport.LocalAddr(), o.transport)
		o.transport.Connect(n.transport.LocalAddr(), n.transport)
	}
}

// partition cuts node id off from every other node: Raft links and RPC.
func (tc *testCluster) partition(id string) {
	tc.net.cut(raftAddr(id))
	tc.disconnectRaft(id)
}

// vanish makes node id's host go away without a word: Raft loses it, and
// dials to its RPC address hang until the caller gives up.
func (tc *testCluster) vanish(id string) {
	tc.net.vanish(raftAddr(id))
	tc.disconnectRaft(id)
}

func (tc *testCluster) disconnectRaft(id string) {
	n := tc.node(id)
	n.transport.DisconnectAll()
	for _, o := range tc.all() {
		if o.id != id {
			o.transport.Disconnect(n.transport.LocalAddr())
		}
	}
}

func (tc *testCluster) node(id string) *testNode {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.nodes[id]
}

// stop shuts a node down without draining: to its peers it is a crash.
func (n *testNode) stop() {
	if n.node == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n.node.Shutdown(ctx)
	n.node = nil
}

func (tc *testCluster) kill(id string) {
	n := tc.node(id)
	tc.partition(id)
	n.stop()
}

// startThree bootstraps n1..n3 with static peers and waits for a leader.
func (tc *testCluster) startThree() { startThreeWith(tc, nil) }

// startThreeWith bootstraps n1..n3 with static peers and mutate applied to
// each config, and waits until all are ready.
func startThreeWith(tc *testCluster, mutate func(*cluster.Config)) {
	var peers []cluster.Server
	for _, id := range []string{"n1", "n2", "n3"} {
		peers = append(peers, cluster.Server{ID: id, RaftAddress: raftAddr(id)})
	}
	for _, id := range []string{"n1", "n2", "n3"} {
		tc.start(id, func(c *cluster.Config) {
			c.Servers = peers
			if mutate != nil {
				mutate(c)
			}
		})
	}
	tc.waitReady("n1", "n2", "n3")
}

func (tc *testCluster) waitReady(ids ...string) {
	tc.t.Helper()
	waitFor(tc.t, 10*time.Second, func() error {
		for _, id := range ids {
			if !tc.node(id).node.Ready() {
				return fmt.Errorf("%s not ready", id)
			}
		}
		return nil
	})
}

func (tc *testCluster) leader() *testNode {
	tc.t.Helper()
	var l *testNode
	waitFor(tc.t, 10*time.Second, func() error {
		for _, n := range tc.all() {
			if n.node != nil && n.node.Raft().State() == raft.Leader {
				l = n
				return nil
			}
		}
		return fmt.Errorf("no leader")
	})
	return l
}

func (tc *testCluster) follower() *testNode {
	l := tc.leader()
	for _, n := range tc.all() {
		if n.node != nil && n != l {
			return n
		}
	}
	tc.t.Fatal("no follower")
	return nil
}

// producers returns the identities /lookup lists for topic on node id.
func (tc *testCluster) producers(id, topic string) []string {
	_, ps, _ := tc.node(id).node.Registry().Lookup(topic, fsm.Filter{Now: time.Now(), InactiveTimeout: time.Hour, TombstoneLifetime: time.Minute})
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = fmt.Sprintf("%s:%d", p.BroadcastAddress, p.TCPPort)
	}
	return out
}

func (tc *testCluster) waitProducers(topic, want string, ids ...string) {
	tc.t.Helper()
	waitFor(tc.t, 10*time.Second, func() error {
		for _, id := range ids {
			if got := strings.Join(tc.producers(id, topic), ","); got != want {
				return fmt.Errorf("%s: /lookup %s = %q, want %q", id, topic, got, want)
			}
		}
		return nil
	})
}

// othersThan lists n1..n3 but id.
func othersThan(id string) []string {
	var out []string
	for _, o := range []string{"n1", "n2", "n3"} {
		if o != id {
			out = append(out, o)
		}
	}
	return out
}

// cutOffPastLease partitions node f, holding one session registered for
// topic, until the others orphaned that session and dropped it after the
// grace; it returns the others.
func (tc *testCluster) cutOffPastLease(f *testNode, topic string) []string {
	tc.t.Helper()
	tc.partition(f.id)
	others := othersThan(f.id)
	waitFor(tc.t, 10*time.Second, func() error {
		if d := tc.debug(others[0], "topic:"+topic+":"); len(d) != 1 || !d[0].Orphaned {
			return fmt.Errorf("%s: %+v, want the cut-off node's session orphaned", others[0], d)
		}
		return nil
	})
	tc.waitProducers(topic, "", others...)
	return others
}

// reopen opens a session for an nsqd at port on node n under an incarnation
// after old's: right after a partition heals the node may accept a session
// before it learns its incarnation ended (it closes it at once).
func (n *testNode) reopen(t *testing.T, port int, old fsm.SessionID) fsm.SessionID {
	t.Helper()
	var id fsm.SessionID
	waitFor(t, 10*time.Second, func() error {
		id = n.open(t, port)
		if id.Incarnation <= old.Incarnation {
			n.node.CloseSession(id)
			return fmt.Errorf("session %v of the old incarnation", id)
		}
		return nil
	})
	return id
}

// raftAddr is node id's address on the in-memory transport.
func raftAddr(id string) string { return id + ":7000" }

func peer(port int) fsm.PeerInfo {
	return fsm.PeerInfo{RemoteAddress: "127.0.0.1:5", Hostname: "h", BroadcastAddress: "nsqd", TCPPort: port, HTTPPort: port + 1, Version: "1.3.0"}
}

func waitFor(t *testing.T, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v: %v", timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// open opens a session for an nsqd at port on node n, waiting while the node
// has no incarnation yet.
func (n *testNode) open(t *testing.T, port int) fsm.SessionID {
	t.Helper()
	var id fsm.SessionID
	waitFor(t, 10*time.Second, func() (err error) {
		id, err = n.node.OpenSession(peer(port))
		return err
	})
	return id
}

func (n *testNode) register(t *testing.T, id fsm.SessionID, topic, channel string) {
	t.Helper()
	if err := n.node.Register(id, topic, channel); err != nil {
		t.Fatalf("register %s/%s on %s: %v", topic, channel, n.id, err)
	}
}

// debug returns the raw records of key ("topic:t:") on node id.
func (tc *testCluster) debug(id, key string) []fsm.DebugProducer {
	return tc.node(id).node.Registry().Debug()[key]
}
