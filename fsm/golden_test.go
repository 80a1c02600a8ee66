package fsm

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// The golden files pin the log and snapshot formats: a change in these bytes
// breaks nodes that must read entries and snapshots written by older ones.
// After an intended format change (with a new Version / snapshotVersion or a
// new Op), regenerate with:
//
//	go test ./fsm -run TestGolden -update
var update = flag.Bool("update", false, "rewrite fsm/testdata/*.golden from the current encoder")

// goldenCommands holds one command of every op, with fixed values that use
// every encoded field (including multi-byte varints and negative numbers).
func goldenCommands() map[Op]Command {
	id := SessionID{Owner: "node-1", Incarnation: 1_700_000_000_123_456_789, Seq: 300}
	peer := PeerInfo{RemoteAddress: "10.1.2.3:54321", Hostname: "nsqd-7", BroadcastAddress: "nsqd-7.example", TCPPort: 4150, HTTPPort: 4151, Version: "1.3.0"}
	at := int64(1_700_000_000_987_654_321)
	return map[Op]Command{
		OpBatch: {Op: OpBatch, Session: SessionID{Owner: "node-1", Incarnation: 7}, BatchSeq: 129, Batch: []Command{
			{Op: OpRegister, Session: id, Topic: "t", Channel: "c"},
			{Op: OpDeleteChannel, Topic: "t", Channel: "c"},
		}},
		OpOpenSession:   {Op: OpOpenSession, Session: id, Peer: peer, Time: at},
		OpRegister:      {Op: OpRegister, Session: id, Topic: "orders", Channel: "archive#ephemeral"},
		OpUnregister:    {Op: OpUnregister, Session: id, Topic: "orders"},
		OpCloseSession:  {Op: OpCloseSession, Session: id},
		OpRenewLease:    {Op: OpRenewLease, Session: SessionID{Owner: "node-1", Incarnation: 7}, Time: at, Touches: []Touch{{Seq: 1, LastUpdate: at - 1}, {Seq: 300, LastUpdate: -5}}},
		OpExpireOwner:   {Op: OpExpireOwner, Session: SessionID{Owner: "node-2", Incarnation: 3}},
		OpCreateTopic:   {Op: OpCreateTopic, Topic: "orders"},
		OpDeleteTopic:   {Op: OpDeleteTopic, Topic: "orders"},
		OpCreateChannel: {Op: OpCreateChannel, Topic: "orders", Channel: "archive"},
		OpDeleteChannel: {Op: OpDeleteChannel, Topic: "orders", Channel: "archive"},
		OpTombstone:     {Op: OpTombstone, Topic: "orders", Node: "nsqd-7.example:4151", Time: at},
		OpSetMember:     {Op: OpSetMember, Member: Member{ID: "node-1", RaftAddress: "10.0.0.1:4162", HTTPAddress: "10.0.0.1:4161", TCPAddress: "10.0.0.1:4160"}},
		OpRemoveMember:  {Op: OpRemoveMember, Member: Member{ID: "node-3"}},
		OpCloseOwner:    {Op: OpCloseOwner, Session: SessionID{Owner: "node-1", Incarnation: 7}},
		OpExpireLease:   {Op: OpExpireLease, Session: SessionID{Owner: "node-2", Incarnation: 3}, RenewIndex: 42},
		OpOpenIncarnation: {Op: OpOpenIncarnation, Session: SessionID{Owner: "node-1"}, Nonce: 0x9e3779b97f4a7c15,
			Time: at, Grace: int64(35 * time.Second)},
		OpOrphanOwner:   {Op: OpOrphanOwner, Session: SessionID{Owner: "node-1", Incarnation: 812}, Time: at + int64(35*time.Second)},
		OpOrphanLease:   {Op: OpOrphanLease, Session: SessionID{Owner: "node-2", Incarnation: 813}, RenewIndex: 900, Time: at},
		OpExpireOrphans: {Op: OpExpireOrphans, Time: -at},
	}
}

