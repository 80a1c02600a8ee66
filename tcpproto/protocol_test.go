package tcpproto

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/raftlookupd/raftlookupd/fsm"
	"github.com/raftlookupd/raftlookupd/wire"
)

// identReply is the exact IDENTIFY reply of a server from testConfig.
func identReply(s *Server) string {
	return fmt.Sprintf(`{"broadcast_address":"lookupd.example","hostname":"host-a","http_port":4161,"tcp_port":%d,"version":"1.3.0"}`,
		s.Addr().(*net.TCPAddr).Port)
}

func cat(parts ...any) []byte {
	var b []byte
	for _, p := range parts {
		switch p := p.(type) {
		case string:
			b = append(b, p...)
		case []byte:
			b = append(b, p...)
		default:
			panic(fmt.Sprintf("cat: %T", p))
		}
	}
	return b
}

// TestErrorCatalogue sends every error of docs/COMPATIBILITY.md#tcp-errors (and the
// deliberate departures) and checks the exact frames, then that the server
// closed the connection.
func TestErrorCatalogue(t *testing.T) {
	const ident = "{ident}" // replaced by the server's IDENTIFY reply
	withIdent := func(rest ...any) []byte {
		return cat(append([]any{magicV1, identifyFrame(nsqdBody)}, rest...)...)
	}
	tests := []struct {
		name      string
		script    []byte
		halfClose bool // end the script with EOF (the server must see it)
		want      []string
	}{
		{"bad magic V2", cat("  V2"), false, []string{"E_BAD_PROTOCOL"}},
		{"bad magic HTTP", cat("GET / HTTP/1.1\r\n\r\n"), false, []string{"E_BAD_PROTOCOL"}},
		{"short magic", cat("  V"), true, nil},
		{"no command", cat(magicV1), true, nil},
		{"partial last line not executed", cat(magicV1, "PING"), true, nil},
		{"lower-case command", cat(magicV1, "ping\n"), false, []string{"E_INVALID invalid command ping"}},
		{"unknown command", cat(magicV1, "INVALID_COMMAND\n"), false, []string{"E_INVALID invalid command INVALID_COMMAND"}},
		{"empty line", cat(magicV1, "\n"), false, []string{"E_INVALID invalid command "}},
		{"tab is not a separator", cat(magicV1, "PING\tx\n"), false, []string{"E_INVALID invalid command PING\tx"}},
		{"error stops pipeline", cat(magicV1, "PING\nFOO bar\nPING\n"), false, []string{"OK", "E_INVALID invalid command FOO"}},
		{"identify again", withIdent("IDENTIFY\n"), false, []string{ident, "E_INVALID cannot IDENTIFY again"}},
		{"body size short", cat(magicV1, "IDENTIFY\n\x00\x00"), true, []string{"E_BAD_BODY IDENTIFY failed to read body size"}},
		{"body size missing", cat(magicV1, "IDENTIFY\n"), true, []string{"E_BAD_BODY IDENTIFY failed to read body size"}},
		{"body short", cat(magicV1, identifyFrameN(10), "abc"), true, []string{"E_BAD_BODY IDENTIFY failed to read body"}},
		{"body empty", cat(magicV1, identifyFrame("")), false, []string{"E_BAD_BODY IDENTIFY failed to decode JSON body"}},
		{"body not json", cat(magicV1, identifyFrame("not json")), false, []string{"E_BAD_BODY IDENTIFY failed to decode JSON body"}},
		{"string port", cat(magicV1, identifyFrame(`{"broadcast_address":"a","tcp_port":"1","http_port":2,"version":"v"}`)), false, []string{"E_BAD_BODY IDENTIFY failed to decode JSON body"}},
		{"fractional port", cat(magicV1, identifyFrame(`{"broadcast_address":"a","tcp_port":1.5,"http_port":2,"version":"v"}`)), false, []string{"E_BAD_BODY IDENTIFY failed to decode JSON body"}},
		{"remote_address wrong type", cat(magicV1, identifyFrame(`{"remote_address":1,"broadcast_address":"a","tcp_port":1,"http_port":2,"version":"v"}`)), false, []string{"E_BAD_BODY IDENTIFY failed to decode JSON body"}},
		{"null body", cat(magicV1, identifyFrame("null")), false, []string{"E_BAD_BODY IDENTIFY missing fields"}},
		{"empty object", cat(magicV1, identifyFrame("{}")), false, []string{"E_BAD_BODY IDENTIFY missing fields"}},
		{"no broadcast_address", cat(magicV1, identifyFrame(`{"tcp_port":1,"http_port":2,"version":"v"}`)), false, []string{"E_BAD_BODY IDENTIFY missing fields"}},
		{"no tcp_port", cat(magicV1, identifyFrame(`{"broadcast_address":"a","http_port":2,"version":"v"}`)), false, []string{"E_BAD_BODY IDENTIFY missing fields"}},
		{"no http_port", cat(magicV1, identifyFrame(`{"broadcast_address":"a","tcp_port":1,"version":"v"}`)), false, []string{"E_BAD_BODY IDENTIFY missing fields"}},
		{"no version", cat(magicV1, identifyFrame(`{"broadcast_address":"a","tcp_port":1,"http_port":2}`)), false, []string{"E_BAD_BODY IDENTIFY missing fields"}},
		{"register before identify", cat(magicV1, "REGISTER t\n"), false, []string{"E_INVALID client must IDENTIFY"}},
		{"unregister before identify", cat(magicV1, "UNREGISTER t c\n"), false, []string{"E_INVALID client must IDENTIFY"}},
		{"register no params", withIdent("REGISTER\n"), false, []string{ident, "E_INVALID REGISTER insufficient number of params"}},
		{"register trailing space", withIdent("REGISTER \n"), false, []string{ident, "E_INVALID REGISTER insufficient number of params"}},
		{"unregister no params", withIdent("UNREGISTER\n"), false, []string{ident, "E_INVALID UNREGISTER insufficient number of params"}},
		{"register bad topic", withIdent("REGISTER bad$\n"), false, []string{ident, "E_BAD_TOPIC REGISTER topic name 'bad$' is not valid"}},
		{"register empty topic", withIdent("REGISTER  t\n"), false, []string{ident, "E_BAD_TOPIC REGISTER topic name '' is not valid"}},
		{"register 65-byte topic", withIdent("REGISTER " + strings.Repeat("a", 65) + "\n"), false, []string{ident, "E_BAD_TOPIC REGISTER topic name '" + strings.Repeat("a", 65) + "' is not valid"}},
		{"register bad channel", withIdent("REGISTER t c$\n"), false, []string{ident, "E_BAD_CHANNEL REGISTER channel name 'c$' is not valid"}},
		{"unregister bad topic", withIdent("UNREGISTER #ephemeral\n"), false, []string{ident, "E_BAD_TOPIC UNREGISTER topic name '#ephemeral' is not valid"}},
		{"unregister bad channel", withIdent("UNREGISTER t c:d\n"), false, []string{ident, "E_BAD_CHANNEL UNREGISTER channel name 'c:d' is not valid"}},
		{"raw bytes quoted", withIdent("REGISTER \xff\xfe\n"), false, []string{ident, "E_BAD_TOPIC REGISTER topic name '\xff\xfe' is not valid"}},

		// Deliberate departures (docs/COMPATIBILITY.md#diff-tcp-limits).
		{"negative body size", cat(magicV1, identifyFrameN(-1)), false, []string{"E_BAD_BODY IDENTIFY invalid body size -1"}},
		{"2 GiB body size", cat(magicV1, identifyFrameN(1<<31-1)), false, []string{"E_BAD_BODY IDENTIFY invalid body size 2147483647"}},
		{"body over limit", cat(magicV1, identifyFrameN(65537)), false, []string{"E_BAD_BODY IDENTIFY invalid body size 65537"}},
		{"line too long", cat(magicV1, strings.Repeat("P", 4096)), false, []string{"E_INVALID line too long (max 4096 bytes)"}},
	}
	s, reg := startServer(t, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, s.Addr())
			c.write(tc.script)
			if tc.halfClose {
				if err := c.nc.CloseWrite(); err != nil {
					t.Fatal(err)
				}
			}
			for _, want := range tc.want {
				if want == ident {
					want = identReply(s)
				}
				c.expect(want)
			}
			c.expectClosed()
		})
	}
	// Every identified connection above ended, so every session closed,
	// once each.
	reg.waitFor(t, "every session closed", func(calls []call) bool {
		return countOp(calls, "close") == countOp(calls, "open")
	})
	for _, o := range reg.ops("open") {
		n := 0
		for _, c := range reg.ops("close") {
			if c.ID == o.ID {
				n++
			}
		}
		if n != 1 {
			t.Errorf("session %v closed %d times", o.ID, n)
		}
	}
}

