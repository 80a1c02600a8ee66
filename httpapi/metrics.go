package httpapi

import (
	"fmt"
	"net/http"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/julienschmidt/httprouter"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/raftlookupd/raftlookupd/internal/metrics"
)

// readMetrics counts one read endpoint's requests by outcome and its latency.
type readMetrics struct {
	ok, clientErr, unavailable, serverErr metrics.Counter
	latency                               *metrics.Histogram
}

// measured serves a read endpoint and keeps its counters. The map is built
// before Serve and only read afterwards.
func (s *Server) measured(name string, h v1Handler) httprouter.Handle {
	if s.reads == nil {
		s.reads = map[string]*readMetrics{}
	}
	m := &readMetrics{latency: metrics.NewHistogram(metrics.LatencyBuckets)}
	s.reads[name] = m
	return func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
		start := time.Now()
		code := serveV1(w, r, h)
		m.latency.Observe(time.Since(start).Seconds())
		switch {
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

// writeReadMetrics writes the read endpoints' counters and latencies.
func (s *Server) writeReadMetrics(w *metrics.Writer) {
	const (
		totalHelp   = "Read requests by endpoint and outcome."
		latencyHelp = "Read request latency by endpoint."
	)
	for _, name := range readEndpoints {
		m := s.reads[name]
		w.Counter("raftlookupd_http_reads_total", totalHelp, m.ok.Value(), "endpoint", name, "outcome", "ok")
		w.Counter("raftlookupd_http_reads_total", totalHelp, m.clientErr.Value(), "endpoint", name, "outcome", "client_error")
		w.Counter("raftlookupd_http_reads_total", totalHelp, m.unavailable.Value(), "endpoint", name, "outcome", "unavailable")
		w.Counter("raftlookupd_http_reads_total", totalHelp, m.serverErr.Value(), "endpoint", name, "outcome", "server_error")
		w.Histogram("raftlookupd_http_read_seconds", latencyHelp, m.latency, "endpoint", name)
	}
}

// metricsHandler serves the registry in the format the scraper asks for
// (Prometheus text by default). A collector that fails is logged and the
// rest of the page still served.
func (s *Server) metricsHandler(reg *prometheus.Registry) httprouter.Handle {
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      metricsErrorLog{s.logger},
		ErrorHandling: promhttp.ContinueOnError,
	})
	return func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
		h.ServeHTTP(w, r)
	}
}

type metricsErrorLog struct{ logger hclog.Logger }

func (l metricsErrorLog) Println(v ...any) { l.logger.Warn("metrics", "error", fmt.Sprint(v...)) }