// goldenBatch is a realistic group-commit entry.
func goldenBatch() Command {
	return batch("n1", 5, 42,
		renew("n1", 5, ns(0), Touch{Seq: 1, LastUpdate: ns(-time.Second)}),
		open(SessionID{"n1", 5, 2}, peerB, ns(0)),
		register(SessionID{"n1", 5, 2}, "orders", "archive"),
		unregister(SessionID{"n1", 5, 1}, "orders", "tmp#ephemeral"),
		closeSession(SessionID{"n1", 5, 1}),
		createTopic("billing"),
		tombstone("orders", "a.example:4151", ns(time.Second)),
	)
}

// goldenRegistry builds a small fixed registry touching every snapshot
// section, with incarnations of both eras: renewal-opened ones and
// cluster-numbered ones with orphans, settled and unsettled sessions.
func goldenRegistry(t testing.TB) *FSM {
	h := legacyGoldenHarness(t)
	// n4 opens incarnation 20 (the entry's index) with two sessions. Its
	// next process opens 24: both become orphans; peerB's goes at once (s2
	// of n1 is a settled live session of that identity), peerC's stays
	// until 1s+35s, even once an unsettled live session of peerC opens.
	// n5 opens 25 with a session that settles, then drains.
	h.idx = 19
	h.apply(
		openInc("n4", 0xfeed, t0, 35*time.Second),
		open(SessionID{"n4", 20, 1}, peerB, t0), open(SessionID{"n4", 20, 2}, peerC, t0),
		batch("n4", 20, 1, register(SessionID{"n4", 20, 2}, "orders", "archive")),
		openInc("n4", 0xbeef, ns(time.Second), 35*time.Second),
		openInc("n5", 7, t0, time.Second),
		open(SessionID{"n5", 25, 1}, peer6, t0),
		renew("n5", 25, t0, Touch{Seq: 1, LastUpdate: ns(time.Second)}),
		orphanOwner("n5", 25, ns(time.Minute)),
		open(SessionID{"n4", 24, 1}, peerC, ns(2*time.Second)),
	)
	return h.f
}

// legacyGoldenRegistry is the registry testdata/snapshot_v1.golden holds,
// built from commands that existed then.
func legacyGoldenRegistry(t testing.TB) *FSM { return legacyGoldenHarness(t).f }

func legacyGoldenHarness(t testing.TB) *harness {
	h := newHarness(t)
	h.apply(
		setMember(Member{ID: "n1", RaftAddress: "h1:4162", HTTPAddress: "h1:4161", TCPAddress: "h1:4160"}),
		setMember(Member{ID: "n2", RaftAddress: "h2:4162", HTTPAddress: "h2:4161", TCPAddress: "h2:4160"}),
		renew("n1", 1, t0), renew("n2", 3, t0), renew("n3", 1, t0), expireOwner("n3", 1),
		open(s1, peerA, t0), open(s2, peerB, t0), open(SessionID{"n2", 3, 1}, peerA2, ns(time.Second)),
		batch("n1", 1, 9, register(s1, "orders", "archive"), register(s1, "orders", "live#ephemeral")),
		register(s2, "orders", ""), register(SessionID{"n2", 3, 1}, "billing", "c"),
		createChannel("empty", "ch"),
		register(s1, "gone#ephemeral", "left"), unregister(s1, "gone#ephemeral", ""),
		tombstone("orders", "b.example:4151", ns(2*time.Second)),
		renew("n1", 1, ns(3*time.Second), Touch{Seq: 1, LastUpdate: ns(3 * time.Second)}),
	)
	return h
}

