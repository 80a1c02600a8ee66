package httpapi

import (
	"context"

	"github.com/raftlookupd/raftlookupd/fsm"
	"github.com/raftlookupd/raftlookupd/wire"
)

// Registry is the local state machine's read side. Implementations return
// copies the caller may keep, and empty (never nil) slices.
type Registry interface {
	// LookupStamped answers /lookup: the channels of topic and its
	// producers passed through f. found is false when no topic registration
	// exists, which the caller turns into 404 TOPIC_NOT_FOUND. Topic "*" is
	// the wildcard of docs/COMPATIBILITY.md#wildcard. The stamp lets the caller
	// Remember the encoded answer.
	LookupStamped(topic string, f fsm.Filter) (channels []string, producers []fsm.PeerInfo, found bool, s fsm.Stamp)
	// Remember keeps body, derived from the answer stamped s, for Recall.
	Remember(s fsm.Stamp, body []byte)
	// Recall returns the body remembered for topic while the answer it came
	// from still holds under f; the caller must not modify it.
	Recall(topic string, f fsm.Filter) ([]byte, bool)
	// Topics answers /topics: every topic registration, with or without
	// producers.
	Topics() []string
	// Channels answers /channels: the channels of topic, none if unknown;
	// "*" lists every channel of every topic.
	Channels(topic string) []string
	// Nodes answers /nodes: producers hidden only by f.InactiveTimeout, each
	// with equally long Topics and Tombstones (tombstoned within
	// f.TombstoneLifetime).
	Nodes(f fsm.Filter) []fsm.NodesEntry
	// Debug answers /debug: raw producer records keyed "category:key:subkey".
	Debug() map[string][]fsm.DebugProducer
}

// Cluster is what the HTTP API needs from the Raft node.
type Cluster interface {
	// Propose commits one HTTP mutation and returns once this node applied
	// it, with the command's own result (fsm.ErrChannelNotFound) or a
	// cluster error (wire.ErrNoLeader, context expiry, ...).
	Propose(ctx context.Context, cmd fsm.Command) error
	// ReadBarrier returns nil once local state may serve a read at level;
	// wire.ErrLeaderUnreachable when this node cannot.
	ReadBarrier(ctx context.Context, level wire.Consistency) error
	// ReadState describes the local state for the X-Raftlookupd-* headers.
	ReadState() wire.ReadState
	// Status describes the node and its members; unless local it asks the
	// other members for their lag.
	Status(ctx context.Context, local bool) (wire.Status, error)
	// Ready reports whether the node has a leader and applied up to its
	// commit index.
	Ready() bool
	Join(ctx context.Context, req wire.JoinRequest) error
	Leave(ctx context.Context, id string) error
	// TransferLeadership hands leadership to id, or to any voter if id is "".
	TransferLeadership(ctx context.Context, id string) error
}
