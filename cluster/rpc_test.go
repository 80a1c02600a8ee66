package cluster

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/raftlookupd/raftlookupd/fsm"
)

// countingReader counts what the server read of a request body.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// The RPC refuses a non-member, a missing token and an oversized batch
// before it reads a byte of the body; none of these reaches Raft (this
// node has none: reaching it would panic).
func TestRPCRefusesBeforeReading(t *testing.T) {
	newNode := func(token string) *Node {
		return &Node{
			cfg:    Config{AdminToken: token, WriteTimeout: 1e9},
			logger: hclog.NewNullLogger(),
			members: &memberIPs{servers: func() map[string]string { return map[string]string{"n1": "10.0.0.1:4162"} },
				resolve: func(string) ([]net.IP, error) { return nil, nil }},
		}
	}
	for _, tc := range []struct {
		name, token, remote, auth string
		length                    int64
		status                    int
	}{
		{"non-member", "", "192.0.2.9:1000", "", 100, http.StatusForbidden},
		{"member without the token", "tok", "10.0.0.1:1000", "", 100, http.StatusForbidden},
		{"member with a wrong token", "tok", "10.0.0.1:1000", "Bearer nope", 100, http.StatusForbidden},
		{"member, batch too large", "", "10.0.0.1:1000", "", fsm.MaxEntryBytes + 1, http.StatusRequestEntityTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newNode(tc.token)
			s := newRPCServer(n, nil, hclog.NewNullLogger())
			body := &countingReader{r: bytes.NewReader(make([]byte, 100))}
			req := httptest.NewRequest(http.MethodPost, rpcApply, body)
			req.ContentLength = tc.length
			req.RemoteAddr = tc.remote
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			w := httptest.NewRecorder()
			s.srv.Handler.ServeHTTP(w, req)
			if w.Code != tc.status {
				t.Fatalf("status %d %s, want %d", w.Code, w.Body, tc.status)
			}
			if body.n != 0 {
				t.Fatalf("the server read %d bytes of a refused request", body.n)
			}
		})
	}
	// The client port's paths do not exist here, nor does a GET of apply.
	s := newRPCServer(newNode(""), nil, hclog.NewNullLogger())
	for _, target := range []string{"/cluster/apply", "/cluster/status", "/lookup"} {
		req := httptest.NewRequest(http.MethodGet, target, strings.NewReader(""))
		req.RemoteAddr = "127.0.0.1:1"
		w := httptest.NewRecorder()
		s.srv.Handler.ServeHTTP(w, req)
		if w.Code != http.StatusNotFound {
			t.Errorf("GET %s on the RPC: %d, want 404", target, w.Code)
		}
	}
}

// TestRPCShutdownClosesSilentConnections: a member's connection that has
// sent no request yet does not hold a stopping node up. net/http alone
// waits five seconds for one; a drained node then lingered that long
// before it exited.
func TestRPCShutdownClosesSilentConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := newRPCServer(&Node{}, ln, hclog.NewNullLogger())
	served := make(chan struct{})
	go func() { s.serve(); close(served) }()

	silent, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	// Connections are accepted in order: once a later one is answered,
	// the silent one is open on the server.
	resp, err := http.Get("http://" + ln.Addr().String() + "/no-such-path")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := s.shutdown(ctx); err != nil {
		t.Fatalf("shutdown with a silent connection open: %v, want nil", err)
	}
	<-served
}
