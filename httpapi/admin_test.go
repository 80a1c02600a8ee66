package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/raftlookupd/raftlookupd/wire"
)

const token = "s3cret-token"

func withToken(c *Config) { c.AdminToken = token }

func TestAdminToken(t *testing.T) {
	e := newTestEnv(t, withToken)
	e.cl.ready = true
	tests := []struct {
		name   string
		req    request
		status int
	}{
		{"no header", get("/cluster/status"), 401},
		{"wrong token", get("/cluster/status", "Authorization: Bearer nope"), 401},
		{"token prefix", get("/cluster/status", "Authorization: Bearer s3cret"), 401},
		{"token longer", get("/cluster/status", "Authorization: Bearer s3cret-token2"), 401},
		{"basic scheme", get("/cluster/status", "Authorization: Basic "+token), 401},
		{"no scheme", get("/cluster/status", "Authorization: "+token), 401},
		{"right token", get("/cluster/status", "Authorization: Bearer "+token), 200},
		{"scheme case-insensitive", get("/cluster/ready", "Authorization: bearer "+token), 200},
		{"post without token", request{method: "POST", target: "/cluster/join", body: `{"id":"n4","raft_address":"h:1"}`}, 401},
		{"apply without token", request{method: "POST", target: "/cluster/apply", body: "x"}, 401},
		{"apply is gone from the client port", request{method: "POST", target: "/cluster/apply", body: "x",
			header: []string{"Authorization: Bearer " + token}}, 404},
		{"read-index is gone from the client port", get("/cluster/read-index", "Authorization: Bearer "+token), 404},
		{"unknown admin path", get("/cluster/nope"), 401},
		{"unknown admin path with token", get("/cluster/nope", "Authorization: Bearer "+token), 404},
		{"wrong method", post("/cluster/status"), 401},
		{"options", request{method: "OPTIONS", target: "/cluster/status"}, 401},
		{"upper case", get("/CLUSTER/status"), 401},
		{"bare prefix", get("/cluster"), 401},
		{"nsq endpoints need none", get("/topics"), 200},
		{"nsq endpoints ignore bearer", get("/topics", "Authorization: Bearer wrong"), 200},
		{"lookalike path is not admin", get("/clusters"), 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.do(tc.req)
			if resp.status != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.status, resp.body, tc.status)
			}
			if tc.status == 401 {
				if resp.body != `{"message":"UNAUTHORIZED"}` {
					t.Errorf("body %s", resp.body)
				}
				checkHeaders(t, resp.header, map[string]string{"Content-Type": ctJSON,
					"WWW-Authenticate": `Bearer realm="raftlookupd"`, "X-Raftlookupd-Leader": absent})
			}
		})
	}
	e.cl.mu.Lock()
	defer e.cl.mu.Unlock()
	if len(e.cl.joins) != 0 {
		t.Errorf("unauthorized requests reached the cluster: joins %v", e.cl.joins)
	}
}

// serveFrom runs one request through the handler as if it came from remote.
func serveFrom(t *testing.T, s *Server, remote, method, target, body string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	req.RemoteAddr = remote
	for _, h := range header {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, req)
	return w
}

// Without an admin token, membership and leadership change only from
// loopback, and profiling is loopback-only; reads of the admin API stay
// open. With a token, the token decides, wherever the caller is.
func TestAdminChangesNeedTokenOrLoopback(t *testing.T) {
	const remote, local = "192.0.2.7:40000", "127.0.0.1:40000"
	join := `{"id":"n4","raft_address":"h:1"}`
	for _, tc := range []struct {
		name, token, from, method, target, body string
		header                                  []string
		status                                  int
	}{
		{"remote join, no token", "", remote, "POST", "/cluster/join", join, nil, 403},
		{"remote leave, no token", "", remote, "POST", "/cluster/leave", `{"id":"n2"}`, nil, 403},
		{"remote transfer, no token", "", remote, "POST", "/cluster/transfer-leadership", ``, nil, 403},
		{"remote status, no token", "", remote, "GET", "/cluster/status", ``, nil, 200},
		{"remote pprof, no token", "", remote, "GET", "/debug/pprof/heap", ``, nil, 403},
		{"local join, no token", "", local, "POST", "/cluster/join", join, nil, 200},
		{"local pprof, no token", "", local, "GET", "/debug/pprof/heap", ``, nil, 200},
		{"remote join with token", token, remote, "POST", "/cluster/join", join, []string{"Authorization: Bearer " + token}, 200},
		{"remote pprof with token", token, remote, "GET", "/debug/pprof/heap", ``, []string{"Authorization: Bearer " + token}, 200},
		{"local pprof without the token", token, local, "GET", "/debug/pprof/heap", ``, nil, 401},
		{"cmdline never", "", local, "GET", "/debug/pprof/cmdline", ``, nil, 404},
		{"cmdline never, with token", token, local, "GET", "/debug/pprof/cmdline", ``, []string{"Authorization: Bearer " + token}, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := newFakeRegistry()
			cl := newFakeCluster(reg)
			s := newTestServer(t, reg, cl, nil, func(c *Config) { c.AdminToken = tc.token })
			t.Cleanup(func() { s.Shutdown(context.Background()) })
			w := serveFrom(t, s, tc.from, tc.method, tc.target, tc.body, tc.header...)
			if w.Code != tc.status {
				t.Fatalf("%s %s from %s: %d %s, want %d", tc.method, tc.target, tc.from, w.Code, w.Body, tc.status)
			}
			if tc.token != "" && strings.Contains(w.Body.String(), tc.token) {
				t.Errorf("the answer contains the admin token")
			}
			cl.mu.Lock()
			defer cl.mu.Unlock()
			if tc.status != 200 && len(cl.joins)+len(cl.leaves)+len(cl.transfers) != 0 {
				t.Errorf("a refused request reached the cluster")
			}
		})
	}
}

