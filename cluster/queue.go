package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/raftlookupd/raftlookupd/fsm"
	"github.com/raftlookupd/raftlookupd/internal/metrics"
	"github.com/raftlookupd/raftlookupd/wire"
)

// queue is the node's FIFO of commands waiting for replication. One goroutine
// drains it: it takes everything queued (up to maxBatch) into one batch entry,
// commits it through the leader, and retries the same batch through
// elections until it commits. So commands from this node apply in order,
// many per log entry (group commit), and TCP replies never wait.
//
// Every command is validated by fsm before it is queued, so a batch is
// always encodable and appliable. A batch the leader refuses for good all
// the same (wire.ErrBadRequest, wire.ErrTooLarge) fails its commands, closes
// the sessions they belong to, and the queue moves on.
type queue struct {
	cfg queueConfig

	mu    sync.Mutex
	items []item
	wake  chan struct{}
	// inc is the incarnation batches are sent under; 0 until the node has
	// one (and while it opens the next): commands wait in the queue.
	inc     uint64
	seq     uint64
	pending int // items taken by run and not yet committed
	// lastCommit is when a batch last committed (or the queue was last
	// empty): how long this node has been unable to commit.
	lastCommit time.Time
}

type queueConfig struct {
	origin   string
	maxBatch int
	maxQueue int
	// commit makes one attempt to commit an encoded batch; with waitLocal it
	// returns once the batch is applied on this node.
	commit func(ctx context.Context, data []byte, waitLocal bool) ([]error, error)
	// refused is told the sessions of a batch the leader refused for good;
	// their connections must close so nsqd registers again.
	refused func([]fsm.SessionID)
	// stale is told when the leader answered a batch of incarnation inc as
	// stale: the cluster ended that incarnation (nil: ignored).
	stale   func(inc uint64)
	metrics *nodeMetrics
	logger  hclog.Logger
	// retryCap bounds the retry backoff (default 50ms): retries are cheap (a
	// local call, or a forward that fails fast while there is no leader),
	// and a short cap means a new leader is used within that long of its
	// election.
	retryCap time.Duration
}

type item struct {
	cmd  fsm.Command
	done chan error // nil when nobody waits
}

func newQueue(cfg queueConfig) *queue {
	if cfg.retryCap == 0 {
		cfg.retryCap = 50 * time.Millisecond
	}
	if cfg.logger == nil {
		cfg.logger = hclog.NewNullLogger()
	}
	if cfg.metrics == nil {
		cfg.metrics = &nodeMetrics{commitLatency: metrics.NewHistogram(metrics.LatencyBuckets)}
	}
	return &queue{cfg: cfg, wake: make(chan struct{}, 1), lastCommit: time.Now()}
}

// validate refuses a command the log must not hold, alone, rather than
// failing the batch it would join.
func validate(c *fsm.Command) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("%w: %w", wire.ErrBadRequest, err)
	}
	return nil
}

// enqueue adds a command nobody waits for.
func (q *queue) enqueue(c fsm.Command) error {
	if err := validate(&c); err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) >= q.cfg.maxQueue {
		return wire.ErrQueueFull
	}
	q.items = append(q.items, item{cmd: c})
	q.signal()
	return nil
}

