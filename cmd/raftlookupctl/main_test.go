package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// request is what the fake admin API saw.
type request struct {
	Method, Path, Auth, ContentType, Body string
}

// fakeAPI answers every request with one canned status and body and records
// the requests.
type fakeAPI struct {
	addr   string
	status int
	body   string

	mu   sync.Mutex
	reqs []request
}

func newFakeAPI(t *testing.T, status int, body string) *fakeAPI {
	t.Helper()
	f := &fakeAPI{status: status, body: body}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("reading request body: %v", err)
		}
		f.mu.Lock()
		f.reqs = append(f.reqs, request{r.Method, r.URL.Path, r.Header.Get("Authorization"),
			r.Header.Get("Content-Type"), string(b)})
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(f.status)
		io.WriteString(w, f.body)
	}))
	t.Cleanup(srv.Close)
	f.addr = strings.TrimPrefix(srv.URL, "http://")
	return f
}

func (f *fakeAPI) requests() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.reqs...)
}

// runCtl runs the CLI with env as the whole environment.
func runCtl(env map[string]string, args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut, func(k string) string { return env[k] })
	return code, out.String(), errOut.String()
}

// withAddr replaces the argument "ADDR" with addr.
func withAddr(args []string, addr string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = strings.ReplaceAll(a, "ADDR", addr)
	}
	return out
}

const threeMembers = `{"node_id":"n1","state":"Leader","leader_id":"n1","leader_address":"10.0.0.1:4162",` +
	`"term":7,"last_log_index":120,"commit_index":118,"applied_index":117,"members":[` +
	`{"id":"n1","raft_address":"10.0.0.1:4162","http_address":"10.0.0.1:4161","tcp_address":"10.0.0.1:4160","suffrage":"Voter","leader":true,"lag":0,` +
	`"registry":{"sessions":12,"orphans":0,"topics":40,"channels":80,"producers":360}},` +
	`{"id":"n2","raft_address":"10.0.0.2:4162","http_address":"10.0.0.2:4161","tcp_address":"10.0.0.2:4160","suffrage":"Voter","leader":false,"lag":3,` +
	`"registry":{"sessions":11,"orphans":0,"topics":40,"channels":80,"producers":330}},` +
	`{"id":"n3","raft_address":"10.0.0.3:4162","http_address":"","tcp_address":"","suffrage":"Nonvoter","leader":false}]}` + "\n"

const threeMembersTable = `node n1: Leader, term 7, leader n1 (10.0.0.1:4162), last log index 120, commit index 118, applied index 117

ID  RAFT ADDRESS   HTTP ADDRESS   SUFFRAGE  ROLE      LAG  SESSIONS  RECORDS
n1  10.0.0.1:4162  10.0.0.1:4161  Voter     leader    0    12        360
n2  10.0.0.2:4162  10.0.0.2:4161  Voter     follower  3    11        330
n3  10.0.0.3:4162  -              Nonvoter  follower  -    -         -
`

const secret = "s3cret"

