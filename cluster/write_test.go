package cluster

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/raftlookupd/raftlookupd/fsm"
	"github.com/raftlookupd/raftlookupd/wire"
)

// The leader accepts from a member only what that member's queue produces.
func TestCheckForwarded(t *testing.T) {
	own := fsm.SessionID{Owner: "n2", Incarnation: 3, Seq: 1}
	other := fsm.SessionID{Owner: "n3", Incarnation: 3, Seq: 1}
	batch := func(cmds ...fsm.Command) fsm.Command {
		return fsm.Command{Op: fsm.OpBatch, Session: fsm.SessionID{Owner: "n2", Incarnation: 3}, BatchSeq: 1, Batch: cmds}
	}
	for _, tc := range []struct {
		name string
		c    fsm.Command
		ok   bool
		size int // of the entry the command came in (0: 100 bytes)
	}{
		{"own sessions and client mutations", batch(
			fsm.Command{Op: fsm.OpOpenSession, Session: own, Peer: testPeer},
			fsm.Command{Op: fsm.OpRegister, Session: own, Topic: "t"},
			fsm.Command{Op: fsm.OpRenewLease, Session: fsm.SessionID{Owner: "n2", Incarnation: 3}},
			fsm.Command{Op: fsm.OpSetMember, Member: fsm.Member{ID: "n2", RaftAddress: "h:1"}},
			fsm.Command{Op: fsm.OpCreateTopic, Topic: "t"},
			fsm.Command{Op: fsm.OpTombstone, Topic: "t", Node: "h:1"},
		), true, 0},
		{"not a batch", fsm.Command{Op: fsm.OpCreateTopic, Topic: "t"}, false, 0},
		{"another node's session", batch(fsm.Command{Op: fsm.OpRegister, Session: other, Topic: "t"}), false, 0},
		{"another node's close", batch(fsm.Command{Op: fsm.OpCloseSession, Session: other}), false, 0},
		{"another node's lease", batch(fsm.Command{Op: fsm.OpCloseOwner, Session: fsm.SessionID{Owner: "n3", Incarnation: 3}}), false, 0},
		{"another node's member record", batch(fsm.Command{Op: fsm.OpSetMember, Member: fsm.Member{ID: "n3", RaftAddress: "h:1"}}), false, 0},
		{"lease expiry is a leader duty", batch(fsm.Command{Op: fsm.OpExpireLease, Session: fsm.SessionID{Owner: "n3", Incarnation: 3}}), false, 0},
		{"member removal is a leader duty", batch(fsm.Command{Op: fsm.OpRemoveMember, Member: fsm.Member{ID: "n3"}}), false, 0},
		{"invalid name", batch(fsm.Command{Op: fsm.OpCreateTopic, Topic: "bad$"}), false, 0},
		{"entry too large", batch(fsm.Command{Op: fsm.OpCreateTopic, Topic: "t"}), false, fsm.MaxEntryBytes + 1},
		{"entry at the limit", batch(fsm.Command{Op: fsm.OpCreateTopic, Topic: "t"}), true, fsm.MaxEntryBytes},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.size == 0 {
				tc.size = 100
			}
			err := checkForwarded(&tc.c, tc.size)
			if tc.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.ok && !errors.Is(err, wire.ErrBadRequest) {
				t.Fatalf("got %v, want wire.ErrBadRequest", err)
			}
		})
	}
}

