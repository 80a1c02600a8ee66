package e2e

// The differential runner: a script of steps runs against a reference
// (nsqlookupd 1.3.0 in-process) and a subject (raftlookupd, or a second
// reference to validate the script itself). Every step yields a normalized
// textual answer; the first step whose answers differ fails the test with
// both answers.
//
// The subject's registry may be applied asynchronously (TCP replies do not
// wait for Raft), so:
//   - before an HTTP step that follows a mutation, a barrier polls the
//     subject's GET /debug until it equals the reference's (5 s deadline);
//   - an idempotent HTTP step (GET) whose answer differs is re-polled on the
//     subject until it matches or its deadline (default 5 s) passes;
//   - a timing step (waitUntil) first polls the reference until its answer
//     satisfies a predicate, then polls the subject until it answers the same.

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	subjectPollTimeout   = 5 * time.Second  // barrier and GET re-polls
	referenceWaitTimeout = 10 * time.Second // waitUntil on the reference
	tcpIOTimeout         = 3 * time.Second  // one frame read or write
	closeProbeTimeout    = 2 * time.Second  // "is the connection closed?"
	maxFrameSize         = 1 << 20
	identifyBroadcast    = "127.0.0.1" // -broadcast-address of every target
	zeroTimeNanos        = "-6795364578871345152"
	diffMagic            = "  V1"
)

type stepKind int

const (
	kindSection stepKind = iota
	kindTCP
	kindHTTP
)

// answer is one step's normalized result. Text is what is compared; Detail
// (raw errors, not normalized) is only shown in failure reports.
type answer struct {
	Text   string
	Status int
	Body   []byte
	Detail string
}

type step struct {
	kind    stepKind
	desc    string
	run     func(*session) answer
	mutates bool
	repoll  bool               // idempotent: the subject may be asked again
	wait    time.Duration      // subject re-poll deadline (default subjectPollTimeout)
	until   func(answer) error // reference polled until nil
}

// waitUntil makes a timing step: the reference is polled until pred accepts
// its answer, then the subject is polled until it gives the same answer.
func (s step) waitUntil(pred func(answer) error) step {
	s.until = pred
	return s
}

// within sets how long the subject is re-polled.
func (s step) within(d time.Duration) step {
	s.wait = d
	return s
}

// ---------------------------------------------------------------------------
// step constructors

func section(name string) step { return step{kind: kindSection, desc: name} }

// dial connects and sends the protocol magic "  V1".
func dial(c string) step {
	return step{kind: kindTCP, desc: c + ": connect + magic", mutates: true, run: func(s *session) answer {
		return s.dial(c, true)
	}}
}

// dialRaw connects without sending anything.
func dialRaw(c string) step {
	return step{kind: kindTCP, desc: c + ": connect", run: func(s *session) answer {
		return s.dial(c, false)
	}}
}

// send writes data and reads frames responses.
func send(c, data string, frames int) step {
	return step{kind: kindTCP, desc: fmt.Sprintf("%s: send %q", c, data), mutates: true, run: func(s *session) answer {
		return s.exchange(c, []byte(data), frames, false, false)
	}}
}

// sendFatal writes data, reads one response and checks whether the server
// closed the connection.
func sendFatal(c, data string) step {
	return step{kind: kindTCP, desc: fmt.Sprintf("%s: send %q, expect close", c, data), mutates: true, run: func(s *session) answer {
		return s.exchange(c, []byte(data), 1, false, true)
	}}
}

// sendHalfClose writes data, half-closes the connection and reads what comes.
func sendHalfClose(c, data string) step {
	return step{kind: kindTCP, desc: fmt.Sprintf("%s: send %q + FIN", c, data), mutates: true, run: func(s *session) answer {
		return s.exchange(c, []byte(data), 1, true, true)
	}}
}

func cmd(c, line string) step {
	st := send(c, line+"\n", 1)
	st.desc = c + ": " + line
	return st
}

func cmdFatal(c, line string) step {
	st := sendFatal(c, line+"\n")
	st.desc = c + ": " + line + " (expect close)"
	return st
}

func identifyFrame(body string) string {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(body)))
	return "IDENTIFY\n" + string(n[:]) + body
}

func identify(c, body string) step {
	st := send(c, identifyFrame(body), 1)
	st.desc = c + ": IDENTIFY " + body
	return st
}

