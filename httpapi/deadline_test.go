package httpapi

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// coarsePair returns the server side (a coarseConn) and the client side of
// a loopback TCP connection, and the listener.
func coarsePair(t *testing.T) (*coarseListener, *coarseConn, net.Conn) {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newCoarseListener(inner)
	t.Cleanup(func() { l.Close() })
	client, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return l, c.(*coarseConn), client
}

// state reads c's deadline state as the sweeper would.
func (c *coarseConn) state() (want int64, readSet bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.want.Load(), c.readSet
}

// readResult starts a Read on c and reports its error and when it ended.
func readResult(c net.Conn) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		done <- err
	}()
	return done
}

func waitRead(t *testing.T, done <-chan error, within time.Duration) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(within):
		t.Fatalf("the Read did not return within %v", within)
		return nil
	}
}

// A far deadline is kept in memory, not on the socket, and still ends a
// blocked Read once it passed, and never before.
func TestCoarseFarDeadlineEnforced(t *testing.T) {
	_, c, _ := coarsePair(t)
	deadline := time.Now().Add(4 * deadlineTick)
	if err := c.SetReadDeadline(deadline); err != nil {
		t.Fatal(err)
	}
	if want, set := c.state(); want != deadline.UnixNano() || set {
		t.Fatalf("a far deadline went to the socket (want %d, readSet %v)", want, set)
	}
	err := waitRead(t, readResult(c), 10*time.Second)
	if ended := time.Now(); ended.Before(deadline) {
		t.Fatalf("the Read ended %v before its deadline", deadline.Sub(ended))
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read after the deadline: %v, want a deadline error", err)
	}
}

// A deadline in the past ends a blocked Read at once: net/http aborts its
// background read that way, and waits for it.
func TestCoarsePastDeadlineAtOnce(t *testing.T) {
	_, c, _ := coarsePair(t)
	if err := c.SetReadDeadline(time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	done := readResult(c)
	if err := c.SetReadDeadline(time.Unix(1, 0)); err != nil {
		t.Fatal(err)
	}
	// The hour is still in memory; the past deadline reached the socket.
	if err := waitRead(t, done, 10*time.Second); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read after a past deadline: %v, want a deadline error", err)
	}
	// And the connection is usable again once the deadline is cleared.
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	if want, set := c.state(); set || want != 0 {
		t.Fatalf("a cleared deadline left state behind (want %d, readSet %v)", want, set)
	}
}

// A later deadline replaces an earlier one, in memory or on the socket:
// the sweeper never ends a Read whose deadline was moved on.
func TestCoarseDeadlineMovedOn(t *testing.T) {
	_, c, client := coarsePair(t)
	if err := c.SetReadDeadline(time.Now().Add(time.Millisecond)); err != nil { // near: on the socket
		t.Fatal(err)
	}
	if _, set := c.state(); !set {
		t.Fatal("a near deadline was not put on the socket")
	}
	if err := c.SetReadDeadline(time.Now().Add(time.Hour)); err != nil { // far: off the socket
		t.Fatal(err)
	}
	if _, set := c.state(); set {
		t.Fatal("the socket kept the earlier near deadline")
	}
	done := readResult(c)
	// Let several sweeps pass: the listener's clock moves on by two ticks.
	giveUp := time.Now().Add(10 * time.Second)
	for start := c.l.now.Load(); c.l.now.Load() < start+2*int64(deadlineTick); {
		if time.Now().After(giveUp) {
			t.Fatal("the sweeper's clock did not move for 10s")
		}
		select {
		case err := <-done:
			t.Fatalf("the Read ended before its deadline: %v", err)
		case <-time.After(deadlineTick / 5):
		}
	}
	if _, err := client.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	if err := waitRead(t, done, 10*time.Second); err != nil {
		t.Fatalf("Read with an hour's deadline: %v", err)
	}
}

// Closing the listener stops the sweeper, so pending deadlines go to the
// sockets, and later ones too.
func TestCoarseCloseMakesDeadlinesExact(t *testing.T) {
	l, c, _ := coarsePair(t)
	far := time.Now().Add(time.Hour)
	if err := c.SetReadDeadline(far); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if want, set := c.state(); want != 0 || !set {
		t.Fatalf("after Close the pending deadline is still in memory (want %d, readSet %v)", want, set)
	}
	if err := c.SetReadDeadline(far); err != nil {
		t.Fatal(err)
	}
	if want, set := c.state(); want != 0 || !set {
		t.Fatal("after Close a far deadline was kept in memory")
	}
	c.Close()
	if len(l.snapshot()) != 0 {
		t.Fatal("a closed connection is still tracked")
	}
}

// The server's timeouts still hold through the coarse deadlines: a client
// that trickles its headers is cut off once the header timeout passed, and
// an idle keep-alive connection once the idle timeout passed, neither
// sooner. The timeouts are shortened here (10 s and 5 min in production).
func TestServerTimeoutsThroughCoarseDeadlines(t *testing.T) {
	reg := newFakeRegistry()
	s := newTestServer(t, reg, newFakeCluster(reg), nil)
	const header, idle = 1500 * time.Millisecond, 2 * time.Second
	s.srv.ReadHeaderTimeout, s.srv.IdleTimeout = header, idle // before Serve
	newServeEnv(t, s)
	addr := s.Addr().String()

	// closedAfter waits until the server closes conn and says how long
	// after start that was.
	closedAfter := func(conn net.Conn, start time.Time) time.Duration {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		buf := make([]byte, 4096)
		for {
			if _, err := conn.Read(buf); err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatal("the server kept the connection open for 20s")
				}
				return time.Since(start)
			}
		}
	}

	trickle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer trickle.Close()
	start := time.Now()
	if _, err := trickle.Write([]byte("GET /ping HTTP/1.1\r\nHost: x\r\n")); err != nil {
		t.Fatal(err)
	}
	if d := closedAfter(trickle, start); d < header {
		t.Errorf("a trickling client was cut off after %v, before the header timeout %v", d, header)
	}

	idler, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idler.Close()
	if _, err := idler.Write([]byte("GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	answered := time.Now()
	if d := closedAfter(idler, answered); d < idle {
		t.Errorf("an idle keep-alive connection was closed after %v, before the idle timeout %v", d, idle)
	}
}
