package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/raftlookupd/raftlookupd/fsm"
	"github.com/raftlookupd/raftlookupd/wire"
)

const (
	ctJSON  = "application/json; charset=utf-8"
	ctPlain = "text/plain; charset=utf-8"
	nsqV1   = "nsq; version=1.0"
)

// absent in a header expectation means the header must not be sent.
const absent = "<absent>"

func v1JSON() map[string]string {
	return map[string]string{"X-NSQ-Content-Type": nsqV1, "Content-Type": ctJSON}
}

// v1Empty is a POST success: no body, no Content-Type.
func v1Empty() map[string]string {
	return map[string]string{"X-NSQ-Content-Type": nsqV1, "Content-Type": absent, "Content-Length": "0"}
}

func checkHeaders(t *testing.T, h http.Header, want map[string]string) {
	t.Helper()
	for k, v := range want {
		got, ok := h[http.CanonicalHeaderKey(k)]
		switch {
		case v == absent && ok:
			t.Errorf("header %s = %q, want absent", k, got)
		case v != absent && (!ok || len(got) != 1 || got[0] != v):
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
}

// seed gives the fake registry one live peer with topics t1 (channel c1)
// and t2, and an HTTP-created topic t3 without producers.
func seed(reg *fakeRegistry) *fakePeer {
	p := reg.identify(fsm.PeerInfo{
		RemoteAddress: "127.0.0.1:5001", Hostname: "h1", BroadcastAddress: "b1",
		TCPPort: 4150, HTTPPort: 4151, Version: "1.3.0",
	}, time.Now())
	reg.register(p, "t1", "c1")
	reg.register(p, "t2", "")
	_ = reg.apply(fsm.Command{Op: fsm.OpCreateTopic, Topic: "t3"})
	return p
}

func TestNSQEndpoints(t *testing.T) {
	long := strings.Repeat("a", 64)
	tests := []struct {
		name    string
		seed    bool
		req     request
		status  int
		body    string // exact, unless canon
		canon   bool   // compare with arrays sorted
		headers map[string]string
		propose *fsm.Command // the command that must be proposed (Time ignored); nil: none
	}{
		{name: "ping", req: get("/ping"), status: 200, body: "OK",
			headers: map[string]string{"Content-Type": ctPlain, "X-NSQ-Content-Type": absent}},
		{name: "info", req: get("/info"), status: 200, body: `{"version":"1.3.0"}`, headers: v1JSON()},
		{name: "topics empty", req: get("/topics"), status: 200, body: `{"topics":[]}`, headers: v1JSON()},
		{name: "topics", seed: true, req: get("/topics"), status: 200, canon: true,
			body: `{"topics":["t1","t2","t3"]}`, headers: v1JSON()},
		{name: "topics ignores broken query", req: get("/topics?%zz"), status: 200, body: `{"topics":[]}`},
		{name: "channels missing topic", req: get("/channels"), status: 400,
			body: `{"message":"MISSING_ARG_TOPIC"}`, headers: v1JSON()},
		{name: "channels bad escape", req: get("/channels?topic=%zz"), status: 400,
			body: `{"message":"INVALID_REQUEST"}`, headers: v1JSON()},
		{name: "channels semicolon", req: get("/channels?topic=a;b"), status: 400,
			body: `{"message":"INVALID_REQUEST"}`},
		{name: "channels unknown topic", req: get("/channels?topic=nope"), status: 200, body: `{"channels":[]}`},
		{name: "channels", seed: true, req: get("/channels?topic=t1"), status: 200, body: `{"channels":["c1"]}`},
		{name: "channels wildcard", seed: true, req: get("/channels?topic=*"), status: 200, body: `{"channels":["c1"]}`},
		{name: "lookup missing topic", req: get("/lookup"), status: 400, body: `{"message":"MISSING_ARG_TOPIC"}`},
		{name: "lookup form body ignored", req: request{method: "GET", target: "/lookup", body: "topic=t1",
			header: []string{"Content-Type: application/x-www-form-urlencoded"}}, seed: true,
			status: 400, body: `{"message":"MISSING_ARG_TOPIC"}`},
		{name: "lookup unknown", req: get("/lookup?topic=nope"), status: 404,
			body: `{"message":"TOPIC_NOT_FOUND"}`, headers: v1JSON()},
		{name: "lookup empty topic name present", seed: true, req: get("/lookup?topic="), status: 404,
			body: `{"message":"TOPIC_NOT_FOUND"}`},
		{name: "lookup no producers", seed: true, req: get("/lookup?topic=t3"), status: 200,
			body: `{"channels":[],"producers":[]}`, headers: v1JSON()},
		{name: "lookup", seed: true, req: get("/lookup?topic=t1"), status: 200,
			body: `{"channels":["c1"],"producers":[{"remote_address":"127.0.0.1:5001","hostname":"h1",` +
				`"broadcast_address":"b1","tcp_port":4150,"http_port":4151,"version":"1.3.0"}]}`},
		{name: "lookup first value wins", seed: true, req: get("/lookup?topic=t3&topic=t1"), status: 200,
			body: `{"channels":[],"producers":[]}`},
		{name: "lookup accept and bearer ignored", seed: true,
			req:    get("/lookup?topic=t3", "Accept: application/vnd.nsq; version=1.0", "Authorization: Bearer x"),
			status: 200, body: `{"channels":[],"producers":[]}`},
		{name: "nodes empty", req: get("/nodes"), status: 200, body: `{"producers":[]}`, headers: v1JSON()},
		{name: "nodes", seed: true, req: get("/nodes"), status: 200, canon: true,
			body: `{"producers":[{"remote_address":"127.0.0.1:5001","hostname":"h1","broadcast_address":"b1",` +
				`"tcp_port":4150,"http_port":4151,"version":"1.3.0","tombstones":[false,false],"topics":["t1","t2"]}]}`},
		{name: "debug empty", req: get("/debug"), status: 200, body: `{}`, headers: v1JSON()},
		{name: "info no params needed", req: get("/info?%zz"), status: 200, body: `{"version":"1.3.0"}`},

		{name: "create topic missing", req: post("/topic/create"), status: 400,
			body: `{"message":"MISSING_ARG_TOPIC"}`, headers: v1JSON()},
		{name: "create topic form body ignored", req: request{method: "POST", target: "/topic/create",
			body: "topic=x", header: []string{"Content-Type: application/x-www-form-urlencoded"}},
			status: 400, body: `{"message":"MISSING_ARG_TOPIC"}`},
		{name: "create topic bad escape", req: post("/topic/create?topic=%zz"), status: 400,
			body: `{"message":"INVALID_REQUEST"}`},
		{name: "create topic invalid", req: post("/topic/create?topic=sample$"), status: 400,
			body: `{"message":"INVALID_ARG_TOPIC"}`},
		{name: "create topic empty", req: post("/topic/create?topic="), status: 400,
			body: `{"message":"INVALID_ARG_TOPIC"}`},
		{name: "create topic 65", req: post("/topic/create?topic=" + long + "b"), status: 400,
			body: `{"message":"INVALID_ARG_TOPIC"}`},
		{name: "create topic 64", req: post("/topic/create?topic=" + long), status: 200, headers: v1Empty(),
			propose: &fsm.Command{Op: fsm.OpCreateTopic, Topic: long}},
		{name: "create topic ephemeral", req: post("/topic/create?topic=a%23ephemeral"), status: 200,
			propose: &fsm.Command{Op: fsm.OpCreateTopic, Topic: "a#ephemeral"}},
		{name: "create topic first wins", req: post("/topic/create?topic=a&topic=b$"), status: 200,
			propose: &fsm.Command{Op: fsm.OpCreateTopic, Topic: "a"}},
		{name: "create topic ignores consistency", req: post("/topic/create?topic=a&consistency=bogus"),
			status: 200, propose: &fsm.Command{Op: fsm.OpCreateTopic, Topic: "a"}},

		{name: "delete topic missing", req: post("/topic/delete"), status: 400, body: `{"message":"MISSING_ARG_TOPIC"}`},
		{name: "delete topic wildcard refused", seed: true, req: post("/topic/delete?topic=*"), status: 400,
			body: `{"message":"INVALID_ARG_TOPIC"}`, headers: v1JSON()},
		{name: "delete topic invalid answered without proposing", req: post("/topic/delete?topic=bad$"), status: 200,
			headers: v1Empty()},
		{name: "delete topic", seed: true, req: post("/topic/delete?topic=t1"), status: 200, headers: v1Empty(),
			propose: &fsm.Command{Op: fsm.OpDeleteTopic, Topic: "t1"}},

		{name: "create channel missing topic", req: post("/channel/create?channel=c"), status: 400,
			body: `{"message":"MISSING_ARG_TOPIC"}`},
		{name: "create channel invalid topic", req: post("/channel/create?topic=t$&channel=c$"), status: 400,
			body: `{"message":"INVALID_ARG_TOPIC"}`},
		{name: "create channel missing channel", req: post("/channel/create?topic=t"), status: 400,
			body: `{"message":"MISSING_ARG_CHANNEL"}`},
		{name: "create channel invalid channel", req: post("/channel/create?topic=t&channel=c$"), status: 400,
			body: `{"message":"INVALID_ARG_CHANNEL"}`},
		{name: "create channel", req: post("/channel/create?topic=t&channel=c%23ephemeral"), status: 200,
			headers: v1Empty(), propose: &fsm.Command{Op: fsm.OpCreateChannel, Topic: "t", Channel: "c#ephemeral"}},

		{name: "delete channel missing topic", req: post("/channel/delete"), status: 400,
			body: `{"message":"MISSING_ARG_TOPIC"}`},
		{name: "delete channel invalid topic", req: post("/channel/delete?topic=*&channel=c"), status: 400,
			body: `{"message":"INVALID_ARG_TOPIC"}`},
		{name: "delete channel missing channel", req: post("/channel/delete?topic=t"), status: 400,
			body: `{"message":"MISSING_ARG_CHANNEL"}`},
		{name: "delete channel invalid channel", req: post("/channel/delete?topic=t&channel=*"), status: 400,
			body: `{"message":"INVALID_ARG_CHANNEL"}`},
		{name: "delete channel unknown", req: post("/channel/delete?topic=t&channel=c"), status: 404,
			body: `{"message":"CHANNEL_NOT_FOUND"}`, headers: v1JSON(),
			propose: &fsm.Command{Op: fsm.OpDeleteChannel, Topic: "t", Channel: "c"}},
		{name: "delete channel", seed: true, req: post("/channel/delete?topic=t1&channel=c1"), status: 200,
			headers: v1Empty(), propose: &fsm.Command{Op: fsm.OpDeleteChannel, Topic: "t1", Channel: "c1"}},

		{name: "tombstone missing topic", req: post("/topic/tombstone?node=b1:4151"), status: 400,
			body: `{"message":"MISSING_ARG_TOPIC"}`},
		{name: "tombstone wildcard refused", seed: true, req: post("/topic/tombstone?topic=*&node=b1:4151"),
			status: 400, body: `{"message":"INVALID_ARG_TOPIC"}`},
		{name: "tombstone missing node", req: post("/topic/tombstone?topic=t1"), status: 400,
			body: `{"message":"MISSING_ARG_NODE"}`},
		{name: "tombstone unknown", req: post("/topic/tombstone?topic=x&node=nowhere"), status: 200,
			headers: v1Empty(), propose: &fsm.Command{Op: fsm.OpTombstone, Topic: "x", Node: "nowhere"}},
		{name: "tombstone invalid topic answered without proposing", req: post("/topic/tombstone?topic=x$&node=nowhere"),
			status: 200, headers: v1Empty()},

		{name: "not found", req: get("/nope"), status: 404, body: `{"message":"NOT_FOUND"}`, headers: v1JSON()},
		{name: "root not found", req: get("/"), status: 404, body: `{"message":"NOT_FOUND"}`},
		{name: "legacy alias gone", req: post("/create_topic?topic=a"), status: 404, body: `{"message":"NOT_FOUND"}`},
		{name: "method not allowed", req: post("/lookup?topic=a"), status: 405,
			body:    `{"message":"METHOD_NOT_ALLOWED"}`,
			headers: map[string]string{"Allow": "GET, OPTIONS", "X-NSQ-Content-Type": nsqV1, "Content-Type": ctJSON}},
		{name: "head not routed", req: request{method: "HEAD", target: "/ping"}, status: 405,
			headers: map[string]string{"Allow": "GET, OPTIONS"}},
		{name: "get on post route", req: get("/topic/create?topic=a"), status: 405,
			headers: map[string]string{"Allow": "OPTIONS, POST"}},
		{name: "options", req: request{method: "OPTIONS", target: "/lookup"}, status: 200,
			headers: map[string]string{"Allow": "GET, OPTIONS", "Content-Length": "0", "X-NSQ-Content-Type": absent}},
		{name: "options both methods", req: request{method: "OPTIONS", target: "/debug/pprof/symbol"}, status: 200,
			headers: map[string]string{"Allow": "GET, OPTIONS, POST"}},
		{name: "options unknown", req: request{method: "OPTIONS", target: "/nope"}, status: 404,
			body: `{"message":"NOT_FOUND"}`},
		{name: "trailing slash", req: get("/lookup/?topic=a"), status: 301,
			headers: map[string]string{"Location": "/lookup?topic=a"}},
		{name: "upper case", req: get("/LOOKUP?topic=a"), status: 301,
			headers: map[string]string{"Location": "/lookup?topic=a"}},
		{name: "upper case post", req: post("/Topic/Create?topic=a"), status: 307,
			headers: map[string]string{"Location": "/topic/create?topic=a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			if tc.seed {
				seed(e.reg)
			}
			before := time.Now()
			resp := e.do(tc.req)
			if resp.status != tc.status {
				t.Fatalf("status %d, want %d (body %q)", resp.status, tc.status, resp.body)
			}
			switch {
			case tc.canon:
				if got, want := canonJSON(t, resp.body, nil), canonJSON(t, tc.body, nil); got != want {
					t.Errorf("body\n got %s\nwant %s", got, want)
				}
			case tc.body != "" || tc.status == 200 && tc.req.method == "POST":
				if resp.body != tc.body {
					t.Errorf("body %q, want %q", resp.body, tc.body)
				}
			}
			checkHeaders(t, resp.header, tc.headers)
			e.cl.mu.Lock()
			defer e.cl.mu.Unlock()
			switch {
			case tc.propose == nil && len(e.cl.proposed) != 0:
				t.Errorf("proposed %+v, want nothing", e.cl.proposed)
			case tc.propose != nil && len(e.cl.proposed) != 1:
				t.Errorf("proposed %+v, want one %+v", e.cl.proposed, *tc.propose)
			case tc.propose != nil:
				got := e.cl.proposed[0]
				if got.Op == fsm.OpTombstone {
					if ts := time.Unix(0, got.Time); ts.Before(before) || ts.After(time.Now()) {
						t.Errorf("tombstone time %v not stamped during the request", ts)
					}
				}
				got.Time = 0
				if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", *tc.propose) {
					t.Errorf("proposed %+v, want %+v", got, *tc.propose)
				}
				if d := e.cl.proposeDead[0]; d <= 0 || d > DefaultConfig().WriteTimeout {
					t.Errorf("Propose context has %v left, want a deadline within WriteTimeout", d)
				}
			}
		})
	}
}