func TestGoldenCommands(t *testing.T) {
	cmds := goldenCommands()
	for op := range 256 {
		if _, named := opNames[Op(op)]; named {
			if _, ok := cmds[Op(op)]; !ok {
				t.Errorf("op %v has no golden command: add one to goldenCommands", Op(op))
			}
		}
	}
	for op, c := range cmds {
		name := fmt.Sprintf("command_%02d_%s.golden", uint8(op), op)
		t.Run(op.String(), func(t *testing.T) {
			b := mustEncode(t, c)
			checkGolden(t, name, fmt.Sprintf("command %v (op %d), envelope version %d", op, uint8(op), Version), b)
			// The golden bytes decode to the same command: old entries stay readable.
			got, err := Decode(readGolden(t, name))
			if err != nil {
				t.Fatalf("Decode(golden): %v", err)
			}
			if !reflect.DeepEqual(normalize(got), normalize(c)) {
				t.Errorf("Decode(golden) =\n%+v\nwant\n%+v", got, c)
			}
		})
	}
}

func TestGoldenBatch(t *testing.T) {
	c := goldenBatch()
	checkGolden(t, "batch.golden", fmt.Sprintf("batch of %d commands, envelope version %d", len(c.Batch), Version), mustEncode(t, c))
	got, err := Decode(readGolden(t, "batch.golden"))
	if err != nil {
		t.Fatalf("Decode(golden): %v", err)
	}
	if !reflect.DeepEqual(normalize(got), normalize(c)) {
		t.Errorf("Decode(golden) =\n%+v\nwant\n%+v", got, c)
	}
}

func TestGoldenSnapshot(t *testing.T) {
	f := goldenRegistry(t)
	data := snapshotBytes(t, f)
	checkGolden(t, "snapshot.golden", fmt.Sprintf("snapshot of a small fixed registry, format version %d", snapshotVersion), data)
	// An old snapshot restores to the same state, and writes the same bytes.
	g := restored(t, readGolden(t, "snapshot.golden"))
	if again := snapshotBytes(t, g); !bytes.Equal(again, data) {
		t.Error("restore(golden) -> snapshot differs from the golden bytes")
	}
	diffReads(t, "restored golden", reads(f.Registry()), reads(g.Registry()))
	checkInvariants(t, g.Registry())
	// The fixture is what the comments claim.
	r := g.Registry()
	ownerIs("n4", 24, false, 1)(t, r)
	ownerIs("n5", 25, true, 0)(t, r)
	orphansAre(map[SessionID]int64{{"n4", 20, 2}: ns(36 * time.Second), {"n5", 25, 1}: ns(time.Minute)})(t, r)
	lookup("orders", true, []string{"archive", "live#ephemeral"}, peerA, peerC)(t, r)
}

// TestGoldenSnapshotV1: a snapshot written before orphans existed restores
// to exactly the state that replaying its log gives today, so nodes that
// restored it and nodes that replayed agree byte for byte.
func TestGoldenSnapshotV1(t *testing.T) {
	g := restored(t, readGolden(t, "snapshot_v1.golden"))
	f := legacyGoldenRegistry(t)
	if a, b := snapshotBytes(t, g), snapshotBytes(t, f); !bytes.Equal(a, b) {
		t.Errorf("restore(v1 golden) and replay differ:\n%s%s", dump("restored", a), dump("replayed", b))
	}
	diffReads(t, "restored v1 golden", reads(f.Registry()), reads(g.Registry()))
	r := g.Registry()
	lookup("orders", true, []string{"archive", "live#ephemeral"}, peerA)(t, r)
	lookupAt(at(tombLife+2*time.Second), "orders", true, []string{"archive", "live#ephemeral"}, peerA, peerB)(t, r)
	lookup("billing", true, []string{"c"}, peerA)(t, r)
	topics("billing", "empty", "orders")(t, r)
	channels("gone#ephemeral", "left")(t, r)
	ownerIs("n3", 1, true, 0)(t, r)
	ownerIs("n2", 3, false, 1)(t, r)
}

