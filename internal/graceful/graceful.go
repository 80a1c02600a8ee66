// Package graceful stops an http.Server without waiting for connections
// that never sent a request.
//
// http.Server.Shutdown closes idle connections at once, but a connection
// that is open and has not sent a whole request header yet (StateNew) counts
// as busy for its first five seconds. HTTP clients open such connections in
// the normal course of things (net/http's Transport may dial a spare one
// while a request is served by another connection that became free first),
// so a plain Shutdown often waited five seconds for nothing. A lookupd that
// takes five seconds to exit after it drained keeps its port and delays its
// restart; Conns closes those connections when shutdown starts instead.
package graceful

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// Conns tracks the connections of one http.Server that have not sent a
// request yet.
type Conns struct {
	// nfresh is len(fresh), readable without the lock: the hook runs on
	// every request's state changes, and while no connection is fresh (a
	// server under load on keep-alive connections) it has nothing to do.
	nfresh atomic.Int64

	mu      sync.Mutex
	fresh   map[net.Conn]struct{}
	closing bool
}

// Track installs a connection-state hook on srv (keeping any hook it had)
// and returns the tracker whose Shutdown stops srv. Call it before Serve.
func Track(srv *http.Server) *Conns {
	c := &Conns{fresh: map[net.Conn]struct{}{}}
	prev := srv.ConnState
	srv.ConnState = func(conn net.Conn, st http.ConnState) {
		c.hook(conn, st)
		if prev != nil {
			prev(conn, st)
		}
	}
	return c
}

func (c *Conns) hook(conn net.Conn, st http.ConnState) {
	// A connection's StateNew is reported before its serving goroutine
	// starts, so that goroutine sees the count that includes it.
	if st != http.StateNew && c.nfresh.Load() == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if st != http.StateNew {
		delete(c.fresh, conn)
		c.nfresh.Store(int64(len(c.fresh)))
		return
	}
	if c.closing {
		conn.Close() // accepted as shutdown began: it has sent nothing yet
		return
	}
	c.fresh[conn] = struct{}{}
	c.nfresh.Store(int64(len(c.fresh)))
}

// Shutdown closes the connections that have sent no request, then shuts
// srv down: listeners and idle connections close at once, and requests in
// progress may finish until ctx ends (srv.Shutdown's error then).
func (c *Conns) Shutdown(ctx context.Context, srv *http.Server) error {
	c.mu.Lock()
	c.closing = true
	for conn := range c.fresh {
		conn.Close()
	}
	clear(c.fresh)
	c.nfresh.Store(0)
	c.mu.Unlock()
	return srv.Shutdown(ctx)
}
