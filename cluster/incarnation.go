package cluster

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlookupd/raftlookupd/fsm"
	"github.com/raftlookupd/raftlookupd/wire"
)

// Incarnations come from the cluster, never from a clock: a node opens one
// with OpOpenIncarnation, and its number is the log index of that entry, so
// a node replaced on a host whose clock is behind is never ignored. The
// command carries a random nonce; the node finds its incarnation in the
// registry by that nonce, so a retried open that committed twice opens once.
// Opening a new incarnation orphans the previous one's sessions (a restart:
// their nsqds are alive and will re-dial within a heartbeat).
//
// Until its incarnation is known a node acknowledges no TCP session and its
// queue sends nothing: every batch names the incarnation it belongs to.

func newNonce() uint64 {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			panic(fmt.Sprintf("crypto/rand: %v", err))
		}
		if v := binary.LittleEndian.Uint64(b[:]); v != 0 {
			return v
		}
	}
}

// openIncarnation proposes a new incarnation until the cluster has
// committed it, and returns its number; 0 when ctx ends first.
//
// The number comes from the commit's answer, not from this node's copy of
// the log. After a partition heals, the leader's Raft may wait up to ten
// seconds before it sends this node entries again (hashicorp/raft backs off
// a follower it failed to reach, doubling up to 10.24 s), while the leader
// measures the new incarnation's lease from the moment it applied it. A node
// that waited to apply its own open could not renew it meanwhile, and with a
// lease timeout shorter than that wait the leader orphaned the new
// incarnation too: the nsqds that had just re-registered vanished again
// (found by the cluster test that cuts a node off past its lease, in CI).
func (n *Node) openIncarnation(ctx context.Context) uint64 {
	nonce := newNonce()
	backoff := 10 * time.Millisecond
	var warned time.Time
	start := time.Now()
	for ctx.Err() == nil {
		if o, ok := n.Registry().Owner(n.cfg.NodeID); ok && o.Nonce == nonce {
			return o.Incarnation
		}
		c := fsm.Command{Op: fsm.OpOpenIncarnation, Session: fsm.SessionID{Owner: n.cfg.NodeID},
			Nonce: nonce, Time: time.Now().UnixNano(), Grace: int64(n.cfg.OrphanGrace)}
		inc, err := n.proposeOpen(ctx, c)
		if err == nil {
			if inc != 0 {
				return inc
			}
			continue // applied locally: the registry shows it now
		}
		if time.Since(start) > 5*time.Second && time.Since(warned) > 10*time.Second {
			warned = time.Now()
			n.logger.Warn("cannot open an incarnation yet; acknowledging no nsqd until then", "error", err)
		} else {
			n.logger.Debug("open incarnation retry", "error", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, time.Second)
	}
	return 0
}

// proposeOpen commits an OpOpenIncarnation (on this node if it leads, else
// through the leader's RPC) and returns the incarnation the commit answered.
// A leader of an earlier version answers none (0): then it waits until this
// node applied the entry, and the registry tells.
func (n *Node) proposeOpen(ctx context.Context, c fsm.Command) (uint64, error) {
	data, err := c.Encode()
	if err != nil {
		return 0, err
	}
	res, err := n.applyLocal(data)
	if errors.Is(err, raft.ErrNotLeader) {
		_, err = n.callLeader(ctx, rpcOpen, data, &res)
	}
	if err != nil {
		return 0, err
	}
	if res.Incarnation != 0 {
		return res.Incarnation, nil
	}
	return 0, n.waitLocal(ctx, res.Index)
}

// applyOpen commits an OpOpenIncarnation a member sent through the RPC.
func (n *Node) applyOpen(data []byte) (applyResult, error) {
	c, err := fsm.Decode(data)
	if err != nil {
		return applyResult{}, fmt.Errorf("%w: %v", wire.ErrBadRequest, err)
	}
	if c.Op != fsm.OpOpenIncarnation {
		return applyResult{}, fmt.Errorf("%w: %v sent as an incarnation opening", wire.ErrBadRequest, c.Op)
	}
	if err := c.Validate(); err != nil {
		return applyResult{}, fmt.Errorf("%w: %v", wire.ErrBadRequest, err)
	}
	if _, ok := n.serverAddress(c.Session.Owner); !ok && n.raft.State() == raft.Leader {
		return applyResult{}, fmt.Errorf("%w: %q is not in the configuration", wire.ErrUnknownMember, c.Session.Owner)
	}
	res, err := n.applyLocal(data)
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
		return applyResult{}, wire.ErrNotLeader
	}
	return res, err
}

// incarnationLoop opens this node's incarnation at start, and a new one
// each time the previous ended under it (its lease lapsed and the leader
// orphaned its sessions): the node's sessions and queue follow.
func (n *Node) incarnationLoop() {
	for {
		inc := n.openIncarnation(n.ctx)
		if inc == 0 {
			return
		}
		n.queue.setIncarnation(inc)
		n.sessions.setIncarnation(inc)
		n.renewLease()
		n.logger.Info("incarnation open", "incarnation", inc)
		select {
		case <-n.ctx.Done():
			return
		case <-n.incarnationOver:
		}
	}
}
