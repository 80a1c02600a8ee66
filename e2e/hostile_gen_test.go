package e2e

// The hostile clients of TestHostileClients: random HTTP requests, random
// nsqd protocol V1 frames, and random bytes and forged node-to-node
// requests on the Raft ports. Each generator draws from its own seeded
// math/rand/v2 source, sends, classifies the answer into a tally, and
// records a violation when an answer is one the cluster must never give
// (a forged batch accepted, an invalid name created, the command line
// served, a remote admin change admitted).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nsqio/go-nsq"

	"github.com/raftlookupd/raftlookupd/fsm"
)

// hostile is the shared state of the generators.
type hostile struct {
	nodes []*Node
	src   net.IP // a non-loopback, non-member source address, or nil
	junk  []byte // random bytes, sliced for bodies and garbage

	mu         sync.Mutex
	counts     map[string]map[string]int // class -> outcome -> count
	violations []string
	samples    []string // the first few requests that timed out or failed
	// Valid names hostile requests asked to create (HTTP create, TCP
	// REGISTER), whatever the answer: the only names besides the
	// legitimate client's that may appear in the registry.
	topics   map[string]bool
	channels map[string]bool // "topic/channel"
}

func newHostile(nodes []*Node, src net.IP, r *rand.Rand) *hostile {
	junk := make([]byte, 5<<20)
	for i := range junk {
		junk[i] = byte(r.Uint32())
	}
	return &hostile{nodes: nodes, src: src, junk: junk,
		counts: map[string]map[string]int{}, topics: map[string]bool{}, channels: map[string]bool{}}
}

func (h *hostile) count(class, outcome string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.counts[class]
	if m == nil {
		m = map[string]int{}
		h.counts[class] = m
	}
	m[outcome]++
}

// sample keeps a short description of a request whose answer never came,
// for the log (not a violation: a huge request may take the client's
// whole timeout to refuse).
func (h *hostile) sample(format string, args ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.samples) < 12 {
		h.samples = append(h.samples, fmt.Sprintf(format, args...))
	}
}