// normalize maps empty slices to nil, as the decoder may produce either.
func normalize(c Command) Command {
	if len(c.Touches) == 0 {
		c.Touches = nil
	}
	if len(c.Batch) == 0 {
		c.Batch = nil
	}
	for i := range c.Batch {
		c.Batch[i] = normalize(c.Batch[i])
	}
	return c
}

func goldenPath(name string) string { return filepath.Join("testdata", name) }

// checkGolden compares data with testdata/name, or rewrites it under -update.
func checkGolden(t *testing.T, name, title string, data []byte) {
	t.Helper()
	path := goldenPath(name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(dump(title, data)), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want := readGolden(t, name)
	if !bytes.Equal(data, want) {
		t.Errorf("%s: encoding changed (rerun with -update only if the format change is intended and versioned)\ngot:\n%swant:\n%s",
			path, dump(title, data), dump(title, want))
	}
}

func readGolden(t *testing.T, name string) []byte {
	t.Helper()
	text, err := os.ReadFile(goldenPath(name))
	if err != nil {
		t.Fatalf("%v (generate with: go test ./fsm -run TestGolden -update)", err)
	}
	data, err := undump(string(text))
	if err != nil {
		t.Fatalf("%s: %v", goldenPath(name), err)
	}
	return data
}

// dump renders bytes as "offset  hex bytes  |ascii|" lines, 16 bytes a line,
// under a "#" comment header.
func dump(title string, data []byte) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "# %s\n# %d bytes; regenerate: go test ./fsm -run TestGolden -update\n", title, len(data))
	for off := 0; off < len(data); off += 16 {
		line := data[off:min(off+16, len(data))]
		hexes := make([]string, len(line))
		ascii := make([]byte, len(line))
		for i, c := range line {
			hexes[i] = hex.EncodeToString([]byte{c})
			ascii[i] = '.'
			if c >= 0x20 && c < 0x7f {
				ascii[i] = c
			}
		}
		fmt.Fprintf(&sb, "%08x  %-47s  |%s|\n", off, strings.Join(hexes, " "), ascii)
	}
	return sb.String()
}

// undump parses what dump wrote, checking offsets.
func undump(text string) ([]byte, error) {
	var out []byte
	for n, line := range strings.Split(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if len(line) < 10+47 {
			return nil, fmt.Errorf("line %d: too short", n+1)
		}
		var off int
		if _, err := fmt.Sscanf(line[:8], "%08x", &off); err != nil || off != len(out) {
			return nil, fmt.Errorf("line %d: offset %q, want %08x", n+1, line[:8], len(out))
		}
		for _, h := range strings.Fields(line[10 : 10+47]) {
			b, err := hex.DecodeString(h)
			if err != nil || len(b) != 1 {
				return nil, fmt.Errorf("line %d: bad byte %q", n+1, h)
			}
			out = append(out, b[0])
		}
	}
	return out, nil
}

func TestDumpRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 15, 16, 17, 100} {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(i * 37)
		}
		got, err := undump(dump("x", data))
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("undump(dump(%d bytes)) = %x, %v", n, got, err)
		}
	}
}

// TestApplyGoldenBatch applies the golden batch bytes: the entry format the
// cluster writes is one the state machine accepts.
func TestApplyGoldenBatch(t *testing.T) {
	f := New()
	f.Apply(&raft.Log{Index: 1, Data: enc(renew("n1", 5, t0))})
	f.Apply(&raft.Log{Index: 2, Data: enc(open(SessionID{"n1", 5, 1}, peerA, t0))})
	res := f.Apply(&raft.Log{Index: 3, Data: readGolden(t, "batch.golden")})
	if errs, ok := res.([]error); !ok || len(errs) != 7 {
		t.Fatalf("result = %#v, want 7 results", res)
	}
	r := f.Registry()
	lookup("orders", true, []string{"archive"}, peerB)(t, r)
	topics("billing", "orders")(t, r)
	lastUpdate(SessionID{"n1", 5, 1}, 0, false)(t, r)
}
