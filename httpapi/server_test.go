package httpapi

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/raftlookupd/raftlookupd/fsm"
	"github.com/raftlookupd/raftlookupd/wire"
)

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig invalid: %v", err)
	}
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string // substring of the error; "" = valid
	}{
		{"zero tombstone lifetime ok", func(c *Config) { c.TombstoneLifetime = 0 }, ""},
		{"token ok", func(c *Config) { c.AdminToken = "abc-DEF_123.~" }, ""},
		{"empty address", func(c *Config) { c.Address = "" }, "address"},
		{"zero inactive timeout", func(c *Config) { c.InactiveProducerTimeout = 0 }, "inactive producer timeout"},
		{"negative tombstone", func(c *Config) { c.TombstoneLifetime = -time.Second }, "tombstone lifetime"},
		{"bad consistency", func(c *Config) { c.DefaultConsistency = "strong" }, "consistency"},
		{"empty consistency", func(c *Config) { c.DefaultConsistency = "" }, "consistency"},
		{"zero write timeout", func(c *Config) { c.WriteTimeout = 0 }, "write timeout"},
		{"empty version", func(c *Config) { c.Version = "" }, "version"},
		{"token with newline", func(c *Config) { c.AdminToken = "abc\n" }, "admin token"},
		{"token with spaces", func(c *Config) { c.AdminToken = " abc" }, "admin token"},
		{"token non-ascii", func(c *Config) { c.AdminToken = "äbc" }, "admin token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mutate(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Validate = %v, want an error about %q", err, tc.want)
			}
		})
	}
	// All problems at once.
	c := Config{}
	if err := c.Validate(); err == nil || strings.Count(err.Error(), "\n") < 4 {
		t.Errorf("Validate of zero Config = %v, want every problem listed", err)
	}
}

func TestNewRejects(t *testing.T) {
	reg := newFakeRegistry()
	cl := newFakeCluster(reg)
	bad := DefaultConfig()
	bad.WriteTimeout = 0
	if _, err := New(bad, reg, cl, nil); err == nil {
		t.Error("New accepted an invalid config")
	}
	cfg := DefaultConfig()
	cfg.Address = "127.0.0.1:0"
	if _, err := New(cfg, nil, cl, nil); err == nil {
		t.Error("New accepted a nil registry")
	}
	if _, err := New(cfg, reg, nil, nil); err == nil {
		t.Error("New accepted a nil cluster")
	}
	// A port in use is a startup error.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg.Address = ln.Addr().String()
	if _, err := New(cfg, reg, cl, nil); err == nil {
		t.Error("New bound an address already in use")
	}
}

func TestLifecycle(t *testing.T) {
	reg := newFakeRegistry()
	s := newTestServer(t, reg, newFakeCluster(reg), nil, func(c *Config) { c.DefaultConsistency = wire.Stale })
	addr := s.Addr().String()
	if strings.HasSuffix(addr, ":0") {
		t.Fatalf("Addr %s: port not resolved", addr)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := newClient(tr)
	resp := doRequest(t, c, "http://"+addr, get("/ping"))
	if resp.status != 200 || resp.body != "OK" {
		t.Fatalf("/ping = %d %q", resp.status, resp.body)
	}
	// Nor may a connection that has sent nothing: net/http's own Shutdown
	// waits five seconds for one. The server accepts in order, so once a
	// request on a later connection is answered, the silent one is accepted.
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	later := &http.Transport{}
	if resp := doRequest(t, newClient(later), "http://"+addr, get("/ping")); resp.status != 200 {
		t.Fatalf("/ping on a later connection = %d", resp.status)
	}
	later.CloseIdleConnections()
	// An idle keep-alive connection must not hold Shutdown up.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve returned %v after Shutdown, want nil", err)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	if conn, err := net.Dial("tcp", addr); err == nil {
		conn.Close()
		t.Error("listener still accepting after Shutdown")
	}
}

