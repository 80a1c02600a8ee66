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

	mu sync.Mutex
	// elems holds the queued commands, each encoded as a batch element
	// (fsm.ElementEncoder) when it was queued; sizes[i] is the length of
	// the i-th, and dones[i] receives its result (nil: nobody waits). A
	// storm queues tens of thousands of commands: as encodings they take
	// tens of bytes each rather than a Command's few hundred, and the
	// goroutine that queues one encodes it, not the queue's own.
	elems []byte
	sizes []uint32
	dones []chan error
	wake  chan struct{}
	// enc encodes each command added. Kept, it allocates nothing; one per
	// call moved the command (about 350 bytes) to the heap, the largest
	// share of what a storm allocated on a node.
	enc fsm.ElementEncoder
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
	// commit makes one attempt to commit an encoded batch (incarnation inc,
	// sequence seq) and returns the results and the entry's log index.
	commit func(ctx context.Context, inc, seq uint64, data []byte) ([]error, uint64, error)
	// applied waits until this node applied the entry at index, bounded by
	// the write timeout (nil: no wait). A command someone waits for (an HTTP mutation, so its client
	// reads its own write here) is answered only then; the queue itself
	// does not wait, so a node whose copy of the log trails the leader's
	// (raft sends a healed follower entries again only after its backoff,
	// up to 10.24 s) keeps committing its sessions and lease renewals.
	applied func(ctx context.Context, index uint64) error
	// window is how many batches may be in flight at once (default 4).
	window int
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

func newQueue(cfg queueConfig) *queue {
	if cfg.retryCap == 0 {
		cfg.retryCap = 50 * time.Millisecond
	}
	if cfg.window == 0 {
		cfg.window = 4
	}
	if cfg.logger == nil {
		cfg.logger = hclog.NewNullLogger()
	}
	if cfg.metrics == nil {
		cfg.metrics = &nodeMetrics{commitLatency: metrics.NewHistogram(metrics.LatencyBuckets)}
	}
	return &queue{cfg: cfg, wake: make(chan struct{}, 1), lastCommit: time.Now()}
}

// enqueue adds a command nobody waits for.
func (q *queue) enqueue(c fsm.Command) error {
	return q.add(&c, nil)
}

// enqueueWait adds a command and returns a channel that receives its result
// once it is applied on this node.
func (q *queue) enqueueWait(c fsm.Command) <-chan error {
	done := make(chan error, 1)
	if err := q.add(&c, done); err != nil {
		done <- err
	}
	return done
}

// add validates c and encodes it as a batch element straight onto the
// queue (no buffer per command); a command the log must not hold is
// refused alone, rather than failing the batch it would join.
func (q *queue) add(c *fsm.Command, done chan error) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.sizes) >= q.cfg.maxQueue {
		return wire.ErrQueueFull
	}
	n := len(q.elems)
	elems, err := q.enc.Append(q.elems, c)
	if err != nil {
		return fmt.Errorf("%w: %w", wire.ErrBadRequest, err)
	}
	q.elems = elems
	q.sizes = append(q.sizes, uint32(len(q.elems)-n))
	q.dones = append(q.dones, done)
	q.signal()
	return nil
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
	return len(q.sizes) + q.pending
}

// stalledFor is how long the queue has held commands without committing
// any; 0 when it is empty or just committed.
func (q *queue) stalledFor() time.Duration {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.sizes)+q.pending == 0 {
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

// maxBatchElems bounds the element bytes of one batch, below
// fsm.MaxEntryBytes with room for the batch header.
const maxBatchElems = fsm.MaxEntryBytes - 1024

// take returns the next batch: its elements' encodings, how many there
// are, their result channels and the incarnation; nothing while the queue
// has no incarnation. The slices are the queue's own (capped), not copies.
func (q *queue) take() ([]byte, int, []chan error, uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.sizes) == 0 || q.inc == 0 {
		if q.pending == 0 {
			q.lastCommit = time.Now()
		}
		return nil, 0, nil, 0
	}
	k, n := 0, 0
	for k < len(q.sizes) && k < q.cfg.maxBatch && (k == 0 || n+int(q.sizes[k]) <= maxBatchElems) {
		n += int(q.sizes[k])
		k++
	}
	elems, dones := q.elems[:n:n], q.dones[:k:k]
	q.elems, q.sizes, q.dones = q.elems[n:], q.sizes[k:], q.dones[k:]
	if len(q.sizes) == 0 {
		q.elems, q.sizes, q.dones = nil, nil, nil // let the backing arrays go after a burst
	}
	q.pending += k
	return elems, k, dones, q.inc
}

