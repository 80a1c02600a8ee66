package wire

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
)

// Every sentinel survives a hop: status out, sentinel back. 503 stands for
// several sentinels; they all map back to ErrNoLeader, which is what a
// forwarding node retries on.
func TestStatusRoundTrip(t *testing.T) {
	for _, row := range statusTable {
		wrapped := fmt.Errorf("context: %w", row.err)
		st := StatusOf(wrapped)
		if st != row.status {
			t.Errorf("StatusOf(%v) = %d, want %d", row.err, st, row.status)
		}
		back := &RemoteError{Status: st, Message: wrapped.Error()}
		want := row.err
		if st == http.StatusServiceUnavailable {
			want = ErrNoLeader
		}
		if !errors.Is(back, want) {
			t.Errorf("status %d maps back to %v, want %v", st, errors.Unwrap(back), want)
		}
		if back.Error() != wrapped.Error() {
			t.Errorf("remote error text %q, want the remote message %q", back.Error(), wrapped.Error())
		}
	}
}

func TestStatusOfOthers(t *testing.T) {
	for _, c := range []struct {
		err  error
		want int
	}{
		{nil, 200},
		{context.DeadlineExceeded, 503},
		{fmt.Errorf("x: %w", context.Canceled), 503},
		{errors.New("disk on fire"), 500},
	} {
		if got := StatusOf(c.err); got != c.want {
			t.Errorf("StatusOf(%v) = %d, want %d", c.err, got, c.want)
		}
	}
	if err := ErrorOf(418); err != nil {
		t.Errorf("ErrorOf(418) = %v, want nil", err)
	}
	if got := (&RemoteError{Status: 418}).Error(); got == "" {
		t.Error("empty text for a remote error without message")
	}
}

func TestParseConsistency(t *testing.T) {
	for _, s := range []string{"stale", "bounded", "linearizable"} {
		if c, err := ParseConsistency(s); err != nil || string(c) != s {
			t.Errorf("ParseConsistency(%q) = %q, %v", s, c, err)
		}
	}
	for _, s := range []string{"", "Stale", "strong"} {
		if _, err := ParseConsistency(s); !errors.Is(err, ErrBadRequest) {
			t.Errorf("ParseConsistency(%q) error %v, want ErrBadRequest", s, err)
		}
	}
}
