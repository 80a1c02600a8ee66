package httpapi

import (
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Coarse read deadlines for the client port.
//
// net/http moves a connection's read deadline several times per request:
// the whole-request bound, the abort of its background read, the idle
// bound, the next request's header bound. Every deadline that is not zero
// modifies a runtime timer, and at /lookup load those calls were about 4.6%
// of a follower's CPU (bench -profile-dir); the trivial handler that serves
// as the ceiling sets no timeouts, so its deadlines are nearly all zero.
//
// The timeouts they carry (readHeaderTimeout, readTimeout, idleTimeout)
// bound slow and idle clients in seconds and minutes. So a deadline more
// than two ticks away is kept in memory, and a sweeper that runs every
// deadlineTick puts it on the socket once it has passed: it takes effect at
// most a tick late. A deadline that is near or past, or any deadline once
// the listener is closed, goes to the socket at once: net/http ends its
// background read with a deadline in the past and waits for that read to
// return.
const deadlineTick = 250 * time.Millisecond

// coarseListener hands out coarseConns and runs their sweeper until it is
// closed.
type coarseListener struct {
	net.Listener
	// now is the sweeper's clock (ns), at most a tick behind.
	now    atomic.Int64
	closed atomic.Bool

	mu    sync.Mutex
	conns map[*coarseConn]struct{}
	stop  chan struct{}
	once  sync.Once
}

func newCoarseListener(ln net.Listener) *coarseListener {
	l := &coarseListener{Listener: ln, conns: map[*coarseConn]struct{}{}, stop: make(chan struct{})}
	l.now.Store(time.Now().UnixNano())
	go l.sweep()
	return l
}

func (l *coarseListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	cc := &coarseConn{Conn: c, l: l}
	l.mu.Lock()
	l.conns[cc] = struct{}{}
	l.mu.Unlock()
	return cc, nil
}

// Close stops accepting and the sweeper. Connections still open get their
// pending deadlines on their sockets, and every later one at once.
func (l *coarseListener) Close() error {
	err := l.Listener.Close()
	l.once.Do(func() {
		l.closed.Store(true)
		close(l.stop)
		for _, c := range l.snapshot() {
			c.expire(math.MaxInt64)
		}
	})
	return err
}

func (l *coarseListener) snapshot() []*coarseConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*coarseConn, 0, len(l.conns))
	for c := range l.conns {
		out = append(out, c)
	}
	return out
}

func (l *coarseListener) forget(c *coarseConn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
}

func (l *coarseListener) sweep() {
	t := time.NewTicker(deadlineTick)
	defer t.Stop()
	var due []*coarseConn
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		now := time.Now().UnixNano()
		l.now.Store(now)
		due = due[:0]
		l.mu.Lock()
		for c := range l.conns {
			if w := c.want.Load(); w != 0 && w <= now {
				due = append(due, c)
			}
		}
		l.mu.Unlock()
		for _, c := range due {
			c.expire(now)
		}
		clear(due)
	}
}

// near reports whether deadline t (ns) is too close for the sweeper to
// enforce it in time.
func (l *coarseListener) near(t int64) bool {
	return l.closed.Load() || t < l.now.Load()+2*int64(deadlineTick)
}

// coarseConn is one client connection whose far read deadlines live in
// memory until they pass.
type coarseConn struct {
	net.Conn
	l *coarseListener
	// want is the read deadline (ns) kept in memory; 0 when there is none
	// or it is on the socket.
	want atomic.Int64

	mu sync.Mutex
	// readSet and writeSet: the socket has a deadline of its own, which a
	// later one must replace.
	readSet, writeSet bool
}

func (c *coarseConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.IsZero() {
		c.want.Store(0)
		return c.clearRead()
	}
	if ns := t.UnixNano(); !c.l.near(ns) {
		c.want.Store(ns)
		return c.clearRead()
	}
	c.want.Store(0)
	c.readSet = true
	return c.Conn.SetReadDeadline(t)
}

// clearRead takes the socket's own read deadline off, if it has one; the
// caller holds mu.
func (c *coarseConn) clearRead() error {
	if !c.readSet {
		return nil
	}
	c.readSet = false
	return c.Conn.SetReadDeadline(time.Time{})
}

// SetWriteDeadline passes every deadline through; it only skips clearing
// one the socket does not have (net/http clears it after every request).
func (c *coarseConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.IsZero() && !c.writeSet {
		return nil
	}
	c.writeSet = !t.IsZero()
	return c.Conn.SetWriteDeadline(t)
}

func (c *coarseConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// expire puts the read deadline on the socket if it passed by now (ns),
// which ends a Read blocked on it. The listener's Close passes MaxInt64:
// with the sweeper gone, every pending deadline goes to the socket.
func (c *coarseConn) expire(now int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w := c.want.Load(); w != 0 && w <= now {
		c.want.Store(0)
		c.readSet = true
		_ = c.Conn.SetReadDeadline(time.Unix(0, w))
	}
}

// CloseWrite half-closes the socket: net/http does so before it closes a
// connection whose request it did not read to the end, so the client can
// still read the answer.
func (c *coarseConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *coarseConn) Close() error {
	c.l.forget(c)
	return c.Conn.Close()
}
