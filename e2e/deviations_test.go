package e2e

// The deliberate differences from nsqlookupd 1.3.0 (docs/COMPATIBILITY.md#diff-tcp-limits,
// #diff-wildcard and #diff-identity), tested against raftlookupd only: where nsqlookupd
// crashes, grows without bound or wipes everything, raftlookupd answers with
// a clear error, changes nothing and keeps serving every other client.

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// mustTCP runs one exchange on a session and checks the answer's prefix and,
// if given, suffix.
func mustTCP(t *testing.T, s *session, c, data string, frames int, probe bool, prefix, suffix string) string {
	t.Helper()
	a := s.exchange(c, []byte(data), frames, false, probe)
	if !strings.HasPrefix(a.Text, prefix) || !strings.HasSuffix(a.Text, suffix) {
		t.Fatalf("%s: sent %q: got\n%s%s\nwant prefix %q and suffix %q", s.name, trimForLog(data), indent(a.Text), detail(a), prefix, suffix)
	}
	return a.Text
}

func trimForLog(s string) string {
	if len(s) > 80 {
		return s[:80] + fmt.Sprintf("...(%d bytes)", len(s))
	}
	return s
}

// stateSnapshot is the normalized view of everything a client can read.
func stateSnapshot(s *session) string {
	var b strings.Builder
	for _, p := range []string{"/debug", "/topics", "/nodes", "/lookup?topic=bystander", "/channels?topic=keep_me"} {
		b.WriteString(p + "\n" + s.http("GET", p, nil, nil).Text + "\n")
	}
	return b.String()
}

func TestDeviationsBadInput(t *testing.T) {
	t.Parallel()
	node := StartNode(t)
	s := newSession(t, node.String(), node)

	// A bystander: an identified, registered connection that must keep being
	// served, and state that must not change.
	s.dial("z", true)
	mustTCP(t, s, "z", identifyFrame(fixture("bystander", 6000, 6001)), 1, false, "frame: {", "")
	mustTCP(t, s, "z", "REGISTER bystander ch\n", 1, false, "frame: OK", "")
	mustPost(t, node.HTTPAddr(), "/channel/create?topic=keep_me&channel=kc", nil)
	waitFor(t, subjectPollTimeout, func() error {
		var doc lookupDoc
		if err := getJSON(node.HTTPAddr(), "/lookup?topic=bystander", &doc); err != nil {
			return err
		}
		if len(doc.Producers) != 1 {
			return fmt.Errorf("bystander: %d producers", len(doc.Producers))
		}
		return nil
	})
	before := stateSnapshot(s)

	unharmed := func(after string) {
		t.Helper()
		if err := node.exitError(); err != nil {
			t.Fatalf("after %s: %v", after, err)
		}
		mustTCP(t, s, "z", "PING\n", 1, false, "frame: OK", "")
		res, err := httpDo("GET", "http://"+node.HTTPAddr()+"/ping", nil, nil)
		if err != nil || res.Status != http.StatusOK {
			t.Fatalf("after %s: GET /ping: %v %v", after, res, err)
		}
		// the state must not change, now or a little later (async apply)
		if err := holdsFor(300*time.Millisecond, func() error {
			if now := stateSnapshot(s); now != before {
				return fmt.Errorf("state changed:\n--- before\n%s--- after\n%s", before, now)
			}
			return nil
		}); err != nil {
			t.Fatalf("after %s: %v", after, err)
		}
	}

	// nsqlookupd crashes on a negative IDENTIFY body length (makeslice panic).
	s.dial("neg", true)
	got := mustTCP(t, s, "neg", "IDENTIFY\n\xff\xff\xff\xff", 1, true, "frame: E_BAD_BODY IDENTIFY invalid body size -1\n", "then: closed")
	t.Logf("negative body length: %s", got)
	unharmed("negative IDENTIFY body length")

	// nsqlookupd allocates 2 GiB and waits for the body: raftlookupd rejects
	// the length itself, without waiting for a body.
	s.dial("huge", true)
	got = mustTCP(t, s, "huge", "IDENTIFY\n\x7f\xff\xff\xff", 1, true, "frame: E_BAD_BODY IDENTIFY invalid body size 2147483647\n", "then: closed")
	t.Logf("huge body length: %s", got)
	unharmed("huge IDENTIFY body length")

	// A line one byte over the limit, then nothing: every byte sent is
	// read, so the server's close is clean and its error frame arrives.
	s.dial("long", true)
	mustTCP(t, s, "long", strings.Repeat("A", maxLineBytes), 1, true, "frame: "+lineTooLong+"\n", "then: closed")
	unharmed("line over the limit")

	// An endless line: nsqlookupd buffers it without limit.
	overLongLine(t, node.TCPAddr())
	unharmed("over-long line")

	// `*` in /topic/delete wipes every topic in nsqlookupd; in
	// /topic/tombstone it tombstones one random topic per producer.
	for _, pq := range []string{
		"/topic/delete?topic=*",
		"/topic/tombstone?topic=*&node=bystander:6001",
	} {
		res, err := httpDo("POST", "http://"+node.HTTPAddr()+pq, nil, nil)
		if err != nil {
			t.Fatalf("POST %s: %v", pq, err)
		}
		if res.Status != http.StatusBadRequest || string(res.Body) != `{"message":"INVALID_ARG_TOPIC"}` ||
			res.Header.Get("X-NSQ-Content-Type") != "nsq; version=1.0" {
			t.Fatalf("POST %s: got %d %q (X-NSQ-Content-Type %q), want 400 {\"message\":\"INVALID_ARG_TOPIC\"}",
				pq, res.Status, res.Body, res.Header.Get("X-NSQ-Content-Type"))
		}
		unharmed("POST " + pq)
	}
}

