package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// testEnv is a Server on a real :0 listener (so Content-Length and framing
// are net/http's, as clients see them) backed by the fakes.
type testEnv struct {
	t      *testing.T
	srv    *Server
	reg    *fakeRegistry
	cl     *fakeCluster
	base   string
	client *http.Client
}

func newTestEnv(t *testing.T, opts ...func(*Config)) *testEnv {
	t.Helper()
	reg := newFakeRegistry()
	cl := newFakeCluster(reg)
	e := newServeEnv(t, newTestServer(t, reg, cl, nil, opts...))
	e.reg, e.cl = reg, cl
	return e
}

// newTestServer builds a Server on a free loopback port with the default
// config, changed by opts; it does not serve.
func newTestServer(t testing.TB, reg Registry, cl Cluster, logger hclog.Logger, opts ...func(*Config)) *Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Address = "127.0.0.1:0"
	for _, o := range opts {
		o(&cfg)
	}
	s, err := New(cfg, reg, cl, logger)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// newServeEnv serves s until the test ends.
func newServeEnv(t *testing.T, s *Server) *testEnv {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	tr := &http.Transport{}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &testEnv{t: t, srv: s, base: "http://" + s.Addr().String(), client: newClient(tr)}
}

// newClient never follows redirects: the redirects are what is tested.
func newClient(tr http.RoundTripper) *http.Client {
	return &http.Client{
		Transport:     tr,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

type response struct {
	status int
	header http.Header
	body   string
}

// request is one HTTP request; headers are "Key: value" strings.
type request struct {
	method string
	target string // path and query, sent exactly as written
	body   string
	header []string
}

func doRequest(t *testing.T, c *http.Client, base string, rq request) response {
	t.Helper()
	var body io.Reader
	if rq.body != "" {
		body = strings.NewReader(rq.body)
	}
	req, err := http.NewRequest(rq.method, base+"/", body)
	if err != nil {
		t.Fatalf("NewRequest: %v", err)
	}
	// Set the raw target by hand so bad escapes and odd paths reach the
	// server unchanged.
	path, query, _ := strings.Cut(rq.target, "?")
	req.URL.Path = path
	req.URL.RawPath = ""
	req.URL.RawQuery = query
	req.URL.Opaque = path // sent as the request line's origin-form target
	for _, h := range rq.header {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(k, strings.TrimSpace(v))
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", rq.method, rq.target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", rq.method, rq.target, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func (e *testEnv) do(rq request) response {
	e.t.Helper()
	return doRequest(e.t, e.client, e.base, rq)
}

func get(target string, header ...string) request {
	return request{method: http.MethodGet, target: target, header: header}
}

func post(target string) request {
	return request{method: http.MethodPost, target: target}
}

// canonJSON re-encodes a JSON document keeping object key order (field order
// is part of the contract) but sorting every array, because nsqlookupd's list
// order is random. /nodes' parallel tombstones array is paired with topics
// before sorting so the pairing is still compared. Values of volatile keys
// are replaced.
func canonJSON(t *testing.T, raw string, volatile func(key, val string) bool) string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	n, err := parseJSON(dec)
	if err != nil {
		t.Fatalf("canonJSON(%q): %v", raw, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("canonJSON(%q): data after the document", raw)
	}
	return n.render(volatile)
}

type jnode struct {
	scalar string   // encoded scalar, when neither object nor array
	object bool     // keys/vals hold the members, in order
	array  bool     // elems hold the elements
	keys   []string // object member names
	vals   []*jnode
	elems  []*jnode
}

func parseJSON(dec *json.Decoder) (*jnode, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok := tok.(type) {
	case json.Delim:
		n := &jnode{object: tok == '{', array: tok == '['}
		for dec.More() {
			if n.object {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				n.keys = append(n.keys, kt.(string))
			}
			v, err := parseJSON(dec)
			if err != nil {
				return nil, err
			}
			if n.object {
				n.vals = append(n.vals, v)
			} else {
				n.elems = append(n.elems, v)
			}
		}
		if _, err := dec.Token(); err != nil {
			return nil, err
		}
		return n, nil
	case nil:
		return &jnode{scalar: "null"}, nil
	}
	b, err := json.Marshal(tok)
	return &jnode{scalar: string(b)}, err
}

func (n *jnode) member(key string) *jnode {
	for i, k := range n.keys {
		if k == key {
			return n.vals[i]
		}
	}
	return nil
}

func (n *jnode) render(volatile func(key, val string) bool) string {
	switch {
	case n.object:
		topics, tombs := n.member("topics"), n.member("tombstones")
		var parts []string
		for i, k := range n.keys {
			v := n.vals[i]
			if k == "tombstones" && topics != nil && tombs != nil && topics.array && tombs.array &&
				len(topics.elems) == len(tombs.elems) {
				paired := &jnode{array: true}
				for j := range tombs.elems {
					paired.elems = append(paired.elems, &jnode{scalar: strconv.Quote(
						topics.elems[j].render(nil) + "=" + tombs.elems[j].render(nil))})
				}
				v = paired
			}
			val := v.render(volatile)
			if volatile != nil && volatile(k, val) {
				val = `"<volatile>"`
			}
			kb, _ := json.Marshal(k)
			parts = append(parts, string(kb)+":"+val)
		}
		return "{" + strings.Join(parts, ",") + "}"
	case n.array:
		parts := make([]string, len(n.elems))
		for i, e := range n.elems {
			parts[i] = e.render(volatile)
		}
		sort.Strings(parts)
		return "[" + strings.Join(parts, ",") + "]"
	}
	return n.scalar
}