// TestPipelining sends a whole nsqd connect sequence in one write and checks
// the replies and the Registry calls, in order.
func TestPipelining(t *testing.T) {
	s, reg := startServer(t, nil)
	c := dial(t, s.Addr())
	c.write(cat(magicV1, identifyFrame(nsqdBody),
		"REGISTER alpha\n",
		"REGISTER delta d1\r\n",
		"  PING  \r\n",
		"REGISTER delta d1 extra params\n",
		"REGISTER t  c\n", // empty channel parameter: topic only
		"UNREGISTER delta d1\n",
		"UNREGISTER alpha\n",
		"UNREGISTER never-registered\n",
		"PING with params\n",
		"PING\u00a0\n", // TrimSpace also trims Unicode spaces, as nsqlookupd's does
	))
	c.expect(identReply(s))
	for range 10 {
		c.expect("OK")
	}
	if err := c.nc.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	c.expectClosed()
	reg.waitFor(t, "close", func(calls []call) bool { return countOp(calls, "close") == 1 })

	id := fsm.SessionID{Owner: "n1", Incarnation: 7, Seq: 1}
	got := reg.snapshot()
	open := got[0]
	if open.Op != "open" || open.ID != id {
		t.Fatalf("first call %+v", open)
	}
	wantPeer := fsm.PeerInfo{
		RemoteAddress:    c.nc.LocalAddr().String(),
		Hostname:         "nsqd-host",
		BroadcastAddress: "nsqd.example",
		TCPPort:          4150,
		HTTPPort:         4151,
		Version:          "1.3.0",
	}
	if open.Peer != wantPeer {
		t.Errorf("peer = %+v, want %+v", open.Peer, wantPeer)
	}
	want := []call{
		{Op: "register", ID: id, Topic: "alpha"},
		{Op: "register", ID: id, Topic: "delta", Channel: "d1"},
		{Op: "ping", ID: id},
		{Op: "register", ID: id, Topic: "delta", Channel: "d1"},
		{Op: "register", ID: id, Topic: "t"},
		{Op: "unregister", ID: id, Topic: "delta", Channel: "d1"},
		{Op: "unregister", ID: id, Topic: "alpha"},
		{Op: "unregister", ID: id, Topic: "never-registered"},
		{Op: "ping", ID: id},
		{Op: "ping", ID: id},
		{Op: "close", ID: id},
	}
	if !slices.Equal(got[1:], want) {
		t.Errorf("calls:\n got %+v\nwant %+v", got[1:], want)
	}
}

