package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const producersPerRun = 10

// benchLookup: /lookup throughput on a follower against the reference and
// against the HTTP ceiling (a trivial handler writing a body as long as the
// answer), at each size, plus memory.
func benchLookup(c config, refBin, raftBin string) error {
	fmt.Fprintf(c.out, "## /lookup throughput (closed loop, %d clients; raftlookupd on a follower)\n\n", c.clients)
	fmt.Fprintf(c.out, "The ceiling is a trivial net/http handler in its own process writing a body as long as the /lookup answer, measured with the same load generator; "+
		"the targets take turns. The distinct-body ceiling is the same handler holding one body per topic (as many as the registry has) and writing the one asked for: "+
		"the machine's limit for serving that many different answers from memory. 10 producers x N topics x 2 channels, each producer PINGing every 15 s as nsqd does; where a connection's keys exceed the default -max-registrations (100,000), the nodes run with 3 x N.\n\n")
	fmt.Fprintf(c.out, "| registrations | body bytes | ceiling req/s | distinct-body ceiling req/s | nsqlookupd req/s | raftlookupd req/s | raftlookupd / ceiling | raftlookupd / distinct-body ceiling | nsqlookupd / ceiling | raftlookupd / nsqlookupd | RSS nsqlookupd | RSS raftlookupd (follower) | RSS ratio |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, size := range c.sizes {
		topics := size / (producersPerRun * 2)
		ref, err := startReference(refBin)
		if err != nil {
			return err
		}
		// Each connection holds topics x (1 topic + 2 channel) keys; the
		// default cap of 100,000 per connection is below that at 900k.
		nodes, err := startCluster(raftBin, "-max-registrations", fmt.Sprint(max(100000, 3*topics)))
		if err != nil {
			killAll(ref)
			return err
		}
		fig, err := lookupAtSize(c, ref, nodes, topics)
		killAll(append(nodes, ref)...)
		if err != nil {
			return err
		}
		fig.size = size
		c.fig.lookup = append(c.fig.lookup, fig)
	}
	var elections []string
	for _, f := range c.fig.lookup {
		elections = append(elections, fmt.Sprintf("%d at %d", f.elections, f.size))
	}
	fmt.Fprintf(c.out, "\nElections during the /lookup load: %s registrations.\n\n", strings.Join(elections, ", "))
	fmt.Fprintf(c.out, "CPU time per answered request, each server process during its own turns (the load generator's is not counted):\n\n")
	for _, f := range c.fig.lookup {
		var parts []string
		for i, d := range f.cpuPerReq {
			parts = append(parts, fmt.Sprintf("%s %.2f us", lookupTargets[i], float64(d)/float64(time.Microsecond)))
		}
		ratio := "n/a"
		if f.cpuPerReq[0] > 0 {
			ratio = fmt.Sprintf("%.2fx", float64(f.cpuPerReq[2])/float64(f.cpuPerReq[0]))
		}
		fmt.Fprintf(c.out, "- %d registrations: %s; raftlookupd / ceiling %s.\n", f.size, strings.Join(parts, ", "), ratio)
	}
	fmt.Fprintln(c.out)
	return nil
}

