package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlookupd/raftlookupd/fsm"
	"github.com/raftlookupd/raftlookupd/wire"
)

// errNoLeaderKnown: no leader is known right now (an election).
var errNoLeaderKnown = fmt.Errorf("%w: no leader known", wire.ErrNoLeader)

// commitBatch makes one attempt to commit an encoded batch (incarnation
// inc, sequence seq of this node): through this node's Raft if it leads,
// else forwarded to the leader's RPC. It returns the results and the
// entry's index; whoever waits to read its own write waits for that index
// (the queue's applied). Several batches may be in flight; the leader
// proposes them in sequence order (sequencer.go).
func (n *Node) commitBatch(ctx context.Context, inc, seq uint64, data []byte) ([]error, uint64, error) {
	res, err := n.applySequenced(ctx, n.cfg.NodeID, inc, seq, data)
	if errors.Is(err, raft.ErrNotLeader) {
		res, err = n.forwardBatch(ctx, data)
	}
	if err != nil {
		return nil, 0, err
	}
	return res.errors(), res.Index, nil
}

// waitLocal waits until this node applied the entry at index, for at most
// -write-timeout: what a client that reads its own write here waits for.
func (n *Node) waitLocal(ctx context.Context, index uint64) error {
	wctx, cancel := context.WithTimeout(ctx, n.cfg.WriteTimeout)
	defer cancel()
	return n.fsm.waitApplied(wctx, index)
}

// applySequenced proposes a batch through this node's Raft in its origin's
// sequence order; raft.ErrNotLeader when a follower.
func (n *Node) applySequenced(ctx context.Context, origin string, inc, seq uint64, data []byte) (applyResult, error) {
	if n.raft.State() != raft.Leader {
		return applyResult{}, raft.ErrNotLeader
	}
	sctx, cancel := context.WithTimeout(ctx, n.cfg.WriteTimeout)
	defer cancel()
	n.nudge.begin()
	defer n.nudge.done()
	f, err := n.seq.propose(sctx, origin, inc, seq, n.Registry().LastBatch,
		func() raft.ApplyFuture { return n.raft.Apply(data, n.cfg.WriteTimeout) })
	if err != nil {
		return applyResult{}, err
	}
	return futureResult(f)
}

// forwardBatch sends a batch to the leader; the call ends early when the
// leader changes.
func (n *Node) forwardBatch(ctx context.Context, data []byte) (applyResult, error) {
	var res applyResult
	_, err := n.callLeader(ctx, rpcApply, data, &res)
	return res, err
}

// applyLocal commits data (not a batch: batches go through applySequenced)
// through this node's Raft; raft.ErrNotLeader when a follower.
func (n *Node) applyLocal(data []byte) (applyResult, error) {
	n.nudge.begin()
	defer n.nudge.done()
	return futureResult(n.raft.Apply(data, n.cfg.WriteTimeout))
}

func futureResult(f raft.ApplyFuture) (applyResult, error) {
	if err := f.Error(); err != nil {
		return applyResult{}, err
	}
	res := applyResult{Index: f.Index()}
	switch r := f.Response().(type) {
	case []error:
		res.Codes = make([]uint8, len(r))
		for i, e := range r {
			res.Codes[i] = fsm.ResultCode(e)
		}
	case fsm.Opened:
		res.Incarnation = uint64(r)
	}
	return res, nil
}

// applyForwarded commits a batch a member forwarded, after checking it
// completely (checkForwarded). wire.ErrNotLeader when this node does not
// lead.
func (n *Node) applyForwarded(ctx context.Context, remote string, data []byte) (applyResult, error) {
	buf := forwardBufs.Get().(*[]fsm.Command)
	c, err := fsm.DecodeForwarded(data, *buf)
	defer func() {
		*buf = fsm.ReleaseBatch(&c)
		forwardBufs.Put(buf)
	}()
	if err != nil {
		return applyResult{}, fmt.Errorf("%w: %v", wire.ErrBadRequest, err)
	}
	// Without TLS, the address is what ties a caller to a node id: a batch
	// may only come from its origin's address (or loopback).
	if !n.tlsOn() && c.Op == fsm.OpBatch && !n.members.allowedFor(remote, c.Session.Owner) {
		return applyResult{}, fmt.Errorf("%w: a batch of %q from %s, which is not its address", wire.ErrForbidden, c.Session.Owner, remote)
	}
	if err := checkForwarded(&c, len(data)); err != nil {
		if c.Op == fsm.OpBatch {
			// Refused for good: its successors need not wait for it.
			n.seq.skip(c.Session.Owner, c.Session.Incarnation, c.BatchSeq)
		}
		return applyResult{}, err
	}
	// A removed server never learns it was removed (the leader stops
	// replicating to it), so it would keep proposing; its batches stop here.
	if _, ok := n.serverAddress(c.Session.Owner); !ok && n.raft.State() == raft.Leader {
		return applyResult{}, fmt.Errorf("%w: %q sent a batch but is not in the configuration", wire.ErrUnknownMember, c.Session.Owner)
	}
	res, err := n.applySequenced(ctx, c.Session.Owner, c.Session.Incarnation, c.BatchSeq, data)
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
		return applyResult{}, wire.ErrNotLeader
	}
	return res, err
}

