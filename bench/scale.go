package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// benchScale: many nsqd identities with many topics each (9,000 x 100 by
// default, 900k registrations), spread over the three nodes. Against
// nsqlookupd's acknowledgement: the time until every node holds everything,
// RSS, the time a restarted follower needs to serve the registry again, and
// the size of raft.db and of a snapshot.
func benchScale(c config, refBin, raftBin string) error {
	n, topics := c.scaleProducers, c.scaleTopics
	regs := n * topics
	lines := make([]string, topics)
	for t := range lines {
		lines[t] = fmt.Sprintf("REGISTER scale%d\n", t)
	}
	const basePort = 20000 // identities 20000.. (ports are only numbers in IDENTIFY)
	const snapshotThreshold = 16

	ref, err := startReference(refBin)
	if err != nil {
		return err
	}
	start := time.Now()
	prods, err := storm(n, func(int) []string { return []string{ref.tcp} }, basePort, lines)
	refTime := time.Since(start)
	refRSS, _ := ref.rss()
	if err == nil {
		if k, lerr := lookupProducers(ref.http, "scale0"); lerr != nil || k != n {
			err = fmt.Errorf("nsqlookupd lists %d producers of scale0 (%v), want %d", k, lerr, n)
		}
	}
	closeAll(prods)
	ref.kill()
	if err != nil {
		return err
	}

	// Snapshots are checked every 30s (the default is 60s) and taken after
	// 16 entries (group commit writes 90k registrations in about 36): late
	// enough not to fall inside the timed storm, soon enough
	// that the restarted follower restores a snapshot plus a short log, as a
	// node that has run for a while does.
	nodes, err := startCluster(raftBin, "-raft-snapshot-interval", "30s", "-raft-snapshot-threshold", fmt.Sprint(snapshotThreshold))
	if err != nil {
		return err
	}
	defer killAll(nodes...)
	tcp := []string{nodes[0].tcp, nodes[1].tcp, nodes[2].tcp}
	var stops []func()
	for _, nd := range nodes {
		// Profiles cover the storm and what follows it within 5s.
		stops = append(stops, profileDuring(c, nd, "scale-"+nd.name, 6*time.Second))
	}
	term0, err := maxTerm(nodes)
	if err != nil {
		return err
	}
	start = time.Now()
	prods, err = storm(n, func(i int) []string { return []string{tcp[i%3]} }, basePort, lines)
	ack := time.Since(start)
	defer closeAll(prods)
	if err != nil {
		return err
	}
	if !waitAllHold(nodes, n, regs, 10*time.Minute) {
		return fmt.Errorf("%d registrations never held by every node", regs)
	}
	all := time.Since(start)
	term1, err := maxTerm(nodes)
	if err != nil {
		return err
	}
	for _, stop := range stops {
		stop()
	}
	var raftRSS int64
	rss := make([]string, len(nodes))
	for i, nd := range nodes {
		r, _ := nd.rss()
		raftRSS = max(raftRSS, r)
		rss[i] = nd.name + " " + mib(r) + " (" + nd.rssParts() + ")"
		saveHeap(c, nd, "scale-heap-"+nd.name)
	}
	for _, nd := range nodes {
		if k, err := lookupProducers(nd.http, "scale0"); err != nil || k != n {
			return fmt.Errorf("%s lists %d producers of scale0 (%v), want %d", nd.name, k, err, n)
		}
	}

	// Wait for every node's first snapshot (if the log is long enough to
	// take one), then restart a follower.
	var st struct {
		LastLogIndex uint64 `json:"last_log_index"`
	}
	if err := getJSON(nodes[0].http, "/cluster/status?local=true", &st); err != nil {
		return err
	}
	// A snapshot taken before the storm (a node snapshots when it first
	// applies a configuration) does not count: wait for one covering it.
	if st.LastLogIndex >= snapshotThreshold && !waitUntil(3*time.Minute, time.Second, func() bool {
		for _, nd := range nodes {
			if index, _ := newestSnapshot(nd.dataDir); index < st.LastLogIndex {
				return false
			}
		}
		return true
	}) {
		return fmt.Errorf("no snapshot covering the storm on every node within 3 minutes")
	}
	var raftDB, snap int64
	for _, nd := range nodes {
		if st, err := os.Stat(filepath.Join(nd.dataDir, "raft.db")); err == nil {
			raftDB = max(raftDB, st.Size())
		}
		_, size := newestSnapshot(nd.dataDir)
		snap = max(snap, size)
	}

	leader, followers, err := leaderOf(nodes)
	if err != nil {
		return err
	}
	f := followers[0]
	f.kill()
	start = time.Now()
	if err := f.start(); err != nil {
		return err
	}
	// The registry the cluster serves once the follower is back: its own
	// connections ended with its process, as with nsqlookupd, so the
	// figure is the time until it serves the same registry as the leader.
	var served int
	if !waitUntil(5*time.Minute, 5*time.Millisecond, func() bool {
		want, err := metricValues(leader.http, "raftlookupd_registry_sessions", "raftlookupd_registry_producers")
		if err != nil {
			return false
		}
		served = int(want["raftlookupd_registry_producers"])
		if !holds(f.http, int(want["raftlookupd_registry_sessions"]), served) {
			return false
		}
		resp, err := httpClient.Get("http://" + f.http + "/cluster/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}) {
		return fmt.Errorf("restarted follower never served the registry")
	}
	restart := time.Since(start)

	fmt.Fprintf(c.out, "## Scale (%d producers x %d topics = %d registrations, spread over the 3 nodes)\n\n", n, topics, regs)
	fmt.Fprintf(c.out, "| | time | registrations/s |\n|---|---|---|\n")
	fmt.Fprintf(c.out, "| nsqlookupd, acknowledged | %v | %.0f |\n", refTime.Round(time.Millisecond), float64(regs)/refTime.Seconds())
	fmt.Fprintf(c.out, "| raftlookupd, acknowledged | %v | %.0f |\n", ack.Round(time.Millisecond), float64(regs)/ack.Seconds())
	fmt.Fprintf(c.out, "| raftlookupd, held by all 3 nodes | %v | %.0f |\n", all.Round(time.Millisecond), float64(regs)/all.Seconds())
	fmt.Fprintf(c.out, "\nratio (held everywhere / reference acknowledged rate): %.2fx\n\n", refTime.Seconds()/all.Seconds())
	fmt.Fprintf(c.out, "RSS: nsqlookupd %s; raftlookupd %v (largest / reference: %.2fx).\n\n", mib(refRSS), rss, float64(raftRSS)/float64(refRSS))
	fmt.Fprintf(c.out, "raft.db %s, snapshot %s (largest of the 3 nodes; %d log entries; snapshots checked every 30s, taken after %d entries).\n\n",
		mib(raftDB), mib(snap), st.LastLogIndex, snapshotThreshold)
	c.fig.loadElections += int(term1 - term0)
	c.fig.loadWatched = true
	fmt.Fprintf(c.out, "Elections during the storm: %d.\n\n", term1-term0)
	fmt.Fprintf(c.out, "Restarted follower (SIGKILL, start) serving the same registry as the leader (%d registrations; its own connections ended with it): %v.\n\n",
		served, restart.Round(time.Millisecond))
	c.fig.scale = &scaleFigure{producers: n, topics: topics, ref: refTime, ack: ack, all: all, refRSS: refRSS, raftRSS: raftRSS,
		restart: restart, restartRegs: served, raftDB: raftDB, snapshot: snap}
	return nil
}
