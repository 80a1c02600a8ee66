package cluster

import (
	"fmt"
	"sync/atomic"

	"github.com/raftlookupd/raftlookupd/fsm"
	"github.com/raftlookupd/raftlookupd/wire"
)

// Cluster-wide caps keep what clients can make the registry hold bounded:
// every node refuses a new session, registration or HTTP-created key once
// the replicated registry holds the cap. Each node checks against counts it
// refreshes every lease check (250ms at most), so a burst across nodes can
// pass a cap by what arrives in that time; the per-node connection and
// per-connection registration limits bound that overshoot.

// registryCounts is the registry's size as of the last refresh.
type registryCounts struct {
	sessions      atomic.Int64
	registrations atomic.Int64
}

func (n *Node) refreshCounts() {
	st := n.Registry().Stats()
	n.counts.sessions.Store(int64(st.Sessions))
	n.counts.registrations.Store(int64(registrations(st)))
}

// registrations counts what registrations and HTTP creates hold: producer
// records and the keys themselves.
func registrations(st fsm.Stats) int { return st.Producers + st.Topics + st.Channels }

func (n *Node) checkSessionCap() error {
	if got := n.counts.sessions.Load(); n.cfg.MaxSessions > 0 && got >= int64(n.cfg.MaxSessions) {
		return fmt.Errorf("%w: the cluster holds %d sessions, its cap (-max-sessions %d)", wire.ErrLimit, got, n.cfg.MaxSessions)
	}
	return nil
}

func (n *Node) checkRegistrationCap() error {
	if got := n.counts.registrations.Load(); n.cfg.MaxRegistrations > 0 && got >= int64(n.cfg.MaxRegistrations) {
		return fmt.Errorf("%w: the cluster holds %d registrations, its cap (-max-cluster-registrations %d)",
			wire.ErrLimit, got, n.cfg.MaxRegistrations)
	}
	return nil
}
