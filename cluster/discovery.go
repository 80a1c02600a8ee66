package cluster

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlookupd/raftlookupd/wire"
)

// Discovery (-join NAME -bootstrap-expect N, no -peers): fresh nodes started
// with identical settings ask every address of Join who is there, over
// GET /rpc/hello. A node that finds a member of a cluster asks it to be
// added, as -join does. Otherwise it waits until exactly N fresh nodes found
// each other, and until every one of them reports the same N: then each
// bootstraps the same configuration, which raft accepts from several nodes.
// A node finding more than N fresh nodes, or one expecting another N, does
// not bootstrap, so two overlapping clusters cannot form.

const rpcHello = "/rpc/hello"

// hello is what a node tells a node looking for peers.
type hello struct {
	ID          string `json:"id"`
	RaftAddress string `json:"raft_address"`
	// HasState: the node belongs to a cluster (its configuration is not
	// empty).
	HasState bool `json:"has_state"`
	// Leader is the leader's Raft address, when known.
	Leader string `json:"leader,omitempty"`
	// Expect is the node's -bootstrap-expect (0: none).
	Expect int `json:"expect"`
	// Found lists, sorted, the ids of the fresh nodes it found in its last
	// discovery round, itself included.
	Found []string `json:"found,omitempty"`
}

// discovered is the Found of this node's hello, and the last problem
// logged (each is logged once, not every round).
type discovered struct {
	mu      sync.Mutex
	ids     []string
	problem string
}

func (d *discovered) set(ids []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ids = ids
}

// newProblem records p and reports whether it differs from the last one.
func (d *discovered) newProblem(p string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	changed := p != d.problem
	d.problem = p
	return changed
}

func (d *discovered) get() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ids
}

func (s *rpcServer) handleHello(context.Context, *http.Request) (any, error) {
	leader, _ := s.n.raft.LeaderWithID()
	return hello{
		ID:          s.n.cfg.NodeID,
		RaftAddress: s.n.cfg.RaftAdvertise,
		HasState:    len(s.n.configuration()) > 0,
		Leader:      string(leader),
		Expect:      s.n.cfg.BootstrapExpect,
		Found:       s.n.found.get(),
	}, nil
}

// lookupHost resolves a host name of Join.
func (n *Node) lookupHost(ctx context.Context, host string) ([]string, error) {
	if n.cfg.Network != nil && n.cfg.Network.Resolve != nil {
		return n.cfg.Network.Resolve(ctx, host)
	}
	return net.DefaultResolver.LookupHost(ctx, host)
}

