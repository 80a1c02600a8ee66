package fsm

import "fmt"

// A node queues commands long before it knows which batch they will go out
// in. An ElementEncoder encodes one as it arrives, and EncodeBatch puts the
// queued encodings together into the entry: the same bytes Encode writes
// for the batch, without holding a Command per queued command.

// ElementEncoder validates commands as batch elements and encodes them.
// Encoding passes each field's address through an interface, so the
// command encoded and the encoder escape to the heap: encoding a copy held
// in the ElementEncoder, itself long-lived, costs no allocation per
// element (a node's queue keeps one). The zero value is ready to use; it
// is not safe for concurrent use.
type ElementEncoder struct {
	c Command
	e encoder
}

// Append validates c as a batch element and appends its encoding to b. It
// refuses what Validate refuses in a batch: commands proposed as their own
// entry, and fields over their limits; b is then returned unchanged. It
// keeps nothing of c or b once it returns.
func (x *ElementEncoder) Append(b []byte, c *Command) ([]byte, error) {
	x.c = *c
	defer func() { x.c, x.e = Command{}, encoder{} }()
	if x.c.Op == OpBatch || x.c.Op == OpOpenIncarnation {
		return b, fmt.Errorf("%w: %v must be proposed as its own entry", ErrInvalidCommand, x.c.Op)
	}
	if err := x.c.validate(topLevel); err != nil {
		return b, err
	}
	x.e.b = b
	x.c.fields(&x.e, 1)
	return x.e.b, nil
}

// EncodeBatch returns the entry of batch seq of origin's incarnation inc
// holding count elements whose encodings, from ElementEncoder, are
// concatenated in elements.
func EncodeBatch(origin string, inc, seq uint64, count int, elements []byte) ([]byte, error) {
	if origin == "" || len(origin) > MaxNodeIDLen {
		return nil, fmt.Errorf("%w: batch origin must be 1 to %d bytes, got %d", ErrInvalidCommand, MaxNodeIDLen, len(origin))
	}
	if count > MaxBatchCommands {
		return nil, fmt.Errorf("%w: batch of %d commands, at most %d", ErrInvalidCommand, count, MaxBatchCommands)
	}
	e := encoder{b: make([]byte, 0, 32+len(origin)+len(elements))}
	e.b = append(e.b, Version)
	op := OpBatch
	e.op(&op)
	e.str(&origin)
	e.uvarint(&inc)
	e.uvarint(&seq)
	e.count(&count, minCommandBytes)
	e.b = append(e.b, elements...)
	if len(e.b) > MaxEntryBytes {
		return nil, fmt.Errorf("%w: batch entry of %d bytes exceeds %d", ErrInvalidCommand, len(e.b), MaxEntryBytes)
	}
	return e.b, nil
}
