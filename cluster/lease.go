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
	wasMember := false
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
			n.renewLease()
		case <-n.sessions.kick:
			n.renewLease()
		case <-check.C:
			n.refreshCounts()
			n.checkExpired()
			n.checkServing(&wasMember)
			pub = n.publishMember(pub)
		}
	}
}

// checkExpired notices that this node's incarnation ended under it: the
// leader saw its lease lapse (it was cut off longer than the lease timeout)
// and orphaned its sessions. Its connections must close, so every nsqd
// re-dials and registers again, under the next incarnation.
func (n *Node) checkExpired() {
	inc := n.sessions.incarnation()
	o, ok := n.Registry().Owner(n.cfg.NodeID)
	if inc == 0 || !ok || !o.Expired || o.Incarnation != inc {
		return
	}
	n.endIncarnation(inc, leaseLapsed)
}

// leaseLapsed is why an incarnation ends when the cluster orphaned it.
const leaseLapsed = "this node's lease expired; its sessions were orphaned"

// endIncarnation ends incarnation inc on this node, if it is still the
// current one: the cluster orphaned it (checkExpired saw it applied, or the
// leader answered a batch of it as stale).
func (n *Node) endIncarnation(inc uint64, why string) {
	if n.sessions.incarnation() != inc || n.sessions.isDraining() {
		return
	}
	n.sessions.setIncarnation(0)
	n.queue.setIncarnation(0)
	n.logger.Warn(why+"; closing client connections", "incarnation", inc)
	n.closeClients()
	select {
	case n.incarnationOver <- struct{}{}:
	default:
	}
}

// closeClients asks the owner of the client connections to close them all.
func (n *Node) closeClients() {
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
