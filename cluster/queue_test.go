package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftlookupd/raftlookupd/fsm"
	"github.com/raftlookupd/raftlookupd/wire"
)

// fakeLeader records the batches a queue commits and answers with scripted
// errors first.
type fakeLeader struct {
	mu       sync.Mutex
	batches  []fsm.Command
	failures []error // returned, in order, before commits succeed
	refused  [][]fsm.SessionID
	attempts int
}

func (f *fakeLeader) commit(_ context.Context, _, _ uint64, data []byte) ([]error, uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attempts++
	if len(f.failures) > 0 {
		err := f.failures[0]
		f.failures = f.failures[1:]
		return nil, 0, err
	}
	c, err := fsm.Decode(data)
	if err != nil {
		return nil, 0, err
	}
	f.batches = append(f.batches, c)
	return make([]error, len(c.Batch)), uint64(len(f.batches)), nil
}

// topics lists the committed commands' topics in batch sequence order:
// the order a leader applies them in (it proposes a node's batches by
// sequence number, whatever order they arrive in).
func (f *fakeLeader) topics() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	bySeq := slices.Clone(f.batches)
	slices.SortFunc(bySeq, func(a, b fsm.Command) int { return cmp.Compare(a.BatchSeq, b.BatchSeq) })
	var out []string
	for _, b := range bySeq {
		for _, c := range b.Batch {
			out = append(out, c.Topic)
		}
	}
	return out
}

func startQueue(t *testing.T, f *fakeLeader, maxBatch, maxQueue int) *queue {
	t.Helper()
	q := newQueue(queueConfig{origin: "n1", maxBatch: maxBatch, maxQueue: maxQueue,
		commit: f.commit, retryCap: time.Millisecond,
		refused: func(ids []fsm.SessionID) { f.mu.Lock(); f.refused = append(f.refused, ids); f.mu.Unlock() }})
	q.setIncarnation(7)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q.run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return q
}

func create(topic string) fsm.Command { return fsm.Command{Op: fsm.OpCreateTopic, Topic: topic} }

func waitErr(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("no result within 10s")
		return nil
	}
}

