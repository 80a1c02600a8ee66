package fsm

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// Backup file format (raftlookupctl snapshot save/restore): a fixed header,
// then one registry snapshot exactly as a snapshot of the state machine
// stores it.
//
//	magic "RLKB" | version byte | index u64 | term u64 | size u64 | sha256 [32] | snapshot [size]
//
// Integers are big-endian. index is the last log entry the snapshot holds
// (it equals the snapshot's own trailer); term is the Raft term in which the
// backup was taken, for operators only; the checksum covers the snapshot, so
// a truncated or damaged file is refused before anything is restored.
const (
	backupMagic   = "RLKB"
	backupVersion = 1
	// BackupHeaderSize is the length of the header before the snapshot.
	BackupHeaderSize = len(backupMagic) + 1 + 8 + 8 + 8 + sha256.Size
	// MaxBackupBytes bounds a backup file that a node accepts or a tool
	// reads: a registry of a hundred thousand topics of ten channels each is
	// tens of megabytes.
	MaxBackupBytes = 256 << 20
)

// ErrBadBackup is wrapped by every refusal of a backup file.
var ErrBadBackup = errors.New("not a valid raftlookupd backup")

// Backup is a decoded backup file.
type Backup struct {
	Index    uint64
	Term     uint64
	Snapshot []byte
}

// SnapshotInfo counts what a snapshot holds.
type SnapshotInfo struct {
	// Index is the log index of the last entry the snapshot includes.
	Index uint64
	// Members are member address records; Owners are node lease records.
	Members, Owners int
	Stats
}

// Backup returns the registry encoded as a snapshot, with the index of the
// last entry it holds, read under one lock so both describe the same state.
func (r *Registry) Backup() ([]byte, uint64) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.encodeSnapshot(), r.appliedIndex
}

// HasOwners reports whether the registry holds any node's lease record. One
// that PrepareRestore produced holds none; every node renews its lease at
// start, so a snapshot of a running cluster always holds one.
func (r *Registry) HasOwners() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.owners) > 0
}

// EncodeBackup returns the backup file of a snapshot the registry produced.
func EncodeBackup(b Backup) []byte {
	sum := sha256.Sum256(b.Snapshot)
	out := make([]byte, 0, BackupHeaderSize+len(b.Snapshot))
	out = append(out, backupMagic...)
	out = append(out, backupVersion)
	out = binary.BigEndian.AppendUint64(out, b.Index)
	out = binary.BigEndian.AppendUint64(out, b.Term)
	out = binary.BigEndian.AppendUint64(out, uint64(len(b.Snapshot)))
	out = append(out, sum[:]...)
	return append(out, b.Snapshot...)
}

// DecodeBackup checks a backup file completely (header, size, checksum, and
// that the snapshot decodes and holds the index the header claims) and
// returns it with what it holds. Snapshot aliases data.
func DecodeBackup(data []byte) (Backup, SnapshotInfo, error) {
	bad := func(format string, a ...any) (Backup, SnapshotInfo, error) {
		return Backup{}, SnapshotInfo{}, fmt.Errorf("%w: %s", ErrBadBackup, fmt.Sprintf(format, a...))
	}
	if len(data) < BackupHeaderSize || string(data[:len(backupMagic)]) != backupMagic {
		return bad("no backup header")
	}
	h := data[len(backupMagic):]
	if h[0] != backupVersion {
		return bad("format version %d, this build reads %d", h[0], backupVersion)
	}
	b := Backup{Index: binary.BigEndian.Uint64(h[1:9]), Term: binary.BigEndian.Uint64(h[9:17])}
	size := binary.BigEndian.Uint64(h[17:25])
	body := data[BackupHeaderSize:]
	if size != uint64(len(body)) {
		return bad("header says %d snapshot bytes, the file holds %d (truncated?)", size, len(body))
	}
	if sum := sha256.Sum256(body); !bytes.Equal(sum[:], h[25:25+sha256.Size]) {
		return bad("checksum mismatch (damaged file)")
	}
	r, err := decodeSnapshot(body)
	if err != nil {
		return bad("%v", err)
	}
	if r.appliedIndex != b.Index {
		return bad("header index %d, snapshot index %d", b.Index, r.appliedIndex)
	}
	b.Snapshot = body
	return b, r.info(), nil
}

// PrepareRestore returns the snapshot a restore installs: the backup's
// topic and channel keys, without what belongs to the processes and
// connections of the cluster it was taken from. Sessions (with their
// producer records and tombstones), lease records, batch marks and member
// records are dropped: the nodes of the running cluster publish their own
// again, and nsqd registers its producers again once its connections, which
// the restore closes, are reopened (README.md, "Backup and restore").
func PrepareRestore(snapshot []byte) ([]byte, SnapshotInfo, error) {
	old, err := decodeSnapshot(snapshot)
	if err != nil {
		return nil, SnapshotInfo{}, fmt.Errorf("%w: %v", ErrBadBackup, err)
	}
	r := NewRegistry()
	for _, name := range sortedKeys(old.topics) {
		t := old.topics[name]
		if !t.hasKey && t.channels.len() == 0 {
			continue
		}
		nt := r.ensureTopic(name)
		r.setKey(nt, t.hasKey)
		for _, ch := range sortedNames(&t.channels) {
			r.ensureChannel(nt, ch)
		}
	}
	r.appliedIndex = old.appliedIndex
	return r.encodeSnapshot(), r.info(), nil
}

// info counts a registry nobody else holds yet.
func (r *Registry) info() SnapshotInfo {
	return SnapshotInfo{Index: r.appliedIndex, Members: len(r.members), Owners: len(r.owners), Stats: r.Stats()}
}