func (h *hostile) violate(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if len(msg) > 600 {
		msg = msg[:600] + "..."
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.violations = append(h.violations, msg)
}

// tried records a create or REGISTER of topic (and channel, if not empty)
// when the names are valid; only valid names can ever be created.
func (h *hostile) tried(topic, channel string) {
	if !nsq.IsValidTopicName(topic) || (channel != "" && !nsq.IsValidChannelName(channel)) {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.topics[topic] = true
	if channel != "" {
		h.channels[topic+"/"+channel] = true
	}
}

// triedFrame records every REGISTER that bytes written to a TCP connection
// may carry, split into lines and parameters as the server splits them: a
// name with a newline in it smuggles a second, well-formed command.
func (h *hostile) triedFrame(frame []byte) {
	for _, line := range strings.Split(string(frame), "\n") {
		f := strings.Split(strings.TrimSpace(line), " ")
		if f[0] != "REGISTER" || len(f) < 2 || len(f) > 3 {
			continue
		}
		ch := ""
		if len(f) == 3 {
			ch = f[2]
		}
		h.tried(f[1], ch)
	}
}

// summary returns the tally, one line per class, and the total.
func (h *hostile) summary() (string, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var classes []string
	for c := range h.counts {
		classes = append(classes, c)
	}
	slices.Sort(classes)
	var b strings.Builder
	total := 0
	for _, c := range classes {
		var outs []string
		sum := 0
		for o, n := range h.counts[c] {
			outs = append(outs, fmt.Sprintf("%s=%d", o, n))
			sum += n
		}
		slices.Sort(outs)
		total += sum
		fmt.Fprintf(&b, "  %-14s %5d  %s\n", c, sum, strings.Join(outs, " "))
	}
	return b.String(), total
}

func (h *hostile) node(r *rand.Rand) *Node { return h.nodes[r.IntN(len(h.nodes))] }

// bytes returns n random bytes (a slice of junk; callers must not modify).
func (h *hostile) bytes(r *rand.Rand, n int) []byte {
	n = min(n, len(h.junk))
	off := r.IntN(len(h.junk) - n + 1)
	return h.junk[off : off+n]
}

// size draws a length: mostly small, sometimes large, rarely huge.
func size(r *rand.Rand, huge int) int {
	switch p := r.IntN(100); {
	case p < 70:
		return r.IntN(256)
	case p < 95:
		return r.IntN(64 << 10)
	default:
		return r.IntN(huge + 1)
	}
}

// poolTopic and poolChannel are valid names from a small pool, so hostile
// creations stay few enough to read back one by one. Legitimate names start
// with "legit_", which no hostile name does.
func poolTopic(r *rand.Rand) string {
	n := "h" + strconv.Itoa(r.IntN(200))
	if r.IntN(10) == 0 {
		n += "#ephemeral"
	}
	return n
}

func poolChannel(r *rand.Rand) string {
	n := "c" + strconv.Itoa(r.IntN(8))
	if r.IntN(10) == 0 {
		n += "#ephemeral"
	}
	return n
}

var oddNames = []string{
	"", " ", "#ephemeral", "a#ephemeral#ephemeral", "a b", "a/b", "../..", "..", ".", "a\x00b",
	"a\nb", "a\r\nREGISTER x", "тема", "😀", "a;b", "a&b", "a=b", "a%zz", "%00", "a\tb",
	"h1#Ephemeral", "-", "_", "h1 ", "\xff\xfe", strings.Repeat("a", 64), strings.Repeat("a", 65),
	strings.Repeat("#", 300), "legit", "LEGIT_T1",
}

// hostileName is a topic or channel name: a valid pool name, an odd one, a
// long one, or random bytes.
func (h *hostile) hostileName(r *rand.Rand, channel bool) string {
	switch p := r.IntN(100); {
	case p < 35:
		if channel {
			return poolChannel(r)
		}
		return poolTopic(r)
	case p < 65:
		return oddNames[r.IntN(len(oddNames))]
	case p < 85:
		lens := []int{65, 200, 4097, 64 << 10, 1<<20 + 1, 3 << 20}
		return strings.Repeat(string(rune('a'+r.IntN(26))), lens[r.IntN(len(lens))])
	default:
		return string(h.bytes(r, 1+r.IntN(300)))
	}
}

// ---------------------------------------------------------------------------
// HTTP

var (
	httpMutations = []string{"/topic/create", "/topic/delete", "/channel/create", "/channel/delete", "/topic/tombstone"}
	httpReads     = []string{"/ping", "/info", "/debug", "/lookup", "/topics", "/channels", "/nodes", "/metrics",
		"/healthz", "/readyz", "/cluster/status", "/cluster/ready", "/cluster", "/cluster/", "/CLUSTER/STATUS"}
	// Changes of membership or leadership: from loopback (admitted without
	// a token) the generator sends only bodies the handlers refuse.
	httpAdminChanges = []string{"/cluster/join", "/cluster/leave", "/cluster/transfer-leadership",
		"/CLUSTER/JOIN", "/cluster/leave/", "//cluster/transfer-leadership", "/cluster/./join", "/Cluster/Leave"}
	httpPrivate = []string{"/debug/pprof", "/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/goroutine?debug=2",
		"/debug/pprof/block", "/debug/pprof/threadcreate", "/debug/pprof/symbol", "/debug/pprof/cmdline",
		"/debug/pprof/cmdline/", "/DEBUG/PPROF/CMDLINE", "/debug/pprof/trace", "/debug/pprof/allocs", "/debug/pprof/mutex"}
	// Node-to-node paths that must not exist on the HTTP port.
	httpGone = []string{"/cluster/apply", "/cluster/read-index", "/rpc/apply", "/rpc/status", "/rpc/read-index",
		"/rpc/join", "/rpc/leave", "/rpc/transfer", "/cluster/apply/", "/CLUSTER/APPLY"}
	httpMethods = []string{"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "FOO", "get", "M-SEARCH"}
)

// badAdminBody is a body every join, leave and transfer handler refuses:
// broken, unknown fields, the wrong type, trailing data, or too large. (An
// empty body is a valid transfer request, so it is never sent.)
func (h *hostile) badAdminBody(r *rand.Rand) []byte {
	switch r.IntN(7) {
	case 0:
		return []byte(`{"id":`)
	case 1:
		return []byte(fmt.Sprintf(`{"idx":%q,"raft_address":"127.0.0.1:1"}`, "n"+strconv.Itoa(r.IntN(4))))
	case 2:
		return []byte(`{"id":"n2"} {"id":"n3"}`)
	case 3:
		return []byte(`[1,2,3]`)
	case 4:
		return []byte(`{"id":12,"voter":"yes"}`)
	case 5:
		return append([]byte("\x01"), h.bytes(r, size(r, 1<<20))...)
	default:
		return []byte(`{"id":"` + strings.Repeat("a", 70<<10) + `"}`)
	}
}

// query builds a raw query of random parameters; the mutation parameters
// are hostile names. It returns the raw string.
func (h *hostile) query(r *rand.Rand, mutation bool) string {
	keys := []string{"topic", "channel", "node", "consistency", "local", "x", "topic", "TOPIC", ""}
	var parts []string
	n := r.IntN(4)
	if mutation {
		n = 1 + r.IntN(4)
	}
	for i := 0; i < n; i++ {
		k := keys[r.IntN(len(keys))]
		if mutation && i == 0 {
			k = "topic"
		}
		if mutation && i == 1 {
			k = "channel"
		}
		var v string
		switch k {
		case "topic":
			v = h.hostileName(r, false)
		case "channel":
			v = h.hostileName(r, true)
		case "consistency":
			v = []string{"stale", "bounded", "linearizable", "LINEARIZABLE", "", "x", strings.Repeat("s", 5000)}[r.IntN(7)]
		case "local":
			v = []string{"true", "false", "1", ""}[r.IntN(4)]
		default:
			v = string(h.bytes(r, size(r, 1<<20)))
		}
		switch r.IntN(20) {
		case 0: // unescaped: broken escapes and separators reach the parser
			parts = append(parts, k+"="+strings.Map(printable, v))
		case 1:
			parts = append(parts, k)
		default:
			parts = append(parts, url.QueryEscape(k)+"="+url.QueryEscape(v))
		}
	}
	if r.IntN(15) == 0 {
		parts = append(parts, []string{"%zz", ";", "&&&", "a=%", "=%gg"}[r.IntN(5)])
	}
	return strings.Join(parts, "&")
}

// printable maps a rune to one that may stand unescaped in a request line.
func printable(c rune) rune {
	if c > 0x20 && c < 0x7f && c != '#' {
		return c
	}
	return 'z'
}

// httpOne sends one random HTTP request from loopback to a random node.
func (h *hostile) httpOne(r *rand.Rand) {
	n := h.node(r)
	method, path, class := "GET", "", ""
	var body []byte
	switch p := r.IntN(100); {
	case p < 35:
		class, method, path = "http-mutation", "POST", httpMutations[r.IntN(len(httpMutations))]
	case p < 60:
		class, path = "http-read", httpReads[r.IntN(len(httpReads))]
	case p < 70:
		class, method, path = "http-admin", "POST", httpAdminChanges[r.IntN(len(httpAdminChanges))]
		body = h.badAdminBody(r)
	case p < 78:
		class, path = "http-pprof", httpPrivate[r.IntN(len(httpPrivate))]
	case p < 85:
		class, method, path = "http-gone", "POST", httpGone[r.IntN(len(httpGone))]
		body = mustEncode(fsm.Command{Op: fsm.OpCreateTopic, Topic: "hgone"})
	default:
		class, path = "http-random", h.randomPath(r)
	}
	if class != "http-admin" && r.IntN(7) == 0 {
		method = httpMethods[r.IntN(len(httpMethods))]
	}
	if body == nil && r.IntN(4) == 0 {
		body = h.bytes(r, size(r, 4<<20))
	}
	q := ""
	if !strings.Contains(path, "?") {
		q = h.query(r, class == "http-mutation")
	}
	target := "http://" + n.HTTPAddr() + path
	hdr := h.headers(r)
	res, err := h.send(method, target, q, body, hdr)
	outcome := outcomeOf(res, err)
	h.count(class, outcome)
	if err != nil || res == nil {
		h.sample("%s %.80s (query %d bytes, body %d bytes, %d headers) to %s: %v", method, path, len(q), len(body), len(hdr), n.ID, err)
		return
	}
	h.checkHTTP(class, method, path, q, res)
}

// send is httpDo with a raw query appended as written.
func (h *hostile) send(method, target, rawQuery string, body []byte, hdr http.Header) (*httpResult, error) {
	u, err := url.Parse(target)
	if err != nil {
		// A path net/url refuses ("/%zz") is sent as written.
		host, path, _ := strings.Cut(strings.TrimPrefix(target, "http://"), "/")
		u = &url.URL{Scheme: "http", Host: host, Opaque: "/" + path}
	}
	u.RawQuery = rawQuery
	req, err := http.NewRequest(method, "http://"+u.Host+"/", nil)
	if err != nil {
		return nil, err
	}
	req.URL = u
	if body != nil {
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, err
	}
	return &httpResult{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

func (h *hostile) randomPath(r *rand.Rand) string {
	switch r.IntN(5) {
	case 0:
		return "/" + url.PathEscape(string(h.bytes(r, size(r, 2<<20))))
	case 1:
		segs := []string{"topic", "channel", "cluster", "rpc", "debug", "pprof", "..", ".", "", "%2e%2e", "create", "apply", "join"}
		p := ""
		for range 1 + r.IntN(6) {
			p += "/" + segs[r.IntN(len(segs))]
		}
		return p
	case 2:
		return "/" + strings.Repeat("a/", r.IntN(50000))
	case 3:
		return "/topic/create/" + url.PathEscape(h.hostileName(r, false))
	default:
		return "/%zz"
	}
}

// headers are usually none; sometimes one header near or over the server's
// limit (1 MiB by default), or thousands of small ones.
func (h *hostile) headers(r *rand.Rand) http.Header {
	hdr := http.Header{}
	switch r.IntN(20) {
	case 0:
		n := []int{512 << 10, 1<<20 - 8<<10, 1<<20 + 8<<10, 2 << 20}[r.IntN(4)]
		hdr.Set("X-Pad", strings.Repeat("p", n))
	case 1:
		for i := range 2000 + r.IntN(8000) {
			hdr.Set("X-H"+strconv.Itoa(i), strings.Repeat("v", r.IntN(100)))
		}
	case 2:
		hdr.Set("Authorization", "Bearer "+strings.Map(printable, string(h.bytes(r, r.IntN(5000)))))
	case 3:
		hdr.Set("Content-Type", "application/x-www-form-urlencoded")
	case 4:
		hdr.Set("Transfer-Encoding", "chunked")
	}
	return hdr
}

func outcomeOf(res *httpResult, err error) string {
	switch {
	case err == nil && res != nil:
		return strconv.Itoa(res.Status)
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return "timeout"
	default:
		return "error"
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// checkHTTP records a violation for answers the cluster must never give.
func (h *hostile) checkHTTP(class, method, path, rawQuery string, res *httpResult) {
	lower := strings.ToLower(path)
	if strings.Contains(lower, "cmdline") && (res.Status == http.StatusOK || strings.Contains(string(res.Body), "-node-id")) {
		h.violate("%s %s answered %d with %.200q: the command line must never be served", method, path, res.Status, res.Body)
	}
	if class == "http-gone" && res.Status/100 == 2 {
		h.violate("%s %s answered %d on the HTTP port: node-to-node paths must not exist there", method, path, res.Status)
	}
	if class == "http-admin" && res.Status/100 == 2 {
		h.violate("%s %s with a malformed body answered %d", method, path, res.Status)
	}
	if class != "http-mutation" || method != "POST" {
		return
	}
	v, err := url.ParseQuery(rawQuery)
	if err != nil {
		if res.Status == http.StatusOK {
			h.violate("POST %s?%.200s with an unparsable query answered 200", path, rawQuery)
		}
		return
	}
	topic, channel := v.Get("topic"), v.Get("channel")
	switch path {
	case "/topic/create":
		h.tried(topic, "")
		if res.Status == http.StatusOK && !nsq.IsValidTopicName(topic) {
			h.violate("POST /topic/create created the invalid topic %.200q", topic)
		}
	case "/channel/create":
		h.tried(topic, channel)
		if res.Status == http.StatusOK && (!nsq.IsValidTopicName(topic) || !nsq.IsValidChannelName(channel)) {
			h.violate("POST /channel/create created the invalid %.200q/%.200q", topic, channel)
		}
	}
}

// rawHTTPOne writes a malformed request to a node's HTTP port and reads
// whatever comes back.
func (h *hostile) rawHTTPOne(r *rand.Rand) {
	n := h.node(r)
	topic := poolTopic(r)
	var req []byte
	switch r.IntN(7) {
	case 0:
		req = h.bytes(r, 1+size(r, 1<<20))
	case 1:
		req = []byte("GET /topics HTTP/9.9\r\nHost: x\r\n\r\n")
	case 2:
		h.tried(topic, "")
		req = []byte("POST /topic/create?topic=" + url.QueryEscape(topic) + " HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\nabc")
	case 3:
		req = []byte("POST /topic/delete?topic=" + url.QueryEscape(topic) + " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzzzz\r\nxx\r\n")
	case 4:
		req = []byte("GET /" + strings.Repeat("x", 100<<10) + " HTTP/1.1\r\nHost: x\r\n\r\n")
	case 5:
		req = []byte("GET /lookup?topic=" + topic + " HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X: y\r\n", 20000) + "\r\n")
	default:
		req = []byte("GET\r\n\r\n")
	}
	h.count("http-raw", rawExchange(n.HTTPAddr(), req, 3*time.Second))
}

// rawExchange writes b and returns a short outcome: the status line's code,
// "closed" or "silent".
func rawExchange(addr string, b []byte, wait time.Duration) string {
	c, err := net.DialTimeout("tcp", addr, rawTimeout)
	if err != nil {
		return "dial-error"
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(wait))
	go func() { _, _ = c.Write(b) }()
	line, err := bufio.NewReader(c).ReadString('\n')
	switch {
	case strings.HasPrefix(line, "HTTP/"):
		f := strings.Fields(line)
		if len(f) > 1 {
			return f[1]
		}
		return "http"
	case isTimeout(err):
		return "silent"
	case line == "":
		return "closed"
	default:
		return "other"
	}
}

// ---------------------------------------------------------------------------
// nsqd protocol V1

// tcpOne opens one connection to a random node's TCP port and misbehaves.
func (h *hostile) tcpOne(r *rand.Rand) {
	n := h.node(r)
	c, err := net.DialTimeout("tcp", n.TCPAddr(), rawTimeout)
	if err != nil {
		h.count("tcp", "dial-error")
		return
	}
	defer c.Close()
	switch p := r.IntN(100); {
	case p < 10:
		b := h.bytes(r, 1+size(r, 1<<20))
		h.triedFrame(b)
		h.count("tcp-garbage", rawWriteRead(c, b, 2*time.Second))
	case p < 20:
		h.tcpFlood(r, c)
	default:
		h.tcpSession(r, c)
	}
}

// rawWriteRead writes b, then reads until the server closes or is silent.
func rawWriteRead(c net.Conn, b []byte, wait time.Duration) string {
	_ = c.SetDeadline(time.Now().Add(wait))
	go func() { _, _ = c.Write(b) }()
	buf := make([]byte, 4096)
	got := 0
	for {
		k, err := c.Read(buf)
		got += k
		if err != nil {
			switch {
			case isTimeout(err):
				return "silent"
			case got > 0:
				return "answered-closed"
			default:
				return "closed"
			}
		}
	}
}

// tcpReply reads one response frame. Frames over 1 MiB are a violation:
// no answer is that large.
func tcpReply(c net.Conn) (string, error) {
	var sz [4]byte
	if _, err := io.ReadFull(c, sz[:]); err != nil {
		return "", err
	}
	n := binary.BigEndian.Uint32(sz[:])
	if n > 1<<20 {
		return "", fmt.Errorf("frame of %d bytes", n)
	}
	b := make([]byte, n)
	_, err := io.ReadFull(c, b)
	return string(b), err
}

func replyClass(s string) string {
	switch {
	case s == "OK":
		return "OK"
	case strings.HasPrefix(s, "{"):
		return "identified"
	case strings.HasPrefix(s, "E_"):
		if i := strings.IndexByte(s, ' '); i > 0 {
			return s[:i]
		}
		return s
	default:
		return "other"
	}
}

// identifyBody is an IDENTIFY body: usually the four fields nsqd sends,
// each sometimes hostile; sometimes random JSON or bytes.
func (h *hostile) identifyBody(r *rand.Rand) []byte {
	str := func(valid string) any {
		switch r.IntN(8) {
		case 0:
			return h.hostileName(r, false)
		case 1:
			return r.IntN(100)
		case 2:
			return nil
		default:
			return valid
		}
	}
	port := func() any {
		switch r.IntN(8) {
		case 0:
			return []any{-1, 0, 65536, 1 << 40, -1 << 40, "4150", 1.5}[r.IntN(7)]
		default:
			return 1 + r.IntN(65535)
		}
	}
	switch r.IntN(10) {
	case 0:
		return append([]byte("{\x01"), h.bytes(r, size(r, 64<<10))...)
	case 1:
		var nest any = map[string]any{"x": 1}
		for range r.IntN(2000) {
			nest = []any{nest}
		}
		b, _ := json.Marshal(map[string]any{"broadcast_address": nest, "tcp_port": 1, "http_port": 2, "version": "1.3.0"})
		return b
	default:
		doc := map[string]any{
			"broadcast_address": str("hostile." + strconv.Itoa(r.IntN(50))),
			"hostname":          str("hostile"),
			"tcp_port":          port(),
			"http_port":         port(),
			"version":           str("1.3.0"),
		}
		if r.IntN(5) == 0 {
			doc[string(h.bytes(r, 1+r.IntN(20)))] = string(h.bytes(r, r.IntN(1000)))
		}
		b, _ := json.Marshal(doc)
		return b
	}
}

// identifyFrame is IDENTIFY with a length that is usually right, sometimes
// negative, huge, short or long.
func (h *hostile) identifyFrame(r *rand.Rand) []byte {
	body := h.identifyBody(r)
	n := uint32(len(body))
	switch r.IntN(10) {
	case 0:
		n = 0x80000000 | uint32(r.IntN(1<<20))
	case 1:
		n = uint32(1<<20 + r.IntN(1<<30))
	case 2:
		n = uint32(r.IntN(len(body) + 1))
	case 3:
		n = uint32(len(body) + 1 + r.IntN(100))
	}
	out := []byte("IDENTIFY\n")
	out = binary.BigEndian.AppendUint32(out, n)
	return append(out, body...)
}

// tcpSession: a magic (usually right), then a few random commands, one at a
// time, each answer read before the next.
func (h *hostile) tcpSession(r *rand.Rand, c net.Conn) {
	magic := []string{"  V1", "  V1", "  V1", "  V2", "V1  ", "\x00\x00\x00\x00", "  v1"}[r.IntN(7)]
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, magic); err != nil {
		h.count("tcp-command", "write-error")
		return
	}
	identified := false
	for range 1 + r.IntN(12) {
		var frame []byte
		kind := ""
		var topic, channel string
		checkable := false
		switch p := r.IntN(100); {
		case p < 30 || (!identified && p < 50):
			kind, frame = "IDENTIFY", h.identifyFrame(r)
		case p < 70:
			kind = []string{"REGISTER", "UNREGISTER"}[r.IntN(2)]
			params := []string{h.hostileName(r, false)}
			if r.IntN(2) == 0 {
				params = append(params, h.hostileName(r, true))
			}
			if r.IntN(15) == 0 {
				params = append(params, "x", "y")
			}
			if r.IntN(15) == 0 {
				params = nil
			}
			frame = []byte(kind + " " + strings.Join(params, " ") + "\n")
			checkable = identified && len(params) > 0 && len(params) <= 2 && !strings.ContainsAny(strings.Join(params, ""), " \t\r\n")
			if len(params) > 0 {
				topic = params[0]
			}
			if len(params) > 1 {
				channel = params[1]
			}
		case p < 80:
			kind, frame = "PING", []byte("PING\n")
		case p < 90:
			kind, frame = "random", append(append([]byte(nil), h.bytes(r, size(r, 8<<10))...), '\n')
		default:
			kind, frame = "long-line", []byte(strings.Repeat("REGISTER ", 1+r.IntN(2000)))
		}
		h.triedFrame(frame)
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(frame); err != nil {
			h.count("tcp-command", kind+":closed")
			return
		}
		reply, err := tcpReply(c)
		if err != nil {
			if strings.HasPrefix(err.Error(), "frame of") {
				h.violate("TCP %s answered with a %v", kind, err)
			}
			h.count("tcp-command", kind+":"+map[bool]string{true: "silent", false: "closed"}[isTimeout(err)])
			return
		}
		rc := replyClass(reply)
		h.count("tcp-command", kind+":"+rc)
		if kind == "IDENTIFY" && rc == "identified" {
			identified = true
		}
		if kind == "REGISTER" && checkable && rc == "OK" &&
			(!nsq.IsValidTopicName(topic) || (channel != "" && !nsq.IsValidChannelName(channel))) {
			h.violate("TCP REGISTER %.200q %.200q answered OK", topic, channel)
		}
	}
}

// tcpFlood: a valid IDENTIFY, then hundreds of pipelined REGISTERs of pool
// names (some repeated), then every answer.
func (h *hostile) tcpFlood(r *rand.Rand, c net.Conn) {
	body, _ := json.Marshal(map[string]any{"broadcast_address": "hflood." + strconv.Itoa(r.IntN(1000)), "hostname": "hflood",
		"tcp_port": 1 + r.IntN(65535), "http_port": 1 + r.IntN(65535), "version": "1.3.0"})
	frame := []byte("  V1IDENTIFY\n")
	frame = binary.BigEndian.AppendUint32(frame, uint32(len(body)))
	frame = append(frame, body...)
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write(frame); err != nil {
		h.count("tcp-flood", "closed")
		return
	}
	if reply, err := tcpReply(c); err != nil || replyClass(reply) != "identified" {
		h.count("tcp-flood", "identify-refused")
		return
	}
	n := 50 + r.IntN(250)
	var buf []byte
	for range n {
		t, ch := poolTopic(r), ""
		if r.IntN(2) == 0 {
			ch = poolChannel(r)
		}
		h.tried(t, ch)
		buf = append(buf, "REGISTER "+strings.TrimSpace(t+" "+ch)+"\n"...)
	}
	go func() { _, _ = c.Write(buf) }()
	for i := 0; i < n; i++ {
		reply, err := tcpReply(c)
		if err != nil {
			h.count("tcp-flood", fmt.Sprintf("cut-after-%s", bucket(i)))
			return
		}
		h.count("tcp-flood-reply", replyClass(reply))
	}
	h.count("tcp-flood", "all-answered")
}

func bucket(i int) string {
	switch {
	case i == 0:
		return "0"
	case i < 100:
		return "<100"
	default:
		return ">=100"
	}
}

// ---------------------------------------------------------------------------
// Raft port

// raftOne connects to a random node's Raft port from loopback.
func (h *hostile) raftOne(r *rand.Rand) {
	n := h.node(r)
	switch p := r.IntN(100); {
	case p < 15:
		kind := byte(r.IntN(256))
		for kind == muxRaft || kind == muxRPC {
			kind = byte(r.IntN(256))
		}
		h.count("raft-kind", rawPortExchange(n.RaftAddr(), append([]byte{kind}, h.bytes(r, size(r, 64<<10))...)))
	case p < 30:
		h.count("raft-stream", rawPortExchange(n.RaftAddr(), append([]byte{muxRaft}, h.bytes(r, size(r, 64<<10))...)))
	case p < 40:
		h.count("rpc-garbage", rawPortExchange(n.RaftAddr(), append([]byte{muxRPC}, h.bytes(r, 1+size(r, 64<<10))...)))
	case p < 85:
		h.forgedApply(r, n)
	default:
		h.rpcOther(r, n)
	}
}

// rawPortExchange writes b (stream-kind byte included) to a Raft port and
// reports what came back.
func rawPortExchange(addr string, b []byte) string {
	c, err := net.DialTimeout("tcp", addr, rawTimeout)
	if err != nil {
		return "dial-error"
	}
	defer c.Close()
	out := rawWriteRead(c, b, time.Second)
	if out == "answered-closed" {
		// An HTTP 400 from the RPC server, or raft's error reply.
		return "answered"
	}
	return out
}

// forgedBatch returns a forged /rpc/apply body and its kind. Every one of
// them is a batch the leader must refuse; none of them names only the
// origin's own sessions (those the RPC admits from loopback by design).
func (h *hostile) forgedBatch(r *rand.Rand) ([]byte, string) {
	members := []string{"n1", "n2", "n3"}
	origin := members[r.IntN(3)]
	other := members[r.IntN(3)]
	for other == origin {
		other = members[r.IntN(3)]
	}
	inc, seq := r.Uint64(), r.Uint64()
	own := fsm.SessionID{Owner: origin, Incarnation: inc, Seq: r.Uint64N(100)}
	foreign := fsm.SessionID{Owner: other, Incarnation: r.Uint64(), Seq: r.Uint64N(100)}
	peer := fsm.PeerInfo{RemoteAddress: "127.0.0.1:1", BroadcastAddress: "forged", TCPPort: 1, HTTPPort: 2, Version: "1.3.0"}
	// Innocent commands mixed in: a forged batch is refused whole.
	filler := []fsm.Command{
		{Op: fsm.OpCreateTopic, Topic: "hforged"},
		{Op: fsm.OpCreateChannel, Topic: "hforged", Channel: "c0"},
		{Op: fsm.OpOpenSession, Session: own, Peer: peer, Time: 1},
		{Op: fsm.OpRegister, Session: own, Topic: "hforged"},
	}
	var bad fsm.Command
	kind := ""
	switch r.IntN(12) {
	case 0:
		kind, bad = "foreign-open", fsm.Command{Op: fsm.OpOpenSession, Session: foreign, Peer: peer, Time: 1}
	case 1:
		kind, bad = "foreign-register", fsm.Command{Op: fsm.OpRegister, Session: foreign, Topic: "hforged", Channel: "c1"}
	case 2:
		kind, bad = "foreign-close", fsm.Command{Op: fsm.OpCloseSession, Session: foreign}
	case 3:
		kind, bad = "foreign-close-owner", fsm.Command{Op: fsm.OpCloseOwner, Session: fsm.SessionID{Owner: other, Incarnation: r.Uint64()}}
	case 4:
		kind, bad = "foreign-renew", fsm.Command{Op: fsm.OpRenewLease, Session: fsm.SessionID{Owner: other, Incarnation: r.Uint64()}, Time: 1}
	case 5:
		kind, bad = "foreign-member", fsm.Command{Op: fsm.OpSetMember, Member: fsm.Member{ID: other, RaftAddress: "127.0.0.1:1", HTTPAddress: "127.0.0.1:2", TCPAddress: "127.0.0.1:3"}}
	case 6:
		kind, bad = "expire-lease", fsm.Command{Op: fsm.OpExpireLease, Session: fsm.SessionID{Owner: other, Incarnation: r.Uint64()}, RenewIndex: r.Uint64()}
	case 7:
		kind, bad = "expire-owner", fsm.Command{Op: fsm.OpExpireOwner, Session: fsm.SessionID{Owner: other, Incarnation: r.Uint64()}}
	case 8:
		kind, bad = "remove-member", fsm.Command{Op: fsm.OpRemoveMember, Member: fsm.Member{ID: other}}
	case 9:
		inner := fsm.Command{Op: fsm.OpBatch, Session: fsm.SessionID{Owner: origin, Incarnation: inc}, BatchSeq: seq,
			Batch: []fsm.Command{{Op: fsm.OpCreateTopic, Topic: "hnested"}}}
		return nestedBatch(origin, inner), "nested"
	case 10:
		// Not a batch at all.
		cmds := []fsm.Command{{Op: fsm.OpCreateTopic, Topic: "hforged"}, {Op: fsm.OpRemoveMember, Member: fsm.Member{ID: other}},
			{Op: fsm.OpExpireLease, Session: fsm.SessionID{Owner: other, Incarnation: 1}}}
		return mustEncode(cmds[r.IntN(len(cmds))]), "not-a-batch"
	default:
		// Garbage that claims to be a batch: truncated, trailing bytes, a
		// wrong version, a count far beyond the bytes.
		b := mustEncode(fsm.Command{Op: fsm.OpBatch, Session: own, BatchSeq: seq, Batch: filler[:1]})
		switch r.IntN(4) {
		case 0:
			return b[:r.IntN(len(b))], "truncated"
		case 1:
			return append(b, h.bytes(r, 1+r.IntN(100))...), "trailing"
		case 2:
			b = append([]byte(nil), b...)
			b[0] = byte(2 + r.IntN(250))
			return b, "version"
		default:
			hdr := []byte{fsm.Version, byte(fsm.OpBatch), 2, 'n', '1', 1, 1}
			hdr = binary.AppendUvarint(hdr, 1<<62)
			return append(hdr, h.bytes(r, r.IntN(1000))...), "count"
		}
	}
	cmds := append([]fsm.Command(nil), filler[:r.IntN(len(filler)+1)]...)
	cmds = slices.Insert(cmds, r.IntN(len(cmds)+1), bad)
	b, err := (&fsm.Command{Op: fsm.OpBatch, Session: fsm.SessionID{Owner: origin, Incarnation: inc}, BatchSeq: seq, Batch: cmds}).Encode()
	if err != nil {
		// The encoder refuses what can never apply; its refusal is not
		// the leader's, so send the bytes of a plain forgery instead.
		return mustEncode(fsm.Command{Op: fsm.OpBatch, Session: fsm.SessionID{Owner: origin, Incarnation: inc}, BatchSeq: seq,
			Batch: []fsm.Command{{Op: fsm.OpRemoveMember, Member: fsm.Member{ID: other}}}}), "remove-member"
	}
	return b, kind
}

// forgedApply POSTs a forged batch on an RPC stream; anything but a
// refusal is a violation.
func (h *hostile) forgedApply(r *rand.Rand, n *Node) {
	body, kind := h.forgedBatch(r)
	if r.IntN(40) == 0 {
		body, kind = h.bytes(r, fsm.MaxEntryBytes+1+r.IntN(1<<20)), "oversized"
	}
	res := rpcCall(n.RaftAddr(), nil, nil, "POST", "/rpc/apply", body)
	outcome := "no-answer"
	if res.Err == nil {
		outcome = strconv.Itoa(res.Status)
	}
	h.count("rpc-forged", kind+":"+outcome)
	if res.Err == nil && res.Status/100 == 2 {
		h.violate("forged batch (%s) accepted by %s: %s", kind, n.ID, res)
	}
}

// rpcOther: the other RPC paths with bodies they refuse, reads, and unknown
// paths and methods.
func (h *hostile) rpcOther(r *rand.Rand, n *Node) {
	method, path := "GET", ""
	var body []byte
	switch r.IntN(5) {
	case 0:
		method, path = "POST", []string{"/rpc/join", "/rpc/leave", "/rpc/transfer"}[r.IntN(3)]
		body = h.badAdminBody(r)
	case 1:
		path = []string{"/rpc/status", "/rpc/read-index"}[r.IntN(2)]
	case 2:
		method, path = httpMethods[r.IntN(len(httpMethods))], []string{"/rpc/apply", "/rpc/status", "/rpc/join"}[r.IntN(3)]
		if method == "POST" || method == "GET" || method == "HEAD" || method == "get" {
			method = "PUT"
		}
	default:
		path = h.randomPath(r)
		if len(path) > 8<<10 {
			path = path[:8<<10]
		}
	}
	res := rpcCall(n.RaftAddr(), nil, nil, method, path, body)
	outcome := "no-answer"
	if res.Err == nil {
		outcome = strconv.Itoa(res.Status)
	}
	class := "rpc-read"
	if method != "GET" {
		class = "rpc-other"
	}
	h.count(class, outcome)
	if method == "POST" && res.Err == nil && res.Status/100 == 2 {
		h.violate("POST %s with a malformed body accepted by %s: %s", path, n.ID, res)
	}
}

// ---------------------------------------------------------------------------
// from a non-member, non-loopback address

// remoteOne sends, from h.src, requests that loopback would be allowed to
// make: each must be refused.
func (h *hostile) remoteOne(r *rand.Rand) {
	n := h.node(r)
	switch r.IntN(5) {
	case 4:
		// A leader's AppendEntries of a higher term: raft would write it.
		st, err := n.Status()
		if err != nil {
			h.count("remote-raft", "no-status")
			return
		}
		resp, err := forgedAppend(n.RaftAddr(), h.src, st.Term+1, st.LastLogIndex, st.Term,
			mustEncode(fsm.Command{Op: fsm.OpCreateTopic, Topic: "hremote_raft"}))
		if err == nil {
			h.count("remote-raft", "answered")
			h.violate("remote AppendEntries answered by %s: %+v", n.ID, resp)
			return
		}
		h.count("remote-raft", "refused")
	case 0:
		res := rpcCall(n.RaftAddr(), h.src, nil, "POST", "/rpc/apply", forgedCreate("hremote"))
		h.count("remote-rpc", res.statusOr())
		if res.Err != nil || res.Status != http.StatusForbidden {
			h.violate("remote forged batch on %s: %s; want 403", n.ID, res)
		}
	case 1:
		path := []string{"/rpc/leave", "/rpc/transfer", "/rpc/status", "/rpc/read-index"}[r.IntN(4)]
		method := "POST"
		if strings.HasSuffix(path, "status") || strings.HasSuffix(path, "index") {
			method = "GET"
		}
		res := rpcCall(n.RaftAddr(), h.src, nil, method, path, []byte(`{"id":"n2"}`))
		h.count("remote-rpc", res.statusOr())
		if res.Err != nil || res.Status != http.StatusForbidden {
			h.violate("remote %s %s on %s: %s; want 403", method, path, n.ID, res)
		}
	case 2:
		path := []string{"/cluster/join", "/cluster/leave", "/cluster/transfer-leadership"}[r.IntN(3)]
		body := []string{`{"id":"evil","raft_address":"127.0.0.1:1"}`, `{"id":"n2"}`, ``}[r.IntN(3)]
		res, err := httpFrom(h.src, "POST", "http://"+n.HTTPAddr()+path, []byte(body), nil)
		h.count("remote-admin", outcomeOf(res, err))
		if err != nil || res.Status != http.StatusForbidden {
			h.violate("remote POST %s %s on %s: %s %v; want 403", path, body, n.ID, httpSummary(res), err)
		}
	default:
		path := httpPrivate[r.IntN(len(httpPrivate))]
		res, err := httpFrom(h.src, "GET", "http://"+n.HTTPAddr()+path, nil, nil)
		h.count("remote-pprof", outcomeOf(res, err))
		if err != nil || res.Status == http.StatusOK {
			h.violate("remote GET %s on %s: %s %v; want it refused", path, n.ID, httpSummary(res), err)
		}
	}
}

func (r rpcResult) statusOr() string {
	if r.Err != nil {
		return "no-answer"
	}
	return strconv.Itoa(r.Status)
}

// hostileSeed is E2E_HOSTILE_SEED, or a fresh seed.
func hostileSeed() uint64 {
	if s := os.Getenv("E2E_HOSTILE_SEED"); s != "" {
		if v, err := strconv.ParseUint(s, 10, 64); err == nil {
			return v
		}
	}
	return uint64(time.Now().UnixNano())
}