func lookupAtSize(c config, ref *proc, nodes []*proc, topics int) (lookupFigure, error) {
	var fig lookupFigure
	_, followers, err := leaderOf(nodes)
	if err != nil {
		return fig, err
	}
	f := followers[0]
	refProds, err := load([]string{ref.tcp}, producersPerRun, topics, 20000, "t")
	defer closeAll(refProds)
	if err != nil {
		return fig, err
	}
	raftProds, err := load([]string{nodes[0].tcp, nodes[1].tcp, nodes[2].tcp}, producersPerRun, topics, 20000, "t")
	defer closeAll(raftProds)
	if err != nil {
		return fig, err
	}
	// The registry gauges are cheap to poll; /nodes then checks the answer.
	if !waitUntil(300*time.Second, 50*time.Millisecond, func() bool { return holds(f.http, producersPerRun, producersPerRun*topics*3) }) ||
		!allNodesHaveTopics(f.http, topics) {
		return fig, fmt.Errorf("follower never showed %d registrations", producersPerRun*topics*2)
	}
	size, err := bodySize(f.http, "/lookup?topic=t0")
	if err != nil {
		return fig, err
	}
	// The producers PING as nsqds do, so both lookupds see their last
	// updates move during the run.
	stopPings := pingLikeNsqd(append(append([]*producer(nil), refProds...), raftProds...))
	defer stopPings()
	// nsqlookupd's answer has the same shape; only remote ports' digits
	// may make it a few bytes longer or shorter.
	ceiling, err := startCeiling(size, 0, c.ceilingBallast, c.ballastChunks)
	if err != nil {
		return fig, err
	}
	defer ceiling.kill()
	distinct, err := startCeiling(size, topics, c.ceilingBallast, c.ballastChunks)
	if err != nil {
		return fig, err
	}
	defer distinct.kill()
	// The targets take turns, in a rotating order, so that a change in
	// the machine's load during the run does not favour one of them.
	const rounds = 3
	var turns [4]turnTally
	elections, err := electionsDuring(c, nodes, func() error {
		turns = roundRobin(c, [4]*proc{ceiling, ref, f, distinct}, rounds, topics)
		return nil
	})
	if err != nil {
		return fig, err
	}
	if err := stopPings(); err != nil {
		return fig, err
	}
	ceilRate, refRate, raftRate, distinctRate := turns[0].rate, turns[1].rate, turns[2].rate, turns[3].rate
	if turns[0].failed+turns[1].failed+turns[2].failed+turns[3].failed > 0 {
		fmt.Fprintf(c.out, "(failures: ceiling %d, nsqlookupd %d, raftlookupd %d, distinct-body ceiling %d)\n",
			turns[0].failed, turns[1].failed, turns[2].failed, turns[3].failed)
	}
	refRSS, _ := ref.rss()
	raftRSS, _ := f.rss()
	if c.ceilingBallast > 0 {
		ceilRSS, _ := ceiling.rss()
		distinctRSS, _ := distinct.rss()
		fmt.Fprintf(c.out, "(RSS with the ballast: ceiling %s, distinct-body ceiling %s)\n", mib(ceilRSS), mib(distinctRSS))
	}
	saveHeap(c, f, fmt.Sprintf("lookup-heap-%d", producersPerRun*topics*2))
	fmt.Fprintf(c.out, "| %d | %d | %.0f | %.0f | %.0f | %.0f | %.2f | %.2f | %.2f | %.2fx | %s | %s | %.2fx |\n", producersPerRun*topics*2, size,
		ceilRate, distinctRate, refRate, raftRate, raftRate/ceilRate, raftRate/distinctRate, refRate/ceilRate, raftRate/refRate,
		mib(refRSS), mib(raftRSS), float64(raftRSS)/float64(refRSS))
	fig = lookupFigure{ceiling: ceilRate, distinct: distinctRate, ref: refRate, raft: raftRate, refRSS: refRSS, raftRSS: raftRSS, elections: elections}
	for i, t := range turns {
		if t.answered > 0 {
			fig.cpuPerReq[i] = time.Duration(float64(t.cpu) / t.answered)
		}
	}
	return fig, nil
}

// allNodesHaveTopics reports whether /nodes lists every producer with every
// topic.
func allNodesHaveTopics(host string, topics int) bool {
	return everyProducerHasTopics(host, producersPerRun, topics)
}

// everyProducerHasTopics reports whether /nodes lists n producers, each with
// the given number of topics.
func everyProducerHasTopics(host string, n, topics int) bool {
	var v struct {
		Producers []struct {
			Topics []string `json:"topics"`
		} `json:"producers"`
	}
	if err := getJSON(host, "/nodes?consistency=stale", &v); err != nil || len(v.Producers) != n {
		return false
	}
	for _, p := range v.Producers {
		if len(p.Topics) != topics {
			return false
		}
	}
	return true
}