// forwardBufs hold the batch storage applyForwarded decodes into (a storm's
// batches carry thousands of commands).
var forwardBufs = sync.Pool{New: func() any { return new([]fsm.Command) }}

// checkForwarded accepts only what a member's queue produces: one valid
// batch of size bytes whose every command belongs to its origin. Client mutations (topic
// and channel create/delete, tombstones) belong to whoever received them;
// leader duties (lease expiry, member removal) are never forwarded.
func checkForwarded(c *fsm.Command, size int) error {
	if c.Op != fsm.OpBatch {
		return fmt.Errorf("%w: forwarded %v, only batches are accepted", wire.ErrBadRequest, c.Op)
	}
	if err := c.ValidateEntry(size); err != nil {
		return fmt.Errorf("%w: %v", wire.ErrBadRequest, err)
	}
	origin := c.Session.Owner
	for i := range c.Batch {
		in := &c.Batch[i]
		switch in.Op {
		case fsm.OpOpenSession, fsm.OpRegister, fsm.OpUnregister, fsm.OpCloseSession:
			if in.Session.Owner != origin {
				return fmt.Errorf("%w: batch from %q carries a command of session %v", wire.ErrBadRequest, origin, in.Session)
			}
		case fsm.OpRenewLease, fsm.OpCloseOwner, fsm.OpOrphanOwner:
			if in.Session.Owner != origin {
				return fmt.Errorf("%w: batch from %q carries %v for %q", wire.ErrBadRequest, origin, in.Op, in.Session.Owner)
			}
		case fsm.OpSetMember:
			if in.Member.ID != origin {
				return fmt.Errorf("%w: batch from %q sets member %q", wire.ErrBadRequest, origin, in.Member.ID)
			}
		case fsm.OpCreateTopic, fsm.OpDeleteTopic, fsm.OpCreateChannel, fsm.OpDeleteChannel, fsm.OpTombstone:
		default:
			return fmt.Errorf("%w: %v is never forwarded", wire.ErrBadRequest, in.Op)
		}
	}
	return nil
}

// Propose commits one command (an HTTP mutation) and returns its result once
// it is applied on this node. wire.ErrNoLeader when ctx ends first. A
// command that went out in a batch of an incarnation that ended meanwhile
// did not apply (fsm.ErrStaleIncarnation): it is queued again, under the
// next incarnation, until ctx ends.
func (n *Node) Propose(ctx context.Context, c fsm.Command) error {
	if c.Op == fsm.OpCreateTopic || c.Op == fsm.OpCreateChannel {
		if err := n.checkRegistrationCap(); err != nil {
			return err
		}
	}
	for {
		var err error
		select {
		case err = <-n.queue.enqueueWait(c):
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", wire.ErrNoLeader, ctx.Err())
		}
		if errors.Is(err, fsm.ErrDuplicateBatch) {
			// An earlier attempt applied it. Every command but a channel
			// delete has no result of its own; a delete's (404 or not)
			// went to the lost answer, so its outcome is unknown here.
			if c.Op == fsm.OpDeleteChannel {
				return fmt.Errorf("%w: the delete was applied by an earlier attempt whose answer was lost; its result is unknown", wire.ErrNoLeader)
			}
			return nil
		}
		if !errors.Is(err, fsm.ErrStaleIncarnation) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %v (this node's incarnation ended; the command did not apply)", wire.ErrNoLeader, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}