func TestLookupAppliesFilter(t *testing.T) {
	e := newTestEnv(t, func(c *Config) {
		c.InactiveProducerTimeout = time.Minute
		c.TombstoneLifetime = time.Hour
	})
	stale := e.reg.identify(fsm.PeerInfo{RemoteAddress: "a:1", BroadcastAddress: "stale", TCPPort: 1, HTTPPort: 2, Version: "v"},
		time.Now().Add(-2*time.Minute))
	e.reg.register(stale, "t", "")
	fresh := e.reg.identify(fsm.PeerInfo{RemoteAddress: "a:2", BroadcastAddress: "fresh", TCPPort: 1, HTTPPort: 3, Version: "v"},
		time.Now())
	e.reg.register(fresh, "t", "")
	if resp := e.do(post("/topic/tombstone?topic=t&node=fresh:3")); resp.status != 200 {
		t.Fatalf("tombstone: %d %s", resp.status, resp.body)
	}
	// The stale peer is hidden by the inactivity timeout, the fresh one by
	// its tombstone (lifetime one hour): the server passed the real values.
	if resp := e.do(get("/lookup?topic=t")); resp.body != `{"channels":[],"producers":[]}` {
		t.Errorf("/lookup = %s, want no producers", resp.body)
	}
	want := `{"producers":[{"remote_address":"a:2","hostname":"","broadcast_address":"fresh","tcp_port":1,` +
		`"http_port":3,"version":"v","tombstones":[true],"topics":["t"]}]}`
	if resp := e.do(get("/nodes")); resp.body != want {
		t.Errorf("/nodes = %s\nwant %s", resp.body, want)
	}
}

