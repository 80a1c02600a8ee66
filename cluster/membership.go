package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlookupd/raftlookupd/fsm"
	"github.com/raftlookupd/raftlookupd/wire"
)

// Join adds a server, on the leader (followers forward). It is idempotent:
// the same id at the same address with the same suffrage changes nothing;
// the same id at a new address replaces the old entry.
func (n *Node) Join(ctx context.Context, req wire.JoinRequest) error {
	err := n.joinLocal(ctx, req)
	if errors.Is(err, raft.ErrNotLeader) {
		return n.toLeader(ctx, rpcJoin, req)
	}
	return err
}

func (n *Node) joinLocal(ctx context.Context, req wire.JoinRequest) error {
	if req.ID == "" || req.RaftAddress == "" {
		return fmt.Errorf("%w: join needs id and raft_address", wire.ErrBadRequest)
	}
	if len(req.ID) > fsm.MaxNodeIDLen {
		return fmt.Errorf("%w: id longer than %d bytes", wire.ErrBadRequest, fsm.MaxNodeIDLen)
	}
	if _, _, err := net.SplitHostPort(req.RaftAddress); err != nil || len(req.RaftAddress) > fsm.MaxAddressLen {
		return fmt.Errorf("%w: raft_address %q: want host:port", wire.ErrBadRequest, req.RaftAddress)
	}
	if n.raft.State() != raft.Leader {
		// A follower's configuration may be stale: it could answer "already
		// a member" for a server the leader has since removed (found by
		// e2e/chaos). The leader decides.
		return raft.ErrNotLeader
	}
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return err
	}
	id, addr := raft.ServerID(req.ID), raft.ServerAddress(req.RaftAddress)
	want := raft.Nonvoter
	if req.IsVoter() {
		want = raft.Voter
	}
	for _, s := range cf.Configuration().Servers {
		switch {
		case s.ID == id && s.Address == addr && (s.Suffrage == want || (want == raft.Nonvoter && s.Suffrage == raft.Voter)):
			// Already a member. A voter asked to join as non-voter stays
			// a voter: demotion is a separate decision.
			return nil
		case s.ID == id || s.Address == addr:
			if err := n.raft.RemoveServer(s.ID, 0, 0).Error(); err != nil {
				return fmt.Errorf("remove old entry of %s: %w", s.ID, err)
			}
			n.logger.Info("removed old member entry before join", "id", s.ID, "address", s.Address)
			if err := n.compactLog(ctx); err != nil {
				return fmt.Errorf("compact the log after removing the old entry of %s: %w", s.ID, err)
			}
		}
	}
	var f raft.IndexFuture
	if want == raft.Voter {
		f = n.raft.AddVoter(id, addr, 0, 0)
	} else {
		f = n.raft.AddNonvoter(id, addr, 0, 0)
	}
	if err := f.Error(); err != nil {
		return fmt.Errorf("add %s: %w", id, err)
	}
	n.logger.Info("member joined", "id", id, "address", addr, "suffrage", want)
	return nil
}

// Leave removes a server, on the leader (followers forward). Leaving a
// server that is not a member succeeds and changes nothing, so scripts can
// repeat it. The leader leaving hands leadership over first; the call
// returns once the configuration no longer holds the server.
func (n *Node) Leave(ctx context.Context, id string) error {
	err := n.leaveLocal(ctx, id)
	if errors.Is(err, raft.ErrNotLeader) {
		return n.toLeader(ctx, rpcLeave, wire.LeaveRequest{ID: id})
	}
	return err
}

