package httpapi

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nsqio/nsq/nsqlookupd"
	"github.com/raftlookupd/raftlookupd/fsm"
)

// TestDifferentialNSQLookupd sends the same requests, in the same order, to a
// real nsqlookupd 1.3.0 running in-process and to this server backed by the
// nsqlookupd-like fake registry, and compares status, the headers clients
// look at, and bodies (lists sorted, timestamps masked).
func TestDifferentialNSQLookupd(t *testing.T) {
	ref := startNSQLookupd(t)
	ours := newTestEnv(t)

	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	refClient := newClient(tr)

	compare := func(t *testing.T, rq request) {
		t.Helper()
		want := doRequest(t, refClient, "http://"+ref.RealHTTPAddr().String(), rq)
		got := ours.do(rq)
		where := rq.method + " " + rq.target
		if got.status != want.status {
			t.Errorf("%s: status %d, nsqlookupd %d (ours %q, theirs %q)", where, got.status, want.status, got.body, want.body)
			return
		}
		for _, h := range []string{"X-NSQ-Content-Type", "Content-Type", "Allow", "Location", "Content-Length"} {
			if g, w := got.header.Values(h), want.header.Values(h); strings.Join(g, "\n") != strings.Join(w, "\n") {
				t.Errorf("%s: header %s = %q, nsqlookupd %q", where, h, g, w)
			}
		}
		if strings.HasPrefix(want.header.Get("Content-Type"), "application/json") && want.body != "" {
			g, w := canonJSON(t, got.body, timestamps), canonJSON(t, want.body, timestamps)
			if g != w {
				t.Errorf("%s: body\n ours %s\n nsq  %s", where, g, w)
			}
			return
		}
		if got.body != want.body {
			t.Errorf("%s: body %q, nsqlookupd %q", where, got.body, want.body)
		}
	}
	run := func(name string, rqs ...request) {
		t.Run(name, func(t *testing.T) {
			for _, rq := range rqs {
				compare(t, rq)
			}
		})
	}
	long := strings.Repeat("x", 64)
	form := func(method, target string) request {
		return request{method: method, target: target, body: "topic=f&channel=g&node=n",
			header: []string{"Content-Type: application/x-www-form-urlencoded"}}
	}

	run("empty",
		get("/ping"), get("/info"), get("/topics"), get("/nodes"), get("/debug"),
		get("/lookup"), get("/lookup?topic=x"), get("/lookup?topic=*"), get("/channels"),
		get("/channels?topic=x"), get("/channels?topic=*"))
	run("routing",
		get("/"), get("/nope"), get("/create_topic?topic=a"), post("/delete_topic?topic=a"),
		post("/lookup?topic=x"), request{method: "HEAD", target: "/ping"}, request{method: "HEAD", target: "/lookup"},
		request{method: "PUT", target: "/topic/create?topic=a"}, request{method: "DELETE", target: "/nodes"},
		get("/topic/create?topic=a"), get("/topic/tombstone"),
		request{method: "OPTIONS", target: "/lookup"}, request{method: "OPTIONS", target: "/topic/create"},
		request{method: "OPTIONS", target: "/debug/pprof/symbol"}, request{method: "OPTIONS", target: "/nope"},
		request{method: "OPTIONS", target: "*"},
		get("/lookup/?topic=x"), get("/LOOKUP?topic=x"), get("/Lookup/?topic=x&a=b"), get("/topics/"),
		get("/./topics"), get("/debug/pprof/"), get("/PING"),
		post("/topic/create/?topic=a"), post("/TOPIC/CREATE?topic=a"), post("/Topic/Tombstone?topic=a&node=b"),
		// /debug/pprof/cmdline is deliberately absent: it would hand out
		// -admin-token (TestAdminChangesNeedTokenOrLoopback pins the 404).
		get("/debug/pprof/symbol"), get("/debug/pprof/nope"))
	run("bad parameters",
		get("/lookup?topic=%zz"), get("/lookup?topic=a;b"), get("/lookup?%"), get("/channels?topic=%zz"),
		get("/topics?%zz"), get("/nodes?topic=%zz"), get("/debug?;"), get("/info?%zz"),
		get("/lookup?Topic=x"), get("/lookup?topic"), get("/channels?topic="),
		get("/lookup?topic=x", "Accept: application/vnd.nsq; version=1.0", "Authorization: Bearer secret"),
		form("GET", "/lookup"), form("GET", "/channels"),
		post("/topic/create"), post("/topic/create?topic=%zz"), post("/topic/create?topic="),
		post("/topic/create?topic=bad$"), post("/topic/create?topic="+long+"x"), post("/topic/create?topic=%23ephemeral"),
		post("/topic/create?topic=a+b"), post("/topic/create?topic=*"), form("POST", "/topic/create"),
		post("/topic/delete"), post("/topic/delete?topic=%zz"), form("POST", "/topic/delete"),
		post("/channel/create"), post("/channel/create?channel=c"), post("/channel/create?topic=t$&channel=c"),
		post("/channel/create?topic=t"), post("/channel/create?topic=t&channel=c$"),
		post("/channel/create?topic=t&channel="), post("/channel/create?topic=t&channel=%zz"),
		form("POST", "/channel/create"),
		post("/channel/delete"), post("/channel/delete?topic=t$"), post("/channel/delete?topic=t"),
		post("/channel/delete?topic=t&channel=c$"), form("POST", "/channel/delete"),
		post("/topic/tombstone"), post("/topic/tombstone?node=n"), post("/topic/tombstone?topic=t"),
		post("/topic/tombstone?topic=%zz&node=n"), form("POST", "/topic/tombstone"))
	run("http registrations",
		post("/topic/create?topic="+long), post("/topic/create?topic=t1"), post("/topic/create?topic=t1"),
		post("/topic/create?topic=e%23ephemeral&topic=ignored$"),
		post("/channel/create?topic=t1&channel=c1"), post("/channel/create?topic=t2&channel=c2%23ephemeral"),
		post("/channel/create?topic=t2&channel=c3"),
		get("/topics"), get("/channels?topic=t1"), get("/channels?topic=t2"), get("/channels?topic=*"),
		get("/lookup?topic=t1"), get("/lookup?topic=t2"), get("/lookup?topic=*"), get("/lookup?topic=t2&topic=t1"),
		get("/lookup?topic=t1&consistency=stale"), get("/nodes"), get("/debug"),
		post("/channel/delete?topic=t2&channel=nope"), post("/channel/delete?topic=nope&channel=c3"),
		post("/channel/delete?topic=t2&channel=c3"), post("/channel/delete?topic=t2&channel=c3"),
		get("/channels?topic=t2"),
		post("/topic/delete?topic=nope"), post("/topic/delete?topic=bad$"), post("/topic/delete?topic=t2"),
		get("/topics"), get("/channels?topic=t2"), get("/lookup?topic=t2"),
		post("/topic/tombstone?topic=nope&node=nowhere"), post("/topic/tombstone?topic=t1&node=bad$"))

	// A producer: IDENTIFY + REGISTER over nsqlookupd's TCP port, and the
	// same peer (same remote address) entered into our fake registry.
	conn := nsqIdentify(t, ref.RealTCPAddr().String())
	peer := ours.reg.identify(fsm.PeerInfo{
		RemoteAddress: conn.LocalAddr().String(), Hostname: "ip.address", BroadcastAddress: "ip.address",
		TCPPort: 5000, HTTPPort: 5555, Version: "fake-version",
	}, time.Now())
	for _, reg := range [][2]string{{"t1", "c1"}, {"t3", ""}, {"t4", "c4"}} {
		nsqRegister(t, conn, reg[0], reg[1])
		ours.reg.register(peer, reg[0], reg[1])
	}
	run("producers",
		get("/lookup?topic=t1"), get("/lookup?topic=t3"), get("/lookup?topic=t4"), get("/lookup?topic=*"),
		get("/topics"), get("/channels?topic=t1"), get("/channels?topic=t4"), get("/nodes"), get("/debug"))
	run("tombstone",
		post("/topic/tombstone?topic=t1&node=ip.address:5000"), get("/lookup?topic=t1"),
		post("/topic/tombstone?topic=t1&node=ip.address:5555"), get("/lookup?topic=t1"), get("/lookup?topic=t3"),
		get("/nodes"), get("/debug"))
	run("delete with producers",
		post("/channel/delete?topic=t4&channel=c4"), post("/topic/delete?topic=t3"),
		get("/lookup?topic=t3"), get("/lookup?topic=t4"), get("/nodes"), get("/debug"), get("/topics"))
}

