package fsm

import (
	"bytes"
	"errors"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// A batch put together from queued elements is byte for byte the batch
// Encode writes, and decodes to the same commands.
func TestEncodeBatchMatchesEncode(t *testing.T) {
	id := SessionID{Owner: "n1", Incarnation: 7, Seq: 3}
	cmds := []Command{
		{Op: OpOpenSession, Session: id, Time: 42, Peer: PeerInfo{RemoteAddress: "127.0.0.1:5000", Hostname: "h", BroadcastAddress: "b", TCPPort: 4150, HTTPPort: 4151, Version: "1.3.0"}},
		{Op: OpRegister, Session: id, Topic: "t", Channel: "c"},
		{Op: OpRegister, Session: id, Topic: "t"},
		{Op: OpUnregister, Session: id, Topic: "t", Channel: "c"},
		{Op: OpCreateTopic, Topic: "x"},
		{Op: OpCloseSession, Session: id},
	}
	var elems []byte
	var enc ElementEncoder // one for all: it is reused from element to element
	for i := range cmds {
		var err error
		if elems, err = enc.Append(elems, &cmds[i]); err != nil {
			t.Fatal(err)
		}
	}
	got, err := EncodeBatch("n1", 7, 12, len(cmds), elems)
	if err != nil {
		t.Fatal(err)
	}
	whole := Command{Op: OpBatch, Session: SessionID{Owner: "n1", Incarnation: 7}, BatchSeq: 12, Batch: cmds}
	want, err := whole.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("EncodeBatch wrote\n%x\nEncode writes\n%x", got, want)
	}
	if _, err := Decode(got); err != nil {
		t.Fatal(err)
	}
}

func TestElementEncoderRefuses(t *testing.T) {
	var enc ElementEncoder
	for _, c := range []Command{
		{Op: OpBatch, Session: SessionID{Owner: "n1"}},
		{Op: OpOpenIncarnation, Session: SessionID{Owner: "n1"}, Nonce: 1},
		{Op: OpRegister, Session: SessionID{Owner: "n1", Incarnation: 1, Seq: 1}, Topic: "bad topic"},
	} {
		b, err := enc.Append([]byte("x"), &c)
		if !errors.Is(err, ErrInvalidCommand) || string(b) != "x" {
			t.Errorf("%v: %q, %v; want the buffer unchanged and ErrInvalidCommand", c.Op, b, err)
		}
	}
	// A refusal leaves the encoder as good as new.
	ok := Command{Op: OpRegister, Session: SessionID{Owner: "n1", Incarnation: 1, Seq: 1}, Topic: "t"}
	b, err := enc.Append(nil, &ok)
	if err != nil {
		t.Fatalf("after refusals: %v", err)
	}
	if got, err := (&ElementEncoder{}).Append(nil, &ok); err != nil || !bytes.Equal(b, got) {
		t.Errorf("after refusals the encoder wrote %x, a fresh one %x (%v)", b, got, err)
	}
	if _, err := EncodeBatch("", 1, 1, 0, nil); !errors.Is(err, ErrInvalidCommand) {
		t.Errorf("batch without origin: %v", err)
	}
	if _, err := EncodeBatch("n1", 1, 1, MaxBatchCommands+1, nil); !errors.Is(err, ErrInvalidCommand) {
		t.Errorf("batch over MaxBatchCommands: %v", err)
	}
	if _, err := EncodeBatch("n1", 1, 1, 1, make([]byte, MaxEntryBytes)); !errors.Is(err, ErrInvalidCommand) {
		t.Errorf("batch over MaxEntryBytes: %v", err)
	}
}

