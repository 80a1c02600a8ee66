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

// fieldList is what a record's field list talks to. Each record (command,
// member, session, ...) lists its fields once, in one function taking a
// fieldList: the encoder reads every field it is handed, the decoder
// writes it. So encoding and decoding cannot disagree on a field's order or
// kind.
type fieldList interface {
	op(p *Op)
	str(p *string)
	// nodeID is a string that repeats from record to record (the owner
	// of every session id): the decoder keeps one copy of each it meets.
	nodeID(p *string)
	uvarint(p *uint64)
	varint(p *int64)
	int(p *int)
	bool(p *bool)
	// count is a list's length: written from *n, or read into *n. The
	// decoder refuses a count above the bytes left divided by minBytes,
	// the smallest encoding of one element.
	count(n *int, minBytes int)
	// fail records a malformed input; only the decoder meets one.
	fail(err error)
	decoding() bool
	ok() bool
}

// list is the field list of a list: its count, then each element's fields.
func list[T any](x fieldList, l *[]T, minBytes int, elem func(*T)) {
	n := len(*l)
	x.count(&n, minBytes)
	if x.decoding() {
		switch {
		case n == 0 || !x.ok():
			*l = nil
		case cap(*l) >= n:
			// The caller's zeroed storage (DecodeInto), reused.
			*l = (*l)[:n]
		default:
			*l = make([]T, n) // n is bounded by the bytes left
		}
	}
	for i := 0; i < n && x.ok(); i++ {
		elem(&(*l)[i])
	}
}

func sessionFields(x fieldList, id *SessionID) {
	x.nodeID(&id.Owner)
	x.uvarint(&id.Incarnation)
	x.uvarint(&id.Seq)
}

func peerFields(x fieldList, p *PeerInfo) {
	x.str(&p.RemoteAddress)
	x.str(&p.Hostname)
	x.str(&p.BroadcastAddress)
	x.int(&p.TCPPort)
	x.int(&p.HTTPPort)
	x.str(&p.Version)
}

func memberFields(x fieldList, m *Member) {
	x.str(&m.ID)
	x.str(&m.RaftAddress)
	x.str(&m.HTTPAddress)
	x.str(&m.TCPAddress)
}

type encoder struct{ b []byte }

func (e *encoder) op(p *Op)          { e.b = append(e.b, byte(*p)) }
func (e *encoder) uvarint(p *uint64) { e.b = binary.AppendUvarint(e.b, *p) }
func (e *encoder) varint(p *int64)   { e.b = binary.AppendVarint(e.b, *p) }
func (e *encoder) int(p *int)        { e.b = binary.AppendVarint(e.b, int64(*p)) }
func (e *encoder) bool(p *bool)      { e.b = append(e.b, boolByte(*p)) }
func (e *encoder) nodeID(p *string)  { e.str(p) }

func (e *encoder) str(p *string) {
	e.b = binary.AppendUvarint(e.b, uint64(len(*p)))
	e.b = append(e.b, *p...)
}
func (e *encoder) count(n *int, _ int) { e.b = binary.AppendUvarint(e.b, uint64(*n)) }
func (e *encoder) decoding() bool      { return false }
func (e *encoder) ok() bool            { return true }

// fail cannot happen while encoding: what the encoder is handed came from
// this build's own types.
func (e *encoder) fail(err error) { panic(fmt.Sprintf("fsm: encode: %v", err)) }

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// decoder reads what encoder wrote. The first error sticks; later reads
// leave zero values, so callers check err once at the end.
type decoder struct {
	b   []byte
	err error
	// nodeIDs are the node ids met so far, reused by nodeID: a batch or a
	// snapshot names the same few owners in every session id, and a
	// string each was most of what decoding allocated.
	nodeIDs []string
	// batchMax, when above 0, is the most commands a batch may claim
	// (DecodeForwarded); nextCountMax carries it to the batch's count.
	batchMax, nextCountMax int
}

// maxNodeIDs bounds the node ids a decoder remembers.
const maxNodeIDs = 8

func (d *decoder) nodeID(p *string) {
	*p = ""
	b, ok := d.strBytes()
	if !ok {
		return
	}
	for _, id := range d.nodeIDs {
		if id == string(b) {
			*p = id
			return
		}
	}
	*p = string(b)
	if len(d.nodeIDs) < maxNodeIDs {
		d.nodeIDs = append(d.nodeIDs, *p)
	}
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *decoder) decoding() bool { return true }
func (d *decoder) ok() bool       { return d.err == nil }

func (d *decoder) op(p *Op) { *p = Op(d.byte()) }

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) < 1 {
		d.fail(errTruncated)
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uvarint(p *uint64) {
	*p = 0
	if d.err != nil {
		return
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(errTruncated)
		return
	}
	if n > 1 && d.b[n-1] == 0 {
		d.fail(errNonMinimal)
		return
	}
	d.b = d.b[n:]
	*p = v
}

func (d *decoder) varint(p *int64) {
	*p = 0
	if d.err != nil {
		return
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(errTruncated)
		return
	}
	if n > 1 && d.b[n-1] == 0 {
		d.fail(errNonMinimal)
		return
	}
	d.b = d.b[n:]
	*p = v
}

func (d *decoder) int(p *int) {
	var v int64
	d.varint(&v)
	*p = int(v)
}

func (d *decoder) str(p *string) {
	*p = ""
	if b, ok := d.strBytes(); ok {
		*p = string(b)
	}
}

// strBytes reads a string's length and returns its bytes (the input's own).
func (d *decoder) strBytes() ([]byte, bool) {
	var n uint64
	d.uvarint(&n)
	if d.err != nil {
		return nil, false
	}
	if n > maxString || n > uint64(len(d.b)) {
		d.fail(fmt.Errorf("length %d exceeds remaining %d bytes", n, len(d.b)))
		return nil, false
	}
	b := d.b[:n]
	d.b = d.b[n:]
	return b, true
}

func (d *decoder) bool(p *bool) {
	switch d.byte() {
	case 0:
		*p = false
	case 1:
		*p = true
	default:
		d.fail(errors.New("bad bool"))
		*p = false
	}
}

func (d *decoder) count(n *int, minBytes int) {
	var v uint64
	d.uvarint(&v)
	*n = 0
	limit := d.nextCountMax
	d.nextCountMax = 0
	if d.err != nil {
		return
	}
	if limit > 0 && v > uint64(limit) {
		d.fail(fmt.Errorf("count %d exceeds the limit %d", v, limit))
		return
	}
	if v > uint64(len(d.b)/minBytes) {
		d.fail(fmt.Errorf("count %d exceeds what the remaining %d bytes hold", v, len(d.b)))
		return
	}
	*n = int(v)
}
