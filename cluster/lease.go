package cluster

import (
	"context"
	"errors"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlookupd/raftlookupd/fsm"
)

// leaseLoop renews this node's owner lease (carrying PING times), publishes
// its member addresses, and notices when the leader expired it.
func (n *Node) leaseLoop() {
	t := time.NewTicker(n.cfg.LeaseRenewInterval)
	defer t.Stop()
	check := time.NewTicker(min(n.cfg.LeaseRenewInterval, 250*time.Millisecond))
	defer check.Stop()
	var pub published
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
			n.sessions.renew()
		case <-n.sessions.kick:
			n.sessions.renew()
		case <-check.C:
			n.catchUp()
			n.checkExpired()
			pub = n.publishMember(pub)
		}
	}
}

// checkExpired starts a new incarnation once the state machine shows this
// node's current incarnation expired (it was cut off longer than the lease
// timeout). The connections of the old one must close: their registrations
// are gone everywhere, and nsqd re-registers everything when it reconnects.
func (n *Node) checkExpired() {
	o, ok := n.Registry().Owner(n.cfg.NodeID)
	if !ok || !o.Expired || o.Incarnation != n.sessions.incarnation() {
		return
	}
	inc := n.sessions.newIncarnation()
	n.logger.Warn("this node's lease expired; its sessions were dropped, closing client connections", "new_incarnation", inc)
	if f := n.onExpired.Load(); f != nil {
		(*f)()
	}
}

// published is the member record this node last queued, and the channel
// that reports its local apply.
type published struct {
	want fsm.Member
	done <-chan error
}

// publishMember queues this node's addresses when the replicated record
// differs. It queues again only once the previous attempt has been applied:
// a record applied and later deleted (leave, then join again while running)
// is published anew.
func (n *Node) publishMember(last published) published {
	n.memberMu.Lock()
	want := fsm.Member{ID: n.cfg.NodeID, RaftAddress: n.cfg.RaftAdvertise, HTTPAddress: n.cfg.HTTPAdvertise, TCPAddress: n.cfg.TCPAdvertise}
	n.memberMu.Unlock()
	if got, ok := n.Registry().Member(n.cfg.NodeID); ok && got == want {
		return published{want: want}
	}
	if !n.isMember() {
		return last
	}
	if last.want == want && last.done != nil {
		select {
		case <-last.done:
		default:
			return last // still on its way
		}
	}
	return published{want: want, done: n.queue.enqueueWait(fsm.Command{Op: fsm.OpSetMember, Member: want})}
}

func (n *Node) isMember() bool {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == n.cfg.NodeID {
			return true
		}
	}
	return false
}

// leaderLoop runs leader-only duties while this node leads. Raft's NotifyCh
// is reliable (never drops a transition); each gain rebuilds the duty's state
// from the state machine after a Barrier.
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
		case leader := <-n.leaderCh:
			if stop != nil {
				stop()
				<-done
				stop = nil
			}
			n.leaderReady.Store(false)
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

// leaseExpiry expires owners whose lease renewals stopped. It never compares
// clocks across machines: it watches each owner's last renewal index and
// measures, on this node's clock, how long it has not changed.
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
	n.leaderReady.Store(true)

	type watch struct {
		inc      uint64
		index    uint64
		deadline time.Time
		expiring bool
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
			if now.After(w.deadline) && !w.expiring {
				w.expiring = true
				n.logger.Warn("owner lease expired; dropping its sessions", "owner", o.ID, "incarnation", o.Incarnation, "sessions", o.Sessions)
				if err := n.queue.enqueue(fsm.Command{Op: fsm.OpExpireLease, Session: fsm.SessionID{Owner: o.ID, Incarnation: o.Incarnation}, RenewIndex: o.RenewIndex}); err != nil {
					w.expiring = false
				}
			}
		}
		for id := range watches {
			if !seen[id] {
				delete(watches, id)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
