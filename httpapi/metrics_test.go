package httpapi

import (
	"strings"
	"testing"

	"github.com/raftlookupd/raftlookupd/internal/metrics"
)

func TestMetricsCountReadsAndIncludeDaemonMetrics(t *testing.T) {
	e := newTestEnv(t, func(c *Config) {
		c.Metrics = func(w *metrics.Writer) { w.Gauge("raftlookupd_tcp_connections", "Open connections.", 3) }
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
	// Every non-comment line is "name{labels} value".
	for _, line := range strings.Split(strings.TrimSpace(resp.body), "\n") {
		if strings.HasPrefix(line, "# ") {
			continue
		}
		if f := strings.Fields(line); len(f) != 2 || !strings.HasPrefix(f[0], "raftlookupd_") {
			t.Errorf("malformed sample line %q", line)
		}
	}
}
