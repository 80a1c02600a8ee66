package httpapi

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/raftlookupd/raftlookupd/internal/metrics"
)

func TestMetricsCountReadsAndIncludeDaemonMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.Collector(func(w *metrics.Writer) {
		w.Gauge("raftlookupd_tcp_connections", "Open connections.", 3)
	}))
	e := newTestEnv(t, func(c *Config) {
		c.Metrics = reg
		c.AdminToken = "secret"
	})
	e.do(get("/lookup?topic=missing")) // 404
	e.do(get("/topics"))
	e.do(get("/topics"))
	resp := e.do(get("/metrics")) // no token needed
	if resp.status != 200 {
		t.Fatalf("GET /metrics: %d %s", resp.status, resp.body)
	}
	if ct := resp.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q", ct)
	}
	for _, want := range []string{
		`raftlookupd_http_reads_total{endpoint="lookup",outcome="client_error"} 1`,
		`raftlookupd_http_reads_total{endpoint="topics",outcome="ok"} 2`,
		`raftlookupd_http_read_seconds_count{endpoint="topics"} 2`,
		"raftlookupd_tcp_connections 3",
	} {
		if !strings.Contains(resp.body, want+"\n") {
			t.Errorf("metrics lack %q:\n%s", want, resp.body)
		}
	}
}

// Without a registry from the daemon, /metrics still has the HTTP API's own.
func TestMetricsWithoutDaemonRegistry(t *testing.T) {
	e := newTestEnv(t)
	resp := e.do(get("/metrics"))
	if resp.status != 200 || !strings.Contains(resp.body, `raftlookupd_http_reads_total{endpoint="nodes",outcome="ok"} 0`) {
		t.Errorf("GET /metrics: %d\n%s", resp.status, resp.body)
	}
}
