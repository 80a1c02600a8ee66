package tcpproto

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/raftlookupd/raftlookupd/fsm"
)

// testDeadline bounds every wait in these tests; nothing legitimate takes
// more than a few milliseconds.
const testDeadline = 5 * time.Second

// call is one recorded Registry call.
type call struct {
	Op      string // open, register, unregister, ping, close
	ID      fsm.SessionID
	Peer    fsm.PeerInfo
	Topic   string
	Channel string
}

// fakeRegistry records calls and lets tests wait for them without sleeping.
type fakeRegistry struct {
	mu      sync.Mutex
	calls   []call
	seq     uint64
	changed chan struct{} // closed and replaced on every call

	openErr, registerErr, unregisterErr, pingErr error
}

func newFakeRegistry() *fakeRegistry {
	return &fakeRegistry{changed: make(chan struct{})}
}

func (f *fakeRegistry) record(c call) {
	f.calls = append(f.calls, c)
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeRegistry) OpenSession(peer fsm.PeerInfo) (fsm.SessionID, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.openErr != nil {
		return fsm.SessionID{}, f.openErr
	}
	f.seq++
	id := fsm.SessionID{Owner: "n1", Incarnation: 7, Seq: f.seq}
	f.record(call{Op: "open", ID: id, Peer: peer})
	return id, nil
}

func (f *fakeRegistry) Register(id fsm.SessionID, topic, channel string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.registerErr != nil {
		return f.registerErr
	}
	f.record(call{Op: "register", ID: id, Topic: topic, Channel: channel})
	return nil
}

func (f *fakeRegistry) Unregister(id fsm.SessionID, topic, channel string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.unregisterErr != nil {
		return f.unregisterErr
	}
	f.record(call{Op: "unregister", ID: id, Topic: topic, Channel: channel})
	return nil
}

func (f *fakeRegistry) Ping(id fsm.SessionID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record(call{Op: "ping", ID: id})
	return f.pingErr
}

func (f *fakeRegistry) CloseSession(id fsm.SessionID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record(call{Op: "close", ID: id})
}

func (f *fakeRegistry) setErrs(open, register, unregister error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.openErr, f.registerErr, f.unregisterErr = open, register, unregister
}

func (f *fakeRegistry) snapshot() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.calls...)
}

// ops counts recorded calls of one kind.
func (f *fakeRegistry) ops(op string) []call {
	var out []call
	for _, c := range f.snapshot() {
		if c.Op == op {
			out = append(out, c)
		}
	}
	return out
}

// waitFor blocks until cond holds over the recorded calls, or fails the
// test at the deadline.
func (f *fakeRegistry) waitFor(t *testing.T, what string, cond func([]call) bool) {
	t.Helper()
	timeout := time.NewTimer(testDeadline)
	defer timeout.Stop()
	for {
		f.mu.Lock()
		ok := cond(f.calls)
		ch := f.changed
		f.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-timeout.C:
			t.Fatalf("timed out waiting for %s; calls: %+v", what, f.snapshot())
		}
	}
}

func countOp(calls []call, op string) int {
	n := 0
	for _, c := range calls {
		if c.Op == op {
			n++
		}
	}
	return n
}

// eventually polls a condition that has no event to wait on (the server's
// connection count), bounded by the test deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testDeadline)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-time.After(time.Millisecond)
	}
}

func testLogger() hclog.Logger {
	// Trace level exercises every log call under -race without printing.
	return hclog.New(&hclog.LoggerOptions{Output: io.Discard, Level: hclog.Trace})
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Address = "127.0.0.1:0"
	cfg.BroadcastAddress = "lookupd.example"
	cfg.Hostname = "host-a"
	cfg.HTTPPort = 4161
	return cfg
}

// startServer runs a Server with a fake Registry until the test ends, and
// checks that Serve returns nil after Shutdown.
func startServer(t *testing.T, mutate func(*Config)) (*Server, *fakeRegistry) {
	t.Helper()
	cfg := testConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	reg := newFakeRegistry()
	s, err := New(cfg, reg, testLogger())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("Serve returned %v, want nil", err)
			}
		case <-ctx.Done():
			t.Errorf("Serve did not return after Shutdown")
		}
	})
	return s, reg
}

// client is a raw test connection with a deadline on every read and write.
type client struct {
	t  *testing.T
	nc *net.TCPConn
}

func dial(t *testing.T, addr net.Addr) *client {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr.String(), testDeadline)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { nc.Close() })
	return &client{t: t, nc: nc.(*net.TCPConn)}
}

func (c *client) write(b []byte) {
	c.t.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(testDeadline))
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *client) writeString(s string) { c.t.Helper(); c.write([]byte(s)) }

// readFrame reads one response frame.
func (c *client) readFrame() (string, error) {
	c.nc.SetReadDeadline(time.Now().Add(testDeadline))
	return readFrame(c.nc)
}

func readFrame(r io.Reader) (string, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return "", err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n > 1<<20 {
		return "", fmt.Errorf("frame size %d too large", n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return "", fmt.Errorf("frame body: %w", err)
	}
	return string(buf), nil
}

func (c *client) expect(want string) {
	c.t.Helper()
	got, err := c.readFrame()
	if err != nil {
		c.t.Fatalf("reading frame, want %q: %v", want, err)
	}
	if got != want {
		c.t.Fatalf("frame = %q, want %q", got, want)
	}
}

// expectClosed asserts the server closed the connection without sending
// anything more.
func (c *client) expectClosed() {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(testDeadline))
	var b [64]byte
	n, err := c.nc.Read(b[:])
	if n > 0 {
		c.t.Fatalf("want close, got %d more bytes %q", n, b[:n])
	}
	if !isClosedErr(err) {
		c.t.Fatalf("want close (EOF or reset), got %v", err)
	}
}

func isClosedErr(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return err != nil // io.EOF, or ECONNRESET when the server closed with unread input
}

// identifyFrame is the IDENTIFY line plus its length-prefixed body.
func identifyFrame(body string) []byte {
	b := []byte("IDENTIFY\n")
	b = binary.BigEndian.AppendUint32(b, uint32(len(body)))
	return append(b, body...)
}

func identifyFrameN(n int32) []byte {
	return binary.BigEndian.AppendUint32([]byte("IDENTIFY\n"), uint32(n))
}

const nsqdBody = `{"broadcast_address":"nsqd.example","hostname":"nsqd-host","http_port":4151,"tcp_port":4150,"version":"1.3.0"}`

// identified returns a client that completed magic and IDENTIFY.
func identified(t *testing.T, addr net.Addr) *client {
	t.Helper()
	c := dial(t, addr)
	c.write(append([]byte(magicV1), identifyFrame(nsqdBody)...))
	got, err := c.readFrame()
	if err != nil || len(got) == 0 || got[0] != '{' {
		t.Fatalf("IDENTIFY reply %q, %v", got, err)
	}
	return c
}
