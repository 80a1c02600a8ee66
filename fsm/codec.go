package fsm

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// errTruncated is returned by the decoder when an entry ends early.
var errTruncated = errors.New("truncated")

// errNonMinimal is returned for a varint with redundant trailing zero groups
// (e.g. 0x80 0x00 for 0). Encode never writes one; accepting it would give one
// command several encodings.
var errNonMinimal = errors.New("non-minimal varint")

// maxString bounds any decoded string so a corrupt length cannot allocate much.
const maxString = 1 << 20

type encoder struct{ b []byte }

func (e *encoder) byte(v byte)      { e.b = append(e.b, v) }
func (e *encoder) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) varint(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) str(s string)     { e.uvarint(uint64(len(s))); e.b = append(e.b, s...) }
func (e *encoder) bytes(p []byte)   { e.uvarint(uint64(len(p))); e.b = append(e.b, p...) }
func (e *encoder) bool(v bool)      { e.byte(boolByte(v)) }
func (e *encoder) session(id SessionID) {
	e.str(id.Owner)
	e.uvarint(id.Incarnation)
	e.uvarint(id.Seq)
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// decoder reads what encoder wrote. The first error sticks; later reads return
// zero values, so callers check err once at the end.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) < 1 {
		d.fail(errTruncated)
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(errTruncated)
		return 0
	}
	if n > 1 && d.b[n-1] == 0 {
		d.fail(errNonMinimal)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(errTruncated)
		return 0
	}
	if n > 1 && d.b[n-1] == 0 {
		d.fail(errNonMinimal)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > maxString || n > uint64(len(d.b)) {
		d.fail(fmt.Errorf("length %d exceeds remaining %d bytes", n, len(d.b)))
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string { return string(d.bytes()) }

func (d *decoder) bool() bool {
	switch d.byte() {
	case 0:
		return false
	case 1:
		return true
	default:
		d.fail(errors.New("bad bool"))
		return false
	}
}

func (d *decoder) int() int { return int(d.varint()) }

func (d *decoder) session() SessionID {
	return SessionID{Owner: d.str(), Incarnation: d.uvarint(), Seq: d.uvarint()}
}

// count reads a list length and checks it against the bytes left, assuming
// each element takes at least one byte.
func (d *decoder) count() int {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)) {
		d.fail(fmt.Errorf("count %d exceeds remaining %d bytes", n, len(d.b)))
		return 0
	}
	return int(n)
}
