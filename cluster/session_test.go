package cluster

import (
	"errors"
	"testing"
	"time"

	"github.com/raftlookupd/raftlookupd/fsm"
	"github.com/raftlookupd/raftlookupd/wire"
)

// queued drains what a queue holds, without running it.
func queued(q *queue) []fsm.Command {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []fsm.Command
	for _, size := range q.sizes {
		b, err := fsm.EncodeBatch("n1", 1, 1, 1, q.elems[:size])
		if err != nil {
			panic(err)
		}
		c, err := fsm.Decode(b)
		if err != nil {
			panic(err)
		}
		out = append(out, c.Batch[0])
		q.elems = q.elems[size:]
	}
	q.elems, q.sizes, q.dones = nil, nil, nil
	return out
}

func newTestSessions() (*sessions, *queue) {
	q := newQueue(queueConfig{origin: "n1", maxBatch: 100, maxQueue: 100})
	s := newSessions("n1", 300*time.Second, q)
	s.setIncarnation(5)
	return s, q
}

var testPeer = fsm.PeerInfo{RemoteAddress: "10.0.0.1:5", Hostname: "h", BroadcastAddress: "nsqd", TCPPort: 4150, HTTPPort: 4151, Version: "1.3.0"}

func TestSessionsLifecycle(t *testing.T) {
	s, q := newTestSessions()
	id, err := s.openSession(testPeer)
	if err != nil {
		t.Fatal(err)
	}
	if id != (fsm.SessionID{Owner: "n1", Incarnation: 5, Seq: 1}) {
		t.Fatalf("session id %v", id)
	}
	if err := s.queue(fsm.Command{Op: fsm.OpRegister, Session: id, Topic: "t"}); err != nil {
		t.Fatal(err)
	}
	cmds := queued(q)
	if len(cmds) != 2 || cmds[0].Op != fsm.OpOpenSession || cmds[1].Op != fsm.OpRegister {
		t.Fatalf("queued %v, want open then register", cmds)
	}

	// PINGs are recorded, not queued; the next renewal carries them.
	if err := s.ping(id); err != nil {
		t.Fatal(err)
	}
	if cmds := queued(q); len(cmds) != 0 {
		t.Fatalf("a PING queued %v", cmds)
	}
	if err := s.renew(); err != nil {
		t.Fatal(err)
	}
	cmds = queued(q)
	if len(cmds) != 1 || cmds[0].Op != fsm.OpRenewLease || len(cmds[0].Touches) != 1 || cmds[0].Touches[0].Seq != 1 {
		t.Fatalf("renewal %+v, want one touch of seq 1", cmds)
	}
	if err := s.renew(); err != nil {
		t.Fatal(err)
	}
	if cmds := queued(q); len(cmds) != 1 || len(cmds[0].Touches) != 0 {
		t.Fatalf("second renewal %+v, want no touches", cmds)
	}

	// A close queues one command; the session is gone afterwards.
	if err := s.closeSession(id); err != nil {
		t.Fatal(err)
	}
	if cmds := queued(q); len(cmds) != 1 || cmds[0].Op != fsm.OpCloseSession {
		t.Fatalf("close queued %v", cmds)
	}
	if err := s.ping(id); !errors.Is(err, wire.ErrSessionGone) {
		t.Fatalf("PING of a closed session: %v, want wire.ErrSessionGone", err)
	}
	if err := s.queue(fsm.Command{Op: fsm.OpRegister, Session: id, Topic: "t"}); !errors.Is(err, wire.ErrSessionGone) {
		t.Fatalf("REGISTER of a closed session: %v", err)
	}
}

// While draining, closing connections queue nothing (one OpCloseOwner ends
// them all); a session refused by the leader is closed and forgotten.
func TestSessionsDrainAndRefused(t *testing.T) {
	s, q := newTestSessions()
	a, _ := s.openSession(testPeer)
	b, _ := s.openSession(testPeer)
	queued(q)
	s.refused([]fsm.SessionID{a})
	if cmds := queued(q); len(cmds) != 1 || cmds[0].Op != fsm.OpCloseSession || cmds[0].Session != a {
		t.Fatalf("refused session: queued %v, want its close", cmds)
	}
	if err := s.ping(a); !errors.Is(err, wire.ErrSessionGone) {
		t.Fatalf("PING of a refused session: %v", err)
	}
	s.startDrain()
	if err := s.closeSession(b); err != nil {
		t.Fatal(err)
	}
	if cmds := queued(q); len(cmds) != 0 {
		t.Fatalf("close while draining queued %v", cmds)
	}
	if n := s.count(); n != 0 {
		t.Fatalf("%d sessions left", n)
	}
}

// A new incarnation forgets every session; with none, no session opens
// and no renewal is queued.
func TestSessionsSetIncarnation(t *testing.T) {
	s, q := newTestSessions()
	id, _ := s.openSession(testPeer)
	queued(q)
	s.setIncarnation(0)
	if s.live(id) {
		t.Fatal("a session survived the end of its incarnation")
	}
	if _, err := s.openSession(testPeer); !errors.Is(err, wire.ErrNotServing) {
		t.Fatalf("open without an incarnation: %v, want wire.ErrNotServing", err)
	}
	if err := s.renew(); err != nil || len(queued(q)) != 0 {
		t.Fatalf("renewal without an incarnation: %v, queued something", err)
	}
	s.setIncarnation(9)
	next, err := s.openSession(testPeer)
	if err != nil || next != (fsm.SessionID{Owner: "n1", Incarnation: 9, Seq: 1}) {
		t.Fatalf("session %v, %v after incarnation 9", next, err)
	}
}
