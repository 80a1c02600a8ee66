package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Fault kinds. Process faults (kill, pause, leave) hit one node at a time;
// network faults overlap them and each other (at most maxNetFaults at once).
const (
	faultKill      = "kill"           // SIGKILL, restart at the end
	faultPause     = "pause"          // SIGSTOP, SIGCONT at the end
	faultLeave     = "leave"          // leave, stop, wipe; start empty and join at the end
	faultIsolate   = "isolate-leader" // the leader cut off from every other node
	faultSplit     = "split"          // a random minority cut off from the majority
	faultPartial   = "partial"        // two nodes cannot reach each other; both reach the rest
	faultOneWay    = "one-way"        // a node hears nothing from one peer; the peer hears it
	faultDelay     = "delay"          // netem delay with jitter on a node (or a flaky link)
	faultTransfer  = "transfer"       // POST /cluster/transfer-leadership on the leader
	maxNetFaults   = 2
	leaderTarget   = 0 // fault.Node: the leader at the time the fault starts
	minFaultLength = time.Second
)

var faultWeights = []struct {
	kind   string
	weight int
}{
	{faultKill, 2}, {faultPause, 2}, {faultLeave, 1}, {faultIsolate, 2}, {faultSplit, 2},
	{faultPartial, 1}, {faultOneWay, 2}, {faultDelay, 2}, {faultTransfer, 1},
}

func isProcessFault(kind string) bool {
	return kind == faultKill || kind == faultPause || kind == faultLeave
}

// fault is one entry of a schedule. Node and Peer are 1-based; Node 0 is
// whichever node leads when the fault starts.
type fault struct {
	Kind     string
	At, Dur  time.Duration
	Node     int
	Peer     int
	Minority []int
}

func (f fault) String() string {
	target := "leader"
	if f.Node != leaderTarget {
		target = "n" + strconv.Itoa(f.Node)
	}
	var s string
	switch f.Kind {
	case faultSplit:
		var ms []string
		for _, m := range f.Minority {
			ms = append(ms, "n"+strconv.Itoa(m))
		}
		s = fmt.Sprintf("%s [%s] | rest", f.Kind, strings.Join(ms, ","))
	case faultPartial:
		s = fmt.Sprintf("%s n%d x n%d", f.Kind, f.Node, f.Peer)
	case faultOneWay:
		s = fmt.Sprintf("%s n%d hears nothing from n%d", f.Kind, f.Node, f.Peer)
	case faultIsolate, faultTransfer:
		s = f.Kind
	default:
		s = f.Kind + " " + target
	}
	return fmt.Sprintf("%6.2fs +%5.2fs %s", f.At.Seconds(), f.Dur.Seconds(), s)
}

// makeSchedule draws a schedule of faults over length from rng alone: the
// same seed gives the same schedule.
func makeSchedule(rng *rand.Rand, nodes int, length time.Duration) []fault {
	total := 0
	for _, w := range faultWeights {
		total += w.weight
	}
	pick := func() string {
		r := rng.IntN(total)
		for _, w := range faultWeights {
			if r < w.weight {
				return w.kind
			}
			r -= w.weight
		}
		panic("unreachable")
	}
	dur := func(d time.Duration) time.Duration {
		return d.Truncate(10 * time.Millisecond)
	}
	var out []fault
	var procUntil time.Duration
	var netEnds []time.Duration
	for t := time.Second; t < length-minFaultLength; t += dur(300*time.Millisecond + time.Duration(rng.Int64N(int64(2*time.Second)))) {
		f := fault{Kind: pick(), At: t, Dur: dur(minFaultLength + time.Duration(rng.Int64N(int64(4*time.Second))))}
		if f.At+f.Dur > length {
			f.Dur = length - f.At
		}
		f.Node = 1 + rng.IntN(nodes)
		if f.Kind == faultKill || f.Kind == faultPause || f.Kind == faultLeave {
			if rng.IntN(3) == 0 {
				f.Node = leaderTarget
			}
		}
		f.Peer = 1 + (f.Node+rng.IntN(nodes-1))%nodes // never Node (when Node > 0)
		switch f.Kind {
		case faultIsolate:
			f.Node = leaderTarget
		case faultTransfer:
			f.Dur = 0
		case faultSplit:
			perm := rng.Perm(nodes)
			size := 1 + rng.IntN((nodes-1)/2)
			for _, i := range perm[:size] {
				f.Minority = append(f.Minority, i+1)
			}
			sort.Ints(f.Minority)
		case faultPartial, faultOneWay:
			if f.Node == leaderTarget {
				f.Node = 1 + rng.IntN(nodes)
			}
			if f.Peer == f.Node {
				f.Peer = 1 + f.Node%nodes
			}
		}
		if isProcessFault(f.Kind) {
			if t < procUntil {
				continue
			}
			procUntil = f.At + f.Dur
		} else if f.Kind != faultTransfer {
			netEnds = slices.DeleteFunc(netEnds, func(e time.Duration) bool { return e <= t })
			if len(netEnds) >= maxNetFaults {
				continue
			}
			netEnds = append(netEnds, f.At+f.Dur)
		}
		out = append(out, f)
	}
	return out
}

