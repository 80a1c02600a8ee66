package graceful

import (
	"context"
	"io"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"
)

// serve starts srv on a loopback listener and returns its address and a
// channel that reports Serve's return.
func serve(t *testing.T, srv *http.Server) (string, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), done
}

// TestShutdownClosesSilentConnections: a connection that sent nothing does
// not hold Shutdown up. A plain http.Server.Shutdown waits five seconds for
// it, so with a two-second deadline it fails; with Conns it returns nil.
func TestShutdownClosesSilentConnections(t *testing.T) {
	seen := make(chan struct{}, 1)
	srv := &http.Server{Handler: http.NotFoundHandler(), ConnState: func(net.Conn, http.ConnState) {
		select {
		case seen <- struct{}{}:
		default:
		}
	}}
	conns := Track(srv)
	addr, served := serve(t, srv)

	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	<-seen // the server accepted it (and the earlier hook still runs)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := conns.Shutdown(ctx, srv); err != nil {
		t.Fatalf("Shutdown with a silent connection open: %v, want nil", err)
	}
	if err := <-served; err != http.ErrServerClosed {
		t.Fatalf("Serve returned %v, want http.ErrServerClosed", err)
	}
	silent.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := silent.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("the silent connection read %d bytes, %v; want it closed (EOF)", n, err)
	}
}

// TestShutdownLetsRequestsFinish: a request in progress is answered before
// Shutdown returns; only connections without a request are cut.
func TestShutdownLetsRequestsFinish(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "done")
	})}
	conns := Track(srv)
	addr, _ := serve(t, srv)

	got := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/")
		if err != nil {
			got <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- string(b)
	}()
	<-started
	shut := make(chan error, 1)
	go func() { shut <- conns.Shutdown(context.Background(), srv) }()
	// Shutdown has begun once the listener refuses new connections.
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the listener still accepts 10s after Shutdown began")
		}
		runtime.Gosched()
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v while a request was in progress", err)
	default:
	}
	close(release)
	if b := <-got; b != "done" {
		t.Fatalf("the request in progress got %q, want its answer", b)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}
