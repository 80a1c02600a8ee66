package cluster

import "context"

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