// ---------------------------------------------------------------------------
// applying faults

// nemesis applies a schedule to a running cluster. All its methods run on
// one goroutine.
type nemesis struct {
	nw    *network
	nodes []*node
	c     *client
	logf  func(format string, args ...any)
	// drops[dst][src] > 0: dst drops every packet from src.
	drops map[[2]int]int
	slow  map[int]int
	// rejoin lists nodes that left and must join again.
	rejoin map[int]bool
	// Applied counts faults that took effect, by kind; label, when a fault
	// sets it, replaces the kind (a leave the cluster did not confirm).
	Applied map[string]int
	label   string
}

func newNemesis(nw *network, nodes []*node, c *client, logf func(string, ...any)) *nemesis {
	return &nemesis{nw: nw, nodes: nodes, c: c, logf: logf,
		drops: map[[2]int]int{}, slow: map[int]int{}, rejoin: map[int]bool{}, Applied: map[string]int{}}
}

// run executes the schedule from start (its time zero) until every fault
// has started and ended, or ctx ends.
func (nm *nemesis) run(ctx context.Context, start time.Time, sched []fault) {
	type event struct {
		at   time.Duration
		i    int
		stop bool
	}
	var evs []event
	for i, f := range sched {
		evs = append(evs, event{f.At, i, false})
		if f.Dur > 0 {
			evs = append(evs, event{f.At + f.Dur, i, true})
		}
	}
	sort.SliceStable(evs, func(a, b int) bool { return evs[a].at < evs[b].at })
	undo := map[int]func(){}
	for _, ev := range evs {
		timer := time.NewTimer(time.Until(start.Add(ev.at)))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		f := sched[ev.i]
		if ev.stop {
			if u := undo[ev.i]; u != nil {
				nm.logf("end   %s", f)
				u()
				delete(undo, ev.i)
			}
			continue
		}
		nm.label = f.Kind
		u, err := nm.start(ctx, f)
		if err != nil {
			nm.logf("skip  %s: %v", f, err)
			continue
		}
		nm.Applied[nm.label]++
		if u != nil {
			undo[ev.i] = u
		}
	}
}

