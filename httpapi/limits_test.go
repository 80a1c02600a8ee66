package httpapi

import (
	"net/http"
	"strings"
	"testing"

	"github.com/raftlookupd/raftlookupd/fsm"
)

// TestOversizedNames: every mutation with a name or node beyond what the log
// accepts answers as nsqlookupd would (400 where nsqlookupd validates, 200
// where it does not) and proposes nothing, so nothing invalid reaches Raft.
// At the limit, a tombstone node is still proposed.
func TestOversizedNames(t *testing.T) {
	huge := strings.Repeat("a", 4096)
	node := "b1:4151"
	tests := []struct {
		name, target string
		status       int
		body         string
		propose      bool
	}{
		{"create topic", "/topic/create?topic=" + huge, 400, `{"message":"INVALID_ARG_TOPIC"}`, false},
		{"delete topic", "/topic/delete?topic=" + huge, 200, "", false},
		{"create channel topic", "/channel/create?topic=" + huge + "&channel=c", 400, `{"message":"INVALID_ARG_TOPIC"}`, false},
		{"create channel channel", "/channel/create?topic=t&channel=" + huge, 400, `{"message":"INVALID_ARG_CHANNEL"}`, false},
		{"delete channel topic", "/channel/delete?topic=" + huge + "&channel=c", 400, `{"message":"INVALID_ARG_TOPIC"}`, false},
		{"delete channel channel", "/channel/delete?topic=t&channel=" + huge, 400, `{"message":"INVALID_ARG_CHANNEL"}`, false},
		{"tombstone topic", "/topic/tombstone?topic=" + huge + "&node=" + node, 200, "", false},
		{"tombstone node", "/topic/tombstone?topic=t&node=" + huge, 200, "", false},
		{"tombstone node one over", "/topic/tombstone?topic=t&node=" + strings.Repeat("a", fsm.MaxTombstoneNodeLen+1), 200, "", false},
		{"tombstone node at limit", "/topic/tombstone?topic=t&node=" + strings.Repeat("a", fsm.MaxTombstoneNodeLen), 200, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			resp := e.do(post(tc.target))
			if resp.status != tc.status || resp.body != tc.body {
				t.Errorf("got %d %q, want %d %q", resp.status, resp.body, tc.status, tc.body)
			}
			e.cl.mu.Lock()
			defer e.cl.mu.Unlock()
			if got := len(e.cl.proposed); got != map[bool]int{false: 0, true: 1}[tc.propose] {
				t.Fatalf("proposed %d commands, want propose=%v", got, tc.propose)
			}
			for _, c := range e.cl.proposed {
				if err := c.Validate(); err != nil {
					t.Errorf("proposed an invalid command: %v", err)
				}
			}
		})
	}
}

// A request line beyond maxHeaderBytes (a name of a megabyte, say) is
// refused by the server itself with 431: nothing is read further, nothing
// proposed.
func TestHugeURLRefused(t *testing.T) {
	e := newTestEnv(t)
	resp := e.do(post("/topic/delete?topic=" + strings.Repeat("a", 1<<20+1)))
	if resp.status != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("1 MiB topic name: %d %s, want 431", resp.status, resp.body)
	}
	e.cl.mu.Lock()
	defer e.cl.mu.Unlock()
	if n := len(e.cl.proposed); n != 0 {
		t.Fatalf("%d commands proposed", n)
	}
}
