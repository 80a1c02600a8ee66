package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// The Raft port carries two kinds of stream: hashicorp/raft's own, and the
// node-to-node RPC (rpc.go). The dialing side writes one byte first, after
// the TLS handshake when TLS is on, and the accepting side dispatches on it.
// Both are outside ASCII so that an HTTP or nsqd client that wanders onto
// the port is told apart at once.
const (
	streamRaft byte = 0xA1
	streamRPC  byte = 0xA2
)

// handshakeTimeout bounds the TLS handshake and the kind byte of an accepted
// connection, so a client that connects and says nothing holds a goroutine
// for at most this long.
const handshakeTimeout = 10 * time.Second

// mux accepts connections on the Raft port and hands each to the raft or the
// RPC listener by its first byte; it also dials peers for both.
type mux struct {
	ln     net.Listener
	tls    *tlsFiles // nil: plain TCP
	logger hclog.Logger
	raft   *subListener
	rpc    *subListener
	// admitRaft, when set, decides whether a raft stream from remote is
	// accepted. Raft trusts whatever arrives on its streams (a forged
	// AppendEntries writes the log), so without TLS they get the same
	// address check as the RPC streams.
	admitRaft func(remote net.Addr) bool

	closeOnce sync.Once
	wg        sync.WaitGroup
}

func newMux(ln net.Listener, t *tlsFiles, logger hclog.Logger, admitRaft func(net.Addr) bool) *mux {
	m := &mux{ln: ln, tls: t, logger: logger, admitRaft: admitRaft,
		raft: newSubListener(ln.Addr()), rpc: newSubListener(ln.Addr())}
	m.wg.Add(1)
	go m.serve()
	return m
}

func (m *mux) serve() {
	defer m.wg.Done()
	for {
		c, err := m.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			m.logger.Error("raft port accept failed", "error", err)
			return
		}
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.dispatch(c)
		}()
	}
}

// dispatch completes the TLS handshake (when on), reads the kind byte and
// passes the connection on. A peer without a certificate from the CA is
// refused here, before any byte of raft or RPC is read.
func (m *mux) dispatch(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(handshakeTimeout))
	if m.tls != nil {
		tc := tls.Server(c, m.tls.serverConfig())
		if err := tc.Handshake(); err != nil {
			m.logger.Warn("refused a raft port connection: TLS handshake failed", "remote", c.RemoteAddr(), "error", err)
			c.Close()
			return
		}
		c = tc
	}
	var kind [1]byte
	if _, err := c.Read(kind[:]); err != nil {
		m.logger.Debug("raft port connection closed before its kind byte", "remote", c.RemoteAddr(), "error", err)
		c.Close()
		return
	}
	_ = c.SetDeadline(time.Time{})
	var sub *subListener
	switch kind[0] {
	case streamRaft:
		if m.admitRaft != nil && !m.admitRaft(c.RemoteAddr()) {
			m.logger.Warn("refused a raft stream from a non-member", "remote", c.RemoteAddr())
			c.Close()
			return
		}
		sub = m.raft
	case streamRPC:
		sub = m.rpc
	default:
		m.logger.Warn("refused a raft port connection: unknown stream kind", "remote", c.RemoteAddr(), "kind", kind[0])
		c.Close()
		return
	}
	if !sub.deliver(c) {
		c.Close()
	}
}

// dial connects to a peer's Raft port for one kind of stream.
func (m *mux) dial(ctx context.Context, addr string, kind byte) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if deadline, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(deadline)
	}
	if m.tls != nil {
		tc := tls.Client(c, m.tls.clientConfig())
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
		}
		c = tc
	}
	if _, err := c.Write([]byte{kind}); err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// Close stops accepting and closes both sub-listeners; it waits for the
// connections being dispatched.
func (m *mux) Close() error {
	var err error
	m.closeOnce.Do(func() {
		err = m.ln.Close()
		m.raft.Close()
		m.rpc.Close()
		m.wg.Wait()
	})
	return err
}

// subListener is a net.Listener fed by the mux.
type subListener struct {
	addr   net.Addr
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newSubListener(addr net.Addr) *subListener {
	return &subListener{addr: addr, conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *subListener) deliver(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.closed:
		return false
	}
}

func (l *subListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *subListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *subListener) Addr() net.Addr { return l.addr }

// raftStream is raft's StreamLayer over the mux. It advertises an address
// that may be a host name, re-resolved at every dial, so containers may
// change IPs.
type raftStream struct {
	m         *mux
	advertise net.Addr
}

func (s *raftStream) Accept() (net.Conn, error) { return s.m.raft.Accept() }

// Close is called by raft's transport at shutdown; the whole port closes.
func (s *raftStream) Close() error { return s.m.Close() }

func (s *raftStream) Addr() net.Addr { return s.advertise }

func (s *raftStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return s.m.dial(ctx, string(addr), streamRaft)
}

type hostAddr string

func (a hostAddr) Network() string { return "tcp" }
func (a hostAddr) String() string  { return string(a) }
