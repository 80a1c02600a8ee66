// Package tcpproto serves nsqlookupd's TCP protocol V1 (the port nsqd
// registers on, 4160 by default), byte for byte as nsqlookupd 1.3.0 does,
// on top of a replicated registry it reaches only through the Registry
// interface declared here.
//
// Invariants:
//
//   - Every response is a 4-byte big-endian size followed by the payload;
//     there is no frame type. Every error is fatal: the error frame is
//     written, then the connection is closed. Texts that nsqlookupd has are
//     reproduced exactly (errors.go); the others are clear E_* texts.
//   - A reply never waits for replication. Registry methods are
//     non-blocking by contract, because nsqd gives each reply a 1 s deadline
//     and drops the connection when it is missed.
//   - A connection has at most one session. It is opened by a successful
//     IDENTIFY and closed exactly once, when the connection ends for any
//     reason (EOF, error reply, write failure, CloseConnections, Shutdown).
//     A connection that never identified never reaches the Registry.
//   - Commands of one connection are handled strictly in order, one reply
//     each, so per-session order is the order the Registry sees.
//   - Nothing a client sends can make the server allocate without bound: a
//     line is read into a fixed buffer of Config.MaxLineBytes, an IDENTIFY
//     body is allocated only after its length was checked against
//     Config.MaxIdentifyBody, its fields are bounded by what the registry
//     keeps, and registrations and connections are capped.
//     These are the deliberate departures from nsqlookupd, which crashes on
//     a negative body length and grows memory on endless lines.
//   - Idle connections have no read deadline (nsqd pings only every 15 s and
//     nsqlookupd never times peers out); dead peers are found by TCP
//     keep-alive. Writes have a deadline so a client that stops reading
//     cannot pin a goroutine.
//   - A refusal from the Registry closes the connection: a cluster-wide cap
//     answers E_INVALID, anything else (the node cannot commit, has no
//     incarnation, or the session is gone) E_UNAVAILABLE, so nsqd reconnects
//     and registers again, possibly through another node.
//   - Every goroutine is owned by the Server and waited for by Shutdown.
package tcpproto
