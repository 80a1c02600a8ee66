package wire

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// Sentinel errors. Wrap them with %w; check them with errors.Is.
var (
	// ErrNoLeader: no leader could be reached within the timeout, so a write
	// or an admin change was not (or not knowingly) committed.
	ErrNoLeader = errors.New("no leader")
	// ErrLeaderUnreachable: this node cannot serve a bounded or linearizable
	// read now; the client should ask another node.
	ErrLeaderUnreachable = errors.New("leader unreachable")
	// ErrNotLeader: a leader-only request reached a node that does not lead.
	ErrNotLeader = errors.New("not the leader")
	// ErrUnknownMember: the request named a server that is not a member.
	ErrUnknownMember = errors.New("not a member of the cluster")
	// ErrBadRequest: the request is malformed or refused for good; sending
	// it again cannot succeed.
	ErrBadRequest = errors.New("bad request")
	// ErrTooLarge: the request is larger than the receiver accepts.
	ErrTooLarge = errors.New("request too large")
	// ErrForbidden: the caller may not make this request (no admin token,
	// or not from loopback when the node has none).
	ErrForbidden = errors.New("forbidden")
	// ErrSessionGone: the TCP session is not (or no longer) open on this
	// node, for example because this node's lease expired.
	ErrSessionGone = errors.New("session closed")
	// ErrQueueFull: too many commands wait for replication on this node.
	ErrQueueFull = errors.New("replication queue full")
	// ErrLimit: a cluster-wide cap (sessions, registrations) is reached.
	ErrLimit = errors.New("limit reached")
	// ErrShutdown: the node is stopping.
	ErrShutdown = errors.New("node is shutting down")
	// ErrNotServing: the node cannot commit (removed from the cluster, Raft
	// stopped, or its queue stalled longer than the lease), so it
	// acknowledges nothing until it can again.
	ErrNotServing = errors.New("node is not serving")
)

// statusTable is the one mapping between sentinels and HTTP statuses. The
// first row with a status wins when mapping back.
var statusTable = []struct {
	err    error
	status int
}{
	{ErrBadRequest, http.StatusBadRequest},
	{ErrForbidden, http.StatusForbidden},
	{ErrUnknownMember, http.StatusNotFound},
	{ErrNotLeader, http.StatusConflict},
	{ErrTooLarge, http.StatusRequestEntityTooLarge},
	{ErrNoLeader, http.StatusServiceUnavailable},
	{ErrLeaderUnreachable, http.StatusServiceUnavailable},
	{ErrShutdown, http.StatusServiceUnavailable},
	{ErrQueueFull, http.StatusServiceUnavailable},
	{ErrNotServing, http.StatusServiceUnavailable},
	{ErrLimit, http.StatusServiceUnavailable},
	{ErrSessionGone, http.StatusServiceUnavailable},
}

// StatusOf returns the HTTP status for err: the status of the first
// sentinel it wraps, 503 for an expired or cancelled context (the outcome is
// unknown, as with any timed-out consensus write), and 500 otherwise.
func StatusOf(err error) int {
	if err == nil {
		return http.StatusOK
	}
	for _, row := range statusTable {
		if errors.Is(err, row.err) {
			return row.status
		}
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// RemoteError is a non-2xx answer from another node. It unwraps to the
// sentinel its status stands for, so errors.Is works across the hop, while
// its text is the remote node's own message.
type RemoteError struct {
	Status  int
	Message string
}

func (e *RemoteError) Error() string {
	if e.Message != "" {
		return e.Message
	}
	return fmt.Sprintf("remote node answered %d %s", e.Status, http.StatusText(e.Status))
}

// Unwrap returns the sentinel for e.Status (nil when none).
func (e *RemoteError) Unwrap() error { return ErrorOf(e.Status) }

// ErrorOf maps an HTTP status back to its sentinel: the first in the table
// with that status (503 is ErrNoLeader), nil when none has it.
func ErrorOf(status int) error {
	for _, row := range statusTable {
		if row.status == status {
			return row.err
		}
	}
	return nil
}
