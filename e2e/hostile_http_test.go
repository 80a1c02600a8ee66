package e2e

// The HTTP half of TestHostileClients' generators: random requests to the
// client port (paths, methods, queries, bodies, headers) and malformed raw
// requests, with the answers the cluster must never give.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nsqio/go-nsq"

	"github.com/raftlookupd/raftlookupd/fsm"
)

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
