package metrics

import (
	"strings"
	"testing"
)

func TestExposition(t *testing.T) {
	var b strings.Builder
	w := NewWriter(&b)
	h := NewHistogram([]float64{0.1, 1})
	h.Observe(0.05)
	h.Observe(0.5)
	h.Observe(3)
	var c Counter
	c.Add(7)
	w.Gauge("x_state", "State.", 1, "state", "Leader")
	w.Gauge("x_state", "State.", 0, "state", `Fol"lower`)
	w.Counter("x_total", "Total.", c.Value())
	w.Histogram("x_seconds", "Latency.", h, "endpoint", "lookup")
	want := `# HELP x_state State.
# TYPE x_state gauge
x_state{state="Leader"} 1
x_state{state="Fol\"lower"} 0
# HELP x_total Total.
# TYPE x_total counter
x_total 7
# HELP x_seconds Latency.
# TYPE x_seconds histogram
x_seconds_bucket{endpoint="lookup",le="0.1"} 1
x_seconds_bucket{endpoint="lookup",le="1"} 2
x_seconds_bucket{endpoint="lookup",le="+Inf"} 3
x_seconds_sum{endpoint="lookup"} 3.55
x_seconds_count{endpoint="lookup"} 3
`
	if b.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	if w.Err() != nil {
		t.Fatal(w.Err())
	}
}
