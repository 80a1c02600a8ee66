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
	// One allocation for the three values; the keys are canonical already.
	v := []string{rs.LeaderID, strconv.FormatUint(rs.AppliedIndex, 10), lastContactMillis(rs.LastContact)}
	h := w.Header()
	h[headerLeader] = v[0:1:1]
	h[headerAppliedIndex] = v[1:2:2]
	h[headerLastContact] = v[2:3:3]
}

// lastContactMillis renders ReadState.LastContact in whole milliseconds,
// keeping -1 for "never heard from a leader".
func lastContactMillis(d time.Duration) string {
	if d < 0 {
		return "-1"
	}
	return strconv.FormatInt(d.Milliseconds(), 10)
}
