package main

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"unicode"

	gometrics "github.com/hashicorp/go-metrics/compat"
	gmprom "github.com/hashicorp/go-metrics/compat/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// newMetricsRegistry returns the registry GET /metrics serves: Go runtime
// and process metrics, build info, and hashicorp/raft's own metrics. The
// daemon adds its collectors once its parts exist.
//
// hashicorp/raft and raft-boltdb report through the package-level sink of
// go-metrics (github.com/hashicorp/go-metrics/compat, which by default
// forwards to github.com/armon/go-metrics; with the build tag
// hashicorpmetrics, to github.com/hashicorp/go-metrics). There is no other
// way to receive them, so this sets that global: it is the one piece of
// package-level mutable state in the daemon, and the latest daemon started
// in a process owns it. Going through compat keeps the sink on whichever
// global raft was built to write to.
func newMetricsRegistry() (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "raftlookupd_build_info",
		Help: "Always 1; the labels name the build.",
		ConstLabels: prometheus.Labels{
			"version":   strings.TrimPrefix(buildVersion, "v"),
			"goversion": runtime.Version(),
		},
	})
	buildInfo.Set(1)
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo,
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	sink, err := gmprom.NewPrometheusSinkFrom(gmprom.PrometheusOpts{
		Registerer: reg,
		Name:       "raftlookupd_go_metrics_sink",
		// Zero keeps every series: a Raft timing that is rare (an election,
		// a snapshot) must not vanish from the page a minute later.
		Expiration: 0,
	})
	if err != nil {
		return nil, fmt.Errorf("metrics: go-metrics sink: %w", err)
	}
	conf := gometrics.DefaultConfig("raftlookupd")
	conf.EnableHostname = false       // the scraper adds instance labels
	conf.EnableRuntimeMetrics = false // go_* covers them, without a ticker goroutine
	// The network transport times each RPC it receives four times over
	// (type, decode, enqueue, respond): with heartbeats and commit ticks
	// that is hundreds of samples a second on every follower, a sixth of
	// an idle node's CPU, for figures raft.rpc.* already sums up.
	conf.BlockedPrefixes = blockedMetrics
	if _, err := gometrics.NewGlobal(conf, &promNames{next: sink, keys: map[string]promKey{}}); err != nil {
		return nil, fmt.Errorf("metrics: go-metrics: %w", err)
	}
	return reg, nil
}

// blockedMetrics are the go-metrics key prefixes never recorded (service
// name first, as go-metrics matches them).
var blockedMetrics = []string{"raftlookupd.raft.net."}

// promNames adapts go-metrics keys ("raft", "commitTime") to Prometheus
// conventions before the sink joins them with '_': snake_case words, and
// counters ending in _total. Timings stay in go-metrics' unit, milliseconds.
// Raft reports a few dozen keys, hundreds of times a second, so each key's
// two forms are made once and kept.
type promNames struct {
	next gometrics.MetricSink

	mu   sync.Mutex         // guards keys and buf (every call writes buf)
	keys map[string]promKey // the key's parts joined with keySep
	buf  []byte
}

type promKey struct{ snake, total []string }

// keySep joins a key's parts for the cache; no metric name holds it.
const keySep = 0

// convert returns key's Prometheus forms, from the cache when it can.
func (p *promNames) convert(key []string) promKey {
	p.mu.Lock()
	b := p.buf[:0]
	for i, part := range key {
		if i > 0 {
			b = append(b, keySep)
		}
		b = append(b, part...)
	}
	p.buf = b
	k, ok := p.keys[string(b)] // no allocation for the lookup
	if !ok {
		k = promKey{snake: snake(key), total: total(key)}
		p.keys[string(b)] = k
	}
	p.mu.Unlock()
	return k
}

func (p *promNames) SetGauge(key []string, val float32) { p.next.SetGauge(p.convert(key).snake, val) }
func (p *promNames) SetGaugeWithLabels(key []string, val float32, labels []gometrics.Label) {
	p.next.SetGaugeWithLabels(p.convert(key).snake, val, labels)
}
func (p *promNames) EmitKey(key []string, val float32) { p.next.EmitKey(p.convert(key).snake, val) }
func (p *promNames) IncrCounter(key []string, val float32) {
	p.next.IncrCounter(p.convert(key).total, val)
}
func (p *promNames) IncrCounterWithLabels(key []string, val float32, labels []gometrics.Label) {
	p.next.IncrCounterWithLabels(p.convert(key).total, val, labels)
}
func (p *promNames) AddSample(key []string, val float32) {
	p.next.AddSample(p.convert(key).snake, val)
}
func (p *promNames) AddSampleWithLabels(key []string, val float32, labels []gometrics.Label) {
	p.next.AddSampleWithLabels(p.convert(key).snake, val, labels)
}

func total(key []string) []string {
	k := snake(key)
	if len(k) == 0 || k[len(k)-1] != "total" {
		k = append(k, "total")
	}
	return k
}

func snake(key []string) []string {
	out := make([]string, len(key))
	for i, part := range key {
		out[i] = snakeWord(part)
	}
	return out
}

// snakeWord turns "commitTime" into "commit_time" and "getRPCType" into
// "get_rpc_type".
func snakeWord(s string) string {
	r := []rune(s)
	var b strings.Builder
	for i, c := range r {
		if unicode.IsUpper(c) {
			lowerBefore := i > 0 && (unicode.IsLower(r[i-1]) || unicode.IsDigit(r[i-1]))
			acronymEnd := i > 0 && unicode.IsUpper(r[i-1]) && i+1 < len(r) && unicode.IsLower(r[i+1])
			if lowerBefore || acronymEnd {
				b.WriteByte('_')
			}
			c = unicode.ToLower(c)
		}
		b.WriteRune(c)
	}
	return b.String()
}
