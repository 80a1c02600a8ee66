package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlookupd/raftlookupd/fsm"
)

// The TCP side of the node (tcpproto's Registry): sessions are recorded
// locally and their commands queued; nothing here waits for Raft.

// OpenSession records an identified connection.
func (n *Node) OpenSession(peer fsm.PeerInfo) (fsm.SessionID, error) {
	if err := n.servingErr(); err != nil {
		return fsm.SessionID{}, err
	}
	if err := n.checkSessionCap(); err != nil {
		return fsm.SessionID{}, err
	}
	return n.sessions.openSession(peer)
}

// Register queues REGISTER topic [channel] for a session.
func (n *Node) Register(id fsm.SessionID, topic, channel string) error {
	if err := n.servingErr(); err != nil {
		return err
	}
	if err := n.checkRegistrationCap(); err != nil {
		return err
	}
	return n.sessions.queue(fsm.Command{Op: fsm.OpRegister, Session: id, Topic: topic, Channel: channel})
}

// Unregister queues UNREGISTER topic [channel] for a session.
func (n *Node) Unregister(id fsm.SessionID, topic, channel string) error {
	if err := n.servingErr(); err != nil {
		return err
	}
	return n.sessions.queue(fsm.Command{Op: fsm.OpUnregister, Session: id, Topic: topic, Channel: channel})
}

// Ping records a session's liveness; wire.ErrSessionGone when the session
// no longer exists here, so its connection closes.
func (n *Node) Ping(id fsm.SessionID) error {
	if err := n.servingErr(); err != nil {
		return err
	}
	return n.sessions.ping(id)
}

// CloseSession queues the end of a session (its connection closed).
func (n *Node) CloseSession(id fsm.SessionID) {
	if err := n.sessions.closeSession(id); err != nil {
		n.logger.Warn("cannot queue session close; the lease will drop it", "session", id, "error", err)
	}
}

// SessionCount returns the number of sessions this node owns.
func (n *Node) SessionCount() int { return n.sessions.count() }

// StartDrain makes session closes queue nothing from now on: the node is
// stopping and Drain ends every session with one command. Call it before
// closing client connections.
func (n *Node) StartDrain() { n.sessions.startDrain() }

// Drain prepares a clean stop: it ends this incarnation with one command
// that orphans its sessions (after StartDrain, closing connections queue
// nothing): their nsqds are alive and will re-dial another node or this one
// when it is back, so their producers stay listed for the orphan grace. It
// waits until the queue is replicated (or ctx ends), and hands leadership
// over if this node leads. The node keeps serving reads. Call it after the
// TCP server stopped.
func (n *Node) Drain(ctx context.Context) error {
	var err error
	if inc := n.sessions.incarnation(); inc != 0 {
		done := n.queue.enqueueWait(fsm.Command{Op: fsm.OpOrphanOwner,
			Session: fsm.SessionID{Owner: n.cfg.NodeID, Incarnation: inc},
			Time:    time.Now().Add(n.cfg.OrphanGrace).UnixNano()})
		select {
		case err = <-done:
			if errors.Is(err, fsm.ErrDuplicateBatch) {
				err = nil // an earlier attempt applied it
			}
		case <-ctx.Done():
			err = fmt.Errorf("drain: %w", ctx.Err())
		}
	}
	if n.raft.State() == raft.Leader && n.voters() > 1 {
		if terr := n.raft.LeadershipTransfer().Error(); terr != nil && !errors.Is(terr, raft.ErrNotLeader) {
			n.logger.Warn("leadership transfer failed", "error", terr)
		} else {
			n.logger.Info("leadership transferred")
		}
	}
	return err
}
