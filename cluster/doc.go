// Package cluster runs one raftlookupd server: a hashicorp/raft peer whose
// state machine is fsm's registry, the queue that replicates this node's
// commands, its TCP sessions and owner lease, the leader's duties, read
// consistency, membership, and both halves of the node-to-node RPC.
//
// Files, by concern:
//
//	node.go          construction, lifecycle, configuration lookups
//	mux.go, tls.go   the Raft port: raft and RPC streams told apart by a first byte, mutual TLS
//	rpc.go           node-to-node RPC, server and client (HTTP on RPC streams)
//	queue.go         the FIFO that batches commands into log entries (group commit)
//	write.go         one commit attempt, forwarding, the leader's check of forwarded batches
//	session.go       sessions this node owns; sessions_api.go is tcpproto's side of them
//	lease.go         lease renewal, member record, noticing this node's own expiry
//	leader.go        who leads, leader-only duties (lease expiry)
//	read.go          read barriers, read index, readiness; status.go: /cluster/status
//	membership.go    join, leave, leadership transfer, the -join loop
//	incarnation.go, recover.go   incarnation numbers; quorum-loss recovery
//
// Invariants:
//   - Nothing reaches the log that fsm would not apply: every command is
//     validated by fsm before it is queued (queue.go) or proposed, and a
//     forwarded batch is decoded, validated and checked against its origin
//     before the leader proposes it (write.go checkForwarded). Leader duties
//     (lease expiry, member removal) are proposed by the leader directly and
//     are never part of a forwarded batch.
//   - Order: one goroutine drains a node's queue, and the next batch leaves
//     only after the leader committed the previous one, so a node's commands
//     apply in the order it queued them. A retried batch may commit twice;
//     fsm applies a batch (origin, incarnation, sequence) once.
//   - A batch the leader refuses for good fails its commands and closes the
//     sessions they belong to; it never blocks the queue.
//   - Sessions belong to one owner incarnation. A PING is recorded locally
//     and carried by the next lease renewal, never one log entry each.
//   - Only members reach the RPC: with TLS, the handshake admits holders of
//     a certificate from the CA; without, the caller's IP must be a member's
//     (or loopback). The admin token, when set, is required on every call.
//     Join is the exception that admits a non-member (with the token).
//   - Reads: stale answers locally; bounded answers locally while this node
//     leads or heard from a leader within MaxStaleness after it caught up;
//     linearizable waits until local state includes the leader's commit
//     index as confirmed by a quorum after the read arrived.
//   - Leader-only duties run while raft's NotifyCh says this node leads,
//     start after a Barrier, and rebuild their state from the registry.
package cluster
