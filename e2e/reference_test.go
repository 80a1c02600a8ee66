package e2e

import (
	"testing"
	"time"

	"github.com/nsqio/nsq/nsqlookupd"
)

// target is anything that speaks nsqlookupd's protocols: the in-process
// reference, a raftlookupd node (leader or follower).
type target interface {
	TCPAddr() string
	HTTPAddr() string
}

// timeouts are the two time options nsqlookupd and raftlookupd share.
type timeouts struct {
	Inactive  time.Duration // -inactive-producer-timeout
	Tombstone time.Duration // -tombstone-lifetime
}

// flags renders the timeouts as raftlookupd flags.
func (o timeouts) flags() []string {
	return []string{
		"-inactive-producer-timeout", o.Inactive.String(),
		"-tombstone-lifetime", o.Tombstone.String(),
	}
}

// reference is the real nsqlookupd 1.3.0 running in this process.
type reference struct {
	l *nsqlookupd.NSQLookupd
}

func (r *reference) TCPAddr() string  { return r.l.RealTCPAddr().String() }
func (r *reference) HTTPAddr() string { return r.l.RealHTTPAddr().String() }
func (r *reference) String() string {
	return "nsqlookupd 1.3.0 (in-process, http " + r.HTTPAddr() + ")"
}

type discardLogger struct{}

func (discardLogger) Output(int, string) error { return nil }

// startReference starts nsqlookupd on 127.0.0.1:0 ports with broadcast
// address 127.0.0.1 (as the harness gives raftlookupd) and the given timeouts.
func startReference(t testing.TB, o timeouts) *reference {
	t.Helper()
	opts := nsqlookupd.NewOptions()
	opts.Logger = discardLogger{}
	opts.LogLevel = nsqlookupd.LOG_WARN
	opts.TCPAddress = "127.0.0.1:0"
	opts.HTTPAddress = "127.0.0.1:0"
	opts.BroadcastAddress = "127.0.0.1"
	opts.InactiveProducerTimeout = o.Inactive
	opts.TombstoneLifetime = o.Tombstone
	l, err := nsqlookupd.New(opts)
	if err != nil {
		t.Fatalf("nsqlookupd.New: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := l.Main(); err != nil {
			t.Errorf("nsqlookupd.Main: %v", err)
		}
	}()
	t.Cleanup(func() {
		l.Exit()
		<-done
	})
	return &reference{l: l}
}