// benchStorm: 100 connections x 50 REGISTER, the reference's time to
// acknowledge against raftlookupd's time until visible on all three nodes
// (and, to tell replication's share, until a single-node cluster holds it).
func benchStorm(c config, refBin, raftBin string) error {
	const conns, topics = 100, 25 // 25 topics x 2 channels = 50 REGISTERs
	ref, err := startReference(refBin)
	if err != nil {
		return err
	}
	// Every producer dials at once, as nsqds do after a blip (storm bounds
	// the dials in progress by the listen backlog).
	lines := registerLines("storm", topics)
	refCPU := watchCPU(ref)
	start := time.Now()
	refProds, err := storm(conns, func(int) []string { return []string{ref.tcp} }, 30000, lines)
	refTime := time.Since(start)
	refSpent, refFloor, _ := refCPU.spent()
	if err != nil {
		return err
	}
	closeAll(refProds)
	// The same storm again on the same process, with new identities, once
	// the first one's producers are gone: what a long-running lookupd
	// meets. A fresh process pays for memory it touches the first time.
	var refWarm time.Duration
	if !waitUntil(10*time.Second, time.Millisecond, func() bool { return everyProducerHasTopics(ref.http, 0, 0) }) {
		err = fmt.Errorf("nsqlookupd still lists producers after their connections closed")
	} else {
		start = time.Now()
		refProds, err = storm(conns, func(int) []string { return []string{ref.tcp} }, 32000, registerLines("again", topics))
		refWarm = time.Since(start)
		closeAll(refProds)
	}
	ref.kill()
	if err != nil {
		return err
	}

	// The same storm against a single-node cluster: the protocol, the
	// queue, Raft and the registry, without replication.
	one, err := startSingle(raftBin, "one")
	if err != nil {
		killAll(one)
		return err
	}
	oneCPU := watchCPU(one)
	start = time.Now()
	oneProds, err := storm(conns, func(int) []string { return []string{one.tcp} }, 30000, lines)
	if err == nil && !waitAllHold([]*proc{one}, conns, conns*3*topics, 60*time.Second) {
		err = fmt.Errorf("storm registrations never held by the single node")
	}
	oneTime := time.Since(start)
	oneSpent, _, _ := oneCPU.spent()
	closeAll(oneProds)
	one.kill()
	if err != nil {
		return err
	}

	nodes, err := startCluster(raftBin)
	if err != nil {
		return err
	}
	defer killAll(nodes...)
	term0, err := maxTerm(nodes)
	if err != nil {
		return err
	}
	nodesCPU := watchCPU(nodes...)
	start = time.Now()
	spread := func(i int) []string { return []string{nodes[i%3].tcp} }
	raftProds, err := storm(conns, spread, 30000, lines)
	ack := time.Since(start)
	defer func() { closeAll(raftProds) }()
	if err != nil {
		return err
	}
	// Each connection holds one session with 25 topic and 50 channel
	// records. Each node's registry counts are polled (waitAllHold) rather
	// than /nodes, a 70 kB answer re-encoded while the registry changes,
	// which would steal CPU from the nodes being measured; /nodes is
	// checked once at the end.
	if !waitAllHold(nodes, conns, conns*3*topics, 60*time.Second) {
		return fmt.Errorf("storm registrations never visible on all nodes")
	}
	all := time.Since(start)
	nodesSpent, floor, floorTime := nodesCPU.spent()
	for _, n := range nodes {
		if !everyProducerHasTopics(n.http, conns, topics) {
			return fmt.Errorf("%s holds every record but /nodes does not list them", n.name)
		}
	}
	for _, n := range nodes {
		fmt.Fprintf(os.Stderr, "%s: %s\n", n.name, scrape(n.http, "raftlookupd_replication_batches_total", "raftlookupd_replication_commit_seconds_sum", "raftlookupd_replication_commit_seconds_count"))
	}
	// Again on the same cluster, as for nsqlookupd above.
	closeAll(raftProds)
	if !waitAllHold(nodes, 0, 0, 30*time.Second) {
		return fmt.Errorf("the storm's sessions were still registered after their connections closed")
	}
	start = time.Now()
	raftProds, err = storm(conns, spread, 32000, registerLines("again", topics))
	if err != nil {
		return err
	}
	if !waitAllHold(nodes, conns, conns*3*topics, 60*time.Second) {
		return fmt.Errorf("second storm's registrations never visible on all nodes")
	}
	allWarm := time.Since(start)
	regs := float64(conns * topics * 2)
	fmt.Fprintf(c.out, "## Reconnect storm (100 connections x 50 REGISTER, all dialled at once)\n\n")
	fmt.Fprintf(c.out, "| | time | registrations/s |\n|---|---|---|\n")
	fmt.Fprintf(c.out, "| nsqlookupd, acknowledged | %v | %.0f |\n", refTime.Round(time.Millisecond), regs/refTime.Seconds())
	fmt.Fprintf(c.out, "| raftlookupd, acknowledged | %v | %.0f |\n", ack.Round(time.Millisecond), regs/ack.Seconds())
	fmt.Fprintf(c.out, "| raftlookupd, visible on all 3 nodes | %v | %.0f |\n", all.Round(time.Millisecond), regs/all.Seconds())
	fmt.Fprintf(c.out, "| raftlookupd as a single-node cluster, held | %v | %.0f |\n", oneTime.Round(time.Millisecond), regs/oneTime.Seconds())
	fmt.Fprintf(c.out, "| nsqlookupd, a second storm on the same process, acknowledged | %v | %.0f |\n", refWarm.Round(time.Millisecond), regs/refWarm.Seconds())
	fmt.Fprintf(c.out, "| raftlookupd, a second storm on the same cluster, visible on all 3 nodes | %v | %.0f |\n", allWarm.Round(time.Millisecond), regs/allWarm.Seconds())
	ratio := refTime.Seconds() / all.Seconds()
	warmRatio := refWarm.Seconds() / allWarm.Seconds()
	fmt.Fprintf(c.out, "\nratio (visible everywhere / reference acknowledged rate): %.2fx; a single node: %.2fx; the second storm: %.2fx\n\n", ratio, refTime.Seconds()/oneTime.Seconds(), warmRatio)
	fmt.Fprintf(c.out, "CPU time until then (first storm): %s; raftlookupd %s; the single node %s.\n\n", refSpent, nodesSpent, oneSpent)
	maxRatio := refTime.Seconds() / floorTime.Seconds()
	fmt.Fprintf(c.out, "Least wall time that CPU time allows on this machine, however it is scheduled: nsqlookupd %s; raftlookupd %s. "+
		"So here the first storm's ratio cannot exceed %.2fx until the nodes (or the load generator) spend less.\n\n", refFloor, floor, maxRatio)
	c.fig.storm = &stormFigure{n: conns, ref: refTime, ack: ack, all: all, ratio: ratio, maxRatio: maxRatio,
		refWarm: refWarm, allWarm: allWarm, warmRatio: warmRatio}
	if err := electionsSince(c, nodes, term0); err != nil {
		return err
	}
	closeAll(raftProds)
	raftProds = nil
	return profileStorms(c, nodes, conns, topics, spread)
}

