package cluster

import (
	"context"
	"fmt"

	"github.com/hashicorp/raft"

	"github.com/raftlookupd/raftlookupd/fsm"
)

// Hooks for the external tests (package cluster_test) into what no client
// can call directly.

// RetireForTest is the leader's retire call, as its RPC makes it.
func (n *Node) RetireForTest(ctx context.Context, leaderIndex uint64) error {
	return n.retire(ctx, leaderIndex)
}

// CheckServingForTest runs the lease loop's serving check once.
func (n *Node) CheckServingForTest() {
	wasMember := true
	n.checkServing(&wasMember)
}

// LastIndexForTest is the node's last Raft log index.
func (n *Node) LastIndexForTest() uint64 { return n.raft.LastIndex() }

// CommandsForTest counts the state machine commands in the node's log at
// indexes after from, up to and including to (Raft's own entries, such as
// the nudge's barriers, are not commands).
func (n *Node) CommandsForTest(from, to uint64) (int, error) {
	var l raft.Log
	count := 0
	for i := from + 1; i <= to; i++ {
		if err := n.store.GetLog(i, &l); err != nil {
			return 0, err
		}
		if l.Type == raft.LogCommand {
			count++
		}
	}
	return count, nil
}

// LogCommandsForTest decodes the state machine commands in the node's log
// at indexes after from, up to and including its last index.
func (n *Node) LogCommandsForTest(from uint64) ([]fsm.Command, error) {
	var out []fsm.Command
	var l raft.Log
	for i := from + 1; i <= n.raft.LastIndex(); i++ {
		if err := n.store.GetLog(i, &l); err != nil {
			return nil, err
		}
		if l.Type != raft.LogCommand {
			continue
		}
		c, err := fsm.Decode(l.Data)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		out = append(out, c)
	}
	return out, nil
}