func identifyFatal(c, body string) step {
	st := sendFatal(c, identifyFrame(body))
	st.desc = c + ": IDENTIFY " + body + " (expect close)"
	return st
}

// hangup closes the client side of a connection.
func hangup(c string) step {
	return step{kind: kindTCP, desc: c + ": client closes", mutates: true, run: func(s *session) answer {
		return s.hangup(c)
	}}
}

func get(pathq string) step { return request("GET", pathq, nil, nil) }

func post(pathq string) step { return request("POST", pathq, nil, nil) }

func request(method, pathq string, body []byte, hdr http.Header) step {
	desc := method + " " + pathq
	if body != nil {
		desc += fmt.Sprintf(" body %q", body)
	}
	if len(hdr) > 0 {
		desc += fmt.Sprintf(" headers %v", hdr)
	}
	idempotent := method == "GET" || method == "HEAD" || method == "OPTIONS"
	return step{kind: kindHTTP, desc: desc, mutates: !idempotent, repoll: idempotent, run: func(s *session) answer {
		return s.http(method, pathq, body, hdr)
	}}
}

// ---------------------------------------------------------------------------
// predicates for waitUntil

func decodeField(a answer, v any) error {
	if a.Status != http.StatusOK {
		return fmt.Errorf("status %d", a.Status)
	}
	return json.Unmarshal(a.Body, v)
}

// producerCount accepts an answer of /lookup or /nodes with n producers.
func producerCount(n int) func(answer) error {
	return func(a answer) error {
		var doc struct {
			Producers []json.RawMessage `json:"producers"`
		}
		if err := decodeField(a, &doc); err != nil {
			return err
		}
		if len(doc.Producers) != n {
			return fmt.Errorf("%d producers, want %d", len(doc.Producers), n)
		}
		return nil
	}
}

// noTombstones accepts a /nodes answer in which no producer is tombstoned.
func noTombstones(a answer) error {
	var doc nodesDoc
	if err := decodeField(a, &doc); err != nil {
		return err
	}
	for _, p := range doc.Producers {
		for i, tomb := range p.Tombstones {
			if tomb {
				return fmt.Errorf("%s:%d still tombstoned for %q", p.BroadcastAddress, p.HTTPPort, p.Topics[i])
			}
		}
	}
	return nil
}

// ---------------------------------------------------------------------------
// sessions: one per target per script run

type session struct {
	t                 testing.TB
	name              string
	tgt               target
	tcpPort, httpPort int
	conns             map[string]net.Conn
	labels            map[string]string // client-side local address -> connection label
	// settleCloses: after a connection closes, wait until the target dropped
	// it. nsqlookupd removes a closed connection's producers asynchronously
	// (when its read loop ends); for the reference this makes every answer
	// after a close deterministic. The subject is not waited for this way:
	// the barrier and re-polls compare it with the settled reference.
	settleCloses bool
}

func newSession(t testing.TB, name string, tgt target) *session {
	s := &session{
		t:        t,
		name:     name,
		tgt:      tgt,
		tcpPort:  portOf(tgt.TCPAddr()),
		httpPort: portOf(tgt.HTTPAddr()),
		conns:    map[string]net.Conn{},
		labels:   map[string]string{},
	}
	t.Cleanup(func() {
		for _, c := range s.conns {
			c.Close()
		}
	})
	return s
}

// newReferenceSession is a session on the reference: closes are settled.
func newReferenceSession(t testing.TB, name string, tgt target) *session {
	s := newSession(t, name, tgt)
	s.settleCloses = true
	return s
}

func (s *session) conn(c string) net.Conn {
	conn, ok := s.conns[c]
	if !ok {
		s.t.Fatalf("script error: connection %q is not open on %s", c, s.name)
	}
	return conn
}

func (s *session) dial(c string, magic bool) answer {
	if _, ok := s.conns[c]; ok {
		s.t.Fatalf("script error: connection %q dialled twice on %s", c, s.name)
	}
	conn, err := net.DialTimeout("tcp", s.tgt.TCPAddr(), tcpIOTimeout)
	if err != nil {
		return answer{Text: "dial failed", Detail: err.Error()}
	}
	s.conns[c] = conn
	s.labels[conn.LocalAddr().String()] = c
	if magic {
		conn.SetWriteDeadline(time.Now().Add(tcpIOTimeout))
		if _, err := conn.Write([]byte(diffMagic)); err != nil {
			return answer{Text: "magic write failed", Detail: err.Error()}
		}
	}
	return answer{Text: "connected"}
}

