package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raftlookupd/raftlookupd/wire"
)

func TestRewriteReadme(t *testing.T) {
	path := filepath.Join(t.TempDir(), "README.md")
	before := "# x\n\nintro\n\n" + readmeBegin + "\n| old | table |\n" + readmeEnd + "\n\nafter\n"
	if err := os.WriteFile(path, []byte(before), 0o644); err != nil {
		t.Fatal(err)
	}
	f := &figures{
		lookup: []lookupFigure{{size: 3000, ceiling: 40000, ref: 25000, raft: 38000, refRSS: 16 << 20, raftRSS: 18 << 20}},
		storm: &stormFigure{n: 100, ref: 69 * time.Millisecond, all: 132 * time.Millisecond, ratio: 0.52, maxRatio: 0.61,
			refWarm: 50 * time.Millisecond, allWarm: 55 * time.Millisecond, warmRatio: 0.91},
		idle: &idleFigure{watched: 10 * time.Minute, changes: 0},
	}
	if err := rewriteReadme(path, f.table()); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	got := string(b)
	for _, want := range []string{
		"# x\n\nintro\n\n" + readmeBegin + "\n| measure |",
		"| `/lookup` req/s on a follower, 3,000 registrations (HTTP ceiling 40,000) | 25,000 (0.62 of ceiling) | 38,000 (0.95 of ceiling) | 0.95x ceiling, 1.52x nsqlookupd |",
		"| 69.0 ms to acknowledge | 132.0 ms until visible on all 3 nodes | 0.52x (CPU time allowed at most 0.61x here) |",
		"| the same storm again on the same processes | 50.0 ms to acknowledge | 55.0 ms until visible on all 3 nodes | 0.91x |  |",
		"| leader changes, idle cluster with default flags, 10m0s |  | 0 |  | 0 |\n" + readmeEnd + "\n\nafter\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("README lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "old | table") {
		t.Error("the old table is still there")
	}
	if err := os.WriteFile(path, []byte("no markers"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := rewriteReadme(path, f.table()); err == nil {
		t.Error("a README without markers was rewritten")
	}
}

func TestCount(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 31381: "31,381", 900000: "900,000", -1234: "-1,234"} {
		if got := count(n); got != want {
			t.Errorf("count(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestMetricValues(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "# HELP raftlookupd_registry_sessions Sessions.\n# TYPE raftlookupd_registry_sessions gauge\n"+
			"raftlookupd_registry_sessions 300\nraftlookupd_registry_producers 9e+05\n"+
			"raftlookupd_http_reads_total{endpoint=\"lookup\",outcome=\"ok\"} 7\nraftlookupd_registry_producers_other 1\n")
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	m, err := metricValues(host, "raftlookupd_registry_sessions", "raftlookupd_registry_producers")
	if err != nil || m["raftlookupd_registry_sessions"] != 300 || m["raftlookupd_registry_producers"] != 900000 {
		t.Fatalf("metricValues = %v, %v", m, err)
	}
	if _, err := metricValues(host, "raftlookupd_missing"); err == nil {
		t.Error("a missing metric is not an error")
	}
}

func TestHolds(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != wire.PathStatus || r.URL.Query().Get("local") != "true" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, `{"node_id":"n1","registry":{"sessions":300,"orphans":0,"topics":100,"channels":0,"producers":900000},"members":[]}`)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	if !holds(host, 300, 900000) || holds(host, 300, 899999) || holds(host, 299, 900000) {
		t.Error("holds does not compare both counts")
	}
}
