package cluster

import (
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlookupd/raftlookupd/internal/metrics"
)

type nodeMetrics struct {
	commitLatency *metrics.Histogram
	batches       metrics.Counter
	commands      metrics.Counter
	leaderChanges metrics.Counter
}

// WriteMetrics writes the node's Raft, replication and registry metrics.
func (n *Node) WriteMetrics(w *metrics.Writer) {
	state := n.raft.State()
	for _, s := range []raft.RaftState{raft.Follower, raft.Candidate, raft.Leader, raft.Shutdown} {
		v := 0.0
		if s == state {
			v = 1
		}
		w.Gauge("raftlookupd_raft_state", "1 for this node's current Raft state.", v, "state", s.String())
	}
	stats := n.raft.Stats()
	w.Gauge("raftlookupd_raft_term", "Current Raft term.", float64(parseUint(stats["term"])))
	w.Gauge("raftlookupd_raft_last_log_index", "Index of the last log entry.", float64(parseUint(stats["last_log_index"])))
	w.Gauge("raftlookupd_raft_commit_index", "Highest log index known committed.", float64(n.raft.CommitIndex()))
	w.Gauge("raftlookupd_raft_applied_index", "Highest log index applied to the registry.", float64(n.fsm.appliedIndex()))
	lc := -1.0
	if state == raft.Leader {
		lc = 0
	} else if t := n.raft.LastContact(); !t.IsZero() {
		lc = time.Since(t).Seconds()
	}
	w.Gauge("raftlookupd_raft_last_contact_seconds", "Seconds since the leader was last heard from (0 on the leader, -1 never).", lc)
	w.Counter("raftlookupd_raft_leader_changes_total", "Leader changes observed by this node.", n.metrics.leaderChanges.Value())
	w.Gauge("raftlookupd_replication_queue_depth", "Commands waiting to be committed.", float64(n.queue.depth()))
	w.Counter("raftlookupd_replication_batches_total", "Batches (log entries) committed by this node's queue.", n.metrics.batches.Value())
	w.Counter("raftlookupd_replication_commands_total", "Commands committed by this node's queue.", n.metrics.commands.Value())
	w.Histogram("raftlookupd_replication_commit_seconds", "Time from taking a batch until it committed, retries included.", n.metrics.commitLatency)
	w.Gauge("raftlookupd_owned_sessions", "TCP sessions this node owns.", float64(n.SessionCount()))
	st := n.Registry().Stats()
	w.Gauge("raftlookupd_registry_sessions", "Sessions in the replicated registry (all nodes).", float64(st.Sessions))
	w.Gauge("raftlookupd_registry_topics", "Topic keys in the registry.", float64(st.Topics))
	w.Gauge("raftlookupd_registry_channels", "Channel keys in the registry.", float64(st.Channels))
	w.Gauge("raftlookupd_registry_producers", "Producer records (topic and channel registrations).", float64(st.Producers))
}
