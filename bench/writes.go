package main

import (
	"fmt"
	"io"
	"net/http"
	"time"
)

// writeFigure is the latency of HTTP mutations sent one at a time.
type writeFigure struct {
	refP50, refP99, leaderP50, leaderP99, followerP50, followerP99 time.Duration
}

// benchWrites times POST /topic/create sent one after another, as an
// operator's script or nsqadmin sends them: to nsqlookupd, and to
// raftlookupd's leader and to a follower. A node answers a mutation once it
// applied it itself, so the client reads its write back from the same node;
// a follower learns that the entry committed from the leader's next append
// (see cluster/nudge.go).
func benchWrites(c config, refBin, raftBin string) error {
	const n = 300
	ref, err := startReference(refBin)
	if err != nil {
		return err
	}
	refDs, err := timeCreates(ref.http, "ref", n)
	ref.kill()
	if err != nil {
		return err
	}
	nodes, err := startCluster(raftBin)
	if err != nil {
		return err
	}
	defer killAll(nodes...)
	leader, followers, err := leaderOf(nodes)
	if err != nil {
		return err
	}
	leaderDs, err := timeCreates(leader.http, "leader", n)
	if err != nil {
		return err
	}
	followerDs, err := timeCreates(followers[0].http, "follower", n)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.out, "## HTTP mutations one at a time (%d x POST /topic/create, each answered before the next)\n\n", n)
	fmt.Fprintf(c.out, "| | p50 | p90 | p99 |\n|---|---|---|---|\n")
	for _, r := range []struct {
		name string
		ds   []time.Duration
	}{{"nsqlookupd", refDs}, {"raftlookupd leader", leaderDs}, {"raftlookupd follower", followerDs}} {
		fmt.Fprintf(c.out, "| %s | %v | %v | %v |\n", r.name, ms(percentile(r.ds, 0.5)), ms(percentile(r.ds, 0.9)), ms(percentile(r.ds, 0.99)))
	}
	fmt.Fprintln(c.out)
	c.fig.writes = &writeFigure{
		refP50: percentile(refDs, 0.5), refP99: percentile(refDs, 0.99),
		leaderP50: percentile(leaderDs, 0.5), leaderP99: percentile(leaderDs, 0.99),
		followerP50: percentile(followerDs, 0.5), followerP99: percentile(followerDs, 0.99),
	}
	return nil
}

// timeCreates creates n topics on host one after another and returns each
// round trip.
func timeCreates(host, prefix string, n int) ([]time.Duration, error) {
	cl := &http.Client{Timeout: 10 * time.Second}
	ds := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		start := time.Now()
		resp, err := cl.Post(fmt.Sprintf("http://%s/topic/create?topic=write-%s-%d", host, prefix, i), "", nil)
		if err != nil {
			return nil, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("POST /topic/create on %s: status %d", host, resp.StatusCode)
		}
		ds = append(ds, time.Since(start))
	}
	return ds, nil
}
