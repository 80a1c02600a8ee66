package main

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	gometrics "github.com/hashicorp/go-metrics/compat"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

func TestSnakeWord(t *testing.T) {
	for in, want := range map[string]string{
		"commitTime": "commit_time", "getRPCType": "get_rpc_type", "heartbeat_timeout": "heartbeat_timeout",
		"RPC": "rpc", "appendEntries": "append_entries", "txstats": "txstats", "logs2Batch": "logs2_batch",
	} {
		if got := snakeWord(in); got != want {
			t.Errorf("snakeWord(%q) = %q, want %q", in, got, want)
		}
	}
}

// /metrics of a running node passes promlint, keeps today's names, adds
// process, Go and build series, and shows Raft's own commit time growing
// with writes.
func TestMetricsPage(t *testing.T) {
	opts := mustParse(t, "-node-id", "n1", "-data-dir", t.TempDir(), "-broadcast-address", "127.0.0.1",
		"-raft-address", "127.0.0.1:0", "-tcp-address", "127.0.0.1:0", "-http-address", "127.0.0.1:0",
		"-log-level", "error")
	logs := newLogs(opts, io.Discard)
	d, err := start(opts, logs.root, &reloader{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.shutdown(logs.root) })
	base := "http://" + d.http.Addr().String()
	waitReady(t, d.http.Addr().String())

	page := func() string {
		t.Helper()
		code, body := httpGet(t, base+"/metrics")
		if code != 200 {
			t.Fatalf("/metrics: %d %s", code, body)
		}
		return body
	}
	commits := func(body string) float64 {
		t.Helper()
		m := regexp.MustCompile(`(?m)^raftlookupd_raft_commit_time_count (\S+)$`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no raftlookupd_raft_commit_time_count:\n%s", body)
		}
		v, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	before := page()
	problems, err := promlint.New(strings.NewReader(before)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	for _, name := range []string{
		"raftlookupd_raft_state", "raftlookupd_raft_term", "raftlookupd_raft_last_log_index",
		"raftlookupd_raft_commit_index", "raftlookupd_raft_applied_index", "raftlookupd_raft_last_contact_seconds",
		"raftlookupd_raft_leader_changes_total", "raftlookupd_replication_queue_depth",
		"raftlookupd_replication_batches_total", "raftlookupd_replication_commands_total",
		"raftlookupd_replication_commit_seconds", "raftlookupd_owned_sessions", "raftlookupd_registry_sessions",
		"raftlookupd_registry_topics", "raftlookupd_registry_channels", "raftlookupd_registry_producers",
		"raftlookupd_tcp_connections", "raftlookupd_http_reads_total", "raftlookupd_http_read_seconds",
		"process_resident_memory_bytes", "go_goroutines", "raftlookupd_raft_fsm_apply",
	} {
		if !strings.Contains(before, "\n# TYPE "+name+" ") {
			t.Errorf("no metric %s", name)
		}
	}
	buildInfo := fmt.Sprintf(`raftlookupd_build_info{goversion=%q,version=%q} 1`, runtime.Version(), buildVersion)
	if !strings.Contains(before, buildInfo+"\n") {
		t.Errorf("no %s", buildInfo)
	}

	n0 := commits(before)
	const writes = 5
	for i := range writes {
		resp, err := http.Post(fmt.Sprintf("%s/topic/create?topic=t%d", base, i), "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("topic/create: %d", resp.StatusCode)
		}
	}
	// Each create is one committed entry; lease renewals may add more.
	deadline := time.Now().Add(10 * time.Second)
	for n := commits(page()); n < n0+writes; n = commits(page()) {
		if time.Now().After(deadline) {
			t.Fatalf("raft commit time count %v after %d writes, was %v", n, writes, n0)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Raft's own metrics reach the page renamed, each key converted once; the
// network transport's per-RPC timings (raft.net.*) are not recorded.
func TestRaftMetricsThroughTheSink(t *testing.T) {
	reg, err := newMetricsRegistry()
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		gometrics.MeasureSince([]string{"raft", "rpc", "appendEntries"}, time.Now())
		gometrics.MeasureSinceWithLabels([]string{"raft", "net", "rpcDecode"}, time.Now(),
			[]gometrics.Label{{Name: "rpcType", Value: "AppendEntries"}})
		gometrics.MeasureSince([]string{"raft", "net", "getRPCType"}, time.Now())
		gometrics.IncrCounter([]string{"raft", "apply"}, 1)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			switch {
			case m.GetSummary() != nil:
				got[f.GetName()] = float64(m.GetSummary().GetSampleCount())
			case m.GetCounter() != nil:
				got[f.GetName()] = m.GetCounter().GetValue()
			}
		}
	}
	if got["raftlookupd_raft_rpc_append_entries"] != 3 || got["raftlookupd_raft_apply_total"] != 3 {
		t.Errorf("raft metrics on the page: append entries %v, apply %v; want 3 each",
			got["raftlookupd_raft_rpc_append_entries"], got["raftlookupd_raft_apply_total"])
	}
	for name := range got {
		if strings.HasPrefix(name, "raftlookupd_raft_net_") {
			t.Errorf("%s recorded, though raft.net.* is blocked", name)
		}
	}
}

// The cached conversion gives what snake and total give, for every key.
func TestPromNamesCache(t *testing.T) {
	rec := &recordingSink{}
	p := &promNames{next: rec, keys: map[string]promKey{}}
	keys := [][]string{{"raft", "commitTime"}, {"raft", "commit", "Time"}, {"raft", "commitTime"}, {"raft", "apply"}, {"raftcommitTime"}}
	for _, k := range keys {
		p.AddSample(k, 1)
		p.IncrCounter(k, 1)
	}
	for i, k := range keys {
		if want := snake(k); !slices.Equal(rec.keys[2*i], want) {
			t.Errorf("AddSample(%q) named %q, want %q", k, rec.keys[2*i], want)
		}
		if want := total(k); !slices.Equal(rec.keys[2*i+1], want) {
			t.Errorf("IncrCounter(%q) named %q, want %q", k, rec.keys[2*i+1], want)
		}
	}
	if len(p.keys) != 4 {
		t.Errorf("%d keys cached, want 4", len(p.keys))
	}
}

type recordingSink struct {
	gometrics.BlackholeSink
	keys [][]string
}

func (r *recordingSink) AddSample(key []string, _ float32)   { r.keys = append(r.keys, key) }
func (r *recordingSink) IncrCounter(key []string, _ float32) { r.keys = append(r.keys, key) }
