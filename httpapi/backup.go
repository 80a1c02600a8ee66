package httpapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/raftlookupd/raftlookupd/fsm"
	"github.com/raftlookupd/raftlookupd/wire"
)

// restoreTimeout bounds a restore: installing a snapshot on a quorum takes
// longer than a write.
const restoreTimeout = time.Minute

// Backups is what the backup endpoints need from the cluster. A Cluster
// without it answers them 501.
type Backups interface {
	// Backup returns a backup file holding every write committed before
	// the call.
	Backup(ctx context.Context) ([]byte, error)
	// Restore installs a backup file on every node, through the leader.
	Restore(ctx context.Context, data []byte) (wire.RestoreResult, error)
}

var errNoBackups = errorf(http.StatusNotImplemented, "this node cannot take or restore backups")

// handleSnapshot answers GET /cluster/snapshot with a backup file. It reads
// state, like status, so it needs the token when one is set and nothing
// more; the response is a file, not JSON, so it does not go through admin.
func (s *Server) handleSnapshot(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if !s.authorized(r) {
		writeUnauthorized(w)
		return
	}
	b, ok := s.cluster.(Backups)
	if !ok {
		writeJSON(w, errNoBackups.status, messageBody{errNoBackups.message})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.WriteTimeout)
	defer cancel()
	data, err := b.Backup(ctx)
	if err != nil {
		e := s.adminError(r, err)
		writeJSON(w, e.status, messageBody{e.message})
		return
	}
	s.logger.Info("backup sent", "bytes", len(data), "remote", r.RemoteAddr)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.Header().Set("Content-Disposition", `attachment; filename="raftlookupd.snapshot"`)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
}

// handleRestore serves POST /cluster/restore: the body is a backup file. It
// replaces the cluster's state, so without a token it is accepted from
// loopback only, like a membership change.
func (s *Server) handleRestore(_ context.Context, w http.ResponseWriter, r *http.Request) (any, error) {
	b, ok := s.cluster.(Backups)
	if !ok {
		return nil, errNoBackups
	}
	if r.ContentLength > fsm.MaxBackupBytes {
		return nil, errorf(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", fsm.MaxBackupBytes))
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, fsm.MaxBackupBytes))
	if err != nil {
		return nil, bodyError(err)
	}
	// Not admin's write timeout: every node must install the snapshot.
	ctx, cancel := context.WithTimeout(r.Context(), restoreTimeout)
	defer cancel()
	res, err := b.Restore(ctx, data)
	if err != nil {
		return nil, err
	}
	s.logger.Info("backup restored", "backup_index", res.BackupIndex, "topics", res.Topics,
		"channels", res.Channels, "remote", r.RemoteAddr)
	return res, nil
}
