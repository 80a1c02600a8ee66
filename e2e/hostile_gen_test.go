package e2e

// The hostile clients of TestHostileClients: random HTTP requests
// (hostile_http_test.go), random nsqd protocol V1 frames
// (hostile_tcp_test.go), and random bytes and forged node-to-node requests
// on the Raft ports (hostile_raft_test.go). Here: their shared state and
// names. Each generator draws from its own seeded math/rand/v2 source,
// sends, classifies the answer into a tally, and records a violation when
// an answer is one the cluster must never give (a forged batch accepted,
// an invalid name created, the command line served, a remote admin change
// admitted).

import (
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/nsqio/go-nsq"
)

// hostile is the shared state of the generators.
type hostile struct {
	nodes []*Node
	src   net.IP // a non-loopback, non-member source address, or nil
	junk  []byte // random bytes, sliced for bodies and garbage

	mu         sync.Mutex
	counts     map[string]map[string]int // class -> outcome -> count
	violations []string
	samples    []string // the first few requests that timed out or failed
	// Valid names hostile requests asked to create (HTTP create, TCP
	// REGISTER), whatever the answer: the only names besides the
	// legitimate client's that may appear in the registry.
	topics   map[string]bool
	channels map[string]bool // "topic/channel"
}

func newHostile(nodes []*Node, src net.IP, r *rand.Rand) *hostile {
	junk := make([]byte, 5<<20)
	for i := range junk {
		junk[i] = byte(r.Uint32())
	}
	return &hostile{nodes: nodes, src: src, junk: junk,
		counts: map[string]map[string]int{}, topics: map[string]bool{}, channels: map[string]bool{}}
}

func (h *hostile) count(class, outcome string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.counts[class]
	if m == nil {
		m = map[string]int{}
		h.counts[class] = m
	}
	m[outcome]++
}

// sample keeps a short description of a request whose answer never came,
// for the log (not a violation: a huge request may take the client's
// whole timeout to refuse).
func (h *hostile) sample(format string, args ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.samples) < 12 {
		h.samples = append(h.samples, fmt.Sprintf(format, args...))
	}
}

func (h *hostile) violate(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if len(msg) > 600 {
		msg = msg[:600] + "..."
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.violations = append(h.violations, msg)
}

// tried records a create or REGISTER of topic (and channel, if not empty)
// when the names are valid; only valid names can ever be created.
func (h *hostile) tried(topic, channel string) {
	if !nsq.IsValidTopicName(topic) || (channel != "" && !nsq.IsValidChannelName(channel)) {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.topics[topic] = true
	if channel != "" {
		h.channels[topic+"/"+channel] = true
	}
}

// triedFrame records every REGISTER that bytes written to a TCP connection
// may carry, split into lines and parameters as the server splits them: a
// name with a newline in it smuggles a second, well-formed command.
func (h *hostile) triedFrame(frame []byte) {
	for _, line := range strings.Split(string(frame), "\n") {
		f := strings.Split(strings.TrimSpace(line), " ")
		if f[0] != "REGISTER" || len(f) < 2 {
			continue
		}
		// Like nsqlookupd, the server takes the first two parameters and
		// ignores any after them.
		ch := ""
		if len(f) >= 3 {
			ch = f[2]
		}
		h.tried(f[1], ch)
	}
}

// summary returns the tally, one line per class, and the total.
func (h *hostile) summary() (string, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var classes []string
	for c := range h.counts {
		classes = append(classes, c)
	}
	slices.Sort(classes)
	var b strings.Builder
	total := 0
	for _, c := range classes {
		var outs []string
		sum := 0
		for o, n := range h.counts[c] {
			outs = append(outs, fmt.Sprintf("%s=%d", o, n))
			sum += n
		}
		slices.Sort(outs)
		total += sum
		fmt.Fprintf(&b, "  %-14s %5d  %s\n", c, sum, strings.Join(outs, " "))
	}
	return b.String(), total
}

func (h *hostile) node(r *rand.Rand) *Node { return h.nodes[r.IntN(len(h.nodes))] }

// bytes returns n random bytes (a slice of junk; callers must not modify).
func (h *hostile) bytes(r *rand.Rand, n int) []byte {
	n = min(n, len(h.junk))
	off := r.IntN(len(h.junk) - n + 1)
	return h.junk[off : off+n]
}

// size draws a length: mostly small, sometimes large, rarely huge.
func size(r *rand.Rand, huge int) int {
	switch p := r.IntN(100); {
	case p < 70:
		return r.IntN(256)
	case p < 95:
		return r.IntN(64 << 10)
	default:
		return r.IntN(huge + 1)
	}
}

// poolTopic and poolChannel are valid names from a small pool, so hostile
// creations stay few enough to read back one by one. Legitimate names start
// with "legit_", which no hostile name does.
func poolTopic(r *rand.Rand) string {
	n := "h" + strconv.Itoa(r.IntN(200))
	if r.IntN(10) == 0 {
		n += "#ephemeral"
	}
	return n
}

func poolChannel(r *rand.Rand) string {
	n := "c" + strconv.Itoa(r.IntN(8))
	if r.IntN(10) == 0 {
		n += "#ephemeral"
	}
	return n
}

var oddNames = []string{
	"", " ", "#ephemeral", "a#ephemeral#ephemeral", "a b", "a/b", "../..", "..", ".", "a\x00b",
	"a\nb", "a\r\nREGISTER x", "тема", "😀", "a;b", "a&b", "a=b", "a%zz", "%00", "a\tb",
	"h1#Ephemeral", "-", "_", "h1 ", "\xff\xfe", strings.Repeat("a", 64), strings.Repeat("a", 65),
	strings.Repeat("#", 300), "legit", "LEGIT_T1",
}

// hostileName is a topic or channel name: a valid pool name, an odd one, a
// long one, or random bytes.
func (h *hostile) hostileName(r *rand.Rand, channel bool) string {
	switch p := r.IntN(100); {
	case p < 35:
		if channel {
			return poolChannel(r)
		}
		return poolTopic(r)
	case p < 65:
		return oddNames[r.IntN(len(oddNames))]
	case p < 85:
		lens := []int{65, 200, 4097, 64 << 10, 1<<20 + 1, 3 << 20}
		return strings.Repeat(string(rune('a'+r.IntN(26))), lens[r.IntN(len(lens))])
	default:
		return string(h.bytes(r, 1+r.IntN(300)))
	}
}