func (s *session) hangup(c string) answer {
	conn := s.conn(c)
	delete(s.conns, c)
	conn.Close()
	s.settle(conn)
	return answer{Text: "closed by client"}
}

// settle waits (if settleCloses) until no producer record of /debug has the
// closed connection's address as id, which is how nsqlookupd names peers.
func (s *session) settle(conn net.Conn) {
	if !s.settleCloses {
		return
	}
	addr := conn.LocalAddr().String()
	err := eventually(subjectPollTimeout, func() error {
		var dump map[string][]struct {
			ID string `json:"id"`
		}
		if err := getJSON(s.tgt.HTTPAddr(), "/debug", &dump); err != nil {
			return err
		}
		for key, producers := range dump {
			for _, p := range producers {
				if p.ID == addr {
					return fmt.Errorf("%s still holds %s", key, addr)
				}
			}
		}
		return nil
	})
	if err != nil {
		s.t.Fatalf("%s did not drop the closed connection %s: %v", s.name, addr, err)
	}
}

// exchange writes data, optionally half-closes, reads up to frames
// responses and optionally probes whether the server closed the connection.
func (s *session) exchange(c string, data []byte, frames int, halfClose, probe bool) answer {
	conn := s.conn(c)
	var lines []string
	var detail []string
	conn.SetWriteDeadline(time.Now().Add(tcpIOTimeout))
	if _, err := conn.Write(data); err != nil {
		lines = append(lines, "write failed: "+classify(err))
		detail = append(detail, err.Error())
	}
	if halfClose {
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
	}
	ended := false
	for i := 0; i < frames && !ended; i++ {
		payload, err := readFrame(conn)
		if err != nil {
			lines = append(lines, "read: "+classify(err))
			detail = append(detail, err.Error())
			ended = true
			break
		}
		lines = append(lines, "frame: "+s.normalizeFrame(payload))
	}
	if probe && !ended {
		lines = append(lines, "then: "+probeClosed(conn))
	}
	if strings.Contains(strings.Join(lines, "\n"), "closed") {
		s.settle(conn)
	}
	return answer{Text: strings.Join(lines, "\n"), Detail: strings.Join(detail, "; ")}
}

func readFrame(conn net.Conn) ([]byte, error) {
	conn.SetReadDeadline(time.Now().Add(tcpIOTimeout))
	var hdr [4]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(hdr[:]))
	if n < 0 || n > maxFrameSize {
		return nil, fmt.Errorf("frame size %d out of range", n)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(conn, payload); err != nil {
		return nil, fmt.Errorf("frame body: %w", err)
	}
	return payload, nil
}

// probeClosed reports "closed" when the server closed the connection
// (EOF or reset) within closeProbeTimeout, "open" when nothing happened.
func probeClosed(conn net.Conn) string {
	conn.SetReadDeadline(time.Now().Add(closeProbeTimeout))
	var b [64]byte
	n, err := conn.Read(b[:])
	if n > 0 {
		return fmt.Sprintf("unexpected data %q", b[:n])
	}
	return classify(err)
}

func classify(err error) string {
	var ne net.Error
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "closed"
	case errors.As(err, &ne) && ne.Timeout():
		return "open (no answer)"
	default:
		return "error"
	}
}

