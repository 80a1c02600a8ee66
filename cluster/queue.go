package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlookupd/raftlookupd/fsm"
)

// queue is the node's FIFO of commands waiting for replication. One goroutine
// drains it: it takes everything queued (up to MaxBatch) into one batch entry,
// commits it through the leader (locally, or forwarded), and retries the same
// batch through elections until it commits. So commands from this node apply
// in order, many per log entry (group commit), and TCP replies never wait.
type queue struct {
	n   *Node
	inc uint64

	mu      sync.Mutex
	items   []item
	wake    chan struct{}
	seq     uint64
	pending int // items taken by run and not yet committed
}

type item struct {
	cmd  fsm.Command
	done chan error // nil when nobody waits
}

func newQueue(n *Node, inc uint64) *queue {
	return &queue{n: n, inc: inc, wake: make(chan struct{}, 1)}
}

// enqueue adds a command nobody waits for. A command the log must not hold
// is refused here, alone, rather than failing the batch it would join.
func (q *queue) enqueue(c fsm.Command) error {
	if err := c.Validate(); err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) >= q.n.cfg.MaxQueue {
		return ErrQueueFull
	}
	q.items = append(q.items, item{cmd: c})
	q.signal()
	return nil
}

// enqueueWait adds a command and returns a channel that receives its result
// once it is applied on this node.
func (q *queue) enqueueWait(c fsm.Command) <-chan error {
	done := make(chan error, 1)
	if err := c.Validate(); err != nil {
		done <- err
		return done
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) >= q.n.cfg.MaxQueue {
		done <- ErrQueueFull
		return done
	}
	q.items = append(q.items, item{cmd: c, done: done})
	q.signal()
	return done
}

func (q *queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *queue) depth() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) + q.pending
}

func (q *queue) take() []item {
	q.mu.Lock()
	defer q.mu.Unlock()
	k := min(len(q.items), q.n.cfg.MaxBatch)
	batch := make([]item, k)
	copy(batch, q.items)
	q.items = q.items[k:]
	if len(q.items) == 0 {
		q.items = nil // let the backing array go after a burst
	}
	q.pending = k
	return batch
}

func (q *queue) run() {
	ctx := q.n.ctx
	for {
		items := q.take()
		if len(items) == 0 {
			select {
			case <-q.wake:
				continue
			case <-ctx.Done():
				q.failAll(ErrShutdown)
				return
			}
		}
		q.seq++
		b := fsm.Command{Op: fsm.OpBatch, Session: fsm.SessionID{Owner: q.n.cfg.NodeID, Incarnation: q.inc}, BatchSeq: q.seq}
		b.Batch = make([]fsm.Command, len(items))
		for i := range items {
			b.Batch[i] = items[i].cmd
		}
		data, err := b.Encode()
		if err != nil {
			// Each command was validated when queued, so only the entry
			// size can fail here (MaxBatch above what fits
			// fsm.MaxEntryBytes), or a command that must be proposed
			// alone: fail these commands, keep going.
			q.n.logger.Error("batch refused before replication", "commands", len(items), "error", err)
			q.mu.Lock()
			q.pending = 0
			q.mu.Unlock()
			for _, it := range items {
				if it.done != nil {
					it.done <- err
				}
			}
			continue
		}
		waiting := false
		for _, it := range items {
			waiting = waiting || it.done != nil
		}
		start := time.Now()
		results, err := q.commit(ctx, data, waiting)
		if err == nil {
			q.n.metrics.commitLatency.Observe(time.Since(start).Seconds())
			q.n.metrics.batches.Inc()
			q.n.metrics.commands.Add(uint64(len(items)))
		}
		q.mu.Lock()
		q.pending = 0
		q.mu.Unlock()
		for i, it := range items {
			if it.done == nil {
				continue
			}
			switch {
			case err != nil:
				it.done <- err
			case i < len(results):
				it.done <- results[i]
			default:
				it.done <- nil
			}
		}
		if err != nil {
			q.failAll(err)
			return
		}
	}
}

func (q *queue) failAll(err error) {
	q.mu.Lock()
	items := q.items
	q.items = nil
	q.mu.Unlock()
	for _, it := range items {
		if it.done != nil {
			it.done <- err
		}
	}
}