// profileStorms, with -profile-dir, repeats the storm on the same cluster
// for 20 s (each one's connections closed and gone from every node before
// the next, so every storm can use the same producer identities) while
// every node's CPU is profiled: a single storm is too short
// for a profile. The profiles are storm-n1.pprof and so on; they include
// the disconnects.
func profileStorms(c config, nodes []*proc, conns, topics int, spread func(int) []string) error {
	if c.profileDir == "" {
		return nil
	}
	const d = 20 * time.Second
	var stops []func()
	for _, n := range nodes {
		stops = append(stops, profileDuring(c, n, "storm-"+n.name, d+time.Second))
	}
	cpu := watchCPU(nodes...)
	storms := 0
	for end := time.Now().Add(d); time.Now().Before(end); storms++ {
		ps, err := storm(conns, spread, 34000, registerLines(fmt.Sprintf("p%d-", storms), topics))
		if err == nil && !waitAllHold(nodes, conns, conns*3*topics, 60*time.Second) {
			err = fmt.Errorf("profiled storm %d never visible on all nodes", storms)
		}
		closeAll(ps)
		if err == nil && !waitAllHold(nodes, 0, 0, 30*time.Second) {
			err = fmt.Errorf("profiled storm %d still registered after its connections closed", storms)
		}
		if err != nil {
			return err
		}
	}
	var perStorm []string
	for i, n := range nodes {
		perStorm = append(perStorm, fmt.Sprintf("%s %v", n.name, ((cpuTime(n)-cpu.before[i])/time.Duration(storms)).Round(10*time.Microsecond)))
	}
	for _, stop := range stops {
		stop()
	}
	fmt.Fprintf(os.Stderr, "bench: profiled %d storms; CPU per storm, connect to disconnect: %s\n", storms, strings.Join(perStorm, ", "))
	return nil
}

