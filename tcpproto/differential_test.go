package tcpproto

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nsqio/nsq/nsqlookupd"
)

// startNSQLookupd runs the real nsqlookupd 1.3.0 in-process on :0 ports.
func startNSQLookupd(t *testing.T, broadcast string) *nsqlookupd.NSQLookupd {
	t.Helper()
	opts := nsqlookupd.NewOptions()
	opts.TCPAddress = "127.0.0.1:0"
	opts.HTTPAddress = "127.0.0.1:0"
	opts.BroadcastAddress = broadcast
	opts.Logger = log.New(io.Discard, "", 0)
	l, err := nsqlookupd.New(opts)
	if err != nil {
		t.Fatalf("nsqlookupd.New: %v", err)
	}
	mainDone := make(chan error, 1)
	go func() { mainDone <- l.Main() }()
	t.Cleanup(func() {
		l.Exit()
		select {
		case <-mainDone:
		case <-time.After(testDeadline):
			t.Error("nsqlookupd Main did not return after Exit")
		}
	})
	return l
}

// exchange writes script in one write, half-closes (so a script that does
// not end in an error ends in EOF), and returns every frame the server sent
// before closing, with any bytes that do not form a whole frame.
func exchange(t *testing.T, addr string, script []byte) (frames []string, trailing []byte) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, testDeadline)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(testDeadline))
	if _, err := nc.Write(script); err != nil {
		t.Fatalf("write: %v", err)
	}
	// The server may already have hung up (bad magic); its frames are
	// still readable.
	_ = nc.(*net.TCPConn).CloseWrite()

	var all bytes.Buffer
	_, err = io.Copy(&all, nc)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("server did not close the connection; got %q", all.Bytes())
	}
	// Any other error is a reset after the server closed with unread input.
	b := all.Bytes()
	for len(b) >= 4 {
		n := int(binary.BigEndian.Uint32(b))
		if len(b)-4 < n {
			break
		}
		frames = append(frames, string(b[4:4+n]))
		b = b[4+n:]
	}
	return frames, b
}

// normalizePorts replaces one server's own port numbers in IDENTIFY replies,
// the only bytes that legitimately differ between the two servers.
func normalizePorts(frames []string, tcpPort, httpPort int) []string {
	out := make([]string, len(frames))
	for i, f := range frames {
		if strings.HasPrefix(f, "{") {
			f = strings.Replace(f, `"tcp_port":`+strconv.Itoa(tcpPort)+",", `"tcp_port":TCP,`, 1)
			f = strings.Replace(f, `"http_port":`+strconv.Itoa(httpPort)+",", `"http_port":HTTP,`, 1)
		}
		out[i] = f
	}
	return out
}

type diffScript struct {
	name   string
	script []byte
	frames int // expected frame count, so a harness fault cannot pass as agreement
}