// commit retries one batch until it is applied on this node, or the node
// shuts down. A retry after an ambiguous failure may commit the batch twice;
// the state machine applies a batch sequence number once.
func (q *queue) commit(ctx context.Context, data []byte, waitLocal bool) ([]error, error) {
	backoff := 5 * time.Millisecond
	for attempt := 0; ; attempt++ {
		results, err := q.n.applyBatch(ctx, data, waitLocal)
		if err == nil {
			return results, nil
		}
		if ctx.Err() != nil {
			return nil, ErrShutdown
		}
		if attempt%20 == 5 {
			q.n.logger.Warn("replication is retrying", "attempt", attempt, "error", err)
		} else {
			q.n.logger.Debug("replication retry", "attempt", attempt, "error", err)
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil, ErrShutdown
		}
		// Retries are cheap (a local call, or a forward that fails fast
		// while there is no leader); a short cap means a new leader is
		// used within 50ms of its election.
		backoff = min(backoff*2, 50*time.Millisecond)
	}
}

// applyBatch commits data through Raft on this node if it leads, else
// through the leader. With waitLocal it then waits until this node applied
// it, so an HTTP client reads its own write from this node. TCP commands do
// not wait: order is kept because the next batch leaves only after the
// leader committed this one.
func (n *Node) applyBatch(ctx context.Context, data []byte, waitLocal bool) ([]error, error) {
	res, err := n.applyLocal(data)
	if errors.Is(err, raft.ErrNotLeader) {
		res, err = n.forwardApply(ctx, data)
	}
	if err != nil {
		return nil, err
	}
	if !waitLocal {
		return res.errors(), nil
	}
	wctx, cancel := context.WithTimeout(ctx, n.cfg.WriteTimeout)
	defer cancel()
	if err := n.fsm.waitApplied(wctx, res.Index); err != nil {
		return nil, fmt.Errorf("wait for local apply of %d: %w", res.Index, err)
	}
	return res.errors(), nil
}

// ApplyResult is what committing one batch returned: its log index and one
// result code per command (see fsm.ResultCode).
type ApplyResult struct {
	Index uint64  `json:"index"`
	Codes []uint8 `json:"codes"`
}

func (r ApplyResult) errors() []error {
	out := make([]error, len(r.Codes))
	for i, c := range r.Codes {
		out[i] = fsm.ResultError(c)
	}
	return out
}

// applyLocal commits data through this node's Raft; raft.ErrNotLeader when a
// follower.
func (n *Node) applyLocal(data []byte) (ApplyResult, error) {
	f := n.raft.Apply(data, n.cfg.WriteTimeout)
	if err := f.Error(); err != nil {
		return ApplyResult{}, err
	}
	res := ApplyResult{Index: f.Index()}
	if errs, ok := f.Response().([]error); ok {
		res.Codes = make([]uint8, len(errs))
		for i, e := range errs {
			res.Codes[i] = fsm.ResultCode(e)
		}
	}
	return res, nil
}

// ApplyForwarded commits a batch forwarded by a follower. It answers
// ErrNotLeader when this node does not lead.
func (n *Node) ApplyForwarded(ctx context.Context, data []byte) (ApplyResult, error) {
	c, err := fsm.Decode(data)
	if err != nil {
		return ApplyResult{}, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	// A removed server never learns it was removed (the leader stops
	// replicating to it), so it would keep proposing; its batches stop here.
	if _, ok := n.serverAddress(c.Session.Owner); !ok && n.raft.State() == raft.Leader {
		return ApplyResult{}, fmt.Errorf("%w: %q sent a batch but is not in the configuration", ErrUnknownMember, c.Session.Owner)
	}
	res, err := n.applyLocal(data)
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
		return ApplyResult{}, ErrNotLeader
	}
	return res, err
}

// Propose commits one command (an HTTP mutation) and returns its result once
// it is applied on this node. ErrNoLeader when ctx ends first.
func (n *Node) Propose(ctx context.Context, c fsm.Command) error {
	select {
	case err := <-n.queue.enqueueWait(c):
		return err
	case <-ctx.Done():
		return fmt.Errorf("%w: %v", ErrNoLeader, ctx.Err())
	}
}
