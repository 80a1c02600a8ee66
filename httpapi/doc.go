// Package httpapi serves nsqlookupd 1.3.0's HTTP API (docs/COMPATIBILITY.md#http-common) from the
// replicated registry, plus raftlookupd's /cluster/* admin API, /metrics, the
// probes and pprof. Node-to-node calls are not served here: they use the Raft
// port (package cluster).
//
// Invariants:
//
//   - The nsqlookupd endpoints answer byte-for-byte like nsqlookupd 1.3.0: the
//     same router (julienschmidt/httprouter v1.3.0 with nsqlookupd's settings),
//     so 404/405/Allow/OPTIONS and the 301/307 path-fixing redirects match;
//     parameters only from the query string, first value wins, presence counts;
//     every V1 response (errors included) carries X-NSQ-Content-Type; JSON
//     lists are [] and never null; POST successes are 200 with an empty body
//     and no Content-Type.
//   - One deliberate difference (docs/COMPATIBILITY.md#diff-wildcard): /topic/delete and
//     /topic/tombstone refuse the wildcard topic "*" with 400 INVALID_ARG_TOPIC
//     instead of wiping or tombstoning at random. The reads keep the wildcard.
//   - Reads are served from the local state machine after Cluster.ReadBarrier
//     for the requested consistency (query parameter "consistency", else the
//     node default). Read responses carry X-Raftlookupd-Leader (leader id, empty
//     when unknown), X-Raftlookupd-Applied-Index (the applied index observed
//     before the registry was read, so the answer reflects at least that index)
//     and X-Raftlookupd-Last-Contact (milliseconds since the leader was last
//     heard from; 0 on the leader, -1 if never).
//   - A /lookup answer is encoded once per topic state and clock window: the
//     body is remembered in the registry (Registry.Remember) and sent again
//     while Registry.Recall says it still holds, so polling consumers cost a
//     map lookup, not an encoding.
//   - A mutation answers only after its command was committed and applied
//     locally (Cluster.Propose), so a following read on this node sees it.
//     Timestamps in commands are stamped here, never in the state machine.
//   - When an admin token is configured, every request under /cluster/ needs
//     it, whatever the method or path; the nsqlookupd endpoints never do
//     (go-nsq sends its own Authorization header there, which is ignored).
//     Without a token, membership and leadership changes and restore are
//     accepted from loopback only. pprof needs the token, or loopback without
//     one; its cmdline endpoint is never served (it would show the token).
//   - What one client can hold is bounded: 64 KiB of request line and
//     headers (else 431), read and idle timeouts, 1 MiB of an ignored body
//     (docs/COMPATIBILITY.md#diff-http-limits).
//   - This package holds no registry state and no package-level mutable state;
//     it talks to the rest of the node only through Registry and Cluster.
package httpapi
