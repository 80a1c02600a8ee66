package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
)

// memNet carries the node-to-node RPC between in-process nodes over
// net.Pipe. A cut address can neither dial nor be dialed, and cutting it
// closes its open streams, as a partition would. A vanished address is a
// host that went away without a word: its open streams end, and a dial to
// it hangs until the dialer gives up, as a SYN to an address no host
// answers does until ARP fails.
type memNet struct {
	mu        sync.Mutex
	listeners map[string]*memListener
	cuts      map[string]bool
	vanished  map[string]bool
	conns     map[net.Conn][2]string // both ends' addresses
	port      int
}

func newMemNet() *memNet {
	return &memNet{listeners: map[string]*memListener{}, cuts: map[string]bool{}, vanished: map[string]bool{}, conns: map[net.Conn][2]string{}}
}

func (m *memNet) listen(addr string) *memListener {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := &memListener{addr: memAddr(addr), conns: make(chan net.Conn), closed: make(chan struct{})}
	m.listeners[addr] = l
	return l
}

// dialer returns the dial function of the node at from. Its streams look
// like loopback ones to the server (the RPC admits loopback callers).
func (m *memNet) dialer(from string) func(ctx context.Context, addr string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		m.mu.Lock()
		if m.vanished[addr] {
			m.mu.Unlock()
			<-ctx.Done()
			return nil, ctx.Err()
		}
		l := m.listeners[addr]
		if m.cuts[from] || m.cuts[addr] || l == nil {
			m.mu.Unlock()
			return nil, fmt.Errorf("dial %s from %s: unreachable", addr, from)
		}
		m.port++
		a, b := net.Pipe()
		client := &memConn{Conn: a, local: memAddr(fmt.Sprintf("127.0.0.1:%d", m.port)), remote: memAddr(addr)}
		server := &memConn{Conn: b, local: memAddr(addr), remote: memAddr(fmt.Sprintf("127.0.0.1:%d", m.port))}
		m.conns[client] = [2]string{from, addr}
		m.conns[server] = [2]string{from, addr}
		m.mu.Unlock()
		select {
		case l.conns <- server:
			return client, nil
		case <-l.closed:
			return nil, errors.New("connection refused")
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (m *memNet) cut(addr string) { m.drop(addr, m.cuts) }

func (m *memNet) vanish(addr string) { m.drop(addr, m.vanished) }

// drop marks addr in set and closes its open streams.
func (m *memNet) drop(addr string, set map[string]bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	set[addr] = true
	for c, ends := range m.conns {
		if ends[0] == addr || ends[1] == addr {
			c.Close()
			delete(m.conns, c)
		}
	}
}

func (m *memNet) heal(addr string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.cuts, addr)
	delete(m.vanished, addr)
}

type memListener struct {
	addr   memAddr
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *memListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *memListener) Addr() net.Addr { return l.addr }

type memConn struct {
	net.Conn
	local, remote memAddr
}

func (c *memConn) LocalAddr() net.Addr  { return c.local }
func (c *memConn) RemoteAddr() net.Addr { return c.remote }

type memAddr string

func (a memAddr) Network() string { return "mem" }
func (a memAddr) String() string  { return string(a) }