func TestPingBeforeIdentifyTouchesNothing(t *testing.T) {
	s, reg := startServer(t, nil)
	c := dial(t, s.Addr())
	c.writeString(magicV1 + "PING\nPING\n")
	c.expect("OK")
	c.expect("OK")
	c.nc.CloseWrite()
	c.expectClosed()
	// A later identified connection is the first thing the Registry sees.
	identified(t, s.Addr())
	reg.waitFor(t, "open", func(calls []call) bool { return len(calls) == 1 })
	if got := reg.snapshot(); got[0].Op != "open" {
		t.Errorf("calls %+v", got)
	}
}

func TestIdentifyAccepts(t *testing.T) {
	tests := []struct{ name, body string }{
		{"no hostname", `{"broadcast_address":"a","tcp_port":1,"http_port":2,"version":"v"}`},
		{"upper-case keys", `{"BROADCAST_ADDRESS":"a","TCP_PORT":1,"Http_Port":2,"VERSION":"v"}`},
		{"unknown keys", `{"broadcast_address":"a","tcp_port":1,"http_port":2,"version":"v","topology_zone":"z","x":[1,{}]}`},
		{"negative port", `{"broadcast_address":"a","tcp_port":-1,"http_port":2,"version":"v"}`},
		{"remote_address ignored", `{"remote_address":"1.2.3.4:5","broadcast_address":"a","tcp_port":1,"http_port":2,"version":"v"}`},
		{"whitespace", " \n{\"broadcast_address\":\"a\",\"tcp_port\":1,\"http_port\":2,\"version\":\"v\"}\t"},
	}
	s, reg := startServer(t, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, s.Addr())
			// Parameters on the IDENTIFY line are ignored.
			c.write(cat(magicV1, "IDENTIFY ignored params\n", identifyFrame(tc.body)[len("IDENTIFY\n"):]))
			c.expect(identReply(s))
			c.writeString("PING\n")
			c.expect("OK")
			opens := reg.ops("open")
			last := opens[len(opens)-1]
			if last.Peer.RemoteAddress != c.nc.LocalAddr().String() {
				t.Errorf("remote address %q, want the socket's %q", last.Peer.RemoteAddress, c.nc.LocalAddr())
			}
		})
	}
}