// benchFailover: SIGKILL the leader, then time until a registration made on
// a survivor is visible on every survivor. The killed node is restarted
// between trials.
func benchFailover(c config, _, raftBin string) error {
	nodes, err := startCluster(raftBin)
	if err != nil {
		return err
	}
	defer killAll(nodes...)
	if c.idle > 0 {
		if err := watchIdle(c, nodes); err != nil {
			return err
		}
	}
	var times []time.Duration
	for trial := 0; trial < c.trials; trial++ {
		leader, survivors, err := leaderOf(nodes)
		if err != nil {
			return err
		}
		p, err := dialProducer(survivors[0].tcp, 40000+2*trial)
		if err != nil {
			return err
		}
		topic := fmt.Sprintf("failover%d", trial)
		leader.kill()
		start := time.Now()
		if _, err := p.roundTrip("REGISTER " + topic + "\n"); err != nil {
			return err
		}
		ok := waitUntil(30*time.Second, time.Millisecond, func() bool {
			for _, s := range survivors {
				if k, err := lookupProducers(s.http, topic); err != nil || k != 1 {
					return false
				}
			}
			return true
		})
		if !ok {
			return fmt.Errorf("trial %d: registration never visible on survivors", trial)
		}
		times = append(times, time.Since(start))
		p.close()
		if err := leader.start(); err != nil {
			return err
		}
		if err := waitHTTP(leader.http+"/cluster/ready", 60*time.Second); err != nil {
			return err
		}
	}
	fmt.Fprintf(c.out, "## Failover (SIGKILL leader -> registration on a survivor visible on every survivor)\n\n")
	fmt.Fprintf(c.out, "trials: %v\n\nmedian %v, max %v\n\n", roundAll(times), percentile(times, 0.5).Round(time.Millisecond), percentile(times, 1).Round(time.Millisecond))
	c.fig.failover = &failoverFigure{median: percentile(times, 0.5), max: percentile(times, 1)}
	return nil
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}

