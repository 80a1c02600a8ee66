package fsm

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors returned by Apply for individual commands.
var (
	// ErrChannelNotFound is the result of deleting a channel that does not exist.
	ErrChannelNotFound = errors.New("channel not found")
	// ErrStaleIncarnation is the result of every command of a batch whose
	// incarnation is no longer its owner's live one: nothing of it applied.
	ErrStaleIncarnation = errors.New("incarnation is over; the batch was not applied")
	// ErrDuplicateBatch is the result of every command of a batch that was
	// applied before (a retry after an ambiguous failure): it took effect
	// once, with a result only the first delivery saw.
	ErrDuplicateBatch = errors.New("batch applied before; its results went to the first delivery")
)

// Opened is Apply's result for OpOpenIncarnation: the incarnation the
// command's nonce opened, which is the log index of the entry that first
// carried it (a retry committed again answers the same number). The node
// that proposed it learns its incarnation from this answer, not from its own
// copy of the log, which may trail the leader's for seconds after a
// partition heals (cluster/incarnation.go).
type Opened uint64

// SessionID names one identified TCP connection cluster-wide: the node that owns
// the connection, that node's incarnation (a new one per process start and per
// lease expiry) and a sequence number the owner allocates.
type SessionID struct {
	Owner       string
	Incarnation uint64
	Seq         uint64
}

func (id SessionID) String() string {
	return fmt.Sprintf("%s/%d/%d", id.Owner, id.Incarnation, id.Seq)
}

// PeerInfo is what an nsqd says about itself in IDENTIFY, plus the socket's
// remote address.
type PeerInfo struct {
	RemoteAddress    string
	Hostname         string
	BroadcastAddress string
	TCPPort          int
	HTTPPort         int
	Version          string
}

// Identity is how reads merge sessions: one nsqd registered through several
// connections (several nodes, or twice to one node) is one producer.
type Identity struct {
	BroadcastAddress string
	TCPPort          int
	HTTPPort         int
}

func (p PeerInfo) Identity() Identity {
	return Identity{p.BroadcastAddress, p.TCPPort, p.HTTPPort}
}

// Filter holds the read-time parameters of nsqlookupd's FilterByActive. Reads
// may use the local clock; Apply never does.
type Filter struct {
	Now               time.Time
	InactiveTimeout   time.Duration
	TombstoneLifetime time.Duration
}

// NodesEntry is one entry of /nodes: one producer identity with the topics any of its
// live sessions registered, and per topic whether it is tombstoned.
type NodesEntry struct {
	PeerInfo
	Topics     []string
	Tombstones []bool
}

// DebugProducer is one raw producer record of /debug.
type DebugProducer struct {
	Session SessionID
	PeerInfo
	LastUpdate   int64
	Tombstoned   bool
	TombstonedAt int64
	// Orphaned: the session's owner went away; it stays listed until
	// OrphanDeadline (ns) unless a live session supersedes it.
	Orphaned       bool
	OrphanDeadline int64
}

// Member is a cluster node's advertised addresses.
type Member struct {
	ID          string
	RaftAddress string
	HTTPAddress string
	TCPAddress  string
}

// Owner is a node's lease record.
type Owner struct {
	ID          string
	Incarnation uint64
	// Nonce is the OpOpenIncarnation nonce that opened Incarnation (0: a
	// lease renewal opened it); a node finds its incarnation by it.
	Nonce uint64
	// Expired is set when the incarnation ended: its lease expired, or it
	// was orphaned or closed.
	Expired bool
	// RenewedAt is the proposer's clock at the last renewal (ns), informational.
	RenewedAt int64
	// RenewIndex is the log index of the last renewal; the leader watches it
	// change instead of comparing clocks across machines.
	RenewIndex uint64
	// Sessions counts the live sessions of Incarnation.
	Sessions int
}

// Touch carries a session's new last-update time in a lease renewal.
type Touch struct {
	Seq        uint64
	LastUpdate int64
}

// Result codes carry a command's result across a forwarded apply.
const (
	ResultOK              uint8 = 0
	ResultChannelNotFound uint8 = 1
	ResultStale           uint8 = 2
	ResultDuplicate       uint8 = 3
	ResultUnknown         uint8 = 255
)

// ResultCode maps a command's result error to its code.
func ResultCode(err error) uint8 {
	switch {
	case err == nil:
		return ResultOK
	case errors.Is(err, ErrChannelNotFound):
		return ResultChannelNotFound
	case errors.Is(err, ErrStaleIncarnation):
		return ResultStale
	case errors.Is(err, ErrDuplicateBatch):
		return ResultDuplicate
	}
	return ResultUnknown
}

// ErrUnknownResult stands for a result code this build does not know.
var ErrUnknownResult = errors.New("unknown command result")

// ResultError maps a result code back to its error.
func ResultError(code uint8) error {
	switch code {
	case ResultOK:
		return nil
	case ResultChannelNotFound:
		return ErrChannelNotFound
	case ResultStale:
		return ErrStaleIncarnation
	case ResultDuplicate:
		return ErrDuplicateBatch
	}
	return ErrUnknownResult
}