// Without TLS, the Raft port admits the IPs members' Raft addresses
// resolve to, and loopback; names are resolved again at most once a second
// on a miss. A batch's origin must be the caller's own address.
func TestMemberIPs(t *testing.T) {
	lookups := 0
	m := &memberIPs{
		servers: func() map[string]string {
			return map[string]string{"n1": "10.0.0.1:4162", "n2": "node2:4162", "n3": "bad"}
		},
		resolve: func(host string) ([]net.IP, error) {
			lookups++
			if host == "node2" {
				return []net.IP{net.ParseIP("10.0.0.2")}, nil
			}
			return nil, errors.New("no such host")
		},
	}
	for remote, want := range map[string]bool{
		"10.0.0.1:5555": true, "10.0.0.2:1": true, "127.0.0.1:9": true, "[::1]:9": true,
		"10.0.0.3:1": false, "garbage": false, "node2:1": false,
	} {
		if got := m.allowed(remote); got != want {
			t.Errorf("allowed(%q) = %v, want %v", remote, got, want)
		}
	}
	if lookups != 1 {
		t.Errorf("%d lookups, want 1 (misses within a second reuse the last resolution)", lookups)
	}
	for _, c := range []struct {
		remote, id string
		want       bool
	}{
		{"10.0.0.1:1", "n1", true}, {"10.0.0.2:1", "n2", true}, {"127.0.0.1:1", "n2", true},
		{"10.0.0.1:1", "n2", false}, {"10.0.0.2:1", "n1", false}, {"10.0.0.9:1", "n1", false},
	} {
		if got := m.allowedFor(c.remote, c.id); got != c.want {
			t.Errorf("allowedFor(%q, %q) = %v, want %v", c.remote, c.id, got, c.want)
		}
	}
	res := func(h string) ([]net.IP, error) {
		if h == "me.example" {
			return []net.IP{net.ParseIP("10.0.0.7")}, nil
		}
		return nil, errors.New("no such host")
	}
	for _, c := range []struct {
		remote, addr string
		want         bool
	}{
		{"10.0.0.7:1", "10.0.0.7:4162", true}, {"10.0.0.7:1", "me.example:4162", true},
		{"127.0.0.1:1", "10.9.9.9:4162", true}, {"10.0.0.8:1", "me.example:4162", false},
		{"10.0.0.8:1", "127.0.0.1:1", false},
	} {
		if got := callerOwnsAddress(c.remote, c.addr, res); got != c.want {
			t.Errorf("callerOwnsAddress(%q, %q) = %v, want %v", c.remote, c.addr, got, c.want)
		}
	}
}

// Regression (found by e2e/chaos: a retried /channel/delete answered 200 for
// a channel that did not exist): when a retry finds its batch applied
// before, a channel delete's result is unknown (503, outcome unknown), while
// commands whose result is always nil succeed.
func TestProposeOnDuplicateBatch(t *testing.T) {
	dup := func(_ context.Context, _, _ uint64, data []byte) ([]error, uint64, error) {
		c, err := fsm.Decode(data)
		if err != nil {
			return nil, 0, err
		}
		res := make([]error, len(c.Batch))
		for i := range res {
			res[i] = fsm.ErrDuplicateBatch
		}
		return res, 1, nil
	}
	q := newQueue(queueConfig{origin: "n1", maxBatch: 10, maxQueue: 10, commit: dup})
	q.setIncarnation(3)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q.run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	n := &Node{cfg: Config{MaxRegistrations: 0}, queue: q}
	pctx, pcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer pcancel()
	if err := n.Propose(pctx, fsm.Command{Op: fsm.OpDeleteChannel, Topic: "t", Channel: "c"}); !errors.Is(err, wire.ErrNoLeader) {
		t.Fatalf("channel delete applied by a lost attempt: %v, want an unknown outcome (wire.ErrNoLeader)", err)
	}
	if err := n.Propose(pctx, fsm.Command{Op: fsm.OpCreateTopic, Topic: "t"}); err != nil {
		t.Fatalf("topic create applied by a lost attempt: %v, want success", err)
	}
}

// Streams that arrive while Raft starts wait for it before any member
// check, so only maxStartWaiters of them are held; the next is refused at
// once, and a waiter is let go when the node shuts down.
func TestRaftStreamsWaitingForStartAreBounded(t *testing.T) {
	n := &Node{raftStarted: make(chan struct{}), startWaiters: make(chan struct{}, maxStartWaiters)}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	remote := &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 40000}
	results := make(chan bool, maxStartWaiters)
	for range maxStartWaiters {
		go func() { results <- n.raftStreamAllowed(remote) }()
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(n.startWaiters) < maxStartWaiters {
		if time.Now().After(deadline) {
			t.Fatalf("%d streams waiting, want %d", len(n.startWaiters), maxStartWaiters)
		}
		time.Sleep(time.Millisecond)
	}
	// refusedWithin fails the test unless ch yields false within 5 s.
	refusedWithin := func(ch <-chan bool, what string) {
		t.Helper()
		select {
		case ok := <-ch:
			if ok {
				t.Fatalf("%s was admitted", what)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s still waits after 5s", what)
		}
	}
	refused := make(chan bool, 1)
	go func() { refused <- n.raftStreamAllowed(remote) }()
	refusedWithin(refused, "a stream beyond the bound")
	n.cancel()
	for range maxStartWaiters {
		refusedWithin(results, "a stream waiting when the node shut down")
	}
	if len(n.startWaiters) != 0 {
		t.Errorf("%d start waiters left", len(n.startWaiters))
	}
}