// enqueueWait adds a command and returns a channel that receives its result
// once it is applied on this node.
func (q *queue) enqueueWait(c fsm.Command) <-chan error {
	done := make(chan error, 1)
	if err := validate(&c); err != nil {
		done <- err
		return done
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) >= q.cfg.maxQueue {
		done <- wire.ErrQueueFull
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

// stalledFor is how long the queue has held commands without committing
// any; 0 when it is empty or just committed.
func (q *queue) stalledFor() time.Duration {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items)+q.pending == 0 {
		return 0
	}
	return time.Since(q.lastCommit)
}

// setIncarnation sets the incarnation of the batches sent from now on (0:
// send nothing); a new one numbers its batches from 1 again.
func (q *queue) setIncarnation(inc uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if inc != q.inc {
		q.inc, q.seq = inc, 0
	}
	q.lastCommit = time.Now()
	q.signal()
}

// take returns the next batch's commands, its incarnation and sequence
// number; nothing while the queue has no incarnation.
func (q *queue) take() ([]item, uint64, uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 || q.inc == 0 {
		q.lastCommit = time.Now()
		return nil, 0, 0
	}
	k := min(len(q.items), q.cfg.maxBatch)
	batch := make([]item, k)
	copy(batch, q.items)
	q.items = q.items[k:]
	if len(q.items) == 0 {
		q.items = nil // let the backing array go after a burst
	}
	q.pending = k
	q.seq++
	return batch, q.inc, q.seq
}

func (q *queue) run(ctx context.Context) {
	for {
		items, inc, seq := q.take()
		if len(items) == 0 {
			select {
			case <-q.wake:
				continue
			case <-ctx.Done():
				q.failAll(wire.ErrShutdown)
				return
			}
		}
		b := fsm.Command{Op: fsm.OpBatch, Session: fsm.SessionID{Owner: q.cfg.origin, Incarnation: inc}, BatchSeq: seq}
		b.Batch = make([]fsm.Command, len(items))
		waiting := false
		for i := range items {
			b.Batch[i] = items[i].cmd
			waiting = waiting || items[i].done != nil
		}
		start := time.Now()
		data, err := b.Encode()
		var results []error
		if err == nil {
			results, err = q.commitRetrying(ctx, data, waiting)
		} else {
			err = fmt.Errorf("%w: %v", wire.ErrBadRequest, err)
		}
		switch {
		case err == nil:
			if len(results) > 0 && errors.Is(results[0], fsm.ErrStaleIncarnation) && q.cfg.stale != nil {
				q.cfg.stale(inc)
			}
			q.cfg.metrics.commitLatency.Observe(time.Since(start).Seconds())
			q.cfg.metrics.batches.Inc()
			q.cfg.metrics.commands.Add(uint64(len(items)))
		case refusedForGood(err):
			q.cfg.logger.Error("the leader refused a batch for good; failing its commands and closing their sessions",
				"seq", seq, "commands", len(items), "error", err)
			q.cfg.refused(sessionsOf(b.Batch))
		}
		q.mu.Lock()
		q.pending = 0
		if err == nil || refusedForGood(err) {
			q.lastCommit = time.Now()
		}
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
		if err != nil && !refusedForGood(err) {
			q.failAll(err)
			return
		}
	}
}

// refusedForGood reports an answer that no retry can change: the batch
// itself is refused.
func refusedForGood(err error) bool {
	return errors.Is(err, wire.ErrBadRequest) || errors.Is(err, wire.ErrTooLarge)
}

func sessionsOf(cmds []fsm.Command) []fsm.SessionID {
	seen := map[fsm.SessionID]bool{}
	var out []fsm.SessionID
	for _, c := range cmds {
		switch c.Op {
		case fsm.OpOpenSession, fsm.OpRegister, fsm.OpUnregister:
			if !seen[c.Session] {
				seen[c.Session] = true
				out = append(out, c.Session)
			}
		}
	}
	return out
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

// commitRetrying retries one batch until it commits, the leader refuses it
// for good, or ctx ends. A retry after an ambiguous failure may commit the
// batch twice; the state machine applies a batch sequence number once.
func (q *queue) commitRetrying(ctx context.Context, data []byte, waitLocal bool) ([]error, error) {
	backoff := 5 * time.Millisecond
	start, warned := time.Now(), time.Time{}
	for attempt := 0; ; attempt++ {
		results, err := q.cfg.commit(ctx, data, waitLocal)
		if err == nil || refusedForGood(err) {
			return results, err
		}
		if ctx.Err() != nil {
			return nil, wire.ErrShutdown
		}
		// An election takes a fraction of a second (a fresh single node
		// elects itself while its first batch waits): warn only when
		// replication is stuck for longer, then every ten seconds.
		if time.Since(start) > time.Second && time.Since(warned) > 10*time.Second {
			warned = time.Now()
			q.cfg.logger.Warn("replication is retrying", "attempt", attempt, "for", time.Since(start).Round(time.Millisecond), "error", err)
		} else {
			q.cfg.logger.Debug("replication retry", "attempt", attempt, "error", err)
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil, wire.ErrShutdown
		}
		backoff = min(backoff*2, q.cfg.retryCap)
	}
}
