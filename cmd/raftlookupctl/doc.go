// Command raftlookupctl is the operator CLI of a raftlookupd cluster. It talks
// to the admin API (/cluster/*) of any one node over HTTP; the node forwards
// membership changes to the leader, so any member's address will do.
//
// Usage:
//
//	raftlookupctl [-addr host:port] [-token TOKEN] [-timeout 5s] COMMAND [ARGS]
//
// Commands:
//
//	status [-json]                    this node's view: state, term, leader, indexes, members
//	join ID RAFT_ADDRESS [-nonvoter]  add a server (a voter unless -nonvoter)
//	leave ID                          remove a server
//	transfer-leadership [ID]          hand leadership to ID, or to any up-to-date voter
//	snapshot save FILE                write a consistent backup of the cluster's registry to FILE
//	snapshot restore FILE             replace the registry on every node with FILE's topics and channels
//	snapshot inspect FILE             print FILE's index, term and counts (reads the file only)
//	health                            exit 0 if the node has a leader and has caught up
//	version                           print this program's version
//
// Global flags, also accepted after the command:
//
//	-addr     admin HTTP address of a node, host:port or an http(s):// URL (default 127.0.0.1:4161)
//	-token    admin token, sent as "Authorization: Bearer TOKEN" (default $RAFTLOOKUPD_ADMIN_TOKEN)
//	-timeout  timeout of the whole request (default 5s)
//
// Command flags and positional arguments may come in any order. Exit status
// is 0 on success, 1 when the request failed (connection error or an error
// status from the node, printed as one line on stderr) and 2 on a usage error.
//
// The JSON types are mirrored here rather than imported from package cluster,
// which would link the Raft stores into a small HTTP client; a test checks
// the mirror against package cluster. The backup format is package fsm's,
// so snapshot reads and checks files exactly as a node does.
//
// snapshot save and restore wait up to 70s unless -timeout is given: a
// restore returns once a quorum of nodes installed the backup.
package main