// benchLatency: TCP reply latency of REGISTER under /lookup load, on the
// reference and on a follower, and on a survivor during leader elections.
func benchLatency(c config, refBin, raftBin string) error {
	const topics = 1500
	probe := func(tcp string, port int, stop <-chan struct{}) ([]time.Duration, error) {
		p, err := dialProducer(tcp, port)
		if err != nil {
			return nil, err
		}
		defer p.close()
		var ds []time.Duration
		for i := 0; ; i++ {
			select {
			case <-stop:
				return ds, nil
			default:
			}
			d, err := p.roundTrip(fmt.Sprintf("REGISTER probe%d\n", i%500))
			if err != nil {
				return ds, err
			}
			ds = append(ds, d)
			time.Sleep(time.Millisecond)
		}
	}
	underLoad := func(tcp, http string) ([]time.Duration, error) {
		stop := make(chan struct{})
		var ds []time.Duration
		var perr error
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); ds, perr = probe(tcp, 50000, stop) }()
		lookupLoad(http, "t", topics, c.clients, c.duration)
		close(stop)
		wg.Wait()
		return ds, perr
	}
	ref, err := startReference(refBin)
	if err != nil {
		return err
	}
	refProds, err := load([]string{ref.tcp}, producersPerRun, topics, 20000, "t")
	if err != nil {
		return err
	}
	refDs, err := underLoad(ref.tcp, ref.http)
	for _, p := range refProds {
		p.close()
	}
	ref.kill()
	if err != nil {
		return err
	}
	nodes, err := startCluster(raftBin)
	if err != nil {
		return err
	}
	defer killAll(nodes...)
	_, followers, err := leaderOf(nodes)
	if err != nil {
		return err
	}
	prods, err := load([]string{nodes[0].tcp, nodes[1].tcp, nodes[2].tcp}, producersPerRun, topics, 20000, "t")
	if err != nil {
		return err
	}
	defer func() {
		for _, p := range prods {
			p.close()
		}
	}()
	raftDs, err := underLoad(followers[0].tcp, followers[0].http)
	if err != nil {
		return err
	}
	// Elections: probe a survivor while the leader is killed three times.
	var electDs []time.Duration
	for i := 0; i < 3; i++ {
		leader, survivors, err := leaderOf(nodes)
		if err != nil {
			return err
		}
		stop := make(chan struct{})
		var ds []time.Duration
		var perr error
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); ds, perr = probe(survivors[0].tcp, 51000+2*i, stop) }()
		leader.kill()
		var elected atomic.Bool
		waitUntil(10*time.Second, 5*time.Millisecond, func() bool {
			l, _, err := leaderOf(survivors)
			elected.Store(err == nil && l != nil)
			return elected.Load()
		})
		time.Sleep(500 * time.Millisecond) // keep probing past the election
		close(stop)
		wg.Wait()
		if perr != nil {
			return perr
		}
		electDs = append(electDs, ds...)
		if err := leader.start(); err != nil {
			return err
		}
		if err := waitHTTP(leader.http+"/cluster/ready", 60*time.Second); err != nil {
			return err
		}
	}
	c.fig.latency = &latencyFigure{refP50: percentile(refDs, 0.5), refP99: percentile(refDs, 0.99), raftP50: percentile(raftDs, 0.5),
		raftP99: percentile(raftDs, 0.99), electP50: percentile(electDs, 0.5), electP99: percentile(electDs, 0.99)}
	fmt.Fprintf(c.out, "## TCP reply latency (REGISTER round trips, 1 ms apart)\n\n| | samples | p50 | p99 | max |\n|---|---|---|---|---|\n")
	for _, r := range []struct {
		name string
		ds   []time.Duration
	}{{"nsqlookupd under /lookup load", refDs}, {"raftlookupd follower under /lookup load", raftDs}, {"raftlookupd survivor during 3 leader elections", electDs}} {
		fmt.Fprintf(c.out, "| %s | %d | %v | %v | %v |\n", r.name, len(r.ds), percentile(r.ds, 0.5).Round(time.Microsecond),
			percentile(r.ds, 0.99).Round(time.Microsecond), percentile(r.ds, 1).Round(time.Microsecond))
	}
	fmt.Fprintln(c.out)
	return nil
}

