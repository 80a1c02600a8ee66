package chaos

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

var (
	flagRuns        = flag.Int("chaos.runs", 2, "schedules to run, each on a fresh cluster")
	flagSeed        = flag.Uint64("chaos.seed", 0, "seed of the first run (run i uses seed+i); 0 picks one")
	flagDuration    = flag.Duration("chaos.duration", 15*time.Second, "length of each run's fault phase")
	flagOrphanGrace = flag.Duration("chaos.orphan-grace", 3*time.Second, "the nodes' -orphan-grace: how long a session of a node that went away stays listed, beyond the lease timeout")
	flagOut         = flag.String("chaos.out", filepath.Join(os.TempDir(), "raftlookupd-chaos"), "folder for the evidence of failing runs")
)

const (
	clusterSize    = 3
	httpClients    = 4
	sessionWorkers = 2
	// settleTimeout bounds the wait for a healed cluster to agree on a
	// leader with every member ready.
	settleTimeout = 60 * time.Second
	// closeTimeout: a producer whose connection the client closed, on a
	// healthy owner, is gone from every node within this.
	closeTimeout = 3 * time.Second
	// linTimeout bounds porcupine's search; Unknown is reported, not failed.
	linTimeout = 2 * time.Minute
)

// Node timing of the suite (the daemon's defaults in parentheses): shorter
// leases so sessions of a lost node go within a run.
var suiteTiming = timing{
	LeaseTimeout:  4 * time.Second, // -lease-timeout (15s)
	LeaseRenew:    time.Second,     // -lease-renew-interval (2s)
	MaxStaleness:  3 * time.Second, // -max-staleness (3s)
	WriteTimeout:  2 * time.Second, // -write-timeout (5s)
	ClientTimeout: 4 * time.Second, // the test's own deadline per request
}

// totals sums the runs for the closing summary.
type totals struct {
	runs, ops, linOps, boundedReads, sessions, faults, ambiguous int
	linViolations, staleViolations, sessionViolations, other     int
	unknown                                                      int
	// noNetwork: namespaces could not be made; further runs would fail the same way.
	noNetwork bool
}

func TestChaos(t *testing.T) {
	binary := raftlookupdBinary(t)
	if err := sweepLeftovers(); err != nil {
		t.Fatalf("removing leftover namespaces: %v", err)
	}
	seed := *flagSeed
	if seed == 0 {
		seed = rand.Uint64N(1 << 31)
	}
	tm := suiteTiming
	tm.OrphanGrace = *flagOrphanGrace
	t.Logf("chaos: %d runs from seed %d, %v of faults each; node timing %v", *flagRuns, seed, *flagDuration, strings.Join(tm.flags(), " "))
	var sum totals
	for i := range *flagRuns {
		s := seed + uint64(i)
		t.Run(fmt.Sprintf("seed=%d", s), func(t *testing.T) {
			runOnce(t, binary, i, s, tm, &sum)
		})
		if sum.noNetwork {
			t.Fatalf("stopped after run %d: no network namespaces", i+1)
		}
	}
	t.Logf("chaos summary: %d runs, %d operations (%d linearizable checked, %d bounded reads, %d ambiguous writes), %d TCP sessions, %d faults injected; violations: %d linearizability, %d staleness, %d sessions, %d other; %d porcupine checks timed out",
		sum.runs, sum.ops, sum.linOps, sum.boundedReads, sum.ambiguous, sum.sessions, sum.faults,
		sum.linViolations, sum.staleViolations, sum.sessionViolations, sum.other, sum.unknown)
}

