package cluster

import (
	"context"
	"io"
	"sync"

	"github.com/hashicorp/raft"

	"github.com/raftlookupd/raftlookupd/fsm"
)

// appliedFSM wraps the state machine to let readers wait until a log index
// has been applied locally (read-your-writes after forwarding, linearizable
// reads).
type appliedFSM struct {
	*fsm.FSM
	mu      sync.Mutex
	index   uint64
	changed chan struct{} // closed and replaced whenever index grows
}

func newAppliedFSM() *appliedFSM {
	return &appliedFSM{FSM: fsm.New(), changed: make(chan struct{})}
}

func (a *appliedFSM) Apply(l *raft.Log) any {
	res := a.FSM.Apply(l)
	a.advance(l.Index)
	return res
}

func (a *appliedFSM) Restore(rc io.ReadCloser) error {
	if err := a.FSM.Restore(rc); err != nil {
		return err
	}
	a.advance(a.Registry().AppliedIndex())
	return nil
}

func (a *appliedFSM) advance(index uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if index > a.index {
		a.index = index
		close(a.changed)
		a.changed = make(chan struct{})
	}
}

// waitApplied returns once index has been applied locally, or ctx ends.
func (a *appliedFSM) waitApplied(ctx context.Context, index uint64) error {
	for {
		a.mu.Lock()
		cur, ch := a.index, a.changed
		a.mu.Unlock()
		if cur >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (a *appliedFSM) appliedIndex() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.index
}