func TestDebugShape(t *testing.T) {
	e := newTestEnv(t)
	p := e.reg.identify(fsm.PeerInfo{RemoteAddress: "127.0.0.1:7", Hostname: "h", BroadcastAddress: "b",
		TCPPort: 1, HTTPPort: 2, Version: "v"}, time.Unix(0, 1234))
	e.reg.register(p, "t", "")
	_ = e.reg.apply(fsm.Command{Op: fsm.OpCreateTopic, Topic: "empty"})
	_ = e.reg.apply(fsm.Command{Op: fsm.OpTombstone, Topic: "t", Node: "b:2", Time: 5678})
	resp := e.do(get("/debug"))
	const prod = `"broadcast_address":"b","hostname":"h","http_port":2,"id":"127.0.0.1:7","last_update":1234,"tcp_port":1,`
	want := `{"client::":[{` + prod + `"tombstoned":false,"tombstoned_at":-6795364578871345152,"version":"v"}],` +
		`"topic:t:":[{` + prod + `"tombstoned":true,"tombstoned_at":5678,"version":"v"}]}`
	if resp.status != 200 || resp.body != want {
		t.Errorf("/debug = %d %s\nwant %s", resp.status, resp.body, want)
	}
	if zeroTimeUnixNano != (time.Time{}).UnixNano() {
		t.Errorf("zeroTimeUnixNano = %d, Go's zero time is %d", zeroTimeUnixNano, (time.Time{}).UnixNano())
	}
}