func runOnce(t *testing.T, binary string, run int, seed uint64, tm timing, sum *totals) {
	t.Logf("seed %d (replay: make chaos RUNS=1 SEED=%d)", seed, seed)
	nw, err := newNetwork(run, clusterSize)
	if err != nil {
		sum.noNetwork = true
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := nw.close(); err != nil {
			t.Errorf("removing namespaces: %v", err)
		}
	})
	dir := t.TempDir()
	var peers []string
	for i := 1; i <= clusterSize; i++ {
		peers = append(peers, fmt.Sprintf("n%d=%s:%d", i, nodeIP(i), raftPort))
	}
	var nodes []*node
	for i := 1; i <= clusterSize; i++ {
		n := newNode(binary, dir, i, nw.nodes[i-1], strings.Join(peers, ","), tm)
		nodes = append(nodes, n)
		t.Cleanup(func() { _ = n.kill() })
		if err := n.start(false); err != nil {
			t.Fatal(err)
		}
	}
	c := newClient(nw, tm.ClientTimeout)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := settled(ctx, c, nodes, 30*time.Second); err != nil {
		t.Fatalf("cluster not ready: %v", err)
	}

	sched := makeSchedule(newRand(seed), clusterSize, *flagDuration)
	t.Logf("schedule of seed %d (netem: %v):\n%s", seed, nw.netem, fmtSchedule(sched))

	zero := time.Now()
	var logMu sync.Mutex
	var nemLog []string
	logf := func(format string, args ...any) {
		line := fmt.Sprintf("%7.3fs ", time.Since(zero).Seconds()) + fmt.Sprintf(format, args...)
		logMu.Lock()
		nemLog = append(nemLog, line)
		logMu.Unlock()
		t.Log(line)
	}
	nm := newNemesis(nw, nodes, c, logf)
	w := &workload{nw: nw, nodes: clusterSize, zero: zero, tm: tm, http: c}
	wctx, stopWork := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := range httpClients {
		wg.Add(1)
		r := rand.New(rand.NewPCG(seed+uint64(i)+1, uint64(i)))
		go func() { defer wg.Done(); w.httpClient(wctx, i, r) }()
	}
	for i := range sessionWorkers {
		wg.Add(1)
		r := rand.New(rand.NewPCG(seed+uint64(i)+100, uint64(i)))
		go func() { defer wg.Done(); w.sessionWorker(wctx, r) }()
	}

	var violations []string
	nm.run(ctx, zero, sched)
	logf("heal")
	if err := nm.heal(ctx); err != nil {
		violations = append(violations, fmt.Sprintf("heal: %v", err))
	}
	healed := time.Now()
	isSettled := true
	if err := settled(ctx, c, nodes, settleTimeout); err != nil {
		isSettled = false
		violations = append(violations, fmt.Sprintf("the healed cluster did not settle within %v: %v", settleTimeout, err))
	}
	logf("settled after %v", time.Since(healed).Round(time.Millisecond))
	// The workload goes on a little on the healed cluster, then stops.
	pause(ctx, 2*time.Second)
	stopWork()
	wg.Wait()

	sessionViolations := 0
	if isSettled {
		sessionViolations = checkSessions(ctx, w, nodes, tm, healed, logf, &violations)
	} else {
		logf("session checks not run: the cluster did not settle")
	}

	for _, n := range nodes {
		for _, c := range n.crashLog() {
			violations = append(violations, "crash: "+c)
		}
	}
	for _, a := range w.anomalies {
		violations = append(violations, "unexpected answer: "+a)
	}
	other := len(violations) - sessionViolations

	hist := porcupineHistory(w.ops)
	res, info := porcupine.CheckOperationsVerbose(registryModel, hist, linTimeout)
	var lin *porcupine.LinearizationInfo
	linViolations := 0
	linExplained := ""
	switch res {
	case porcupine.Illegal:
		linViolations = 1
		lin = &info
		linExplained = explain(info, hist)
		violations = append(violations, "linearizability: the history of linearizable operations has no linearization (see linearizability.html)")
	case porcupine.Unknown:
		sum.unknown++
		t.Logf("porcupine did not finish within %v: linearizability unknown", linTimeout)
	}
	stale := staleness(w.ops, tm.MaxStaleness)
	violations = append(violations, stale...)

	ambiguous, bounded := 0, 0
	for _, o := range w.ops {
		if o.Ambiguous {
			ambiguous++
		}
		if o.Kind.isBounded() {
			bounded++
		}
	}
	faults := 0
	for _, k := range nm.Applied {
		faults += k
	}
	sum.runs++
	sum.ops += len(w.ops)
	sum.linOps += len(hist)
	sum.boundedReads += bounded
	sum.ambiguous += ambiguous
	sum.sessions += len(w.sessions)
	sum.faults += faults
	sum.linViolations += linViolations
	sum.staleViolations += len(stale)
	sum.sessionViolations += sessionViolations
	sum.other += other
	t.Logf("seed %d: %d operations (%d linearizable: %s; %d bounded reads, %d ambiguous writes), %d sessions, faults %v",
		seed, len(w.ops), len(hist), res, bounded, ambiguous, len(w.sessions), nm.Applied)

	if len(violations) == 0 {
		return
	}
	logMu.Lock()
	ev := &evidence{dir: *flagOut, seed: seed, schedule: sched, nemesisLog: slicesClone(nemLog), ops: w.ops,
		sessions: w.sessions, violations: violations, lin: lin, linExplained: linExplained, nodes: nodes}
	logMu.Unlock()
	folder, err := ev.write()
	if err != nil {
		folder = fmt.Sprintf("(not written: %v)", err)
	}
	t.Errorf("seed %d: %d violations; history, schedule, node logs and porcupine's visualisation in %s\n%s",
		seed, len(violations), folder, strings.Join(violations, "\n"))
}

