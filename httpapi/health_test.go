package httpapi

import (
	"net/http"
	"testing"
)

// The probes need no token even when one is set, and /readyz follows the
// node's readiness.
func TestHealthProbes(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.AdminToken = "secret" })
	tests := []struct {
		name   string
		ready  bool
		req    request
		status int
		body   string
	}{
		{"live while not ready", false, get("/healthz"), 200, "OK\n"},
		{"not ready", false, get("/readyz"), 503, "NOT_READY\n"},
		{"ready", true, get("/readyz"), 200, "OK\n"},
		{"head ready", true, request{method: http.MethodHead, target: "/readyz"}, 200, ""},
		{"head not ready", false, request{method: http.MethodHead, target: "/readyz"}, 503, ""},
		{"post", true, post("/readyz"), 405, `{"message":"METHOD_NOT_ALLOWED"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.cl.mu.Lock()
			e.cl.ready = tt.ready
			e.cl.mu.Unlock()
			resp := e.do(tt.req)
			if resp.status != tt.status || resp.body != tt.body {
				t.Errorf("%s %s: %d %q, want %d %q", tt.req.method, tt.req.target, resp.status, resp.body, tt.status, tt.body)
			}
		})
	}
}