// brokenRegistry breaks the Registry contract (nil slices, unequal
// tombstones) to show the server still emits nsqlookupd's shapes.
type brokenRegistry struct{}

func (brokenRegistry) LookupStamped(string, fsm.Filter) ([]string, []fsm.PeerInfo, bool, fsm.Stamp) {
	return nil, nil, true, fsm.Stamp{}
}
func (brokenRegistry) Remember(fsm.Stamp, []byte)               {}
func (brokenRegistry) Recall(string, fsm.Filter) ([]byte, bool) { return nil, false }
func (brokenRegistry) Topics() []string                         { return nil }
func (brokenRegistry) Channels(string) []string                 { return nil }
func (brokenRegistry) Nodes(fsm.Filter) []fsm.NodesEntry {
	return []fsm.NodesEntry{{Topics: []string{"a", "b"}, Tombstones: []bool{true}}, {Tombstones: []bool{true}}}
}
func (brokenRegistry) Debug() map[string][]fsm.DebugProducer {
	return map[string][]fsm.DebugProducer{"topic:x:": nil}
}

func TestNeverNull(t *testing.T) {
	srv := newServeEnv(t, newTestServer(t, brokenRegistry{}, newFakeCluster(nil), nil))
	for target, want := range map[string]string{
		"/lookup?topic=x":   `{"channels":[],"producers":[]}`,
		"/topics":           `{"topics":[]}`,
		"/channels?topic=x": `{"channels":[]}`,
		"/debug":            `{}`,
		"/nodes": `{"producers":[{"remote_address":"","hostname":"","broadcast_address":"","tcp_port":0,"http_port":0,` +
			`"version":"","tombstones":[true,false],"topics":["a","b"]},{"remote_address":"","hostname":"",` +
			`"broadcast_address":"","tcp_port":0,"http_port":0,"version":"","tombstones":[],"topics":[]}]}`,
	} {
		if resp := srv.do(get(target)); resp.status != 200 || resp.body != want {
			t.Errorf("%s = %d %s\nwant %s", target, resp.status, resp.body, want)
		}
	}
}

