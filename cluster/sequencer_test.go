package cluster

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlookupd/raftlookupd/wire"
)

type fakeFuture struct{ raft.ApplyFuture }

// Batches of one origin reach Raft in sequence order whatever order they
// arrive in; a batch whose predecessor never comes gives up at its
// deadline; a refused batch lets its successors go; a reset forgets the
// previous term's proposals; an applied predecessor counts.
func TestSequencerOrders(t *testing.T) {
	s := newSequencer()
	none := func(string) (uint64, uint64, bool) { return 0, 0, false }
	var mu sync.Mutex
	var order []uint64
	propose := func(seq uint64) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := s.propose(ctx, "n2", 7, seq, none, func() raft.ApplyFuture {
			mu.Lock()
			order = append(order, seq)
			mu.Unlock()
			return fakeFuture{}
		})
		return err
	}
	var wg sync.WaitGroup
	for _, seq := range []uint64{4, 3, 2, 1} { // reversed arrival
		wg.Add(1)
		go func() { defer wg.Done(); _ = propose(seq) }()
		time.Sleep(5 * time.Millisecond) // let each arrive before the next
	}
	wg.Wait()
	if len(order) != 4 || order[0] != 1 || order[1] != 2 || order[2] != 3 || order[3] != 4 {
		t.Fatalf("proposed in order %v, want 1 2 3 4", order)
	}

	// 6 without 5: waits, then gives up.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.propose(ctx, "n2", 7, 6, none, func() raft.ApplyFuture { t.Fatal("6 proposed before 5"); return nil }); !errors.Is(err, wire.ErrNoLeader) {
		t.Fatalf("6 without 5: %v, want a retryable wire.ErrNoLeader", err)
	}
	// 5 refused for good: 6 goes.
	s.skip("n2", 7, 5)
	if err := propose(6); err != nil {
		t.Fatal(err)
	}
	// A new term forgets proposals: 8 waits for 7 unless 7 is applied.
	s.reset()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if _, err := s.propose(ctx2, "n2", 7, 8, none, func() raft.ApplyFuture { t.Fatal("proposed on a stale term's word"); return nil }); err == nil {
		t.Fatal("8 went after a reset without 7")
	}
	applied := func(string) (uint64, uint64, bool) { return 7, 7, true }
	ctx3, cancel3 := context.WithTimeout(context.Background(), time.Second)
	defer cancel3()
	if _, err := s.propose(ctx3, "n2", 7, 8, applied, func() raft.ApplyFuture { return fakeFuture{} }); err != nil {
		t.Fatalf("8 after 7 applied: %v", err)
	}
	// A batch of an incarnation the origin has moved on from goes at once
	// (the state machine answers it as stale or duplicate); one of an
	// incarnation newer than the applied state waits.
	later := func(string) (uint64, uint64, bool) { return 12, 0, true }
	if _, err := s.propose(ctx3, "n2", 7, 40, later, func() raft.ApplyFuture { return fakeFuture{} }); err != nil {
		t.Fatalf("batch of an ended incarnation: %v", err)
	}
	ctx4, cancel4 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel4()
	if _, err := s.propose(ctx4, "n2", 13, 2, later, func() raft.ApplyFuture { t.Fatal("batch 2 of a newer incarnation went before its 1"); return nil }); err == nil {
		t.Fatal("batch 2 of an incarnation newer than the applied state went without waiting")
	}
	// A new incarnation numbers from 1.
	if _, err := s.propose(ctx3, "n2", 9, 1, none, func() raft.ApplyFuture { return fakeFuture{} }); err != nil {
		t.Fatalf("first batch of a new incarnation: %v", err)
	}
}
