package cluster

import (
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