func differentialScripts() []diffScript {
	const body = `{"broadcast_address":"ip.address","hostname":"ip.address","http_port":5555,"tcp_port":5000,"version":"fake-version"}`
	id := func(rest ...any) []byte {
		return cat(append([]any{magicV1, identifyFrame(body)}, rest...)...)
	}
	b := func(s string) []byte { return cat(magicV1, identifyFrame(s)) }
	t64, t65 := strings.Repeat("a", 64), strings.Repeat("b", 65)
	return []diffScript{
		// magic (docs/COMPATIBILITY.md#tcp-handshake)
		{"bad magic V2", cat("  V2PING\n"), 1},
		{"bad magic HTTP", cat("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 1},
		{"short magic", cat("  V"), 0},
		{"magic only", cat(magicV1), 0},
		// framing (#tcp-framing)
		{"ping", cat(magicV1, "PING\n"), 1},
		{"ping with params", cat(magicV1, "PING a b c\n"), 1},
		{"crlf and padding", cat(magicV1, "PING\r\n  PING  \r\n\tPING\t\n"), 3},
		{"unicode space trimmed", cat(magicV1, "PING\u00a0\u2003\n"), 1},
		{"partial last line", cat(magicV1, "PING\nPING"), 1},
		{"lower-case", cat(magicV1, "ping\n"), 1},
		{"empty line", cat(magicV1, "\n"), 1},
		{"tab separator", cat(magicV1, "REGISTER\tt\n"), 1},
		{"unknown command", cat(magicV1, "INVALID_COMMAND\n"), 1},
		{"error stops pipeline", cat(magicV1, "PING\nFOO\nPING\n"), 2},
		// IDENTIFY (#tcp-identify)
		{"identify", id(), 1},
		{"identify line params ignored", cat(magicV1, "IDENTIFY a b\n", identifyFrame(body)[len("IDENTIFY\n"):]), 1},
		{"identify again", id("IDENTIFY\n"), 2},
		{"identify again with body", id(identifyFrame(body)), 2},
		{"body size short", cat(magicV1, "IDENTIFY\n\x00\x00\x00"), 1},
		{"body size missing", cat(magicV1, "IDENTIFY\n"), 1},
		{"body short", cat(magicV1, identifyFrameN(200), body), 1},
		{"body empty", b(""), 1},
		{"body not json", b("not json"), 1},
		{"body array", b("[]"), 1},
		{"body string", b(`"x"`), 1},
		{"body trailing garbage", b(body + " x"), 1},
		{"body null", b("null"), 1},
		{"body null padded", b("  null \n"), 1},
		{"body empty object", b("{}"), 1},
		{"no broadcast_address", b(`{"hostname":"h","http_port":5555,"tcp_port":5000,"version":"v"}`), 1},
		{"empty broadcast_address", b(`{"broadcast_address":"","http_port":5555,"tcp_port":5000,"version":"v"}`), 1},
		{"no tcp_port", b(`{"broadcast_address":"a","http_port":5555,"version":"v"}`), 1},
		{"zero http_port", b(`{"broadcast_address":"a","http_port":0,"tcp_port":5000,"version":"v"}`), 1},
		{"no version", b(`{"broadcast_address":"a","http_port":5555,"tcp_port":5000}`), 1},
		{"no hostname", b(`{"broadcast_address":"a","http_port":5555,"tcp_port":5000,"version":"v"}`), 1},
		{"string port", b(`{"broadcast_address":"a","http_port":"5555","tcp_port":5000,"version":"v"}`), 1},
		{"fractional port", b(`{"broadcast_address":"a","http_port":5555.5,"tcp_port":5000,"version":"v"}`), 1},
		{"exponent port", b(`{"broadcast_address":"a","http_port":5e3,"tcp_port":5000,"version":"v"}`), 1},
		{"negative port", b(`{"broadcast_address":"a","http_port":5555,"tcp_port":-5,"version":"v"}`), 1},
		{"upper-case keys", b(`{"BROADCAST_ADDRESS":"a","Http_Port":5555,"TCP_PORT":5000,"VERSION":"v"}`), 1},
		{"unknown keys", b(`{"broadcast_address":"a","http_port":5555,"tcp_port":5000,"version":"v","topology_zone":"z","n":{"x":[1]}}`), 1},
		{"remote_address string", b(`{"remote_address":"1.2.3.4:1","broadcast_address":"a","http_port":5555,"tcp_port":5000,"version":"v"}`), 1},
		{"remote_address number", b(`{"remote_address":1,"broadcast_address":"a","http_port":5555,"tcp_port":5000,"version":"v"}`), 1},
		{"null field", b(`{"broadcast_address":null,"http_port":5555,"tcp_port":5000,"version":"v"}`), 1},
		{"identify then commands in one write", id("REGISTER t\nPING\n"), 3},
		// PING, REGISTER, UNREGISTER (#tcp-ping .. #tcp-unregister)
		{"ping after identify", id("PING\n"), 2},
		{"register before identify", cat(magicV1, "REGISTER t\n"), 1},
		{"unregister before identify", cat(magicV1, "UNREGISTER t\n"), 1},
		{"nsqd connect sequence", id("REGISTER alpha\nREGISTER delta d1\nPING\n"), 4},
		{"register no params", id("REGISTER\n"), 2},
		{"register trailing space", id("REGISTER \n"), 2},
		{"unregister no params", id("UNREGISTER\n"), 2},
		{"register double space", id("REGISTER  t\n"), 2},
		{"register empty channel param", id("REGISTER t  c\n"), 2},
		{"register extra params", id("REGISTER t c extra\n"), 2},
		{"register 64 ok", id("REGISTER " + t64 + " " + t64 + "\n"), 2},
		{"register 65 topic", id("REGISTER " + t65 + "\n"), 2},
		{"register 65 channel", id("REGISTER t " + t65 + "\n"), 2},
		{"register bad topic", id("REGISTER t$\n"), 2},
		{"register bad channel", id("REGISTER t c:1\n"), 2},
		{"register raw bytes", id("REGISTER t\xff\n"), 2},
		{"ephemeral names", id("REGISTER t#ephemeral c#ephemeral\nREGISTER . ..\n"), 3},
		{"ephemeral alone", id("REGISTER #ephemeral\n"), 2},
		{"ephemeral channel alone", id("REGISTER t #ephemeral\n"), 2},
		{"unregister unknown", id("UNREGISTER nope\nUNREGISTER nope ch\n"), 3},
		{"register then unregister", id("REGISTER t c\nUNREGISTER t c\nUNREGISTER t\nUNREGISTER t\n"), 5},
		{"unregister bad topic", id("UNREGISTER a*b\n"), 2},
		{"unregister bad channel", id("UNREGISTER t c c2$\n"), 2}, // only params[1] is the channel
		{"unregister bad channel 2", id("UNREGISTER t c$ c2\n"), 2},
	}
}

// TestDifferentialAgainstNSQLookupd sends the same bytes to the real
// nsqlookupd 1.3.0 and to this package, and requires the same frames and
// the same close. Excluded: negative or huge IDENTIFY lengths (nsqlookupd
// crashes or allocates them) and over-long lines, where we deliberately
// differ.
func TestDifferentialAgainstNSQLookupd(t *testing.T) {
	// nsqlookupd answers IDENTIFY with the OS hostname (it cannot start
	// without one), so ours must be given the same.
	host, err := os.Hostname()
	if err != nil {
		t.Fatalf("no hostname to compare IDENTIFY replies with: %v", err)
	}
	const broadcast = "lookupd.example"
	ref := startNSQLookupd(t, broadcast)
	refTCP, refHTTP := ref.RealTCPAddr(), ref.RealHTTPAddr()

	const ourHTTP = 18161
	ours, _ := startServer(t, func(c *Config) {
		c.BroadcastAddress = broadcast
		c.Hostname = host // nsqlookupd always answers the OS hostname
		c.HTTPPort = ourHTTP
	})
	ourTCP := ours.Addr().(*net.TCPAddr).Port

	for _, sc := range differentialScripts() {
		t.Run(sc.name, func(t *testing.T) {
			want, wantRest := exchange(t, refTCP.String(), sc.script)
			got, gotRest := exchange(t, ours.Addr().String(), sc.script)
			want = normalizePorts(want, refTCP.Port, refHTTP.Port)
			got = normalizePorts(got, ourTCP, ourHTTP)
			if len(want) != sc.frames {
				t.Fatalf("harness: nsqlookupd sent %d frames %q, script expects %d", len(want), want, sc.frames)
			}
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) || !bytes.Equal(gotRest, wantRest) {
				t.Errorf("frames differ\n  ours: %q %q\nnsqlookupd: %q %q", got, gotRest, want, wantRest)
			}
		})
	}
}
