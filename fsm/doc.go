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
//     change to what Lookup shows for the topic; a memo is recalled only
//     while the reader's clock stays where the same producers pass the
//     filter. Memos are not state: never replicated, never in snapshots.
//   - Snapshots are versioned and sorted, so equal states give equal bytes;
//     Restore decodes into a fresh registry and swaps it in under the lock.
//   - A session belongs to one owner incarnation. Commands naming a dead
//     incarnation (older, or expired) are ignored, so a restarted or expired
//     node can never resurrect its old sessions.
package fsm