// http sends one request and normalizes the response.
func (s *session) http(method, pathq string, body []byte, hdr http.Header) answer {
	res, err := httpDo(method, "http://"+s.tgt.HTTPAddr()+pathq, body, hdr)
	if err != nil {
		return answer{Text: "HTTP transport error", Detail: err.Error()}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP %d\n", res.Status)
	for _, h := range []string{"X-NSQ-Content-Type", "Content-Type", "Allow", "Location"} {
		v, ok := res.Header[http.CanonicalHeaderKey(h)]
		if !ok {
			continue
		}
		val := strings.Join(v, ",")
		switch h {
		case "Allow":
			val = sortedList(val)
		case "Location":
			val = strings.TrimPrefix(val, "http://"+s.tgt.HTTPAddr())
		}
		fmt.Fprintf(&b, "%s: %s\n", h, val)
	}
	b.WriteString(s.normalizeBody(pathq, res.Body))
	return answer{Text: b.String(), Status: res.Status, Body: res.Body}
}

// ---------------------------------------------------------------------------
// the runner

// script is a named list of steps run with fresh targets started with opts.
type script struct {
	name  string
	opts  timeouts
	steps []step
}

// runScript runs the steps against ref and sub in lock step and fails at the
// first difference.
func runScript(t *testing.T, steps []step, ref, sub *session) {
	t.Helper()
	transcript := os.Getenv("E2E_TRANSCRIPT") == "1"
	dirty := false
	sec := ""
	num := 0
	var history []string
	// how often and how long the subject lagged behind the reference
	var lagged int
	var maxLag time.Duration
	for _, st := range steps {
		if st.kind == kindSection {
			sec = st.desc
			continue
		}
		num++
		label := fmt.Sprintf("step %d [%s] %s", num, sec, st.desc)
		if st.kind == kindHTTP && dirty {
			start := time.Now()
			msg, polled := barrier(ref, sub)
			if polled {
				lagged++
				maxLag = max(maxLag, time.Since(start))
			}
			if msg != "" {
				t.Fatalf("before %s: %s\nprevious steps:\n%s", label, msg, strings.Join(history, "\n"))
			}
			dirty = false
		}
		ra := st.run(ref)
		if st.until != nil {
			deadline := time.Now().Add(referenceWaitTimeout)
			for {
				err := st.until(ra)
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: the reference (%s) did not reach the expected state within %v: %v\n%s",
						label, ref.name, referenceWaitTimeout, err, ra.Text)
				}
				time.Sleep(pollInterval)
				ra = st.run(ref)
			}
		}
		sa := st.run(sub)
		if sa.Text != ra.Text && (st.repoll || st.until != nil) {
			wait := st.wait
			if wait == 0 {
				wait = subjectPollTimeout
			}
			start := time.Now()
			deadline := start.Add(wait)
			for sa.Text != ra.Text && time.Now().Before(deadline) {
				time.Sleep(pollInterval)
				sa = st.run(sub)
			}
			lagged++
			maxLag = max(maxLag, time.Since(start))
		}
		if transcript {
			t.Logf("%s\n%s", label, indent(ra.Text))
		}
		if sa.Text != ra.Text {
			t.Fatalf("%s: answers differ\n--- reference: %s\n%s%s\n--- subject: %s\n%s%s\nprevious steps:\n%s",
				label, ref.name, indent(ra.Text), detail(ra), sub.name, indent(sa.Text), detail(sa),
				strings.Join(history, "\n"))
		}
		history = append(history, label)
		if len(history) > 8 {
			history = history[1:]
		}
		if st.mutates {
			dirty = true
		}
	}
	t.Logf("%d steps: %s answered like %s; it lagged behind at %d barriers or re-polled steps, by at most %v",
		num, sub.name, ref.name, lagged, maxLag.Round(time.Millisecond))
}

// barrier waits until the subject's GET /debug equals the reference's, so
// the next HTTP step sees every earlier mutation applied. It returns a
// failure description (or "") and whether the subject had to be re-polled.
func barrier(ref, sub *session) (msg string, polled bool) {
	want := ref.http("GET", "/debug", nil, nil)
	got := sub.http("GET", "/debug", nil, nil)
	polled = got.Text != want.Text
	deadline := time.Now().Add(subjectPollTimeout)
	for got.Text != want.Text && time.Now().Before(deadline) {
		time.Sleep(pollInterval)
		got = sub.http("GET", "/debug", nil, nil)
	}
	if got.Text == want.Text {
		return "", polled
	}
	return fmt.Sprintf("the subject's GET /debug did not converge to the reference's within %v\n--- reference: %s\n%s\n--- subject: %s\n%s%s",
		subjectPollTimeout, ref.name, indent(want.Text), sub.name, indent(got.Text), detail(got)), polled
}

func indent(s string) string { return "    " + strings.ReplaceAll(s, "\n", "\n    ") }

func detail(a answer) string {
	if a.Detail == "" {
		return ""
	}
	return "\n    (detail: " + a.Detail + ")"
}