func TestAdminNoTokenConfigured(t *testing.T) {
	e := newTestEnv(t)
	if resp := e.do(get("/cluster/status")); resp.status != 200 {
		t.Errorf("status without a configured token: %d %s", resp.status, resp.body)
	}
}

func TestAdminEndpoints(t *testing.T) {
	lag := uint64(3)
	auth := "Authorization: Bearer " + token
	tests := []struct {
		name   string
		setup  func(c *fakeCluster)
		req    request
		status int
		body   string
		check  func(t *testing.T, c *fakeCluster)
	}{
		{name: "status", req: get("/cluster/status", auth), status: 200,
			setup: func(c *fakeCluster) {
				c.status = wire.Status{NodeID: "n1", State: "Leader", LeaderID: "n1", LeaderAddress: "h:4162",
					Term: 2, LastLogIndex: 9, CommitIndex: 9, AppliedIndex: 8,
					Registry: wire.RegistryCounts{Sessions: 3, Orphans: 1, Topics: 4, Channels: 5, Producers: 12},
					Members: []wire.MemberStatus{
						{ID: "n1", RaftAddress: "h:4162", Suffrage: "Voter", Leader: true,
							Registry: &wire.RegistryCounts{Sessions: 3, Orphans: 1, Topics: 4, Channels: 5, Producers: 12}},
						{ID: "n2", RaftAddress: "i:4162", Suffrage: "Voter", Lag: &lag}}}
			},
			body: `{"node_id":"n1","state":"Leader","leader_id":"n1","leader_address":"h:4162","term":2,` +
				`"last_log_index":9,"commit_index":9,"applied_index":8,` +
				`"registry":{"sessions":3,"orphans":1,"topics":4,"channels":5,"producers":12},"members":[` +
				`{"id":"n1","raft_address":"h:4162","http_address":"","tcp_address":"","suffrage":"Voter","leader":true,` +
				`"registry":{"sessions":3,"orphans":1,"topics":4,"channels":5,"producers":12}},` +
				`{"id":"n2","raft_address":"i:4162","http_address":"","tcp_address":"","suffrage":"Voter","leader":false,"lag":3}]}`},
		{name: "status members never null", req: get("/cluster/status", auth), status: 200,
			body: `{"node_id":"","state":"","leader_id":"","leader_address":"","term":0,"last_log_index":0,` +
				`"commit_index":0,"applied_index":0,` +
				`"registry":{"sessions":0,"orphans":0,"topics":0,"channels":0,"producers":0},"members":[]}`},
		{name: "status error", req: get("/cluster/status", auth), status: 503, body: `{"message":"node is shutting down"}`,
			setup: func(c *fakeCluster) { c.statusErr = wire.ErrShutdown }},
		{name: "ready", req: get("/cluster/ready", auth), status: 200, body: `{"ready":true}`,
			setup: func(c *fakeCluster) { c.ready = true }},
		{name: "not ready", req: get("/cluster/ready", auth), status: 503, body: `{"ready":false,"message":"NOT_READY"}`},

		{name: "join", req: request{method: "POST", target: "/cluster/join", header: []string{auth},
			body: `{"id":"n4","raft_address":"h4:4162","voter":false}`}, status: 200, body: `{}`,
			check: func(t *testing.T, c *fakeCluster) {
				if len(c.joins) != 1 || c.joins[0].ID != "n4" || c.joins[0].RaftAddress != "h4:4162" || c.joins[0].IsVoter() {
					t.Errorf("joins %+v", c.joins)
				}
			}},
		{name: "join voter by default", req: request{method: "POST", target: "/cluster/join", header: []string{auth},
			body: `{"id":"n4","raft_address":"h4:4162"}`}, status: 200, body: `{}`,
			check: func(t *testing.T, c *fakeCluster) {
				if len(c.joins) != 1 || !c.joins[0].IsVoter() {
					t.Errorf("joins %+v", c.joins)
				}
			}},
		{name: "join missing id", req: request{method: "POST", target: "/cluster/join", header: []string{auth},
			body: `{"raft_address":"h4:4162"}`}, status: 400, body: `{"message":"id is required"}`},
		{name: "join missing address", req: request{method: "POST", target: "/cluster/join", header: []string{auth},
			body: `{"id":"n4"}`}, status: 400, body: `{"message":"raft_address is required"}`},
		{name: "join empty body", req: request{method: "POST", target: "/cluster/join", header: []string{auth}},
			status: 400, body: `{"message":"id is required"}`},
		{name: "join not json", req: request{method: "POST", target: "/cluster/join", header: []string{auth},
			body: `id=n4`}, status: 400},
		{name: "join unknown field", req: request{method: "POST", target: "/cluster/join", header: []string{auth},
			body: `{"id":"n4","raft_address":"h:1","votr":false}`}, status: 400},
		{name: "join trailing data", req: request{method: "POST", target: "/cluster/join", header: []string{auth},
			body: `{"id":"n4","raft_address":"h:1"} {}`}, status: 400},
		{name: "join bad request from cluster", req: request{method: "POST", target: "/cluster/join", header: []string{auth},
			body: `{"id":"n4","raft_address":"h:1"}`}, status: 400,
			body:  `{"message":"bad request: address in use by n2"}`,
			setup: func(c *fakeCluster) { c.adminErr = fmt.Errorf("%w: address in use by n2", wire.ErrBadRequest) }},
		{name: "join no leader", req: request{method: "POST", target: "/cluster/join", header: []string{auth},
			body: `{"id":"n4","raft_address":"h:1"}`}, status: 503, body: `{"message":"no leader"}`,
			setup: func(c *fakeCluster) { c.adminErr = wire.ErrNoLeader }},
		{name: "join other error", req: request{method: "POST", target: "/cluster/join", header: []string{auth},
			body: `{"id":"n4","raft_address":"h:1"}`}, status: 500, body: `{"message":"raft: boom"}`,
			setup: func(c *fakeCluster) { c.adminErr = errors.New("raft: boom") }},
		{name: "join wrong method", req: get("/cluster/join", auth), status: 405,
			body: `{"message":"METHOD_NOT_ALLOWED"}`},

		{name: "leave", req: request{method: "POST", target: "/cluster/leave", header: []string{auth},
			body: `{"id":"n2"}`}, status: 200, body: `{}`,
			check: func(t *testing.T, c *fakeCluster) {
				if len(c.leaves) != 1 || c.leaves[0] != "n2" {
					t.Errorf("leaves %v", c.leaves)
				}
			}},
		{name: "leave missing id", req: request{method: "POST", target: "/cluster/leave", header: []string{auth},
			body: `{}`}, status: 400, body: `{"message":"id is required"}`},
		{name: "leave unknown member", req: request{method: "POST", target: "/cluster/leave", header: []string{auth},
			body: `{"id":"n9"}`}, status: 404, body: `{"message":"leave n9: not a member of the cluster"}`,
			setup: func(c *fakeCluster) { c.adminErr = fmt.Errorf("leave n9: %w", wire.ErrUnknownMember) }},

		{name: "transfer to any", req: request{method: "POST", target: "/cluster/transfer-leadership",
			header: []string{auth}}, status: 200, body: `{}`,
			check: func(t *testing.T, c *fakeCluster) {
				if len(c.transfers) != 1 || c.transfers[0] != "" {
					t.Errorf("transfers %q", c.transfers)
				}
			}},
		{name: "transfer to id", req: request{method: "POST", target: "/cluster/transfer-leadership",
			header: []string{auth}, body: `{"id":"n3"}`}, status: 200, body: `{}`,
			check: func(t *testing.T, c *fakeCluster) {
				if len(c.transfers) != 1 || c.transfers[0] != "n3" {
					t.Errorf("transfers %q", c.transfers)
				}
			}},
		{name: "transfer not leader", req: request{method: "POST", target: "/cluster/transfer-leadership",
			header: []string{auth}, body: `{}`}, status: 409, body: `{"message":"not the leader"}`,
			setup: func(c *fakeCluster) { c.adminErr = wire.ErrNotLeader }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, withToken)
			if tc.setup != nil {
				tc.setup(e.cl)
			}
			resp := e.do(tc.req)
			if resp.status != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.status, resp.body, tc.status)
			}
			if tc.body != "" && resp.body != tc.body {
				t.Errorf("body\n got %s\nwant %s", resp.body, tc.body)
			}
			checkHeaders(t, resp.header, map[string]string{"Content-Type": ctJSON})
			if tc.status != 405 {
				checkHeaders(t, resp.header, map[string]string{"X-Raftlookupd-Leader": "n1"})
			}
			if tc.check != nil {
				e.cl.mu.Lock()
				defer e.cl.mu.Unlock()
				tc.check(t, e.cl)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// endless yields zero bytes forever.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestAdminBodyLimits(t *testing.T) {
	e := newTestEnv(t)
	req, err := http.NewRequest(http.MethodPost, e.base+"/cluster/join", io.LimitReader(endless{}, maxAdminBody+1))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), "larger than") {
		t.Errorf("join with %d bytes: %d %s, want 413", maxAdminBody+1, resp.StatusCode, b)
	}
	e.cl.mu.Lock()
	defer e.cl.mu.Unlock()
	if len(e.cl.joins) != 0 {
		t.Errorf("oversized bodies reached the cluster")
	}
}