// timestamps masks values that differ between two servers by nature.
func timestamps(key, val string) bool {
	switch key {
	case "last_update":
		return true
	case "tombstoned_at":
		return val != "-6795364578871345152"
	}
	return false
}

// discardLogger satisfies nsqlookupd's Logger.
func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }

func startNSQLookupd(t *testing.T) *nsqlookupd.NSQLookupd {
	t.Helper()
	opts := nsqlookupd.NewOptions()
	opts.TCPAddress = "127.0.0.1:0"
	opts.HTTPAddress = "127.0.0.1:0"
	opts.Logger = discardLogger()
	l, err := nsqlookupd.New(opts)
	if err != nil {
		t.Fatalf("nsqlookupd.New: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- l.Main() }()
	t.Cleanup(func() {
		l.Exit()
		if err := <-done; err != nil {
			t.Errorf("nsqlookupd Main: %v", err)
		}
	})
	return l
}

// nsqConn is a TCP V1 client connection to nsqlookupd.
type nsqConn struct {
	net.Conn
	r *bufio.Reader
}

func nsqIdentify(t *testing.T, addr string) *nsqConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial nsqlookupd: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	conn := &nsqConn{Conn: c, r: bufio.NewReader(c)}
	body, _ := json.Marshal(map[string]any{"broadcast_address": "ip.address", "hostname": "ip.address",
		"tcp_port": 5000, "http_port": 5555, "version": "fake-version"})
	msg := append([]byte("  V1IDENTIFY\n"), binary.BigEndian.AppendUint32(nil, uint32(len(body)))...)
	if _, err := c.Write(append(msg, body...)); err != nil {
		t.Fatalf("IDENTIFY: %v", err)
	}
	if resp := conn.read(t); !strings.HasPrefix(resp, "{") {
		t.Fatalf("IDENTIFY answered %q", resp)
	}
	return conn
}

func nsqRegister(t *testing.T, c *nsqConn, topic, channel string) {
	t.Helper()
	line := "REGISTER " + topic
	if channel != "" {
		line += " " + channel
	}
	if _, err := c.Write([]byte(line + "\n")); err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	if resp := c.read(t); resp != "OK" {
		t.Fatalf("%s answered %q", line, resp)
	}
}

func (c *nsqConn) read(t *testing.T) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(c.r, size[:]); err != nil {
		t.Fatalf("read frame size: %v", err)
	}
	b := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c.r, b); err != nil {
		t.Fatalf("read frame: %v", err)
	}
	return string(b)
}
