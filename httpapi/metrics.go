package httpapi

import (
	"net/http"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/raftlookupd/raftlookupd/internal/metrics"
)

// readMetrics counts one read endpoint's requests by outcome and its latency.
type readMetrics struct {
	ok, clientErr, unavailable, serverErr metrics.Counter
	latency                               *metrics.Histogram
}

// measured wraps a read endpoint with its counters. The map is built before
// Serve and only read afterwards.
func (s *Server) measured(name string, h httprouter.Handle) httprouter.Handle {
	if s.reads == nil {
		s.reads = map[string]*readMetrics{}
	}
	m := &readMetrics{latency: metrics.NewHistogram(metrics.LatencyBuckets)}
	s.reads[name] = m
	return func(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		h(sw, r, p)
		m.latency.Observe(time.Since(start).Seconds())
		switch code := sw.statusCode(); {
		case code == http.StatusServiceUnavailable:
			m.unavailable.Inc()
		case code >= 500:
			m.serverErr.Inc()
		case code >= 400:
			m.clientErr.Inc()
		default:
			m.ok.Inc()
		}
	}
}

var readEndpoints = []string{"lookup", "topics", "channels", "nodes", "debug"}

// handleMetrics writes the Prometheus text format.
func (s *Server) handleMetrics(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	mw := metrics.NewWriter(w)
	for _, name := range readEndpoints {
		m := s.reads[name]
		mw.Counter("raftlookupd_http_reads_total", "Read requests by endpoint and outcome.", m.ok.Value(), "endpoint", name, "outcome", "ok")
		mw.Counter("raftlookupd_http_reads_total", "Read requests by endpoint and outcome.", m.clientErr.Value(), "endpoint", name, "outcome", "client_error")
		mw.Counter("raftlookupd_http_reads_total", "Read requests by endpoint and outcome.", m.unavailable.Value(), "endpoint", name, "outcome", "unavailable")
		mw.Counter("raftlookupd_http_reads_total", "Read requests by endpoint and outcome.", m.serverErr.Value(), "endpoint", name, "outcome", "server_error")
	}
	for _, name := range readEndpoints {
		mw.Histogram("raftlookupd_http_read_seconds", "Read request latency by endpoint.", s.reads[name].latency, "endpoint", name)
	}
	if s.cfg.Metrics != nil {
		s.cfg.Metrics(mw)
	}
	if err := mw.Err(); err != nil {
		s.logger.Debug("metrics write failed", "error", err)
	}
}
