// Package cluster runs one raftlookupd server: a hashicorp/raft peer whose
// state machine is fsm's registry, the queue that replicates this node's
// commands, its TCP sessions and owner lease, the leader's duties, read
// consistency, membership, and both halves of the node-to-node RPC.
//
// Files, by concern:
//
//	node.go          construction, lifecycle, configuration lookups; config.go
//	mux.go, tls.go   the Raft port: raft and RPC streams told apart by a first byte, mutual TLS
//	rpc.go           node-to-node RPC, server and client (HTTP on RPC streams)
//	queue.go         the FIFO that batches commands into log entries, up to 4 in flight
//	write.go         one commit attempt, forwarding, the leader's check of forwarded batches
//	sequencer.go     the leader proposes each origin's batches in sequence order
//	session.go       sessions this node owns; sessions_api.go is tcpproto's side of them
//	incarnation.go   incarnations numbered by the cluster (OpOpenIncarnation)
//	lease.go         lease renewal, member record, noticing this node's own expiry
//	leader.go        who leads, leader-only duties (lease and orphan expiry)
//	serving.go       no zombies: a node that cannot commit acknowledges nothing
//	limits.go        cluster-wide caps on sessions and registrations
//	read.go          read barriers, read index, freshness, readiness; status.go: /cluster/status
//	applied.go       waiting until an index is applied on this node
//	membership.go    join, leave, leadership transfer, the -join loop
//	discovery.go     -bootstrap-expect: finding fresh peers over /rpc/hello
//	backup.go        online backup and restore
//	recover.go       quorum-loss recovery; metrics.go: the node's metrics
//
// docs/ARCHITECTURE.md describes the write and read paths, sessions and
// orphans, and the trust boundaries in prose.
//
// Invariants:
//   - Nothing reaches the log that fsm would not apply: every command is
//     validated by fsm before it is queued (queue.go) or proposed, and a
//     forwarded batch is decoded, validated and checked against its origin
//     before the leader proposes it (write.go checkForwarded). Leader duties
//     (lease and orphan expiry, member removal) are proposed by the leader
//     directly and are never part of a forwarded batch.
//   - Order: one goroutine drains a node's queue into numbered batches, up
//     to four in flight; the leader proposes each origin's batches in
//     sequence order (sequencer.go), and after a failure the node resends
//     what did not commit oldest first, so a node's commands apply in the
//     order it queued them. A retried batch may commit twice; fsm applies a
//     batch (origin, incarnation, sequence) once.
//   - A batch the leader refuses for good fails its commands and closes the
//     sessions they belong to; it never blocks the queue.
//   - Sessions belong to one owner incarnation, numbered by the cluster; a
//     node takes no session until it has one. When the owner goes away
//     (drain, restart, lapsed lease) its sessions become orphans, listed
//     until -orphan-grace passes or the same nsqd is back. A PING is
//     recorded locally and carried by the next lease renewal, never one log
//     entry each.
//   - A node that cannot commit (removed, or its queue stalled longer than
//     the lease) acknowledges no client until it can (serving.go).
//   - Only members reach the RPC: with TLS, the handshake admits holders of
//     a certificate from the CA; without, the caller's IP must be a member's
//     (or loopback), and a forwarded batch must come from its origin's. The
//     admin token, when set, is required on every call. Join and hello are
//     the exceptions that admit a non-member; without TLS or a token, a
//     non-member may only join itself.
//   - Reads: stale answers locally; bounded answers locally while this node
//     leads, or, once caught up, while its state was known to include the
//     leader's commit index less than MaxStaleness ago; linearizable waits
//     until local state includes the leader's commit index as confirmed by
//     a quorum after the read arrived.
//   - Leader-only duties run while raft's NotifyCh says this node leads,
//     start after a Barrier, and rebuild their state from the registry.
package cluster