// nextSeq numbers a batch of incarnation inc that encoded, so sequence
// numbers have no gaps (the leader proposes them in order).
func (q *queue) nextSeq(inc uint64) uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	if inc != q.inc {
		return 0 // the incarnation ended meanwhile: the batch is stale anyway
	}
	q.seq++
	return q.seq
}

// flight is one batch on its way to the leader.
type flight struct {
	count   int
	dones   []chan error
	inc     uint64
	seq     uint64
	data    []byte
	waiting bool
	index   uint64
	start   time.Time
	done    chan struct{}
	results []error
	err     error
}

// launch takes the next batch and starts its first commit attempt; nil when
// there is nothing to send.
func (q *queue) launch(ctx context.Context) *flight {
	for {
		elems, count, dones, inc := q.take()
		if count == 0 {
			return nil
		}
		f := &flight{count: count, dones: dones, inc: inc, start: time.Now(), done: make(chan struct{})}
		for _, d := range dones {
			f.waiting = f.waiting || d != nil
		}
		seq := q.peekSeq() + 1
		data, err := fsm.EncodeBatch(q.cfg.origin, inc, seq, count, elems)
		if err != nil {
			// Every command was validated when queued, and take keeps a
			// batch within the entry size: this cannot happen. No sequence
			// number is used.
			f.err = fmt.Errorf("%w: %v", wire.ErrBadRequest, err)
			close(f.done)
			q.finish(ctx, f)
			continue
		}
		if f.seq = q.nextSeq(inc); f.seq != seq {
			// The incarnation changed while encoding: the batch belongs to
			// the old one and fsm answers it as stale. Send it as is.
			f.seq = seq
		}
		f.data = data
		go func() {
			defer close(f.done)
			f.results, f.index, f.err = q.cfg.commit(ctx, f.inc, f.seq, f.data)
		}()
		return f
	}
}

func (q *queue) peekSeq() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.seq
}

// run keeps up to window batches in flight and settles them in order. On a
// failure it waits for the others, then sends again, one at a time and
// oldest first, what did not commit: the leader orders batches by sequence
// number, and a later batch committed implies every earlier one did.
func (q *queue) run(ctx context.Context) {
	var flights []*flight
	for {
		for len(flights) < q.cfg.window {
			f := q.launch(ctx)
			if f == nil {
				break
			}
			flights = append(flights, f)
		}
		if len(flights) == 0 {
			select {
			case <-q.wake:
				continue
			case <-ctx.Done():
				q.failAll(wire.ErrShutdown)
				return
			}
		}
		f := flights[0]
		select {
		case <-f.done:
		case <-q.wake:
			continue // more to launch, if the window has room
		case <-ctx.Done():
			q.shutdown(ctx, flights)
			return
		}
		if f.err != nil && !refusedForGood(f.err) {
			// Settle every batch in flight, then retry the failed ones in
			// order; one that committed meanwhile keeps its answer.
			for i, g := range flights {
				<-g.done
				if g.err != nil && !refusedForGood(g.err) {
					g.results, g.index, g.err = q.commitRetrying(ctx, g)
				}
				if g.err != nil && !refusedForGood(g.err) {
					// Shutting down: this batch and every one after it.
					q.shutdown(ctx, flights[i:])
					return
				}
				q.finish(ctx, g)
			}
			flights = nil
			continue
		}
		q.finish(ctx, f)
		flights = flights[1:]
	}
}

