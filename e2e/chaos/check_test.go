package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// ---------------------------------------------------------------------------
// bounded staleness

// fact is what one operation says about one boolean of the registry (a
// topic exists, a channel of a topic exists).
type fact struct {
	o     op
	value bool
}

// staleness checks every bounded read: it must reflect every write
// acknowledged more than maxStaleness before the read began. A read value
// v contradicts an acknowledged write w of !v unless some write of v (of
// any outcome) may come after w: one not finished before w began, called
// before the read ended.
func staleness(ops []op, maxStaleness time.Duration) []string {
	// writes[key] for key "t" (topic exists) and "t/c" (channel exists).
	writes := map[string][]fact{}
	add := func(key string, o op, v bool) { writes[key] = append(writes[key], fact{o, v}) }
	for _, o := range ops {
		t := modelTopic(o.Topic)
		switch o.Kind {
		case opTopicCreate:
			add(t, o, true)
		case opTopicDelete:
			add(t, o, false)
			for c := range modelChannels {
				add(t+"/"+modelChannel(c), o, false)
			}
		case opChannelCreate:
			add(t, o, true)
			add(t+"/"+modelChannel(o.Channel), o, true)
		case opChannelDelete:
			add(t+"/"+modelChannel(o.Channel), o, false)
		}
	}
	var out []string
	check := func(r op, key string, v bool) {
		limit := r.Call - int64(maxStaleness)
		for _, w := range writes[key] {
			if w.o.Ambiguous || w.value == v || w.o.Return >= limit {
				continue
			}
			explained := false
			for _, w2 := range writes[key] {
				if w2.value == v && w2.o.Call <= r.Return && (w2.o.Ambiguous || w2.o.Return >= w.o.Call) {
					explained = true
					break
				}
			}
			if !explained {
				out = append(out, fmt.Sprintf("stale read: %s shows %s=%v, but %s was acknowledged %.3fs before the read began (max staleness %v)",
					r, key, v, w.o, float64(r.Call-w.o.Return)/1e9, maxStaleness))
				return
			}
		}
	}
	for _, r := range ops {
		switch r.Kind {
		case opBoundedTopics:
			for t := range modelTopics {
				check(r, modelTopic(t), r.Mask&(1<<t) != 0)
			}
		case opBoundedChannels:
			for c := range modelChannels {
				check(r, modelTopic(r.Topic)+"/"+modelChannel(c), r.Mask&(1<<c) != 0)
			}
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// sessions

type debugProducer struct {
	BroadcastAddress string `json:"broadcast_address"`
	TCPPort          int    `json:"tcp_port"`
	HTTPPort         int    `json:"http_port"`
}

// registrations reads /debug on a node: for every producer identity, the
// keys listing it.
func registrations(ctx context.Context, c *client, n *node) (map[identity]map[string]bool, error) {
	var dump map[string][]debugProducer
	if err := c.getJSON(ctx, n.httpAddr(), "/debug?consistency=linearizable", &dump); err != nil {
		return nil, err
	}
	out := map[identity]map[string]bool{}
	for key, ps := range dump {
		for _, p := range ps {
			id := identity{p.BroadcastAddress, p.TCPPort, p.HTTPPort}
			if out[id] == nil {
				out[id] = map[string]bool{}
			}
			out[id][key] = true
		}
	}
	return out, nil
}

// sessionProblems compares every node's registry with the sessions: an
// open session is listed with exactly its registrations (plus client::),
// any other is not listed at all.
func sessionProblems(ctx context.Context, c *client, nodes []*node, sessions []*session) []string {
	var out []string
	for _, n := range nodes {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		regs, err := registrations(cctx, c, n)
		cancel()
		if err != nil {
			out = append(out, fmt.Sprintf("n%d: %v", n.idx, err))
			continue
		}
		for _, s := range sessions {
			got := regs[s.Ident]
			if s.State != sessOpen {
				if len(got) > 0 {
					out = append(out, fmt.Sprintf("ghost: n%d lists %s session %d (%s, owner n%d) under %v", n.idx, s.State, s.ID, s.Ident, s.Node, keys(got)))
				}
				continue
			}
			want := map[string]bool{"client::": true}
			for k := range s.Regs {
				want[k] = true
			}
			if !mapsEqual(got, want) {
				out = append(out, fmt.Sprintf("lost: n%d lists open session %d (%s, owner n%d) under %v, want %v", n.idx, s.ID, s.Ident, s.Node, keys(got), keys(want)))
			}
		}
	}
	return out
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func mapsEqual(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// waitSessions polls until the sessions check passes or timeout; it
// re-checks open sessions with PING first each round, since a node whose
// lease lapsed closes its clients (the session is then gone, rightly).
func waitSessions(ctx context.Context, w *workload, nodes []*node, sessions []*session, timeout time.Duration) (time.Duration, []string) {
	start := time.Now()
	for {
		for _, s := range sessions {
			if s.State == sessOpen {
				w.command(s, "PING")
			}
		}
		problems := sessionProblems(ctx, w.http, nodes, sessions)
		if len(problems) == 0 {
			return time.Since(start), nil
		}
		if time.Since(start) > timeout || ctx.Err() != nil {
			return time.Since(start), problems
		}
		pause(ctx, 100*time.Millisecond)
	}
}

// ---------------------------------------------------------------------------
// evidence

// evidence is what a run leaves behind when it fails.
type evidence struct {
	dir        string
	seed       uint64
	schedule   []fault
	nemesisLog []string
	ops        []op
	sessions   []*session
	violations []string
	lin        *porcupine.LinearizationInfo
	// linExplained is explain's text for an illegal history.
	linExplained string
	nodes        []*node
}

// write saves the history, the sessions, the schedule, the violations,
// porcupine's visualisation and the node logs, and returns the folder.
func (e *evidence) write() (string, error) {
	dir := filepath.Join(e.dir, fmt.Sprintf("seed-%d-%s", e.seed, time.Now().UTC().Format("20060102T150405")))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	ops := slices.Clone(e.ops)
	sort.SliceStable(ops, func(i, j int) bool { return ops[i].Call < ops[j].Call })
	var hist strings.Builder
	for _, o := range ops {
		hist.WriteString(o.String() + "\n")
	}
	var sched strings.Builder
	fmt.Fprintf(&sched, "seed %d\n", e.seed)
	for _, f := range e.schedule {
		sched.WriteString(f.String() + "\n")
	}
	sched.WriteString("\nexecution:\n" + strings.Join(e.nemesisLog, "\n") + "\n")
	histJSON, err := json.MarshalIndent(ops, "", " ")
	if err != nil {
		return "", err
	}
	sessJSON, err := json.MarshalIndent(e.sessions, "", " ")
	if err != nil {
		return "", err
	}
	files := map[string][]byte{
		"history.json":   histJSON,
		"history.txt":    []byte(hist.String()),
		"sessions.json":  sessJSON,
		"schedule.txt":   []byte(sched.String()),
		"violations.txt": []byte(strings.Join(e.violations, "\n") + "\n"),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return "", err
		}
	}
	if e.linExplained != "" {
		if err := os.WriteFile(filepath.Join(dir, "linearization.txt"), []byte(e.linExplained), 0o644); err != nil {
			return "", err
		}
	}
	if e.lin != nil {
		if err := porcupine.VisualizePath(registryModel, *e.lin, filepath.Join(dir, "linearizability.html")); err != nil {
			return "", err
		}
	}
	for _, n := range e.nodes {
		if b, err := os.ReadFile(n.logPath); err == nil {
			_ = os.WriteFile(filepath.Join(dir, filepath.Base(n.logPath)), b, 0o644)
		}
	}
	return dir, nil
}

// explain describes a failed check for a human: the longest prefix
// porcupine could linearize, with the state after each step, and the
// operations that were pending when it got stuck.
func explain(info porcupine.LinearizationInfo, hist []porcupine.Operation) string {
	var b strings.Builder
	for _, part := range info.PartialLinearizationsOperations() {
		var longest []porcupine.Operation
		for _, l := range part {
			if len(l) > len(longest) {
				longest = l
			}
		}
		fmt.Fprintf(&b, "longest linearizable prefix: %d of %d operations\n", len(longest), len(hist))
		state := regState(0)
		done := map[int64]bool{}
		from := max(0, len(longest)-40)
		for i, o := range longest {
			_, state = step(state, o.Input.(op))
			done[o.Call] = true
			if i >= from {
				fmt.Fprintf(&b, "  %s   => %s\n", o.Input.(op), state)
			}
		}
		var last int64
		if len(longest) > 0 {
			last = longest[len(longest)-1].Call
		}
		b.WriteString("operations not linearized, called by then or soon after (one of them cannot go next):\n")
		for _, o := range hist {
			if !done[o.Call] && o.Call <= last+int64(time.Second) {
				fmt.Fprintf(&b, "  %s\n", o.Input.(op))
			}
		}
	}
	return b.String()
}
