package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/raftlookupd/raftlookupd/wire"
)

// dialConcurrency bounds connections being set up at once, as a burst of
// reconnecting nsqds is bounded by the listen backlog: beyond it SYNs are
// dropped and retried a second later, which would measure the kernel.
const dialConcurrency = 128

// storm connects every producer to each address addrs gives it, identifies
// it (ports basePort+2i, +1: one nsqd identity per producer, the same on
// every connection), and pipelines lines on every connection at once. It
// returns when every line on every connection was acknowledged, with the
// open connections.
func storm(producers int, addrs func(i int) []string, basePort int, lines []string) ([]*producer, error) {
	var mu sync.Mutex
	var out []*producer
	var firstErr error
	sem := make(chan struct{}, dialConcurrency)
	var wg sync.WaitGroup
	for i := 0; i < producers; i++ {
		for _, a := range addrs(i) {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				p, err := dialProducerBuf(a, basePort+2*i, 4<<10)
				<-sem
				if err == nil {
					mu.Lock()
					out = append(out, p)
					mu.Unlock()
					err = p.pipeline(lines)
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("producer %d via %s: %w", i, a, err)
					}
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	return out, firstErr
}

func closeAll(ps []*producer) {
	for _, p := range ps {
		p.close()
	}
}

// metricValues reads the named unlabelled samples from a node's /metrics.
func metricValues(host string, names ...string) (map[string]float64, error) {
	resp, err := httpClient.Get("http://" + host + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok || !want[name] {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			return nil, fmt.Errorf("metric %s: %w", name, err)
		}
		out[name] = v
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, n := range names {
		if _, ok := out[n]; !ok {
			return nil, fmt.Errorf("no metric %s on %s", n, host)
		}
	}
	return out, nil
}

// holds reports whether a node's registry has the given sessions and
// producer records (topic plus channel registrations): every connection's
// every REGISTER applied there. It asks the node's own status, whose counts
// Apply keeps, so polling steals little CPU from the nodes being measured
// (/metrics takes about 1.5 ms to gather and encode).
func holds(host string, sessions, records int) bool {
	var st wire.Status
	err := getJSON(host, wire.PathStatus+"?local=true", &st)
	return err == nil && st.Registry.Sessions == sessions && st.Registry.Producers == records
}

// waitAllHold polls the nodes until each holds everything; a node that
// does is not asked again (registrations only accumulate here).
func waitAllHold(nodes []*proc, sessions, records int, timeout time.Duration) bool {
	pending := append([]*proc(nil), nodes...)
	return waitUntil(timeout, time.Millisecond, func() bool {
		for len(pending) > 0 && holds(pending[0].http, sessions, records) {
			pending = pending[1:]
		}
		return len(pending) == 0
	})
}

// benchStormEverywhere is upstream's HA layout on equal footing: N nsqds each
// registered with all three lookupds. Three nsqlookupd processes answer a
// REGISTER only after applying it, so every endpoint lists everything once
// the last reply arrived; for raftlookupd the figure is the time until every
// node's registry holds every connection's registrations.
func benchStormEverywhere(c config, refBin, raftBin string) error {
	const topics = 25 // x 2 channels = 50 REGISTERs per connection
	n := c.stormProducers
	lines := registerLines("every", topics)
	refs := make([]*proc, 3)
	for i := range refs {
		var err error
		if refs[i], err = startReferenceNamed(refBin, fmt.Sprintf("nsqlookupd%d", i+1)); err != nil {
			killAll(refs...)
			return err
		}
	}
	refTCP := []string{refs[0].tcp, refs[1].tcp, refs[2].tcp}
	refCPU := watchCPU(refs...)
	start := time.Now()
	prods, err := storm(n, func(int) []string { return refTCP }, 31000, lines)
	refTime := time.Since(start)
	refSpent, refFloor, _ := refCPU.spent()
	if err == nil {
		for _, r := range refs {
			if !everyProducerHasTopics(r.http, n, topics) {
				err = fmt.Errorf("%s does not list every registration after acknowledging them", r.name)
			}
		}
	}
	closeAll(prods)
	killAll(refs...)
	if err != nil {
		return err
	}

	nodes, err := startCluster(raftBin)
	if err != nil {
		return err
	}
	defer killAll(nodes...)
	tcp := []string{nodes[0].tcp, nodes[1].tcp, nodes[2].tcp}
	term0, err := maxTerm(nodes)
	if err != nil {
		return err
	}
	nodesCPU := watchCPU(nodes...)
	start = time.Now()
	prods, err = storm(n, func(int) []string { return tcp }, 31000, lines)
	ack := time.Since(start)
	defer closeAll(prods)
	if err != nil {
		return err
	}
	// 3 sessions per producer, each with 25 topic and 50 channel records.
	if !waitAllHold(nodes, 3*n, 3*n*3*topics, 120*time.Second) {
		return fmt.Errorf("storm registrations never held by every node")
	}
	all := time.Since(start)
	nodesSpent, floor, floorTime := nodesCPU.spent()
	for _, nd := range nodes {
		if !everyProducerHasTopics(nd.http, n, topics) {
			return fmt.Errorf("%s holds every record but /nodes does not list them", nd.name)
		}
	}
	regs := float64(3 * n * topics * 2)
	fmt.Fprintf(c.out, "## Storm on equal footing (%d producers, each registered with all 3 lookupds: %d connections x 50 REGISTER)\n\n", n, 3*n)
	fmt.Fprintf(c.out, "| | time | registrations/s |\n|---|---|---|\n")
	fmt.Fprintf(c.out, "| 3 x nsqlookupd, every endpoint acknowledged (and lists) everything | %v | %.0f |\n", refTime.Round(time.Millisecond), regs/refTime.Seconds())
	fmt.Fprintf(c.out, "| raftlookupd, acknowledged | %v | %.0f |\n", ack.Round(time.Millisecond), regs/ack.Seconds())
	fmt.Fprintf(c.out, "| raftlookupd, every node holds every connection's registrations | %v | %.0f |\n", all.Round(time.Millisecond), regs/all.Seconds())
	ratio := refTime.Seconds() / all.Seconds()
	fmt.Fprintf(c.out, "\nratio (raftlookupd everywhere / 3 x nsqlookupd, rate): %.2fx\n\n", ratio)
	fmt.Fprintf(c.out, "CPU time until then: %s; raftlookupd %s.\n\n", refSpent, nodesSpent)
	maxRatio := refTime.Seconds() / floorTime.Seconds()
	fmt.Fprintf(c.out, "Least wall time that CPU time allows on this machine, however it is scheduled: 3 x nsqlookupd %s; raftlookupd %s. "+
		"So here the ratio cannot exceed %.2fx until the nodes (or the load generator) spend less.\n\n", refFloor, floor, maxRatio)
	c.fig.stormEvery = &stormFigure{ref: refTime, ack: ack, all: all, ratio: ratio, maxRatio: maxRatio, n: n}
	return electionsSince(c, nodes, term0)
}

// dirSize sums the sizes of the files under dir.
func dirSize(dir string) int64 {
	var total int64
	filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			total += info.Size()
		}
		return nil
	})
	return total
}

// newestSnapshot returns the index and state size of the newest snapshot
// under a node's data dir (raft names its folders term-index-time), or
// zeros when it has none.
func newestSnapshot(dataDir string) (index uint64, size int64) {
	matches, _ := filepath.Glob(filepath.Join(dataDir, "snapshots", "*", "state.bin"))
	for _, m := range matches {
		dir := filepath.Base(filepath.Dir(m))
		parts := strings.Split(dir, "-")
		if len(parts) != 3 || strings.HasSuffix(dir, ".tmp") {
			continue
		}
		i, err := strconv.ParseUint(parts[1], 10, 64)
		st, serr := os.Stat(m)
		if err != nil || serr != nil || i < index {
			continue
		}
		index, size = i, st.Size()
	}
	return index, size
}
