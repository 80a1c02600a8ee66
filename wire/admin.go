package wire

import (
	"fmt"
	"time"
)

// Admin API paths, served on the HTTP port.
const (
	PathStatus   = "/cluster/status"
	PathReady    = "/cluster/ready"
	PathJoin     = "/cluster/join"
	PathLeave    = "/cluster/leave"
	PathTransfer = "/cluster/transfer-leadership"
)

// Status is the document of GET /cluster/status.
type Status struct {
	NodeID        string `json:"node_id"`
	State         string `json:"state"`
	LeaderID      string `json:"leader_id"`
	LeaderAddress string `json:"leader_address"`
	Term          uint64 `json:"term"`
	LastLogIndex  uint64 `json:"last_log_index"`
	CommitIndex   uint64 `json:"commit_index"`
	AppliedIndex  uint64 `json:"applied_index"`
	// Registry is what this node's registry held when it answered.
	Registry RegistryCounts `json:"registry"`
	Members  []MemberStatus `json:"members"`
}

// RegistryCounts sizes one node's registry. Nodes that applied the same log
// hold the same registry, so once writes stop, members at lag 0 show equal
// counts.
type RegistryCounts struct {
	// Sessions counts producer sessions, orphans included.
	Sessions int `json:"sessions"`
	Orphans  int `json:"orphans"`
	Topics   int `json:"topics"`
	Channels int `json:"channels"`
	// Producers counts producer records: one per topic and one per channel
	// a session registered.
	Producers int `json:"producers"`
}

// MemberStatus is one server of the Raft configuration.
type MemberStatus struct {
	ID          string `json:"id"`
	RaftAddress string `json:"raft_address"`
	HTTPAddress string `json:"http_address"`
	TCPAddress  string `json:"tcp_address"`
	Suffrage    string `json:"suffrage"`
	Leader      bool   `json:"leader"`
	// Lag is how many log entries the member trails the leader's commit
	// index, when known (absent for a member that did not answer).
	Lag *uint64 `json:"lag,omitempty"`
	// Registry is the member's registry counts, when it answered.
	Registry *RegistryCounts `json:"registry,omitempty"`
}

// JoinRequest asks the cluster to add a server.
type JoinRequest struct {
	ID          string `json:"id"`
	RaftAddress string `json:"raft_address"`
	// Voter defaults to true when absent.
	Voter *bool `json:"voter,omitempty"`
}

// IsVoter reports whether the request asks for a voting member.
func (r JoinRequest) IsVoter() bool { return r.Voter == nil || *r.Voter }

// LeaveRequest asks the cluster to remove a server.
type LeaveRequest struct {
	ID string `json:"id"`
}

// TransferRequest asks the leader to hand leadership over, to ID if set.
type TransferRequest struct {
	ID string `json:"id,omitempty"`
}

// Ready is the document of GET /cluster/ready.
type Ready struct {
	Ready   bool   `json:"ready"`
	Message string `json:"message,omitempty"`
}

// Message is the body of every admin error: {"message": "..."}.
type Message struct {
	Message string `json:"message"`
}

// Consistency is a read's consistency level.
type Consistency string

const (
	// Stale reads answer from local state whatever its age.
	Stale Consistency = "stale"
	// Bounded reads answer locally while local state is within the maximum
	// staleness of the leader's.
	Bounded Consistency = "bounded"
	// Linearizable reads wait until this node applied the leader's commit
	// index as of a leadership check made after the read arrived.
	Linearizable Consistency = "linearizable"
)

// ParseConsistency accepts "stale", "bounded" and "linearizable".
func ParseConsistency(s string) (Consistency, error) {
	switch c := Consistency(s); c {
	case Stale, Bounded, Linearizable:
		return c, nil
	}
	return "", fmt.Errorf("%w: consistency %q: want stale, bounded or linearizable", ErrBadRequest, s)
}

// ReadState describes the local state a read is served from; HTTP sends it
// in the X-Raftlookupd-* headers.
type ReadState struct {
	LeaderID     string
	AppliedIndex uint64
	// LastContact is the time since this node last heard from the leader; 0
	// on the leader, -1 when it never did.
	LastContact time.Duration
}
