package main

import (
	"bytes"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
)

// Bad flags and ports in use fail at once with one clear line.
func TestStartupErrorsAreOneLine(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	base := []string{"-node-id", "n1", "-data-dir", t.TempDir(), "-broadcast-address", "127.0.0.1",
		"-raft-address", "127.0.0.1:0", "-tcp-address", "127.0.0.1:0", "-http-address", "127.0.0.1:0", "-log-level", "error"}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown flag", []string{"-bogus"}, 2, "flag provided but not defined: -bogus"},
		{"bad consistency", []string{"-read-consistency", "strong"}, 2, `-read-consistency "strong": want stale, bounded or linearizable`},
		{"bad peers", []string{"-peers", "n1"}, 2, `-peers: peer "n1": want id=host:port`},
		{"peers without self", []string{"-peers", "n2=127.0.0.1:1"}, 2, `peers do not include this node's id "n1"`},
		{"peers and join", []string{"-peers", "n1=127.0.0.1:1", "-join", "127.0.0.1:2"}, 2, "give either peers or join, not both"},
		{"lease too short", []string{"-lease-timeout", "1s"}, 2, "lease timeout 1s must be at least 3 lease renew intervals"},
		{"bad log level", []string{"-log-level", "loud"}, 2, `-log-level "loud"`},
		{"http port in use", []string{"-http-address", busy.Addr().String()}, 1, "address already in use"},
		{"tcp port in use", []string{"-tcp-address", busy.Addr().String()}, 1, "address already in use"},
		{"raft port in use", []string{"-raft-address", busy.Addr().String()}, 1, "address already in use"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := run(append(append([]string(nil), base...), tt.args...), io.Discard, &stderr)
			out := strings.TrimSpace(stderr.String())
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr: %s", code, tt.code, out)
			}
			lines := strings.Split(out, "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "raftlookupd: ") || !strings.Contains(last, tt.want) {
				t.Errorf("last line %q, want a raftlookupd: line containing %q", last, tt.want)
			}
			if tt.code == 2 && len(lines) != 1 {
				t.Errorf("usage error printed %d lines, want 1:\n%s", len(lines), out)
			}
		})
	}
}

// -log-level fatal writes nothing while the node runs and stops, but the
// lines that end the process still appear.
func TestLogLevelFatal(t *testing.T) {
	opts := mustParse(t, "-node-id", "n1", "-data-dir", t.TempDir(), "-broadcast-address", "127.0.0.1",
		"-raft-address", "127.0.0.1:0", "-tcp-address", "127.0.0.1:0", "-http-address", "127.0.0.1:0",
		"-log-level", "fatal")
	var out syncBuffer
	logs := newLogs(opts, &out)
	d, err := start(opts, logs.root, &reloader{})
	if err != nil {
		t.Fatal(err)
	}
	logs.root.Error("an error that does not end the process")
	if err := d.shutdown(logs.root); err != nil {
		t.Fatal(err)
	}
	if out.String() != "" {
		t.Errorf("at fatal, wrote:\n%s", out.String())
	}
	logs.fatal.Error("server failed")
	if !strings.Contains(out.String(), "[ERROR] raftlookupd: server failed") {
		t.Errorf("fatal line missing: %q", out.String())
	}
}

// syncBuffer is a bytes.Buffer safe for the daemon's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