func TestPanicIsInternalError(t *testing.T) {
	e := newTestEnv(t)
	e.reg.panicOn = "Topics"
	resp := e.do(get("/topics"))
	if resp.status != 500 || resp.body != `{"message":"INTERNAL_ERROR"}` {
		t.Fatalf("got %d %s, want 500 INTERNAL_ERROR", resp.status, resp.body)
	}
	checkHeaders(t, resp.header, v1JSON())
	// The server survives.
	if resp := e.do(get("/ping")); resp.status != 200 {
		t.Errorf("/ping after panic: %d", resp.status)
	}
}

func TestProposeErrors(t *testing.T) {
	tests := []struct {
		err    error
		status int
		body   string
	}{
		{wire.ErrNoLeader, 503, `{"message":"NO_LEADER"}`},
		{fmt.Errorf("forward: %w", wire.ErrNotLeader), 503, `{"message":"NO_LEADER"}`},
		{fmt.Errorf("apply: %w", context.DeadlineExceeded), 503, `{"message":"NO_LEADER"}`},
		{wire.ErrQueueFull, 503, `{"message":"NO_LEADER"}`},
		{fmt.Errorf("x: %w", wire.ErrShutdown), 503, `{"message":"SHUTTING_DOWN"}`},
		{fmt.Errorf("x: %w", fsm.ErrChannelNotFound), 404, `{"message":"CHANNEL_NOT_FOUND"}`},
		{errors.New("disk on fire"), 500, `{"message":"INTERNAL_ERROR"}`},
	}
	for _, tc := range tests {
		t.Run(tc.err.Error(), func(t *testing.T) {
			e := newTestEnv(t)
			e.cl.proposeErr = tc.err
			for _, target := range []string{"/topic/create?topic=a", "/topic/delete?topic=a",
				"/channel/create?topic=a&channel=b", "/channel/delete?topic=a&channel=b",
				"/topic/tombstone?topic=a&node=n"} {
				resp := e.do(post(target))
				if resp.status != tc.status || resp.body != tc.body {
					t.Errorf("%s: %d %s, want %d %s", target, resp.status, resp.body, tc.status, tc.body)
				}
				checkHeaders(t, resp.header, v1JSON())
			}
		})
	}
}

