// Package fsm is raftlookupd's replicated state machine: nsqlookupd's
// registration database (sessions, topic and channel keys, producers,
// tombstones) plus cluster bookkeeping (member addresses, owner leases).
//
// Invariants:
//   - Pure: no network, no goroutines, no clock, no randomness. Every time
//     value arrives inside a command, stamped once by its proposer, so every
//     node that applies the same log holds the same state.
//   - Commands are one versioned envelope (Version, Op, payload) with explicit
//     op numbers that are never reused. A batch applies many in order.
//   - An entry that cannot be decoded stops the node (fail-stop beats
//     divergence).
//   - Reads take the read lock and return copies; /lookup, /channels and
//     /topic operations go through the topic index, never a scan of all
//     registrations. Read-time filters (inactivity, tombstone lifetime) take
//     the reader's clock through Filter.
//   - A reader may remember what it derived from a topic's Lookup answer
//     (Remember/Recall, within MemoBudget). Apply only drops memos, on every
//     change to what Lookup shows for the topic (a PING keeps a memo that
//     showed its producer active for the memo's whole window); a memo is
//     recalled only while the reader's clock stays where the same producers
//     pass the filter. Memos are not state: never replicated, never in
//     snapshots.
//   - Snapshots are versioned and sorted, so equal states give equal bytes;
//     Restore decodes into a fresh registry and swaps it in under the lock.
//   - A session belongs to one owner incarnation. Commands naming a dead
//     incarnation (older, or expired) are ignored, so a restarted or expired
//     node can never resurrect its old sessions.
//   - Incarnations are numbered by the cluster: OpOpenIncarnation's log
//     index, never a clock. Apply answers the open with that number
//     (Opened), and a node also finds it by the random nonce it proposed
//     (Owner.Nonce). Only batches of an owner's live incarnation
//     apply, each sequence number once. Owners whose incarnation a lease
//     renewal opened (logs written before OpOpenIncarnation) keep the older
//     rules, so an existing log replays to the state it always gave.
//   - A connection that closes while its owner is healthy is removed at
//     once, as nsqlookupd does. When the owner itself goes away (drain, a
//     new process, a lapsed lease) its sessions become orphans: listed as
//     before until a deadline carried by the command, or until a live
//     session of the same producer identity has settled (its first
//     replicated PING, by which nsqd has re-sent every REGISTER), or closes.
//     Orphans are indexed by deadline and by identity, and live settled
//     sessions counted per identity: no operation scans sessions.
//   - Only valid commands are written (Validate, Encode); Apply still takes
//     whatever an older build wrote.
package fsm