func (n *Node) leaveLocal(ctx context.Context, id string) error {
	if id == "" {
		return fmt.Errorf("%w: leave needs an id", wire.ErrBadRequest)
	}
	if n.raft.State() != raft.Leader {
		// A read of the configuration on a follower may be stale; the
		// leader decides membership.
		return raft.ErrNotLeader
	}
	if _, ok := n.serverAddress(id); !ok {
		n.logger.Info("leave of a server that is not a member: nothing to do", "id", id)
		return nil
	}
	if id == n.cfg.NodeID {
		if n.voters() < 2 {
			return fmt.Errorf("%w: %q is the only voter; a cluster cannot remove its last voter", wire.ErrBadRequest, id)
		}
		// Hand over first: the next leader removes this node, and this one
		// waits for the answer, so the call returns once it is out.
		if err := n.raft.LeadershipTransfer().Error(); err != nil && !errors.Is(err, raft.ErrNotLeader) {
			return fmt.Errorf("%w: hand leadership over before leaving: %v", wire.ErrNoLeader, err)
		}
		return raft.ErrNotLeader
	}
	// Tell the node first, so it stops acknowledging nsqd and drains its
	// queue while it can still commit. It may be down: then there is
	// nothing to tell, and the removal goes on.
	if addr, ok := n.serverAddress(id); ok {
		rctx, cancel := context.WithTimeout(ctx, n.cfg.WriteTimeout)
		if err := n.rpcc.call(rctx, string(addr), rpcRetire, indexDoc{n.raft.LastIndex()}, nil); err != nil {
			n.logger.Warn("could not tell a member it is being removed; removing it anyway", "id", id, "error", err)
		}
		cancel()
	}
	if err := n.raft.RemoveServer(raft.ServerID(id), 0, 0).Error(); err != nil {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	n.logger.Info("member removed", "id", id)
	// Forget its addresses; its sessions go when its lease lapses.
	if err := n.proposeLeader(fsm.Command{Op: fsm.OpRemoveMember, Member: fsm.Member{ID: id}}); err != nil {
		n.logger.Warn("member removed, but its record was not", "id", id, "error", err)
	}
	// Before answering: once the caller hears "left" it may wipe the
	// server and join it again (compactLog says why).
	if err := n.compactLog(ctx); err != nil {
		n.logger.Warn("member removed, but the log was not compacted after the removal", "id", id, "error", err)
	}
	return nil
}

// TransferLeadership hands leadership to id, or to the most up-to-date
// voter when id is empty.
func (n *Node) TransferLeadership(ctx context.Context, id string) error {
	err := n.transferLocal(ctx, id)
	if errors.Is(err, raft.ErrNotLeader) {
		return n.toLeader(ctx, rpcTransfer, wire.TransferRequest{ID: id})
	}
	return err
}

func (n *Node) transferLocal(_ context.Context, id string) error {
	if n.raft.State() != raft.Leader {
		return raft.ErrNotLeader
	}
	if n.voters() < 2 {
		return fmt.Errorf("%w: no other voter to hand leadership to", wire.ErrBadRequest)
	}
	var f raft.Future
	if id == "" {
		f = n.raft.LeadershipTransfer()
	} else {
		addr, ok := n.serverAddress(id)
		if !ok {
			return fmt.Errorf("%w: %q", wire.ErrUnknownMember, id)
		}
		if id == n.cfg.NodeID {
			return nil // already leads
		}
		f = n.raft.LeadershipTransferToServer(raft.ServerID(id), addr)
	}
	if err := f.Error(); err != nil {
		return fmt.Errorf("%w: leadership transfer: %v", wire.ErrNoLeader, err)
	}
	return nil
}

// toLeader sends an admin request to the leader's RPC. While no leader is
// known (an election, or a hand-over this node just made) it waits for one
// until ctx ends.
//
// A leader that stops leading while it works on the request answers "not
// the leader"; the request is then sent again to the next one. Join and
// leave are idempotent, and a refused transfer did nothing, so a retry is
// safe.
func (n *Node) toLeader(ctx context.Context, path string, req any) error {
	var err error
	for {
		var addr string
		addr, err = n.leaderRaftAddress()
		if err == nil && addr != n.cfg.RaftAdvertise {
			err = n.rpcc.call(ctx, addr, path, req, nil)
			if err == nil || !errors.Is(err, wire.ErrNotLeader) {
				return err
			}
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = wire.ErrNoLeader
			}
			return fmt.Errorf("%w (gave up: %v)", err, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// joinLoop asks the -join addresses (Raft addresses of members), in turn,
// to add this node until one accepts or this node shows up in the
// configuration. A host name is resolved again on every round and stands
// for every address it resolves to.
func (n *Node) joinLoop() {
	backoff := 200 * time.Millisecond
	req := wire.JoinRequest{ID: n.cfg.NodeID, RaftAddress: n.cfg.RaftAdvertise}
	for {
		if n.isMember() {
			return
		}
		for _, addr := range n.joinTargets() {
			ctx, cancel := context.WithTimeout(n.ctx, n.cfg.WriteTimeout)
			err := n.rpcc.call(ctx, addr, rpcJoin, req, nil)
			cancel()
			if err == nil {
				n.logger.Info("joined the cluster", "via", addr)
				return
			}
			n.logger.Warn("join attempt failed; retrying", "via", addr, "error", err, "retry_in", backoff)
		}
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (n *Node) joinTargets() []string {
	var out []string
	for _, j := range n.cfg.Join {
		host, port, err := net.SplitHostPort(j)
		if err != nil {
			continue
		}
		if net.ParseIP(host) != nil {
			out = append(out, j)
			continue
		}
		ctx, cancel := context.WithTimeout(n.ctx, time.Second)
		addrs, err := n.lookupHost(ctx, host)
		cancel()
		if err != nil || len(addrs) == 0 {
			out = append(out, j) // let the dial report the failure
			continue
		}
		for _, a := range addrs {
			if self := net.JoinHostPort(a, port); self != n.cfg.RaftAdvertise {
				out = append(out, self)
			}
		}
	}
	return out
}

// snapshotAfterRemovals compacts the log after every committed
// configuration that removed a server (compactLog).
func (n *Node) snapshotAfterRemovals() {
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.fsm.removals:
		}
		if err := n.compactLog(n.ctx); err != nil && n.ctx.Err() == nil {
			n.logger.Warn("log not compacted after a configuration change removed a server", "error", err)
		}
	}
}

// compactLog takes a snapshot of everything applied so far and drops the
// whole log before it, retrying while raft refuses (a snapshot running, a
// committed configuration not applied yet) until ctx ends.
//
// Why, after a removal: a server that joins with an empty log gets what the
// leader holds from its first entry on, the latest snapshot if the log
// before it is gone, else the log itself. Replaying an old log, it passes
// through every configuration the cluster ever had; one that names it and
// servers that have since left, been wiped and started again empty makes
// it a candidate whose election those amnesiac servers may grant, and a
// leader elected that way overwrites committed entries. e2e/chaos found
// this (seed 50066): n2 and then n1 left a three-node cluster, n1 was wiped
// and joined again, the leader n3 was killed while n1 had replayed the first
// 64 entries (the bootstrap configuration), and n1 won term 6 with the
// vote of the wiped n2. Once the log before a removal is gone, a joining
// server starts from a snapshot whose configuration no longer names the
// removed servers, and the old configurations are nowhere to replay.
func (n *Node) compactLog(ctx context.Context) error {
	n.compactMu.Lock()
	defer n.compactMu.Unlock()
	rc := n.raft.ReloadableConfig()
	rc.TrailingLogs = 0
	if err := n.raft.ReloadConfig(rc); err != nil {
		return err
	}
	defer func() {
		rc.TrailingLogs = n.cfg.TrailingLogs
		if err := n.raft.ReloadConfig(rc); err != nil {
			n.logger.Error("cannot restore trailing logs after compaction", "error", err)
		}
	}()
	for {
		// "Nothing new" is retried too: the last snapshot covers everything
		// applied, but it may have kept trailing logs. Lease renewals apply
		// something new soon.
		err := n.raft.Snapshot().Error()
		if err == nil {
			return nil
		}
		if errors.Is(err, raft.ErrRaftShutdown) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last attempt: %v)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
