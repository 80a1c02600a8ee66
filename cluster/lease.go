package cluster

import (
	"time"

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
			n.renewLease()
		case <-n.sessions.kick:
			n.renewLease()
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
	select {
	case n.expired <- struct{}{}:
	default: // one pending signal closes every connection
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
	want := fsm.Member{ID: n.cfg.NodeID, RaftAddress: n.cfg.RaftAdvertise, HTTPAddress: n.cfg.HTTPAdvertise, TCPAddress: n.cfg.TCPAdvertise}
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

func (n *Node) renewLease() {
	if err := n.sessions.renew(); err != nil {
		n.logger.Warn("cannot queue lease renewal", "error", err)
	}
}
