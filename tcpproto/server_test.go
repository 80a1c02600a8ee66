package tcpproto

import (
	"context"
	"errors"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftlookupd/raftlookupd/fsm"
)

// TestCloseSessionExactlyOnce ends an identified connection in every way
// there is and checks that its session is closed exactly once, even after
// the server shuts down too.
func TestCloseSessionExactlyOnce(t *testing.T) {
	ends := []struct {
		name string
		end  func(t *testing.T, s *Server, c *client)
	}{
		{"client EOF", func(t *testing.T, s *Server, c *client) {
			c.nc.CloseWrite()
			c.expectClosed()
		}},
		{"client reset", func(t *testing.T, s *Server, c *client) {
			c.nc.SetLinger(0)
			c.nc.Close()
		}},
		{"partial line then EOF", func(t *testing.T, s *Server, c *client) {
			c.writeString("REGISTER t")
			c.nc.CloseWrite()
			c.expectClosed()
		}},
		{"error reply", func(t *testing.T, s *Server, c *client) {
			c.writeString("NOPE\n")
			c.expect("E_INVALID invalid command NOPE")
			c.expectClosed()
		}},
		{"CloseConnections", func(t *testing.T, s *Server, c *client) {
			s.CloseConnections()
			c.expectClosed()
		}},
		{"Shutdown", func(t *testing.T, s *Server, c *client) {
			if err := s.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range ends {
		t.Run(tc.name, func(t *testing.T) {
			s, reg := startServer(t, nil)
			c := identified(t, s.Addr())
			c.writeString("REGISTER t c\n")
			c.expect("OK")
			tc.end(t, s, c)
			reg.waitFor(t, "close", func(calls []call) bool { return countOp(calls, "close") >= 1 })
			if err := s.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			closes := reg.ops("close")
			if len(closes) != 1 || closes[0].ID != reg.ops("open")[0].ID {
				t.Fatalf("closes = %+v, want exactly one for the opened session", closes)
			}
			if n := s.Connections(); n != 0 {
				t.Errorf("Connections() = %d after Shutdown", n)
			}
		})
	}
}

func TestCloseConnectionsKeepsServing(t *testing.T) {
	s, reg := startServer(t, nil)
	a := identified(t, s.Addr())
	b := identified(t, s.Addr())
	quiet := dial(t, s.Addr()) // never sends the magic
	pinged := dial(t, s.Addr())
	pinged.writeString(magicV1 + "PING\n")
	pinged.expect("OK")
	eventually(t, "4 connections", func() bool { return s.Connections() == 4 })

	s.CloseConnections()
	for _, c := range []*client{a, b, quiet, pinged} {
		c.expectClosed()
	}
	reg.waitFor(t, "2 closes", func(calls []call) bool { return countOp(calls, "close") == 2 })
	eventually(t, "0 connections", func() bool { return s.Connections() == 0 })

	c := identified(t, s.Addr())
	c.writeString("PING\n")
	c.expect("OK")
	if n := s.Connections(); n != 1 {
		t.Errorf("Connections() = %d, want 1", n)
	}
}

// blockingRegistry holds CloseSession until released, to observe that
// Shutdown waits for cleanups.
type blockingRegistry struct {
	*fakeRegistry
	entered chan struct{}
	release chan struct{}
}

func (b *blockingRegistry) CloseSession(id fsm.SessionID) {
	b.entered <- struct{}{}
	<-b.release
	b.fakeRegistry.CloseSession(id)
}

func TestShutdownWaitsForCleanup(t *testing.T) {
	reg := &blockingRegistry{newFakeRegistry(), make(chan struct{}, 1), make(chan struct{})}
	s, err := New(testConfig(), reg, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	identified(t, s.Addr())

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with a cleanup pending = %v, want deadline exceeded", err)
	}
	<-reg.entered
	close(reg.release)
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	if n := countOp(reg.snapshot(), "close"); n != 1 {
		t.Fatalf("%d closes when Shutdown returned, want 1", n)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

func TestShutdownLifecycle(t *testing.T) {
	t.Run("idempotent and concurrent", func(t *testing.T) {
		s, reg := startServer(t, nil)
		identified(t, s.Addr())
		mid := dial(t, s.Addr())
		mid.write(cat(magicV1, identifyFrameN(100), "{")) // stuck in the body
		half := dial(t, s.Addr())
		half.writeString(" ") // stuck in the magic
		eventually(t, "3 connections", func() bool { return s.Connections() == 3 })

		var wg sync.WaitGroup
		errs := make(chan error, 3)
		for range 3 {
			wg.Go(func() { errs <- s.Shutdown(context.Background()) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("Shutdown: %v", err)
			}
		}
		// Shutdown returned, so every cleanup already ran.
		if n := countOp(reg.snapshot(), "close"); n != 1 {
			t.Errorf("%d closes, want 1", n)
		}
		if n := s.Connections(); n != 0 {
			t.Errorf("Connections() = %d", n)
		}
		mid.expectClosed()
		half.expectClosed()
		if _, err := net.DialTimeout("tcp", s.Addr().String(), testDeadline); err == nil {
			t.Error("listener still accepting after Shutdown")
		}
		if err := s.Serve(); err != nil {
			t.Errorf("Serve after Shutdown = %v, want nil", err)
		}
	})
	t.Run("before Serve", func(t *testing.T) {
		s, err := New(testConfig(), newFakeRegistry(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := s.Serve(); err != nil {
			t.Errorf("Serve after Shutdown = %v, want nil", err)
		}
	})
	t.Run("Serve twice", func(t *testing.T) {
		s, _ := startServer(t, nil)
		// The first Serve may not have started yet; a served connection
		// proves it has.
		c := dial(t, s.Addr())
		c.writeString(magicV1 + "PING\n")
		c.expect("OK")
		if err := s.Serve(); !errors.Is(err, ErrAlreadyServing) {
			t.Errorf("second Serve = %v, want ErrAlreadyServing", err)
		}
	})
}

func TestNewRejectsBadConfig(t *testing.T) {
	cfg := testConfig()
	cfg.MaxLineBytes = 10
	if _, err := New(cfg, newFakeRegistry(), nil); err == nil {
		t.Error("New accepted MaxLineBytes 10")
	}
	if _, err := New(testConfig(), nil, nil); err == nil {
		t.Error("New accepted a nil Registry")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := testConfig().Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}
	d := DefaultConfig()
	if d.Address != "0.0.0.0:4160" || d.Version != "1.3.0" || d.MaxConnections != 10000 ||
		d.MaxRegistrations != 100000 || d.MaxLineBytes != 4096 || d.MaxIdentifyBody != 65536 {
		t.Errorf("DefaultConfig = %+v", d)
	}
	bad := []struct {
		field  string
		mutate func(*Config)
	}{
		{"Address", func(c *Config) { c.Address = "" }},
		{"BroadcastAddress", func(c *Config) { c.BroadcastAddress = "" }},
		{"Version", func(c *Config) { c.Version = "" }},
		{"HTTPPort", func(c *Config) { c.HTTPPort = 70000 }},
		{"HTTPPort", func(c *Config) { c.HTTPPort = -1 }},
		{"MaxConnections", func(c *Config) { c.MaxConnections = 0 }},
		{"MaxRegistrations", func(c *Config) { c.MaxRegistrations = 1 }},
		{"MaxLineBytes", func(c *Config) { c.MaxLineBytes = 255 }},
		{"MaxIdentifyBody", func(c *Config) { c.MaxIdentifyBody = 1023 }},
		{"MaxIdentifyBody", func(c *Config) { c.MaxIdentifyBody = 1 << 31 }},
		{"WriteTimeout", func(c *Config) { c.WriteTimeout = 0 }},
	}
	for _, b := range bad {
		cfg := testConfig()
		b.mutate(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), b.field) {
			t.Errorf("%s: Validate() = %v", b.field, err)
		}
	}
	// Every problem is reported at once.
	var zero Config
	if err := zero.Validate(); err == nil || strings.Count(err.Error(), "\n") < 5 {
		t.Errorf("zero Config: %v", err)
	}
}

func totalAlloc() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.TotalAlloc
}

// TestHugeBodySizeNotAllocated: nsqlookupd allocates the announced length
// before reading; a 2 GiB announcement must cost nothing here.
func TestHugeBodySizeNotAllocated(t *testing.T) {
	s, _ := startServer(t, nil)
	before := totalAlloc()
	for _, n := range []int32{1<<31 - 1, -1, -1 << 31} {
		c := dial(t, s.Addr())
		c.write(cat(magicV1, identifyFrameN(n), "{}"))
		got, err := c.readFrame()
		if err != nil || !strings.HasPrefix(got, "E_BAD_BODY IDENTIFY invalid body size ") {
			t.Fatalf("size %d: %q, %v", n, got, err)
		}
		c.expectClosed()
	}
	if d := totalAlloc() - before; d > 64<<20 {
		t.Errorf("allocated %d bytes for rejected body sizes", d)
	}
}

// TestEndlessLine: a client streaming a line without newline gets an error
// after MaxLineBytes, the server never buffers more, and another client is
// served all along.
func TestEndlessLine(t *testing.T) {
	s, reg := startServer(t, nil)
	other := identified(t, s.Addr())

	before := totalAlloc()
	flood := dial(t, s.Addr())
	// Hold a partial line open on the server while the other client is
	// served, then stream the rest.
	flood.writeString(magicV1 + strings.Repeat("x", 4000))
	for range 3 {
		other.writeString("PING\n")
		other.expect("OK")
	}
	written := make(chan int64, 1)
	go func() {
		chunk := []byte(strings.Repeat("x", 64<<10))
		var n int64
		flood.nc.SetWriteDeadline(time.Now().Add(testDeadline))
		for n < 32<<20 {
			m, err := flood.nc.Write(chunk)
			n += int64(m)
			if err != nil {
				break // the server hung up, as it should
			}
		}
		written <- n
	}()
	other.writeString("PING\n")
	other.expect("OK")
	flood.expect("E_INVALID line too long (max 4096 bytes)")
	flood.expectClosed()
	if n := <-written; n >= 32<<20 {
		t.Errorf("server kept reading: client wrote all %d bytes", n)
	}
	if d := totalAlloc() - before; d > 8<<20 {
		t.Errorf("allocated %d bytes while rejecting an endless line", d)
	}
	other.writeString("REGISTER t\n")
	other.expect("OK")
	if n := countOp(reg.snapshot(), "close"); n != 0 {
		t.Errorf("other session closed")
	}
}

func TestLimitsAtTheEdge(t *testing.T) {
	s, _ := startServer(t, func(c *Config) {
		c.MaxLineBytes = 256
		c.MaxIdentifyBody = 1024
	})
	t.Run("line of exactly MaxLineBytes", func(t *testing.T) {
		c := dial(t, s.Addr())
		line := "PING " + strings.Repeat("p", 256-len("PING \r\n")) + "\r\n"
		c.writeString(magicV1 + line + "PING\n")
		c.expect("OK")
		c.expect("OK")
	})
	t.Run("line one byte longer", func(t *testing.T) {
		c := dial(t, s.Addr())
		c.writeString(magicV1 + "PING " + strings.Repeat("p", 256-len("PING \n")+1) + "\n")
		c.expect("E_INVALID line too long (max 256 bytes)")
		c.expectClosed()
	})
	t.Run("body of exactly MaxIdentifyBody", func(t *testing.T) {
		c := dial(t, s.Addr())
		c.write(cat(magicV1, identifyFrame(nsqdBody+strings.Repeat(" ", 1024-len(nsqdBody)))))
		c.expect(identReply(s))
	})
	t.Run("body one byte larger", func(t *testing.T) {
		c := dial(t, s.Addr())
		c.write(cat(magicV1, identifyFrame(nsqdBody+strings.Repeat(" ", 1025-len(nsqdBody)))))
		c.expect("E_BAD_BODY IDENTIFY invalid body size 1025")
		c.expectClosed()
	})
}

func TestMaxRegistrations(t *testing.T) {
	s, reg := startServer(t, func(c *Config) { c.MaxRegistrations = 4 })
	c := identified(t, s.Addr())
	for _, cmd := range []string{
		"REGISTER t1 c1",   // t1, t1/c1
		"REGISTER t1 c2",   // + t1/c2
		"REGISTER t1",      // no new key
		"REGISTER t1 c1",   // no new key: nsqd re-sends after reconnects
		"REGISTER t2",      // + t2 = 4
		"UNREGISTER t1",    // drops t1 and its channels = 1
		"REGISTER t3 c3",   // 3
		"UNREGISTER t3 c3", // 2: the topic stays
		"REGISTER t4",      // 3
		"REGISTER t3 c5",   // 4
	} {
		c.writeString(cmd + "\n")
		c.expect("OK")
	}
	c.writeString("REGISTER t5\n")
	c.expect("E_INVALID too many registrations on this connection (max 4)")
	c.expectClosed()
	reg.waitFor(t, "close", func(calls []call) bool { return countOp(calls, "close") == 1 })
	for _, r := range reg.ops("register") {
		if r.Topic == "t5" {
			t.Error("over-limit REGISTER reached the Registry")
		}
	}
}

func TestMaxConnections(t *testing.T) {
	s, _ := startServer(t, func(c *Config) { c.MaxConnections = 2 })
	a := identified(t, s.Addr())
	b := dial(t, s.Addr())
	b.writeString(magicV1 + "PING\n")
	b.expect("OK")

	over := dial(t, s.Addr())
	over.expect("E_INVALID too many connections (max 2)")
	over.expectClosed()

	a.nc.Close()
	eventually(t, "a slot to free", func() bool { return s.Connections() == 1 })
	c := identified(t, s.Addr())
	c.writeString("PING\n")
	c.expect("OK")
	b.writeString("PING\n")
	b.expect("OK")
}