// Commands commit in the order they were queued, grouped into batches of at
// most maxBatch, each batch numbered after the last and named after its
// origin and incarnation; transient failures are retried with the same
// batch.
func TestQueueOrderBatchingAndRetry(t *testing.T) {
	f := &fakeLeader{failures: []error{wire.ErrNoLeader, fmt.Errorf("%w: election", wire.ErrNoLeader)}}
	q := startQueue(t, f, 3, 100)
	var want []string
	var last <-chan error
	for i := range 10 {
		name := fmt.Sprintf("t%02d", i)
		want = append(want, name)
		if i == 9 {
			last = q.enqueueWait(create(name))
		} else if err := q.enqueue(create(name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := waitErr(t, last); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.topics(), ","); got != strings.Join(want, ",") {
		t.Fatalf("committed %s, want %s", got, strings.Join(want, ","))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	seqs := map[uint64]bool{}
	for i, b := range f.batches {
		if len(b.Batch) > 3 {
			t.Errorf("batch %d has %d commands, max 3", i, len(b.Batch))
		}
		if b.Session.Owner != "n1" || b.Session.Incarnation != 7 {
			t.Errorf("batch %d: origin %v, want n1/7", i, b.Session)
		}
		if seqs[b.BatchSeq] {
			t.Errorf("sequence %d committed twice", b.BatchSeq)
		}
		seqs[b.BatchSeq] = true
	}
	for i := range len(f.batches) {
		if !seqs[uint64(i+1)] {
			t.Errorf("sequence numbers %v have a gap at %d", seqs, i+1)
		}
	}
	if f.attempts < len(f.batches)+2 {
		t.Errorf("%d attempts for %d batches and 2 failures", f.attempts, len(f.batches))
	}
}

// A batch the leader refuses for good fails its waiting commands, names its
// sessions to close, and the queue goes on with the next batch.
func TestQueueRefusedBatchDoesNotBlock(t *testing.T) {
	f := &fakeLeader{failures: []error{fmt.Errorf("%w: not yours", wire.ErrBadRequest)}}
	q := startQueue(t, f, 10, 100)
	sess := fsm.SessionID{Owner: "n1", Incarnation: 7, Seq: 1}
	if err := q.enqueue(fsm.Command{Op: fsm.OpRegister, Session: sess, Topic: "a"}); err != nil {
		t.Fatal(err)
	}
	first := q.enqueueWait(create("b"))
	if err := waitErr(t, first); !errors.Is(err, wire.ErrBadRequest) {
		t.Fatalf("refused batch answered %v, want wire.ErrBadRequest", err)
	}
	if err := waitErr(t, q.enqueueWait(create("c"))); err != nil {
		t.Fatalf("the batch after a refused one: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.refused) != 1 || len(f.refused[0]) != 1 || f.refused[0][0] != sess {
		t.Fatalf("sessions to close %v, want [%v]", f.refused, sess)
	}
}

// A command the log must not hold is refused at the door, alone; the
// queue's capacity is enforced; nothing invalid reaches a batch.
func TestQueueRefusesInvalidAndFull(t *testing.T) {
	f := &fakeLeader{}
	q := newQueue(queueConfig{origin: "n1", maxBatch: 10, maxQueue: 2, commit: f.commit})
	huge := create(strings.Repeat("x", 1<<20+1))
	if err := q.enqueue(huge); !errors.Is(err, wire.ErrBadRequest) || !errors.Is(err, fsm.ErrInvalidCommand) {
		t.Fatalf("oversized name: %v, want wire.ErrBadRequest wrapping fsm.ErrInvalidCommand", err)
	}
	if err := <-q.enqueueWait(huge); !errors.Is(err, wire.ErrBadRequest) {
		t.Fatalf("oversized name, waiting: %v", err)
	}
	for i := range 2 {
		if err := q.enqueue(create(fmt.Sprint("t", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.enqueue(create("t2")); !errors.Is(err, wire.ErrQueueFull) {
		t.Fatalf("third command in a queue of 2: %v, want wire.ErrQueueFull", err)
	}
	if d := q.depth(); d != 2 {
		t.Fatalf("depth %d, want 2", d)
	}
}

// Shutdown fails what still waits with wire.ErrShutdown.
func TestQueueShutdownFailsWaiters(t *testing.T) {
	block := make(chan struct{})
	q := newQueue(queueConfig{origin: "n1", maxBatch: 1, maxQueue: 10, retryCap: time.Millisecond,
		commit: func(ctx context.Context, _, _ uint64, _ []byte) ([]error, uint64, error) {
			<-block
			return nil, 0, wire.ErrNoLeader
		}})
	q.setIncarnation(1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q.run(ctx); close(done) }()
	a := q.enqueueWait(create("a"))
	b := q.enqueueWait(create("b"))
	cancel()
	close(block)
	<-done
	for _, ch := range []<-chan error{a, b} {
		if err := waitErr(t, ch); !errors.Is(err, wire.ErrShutdown) {
			t.Errorf("after shutdown: %v, want wire.ErrShutdown", err)
		}
	}
}

// Without an incarnation nothing is sent: commands wait, and go out under
// the incarnation set later, numbered from 1.
func TestQueueWaitsForAnIncarnation(t *testing.T) {
	f := &fakeLeader{}
	q := newQueue(queueConfig{origin: "n1", maxBatch: 10, maxQueue: 10, commit: f.commit, retryCap: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q.run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	res := q.enqueueWait(create("a"))
	select {
	case err := <-res:
		t.Fatalf("committed without an incarnation: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	q.setIncarnation(42)
	if err := waitErr(t, res); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.batches) != 1 || f.batches[0].Session.Incarnation != 42 || f.batches[0].BatchSeq != 1 {
		t.Fatalf("batches %+v, want one of incarnation 42, seq 1", f.batches)
	}
}

// Queueing a command copies its encoding onto the queue and allocates no
// Command: a storm queues thousands, and a heap copy of each was the largest
// share of what a node allocated in one. Only the queue's own slices grow
// (amortized well below one allocation per command).
func TestQueueingACommandAllocatesNoCommand(t *testing.T) {
	q := newQueue(queueConfig{origin: "n1", maxBatch: 10, maxQueue: 1 << 20, commit: (&fakeLeader{}).commit})
	c := fsm.Command{Op: fsm.OpRegister, Session: fsm.SessionID{Owner: "n1", Incarnation: 1, Seq: 1}, Topic: "orders", Channel: "billing"}
	if allocs := testing.AllocsPerRun(10000, func() {
		if err := q.enqueue(c); err != nil {
			t.Fatal(err)
		}
	}); allocs > 0.1 {
		t.Fatalf("%.2f allocations per queued command, want well below 1 (only the queue's slices grow)", allocs)
	}
}

// A command someone waits for is answered once its batch is applied on this
// node, but the queue does not wait for that: while this node's copy of the
// log trails the leader's (after a partition raft sends it entries again
// only after its backoff), later batches, lease renewals among them, keep
// committing. Before, the batch waited inside its commit, and once the
// window filled behind it nothing more was sent.
func TestQueueDoesNotWaitForLocalApply(t *testing.T) {
	f := &fakeLeader{}
	release := make(chan struct{})
	var appliedAsked sync.Once
	asked := make(chan uint64, 1)
	q := newQueue(queueConfig{origin: "n1", maxBatch: 10, maxQueue: 100, commit: f.commit, retryCap: time.Millisecond,
		applied: func(ctx context.Context, index uint64) error {
			appliedAsked.Do(func() { asked <- index })
			select {
			case <-release:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}})
	q.setIncarnation(7)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q.run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	write := q.enqueueWait(create("http-write"))
	// Far more batches than the window, one at a time, nobody waiting.
	for i := range 20 {
		q.enqueue(create(fmt.Sprintf("r%02d", i)))
		want := i + 2
		deadline := time.Now().Add(10 * time.Second)
		for len(f.topics()) < want {
			if time.Now().After(deadline) {
				t.Fatalf("batch %d not committed while a waiting command's batch awaits its local apply: %v", i, f.topics())
			}
			time.Sleep(time.Millisecond)
		}
	}
	if index := <-asked; index != 1 {
		t.Fatalf("waited for the apply of index %d, want 1 (the waiting command's entry)", index)
	}
	select {
	case err := <-write:
		t.Fatalf("the waiting command was answered (%v) before this node applied its batch", err)
	default:
	}
	close(release)
	if err := waitErr(t, write); err != nil {
		t.Fatal(err)
	}
}
