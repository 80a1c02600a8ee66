package fsm

import (
	"bytes"
	"errors"
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
	for i := range cmds {
		var err error
		if elems, err = AppendElement(elems, &cmds[i]); err != nil {
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

func TestAppendElementRefuses(t *testing.T) {
	for _, c := range []Command{
		{Op: OpBatch, Session: SessionID{Owner: "n1"}},
		{Op: OpOpenIncarnation, Session: SessionID{Owner: "n1"}, Nonce: 1},
		{Op: OpRegister, Session: SessionID{Owner: "n1", Incarnation: 1, Seq: 1}, Topic: "bad topic"},
	} {
		b, err := AppendElement([]byte("x"), &c)
		if !errors.Is(err, ErrInvalidCommand) || string(b) != "x" {
			t.Errorf("%v: %q, %v; want the buffer unchanged and ErrInvalidCommand", c.Op, b, err)
		}
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
