package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlookupd/raftlookupd/fsm"
	"github.com/raftlookupd/raftlookupd/wire"
)

// Online backup and restore. A backup is the registry's snapshot at a
// linearizable point, in the file format of fsm/backup.go. A restore hands
// the backup's keys to raft.Restore on the leader: raft installs them as a
// new snapshot after a gap in the log, so every follower faults and installs
// the same snapshot, and the call returns once an entry after it committed
// on a quorum. Restoring replaces state rather than adding commands, so
// nothing of the state the cluster held before survives it.

const (
	// rpcRestore forwards a restore to the leader. The body is the backup
	// file as the operator sent it; the leader checks it again.
	rpcRestore = "/rpc/restore"
	// restoreTimeout bounds a restore: copying the snapshot, installing it
	// on a quorum, committing an entry after it.
	restoreTimeout = time.Minute
)

// Backup returns a backup file holding every write committed before the
// call: it waits for a linearizable read barrier, then encodes the local
// registry.
func (n *Node) Backup(ctx context.Context) ([]byte, error) {
	if err := n.ReadBarrier(ctx, wire.Linearizable); err != nil {
		return nil, err
	}
	snap, index := n.Registry().Backup()
	b := fsm.Backup{Index: index, Term: n.raft.CurrentTerm(), Snapshot: snap}
	n.logger.Info("backup taken", "index", b.Index, "term", b.Term, "bytes", len(snap))
	return fsm.EncodeBackup(b), nil
}

// Restore replaces the registry on every node with a backup's topic and
// channel keys (fsm.PrepareRestore says what is kept). Any node accepts it
// and forwards it to the leader. Once the restore is installed, every node
// closes its client connections, so nsqd reconnects and registers its
// producers again.
//
// A restore that timed out or lost leadership midway has an unknown
// outcome (wire.ErrNoLeader); sending the same backup again is safe.
func (n *Node) Restore(ctx context.Context, data []byte) (wire.RestoreResult, error) {
	return n.restore(ctx, data, true)
}

func (n *Node) restore(ctx context.Context, data []byte, forward bool) (wire.RestoreResult, error) {
	b, _, err := fsm.DecodeBackup(data)
	if err != nil {
		return wire.RestoreResult{}, fmt.Errorf("%w: %v", wire.ErrBadRequest, err)
	}
	prepared, info, err := fsm.PrepareRestore(b.Snapshot)
	if err != nil {
		return wire.RestoreResult{}, fmt.Errorf("%w: %v", wire.ErrBadRequest, err)
	}
	err = n.restoreLocal(ctx, b, prepared)
	if forward && errors.Is(err, raft.ErrNotLeader) {
		err = n.restoreViaLeader(ctx, data)
	}
	if err != nil {
		return wire.RestoreResult{}, err
	}
	return wire.RestoreResult{BackupIndex: b.Index, BackupTerm: b.Term, Topics: info.Topics, Channels: info.Channels}, nil
}

// restoreLocal runs raft.Restore on this node: raft.ErrNotLeader when it
// does not lead.
func (n *Node) restoreLocal(ctx context.Context, b fsm.Backup, prepared []byte) error {
	timeout := restoreTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if timeout <= 0 {
		return fmt.Errorf("%w: restore: %v", wire.ErrNoLeader, context.DeadlineExceeded)
	}
	// raft places the snapshot after its last index or after meta.Index,
	// whichever is higher, so the registry's applied index (the backup's)
	// stays below every index this cluster uses from now on.
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Index: b.Index, Term: b.Term, Size: int64(len(prepared))}
	err := n.raft.Restore(meta, bytes.NewReader(prepared), timeout)
	switch {
	case err == nil:
		n.logger.Info("backup restored", "backup_index", b.Index, "backup_term", b.Term, "bytes", len(prepared))
		return nil
	case errors.Is(err, raft.ErrNotLeader):
		return raft.ErrNotLeader
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%w: restore outcome unknown (%v); check the state and send the backup again", wire.ErrNoLeader, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%w: %v", wire.ErrShutdown, err)
	}
	return fmt.Errorf("restore: %w", err)
}

// restoreViaLeader sends the backup file to the leader's RPC, waiting for a
// leader while none is known. The leader does not forward it further.
func (n *Node) restoreViaLeader(ctx context.Context, data []byte) error {
	c := &rpcClient{hc: &http.Client{Transport: n.rpcc.hc.Transport, Timeout: restoreTimeout}, token: n.rpcc.token}
	for {
		addr, err := n.leaderRaftAddress()
		if err == nil && addr != n.cfg.RaftAdvertise {
			return c.call(ctx, addr, rpcRestore, data, nil)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", wire.ErrNoLeader, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// handleRestore serves a restore a member forwarded.
func (s *rpcServer) handleRestore(_ context.Context, r *http.Request) (any, error) {
	data, err := readBackup(r.Body, r.ContentLength)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(r.Context(), restoreTimeout)
	defer cancel()
	res, err := s.n.restore(ctx, data, false)
	return res, asWire(err)
}

// readBackup reads a backup file of at most fsm.MaxBackupBytes from a
// request body whose declared length is size (-1 when unknown).
func readBackup(body io.Reader, size int64) ([]byte, error) {
	if size > fsm.MaxBackupBytes {
		return nil, fmt.Errorf("%w: backup of %d bytes, at most %d", wire.ErrTooLarge, size, fsm.MaxBackupBytes)
	}
	data, err := io.ReadAll(io.LimitReader(body, fsm.MaxBackupBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read backup: %v", wire.ErrBadRequest, err)
	}
	if len(data) > fsm.MaxBackupBytes {
		return nil, fmt.Errorf("%w: backup larger than %d bytes", wire.ErrTooLarge, fsm.MaxBackupBytes)
	}
	return data, nil
}

// noteRestore runs after every restore of the state machine, before raft
// applies anything after the snapshot, and tells restoredLoop when the
// sessions of this node are no longer in the state:
//
//   - A registry without lease records is a restored backup
//     (fsm.PrepareRestore drops them): every node's sessions are gone. A
//     snapshot of a running cluster always holds some, since every node
//     renews its lease at start.
//   - A node whose lease was live before, but is absent or older after, was
//     cut off while a backup was restored and now installs a later
//     snapshot. A snapshot a leader sends to catch a node up otherwise
//     holds that node's lease as the node last applied it: the leader
//     sends one only when the entries the node lacks were compacted into
//     it.
func (a *appliedFSM) noteRestore(before fsm.Owner, known bool) {
	after, ok := a.Registry().Owner(a.self)
	lost := !a.Registry().HasOwners() ||
		(known && !before.Expired && (!ok || after.Incarnation < before.Incarnation))
	if !lost {
		return
	}
	select {
	case a.sessionsLost <- struct{}{}:
	default: // one pending signal is enough
	}
}

// restoredLoop ends this node's incarnation whenever a restore dropped its
// sessions, as when its lease expired: their connections close, the node
// opens its next incarnation in the restored state, and nsqd registers
// again. A node without an incarnation yet opens its first one there.
func (n *Node) restoredLoop() {
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.fsm.sessionsLost:
			if inc := n.sessions.incarnation(); inc != 0 {
				n.endIncarnation(inc, "a restored backup does not hold this node's sessions")
			}
		}
	}
}
