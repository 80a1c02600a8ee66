package cluster

import (
	"sync"
	"time"

	"github.com/raftlookupd/raftlookupd/fsm"
)

// sessions tracks the TCP sessions this node owns in its current
// incarnation, and the PING times not yet replicated. A PING is recorded
// here and carried by the next lease renewal, never one log entry each.
type sessions struct {
	n *Node

	mu      sync.Mutex
	inc     uint64
	nextSeq uint64
	open    map[uint64]*localSession
	kick    chan struct{} // asks the lease loop to renew now
	// draining: the node is stopping; closing connections queue nothing,
	// one OpCloseOwner ends every session (Drain).
	draining bool
}

type localSession struct {
	// pinged is the newest PING time not yet replicated (0: none).
	pinged int64
	// replicated is the last-update time the log already holds (or will
	// hold, once queued commands commit).
	replicated int64
}

func newSessions(n *Node, inc uint64) *sessions {
	return &sessions{n: n, inc: inc, open: map[uint64]*localSession{}, kick: make(chan struct{}, 1)}
}

func (s *sessions) incarnation() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inc
}

// OpenSession records an identified connection.
func (n *Node) OpenSession(peer fsm.PeerInfo) (fsm.SessionID, error) {
	s := n.sessions
	now := time.Now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextSeq++
	id := fsm.SessionID{Owner: n.cfg.NodeID, Incarnation: s.inc, Seq: s.nextSeq}
	if err := n.queue.enqueue(fsm.Command{Op: fsm.OpOpenSession, Session: id, Peer: peer, Time: now}); err != nil {
		return fsm.SessionID{}, err
	}
	s.open[id.Seq] = &localSession{replicated: now}
	return id, nil
}

// live reports whether id is a session of the current incarnation.
func (s *sessions) live(id fsm.SessionID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return id.Incarnation == s.inc && s.open[id.Seq] != nil
}

// Register queues REGISTER topic [channel] for a session.
func (n *Node) Register(id fsm.SessionID, topic, channel string) error {
	if !n.sessions.live(id) {
		return ErrSessionGone
	}
	return n.queue.enqueue(fsm.Command{Op: fsm.OpRegister, Session: id, Topic: topic, Channel: channel})
}

// Unregister queues UNREGISTER topic [channel] for a session.
func (n *Node) Unregister(id fsm.SessionID, topic, channel string) error {
	if !n.sessions.live(id) {
		return ErrSessionGone
	}
	return n.queue.enqueue(fsm.Command{Op: fsm.OpUnregister, Session: id, Topic: topic, Channel: channel})
}

// Ping records a session's liveness. If the replicated time is older than
// half the inactivity timeout, the renewal is asked for now so the producer
// does not look inactive anywhere.
func (n *Node) Ping(id fsm.SessionID) {
	s := n.sessions
	now := time.Now().UnixNano()
	s.mu.Lock()
	ls := s.open[id.Seq]
	urgent := false
	if ls != nil && id.Incarnation == s.inc {
		ls.pinged = now
		urgent = time.Duration(now-ls.replicated) > n.cfg.InactiveProducerTimeout/2
	}
	s.mu.Unlock()
	if urgent {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

// CloseSession queues the end of a session (its connection closed).
func (n *Node) CloseSession(id fsm.SessionID) {
	s := n.sessions
	s.mu.Lock()
	_, ok := s.open[id.Seq]
	ok = ok && id.Incarnation == s.inc && !s.draining
	delete(s.open, id.Seq)
	s.mu.Unlock()
	if !ok {
		return // dropped with its incarnation, or left to OpCloseOwner
	}
	if err := n.queue.enqueue(fsm.Command{Op: fsm.OpCloseSession, Session: id}); err != nil {
		n.logger.Warn("cannot queue session close; the lease will drop it", "session", id, "error", err)
	}
}

// SessionCount returns the number of sessions this node owns.
func (n *Node) SessionCount() int {
	n.sessions.mu.Lock()
	defer n.sessions.mu.Unlock()
	return len(n.sessions.open)
}

// renew queues one lease renewal carrying every PING since the last one.
func (s *sessions) renew() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.renewLocked()
}

func (s *sessions) renewLocked() {
	now := time.Now().UnixNano()
	c := fsm.Command{Op: fsm.OpRenewLease, Session: fsm.SessionID{Owner: s.n.cfg.NodeID, Incarnation: s.inc}, Time: now}
	for seq, ls := range s.open {
		if ls.pinged != 0 {
			c.Touches = append(c.Touches, fsm.Touch{Seq: seq, LastUpdate: ls.pinged})
			ls.replicated, ls.pinged = ls.pinged, 0
		}
	}
	if err := s.n.queue.enqueue(c); err != nil {
		s.n.logger.Warn("cannot queue lease renewal", "error", err)
	}
}

// newIncarnation forgets every local session and opens a new incarnation;
// called when the leader expired this node's lease.
func (s *sessions) newIncarnation() uint64 {
	s.mu.Lock()
	inc := max(uint64(time.Now().UnixNano()), s.inc+1)
	s.inc = inc
	s.open = map[uint64]*localSession{}
	// Queued under the lock, so no session of the new incarnation can be
	// queued before the renewal that opens it.
	s.renewLocked()
	s.mu.Unlock()
	return inc
}

// StartDrain makes session closes queue nothing from now on: the node is
// stopping and Drain ends every session with one command. Call it before
// closing client connections.
func (n *Node) StartDrain() {
	n.sessions.mu.Lock()
	defer n.sessions.mu.Unlock()
	n.sessions.draining = true
}
