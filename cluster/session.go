package cluster

import (
	"fmt"
	"sync"
	"time"

	"github.com/raftlookupd/raftlookupd/fsm"
	"github.com/raftlookupd/raftlookupd/wire"
)

// sessions tracks the TCP sessions this node owns in its current
// incarnation, and the PING times not yet replicated. A PING is recorded
// here and carried by the next lease renewal, never one log entry each.
type sessions struct {
	owner           string
	inactiveTimeout time.Duration
	q               *queue

	mu      sync.Mutex
	inc     uint64
	nextSeq uint64
	open    map[uint64]*localSession
	kick    chan struct{} // asks the lease loop to renew now
	// draining: the node is stopping; closing connections queue nothing,
	// one OpOrphanOwner ends every session (Drain).
	draining bool
}

type localSession struct {
	// pinged is the newest PING time not yet replicated (0: none).
	pinged int64
	// replicated is the last-update time the log already holds (or will
	// hold, once queued commands commit).
	replicated int64
}

func newSessions(owner string, inactiveTimeout time.Duration, q *queue) *sessions {
	return &sessions{owner: owner, inactiveTimeout: inactiveTimeout, q: q,
		open: map[uint64]*localSession{}, kick: make(chan struct{}, 1)}
}

func (s *sessions) incarnation() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inc
}

// openSession records an identified connection and queues its opening.
func (s *sessions) openSession(peer fsm.PeerInfo) (fsm.SessionID, error) {
	now := time.Now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inc == 0 {
		return fsm.SessionID{}, fmt.Errorf("%w: no incarnation yet (not in a cluster, or no leader)", wire.ErrNotServing)
	}
	if s.draining {
		return fsm.SessionID{}, wire.ErrShutdown
	}
	id := fsm.SessionID{Owner: s.owner, Incarnation: s.inc, Seq: s.nextSeq + 1}
	if err := s.q.enqueue(fsm.Command{Op: fsm.OpOpenSession, Session: id, Peer: peer, Time: now}); err != nil {
		return fsm.SessionID{}, err
	}
	s.nextSeq++
	s.open[id.Seq] = &localSession{replicated: now}
	return id, nil
}

// live reports whether id is a session of the current incarnation.
func (s *sessions) live(id fsm.SessionID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return id.Incarnation == s.inc && s.open[id.Seq] != nil
}

// queue queues a REGISTER or UNREGISTER of a live session.
func (s *sessions) queue(c fsm.Command) error {
	if !s.live(c.Session) {
		return wire.ErrSessionGone
	}
	return s.q.enqueue(c)
}

// ping records a session's liveness. If the replicated time is older than
// half the inactivity timeout, the renewal is asked for now so the producer
// does not look inactive anywhere.
func (s *sessions) ping(id fsm.SessionID) error {
	now := time.Now().UnixNano()
	s.mu.Lock()
	ls := s.open[id.Seq]
	if ls == nil || id.Incarnation != s.inc {
		s.mu.Unlock()
		return wire.ErrSessionGone
	}
	ls.pinged = now
	urgent := time.Duration(now-ls.replicated) > s.inactiveTimeout/2
	s.mu.Unlock()
	if urgent {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// closeSession queues the end of a session (its connection closed).
func (s *sessions) closeSession(id fsm.SessionID) error {
	s.mu.Lock()
	_, ok := s.open[id.Seq]
	ok = ok && id.Incarnation == s.inc && !s.draining
	delete(s.open, id.Seq)
	s.mu.Unlock()
	if !ok {
		return nil // dropped with its incarnation, or left to OpOrphanOwner
	}
	return s.q.enqueue(fsm.Command{Op: fsm.OpCloseSession, Session: id})
}

// refused forgets sessions whose commands the leader refused for good and
// queues their close: their connections fail at their next command, and
// nsqd reconnects and registers again.
func (s *sessions) refused(ids []fsm.SessionID) {
	for _, id := range ids {
		_ = s.closeSession(id)
	}
}

func (s *sessions) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.open)
}

// renew queues one lease renewal carrying every PING since the last one.
func (s *sessions) renew() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.renewLocked()
}

func (s *sessions) renewLocked() error {
	if s.inc == 0 {
		return nil // no incarnation to renew
	}
	now := time.Now().UnixNano()
	c := fsm.Command{Op: fsm.OpRenewLease, Session: fsm.SessionID{Owner: s.owner, Incarnation: s.inc}, Time: now}
	for seq, ls := range s.open {
		if ls.pinged != 0 && len(c.Touches) < fsm.MaxTouches {
			c.Touches = append(c.Touches, fsm.Touch{Seq: seq, LastUpdate: ls.pinged})
		}
	}
	if err := s.q.enqueue(c); err != nil {
		return err
	}
	for _, t := range c.Touches {
		ls := s.open[t.Seq]
		ls.replicated, ls.pinged = ls.pinged, 0
	}
	return nil
}

// setIncarnation forgets every local session and takes a new incarnation
// (0: none, so no session opens). The caller closes the old connections.
func (s *sessions) setIncarnation(inc uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inc, s.nextSeq = inc, 0
	s.open = map[uint64]*localSession{}
}

func (s *sessions) isDraining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.draining
}

// startDrain makes session closes queue nothing from now on.
func (s *sessions) startDrain() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.draining = true
}
