package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlookupd/raftlookupd/wire"
)

// A node that cannot commit must not acknowledge: an nsqd whose REGISTERs
// it answered OK would believe itself listed while the cluster never hears
// of it. So a node stops serving clients when
//   - its Raft has shut down (it was removed from the configuration),
//   - it was a member and no longer is, or
//   - its queue has held commands without committing any for longer than
//     the lease timeout (by then the leader has orphaned its sessions).
//
// Not serving, it closes its client connections, refuses new sessions and
// reports not ready; it serves again by itself once the cause is gone (a
// stalled queue that commits again), under a new incarnation if its old one
// was orphaned meanwhile.

// checkServing re-evaluates whether this node may acknowledge clients.
func (n *Node) checkServing(wasMember *bool) {
	reason := ""
	member := n.isMember()
	switch {
	case n.retiredSince() != 0:
		reason = "leaving the cluster (leave)"
	case n.raft.State() == raft.Shutdown:
		reason = "raft has shut down (removed from the cluster?)"
	case *wasMember && !member:
		reason = "no longer a member of the configuration"
	case n.queue.stalledFor() > n.cfg.LeaseTimeout:
		reason = fmt.Sprintf("nothing committed for %v, longer than the lease timeout", n.queue.stalledFor().Round(time.Millisecond))
	}
	*wasMember = *wasMember || member
	if reason == "" {
		if !n.serving.Swap(true) && n.sessions.incarnation() != 0 {
			n.logger.Info("serving clients")
		}
		return
	}
	if n.serving.Swap(false) {
		n.logger.Error("this node cannot commit; it stops acknowledging clients until it can", "reason", reason)
		n.closeClients()
	}
}

// servingErr is nil while the node may acknowledge clients.
func (n *Node) servingErr() error {
	if n.serving.Load() {
		return nil
	}
	return fmt.Errorf("%w: this node cannot commit now; ask another node", wire.ErrNotServing)
}

// retire is the leader telling this node it is about to remove it: from now
// on it acknowledges nothing, and it returns once what its queue held is
// committed (or ctx ends), so nothing it acknowledged is lost with it. A
// later configuration that holds this node again (a new join) ends the
// retirement.
func (n *Node) retire(ctx context.Context) error {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return err
	}
	n.retireIndex.Store(f.Index())
	if n.serving.Swap(false) {
		n.logger.Warn("the leader is removing this node; it stops acknowledging clients")
		n.closeClients()
	}
	for n.queue.depth() > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: queue not drained before removal: %v", wire.ErrNoLeader, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// retiredSince returns the configuration index at which this node was told
// it is being removed, or 0 when it is not (any more): a configuration after
// that index that holds the node again means it was added back.
func (n *Node) retiredSince() uint64 {
	idx := n.retireIndex.Load()
	if idx == 0 {
		return 0
	}
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return idx
	}
	if f.Index() > idx {
		for _, s := range f.Configuration().Servers {
			if string(s.ID) == n.cfg.NodeID {
				n.retireIndex.CompareAndSwap(idx, 0)
				return 0
			}
		}
	}
	return idx
}
