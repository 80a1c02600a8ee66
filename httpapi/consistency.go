package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/raftlookupd/raftlookupd/wire"
)

// readBarrier waits until local state may answer at the requested level and
// sets the X-Raftlookupd-* headers. nsqlookupd's own parameter errors are
// checked before it, so a request nsqlookupd rejects is rejected the same way
// whatever the cluster's state.
func (s *Server) readBarrier(w http.ResponseWriter, r *http.Request, p params) *apiError {
	level, apiErr := p.consistency(s.cfg.DefaultConsistency)
	if apiErr != nil {
		s.setReadHeaders(w)
		return apiErr
	}
	ctx := r.Context()
	if level == wire.Linearizable {
		// Only this level waits; the others answer at once, and a timer per
		// lookup would cost more than the rest of the barrier.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.WriteTimeout)
		defer cancel()
	}
	err := s.cluster.ReadBarrier(ctx, level)
	// Taken after the barrier and before the registry is read: the applied
	// index can only grow, so the answer reflects at least this index.
	s.setReadHeaders(w)
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, wire.ErrShutdown):
		return errShuttingDown
	case errors.Is(err, wire.ErrLeaderUnreachable), errors.Is(err, wire.ErrNoLeader),
		errors.Is(err, wire.ErrNotLeader), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, context.Canceled):
		s.logger.Debug("read refused", "level", level, "error", err)
		return errLeaderUnreachable
	}
	s.logger.Error("read barrier failed", "level", level, "error", err)
	return errInternal
}

// readFailed answers a read that failed before its barrier; it still carries
// the read headers, which tell a client where the leader is.
func (s *Server) readFailed(w http.ResponseWriter, e *apiError) (any, *apiError) {
	s.setReadHeaders(w)
	return nil, e
}

func (s *Server) setReadHeaders(w http.ResponseWriter) {
	rs := s.cluster.ReadState()
	v := s.readHeaderValues(rs.LeaderID, rs.AppliedIndex, lastContactMillis(rs.LastContact))
	h := w.Header() // the keys are canonical already
	h[headerLeader] = v[0:1:1]
	h[headerAppliedIndex] = v[1:2:2]
	h[headerLastContact] = v[2:3:3]
}

// readHeaders are the three read headers' values as last sent; the reads of
// the same millisecond and applied index share them, read-only (net/http
// never modifies a header value, and an append would copy: each value's
// capacity is its length).
type readHeaders struct {
	leader  string
	applied uint64
	contact int64
	values  []string
}

func (s *Server) readHeaderValues(leader string, applied uint64, contact int64) []string {
	if c := s.readHeaders.Load(); c != nil && c.applied == applied && c.contact == contact && c.leader == leader {
		return c.values
	}
	c := &readHeaders{leader: leader, applied: applied, contact: contact,
		values: []string{leader, strconv.FormatUint(applied, 10), strconv.FormatInt(contact, 10)}}
	s.readHeaders.Store(c)
	return c.values
}

// lastContactMillis is ReadState.LastContact in whole milliseconds, keeping
// -1 for "never heard from a leader".
func lastContactMillis(d time.Duration) int64 {
	if d < 0 {
		return -1
	}
	return d.Milliseconds()
}