// benchDBGrowth: raft.db growth with 100 nsqd-like connections PINGing
// every 15 s, extrapolated to an hour and a day.
func benchDBGrowth(c config, _, raftBin string) error {
	// With a shorter renew interval the log grows as it would over
	// 2s/interval times longer; snapshots are checked every 5s so
	// compaction keeps up as it would in real time.
	nodes, err := startCluster(raftBin, "-lease-renew-interval", c.dbRenew.String(), "-raft-snapshot-interval", "5s")
	if err != nil {
		return err
	}
	defer killAll(nodes...)
	prods, err := load([]string{nodes[0].tcp, nodes[1].tcp, nodes[2].tcp}, 100, 5, 60000, "db")
	if err != nil {
		return err
	}
	defer func() {
		for _, p := range prods {
			p.close()
		}
	}()
	size := func() (int64, uint64) {
		var total int64
		for _, n := range nodes {
			if st, err := os.Stat(filepath.Join(n.dataDir, "raft.db")); err == nil {
				total = max(total, st.Size())
			}
		}
		var st struct {
			LastLogIndex uint64 `json:"last_log_index"`
		}
		getJSON(nodes[0].http, "/cluster/status", &st)
		return total, st.LastLogIndex
	}
	s0, i0 := size()
	stop := time.Now().Add(c.dbFor)
	for i := 0; time.Now().Before(stop); i++ {
		for _, p := range prods {
			if _, err := p.roundTrip("PING\n"); err != nil {
				return err
			}
		}
		time.Sleep(min(15*time.Second, time.Until(stop)))
	}
	s1, i1 := size()
	speedup := float64(2*time.Second) / float64(c.dbRenew)
	// The hours the run stands for come from its length, not from its log
	// entries: after each renewal the leader also appends a barrier
	// (cluster/nudge.go), and Raft its own entries.
	hours := c.dbFor.Hours() * speedup
	fmt.Fprintf(c.out, "## raft.db size (100 connections PINGing every 15 s, watched %v, lease renewals every %v = %.0fx the default rate)\n\n", c.dbFor, c.dbRenew, speedup)
	fmt.Fprintf(c.out, "raft.db %s -> %s (largest of the three nodes) over %d log entries: %.1f hours of renewals at the default 2s interval.\n\n",
		mib(s0), mib(s1), i1-i0, hours)
	c.fig.db = &dbFigure{hours: hours, size: s1}
	return nil
}

// scrape returns the named samples from a node's /metrics, for diagnostics.
func scrape(host string, names ...string) string {
	resp, err := httpClient.Get("http://" + host + "/metrics")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		for _, n := range names {
			if strings.HasPrefix(line, n+" ") {
				out = append(out, line)
			}
		}
	}
	return strings.Join(out, "; ")
}

// lookupTargets names roundRobin's targets, in order.
var lookupTargets = [4]string{"ceiling", "nsqlookupd", "raftlookupd", "distinct-body ceiling"}

// turnTally adds up one target's turns under the /lookup load.
type turnTally struct {
	rate     float64 // req/s, averaged over the rounds
	failed   int64
	cpu      time.Duration // the target process's CPU time during its turns
	answered float64       // requests answered during them
}

// roundRobin runs the /lookup load against each target in turn, rounds
// times, in a rotating order. The follower (lookupTargets[2]) is profiled
// in its last turn.
func roundRobin(c config, targets [4]*proc, rounds, topics int) [4]turnTally {
	var out [4]turnTally
	slice := c.duration / time.Duration(rounds)
	for r := range rounds {
		for k := range targets {
			i := (r + k) % len(targets)
			var stop func()
			if i == 2 && r == rounds-1 {
				stop = profileDuring(c, targets[i], fmt.Sprintf("lookup-%d", producersPerRun*topics*2), slice)
			}
			before := cpuTime(targets[i])
			rate, failed := lookupLoad(targets[i].http, "t", topics, c.clients, slice)
			out[i].cpu += cpuTime(targets[i]) - before
			out[i].answered += rate * slice.Seconds()
			if stop != nil {
				stop()
			}
			fmt.Fprintf(os.Stderr, "lookup %d registrations, round %d, %s: %.0f req/s\n", producersPerRun*topics*2, r+1, lookupTargets[i], rate)
			out[i].rate += rate / float64(rounds)
			out[i].failed += failed
		}
	}
	return out
}
