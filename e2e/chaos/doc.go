// Package chaos is a Jepsen-style fault suite for raftlookupd: real
// raftlookupd processes, each in a Linux network namespace of its own joined
// to a bridge, under a seeded random schedule of faults (SIGKILL and
// restart, SIGSTOP/SIGCONT, partitions, one-way loss, delay, leadership
// transfer, leave and re-join) while concurrent clients drive the HTTP API
// and raw TCP "nsqd" sessions. After a heal and a settle period the
// recorded history goes to checkers: porcupine for linearizability of the
// topic/channel registry, a bounded-staleness checker, and the session
// invariants (no lost registration, no ghost producer).
//
// Everything lives in _test.go files:
//
//   - main_test.go builds the daemon once and removes namespaces on
//     SIGINT/SIGTERM;
//   - netns_test.go: the namespaces, veths, bridge and the client's dialer;
//   - node_test.go: raftlookupd processes inside the namespaces;
//   - nemesis_test.go: the schedule and how each fault is applied and healed;
//   - workload_test.go: HTTP clients and TCP sessions, recording a history;
//   - model_test.go: the porcupine model of the registry;
//   - check_test.go: staleness and session checks, evidence on failure;
//   - chaos_test.go: TestChaos, one fresh cluster and network per run.
//
// Run it with root (it creates namespaces): `make chaos RUNS=100 SEED=1`.
// `go test ./e2e/chaos` runs a short version (2 schedules). Flags after
// -args: -chaos.runs, -chaos.seed (run i uses seed+i; the seed of a
// failing run replays its schedule with -chaos.runs=1), -chaos.duration
// (fault phase per run), -chaos.orphan-grace, -chaos.out (evidence folder).
package chaos
