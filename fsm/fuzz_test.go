package fsm

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/hashicorp/raft"
)

// FuzzDecode: Decode never panics, and whatever it accepts is canonical:
// encoding the decoded command gives back the input bytes, so one command has
// one log encoding. Found crashers live in testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	for _, c := range goldenCommands() {
		f.Add(enc(c))
	}
	f.Add(enc(goldenBatch()))
	for _, c := range randomEntries(1, 50) {
		f.Add(enc(c))
	}
	f.Add([]byte{})
	f.Add([]byte{Version})
	f.Add([]byte{Version, 0})
	f.Add([]byte{Version, 255})
	f.Add(enc(batch("n1", 1, 1, batch("n1", 1, 2))))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Decode(data)
		if err != nil {
			return
		}
		out := enc(c)
		if !bytes.Equal(out, data) {
			t.Fatalf("Decode accepted a non-canonical encoding:\n in  %x\n out %x\n cmd %+v", data, out, c)
		}
		again, err := Decode(out)
		if err != nil {
			t.Fatalf("Decode(Encode(c)) failed: %v", err)
		}
		if !reflect.DeepEqual(normalize(again), normalize(c)) {
			t.Fatalf("Decode(Encode(c)) = %+v, want %+v", again, c)
		}
		// Whatever decodes must apply without panicking.
		New().Apply(&raft.Log{Index: 1, Data: data})
	})
}

// FuzzDecodeSnapshot: decodeSnapshot never panics; a snapshot it accepts
// re-encodes to one that decodes to the same state (a fixpoint after one
// round), and the restored registry answers reads and applies commands.
func FuzzDecodeSnapshot(f *testing.F) {
	f.Add(snapshotBytes(f, goldenRegistry(f)))
	f.Add(snapshotBytes(f, New()))
	for seed := int64(1); seed <= 4; seed++ {
		h := newHarness(f)
		h.apply(randomEntries(seed, 200)...)
		f.Add(snapshotBytes(f, h.f))
	}
	f.Add([]byte("RLKS"))
	f.Add([]byte("RLKS\x02"))
	f.Add([]byte("RLKS\x01\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decodeSnapshot(data)
		if err != nil {
			return
		}
		snapBytes := r.encodeSnapshot()
		r2, err := decodeSnapshot(snapBytes)
		if err != nil {
			t.Fatalf("re-encoded snapshot does not decode: %v", err)
		}
		if enc2 := r2.encodeSnapshot(); !bytes.Equal(snapBytes, enc2) {
			t.Fatalf("snapshot encoding is not a fixpoint:\n%x\n%x", snapBytes, enc2)
		}
		fsm := &FSM{reg: r}
		reads(r)
		fsm.Apply(&raft.Log{Index: r.appliedIndex + 1, Data: enc(goldenBatch())})
		for _, o := range r.Owners() {
			fsm.Apply(&raft.Log{Index: r.appliedIndex + 1, Data: enc(renew(o.ID, o.Incarnation+1, t0))})
		}
		fsm.Apply(&raft.Log{Index: r.appliedIndex + 1, Data: enc(deleteTopic("orders"))})
		reads(r)
	})
}
