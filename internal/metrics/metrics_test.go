package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestCollectorExposition(t *testing.T) {
	h := NewHistogram([]float64{0.1, 1})
	h.Observe(0.05)
	h.Observe(0.5)
	h.Observe(3)
	var c Counter
	c.Add(7)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(Collector(func(w *Writer) {
		w.Gauge("x_state", "State.", 1, "state", "Leader")
		w.Gauge("x_state", "State.", 0, "state", `Fol"lower`)
		w.Counter("x_total", "Total.", c.Value())
		w.Histogram("x_seconds", "Latency.", h, "endpoint", "lookup")
	}))
	want := `# HELP x_seconds Latency.
# TYPE x_seconds histogram
x_seconds_bucket{endpoint="lookup",le="0.1"} 1
x_seconds_bucket{endpoint="lookup",le="1"} 2
x_seconds_bucket{endpoint="lookup",le="+Inf"} 3
x_seconds_sum{endpoint="lookup"} 3.55
x_seconds_count{endpoint="lookup"} 3
# HELP x_state State.
# TYPE x_state gauge
x_state{state="Fol\"lower"} 0
x_state{state="Leader"} 1
# HELP x_total Total.
# TYPE x_total counter
x_total 7
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
}

// A series written twice is reported, not silently exposed twice.
func TestCollectorDuplicateIsAnError(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(Collector(func(w *Writer) {
		w.Gauge("x", "X.", 1)
		w.Gauge("x", "X.", 2)
	}))
	if _, err := reg.Gather(); err == nil {
		t.Fatal("gathering a duplicate series succeeded")
	}
}