// start applies f and returns how to end it (nil for an instant fault).
func (nm *nemesis) start(ctx context.Context, f fault) (func(), error) {
	target := f.Node
	if target == leaderTarget {
		l, err := nm.leader(ctx)
		if err != nil {
			return nil, err
		}
		target = l
	}
	n := nm.nodes[target-1]
	switch f.Kind {
	case faultKill:
		if !n.running() {
			return nil, fmt.Errorf("n%d is not running", target)
		}
		nm.logf("start %s: SIGKILL n%d", f, target)
		if err := n.kill(); err != nil {
			return nil, err
		}
		return func() { nm.restart(n) }, nil
	case faultPause:
		nm.logf("start %s: SIGSTOP n%d", f, target)
		if err := n.signal(syscall.SIGSTOP); err != nil {
			return nil, err
		}
		return func() { _ = n.signal(syscall.SIGCONT) }, nil
	case faultLeave:
		return nm.leave(ctx, f, n)
	case faultIsolate:
		nm.logf("start %s: n%d", f, target)
		return nm.cut(target, nm.others(target)), nil
	case faultSplit:
		var maj []int
		for i := 1; i <= len(nm.nodes); i++ {
			if !slices.Contains(f.Minority, i) {
				maj = append(maj, i)
			}
		}
		nm.logf("start %s", f)
		undos := []func(){}
		for _, m := range f.Minority {
			undos = append(undos, nm.cut(m, maj))
		}
		return func() {
			for _, u := range undos {
				u()
			}
		}, nil
	case faultPartial:
		nm.logf("start %s", f)
		return nm.cut(f.Node, []int{f.Peer}), nil
	case faultOneWay:
		nm.logf("start %s", f)
		nm.addDrop(f.Node, f.Peer, 1)
		nm.applyRules()
		return func() { nm.addDrop(f.Node, f.Peer, -1); nm.applyRules() }, nil
	case faultDelay:
		nm.logf("start %s (netem available: %v)", f, nm.nw.netem)
		nm.setSlow(target, 1)
		return func() { nm.setSlow(target, -1) }, nil
	case faultTransfer:
		nm.logf("start %s: on n%d", f, target)
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := nm.c.post(ctx, n.httpAddr(), "/cluster/transfer-leadership", map[string]string{}); err != nil {
			return nil, err
		}
		return nil, nil
	}
	return nil, fmt.Errorf("unknown fault kind %q", f.Kind)
}

func (nm *nemesis) others(i int) []int {
	var out []int
	for j := 1; j <= len(nm.nodes); j++ {
		if j != i {
			out = append(out, j)
		}
	}
	return out
}

// leader asks every running node and returns the one that says it leads.
func (nm *nemesis) leader(ctx context.Context) (int, error) {
	for _, n := range nm.nodes {
		if !n.running() {
			continue
		}
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := nm.c.status(ctx, n)
		cancel()
		if err == nil && st.State == "Leader" {
			return n.idx, nil
		}
	}
	return 0, fmt.Errorf("no node says it leads")
}

// restart starts a killed node again. One that left and was wiped but has
// not joined yet starts with -bootstrap=false again: with the default flags
// a node with an empty data dir bootstraps a one-node cluster of its own,
// and clients would meet two clusters at the members' addresses (seed 80025).
func (nm *nemesis) restart(n *node) {
	nm.logf("restart n%d", n.idx)
	if err := n.start(nm.rejoin[n.idx]); err != nil {
		nm.logf("restart n%d: %v", n.idx, err)
	}
}

// leave removes n through another member's admin API, stops it and wipes
// its data. Only a removal the cluster confirmed allows the wipe: a wiped
// node still in the configuration could vote without its log.
func (nm *nemesis) leave(ctx context.Context, f fault, n *node) (func(), error) {
	err := errors.New("no member to ask")
	for deadline := time.Now().Add(4 * time.Second); err != nil && time.Now().Before(deadline); {
		for _, j := range nm.others(n.idx) {
			m := nm.nodes[j-1]
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			err = nm.c.post(cctx, m.httpAddr(), "/cluster/leave", map[string]string{"id": n.id})
			cancel()
			if err == nil {
				break
			}
		}
		if err != nil {
			pause(ctx, 200*time.Millisecond)
		}
	}
	if err != nil {
		nm.label = "leave not confirmed (restart)"
		// The leave may or may not have happened: stop and restart the node
		// on its own data, then ask to join (a no-op for a member).
		nm.logf("start %s: n%d leave not confirmed (%v): restart on its data and join", f, n.idx, err)
		if err := n.kill(); err != nil {
			return nil, err
		}
		nm.rejoin[n.idx] = true
		return func() { nm.restart(n); nm.join(ctx, n) }, nil
	}
	nm.logf("start %s: n%d left; stop and wipe", f, n.idx)
	if err := n.kill(); err != nil {
		return nil, err
	}
	if err := n.wipe(); err != nil {
		return nil, err
	}
	nm.rejoin[n.idx] = true
	return func() {
		nm.logf("n%d starts empty (-bootstrap=false) and joins", n.idx)
		if err := n.start(true); err != nil {
			nm.logf("start n%d: %v", n.idx, err)
			return
		}
		nm.join(ctx, n)
	}, nil
}