func TestCommands(t *testing.T) {
	tokenEnv := map[string]string{"RAFTLOOKUPD_ADMIN_TOKEN": secret}
	get := func(path string) *request {
		return &request{Method: "GET", Path: path, Auth: "Bearer " + secret}
	}
	post := func(path, body string) *request {
		return &request{Method: "POST", Path: path, Auth: "Bearer " + secret, ContentType: "application/json", Body: body}
	}
	tests := []struct {
		name   string
		env    map[string]string
		args   []string
		status int    // of the fake's answer
		body   string // of the fake's answer
		want   *request
		code   int
		stdout string
		stderr string
		// stderrPrefix, if set, replaces the exact stderr check.
		stderrPrefix string
	}{
		{name: "status table", args: []string{"-addr", "ADDR", "status"},
			status: 200, body: threeMembers, want: get("/cluster/status"), stdout: threeMembersTable},
		{name: "status without leader",
			args:   []string{"-addr", "ADDR", "status"},
			status: 200,
			body: `{"node_id":"n2","state":"Candidate","leader_id":"","leader_address":"","term":8,` +
				`"last_log_index":5,"commit_index":5,"applied_index":5,"members":[` +
				`{"id":"n1","raft_address":"a:1","http_address":"a:2","tcp_address":"","suffrage":"Voter","leader":false},` +
				`{"id":"n2","raft_address":"b:1","http_address":"b:2","tcp_address":"","suffrage":"Voter","leader":false,"lag":0}]}`,
			want: get("/cluster/status"),
			stdout: "node n2: Candidate, term 8, leader none, last log index 5, commit index 5, applied index 5\n\n" +
				"ID  RAFT ADDRESS  HTTP ADDRESS  SUFFRAGE  ROLE      LAG  SESSIONS  RECORDS\n" +
				"n1  a:1           a:2           Voter     follower  -    -         -\n" +
				"n2  b:1           b:2           Voter     follower  0    -         -\n"},
		{name: "status cells are one line",
			args:   []string{"-addr", "ADDR", "status"},
			status: 200,
			body: `{"node_id":"n\u001b[31m1","state":"Leader","term":1,"members":[` +
				`{"id":"a\tb","raft_address":"x\ny:1","suffrage":"Voter","leader":true}]}`,
			want: get("/cluster/status"),
			stdout: "node n [31m1: Leader, term 1, leader none, last log index 0, commit index 0, applied index 0\n\n" +
				"ID   RAFT ADDRESS  HTTP ADDRESS  SUFFRAGE  ROLE    LAG  SESSIONS  RECORDS\n" +
				"a b  x y:1         -             Voter     leader  -    -         -\n"},
		{name: "status json passes unknown fields through", args: []string{"-addr", "ADDR", "status", "-json"},
			status: 200, body: `{"node_id":"n1","future":{"x":[1,2]},"members":[]}` + "\n",
			want:   get("/cluster/status"),
			stdout: "{\n  \"node_id\": \"n1\",\n  \"future\": {\n    \"x\": [\n      1,\n      2\n    ]\n  },\n  \"members\": []\n}\n"},
		{name: "status invalid document", args: []string{"-addr", "ADDR", "status"},
			status: 200, body: `<html>`, want: get("/cluster/status"), code: 1,
			stderrPrefix: "raftlookupctl: status: invalid status document: "},
		{name: "status json invalid document", args: []string{"-addr", "ADDR", "status", "-json"},
			status: 200, body: `{"node_id":`, want: get("/cluster/status"), code: 1,
			stderrPrefix: "raftlookupctl: status: invalid JSON in response: "},
		{name: "global flags after the command", env: map[string]string{},
			args:   []string{"status", "-json", "-addr", "ADDR", "-token", "t0k"},
			status: 200, body: `{}`,
			want:   &request{Method: "GET", Path: "/cluster/status", Auth: "Bearer t0k"},
			stdout: "{}\n"},
		{name: "addr as URL", args: []string{"-addr", "http://ADDR/", "health"},
			status: 200, body: `{"ready":true}`, want: get("/cluster/ready"), stdout: "ready\n"},

		{name: "join voter", args: []string{"-addr", "ADDR", "join", "n4", "127.0.0.1:5162"},
			status: 200, body: `{}`,
			want:   post("/cluster/join", `{"id":"n4","raft_address":"127.0.0.1:5162","voter":true}`),
			stdout: "joined n4 (127.0.0.1:5162) as voter\n"},
		{name: "join nonvoter flag last", args: []string{"-addr", "ADDR", "join", "n4", "h4:4162", "-nonvoter"},
			status: 200, body: `{}`,
			want:   post("/cluster/join", `{"id":"n4","raft_address":"h4:4162","voter":false}`),
			stdout: "joined n4 (h4:4162) as nonvoter\n"},
		{name: "join nonvoter flag first", args: []string{"-addr", "ADDR", "join", "-nonvoter", "n4", "h4:4162"},
			status: 200, body: `{}`,
			want:   post("/cluster/join", `{"id":"n4","raft_address":"h4:4162","voter":false}`),
			stdout: "joined n4 (h4:4162) as nonvoter\n"},
		{name: "join nonvoter flag between", args: []string{"-addr", "ADDR", "join", "n4", "--nonvoter", "h4:4162"},
			status: 200, body: `{}`,
			want:   post("/cluster/join", `{"id":"n4","raft_address":"h4:4162","voter":false}`),
			stdout: "joined n4 (h4:4162) as nonvoter\n"},
		{name: "join nonvoter=false", args: []string{"-addr", "ADDR", "join", "-nonvoter=false", "n4", "h4:4162"},
			status: 200, body: `{}`,
			want:   post("/cluster/join", `{"id":"n4","raft_address":"h4:4162","voter":true}`),
			stdout: "joined n4 (h4:4162) as voter\n"},
		{name: "join id after --", args: []string{"-addr", "ADDR", "join", "--", "-n4", "h4:4162"},
			status: 200, body: `{}`,
			want:   post("/cluster/join", `{"id":"-n4","raft_address":"h4:4162","voter":true}`),
			stdout: "joined -n4 (h4:4162) as voter\n"},
		{name: "join no leader", args: []string{"-addr", "ADDR", "join", "n4", "h4:4162"},
			status: 503, body: `{"message":"no leader"}`,
			want: post("/cluster/join", `{"id":"n4","raft_address":"h4:4162","voter":true}`), code: 1,
			stderr: "raftlookupctl: join: 503 no leader\n"},

		{name: "leave", args: []string{"-addr", "ADDR", "leave", "n2"},
			status: 200, body: `{}`, want: post("/cluster/leave", `{"id":"n2"}`), stdout: "removed n2\n"},
		{name: "leave unknown member", args: []string{"-addr", "ADDR", "leave", "n9"},
			status: 404, body: `{"message":"leave n9: not a member of the cluster"}`,
			want: post("/cluster/leave", `{"id":"n9"}`), code: 1,
			stderr: "raftlookupctl: leave: 404 leave n9: not a member of the cluster\n"},

		{name: "transfer to any", args: []string{"-addr", "ADDR", "transfer-leadership"},
			status: 200, body: `{}`, want: post("/cluster/transfer-leadership", `{}`),
			stdout: "leadership transferred\n"},
		{name: "transfer to id", args: []string{"-addr", "ADDR", "transfer-leadership", "n3"},
			status: 200, body: `{}`, want: post("/cluster/transfer-leadership", `{"id":"n3"}`),
			stdout: "leadership transferred to n3\n"},
		{name: "transfer refused", args: []string{"-addr", "ADDR", "transfer-leadership", "n3"},
			status: 409, body: `{"message":"NOT_LEADER"}`, want: post("/cluster/transfer-leadership", `{"id":"n3"}`),
			code: 1, stderr: "raftlookupctl: transfer-leadership: 409 NOT_LEADER\n"},

		{name: "health ready", args: []string{"-addr", "ADDR", "health"},
			status: 200, body: `{"ready":true}`, want: get("/cluster/ready"), stdout: "ready\n"},
		{name: "health not ready", args: []string{"-addr", "ADDR", "health"},
			status: 503, body: `{"ready":false,"message":"NOT_READY"}`, want: get("/cluster/ready"),
			code: 1, stderr: "raftlookupctl: health: 503 NOT_READY\n"},
		{name: "health other 2xx is not ready", args: []string{"-addr", "ADDR", "health"},
			status: 204, want: get("/cluster/ready"),
			code: 1, stderr: "raftlookupctl: health: 204 No Content\n"},

		{name: "unauthorized without token", env: map[string]string{}, args: []string{"-addr", "ADDR", "status"},
			status: 401, body: `{"message":"UNAUTHORIZED"}`,
			want: &request{Method: "GET", Path: "/cluster/status"}, code: 1,
			stderr: "raftlookupctl: status: 401 UNAUTHORIZED (check -token or $RAFTLOOKUPD_ADMIN_TOKEN)\n"},
		{name: "token flag overrides env", args: []string{"-addr", "ADDR", "-token", "flagtok", "leave", "n2"},
			status: 200, body: `{}`,
			want:   &request{Method: "POST", Path: "/cluster/leave", Auth: "Bearer flagtok", ContentType: "application/json", Body: `{"id":"n2"}`},
			stdout: "removed n2\n"},
		{name: "empty token flag overrides env", args: []string{"-addr", "ADDR", "-token", "", "health"},
			status: 200, body: `{}`, want: &request{Method: "GET", Path: "/cluster/ready"}, stdout: "ready\n"},
		{name: "error body not JSON", args: []string{"-addr", "ADDR", "status"},
			status: 502, body: "Bad Gateway\n<html>...</html>\n", want: get("/cluster/status"),
			code: 1, stderr: "raftlookupctl: status: 502 Bad Gateway\n"},
		{name: "error body empty", args: []string{"-addr", "ADDR", "leave", "n2"},
			status: 500, want: post("/cluster/leave", `{"id":"n2"}`),
			code: 1, stderr: "raftlookupctl: leave: 500 Internal Server Error\n"},
		{name: "error message made one line", args: []string{"-addr", "ADDR", "leave", "n2"},
			status: 500, body: `{"message":"raft: boom\nsecond line\u001b[0m"}`, want: post("/cluster/leave", `{"id":"n2"}`),
			code: 1, stderr: "raftlookupctl: leave: 500 raft: boom second line [0m\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAPI(t, tc.status, tc.body)
			env := tc.env
			if env == nil {
				env = tokenEnv
			}
			code, stdout, stderr := runCtl(env, withAddr(tc.args, f.addr)...)
			if code != tc.code {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tc.code, stderr)
			}
			if stdout != tc.stdout {
				t.Errorf("stdout:\n%s\nwant:\n%s", stdout, tc.stdout)
			}
			if tc.stderrPrefix != "" {
				if !strings.HasPrefix(stderr, tc.stderrPrefix) || strings.Count(stderr, "\n") != 1 {
					t.Errorf("stderr %q, want one line starting %q", stderr, tc.stderrPrefix)
				}
			} else if stderr != tc.stderr {
				t.Errorf("stderr %q, want %q", stderr, tc.stderr)
			}
			reqs := f.requests()
			if len(reqs) != 1 {
				t.Fatalf("requests %+v, want exactly one", reqs)
			}
			if got := reqs[0]; got != *tc.want {
				t.Errorf("request %+v\nwant    %+v", got, *tc.want)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	const joinUsage = "usage: raftlookupctl [global flags] join ID RAFT_ADDRESS [-nonvoter]\n"
	tests := []struct {
		name   string
		args   []string
		stderr string // exact, or a prefix when it ends in "…"
	}{
		{"no command", []string{"-addr", "ADDR"}, "raftlookupctl: no command\nusage: raftlookupctl [-addr host:port]…"},
		{"unknown command", []string{"-addr", "ADDR", "frobnicate"}, "raftlookupctl: unknown command \"frobnicate\"\nusage: …"},
		{"unknown global flag", []string{"-bogus", "status"}, "raftlookupctl: flag provided but not defined: -bogus\nusage: …"},
		{"bad timeout value", []string{"-timeout", "soon", "status"}, "raftlookupctl: invalid value \"soon\" for flag -timeout: parse error\nusage: …"},
		{"zero timeout", []string{"-addr", "ADDR", "-timeout", "0s", "status"},
			"raftlookupctl: status: -timeout 0s: must be positive\nusage: raftlookupctl [global flags] status [-json]\n"},
		{"addr without port", []string{"-addr", "localhost", "health"},
			"raftlookupctl: health: -addr \"localhost\": want host:port\nusage: raftlookupctl [global flags] health\n"},
		{"addr with bad scheme", []string{"-addr", "ftp://h:1", "health"},
			"raftlookupctl: health: -addr \"ftp://h:1\": want host:port or an http(s)://host:port URL\nusage: raftlookupctl [global flags] health\n"},
		{"status unknown flag", []string{"-addr", "ADDR", "status", "-bogus"},
			"raftlookupctl: status: flag provided but not defined: -bogus\nusage: raftlookupctl [global flags] status [-json]\n"},
		{"status extra argument", []string{"-addr", "ADDR", "status", "n1"},
			"raftlookupctl: status: unexpected argument \"n1\"\nusage: raftlookupctl [global flags] status [-json]\n"},
		{"join without arguments", []string{"-addr", "ADDR", "join"}, "raftlookupctl: join: missing ID\n" + joinUsage},
		{"join without address", []string{"-addr", "ADDR", "join", "n4", "-nonvoter"}, "raftlookupctl: join: missing RAFT_ADDRESS\n" + joinUsage},
		{"join extra argument", []string{"-addr", "ADDR", "join", "n4", "h:1", "x"}, "raftlookupctl: join: unexpected argument \"x\"\n" + joinUsage},
		{"join address without port", []string{"-addr", "ADDR", "join", "n4", "h4"},
			"raftlookupctl: join: RAFT_ADDRESS \"h4\": want host:port\n" + joinUsage},
		{"join bad flag value", []string{"-addr", "ADDR", "join", "n4", "h:1", "-nonvoter=maybe"},
			"raftlookupctl: join: invalid boolean value \"maybe\" for -nonvoter: parse error\n" + joinUsage},
		{"leave without id", []string{"-addr", "ADDR", "leave"},
			"raftlookupctl: leave: missing ID\nusage: raftlookupctl [global flags] leave ID\n"},
		{"leave empty id", []string{"-addr", "ADDR", "leave", ""},
			"raftlookupctl: leave: empty argument\nusage: raftlookupctl [global flags] leave ID\n"},
		{"leave two ids", []string{"-addr", "ADDR", "leave", "n2", "n3"},
			"raftlookupctl: leave: unexpected argument \"n3\"\nusage: raftlookupctl [global flags] leave ID\n"},
		{"transfer two ids", []string{"-addr", "ADDR", "transfer-leadership", "n2", "n3"},
			"raftlookupctl: transfer-leadership: unexpected argument \"n3\"\nusage: raftlookupctl [global flags] transfer-leadership [ID]\n"},
		{"health argument", []string{"-addr", "ADDR", "health", "now"},
			"raftlookupctl: health: unexpected argument \"now\"\nusage: raftlookupctl [global flags] health\n"},
		{"version argument", []string{"version", "x"},
			"raftlookupctl: version: unexpected argument \"x\"\nusage: raftlookupctl [global flags] version\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAPI(t, 200, `{}`)
			args := append([]string{"-token", "hunter2"}, withAddr(tc.args, f.addr)...)
			code, stdout, stderr := runCtl(nil, args...)
			if code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want none", stdout)
			}
			if prefix, ok := strings.CutSuffix(tc.stderr, "…"); ok {
				if !strings.HasPrefix(stderr, prefix) {
					t.Errorf("stderr %q, want prefix %q", stderr, prefix)
				}
			} else if stderr != tc.stderr {
				t.Errorf("stderr %q\nwant   %q", stderr, tc.stderr)
			}
			if strings.Contains(stderr, "hunter2") {
				t.Errorf("stderr shows the token: %q", stderr)
			}
			if reqs := f.requests(); len(reqs) != 0 {
				t.Errorf("requests %+v, want none", reqs)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	tests := []struct {
		args   []string
		stdout string // prefix
	}{
		{[]string{"-h"}, "usage: raftlookupctl [-addr host:port] [-token TOKEN] [-timeout 5s] COMMAND [ARGS]\n"},
		{[]string{"help"}, "usage: raftlookupctl [-addr host:port]"},
		{[]string{"-addr", "h:1", "-help"}, "usage: raftlookupctl [-addr host:port]"},
		{[]string{"join", "n4", "-h"}, "usage: raftlookupctl [global flags] join ID RAFT_ADDRESS [-nonvoter]\n  add a server"},
		{[]string{"status", "--help"}, "usage: raftlookupctl [global flags] status [-json]\n"},
	}
	for _, tc := range tests {
		code, stdout, stderr := runCtl(nil, tc.args...)
		if code != 0 || stderr != "" || !strings.HasPrefix(stdout, tc.stdout) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 0 and stdout starting %q", tc.args, code, stdout, stderr, tc.stdout)
		}
	}
	// Every command is listed in the full usage.
	_, stdout, _ := runCtl(nil, "help")
	for _, c := range commands() {
		if !strings.Contains(stdout, "\n  "+c.synopsis()+" ") {
			t.Errorf("usage does not list %q:\n%s", c.synopsis(), stdout)
		}
	}
}

func TestVersion(t *testing.T) {
	code, stdout, stderr := runCtl(nil, "version")
	if code != 0 || stderr != "" || !regexp.MustCompile(`^raftlookupctl \S+\n$`).MatchString(stdout) {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestConnectionRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := strings.TrimPrefix(srv.URL, "http://")
	srv.Close()
	for _, args := range [][]string{{"status"}, {"join", "n4", "h:1"}, {"health"}} {
		code, stdout, stderr := runCtl(nil, append([]string{"-addr", addr}, args...)...)
		prefix := "raftlookupctl: " + args[0] + ": "
		if code != 1 || stdout != "" || !strings.HasPrefix(stderr, prefix) ||
			!strings.Contains(stderr, "connection refused") || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 1 and one line %q...connection refused",
				args, code, stdout, stderr, prefix)
		}
	}
}

// TestTimeout: a node that accepts the request and never answers is given
// up on after -timeout.
func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs before srv.Close, which waits for handlers
	addr := strings.TrimPrefix(srv.URL, "http://")
	code, _, stderr := runCtl(nil, "-addr", addr, "-timeout", "100ms", "health")
	if code != 1 || !strings.HasPrefix(stderr, "raftlookupctl: health: ") ||
		!strings.Contains(stderr, "Client.Timeout exceeded") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("exit %d, stderr %q; want 1 and one line about the timeout", code, stderr)
	}
}

func TestDefaultAddr(t *testing.T) {
	g := &globals{addr: defaultAddr, timeout: defaultTimeout}
	fs := newFlagSet("t")
	g.register(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	c, err := newClient(g.addr, "", g.timeout)
	if err != nil {
		t.Fatal(err)
	}
	if c.base != "http://127.0.0.1:4161" || c.http.Timeout != defaultTimeout || defaultTimeout.String() != "5s" {
		t.Errorf("base %q, timeout %v", c.base, c.http.Timeout)
	}
}