// maxLineBytes is raftlookupd's line limit (tcpproto's default, "\n"
// included; no flag changes it), and lineTooLong the error it answers.
const (
	maxLineBytes = 4096
	lineTooLong  = "E_INVALID line too long (max 4096 bytes)"
)

// overLongLine streams a line without newline until the server gives up on
// it. The server must close the connection long before 64 MiB have been
// sent. It writes the line-too-long frame first, but the client is still
// sending then, so the close is a reset that may discard the frame.
func overLongLine(t *testing.T, tcpAddr string) {
	t.Helper()
	const limit = 64 << 20
	conn, err := net.DialTimeout("tcp", tcpAddr, tcpIOTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(diffMagic)); err != nil {
		t.Fatal(err)
	}
	sent := make(chan int, 1)
	go func() {
		chunk := bytes.Repeat([]byte("A"), 64<<10)
		n := 0
		conn.SetWriteDeadline(time.Now().Add(20 * time.Second))
		for n < limit {
			w, err := conn.Write(chunk)
			n += w
			if err != nil {
				break
			}
		}
		sent <- n
	}()
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	payload, err := readFrame(conn)
	switch {
	case err == nil && string(payload) == lineTooLong:
		t.Logf("over-long line: error frame %q", payload)
		if c := probeClosed(conn); c != "closed" {
			t.Errorf("over-long line: after the error frame the connection is %s, want closed", c)
		}
	case err == nil:
		t.Errorf("over-long line: unexpected frame %q", payload)
	case classify(err) == "closed":
		t.Logf("over-long line: connection closed (%v); the error frame, if any, was lost to the reset", err)
	default:
		t.Errorf("over-long line: the server neither answered nor closed within 20s: %v", err)
	}
	conn.Close()
	if n := <-sent; n >= limit {
		t.Errorf("over-long line: the server accepted %d bytes without a newline", n)
	} else {
		t.Logf("over-long line: the server stopped reading after at most %d bytes", n)
	}
}

// TestDeviationDuplicateIdentity: two live connections with identical
// IDENTIFY bodies are listed twice by nsqlookupd (once per connection) and
// once by raftlookupd (one producer per broadcast_address+tcp_port+http_port),
// which keeps listing it while either connection lives.
func TestDeviationDuplicateIdentity(t *testing.T) {
	t.Parallel()
	node := StartNode(t)
	ref := startReference(t, timeouts{Inactive: 300 * time.Second, Tombstone: 45 * time.Second})
	body := fixture("dup.address", 7000, 7001)

	count := func(s *session) (lookup, nodes int, err error) {
		var ld lookupDoc
		if err := getJSON(s.tgt.HTTPAddr(), "/lookup?topic=dup_topic", &ld); err != nil {
			return 0, 0, err
		}
		var nd nodesDoc
		if err := getJSON(s.tgt.HTTPAddr(), "/nodes", &nd); err != nil {
			return 0, 0, err
		}
		for _, p := range nd.Producers {
			if p.BroadcastAddress == "dup.address" {
				nodes++
			}
		}
		return len(ld.Producers), nodes, nil
	}
	want := func(s *session, wantLookup, wantNodes int) func() error {
		return func() error {
			l, n, err := count(s)
			if err != nil {
				return err
			}
			if l != wantLookup || n != wantNodes {
				return fmt.Errorf("%s: /lookup lists %d, /nodes lists %d; want %d and %d", s.name, l, n, wantLookup, wantNodes)
			}
			return nil
		}
	}

	for _, tc := range []struct {
		s    *session
		want int
	}{
		{newSession(t, "nsqlookupd 1.3.0", ref), 2},
		{newSession(t, node.String(), node), 1},
	} {
		for _, c := range []string{"x1", "x2"} {
			tc.s.dial(c, true)
			mustTCP(t, tc.s, c, identifyFrame(body), 1, false, "frame: {", "")
			mustTCP(t, tc.s, c, "REGISTER dup_topic ch\n", 1, false, "frame: OK", "")
		}
		waitFor(t, subjectPollTimeout, want(tc.s, tc.want, tc.want))
		if err := holdsFor(500*time.Millisecond, want(tc.s, tc.want, tc.want)); err != nil {
			t.Fatal(err)
		}
	}

	// one connection closes: still listed once while the other lives
	sub := newSession(t, node.String(), node)
	sub.dial("y1", true)
	mustTCP(t, sub, "y1", identifyFrame(fixture("dup2.address", 7100, 7101)), 1, false, "frame: {", "")
	mustTCP(t, sub, "y1", "REGISTER dup_topic2 ch\n", 1, false, "frame: OK", "")
	sub.dial("y2", true)
	mustTCP(t, sub, "y2", identifyFrame(fixture("dup2.address", 7100, 7101)), 1, false, "frame: {", "")
	mustTCP(t, sub, "y2", "REGISTER dup_topic2 ch\n", 1, false, "frame: OK", "")
	listed := func(n int) func() error {
		return func() error {
			var ld lookupDoc
			if err := getJSON(node.HTTPAddr(), "/lookup?topic=dup_topic2", &ld); err != nil {
				return err
			}
			if len(ld.Producers) != n {
				return fmt.Errorf("/lookup?topic=dup_topic2 lists %d producers, want %d", len(ld.Producers), n)
			}
			return nil
		}
	}
	waitFor(t, subjectPollTimeout, listed(1))
	sub.hangup("y1")
	if err := holdsFor(time.Second, listed(1)); err != nil {
		t.Fatalf("after one of two identical connections closed: %v", err)
	}
	sub.hangup("y2")
	waitFor(t, subjectPollTimeout, listed(0))
}
