package tcpproto

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/raftlookupd/raftlookupd/fsm"
)

// Registry is what the protocol needs from the replicated registry
// (implemented by cluster.Node). None of the methods may block on
// replication: they are called while nsqd waits, with a 1 s deadline, for
// the reply.
type Registry interface {
	// OpenSession starts a session for a successful IDENTIFY.
	OpenSession(peer fsm.PeerInfo) (fsm.SessionID, error)
	// Register adds the session as producer of topic, and of topic/channel
	// when channel is not "".
	Register(id fsm.SessionID, topic, channel string) error
	// Unregister removes the session from topic/channel, or from the topic
	// and all its channels when channel is "".
	Unregister(id fsm.SessionID, topic, channel string) error
	// Ping records liveness of an identified session. An error (the
	// session no longer exists on the node) closes the connection, so
	// nsqd reconnects and registers again.
	Ping(id fsm.SessionID) error
	// CloseSession ends a session; called exactly once per opened session,
	// when its connection ends.
	CloseSession(id fsm.SessionID)
}

// Rejecting an excess connection must not stall the accept loop; the frame
// fits in a fresh socket's send buffer, so this only guards against oddities.
const rejectWriteTimeout = time.Second

// Accept retry backoff bounds for errors such as EMFILE, as net/http does.
const (
	minAcceptBackoff = 5 * time.Millisecond
	maxAcceptBackoff = time.Second
)

// Server serves protocol V1 on one listener. Its lifecycle follows
// net/http.Server: New binds, Serve blocks, Shutdown stops and waits.
type Server struct {
	cfg     Config
	reg     Registry
	log     hclog.Logger
	ln      net.Listener
	tcpPort int

	mu      sync.Mutex
	conns   map[*conn]struct{}
	serving bool
	closing bool // set once by Shutdown; no conn is tracked after it
	// wg counts Serve's accept loop and every connection goroutine. Add is
	// only called under mu while !closing, so Shutdown's Wait never races
	// with an Add from zero.
	wg sync.WaitGroup

	shutdownOnce sync.Once
	quit         chan struct{} // closed by Shutdown; cuts accept backoff short
	done         chan struct{} // closed when wg drained after Shutdown
}

// New validates cfg and binds the listener, so Addr is known (port 0 works)
// before Serve. A nil logger discards logs.
func New(cfg Config, reg Registry, logger hclog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if reg == nil {
		return nil, errors.New("tcpproto: nil Registry")
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	// net.Listen enables TCP keep-alive on accepted connections (15 s idle,
	// then probes): the only way a silently dead nsqd is ever noticed, since
	// idle connections have no read deadline.
	ln := cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.Address); err != nil {
			return nil, fmt.Errorf("tcpproto: listen %s: %w", cfg.Address, err)
		}
	}
	s := &Server{
		cfg:   cfg,
		reg:   reg,
		log:   logger.Named("tcpproto"),
		ln:    ln,
		conns: make(map[*conn]struct{}),
		quit:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	if a, ok := ln.Addr().(*net.TCPAddr); ok {
		s.tcpPort = a.Port
	}
	return s, nil
}

// Addr is the bound listen address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Connections is the number of open client connections.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Serve accepts connections until Shutdown, then returns nil (also when
// called after Shutdown). Connection goroutines are waited for by Shutdown,
// not by Serve.
func (s *Server) Serve() error {
	s.mu.Lock()
	switch {
	case s.closing:
		s.mu.Unlock()
		return nil
	case s.serving:
		s.mu.Unlock()
		return ErrAlreadyServing
	}
	s.serving = true
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	s.log.Info("listening for nsqd", "address", s.ln.Addr().String())
	var backoff time.Duration
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if s.isClosing() {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("tcpproto: accept: %w", err)
			}
			backoff = min(max(2*backoff, minAcceptBackoff), maxAcceptBackoff)
			s.log.Warn("accept failed; retrying", "error", err, "backoff", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-s.quit:
				t.Stop()
			}
			continue
		}
		backoff = 0
		s.admit(nc)
	}
}

// admit starts a goroutine for nc, or turns it away when shutting down or
// over MaxConnections.
func (s *Server) admit(nc net.Conn) {
	c := newConn(s, nc)
	s.mu.Lock()
	switch {
	case s.closing:
		s.mu.Unlock()
		nc.Close()
		return
	case len(s.conns) >= s.cfg.MaxConnections:
		s.mu.Unlock()
		s.reject(nc)
		return
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go c.serve()
}

func (s *Server) reject(nc net.Conn) {
	s.log.Debug("connection rejected: too many connections",
		"remote", nc.RemoteAddr().String(), "max", s.cfg.MaxConnections)
	text := tooManyConnectionsText(s.cfg.MaxConnections)
	frame := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(text)), uint32(len(text)))
	frame = append(frame, text...)
	_ = nc.SetWriteDeadline(time.Now().Add(rejectWriteTimeout))
	_, _ = nc.Write(frame) // best effort: the client is turned away either way
	nc.Close()
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// snapshot lists the tracked connections; s.mu must be held.
func (s *Server) snapshot() []*conn {
	out := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		out = append(out, c)
	}
	return out
}

// CloseConnections closes every current client connection; each runs its
// cleanup (CloseSession) in its own goroutine, asynchronously. New
// connections keep being accepted. Used when this node's lease expired: the
// sessions are gone cluster-wide, and nsqd re-registers everything only on a
// new connection.
func (s *Server) CloseConnections() {
	s.mu.Lock()
	conns := s.snapshot()
	s.mu.Unlock()
	if len(conns) > 0 {
		s.log.Info("closing all client connections", "count", len(conns))
	}
	for _, c := range conns {
		c.nc.Close()
	}
}

// Shutdown stops accepting, closes every client connection and waits until
// the accept loop and every connection goroutine (hence every CloseSession)
// have finished, or ctx is done. It is idempotent: later calls wait for the
// same completion.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() {
		s.mu.Lock()
		s.closing = true
		conns := s.snapshot()
		s.mu.Unlock()

		s.log.Info("closing listener", "address", s.ln.Addr().String(), "connections", len(conns))
		close(s.quit)
		s.ln.Close()
		for _, c := range conns {
			c.nc.Close()
		}
		// Every tracked goroutine is unblocked by now (its socket or the
		// listener is closed), so this waiter ends promptly.
		go func() {
			s.wg.Wait()
			close(s.done)
		}()
	})
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
