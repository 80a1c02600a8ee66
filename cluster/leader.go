package cluster

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlookupd/raftlookupd/fsm"
)

// leadership is what this node knows about who leads.
type leadership struct {
	// notify is raft's NotifyCh: reliable, every gain and loss of
	// leadership, in order.
	notify chan bool
	// ready is set once this node, as leader, applied everything committed
	// before its term (a Barrier), so its commit index is safe to serve
	// linearizable reads from.
	ready atomic.Bool

	// changed is closed (and replaced) whenever the leader changes, so a
	// request forwarded to a leader that just stopped leading, or froze,
	// gives up at once instead of at its timeout.
	mu      sync.Mutex
	changed chan struct{}
}

func newLeadership() leadership {
	return leadership{notify: make(chan bool, 16), changed: make(chan struct{})}
}

// leaderRaftAddress returns the current leader's Raft address, where its
// RPC is served.
func (n *Node) leaderRaftAddress() (string, error) {
	addr, _ := n.raft.LeaderWithID()
	if addr == "" {
		return "", errNoLeaderKnown
	}
	return string(addr), nil
}

// untilLeaderChanges returns a context that also ends when the leader
// changes.
func (n *Node) untilLeaderChanges(ctx context.Context) (context.Context, context.CancelFunc) {
	n.leader.mu.Lock()
	changed := n.leader.changed
	n.leader.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-changed:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// callLeader makes an RPC call to the current leader that ends early when
// the leader changes, so a call to a leader that died does not hang until
// ctx ends (a dial to an address no host answers any more waits for ARP,
// about 3 s). The change is watched before the address is read, so one in
// between still ends the call. changed reports a call that failed because
// the leader changed; errNoLeaderKnown, that there is no leader to call.
func (n *Node) callLeader(ctx context.Context, path string, body, out any) (changed bool, err error) {
	lctx, cancel := n.untilLeaderChanges(ctx)
	defer cancel()
	addr, err := n.leaderRaftAddress()
	if err != nil {
		return false, err
	}
	err = n.rpcc.call(lctx, addr, path, body, out)
	return err != nil && lctx.Err() != nil && ctx.Err() == nil, err
}

// observeLeaders counts leader changes as this node sees them, and wakes
// requests waiting on the old leader.
func (n *Node) observeLeaders() {
	ch := make(chan raft.Observation, 16)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	n.raft.RegisterObserver(obs)
	defer n.raft.DeregisterObserver(obs)
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-ch:
			n.metrics.leaderChanges.Inc()
			n.leader.mu.Lock()
			close(n.leader.changed)
			n.leader.changed = make(chan struct{})
			n.leader.mu.Unlock()
		}
	}
}

// leaderLoop runs leader-only duties while this node leads. Each gain
// rebuilds the duties' state from the state machine after a Barrier.
func (n *Node) leaderLoop() {
	var stop context.CancelFunc
	done := make(chan struct{})
	close(done)
	for {
		select {
		case <-n.ctx.Done():
			if stop != nil {
				stop()
			}
			<-done
			return
		case leader := <-n.leader.notify:
			if stop != nil {
				stop()
				<-done
				stop = nil
			}
			n.leader.ready.Store(false)
			n.seq.reset()
			if !leader {
				n.logger.Info("lost leadership")
				continue
			}
			n.logger.Info("gained leadership")
			var ctx context.Context
			ctx, stop = context.WithCancel(n.ctx)
			done = make(chan struct{})
			go func() {
				defer close(done)
				n.leaseExpiry(ctx)
			}()
		}
	}
}

// proposeLeader commits a leader duty's command directly, never through the
// queue: it must not outlive this node's leadership by being forwarded to
// the next leader, and a forwarded batch never carries one (write.go).
func (n *Node) proposeLeader(c fsm.Command) error {
	data, err := c.Encode()
	if err != nil {
		return err
	}
	_, err = n.applyLocal(data)
	return err
}

// leaseExpiry orphans the sessions of owners whose lease renewals stopped,
// and removes orphans whose grace passed. It never compares clocks across
// machines for leases: it watches each owner's last renewal index and
// measures, on this node's clock, how long it has not changed. Orphan
// deadlines are stamped by their proposer, so skew between members shifts
// the grace by that much.
func (n *Node) leaseExpiry(ctx context.Context) {
	for ctx.Err() == nil {
		if err := n.raft.Barrier(n.cfg.WriteTimeout).Error(); err == nil {
			break
		} else if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return
		}
	}
	if ctx.Err() != nil {
		return
	}
	n.leader.ready.Store(true)

	type watch struct {
		inc      uint64
		index    uint64
		deadline time.Time
	}
	watches := map[string]*watch{}
	t := time.NewTicker(min(n.cfg.LeaseTimeout/10, 250*time.Millisecond))
	defer t.Stop()
	for {
		now := time.Now()
		seen := map[string]bool{}
		for _, o := range n.Registry().Owners() {
			seen[o.ID] = true
			if o.Expired || o.ID == n.cfg.NodeID {
				delete(watches, o.ID)
				continue
			}
			w := watches[o.ID]
			if w == nil || w.inc != o.Incarnation || w.index != o.RenewIndex {
				// New leader, new incarnation or a fresh renewal: a full
				// timeout from now.
				watches[o.ID] = &watch{inc: o.Incarnation, index: o.RenewIndex, deadline: now.Add(n.cfg.LeaseTimeout)}
				continue
			}
			if now.After(w.deadline) {
				n.logger.Warn("owner lease expired; orphaning its sessions", "owner", o.ID, "incarnation", o.Incarnation,
					"sessions", o.Sessions, "grace", n.cfg.OrphanGrace)
				err := n.proposeLeader(fsm.Command{Op: fsm.OpOrphanLease, Session: fsm.SessionID{Owner: o.ID, Incarnation: o.Incarnation},
					RenewIndex: o.RenewIndex, Time: now.Add(n.cfg.OrphanGrace).UnixNano()})
				if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
					return
				}
				if err != nil {
					n.logger.Warn("lease expiry not committed; retrying", "owner", o.ID, "error", err)
				}
			}
		}
		for id := range watches {
			if !seen[id] {
				delete(watches, id)
			}
		}
		if next, ok := n.Registry().NextOrphanDeadline(); ok && next <= now.UnixNano() {
			err := n.proposeLeader(fsm.Command{Op: fsm.OpExpireOrphans, Time: now.UnixNano()})
			if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
				return
			}
			if err != nil {
				n.logger.Warn("orphan expiry not committed; retrying", "error", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