func TestConsistencyParam(t *testing.T) {
	reads := []string{"/lookup?topic=t3", "/topics", "/channels?topic=t3", "/nodes", "/debug"}
	tests := []struct {
		name      string
		query     string
		def       wire.Consistency
		wantLevel wire.Consistency
		status    int
	}{
		{"default bounded", "", wire.Bounded, wire.Bounded, 200},
		{"default from config", "", wire.Linearizable, wire.Linearizable, 200},
		{"stale", "consistency=stale", wire.Bounded, wire.Stale, 200},
		{"linearizable", "consistency=linearizable", wire.Stale, wire.Linearizable, 200},
		{"first wins", "consistency=stale&consistency=bogus", wire.Bounded, wire.Stale, 200},
		{"invalid", "consistency=strong", wire.Bounded, "", 400},
		{"case sensitive", "consistency=Stale", wire.Bounded, "", 400},
		{"present but empty", "consistency=", wire.Bounded, "", 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, func(c *Config) { c.DefaultConsistency = tc.def })
			seed(e.reg)
			for _, target := range reads {
				if tc.query != "" {
					sep := "?"
					if strings.Contains(target, "?") {
						sep = "&"
					}
					target += sep + tc.query
				}
				e.cl.mu.Lock()
				e.cl.barrierLevels = nil
				e.cl.mu.Unlock()
				resp := e.do(get(target))
				if resp.status != tc.status {
					t.Errorf("%s: status %d (%s), want %d", target, resp.status, resp.body, tc.status)
				}
				e.cl.mu.Lock()
				levels := e.cl.barrierLevels
				e.cl.mu.Unlock()
				if tc.status == 400 {
					if resp.body != `{"message":"INVALID_ARG_CONSISTENCY"}` {
						t.Errorf("%s: body %s", target, resp.body)
					}
					if len(levels) != 0 {
						t.Errorf("%s: barrier called with %v for an invalid request", target, levels)
					}
					continue
				}
				if len(levels) != 1 || levels[0] != tc.wantLevel {
					t.Errorf("%s: barrier levels %v, want [%s]", target, levels, tc.wantLevel)
				}
			}
		})
	}
}

// nsqlookupd's own parameter errors win over the consistency check.
func TestConsistencyCheckedAfterNSQParams(t *testing.T) {
	e := newTestEnv(t)
	for target, want := range map[string]string{
		"/lookup?consistency=bogus":       `{"message":"MISSING_ARG_TOPIC"}`,
		"/channels?consistency=bogus":     `{"message":"MISSING_ARG_TOPIC"}`,
		"/lookup?topic=%zz&consistency=x": `{"message":"INVALID_REQUEST"}`,
		"/topics?%zz&consistency=bogus":   `{"message":"INVALID_ARG_CONSISTENCY"}`,
	} {
		if resp := e.do(get(target)); resp.status != 400 || resp.body != want {
			t.Errorf("%s = %d %s, want 400 %s", target, resp.status, resp.body, want)
		}
	}
}

