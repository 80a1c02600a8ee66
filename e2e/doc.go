// Package e2e holds the multi-process tests of raftlookupd: the real
// raftlookupd and nsqd binaries run as processes on 127.0.0.1 ports, driven
// over raw TCP and HTTP and by a go-nsq consumer.
//
// Everything lives in _test.go files:
//
//   - main_test.go builds the binaries once per `go test` run (or takes
//     them from E2E_RAFTLOOKUPD_BIN / E2E_NSQD_BIN).
//   - harness_test.go: free ports, child processes and their logs (printed
//     and kept under $TMPDIR/raftlookupd-e2e-logs when a test fails),
//     waitFor/eventually, HTTP helpers.
//   - node_test.go: raftlookupd nodes (Kill, Term, Stop, Cont, Restart) and
//     1- or 3-node clusters (static -peers) waited ready via /cluster/ready
//     and /cluster/status; nsqdproc_test.go: nsqd processes.
//   - reference_test.go runs the real nsqlookupd 1.3.0 in-process.
//   - diffscript_test.go is the differential runner, normalize_test.go its
//     normalizer; diff_test.go is the script (docs/COMPATIBILITY.md#baseline) and the
//     tests that run it against a second nsqlookupd, a single raftlookupd
//     node and a follower of a 3-node cluster.
//   - deviations_test.go covers the deliberate differences from nsqlookupd;
//     limits_test.go pins the TCP limit flags.
//   - lifecycle_test.go: SIGTERM orphans the node's sessions (listed for the
//     grace), hands leadership over and keeps the node a member, PINGs ride
//     on lease renewals, a node back after its lease
//     expired closes its clients, a restarted follower refuses bounded reads
//     until it caught up.
//   - nsqd_test.go runs a real nsqd and a go-nsq consumer against raftlookupd
//     and restarts it; cluster_test.go fails over a 3-node cluster under a
//     real nsqd.
//   - ha_test.go (helpers in ha_helpers_test.go): the high-availability
//     behaviour of a 3-node cluster under nsqd and go-nsq: listed once,
//     leader SIGKILL with zero failed reads, owner-lease expiry (producers
//     listed until the grace ends), quorum loss
//     (SIGSTOP), full and rolling restarts, a frozen leader resuming.
//   - ops_test.go (helpers in ops_helpers_test.go): the README's operator
//     recipes through raftlookupctl: grow, shrink, replace, leave and rejoin,
//     admin token, non-voters, quorum-loss recovery, backup and restore,
//     metrics and JSON logs.
//   - hostile_test.go (generators in hostile_*_test.go): random HTTP
//     requests, nsqd frames, Raft-port bytes and forged node-to-node
//     batches against a live 3-node cluster, then the registry, sessions,
//     members and a restart from the logs checked; E2E_HOSTILE_SEED=N
//     repeats a run's requests.
//   - tls_test.go (helpers in tls_helpers_test.go): mutual TLS on the Raft
//     port with certificates made by the test: failover, outsiders
//     refused, rotation on SIGHUP. nonmember_test.go: a non-loopback
//     non-member source refused by the RPC and the admin API.
//     rawport_test.go speaks the Raft port's stream kinds directly.
//   - backup_test.go: online backup and restore through raftlookupctl
//     (snapshot save, inspect, restore) across a wipe of every node, under
//     a real nsqd.
//
// Run: go test -race ./e2e. Environment: E2E_TRANSCRIPT=1 (with -v) logs
// every step's answer; E2E_RACE_BINARIES=1 builds the binaries with -race;
// E2E_RAFTLOOKUPD_BIN / E2E_NSQD_BIN / E2E_RAFTLOOKUPCTL_BIN use prebuilt
// binaries; E2E_LOG_LEVEL
// (default debug) is raftlookupd's -log-level; E2E_FULL_LOGS=1 prints whole
// logs instead of their last 32 KiB.
package e2e