// DecodeInto decodes a batch into the caller's storage when it has room,
// gives the same command as Decode whatever the storage held before
// (ReleaseBatch zeroes it), and leaves nothing of an earlier batch behind.
func TestDecodeIntoReusesStorage(t *testing.T) {
	id := SessionID{"n1", 1, 1}
	big := batch("n1", 1, 1, open(id, peerA, t0), register(id, "a", "x"), register(id, "b", ""),
		renew("n1", 1, t0, Touch{Seq: 1, LastUpdate: t0}), unregister(id, "a", "x"))
	small := batch("n1", 1, 2, register(id, "c", "y"))
	single := register(id, "d", "z")
	var buf []Command
	for i, c := range []Command{big, small, big, single, small} {
		data := enc(c)
		want, err := Decode(data)
		if err != nil {
			t.Fatal(err)
		}
		prev := buf
		got, err := DecodeInto(data, buf)
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		if c.Op == OpBatch && cap(prev) >= len(c.Batch) && &got.Batch[0] != &prev[:1][0] {
			t.Errorf("%d: a batch of %d did not reuse storage for %d", i, len(c.Batch), cap(prev))
		}
		if c.Op != OpBatch {
			if len(got.Batch) != 0 {
				t.Errorf("%d: %v decoded with %d batch commands", i, c.Op, len(got.Batch))
			}
			got.Batch, want.Batch = nil, nil
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%d: DecodeInto = %+v, Decode = %+v", i, got, want)
		}
		buf = ReleaseBatch(&got)
		if got.Batch != nil || len(buf) != 0 {
			t.Fatalf("%d: ReleaseBatch left %d commands", i, len(buf))
		}
		for j, e := range buf[:cap(buf)] {
			if !reflect.DeepEqual(e, Command{}) {
				t.Fatalf("%d: released storage %d holds %+v", i, j, e)
			}
		}
	}
	// The storage of a batch above maxKeptBatch commands is not kept.
	huge := batch("n1", 1, 3)
	for range maxKeptBatch + 1 {
		huge.Batch = append(huge.Batch, register(id, "a", "x"))
	}
	got, err := DecodeInto(enc(huge), buf)
	if err != nil {
		t.Fatal(err)
	}
	if b := ReleaseBatch(&got); b != nil {
		t.Errorf("the storage of %d commands was kept", cap(b))
	}
	// A damaged entry is an error, and the storage comes back zeroed.
	data := enc(big)
	if _, err := DecodeInto(data[:len(data)-3], buf); err == nil {
		t.Fatal("a truncated batch decoded")
	}
	for j, e := range buf[:cap(buf)] {
		if !reflect.DeepEqual(e, Command{}) {
			t.Fatalf("after a failed decode, storage %d holds %+v", j, e)
		}
	}
}

// A forwarded batch that claims more than MaxBatchCommands commands is
// refused by its count, before storage is sized for it: with room in the
// bytes for every claimed command, Decode alone would allocate a Command
// per two bytes. One at the limit still decodes.
func TestDecodeForwardedRefusesAnOversizedCountFirst(t *testing.T) {
	id := SessionID{Owner: "n1", Incarnation: 1, Seq: 1}
	elem, err := new(ElementEncoder).Append(nil, &Command{Op: OpRegister, Session: id, Topic: "t"})
	if err != nil {
		t.Fatal(err)
	}
	forged := func(count int) []byte {
		c := Command{Op: OpBatch, Session: SessionID{Owner: "n1", Incarnation: 1}, BatchSeq: 1, Batch: make([]Command, count)}
		for i := range c.Batch {
			c.Batch[i] = Command{Op: OpRegister, Session: id, Topic: "t"}
		}
		return c.entry() // not Encode: it refuses over MaxBatchCommands
	}
	over := forged(MaxBatchCommands + 1)
	if !bytes.HasSuffix(over, elem) {
		t.Fatalf("forged batch does not end with the element encoding")
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = DecodeForwarded(over, nil)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "exceeds the limit") {
		t.Fatalf("DecodeForwarded of %d commands: %v, want a count over the limit", MaxBatchCommands+1, err)
	}
	// Storage for the claimed commands would be over 10 MiB.
	if got := after.TotalAlloc - before.TotalAlloc; got > 64<<10 {
		t.Errorf("refusing the count allocated %d bytes, want it refused before any batch storage", got)
	}
	// Decode (log replay) stays lenient: a batch's size was checked
	// before it was committed.
	if c, err := Decode(over); err != nil || len(c.Batch) != MaxBatchCommands+1 {
		t.Fatalf("Decode of the same bytes: %d commands, %v", len(c.Batch), err)
	}
	if c, err := DecodeForwarded(forged(MaxBatchCommands), nil); err != nil || len(c.Batch) != MaxBatchCommands {
		t.Fatalf("DecodeForwarded at the limit: %d commands, %v", len(c.Batch), err)
	}
}