// join asks the other members to add n, briefly; heal retries.
func (nm *nemesis) join(ctx context.Context, n *node) bool {
	req := map[string]any{"id": n.id, "raft_address": n.raftAddr()}
	for _, j := range nm.others(n.idx) {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := nm.c.post(cctx, nm.nodes[j-1].httpAddr(), "/cluster/join", req)
		cancel()
		if err == nil {
			nm.logf("n%d joined through n%d", n.idx, j)
			delete(nm.rejoin, n.idx)
			return true
		}
		nm.logf("join n%d through n%d: %v", n.idx, j, err)
	}
	return false
}

// cut drops all traffic between a and each of bs, both ways.
func (nm *nemesis) cut(a int, bs []int) func() {
	for _, b := range bs {
		nm.addDrop(a, b, 1)
		nm.addDrop(b, a, 1)
	}
	nm.applyRules()
	return func() {
		for _, b := range bs {
			nm.addDrop(a, b, -1)
			nm.addDrop(b, a, -1)
		}
		nm.applyRules()
	}
}

func (nm *nemesis) addDrop(dst, src, delta int) {
	k := [2]int{dst, src}
	nm.drops[k] += delta
	if nm.drops[k] <= 0 {
		delete(nm.drops, k)
	}
}

// applyRules rewrites every node's INPUT chain from drops and slow.
func (nm *nemesis) applyRules() {
	for _, n := range nm.nodes {
		if err := nsRun(n.ns, "iptables", "-w", "-F", "INPUT"); err != nil {
			nm.logf("rules n%d: %v", n.idx, err)
			continue
		}
		for src := 1; src <= len(nm.nodes); src++ {
			if nm.drops[[2]int{n.idx, src}] > 0 {
				if err := nsRun(n.ns, "iptables", "-w", "-A", "INPUT", "-s", nodeIP(src), "-j", "DROP"); err != nil {
					nm.logf("rules n%d: %v", n.idx, err)
				}
			} else if !nm.nw.netem && nm.slow[n.idx] > 0 && src != n.idx {
				// No netem: the delay fault becomes a flaky link, a fifth of
				// the peers' packets lost (TCP retransmits: delay with jitter).
				if err := nsRun(n.ns, "iptables", "-w", "-A", "INPUT", "-s", nodeIP(src),
					"-m", "statistic", "--mode", "random", "--probability", "0.2", "-j", "DROP"); err != nil {
					nm.logf("rules n%d: %v", n.idx, err)
				}
			}
		}
	}
}

func (nm *nemesis) setSlow(i, delta int) {
	before := nm.slow[i]
	nm.slow[i] += delta
	if nm.slow[i] <= 0 {
		delete(nm.slow, i)
	}
	after := nm.slow[i]
	if (before > 0) == (after > 0) {
		return
	}
	if !nm.nw.netem {
		nm.applyRules()
		return
	}
	ns := nm.nodes[i-1].ns
	var err error
	if after > 0 {
		err = nsRun(ns, "tc", "qdisc", "replace", "dev", "eth0", "root", "netem", "delay", "50ms", "40ms", "distribution", "normal")
	} else {
		err = nsRun(ns, "tc", "qdisc", "del", "dev", "eth0", "root")
	}
	if err != nil {
		nm.logf("netem n%d: %v", i, err)
	}
}

// heal ends every fault: rules and qdiscs gone, every process running,
// every node that left joined again.
func (nm *nemesis) heal(ctx context.Context) error {
	nm.drops = map[[2]int]int{}
	nm.applyRules()
	for i := range nm.slow {
		delete(nm.slow, i)
		if nm.nw.netem {
			_ = nsRun(nm.nodes[i-1].ns, "tc", "qdisc", "del", "dev", "eth0", "root")
		}
	}
	for _, n := range nm.nodes {
		if n.running() {
			_ = n.signal(syscall.SIGCONT)
			continue
		}
		if err := n.start(nm.rejoin[n.idx]); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(nm.rejoin) > 0 {
		for i := range nm.rejoin {
			nm.join(ctx, nm.nodes[i-1])
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nodes %v could not join again within 30s", nm.rejoin)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}