// TestIdentifyOverLimits: fields longer than the log accepts (fsm's limits)
// end the connection with E_BAD_BODY before anything reaches the Registry;
// fields at the limit are accepted. nsqlookupd has no limits here.
func TestIdentifyOverLimits(t *testing.T) {
	body := func(field, value string) string {
		m := map[string]any{"broadcast_address": "a", "tcp_port": 1, "http_port": 2, "version": "v", "hostname": "h"}
		m[field] = value
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	over := []struct{ field, want string }{
		{"broadcast_address", fmt.Sprintf("E_BAD_BODY IDENTIFY broadcast_address must be at most %d bytes, got %d", fsm.MaxAddressLen, fsm.MaxAddressLen+1)},
		{"hostname", fmt.Sprintf("E_BAD_BODY IDENTIFY hostname must be at most %d bytes, got %d", fsm.MaxAddressLen, fsm.MaxAddressLen+1)},
		{"version", fmt.Sprintf("E_BAD_BODY IDENTIFY version must be at most %d bytes, got %d", fsm.MaxVersionLen, fsm.MaxVersionLen+1)},
	}
	for _, tc := range over {
		t.Run(tc.field, func(t *testing.T) {
			s, reg := startServer(t, nil)
			limit := fsm.MaxAddressLen
			if tc.field == "version" {
				limit = fsm.MaxVersionLen
			}
			c := dial(t, s.Addr())
			c.write(cat(magicV1, identifyFrame(body(tc.field, strings.Repeat("x", limit+1)))))
			c.expect(tc.want)
			c.expectClosed()
			if n := len(reg.ops("open")); n != 0 {
				t.Fatalf("%d sessions opened, want none", n)
			}

			c = dial(t, s.Addr())
			c.write(cat(magicV1, identifyFrame(body(tc.field, strings.Repeat("x", limit)))))
			c.expect(identReply(s))
			if n := len(reg.ops("open")); n != 1 {
				t.Fatalf("%d sessions opened, want one", n)
			}
		})
	}
}

// The reply carries the configured HTTP port, and a listener given in the
// config is the one served.
func TestIdentifyReplyUsesConfiguredPortAndListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := startServer(t, func(c *Config) { c.HTTPPort = 14161; c.Listener = ln })
	if s.Addr() != ln.Addr() {
		t.Fatalf("serving %v, want the given listener %v", s.Addr(), ln.Addr())
	}
	c := identifiedReply(t, s)
	want := fmt.Sprintf(`{"broadcast_address":"lookupd.example","hostname":"host-a","http_port":14161,"tcp_port":%d,"version":"1.3.0"}`,
		s.Addr().(*net.TCPAddr).Port)
	if c != want {
		t.Errorf("reply\n got %s\nwant %s", c, want)
	}
}