func TestShutdownBeforeServe(t *testing.T) {
	reg := newFakeRegistry()
	s := newTestServer(t, reg, newFakeCluster(reg), nil)
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if conn, err := net.Dial("tcp", s.Addr().String()); err == nil {
		conn.Close()
		t.Error("listener still open after Shutdown without Serve")
	}
	if err := s.Serve(); err != nil {
		t.Errorf("Serve after Shutdown = %v, want nil", err)
	}
}

// Shutdown waits for a request in flight, and the request completes.
func TestShutdownWaitsForRequests(t *testing.T) {
	reg := newFakeRegistry()
	bc := &blockingCluster{fakeCluster: newFakeCluster(reg), entered: make(chan struct{}), release: make(chan struct{})}
	s := newTestServer(t, reg, bc, nil)
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	addr := s.Addr().String()

	got := make(chan string, 1)
	go func() {
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		resp, err := newClient(tr).Post("http://"+addr+"/topic/create?topic=a", "", nil)
		if err != nil {
			got <- err.Error()
			return
		}
		resp.Body.Close()
		got <- resp.Status
	}()
	<-bc.entered
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	// Once the listener is closed, Shutdown is under way.
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("listener still open 5s after Shutdown started")
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v while a request was in flight", err)
	case r := <-got:
		t.Fatalf("request finished while held: %s", r)
	default:
	}
	close(bc.release)
	if r := <-got; r != "200 OK" {
		t.Errorf("in-flight request: %s", r)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// blockingCluster holds every Propose until release is closed.
type blockingCluster struct {
	*fakeCluster
	entered chan struct{}
	release chan struct{}
}

func (b *blockingCluster) Propose(ctx context.Context, cmd fsm.Command) error {
	close(b.entered)
	<-b.release
	return b.fakeCluster.Propose(ctx, cmd)
}

// syncBuffer is a log sink written by server goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// With debug logging on, requests go through the access log's writer
// wrapper; responses must be unchanged and the status logged.
func TestAccessLog(t *testing.T) {
	var buf syncBuffer
	logger := hclog.New(&hclog.LoggerOptions{Name: "test", Output: &buf, Level: hclog.Debug})
	reg := newFakeRegistry()
	cl := newFakeCluster(reg)
	e := newServeEnv(t, newTestServer(t, reg, cl, logger))
	e.reg, e.cl = reg, cl
	if resp := e.do(post("/topic/create?topic=a")); resp.status != 200 || resp.header.Get("Content-Length") != "0" ||
		resp.header.Get("Content-Type") != "" {
		t.Errorf("POST through access log: %d %v", resp.status, resp.header)
	}
	if resp := e.do(request{method: "OPTIONS", target: "/lookup"}); resp.status != 200 || resp.header.Get("Allow") != "GET, OPTIONS" {
		t.Errorf("OPTIONS through access log: %d %v", resp.status, resp.header)
	}
	if resp := e.do(get("/lookup?topic=nope")); resp.status != 404 {
		t.Errorf("lookup: %d", resp.status)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(buf.String(), "status=404") || !strings.Contains(buf.String(), "test.http") {
		if time.Now().After(deadline) {
			t.Fatalf("no access log line with status=404 from logger test.http:\n%s", buf.String())
		}
		time.Sleep(time.Millisecond)
	}
	if !strings.Contains(buf.String(), "registry changed") {
		t.Errorf("successful mutation not logged:\n%s", buf.String())
	}
}

// A Shutdown whose context ends drops the connections still open and
// reports the context's error.
func TestShutdownDeadline(t *testing.T) {
	reg := newFakeRegistry()
	bc := &blockingCluster{fakeCluster: newFakeCluster(reg), entered: make(chan struct{}), release: make(chan struct{})}
	defer close(bc.release)
	s := newTestServer(t, reg, bc, nil)
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	got := make(chan error, 1)
	go func() {
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		resp, err := newClient(tr).Post("http://"+s.Addr().String()+"/topic/create?topic=a", "", nil)
		if err == nil {
			resp.Body.Close()
		}
		got <- err
	}()
	<-bc.entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown with an ended context = %v, want context.Canceled", err)
	}
	if err := <-got; err == nil {
		t.Error("held request got a response; its connection should have been closed")
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
}
