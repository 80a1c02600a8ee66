package fsm

import (
	"fmt"
	"io"

	"github.com/hashicorp/raft"
)

// FSM adapts the Registry to raft.FSM.
type FSM struct {
	reg *Registry
	// batchBuf is the storage Apply decodes a batch's commands into, kept
	// from one entry to the next (raft calls Apply from one goroutine). It
	// holds as many commands as the largest batch applied so far, at most
	// MaxBatchCommands.
	batchBuf []Command
}

// New returns a state machine over an empty registry.
func New() *FSM { return &FSM{reg: NewRegistry()} }

// Registry returns the registry for reads.
func (f *FSM) Registry() *Registry { return f.reg }

// Apply applies one committed log entry. Its result is nil or an error for a
// single command, and []error (one per command) for a batch.
//
// An entry this build cannot decode stops the node: applying some entries and
// skipping others would make this node's state diverge from the others'.
func (f *FSM) Apply(l *raft.Log) any {
	c, err := DecodeInto(l.Data, f.batchBuf)
	if err != nil {
		panic(fmt.Sprintf("raftlookupd: log entry %d (term %d) cannot be applied: %v; "+
			"stopping so this node cannot diverge (is it older than the node that wrote the entry?)",
			l.Index, l.Term, err))
	}
	r := f.reg
	r.mu.Lock()
	defer r.mu.Unlock()
	res := r.apply(l.Index, &c)
	r.appliedIndex = l.Index
	f.batchBuf = ReleaseBatch(&c)
	return res
}

// Snapshot captures the registry. The state is encoded under the read lock
// (a copy costs memory proportional to the state, and frees Apply at once).
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.reg.mu.RLock()
	defer f.reg.mu.RUnlock()
	return &snapshot{data: f.reg.encodeSnapshot()}, nil
}

// Restore replaces the registry with a snapshot's content: it is decoded into
// a fresh state, then that one value is swapped in under the lock.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("fsm: read snapshot: %w", err)
	}
	fresh, err := decodeSnapshot(data)
	if err != nil {
		return err
	}
	r := f.reg
	r.mu.Lock()
	defer r.mu.Unlock()
	r.state = fresh.state
	// The old topics and their memos are unreachable now; Remember checks
	// the topic is still the registry's before it charges the budget.
	r.memoBytes.Store(0)
	return nil
}

type snapshot struct{ data []byte }

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s.data); err != nil {
		sink.Cancel()
		return fmt.Errorf("fsm: write snapshot: %w", err)
	}
	return sink.Close()
}

func (s *snapshot) Release() {}
