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
func (n *Node) retire(ctx context.Context, leaderIndex uint64) error {
	// Every configuration at or below this index is older than the
	// removal; one above it that holds this node again means it was added
	// back. Not raft's GetConfiguration().Index(): hashicorp/raft v1.7
	// leaves it 0, and a retirement at index 0 read as none, so the node
	// served again at its next check until the removal reached it.
	n.retireIndex.Store(max(leaderIndex, n.raft.LastIndex(), 1))
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
	if n.addedBackAfter(idx) {
		n.retireIndex.CompareAndSwap(idx, 0)
		return 0
	}
	return idx
}

// addedBackAfter reports whether a configuration newer than index holds
// this node: a committed configuration entry it applied, or the
// configuration of a snapshot it was sent (which no entry reports).
func (n *Node) addedBackAfter(index uint64) bool {
	self := raft.ServerID(n.cfg.NodeID)
	if at, servers := n.fsm.lastConfiguration(); at > index && servers[self] {
		return true
	}
	if n.snaps == nil {
		return false
	}
	metas, err := n.snaps.List()
	if err != nil || len(metas) == 0 || metas[0].ConfigurationIndex <= index {
		return false
	}
	for _, s := range metas[0].Configuration.Servers {
		if s.ID == self {
			return true
		}
	}
	return false
}