// discoverLoop runs discovery rounds until this node bootstrapped, joined,
// or shows up in a configuration.
func (n *Node) discoverLoop() {
	n.logger.Info("looking for the other nodes", "join", n.cfg.Join, "bootstrap_expect", n.cfg.BootstrapExpect)
	backoff := 200 * time.Millisecond
	for !n.isMember() {
		if n.discoverRound() {
			return
		}
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

// discoverRound asks every Join address (resolved again) who is there, and
// joins, bootstraps or waits. It reports whether this node is done.
func (n *Node) discoverRound() bool {
	self := hello{ID: n.cfg.NodeID, RaftAddress: n.cfg.RaftAdvertise, Expect: n.cfg.BootstrapExpect}
	peers, refused := n.hellos()
	p := planDiscovery(self, peers)
	if p.problem == "" && len(p.join) == 0 && len(p.bootstrap) == 0 && len(refused) > 0 {
		p.problem = fmt.Sprintf("%v refused to answer (another -admin-token?)", refused)
	}
	if p.found != nil && !slices.Equal(p.found, n.found.get()) {
		n.logger.Info("fresh nodes found", "nodes", p.found, "bootstrap_expect", n.cfg.BootstrapExpect)
	}
	n.found.set(p.found)
	if n.found.newProblem(p.problem) && p.problem != "" {
		n.logger.Warn(p.problem+"; not bootstrapping", "nodes", p.found, "bootstrap_expect", n.cfg.BootstrapExpect)
	}
	if len(p.join) > 0 {
		req := wire.JoinRequest{ID: n.cfg.NodeID, RaftAddress: n.cfg.RaftAdvertise}
		for _, addr := range p.join {
			ctx, cancel := context.WithTimeout(n.ctx, n.cfg.WriteTimeout)
			err := n.rpcc.call(ctx, addr, rpcJoin, req, nil)
			cancel()
			if err == nil {
				n.logger.Info("joined an existing cluster", "via", addr)
				return true
			}
			n.logger.Warn("join attempt failed; retrying", "via", addr, "error", err)
		}
		return false
	}
	if len(p.bootstrap) == 0 {
		return false
	}
	if err := n.raft.BootstrapCluster(raft.Configuration{Servers: p.bootstrap}).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		n.logger.Warn("bootstrap failed; retrying", "error", err)
		return false
	}
	n.logger.Info("bootstrapping the cluster of the nodes found", "servers", p.found)
	return true
}

// discoveryPlan is what one round decided: join through one of join (Raft
// addresses of members), or bootstrap these servers, or neither (wait).
type discoveryPlan struct {
	join      []string
	bootstrap []raft.Server
	// found is the sorted ids of the fresh nodes found, self included (nil
	// when a member was found).
	found []string
	// problem says why this round cannot bootstrap, for the operator.
	problem string
}

// planDiscovery decides a round from this node's own hello and the answers
// by address. It is a pure function of its input.
func planDiscovery(self hello, peers map[string]hello) discoveryPlan {
	var p discoveryPlan
	for _, addr := range slices.Sorted(maps.Keys(peers)) {
		if peers[addr].HasState {
			p.join = append(p.join, addr)
		}
	}
	if len(p.join) > 0 {
		return p
	}
	servers := map[string]string{self.ID: self.RaftAddress}
	for _, addr := range slices.Sorted(maps.Keys(peers)) {
		h := peers[addr]
		if prev, dup := servers[h.ID]; dup && prev != h.RaftAddress {
			p.problem = fmt.Sprintf("node id %q is used at %s and %s", h.ID, prev, h.RaftAddress)
		}
		if h.Expect != self.Expect && p.problem == "" {
			p.problem = fmt.Sprintf("node %s (%s) expects %d nodes, this one %d", h.ID, addr, h.Expect, self.Expect)
		}
		servers[h.ID] = h.RaftAddress
	}
	p.found = slices.Sorted(maps.Keys(servers))
	switch {
	case p.problem != "":
		return p
	case len(p.found) > self.Expect:
		p.problem = fmt.Sprintf("found %d fresh nodes, more than expected", len(p.found))
		return p
	case len(p.found) < self.Expect:
		return p
	}
	// Each of the N must have found exactly these N, so that all of them
	// bootstrap the same configuration.
	for _, h := range peers {
		if !slices.Equal(h.Found, p.found) {
			return p
		}
	}
	for _, id := range p.found {
		p.bootstrap = append(p.bootstrap, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(id), Address: raft.ServerAddress(servers[id])})
	}
	return p
}

// hellos asks every Join address at once, briefly; it returns the answers
// by address, without this node's own, and the addresses that refused to
// answer.
func (n *Node) hellos() (map[string]hello, []string) {
	ctx, cancel := context.WithTimeout(n.ctx, time.Second)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	out := map[string]hello{}
	var refused []string
	for _, addr := range n.joinTargets() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var h hello
			if err := n.rpcc.call(ctx, addr, rpcHello, nil, &h); err != nil {
				n.logger.Debug("no answer from a join address", "address", addr, "error", err)
				if errors.Is(err, wire.ErrForbidden) {
					mu.Lock()
					refused = append(refused, addr)
					mu.Unlock()
				}
				return
			}
			if h.ID == "" || (h.ID == n.cfg.NodeID && h.RaftAddress == n.cfg.RaftAdvertise) {
				return // itself, under another address
			}
			mu.Lock()
			out[addr] = h
			mu.Unlock()
		}()
	}
	wg.Wait()
	slices.Sort(refused)
	return out, refused
}
