package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlookupd/raftlookupd/fsm"
)

// Join adds a server, on the leader (followers forward). It is idempotent:
// the same id at the same address with the same suffrage changes nothing;
// the same id at a new address replaces the old entry.
func (n *Node) Join(ctx context.Context, req JoinRequest) error {
	if req.ID == "" || req.RaftAddress == "" {
		return fmt.Errorf("%w: join needs id and raft_address", ErrBadRequest)
	}
	err := n.joinLocal(req)
	if errors.Is(err, raft.ErrNotLeader) {
		return n.forwardJSON(ctx, PathJoin, req, nil)
	}
	return err
}

func (n *Node) joinLocal(req JoinRequest) error {
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

// Leave removes a server, on the leader (followers forward).
func (n *Node) Leave(ctx context.Context, id string) error {
	if id == "" {
		return fmt.Errorf("%w: leave needs an id", ErrBadRequest)
	}
	err := n.leaveLocal(id)
	if errors.Is(err, raft.ErrNotLeader) {
		return n.forwardJSON(ctx, PathLeave, LeaveRequest{ID: id}, nil)
	}
	if err != nil {
		return err
	}
	// Forget its addresses; its sessions go when its lease lapses.
	return n.Propose(ctx, fsm.Command{Op: fsm.OpRemoveMember, Member: fsm.Member{ID: id}})
}

func (n *Node) leaveLocal(id string) error {
	if n.raft.State() != raft.Leader {
		// A read of the configuration on a follower may be stale; the
		// leader decides membership.
		return raft.ErrNotLeader
	}
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return err
	}
	for _, s := range cf.Configuration().Servers {
		if string(s.ID) == id {
			if err := n.raft.RemoveServer(s.ID, 0, 0).Error(); err != nil {
				return fmt.Errorf("remove %s: %w", id, err)
			}
			n.logger.Info("member removed", "id", id)
			return nil
		}
	}
	return fmt.Errorf("%w: %q", ErrUnknownMember, id)
}

// TransferLeadership hands leadership to id, or to the most up-to-date
// voter when id is empty.
func (n *Node) TransferLeadership(ctx context.Context, id string) error {
	if n.raft.State() != raft.Leader {
		return n.forwardJSON(ctx, PathTransfer, TransferRequest{ID: id}, nil)
	}
	var f raft.Future
	if id == "" {
		f = n.raft.LeadershipTransfer()
	} else {
		addr, ok := n.serverAddress(id)
		if !ok {
			return fmt.Errorf("%w: %q", ErrUnknownMember, id)
		}
		f = n.raft.LeadershipTransferToServer(raft.ServerID(id), addr)
	}
	return f.Error()
}

func (n *Node) serverAddress(id string) (raft.ServerAddress, bool) {
	cf := n.raft.GetConfiguration()
	if cf.Error() != nil {
		return "", false
	}
	for _, s := range cf.Configuration().Servers {
		if string(s.ID) == id {
			return s.Address, true
		}
	}
	return "", false
}

// joinLoop asks the -join addresses, in turn, to add this node until one
// accepts or this node shows up in the configuration.
func (n *Node) joinLoop() {
	backoff := 200 * time.Millisecond
	req := JoinRequest{ID: n.cfg.NodeID, RaftAddress: n.cfg.RaftAdvertise}
	for i := 0; ; i++ {
		if n.isMember() {
			return
		}
		addr := n.cfg.Join[i%len(n.cfg.Join)]
		ctx, cancel := context.WithTimeout(n.ctx, n.cfg.WriteTimeout)
		err := n.callJoin(ctx, addr, req)
		cancel()
		if err == nil {
			n.logger.Info("joined the cluster", "via", addr)
			return
		}
		n.logger.Warn("join attempt failed; retrying", "via", addr, "error", err, "retry_in", backoff)
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}
