// Package metrics holds the few metric types raftlookupd's packages keep and
// hands them to a Prometheus registry at scrape time. Counters and histograms
// are lock-free atomics owned by the code that counts; gauges are read from
// their owners when scraped. Only the packages that count import this one;
// the exposition itself is github.com/prometheus/client_golang's.
package metrics

import (
	"math"
	"sort"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
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

// Writer sends one scrape's samples to a Prometheus collection. Series of
// one name must have the same help, type and label names.
type Writer struct {
	ch chan<- prometheus.Metric
}

// Collector returns a collector that calls write at every scrape. It is an
// unchecked collector (it describes nothing up front): which series exist
// is only known when they are written.
func Collector(write func(*Writer)) prometheus.Collector { return collector(write) }

type collector func(*Writer)

func (collector) Describe(chan<- *prometheus.Desc) {}

func (c collector) Collect(ch chan<- prometheus.Metric) { c(&Writer{ch: ch}) }

// Gauge writes one gauge sample; labels are name, value pairs.
func (w *Writer) Gauge(name, help string, v float64, labels ...string) {
	w.constMetric(name, help, prometheus.GaugeValue, v, labels)
}

// Counter writes one counter sample.
func (w *Writer) Counter(name, help string, v uint64, labels ...string) {
	w.constMetric(name, help, prometheus.CounterValue, float64(v), labels)
}

func (w *Writer) constMetric(name, help string, typ prometheus.ValueType, v float64, labels []string) {
	desc, values := describe(name, help, labels)
	m, err := prometheus.NewConstMetric(desc, typ, v, values...)
	if err != nil {
		m = prometheus.NewInvalidMetric(desc, err)
	}
	w.ch <- m
}

// Histogram writes a histogram's buckets, sum and count.
func (w *Writer) Histogram(name, help string, h *Histogram, labels ...string) {
	desc, values := describe(name, help, labels)
	buckets := make(map[float64]uint64, len(h.bounds))
	var cum uint64
	for i, b := range h.bounds {
		cum += h.counts[i].Load()
		buckets[b] = cum
	}
	// The count is the buckets' total, not h.count: an Observe running
	// concurrently must not make the +Inf bucket disagree with the others.
	cum += h.counts[len(h.bounds)].Load()
	m, err := prometheus.NewConstHistogram(desc, cum, math.Float64frombits(h.sum.Load()), buckets, values...)
	if err != nil {
		m = prometheus.NewInvalidMetric(desc, err)
	}
	w.ch <- m
}

func describe(name, help string, labels []string) (*prometheus.Desc, []string) {
	names := make([]string, 0, len(labels)/2)
	values := make([]string, 0, len(labels)/2)
	for i := 0; i+1 < len(labels); i += 2 {
		names = append(names, labels[i])
		values = append(values, labels[i+1])
	}
	return prometheus.NewDesc(name, help, names, nil), values
}
