package main

import (
	"fmt"
	"time"
)

// watchIdle watches a fresh cluster with the default flags and no load for
// c.idle and counts leader changes: a healthy idle cluster has none. Terms
// only grow at an election (hashicorp/raft pre-votes, so a candidate that
// cannot win does not raise it); the nodes' own leader-change counters also
// see a leader lost without a new one.
func watchIdle(c config, nodes []*proc) error {
	type view struct {
		Term     uint64 `json:"term"`
		LeaderID string `json:"leader_id"`
	}
	maxTerm := func() (uint64, error) { return maxTerm(nodes) }
	observed := func() (float64, error) {
		var sum float64
		for _, n := range nodes {
			m, err := metricValues(n.http, "raftlookupd_raft_leader_changes_total")
			if err != nil {
				return 0, err
			}
			sum += m["raftlookupd_raft_leader_changes_total"]
		}
		return sum, nil
	}
	term0, err := maxTerm()
	if err != nil {
		return err
	}
	obs0, err := observed()
	if err != nil {
		return err
	}
	leaders := map[string]bool{}
	stop := time.Now().Add(c.idle)
	for time.Now().Before(stop) {
		for _, n := range nodes {
			var v view
			if getJSON(n.http, "/cluster/status?local=true", &v) == nil && v.LeaderID != "" {
				leaders[fmt.Sprintf("%d/%s", v.Term, v.LeaderID)] = true
			}
		}
		time.Sleep(min(time.Second, time.Until(stop)))
	}
	term1, err := maxTerm()
	if err != nil {
		return err
	}
	obs1, err := observed()
	if err != nil {
		return err
	}
	changes := int(term1 - term0)
	fmt.Fprintf(c.out, "## Idle cluster (default flags, no load, watched %v)\n\n", c.idle)
	fmt.Fprintf(c.out, "leader changes (term %d -> %d): %d; leaders seen (term/id): %d; leader changes the nodes observed: %.0f\n\n",
		term0, term1, changes, len(leaders), obs1-obs0)
	c.fig.idle = &idleFigure{watched: c.idle, changes: changes}
	return nil
}

// maxTerm is the highest Raft term the nodes report: it grows by one per
// election (hashicorp/raft pre-votes, so a candidate that cannot win does
// not raise it).
func maxTerm(nodes []*proc) (uint64, error) {
	var best uint64
	for _, n := range nodes {
		var v struct {
			Term uint64 `json:"term"`
		}
		if err := getJSON(n.http, "/cluster/status?local=true", &v); err != nil {
			return 0, err
		}
		best = max(best, v.Term)
	}
	return best, nil
}

// electionsDuring runs f and counts the elections the nodes held meanwhile:
// load must not make followers give up on a live leader. It adds them to
// the run's figure.
func electionsDuring(c config, nodes []*proc, f func() error) (int, error) {
	before, err := maxTerm(nodes)
	if err != nil {
		return 0, err
	}
	if err := f(); err != nil {
		return 0, err
	}
	after, err := maxTerm(nodes)
	if err != nil {
		return 0, err
	}
	n := int(after - before)
	c.fig.loadElections += n
	c.fig.loadWatched = true
	return n, nil
}

// electionsSince counts the elections since the nodes' highest term was
// before, adds them to the run's figure, and prints them.
func electionsSince(c config, nodes []*proc, before uint64) error {
	after, err := maxTerm(nodes)
	if err != nil {
		return err
	}
	n := int(after - before)
	c.fig.loadElections += n
	c.fig.loadWatched = true
	fmt.Fprintf(c.out, "Elections during the load: %d.\n\n", n)
	return nil
}