// newRand is the schedule's generator: the seed alone decides it.
func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }

func fmtSchedule(sched []fault) string {
	var b strings.Builder
	for _, f := range sched {
		b.WriteString("  " + f.String() + "\n")
	}
	return b.String()
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

// settled waits until every node is ready and all agree on one leader with
// every node a member.
func settled(ctx context.Context, c *client, nodes []*node, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := settledOnce(ctx, c, nodes)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		pause(ctx, 100*time.Millisecond)
	}
}

func settledOnce(ctx context.Context, c *client, nodes []*node) error {
	leader := ""
	for _, n := range nodes {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		status, body, err := c.do(cctx, "GET", "http://"+n.httpAddr()+"/cluster/ready", nil)
		if err == nil && status != 200 {
			err = fmt.Errorf("n%d /cluster/ready: %d %s", n.idx, status, body)
		}
		var st clusterStatus
		if err == nil {
			st, err = c.status(cctx, n)
		}
		cancel()
		if err != nil {
			return err
		}
		if st.LeaderID == "" || (leader != "" && st.LeaderID != leader) {
			return fmt.Errorf("n%d names leader %q, others %q", n.idx, st.LeaderID, leader)
		}
		leader = st.LeaderID
		if len(st.Members) != len(nodes) {
			return fmt.Errorf("n%d has %d members, want %d", n.idx, len(st.Members), len(nodes))
		}
	}
	return nil
}

// checkSessions runs the session invariants on a settled cluster and
// returns how many failed (appended to violations):
//   - once the lease timeout and orphan grace have passed since the heal
//     (plus time for a healed cluster to commit), every open session is
//     listed on every node with exactly its registrations and every other
//     session is listed nowhere;
//   - of the open sessions, half are then closed by the client on the
//     healthy cluster: they are gone from every node within closeTimeout,
//     while the others stay.
func checkSessions(ctx context.Context, w *workload, nodes []*node, tm timing, healed time.Time, logf func(string, ...any), violations *[]string) int {
	limit := tm.LeaseTimeout + tm.OrphanGrace + 5*time.Second
	took, problems := waitSessions(ctx, w, nodes, w.sessions, limit-time.Since(healed))
	logf("sessions consistent after %v: %d problems", took.Round(time.Millisecond), len(problems))
	n := len(problems)
	*violations = append(*violations, problems...)
	var open []*session
	for _, s := range w.sessions {
		if s.State == sessOpen {
			open = append(open, s)
		}
	}
	for i, s := range open {
		if i%2 == 0 {
			w.closeSession(s)
		}
	}
	took, problems = waitSessions(ctx, w, nodes, w.sessions, closeTimeout)
	logf("closed %d of %d open sessions: registry consistent after %v, %d problems", (len(open)+1)/2, len(open), took.Round(time.Millisecond), len(problems))
	n += len(problems)
	*violations = append(*violations, problems...)
	for _, s := range open {
		if s.State == sessOpen {
			w.closeSession(s)
		}
	}
	return n
}