func TestReadBarrierErrors(t *testing.T) {
	tests := []struct {
		err    error
		status int
		body   string
	}{
		{wire.ErrLeaderUnreachable, 503, `{"message":"LEADER_UNREACHABLE"}`},
		{fmt.Errorf("read index: %w", wire.ErrNoLeader), 503, `{"message":"LEADER_UNREACHABLE"}`},
		{fmt.Errorf("wait: %w", context.DeadlineExceeded), 503, `{"message":"LEADER_UNREACHABLE"}`},
		{wire.ErrShutdown, 503, `{"message":"SHUTTING_DOWN"}`},
		{errors.New("boom"), 500, `{"message":"INTERNAL_ERROR"}`},
	}
	for _, tc := range tests {
		t.Run(tc.err.Error(), func(t *testing.T) {
			e := newTestEnv(t)
			seed(e.reg)
			e.cl.barrierErr = tc.err
			for _, target := range []string{"/lookup?topic=t1", "/topics", "/channels?topic=t1", "/nodes", "/debug"} {
				resp := e.do(get(target))
				if resp.status != tc.status || resp.body != tc.body {
					t.Errorf("%s: %d %s, want %d %s", target, resp.status, resp.body, tc.status, tc.body)
				}
				checkHeaders(t, resp.header, map[string]string{"X-NSQ-Content-Type": nsqV1, "X-Raftlookupd-Leader": "n1"})
			}
			if n := e.reg.callCount(); n != 0 {
				t.Errorf("registry read %d times after a failed barrier", n)
			}
			// Endpoints that are not reads never wait for a barrier.
			for _, rq := range []request{get("/ping"), get("/info"), post("/topic/create?topic=a")} {
				if resp := e.do(rq); resp.status != 200 {
					t.Errorf("%s %s: %d, want 200", rq.method, rq.target, resp.status)
				}
			}
		})
	}
}

func TestReadHeaders(t *testing.T) {
	tests := []struct {
		rs      wire.ReadState
		advance uint64
		want    map[string]string
	}{
		{wire.ReadState{LeaderID: "n2", AppliedIndex: 41, LastContact: 1500 * time.Millisecond}, 1,
			map[string]string{"X-Raftlookupd-Leader": "n2", "X-Raftlookupd-Applied-Index": "42", "X-Raftlookupd-Last-Contact": "1500"}},
		{wire.ReadState{LeaderID: "n1", AppliedIndex: 7}, 0,
			map[string]string{"X-Raftlookupd-Leader": "n1", "X-Raftlookupd-Applied-Index": "7", "X-Raftlookupd-Last-Contact": "0"}},
		{wire.ReadState{AppliedIndex: 0, LastContact: -1}, 0,
			map[string]string{"X-Raftlookupd-Leader": "", "X-Raftlookupd-Applied-Index": "0", "X-Raftlookupd-Last-Contact": "-1"}},
	}
	for i, tc := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			e := newTestEnv(t)
			seed(e.reg)
			e.cl.readState = tc.rs
			e.cl.barrierAdvance = tc.advance
			for _, target := range []string{"/lookup?topic=t1", "/topics", "/channels?topic=t1", "/nodes", "/debug"} {
				e.cl.mu.Lock()
				e.cl.readState = tc.rs
				e.cl.mu.Unlock()
				resp := e.do(get(target))
				if resp.status != 200 {
					t.Fatalf("%s: %d", target, resp.status)
				}
				checkHeaders(t, resp.header, tc.want)
			}
			// Refused reads carry them too: they tell the client the leader.
			for _, target := range []string{"/lookup", "/lookup?topic=nope", "/channels?topic=%zz", "/topics?consistency=x"} {
				resp := e.do(get(target))
				if resp.header.Get("X-Raftlookupd-Leader") != tc.rs.LeaderID || resp.header["X-Raftlookupd-Applied-Index"] == nil {
					t.Errorf("%s (%d): read headers missing: %v", target, resp.status, resp.header)
				}
			}
			// Non-reads do not.
			if resp := e.do(get("/info")); resp.header["X-Raftlookupd-Applied-Index"] != nil {
				t.Errorf("/info carries read headers")
			}
		})
	}
}
