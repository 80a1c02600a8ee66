package fsm

import (
	"errors"
	"slices"
	"testing"
)

// loadedHarness holds two sessions that registered keys, HTTP-created keys,
// a tombstone, a member record and a batch mark.
func loadedHarness(t *testing.T) *harness {
	h := newHarness(t)
	h.apply(concat(setup(s1, s2), []Command{
		register(s1, "orders", "billing"),
		register(s2, "orders", ""),
		register(s2, "events#ephemeral", "tail#ephemeral"),
		createChannel("audit", "archive"),
		createTopic("empty"),
		tombstone("orders", "b.example:4151", t0),
		setMember(Member{ID: "n1", RaftAddress: "n1:4162", HTTPAddress: "n1:4161", TCPAddress: "n1:4160"}),
		batch("n1", 1, 7, createTopic("batched")),
	})...)
	return h
}

func TestBackupRoundTrip(t *testing.T) {
	h := loadedHarness(t)
	snap, index := h.reg().Backup()
	if index != h.idx {
		t.Fatalf("backup index %d, want the last applied %d", index, h.idx)
	}
	file := EncodeBackup(Backup{Index: index, Term: 3, Snapshot: snap})
	b, info, err := DecodeBackup(file)
	if err != nil {
		t.Fatal(err)
	}
	if b.Index != index || b.Term != 3 || string(b.Snapshot) != string(snap) {
		t.Fatalf("decoded index %d term %d (%d bytes), want %d 3 (%d bytes)", b.Index, b.Term, len(b.Snapshot), index, len(snap))
	}
	want := SnapshotInfo{Index: index, Members: 1, Owners: 2, Stats: Stats{Sessions: 2, Topics: 5, Channels: 3, Producers: 5}}
	if info != want {
		t.Fatalf("info %+v, want %+v", info, want)
	}
}

func TestDecodeBackupRefusesDamage(t *testing.T) {
	h := loadedHarness(t)
	snap, index := h.reg().Backup()
	good := EncodeBackup(Backup{Index: index, Term: 1, Snapshot: snap})
	flip := func(i int) []byte {
		b := slices.Clone(good)
		b[i] ^= 0x40
		return b
	}
	cases := map[string][]byte{
		"empty":           nil,
		"short header":    good[:BackupHeaderSize-1],
		"magic":           flip(0),
		"version":         flip(4),
		"size":            flip(BackupHeaderSize - 33),
		"checksum":        flip(BackupHeaderSize - 1),
		"snapshot byte":   flip(len(good) - 2),
		"truncated":       good[:len(good)-1],
		"trailing byte":   append(slices.Clone(good), 0),
		"index mismatch":  EncodeBackup(Backup{Index: index + 1, Snapshot: snap}),
		"not a snapshot":  EncodeBackup(Backup{Index: index, Snapshot: []byte("RLKS\x01garbage")}),
		"raw snapshot":    snap,
		"wrong magic too": append([]byte("RLKS"), good[4:]...),
	}
	for name, data := range cases {
		if _, _, err := DecodeBackup(data); !errors.Is(err, ErrBadBackup) {
			t.Errorf("%s: err %v, want ErrBadBackup", name, err)
		}
	}
}

// PrepareRestore keeps every key /topics and /channels list, and nothing
// that belongs to the old cluster's processes or connections.
func TestPrepareRestore(t *testing.T) {
	h := loadedHarness(t)
	snap, index := h.reg().Backup()
	prepared, info, err := PrepareRestore(snap)
	if err != nil {
		t.Fatal(err)
	}
	want := SnapshotInfo{Index: index, Stats: Stats{Topics: 5, Channels: 3}}
	if info != want {
		t.Fatalf("info %+v, want %+v", info, want)
	}
	f := New()
	if err := f.Restore(readCloser(prepared)); err != nil {
		t.Fatal(err)
	}
	r := f.Registry()
	if got, want := r.Topics(), h.reg().Topics(); !slices.Equal(got, want) {
		t.Errorf("topics %q, want %q", got, want)
	}
	if got, want := r.Channels("*"), h.reg().Channels("*"); !slices.Equal(got, want) {
		t.Errorf("channels %q, want %q", got, want)
	}
	if r.HasOwners() || len(r.Members()) != 0 || r.Stats().Sessions != 0 {
		t.Errorf("owners %v, members %v, sessions %d: want none", r.Owners(), r.Members(), r.Stats().Sessions)
	}
	if r.AppliedIndex() != index {
		t.Errorf("applied index %d, want %d", r.AppliedIndex(), index)
	}
	if !h.reg().HasOwners() {
		t.Error("HasOwners false on a registry with lease records")
	}
	// No batch mark is left: a batch of any incarnation and sequence applies.
	g := &harness{t: t, f: f, idx: index}
	g.apply(batch("n1", 1, 1, createTopic("after")))
	if !slices.Contains(r.Topics(), "after") {
		t.Error("a batch after the restore was dropped as a duplicate")
	}
	if _, _, err := PrepareRestore([]byte("nope")); !errors.Is(err, ErrBadBackup) {
		t.Errorf("PrepareRestore of garbage: %v, want ErrBadBackup", err)
	}
}
