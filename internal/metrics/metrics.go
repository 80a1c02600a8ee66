// Package metrics holds the few metric types raftlookupd exports and writes
// them in the Prometheus text exposition format (version 0.0.4). It is small
// on purpose: counters and histograms are lock-free atomics, gauges are read
// at scrape time from their owners.
package metrics

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
)

// Counter is a monotonically increasing count.
type Counter struct{ v atomic.Uint64 }

// Inc adds one.
func (c *Counter) Inc() { c.v.Add(1) }

// Add adds n.
func (c *Counter) Add(n uint64) { c.v.Add(n) }

// Value returns the count.
func (c *Counter) Value() uint64 { return c.v.Load() }

// Histogram counts observations into cumulative buckets.
type Histogram struct {
	bounds []float64
	counts []atomic.Uint64 // per bucket, not cumulative; last is +Inf
	count  atomic.Uint64
	sum    atomic.Uint64 // float64 bits
}

// LatencyBuckets are upper bounds in seconds from 100µs to 10s.
var LatencyBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// NewHistogram returns a histogram with the given sorted upper bounds.
func NewHistogram(bounds []float64) *Histogram {
	return &Histogram{bounds: bounds, counts: make([]atomic.Uint64, len(bounds)+1)}
}

// Observe records one value.
func (h *Histogram) Observe(v float64) {
	i := sort.SearchFloat64s(h.bounds, v)
	h.counts[i].Add(1)
	h.count.Add(1)
	for {
		old := h.sum.Load()
		if h.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// Count returns the number of observations.
func (h *Histogram) Count() uint64 { return h.count.Load() }

// Writer writes metric families. Series of one name must be written one
// after the other; HELP and TYPE are written before the first.
type Writer struct {
	w    io.Writer
	err  error
	last string
}

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Err returns the first write error.
func (w *Writer) Err() error { return w.err }

func (w *Writer) header(name, typ, help string) {
	if name == w.last {
		return
	}
	w.last = name
	w.printf("# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
}

func (w *Writer) printf(format string, args ...any) {
	if w.err == nil {
		_, w.err = fmt.Fprintf(w.w, format, args...)
	}
}

// Gauge writes one gauge sample; labels are name, value pairs.
func (w *Writer) Gauge(name, help string, v float64, labels ...string) {
	w.header(name, "gauge", help)
	w.printf("%s%s %s\n", name, labelString(labels), formatFloat(v))
}

// Counter writes one counter sample.
func (w *Writer) Counter(name, help string, v uint64, labels ...string) {
	w.header(name, "counter", help)
	w.printf("%s%s %d\n", name, labelString(labels), v)
}

// Histogram writes a histogram's buckets, sum and count.
func (w *Writer) Histogram(name, help string, h *Histogram, labels ...string) {
	w.header(name, "histogram", help)
	var cum uint64
	for i, b := range h.bounds {
		cum += h.counts[i].Load()
		w.printf("%s_bucket%s %d\n", name, labelString(append(labels[:len(labels):len(labels)], "le", formatFloat(b))), cum)
	}
	cum += h.counts[len(h.bounds)].Load()
	w.printf("%s_bucket%s %d\n", name, labelString(append(labels[:len(labels):len(labels)], "le", "+Inf")), cum)
	w.printf("%s_sum%s %s\n", name, labelString(labels), formatFloat(math.Float64frombits(h.sum.Load())))
	w.printf("%s_count%s %d\n", name, labelString(labels), cum)
}

func labelString(kv []string) string {
	if len(kv) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteByte('{')
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(kv[i])
		b.WriteString(`="`)
		b.WriteString(escapeLabel(kv[i+1]))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

func escapeLabel(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`).Replace(s)
}

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
