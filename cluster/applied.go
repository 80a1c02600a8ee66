package cluster

import (
	"context"
	"io"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"github.com/raftlookupd/raftlookupd/fsm"
)

// appliedFSM wraps the state machine to let readers wait until a log index
// has been applied locally (read-your-writes after forwarding, linearizable
// reads). The index itself is the registry's; this only adds the wake-up.
type appliedFSM struct {
	*fsm.FSM
	mu      sync.Mutex
	changed chan struct{} // closed and replaced after every Apply and Restore
	// self is this node's id; sessionsLost signals a restore that dropped
	// its sessions (backup.go).
	self         string
	sessionsLost chan struct{}
	// removals signals a committed configuration that dropped a server
	// (or the first one seen since start, when what it replaced is not
	// known); servers is the previous one's, touched only by raft's FSM
	// goroutine. See Node.snapshotAfterRemovals.
	removals chan struct{}
	servers  map[raft.ServerID]bool
	// lastConfig is the last committed configuration entry applied, for
	// readers on other goroutines (Node.retiredSince).
	lastConfig atomic.Pointer[seenConfiguration]
}

// seenConfiguration is a committed configuration entry: its log index and
// its servers.
type seenConfiguration struct {
	index   uint64
	servers map[raft.ServerID]bool
}

func newAppliedFSM(self string) *appliedFSM {
	return &appliedFSM{FSM: fsm.New(), changed: make(chan struct{}), self: self, sessionsLost: make(chan struct{}, 1), removals: make(chan struct{}, 1)}
}

func (a *appliedFSM) Apply(l *raft.Log) any {
	res := a.FSM.Apply(l)
	a.wake()
	return res
}

func (a *appliedFSM) Restore(rc io.ReadCloser) error {
	before, known := a.Registry().Owner(a.self)
	err := a.FSM.Restore(rc)
	if err == nil {
		a.noteRestore(before, known)
	}
	a.wake()
	return err
}

// StoreConfiguration implements raft.ConfigurationStore: raft calls it, in
// log order, for every committed configuration entry.
func (a *appliedFSM) StoreConfiguration(index uint64, c raft.Configuration) {
	next := make(map[raft.ServerID]bool, len(c.Servers))
	for _, s := range c.Servers {
		next[s.ID] = true
	}
	a.lastConfig.Store(&seenConfiguration{index: index, servers: next})
	removed := a.servers == nil
	for id := range a.servers {
		removed = removed || !next[id]
	}
	a.servers = next
	if removed {
		select {
		case a.removals <- struct{}{}:
		default:
		}
	}
}

// lastConfiguration returns the last committed configuration entry this
// node applied since it started (index 0: none), read-only.
func (a *appliedFSM) lastConfiguration() (uint64, map[raft.ServerID]bool) {
	if c := a.lastConfig.Load(); c != nil {
		return c.index, c.servers
	}
	return 0, nil
}

func (a *appliedFSM) wake() {
	a.mu.Lock()
	defer a.mu.Unlock()
	close(a.changed)
	a.changed = make(chan struct{})
}

// waitApplied returns once index has been applied locally, or ctx ends.
func (a *appliedFSM) waitApplied(ctx context.Context, index uint64) error {
	for {
		// The channel first, then the index: an Apply between the two
		// closes the channel we hold, so no wake-up is missed.
		a.mu.Lock()
		ch := a.changed
		a.mu.Unlock()
		if a.appliedIndex() >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (a *appliedFSM) appliedIndex() uint64 { return a.Registry().AppliedIndex() }