// shutdown settles the batches still in flight as run ends, and fails
// every queued command with wire.ErrShutdown. A batch whose commit
// attempt ended keeps its answer; one that did not get one is answered
// wire.ErrShutdown. Every waiter gets a result: before, a batch behind one
// that failed as the node shut down was left unanswered.
func (q *queue) shutdown(ctx context.Context, flights []*flight) {
	for _, g := range flights {
		<-g.done
		if g.err != nil && !refusedForGood(g.err) {
			g.results, g.err = nil, wire.ErrShutdown
		}
		q.finish(ctx, g)
	}
	q.failAll(wire.ErrShutdown)
}

// finish settles one batch: metrics, the waiting commands' results (once
// the batch is applied on this node), and what a refusal or a stale answer
// means for the node.
func (q *queue) finish(ctx context.Context, f *flight) {
	switch {
	case f.err == nil:
		if len(f.results) > 0 && errors.Is(f.results[0], fsm.ErrStaleIncarnation) && q.cfg.stale != nil {
			q.cfg.stale(f.inc)
		}
		q.cfg.metrics.commitLatency.Observe(time.Since(f.start).Seconds())
		q.cfg.metrics.batches.Inc()
		q.cfg.metrics.commands.Add(uint64(f.count))
	case refusedForGood(f.err):
		q.cfg.logger.Error("the leader refused a batch for good; failing its commands and closing their sessions",
			"seq", f.seq, "commands", f.count, "error", f.err)
		if q.cfg.refused != nil {
			q.cfg.refused(sessionsOf(f.data))
		}
	}
	q.mu.Lock()
	q.pending -= f.count
	if f.err == nil || refusedForGood(f.err) {
		q.lastCommit = time.Now()
	}
	q.mu.Unlock()
	if !f.waiting {
		return
	}
	if f.err != nil || q.cfg.applied == nil {
		answer(f, f.err)
		return
	}
	go func() {
		if err := q.cfg.applied(ctx, f.index); err != nil {
			answer(f, fmt.Errorf("%w: committed at %d, not yet applied on this node: %v", wire.ErrShutdown, f.index, err))
			return
		}
		answer(f, nil)
	}()
}

// answer sends each waiting command of f its result: err for all of them,
// else its own.
func answer(f *flight, err error) {
	for i, done := range f.dones {
		if done == nil {
			continue
		}
		switch {
		case err != nil:
			done <- err
		case i < len(f.results):
			done <- f.results[i]
		default:
			done <- nil
		}
	}
}

// refusedForGood reports an answer that no retry can change: the batch
// itself is refused.
func refusedForGood(err error) bool {
	return errors.Is(err, wire.ErrBadRequest) || errors.Is(err, wire.ErrTooLarge)
}

// sessionsOf lists the sessions a batch entry has commands of.
func sessionsOf(data []byte) []fsm.SessionID {
	b, err := fsm.Decode(data)
	if err != nil {
		return nil // cannot be: the queue encoded it
	}
	seen := map[fsm.SessionID]bool{}
	var out []fsm.SessionID
	for _, c := range b.Batch {
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
	dones := q.dones
	q.elems, q.sizes, q.dones = nil, nil, nil
	q.mu.Unlock()
	for _, done := range dones {
		if done != nil {
			done <- err
		}
	}
}

// commitRetrying retries one batch until it commits, the leader refuses it
// for good, or ctx ends. A retry after an ambiguous failure may commit the
// batch twice; the state machine applies a batch sequence number once.
func (q *queue) commitRetrying(ctx context.Context, f *flight) ([]error, uint64, error) {
	backoff := 5 * time.Millisecond
	start, warned := time.Now(), time.Time{}
	for attempt := 0; ; attempt++ {
		results, index, err := q.cfg.commit(ctx, f.inc, f.seq, f.data)
		if err == nil || refusedForGood(err) {
			return results, index, err
		}
		if ctx.Err() != nil {
			return nil, 0, wire.ErrShutdown
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
			return nil, 0, wire.ErrShutdown
		}
		backoff = min(backoff*2, q.cfg.retryCap)
	}
}