func identifiedReply(t *testing.T, s *Server) string {
	c := dial(t, s.Addr())
	c.write(cat(magicV1, identifyFrame(nsqdBody)))
	got, err := c.readFrame()
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestIdentifyReplyEscapesLikeAMap pins the escaping of odd configuration
// strings: nsqlookupd marshals a map, we marshal a struct, both with
// encoding/json's HTML escaping.
func TestIdentifyReplyEscapesLikeAMap(t *testing.T) {
	s, _ := startServer(t, func(c *Config) { c.Hostname = `h<"&>` })
	got := identifiedReply(t, s)
	want := fmt.Sprintf(`{"broadcast_address":"lookupd.example","hostname":"h\u003c\"\u0026\u003e","http_port":4161,"tcp_port":%d,"version":"1.3.0"}`,
		s.Addr().(*net.TCPAddr).Port)
	if got != want {
		t.Errorf("reply\n got %s\nwant %s", got, want)
	}
}

func TestRegistryErrors(t *testing.T) {
	boom := errors.New("lease expired")

	t.Run("open", func(t *testing.T) {
		s, reg := startServer(t, nil)
		reg.setErrs(boom, nil, nil)
		c := dial(t, s.Addr())
		c.write(cat(magicV1, identifyFrame(nsqdBody)))
		c.expect("E_UNAVAILABLE lease expired")
		c.expectClosed()
		if calls := reg.snapshot(); len(calls) != 0 {
			t.Errorf("a failed open must leave nothing to close: %+v", calls)
		}
	})
	for _, cmd := range []string{"REGISTER t c", "UNREGISTER t"} {
		t.Run(cmd, func(t *testing.T) {
			s, reg := startServer(t, nil)
			c := identified(t, s.Addr())
			reg.setErrs(nil, boom, boom)
			c.writeString(cmd + "\n")
			c.expect("E_UNAVAILABLE lease expired")
			c.expectClosed()
			reg.waitFor(t, "close", func(calls []call) bool { return countOp(calls, "close") == 1 })
		})
	}
	// A cluster-wide cap is E_INVALID (nsqd drops the connection), not an
	// outage.
	t.Run("cap", func(t *testing.T) {
		s, reg := startServer(t, nil)
		reg.setErrs(fmt.Errorf("%w: the cluster holds 9 sessions, its cap (-max-sessions 9)", wire.ErrLimit), nil, nil)
		c := dial(t, s.Addr())
		c.write(cat(magicV1, identifyFrame(nsqdBody)))
		c.expect("E_INVALID limit reached: the cluster holds 9 sessions, its cap (-max-sessions 9)")
		c.expectClosed()
	})
	// A session the node no longer has (its batch was refused, its lease
	// expired) ends at the next PING, so an idle nsqd reconnects.
	t.Run("PING", func(t *testing.T) {
		s, reg := startServer(t, nil)
		c := identified(t, s.Addr())
		reg.mu.Lock()
		reg.pingErr = errors.New("session closed")
		reg.mu.Unlock()
		c.writeString("PING\n")
		c.expect("E_UNAVAILABLE session closed")
		c.expectClosed()
		reg.waitFor(t, "close", func(calls []call) bool { return countOp(calls, "close") == 1 })
	})
}
