package fsm

import (
	"errors"
	"fmt"
)

// Version is the command envelope version this code writes and reads.
const Version byte = 1

// Op identifies a command. Numbers are part of the log format: never reuse or
// renumber one, only append.
type Op uint8

const (
	OpBatch         Op = 1  // many commands from one node, applied in order
	OpOpenSession   Op = 2  // IDENTIFY: Session, Peer, Time
	OpRegister      Op = 3  // REGISTER: Session, Topic, Channel ("" = topic only)
	OpUnregister    Op = 4  // UNREGISTER: Session, Topic, Channel ("" = topic)
	OpCloseSession  Op = 5  // connection closed: Session
	OpRenewLease    Op = 6  // Session.Owner/Incarnation, Time, Touches
	OpExpireOwner   Op = 7  // superseded by OpExpireLease; still applied for old logs
	OpCreateTopic   Op = 8  // HTTP /topic/create: Topic
	OpDeleteTopic   Op = 9  // HTTP /topic/delete: Topic
	OpCreateChannel Op = 10 // HTTP /channel/create: Topic, Channel
	OpDeleteChannel Op = 11 // HTTP /channel/delete: Topic, Channel
	OpTombstone     Op = 12 // HTTP /topic/tombstone: Topic, Node, Time
	OpSetMember     Op = 13 // Member
	OpRemoveMember  Op = 14 // Member.ID
	OpCloseOwner    Op = 15 // clean shutdown: Session.Owner/Incarnation
	// OpExpireLease: Session.Owner/Incarnation, RenewIndex. Drops that
	// incarnation's sessions only if its last renewal is still the one the
	// leader saw lapse, so a stale leader cannot expire a live node.
	OpExpireLease Op = 16
	// OpOpenIncarnation: Session.Owner, Nonce, Time, Grace. Proposed alone,
	// never inside a batch. Starts the owner's next incarnation, numbered by
	// the entry's log index; the previous live one's sessions are orphaned
	// until Time+Grace. Applying it again with the same Nonce is a no-op.
	OpOpenIncarnation Op = 17
	// OpOrphanOwner: Session.Owner/Incarnation, Time (the orphans' deadline).
	// A draining node ends its incarnation; its sessions become orphans.
	OpOrphanOwner Op = 18
	// OpOrphanLease: Session.Owner/Incarnation, RenewIndex, Time (deadline).
	// OpExpireLease's successor: orphans instead of dropping.
	OpOrphanLease Op = 19
	// OpExpireOrphans: Time (the leader's clock). Drops every orphan whose
	// deadline is at or before Time.
	OpExpireOrphans Op = 20
)

var opNames = map[Op]string{
	OpBatch: "batch", OpOpenSession: "open-session", OpRegister: "register",
	OpUnregister: "unregister", OpCloseSession: "close-session", OpRenewLease: "renew-lease",
	OpExpireOwner: "expire-owner", OpCreateTopic: "create-topic", OpDeleteTopic: "delete-topic",
	OpCreateChannel: "create-channel", OpDeleteChannel: "delete-channel", OpTombstone: "tombstone",
	OpSetMember: "set-member", OpRemoveMember: "remove-member", OpCloseOwner: "close-owner",
	OpExpireLease: "expire-lease", OpOpenIncarnation: "open-incarnation", OpOrphanOwner: "orphan-owner",
	OpOrphanLease: "orphan-lease", OpExpireOrphans: "expire-orphans",
}

func (o Op) String() string {
	if s, ok := opNames[o]; ok {
		return s
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// ErrUnknownOp is wrapped by Decode for an op this version does not know.
var ErrUnknownOp = errors.New("unknown op")

// Command is one registry mutation. Which fields are used depends on Op (see
// the Op constants); the others stay zero and are not encoded.
type Command struct {
	Op      Op
	Session SessionID
	Peer    PeerInfo
	Topic   string
	Channel string
	Node    string
	// Time is stamped once by the proposer, in Unix nanoseconds.
	Time    int64
	Touches []Touch
	Member  Member
	// RenewIndex is, in OpExpireLease and OpOrphanLease, the owner's last
	// renewal index as the leader observed it.
	RenewIndex uint64
	// Nonce, in OpOpenIncarnation, is drawn at random once per process
	// start (never 0): a retried open that commits twice opens once, and the
	// node recognises its incarnation by it (Owner.Nonce).
	Nonce uint64
	// Grace, in OpOpenIncarnation, is how long (ns) the previous
	// incarnation's sessions stay listed as orphans.
	Grace int64
	// Batch fields: the origin's sequence number lets Apply drop a batch that
	// a retry delivered twice (Session.Owner/Incarnation name the origin).
	BatchSeq uint64
	Batch    []Command
}

// Encode returns the command's log bytes: version, op, payload. It refuses
// (with an error wrapping ErrInvalidCommand) a command that Validate refuses
// or whose entry would exceed MaxEntryBytes, so whatever it encodes, Decode
// reads back and Apply applies.
func (c *Command) Encode() ([]byte, error) {
	if err := c.validate(topLevel); err != nil {
		return nil, err
	}
	b := c.entry()
	if len(b) > MaxEntryBytes {
		return nil, c.tooLarge(len(b))
	}
	return b, nil
}

// entry returns the log bytes of c, valid or not.
func (c *Command) entry() []byte {
	e := &encoder{b: make([]byte, 0, 64)}
	e.b = append(e.b, Version)
	c.fields(e, 0)
	return e.b
}

func (c *Command) tooLarge(n int) error {
	return fmt.Errorf("%w: %v entry of %d bytes exceeds %d", ErrInvalidCommand, c.Op, n, MaxEntryBytes)
}

// Decode parses log bytes written by Encode. Trailing bytes are an error.
//
// Decode is more tolerant than Encode, on purpose: Apply decodes entries
// written before the limits of Validate existed, and an existing log must
// still replay. It checks only what keeps decoding cheap: every length and
// count against the bytes left, so memory grows with the input, never with
// a number the input claims.
func Decode(b []byte) (Command, error) {
	return DecodeInto(b, nil)
}

// DecodeInto is Decode, with a batch's commands decoded into buf's storage
// when it has room for them: a storm's entries carry thousands of commands,
// and a Command is a few hundred bytes, so a fresh slice per entry was most
// of what applying one allocated. buf's elements must be zero; once done
// with the command, ReleaseBatch zeroes them for the next use. A command
// other than a batch keeps buf, empty, as its Batch.
func DecodeInto(b []byte, buf []Command) (Command, error) {
	return decodeInto(&decoder{b: b}, buf)
}

// DecodeForwarded is DecodeInto for a batch a member sent to be proposed:
// beyond Decode's checks, a batch may claim at most MaxBatchCommands
// commands, refused before any storage is sized for them. Decode alone
// would size storage by the bytes left, and a Command is about 160 times
// its smallest encoding, so an 8 MiB body could ask for over a GiB before
// Validate rejected it.
func DecodeForwarded(b []byte, buf []Command) (Command, error) {
	return decodeInto(&decoder{b: b, batchMax: MaxBatchCommands}, buf)
}

func decodeInto(d *decoder, buf []Command) (Command, error) {
	if v := d.byte(); d.err == nil && v != Version {
		return Command{}, fmt.Errorf("fsm: command version %d, this build reads %d", v, Version)
	}
	c := Command{Batch: buf[:0]}
	c.fields(d, 0)
	if d.err == nil && len(d.b) != 0 {
		d.fail(fmt.Errorf("%d trailing bytes", len(d.b)))
	}
	if d.err != nil {
		ReleaseBatch(&c)
		return Command{}, fmt.Errorf("fsm: decode command: %w", d.err)
	}
	return c, nil
}

// ReleaseBatch zeroes the batch commands c holds (nothing they refer to
// stays reachable through them) and returns their storage, empty, for the
// next DecodeInto: buf's, or a larger one if buf had no room, up to
// maxKeptBatch commands (beyond that, nil).
func ReleaseBatch(c *Command) []Command {
	b := c.Batch
	clear(b)
	c.Batch = nil
	if cap(b) > maxKeptBatch {
		return nil // a rare huge batch's storage is not kept for good
	}
	return b[:0]
}

// maxKeptBatch is the most commands' storage ReleaseBatch hands back for
// reuse: a queue's default MaxBatch, about 1.3 MiB.
const maxKeptBatch = 4096

// The smallest encodings of a batch's command (an op byte and one field) and
// of a touch (two one-byte varints): a count can claim no more elements than
// the bytes left could hold.
const (
	minCommandBytes = 2
	minTouchBytes   = 2
)

// fields is the command's field list: the op, then what the op uses (see
// the Op constants). depth is 1 inside a batch, where a batch may not nest.
func (c *Command) fields(x fieldList, depth int) {
	x.op(&c.Op)
	switch c.Op {
	case OpBatch:
		if depth > 0 && x.decoding() {
			x.fail(errors.New("nested batch"))
			return
		}
		x.str(&c.Session.Owner)
		x.uvarint(&c.Session.Incarnation)
		x.uvarint(&c.BatchSeq)
		if d, ok := x.(*decoder); ok {
			d.nextCountMax = d.batchMax
		}
		list(x, &c.Batch, minCommandBytes, func(inner *Command) { inner.fields(x, depth+1) })
	case OpOpenSession:
		sessionFields(x, &c.Session)
		peerFields(x, &c.Peer)
		x.varint(&c.Time)
	case OpRegister, OpUnregister:
		sessionFields(x, &c.Session)
		x.str(&c.Topic)
		x.str(&c.Channel)
	case OpCloseSession:
		sessionFields(x, &c.Session)
	case OpRenewLease:
		x.str(&c.Session.Owner)
		x.uvarint(&c.Session.Incarnation)
		x.varint(&c.Time)
		list(x, &c.Touches, minTouchBytes, func(t *Touch) {
			x.uvarint(&t.Seq)
			x.varint(&t.LastUpdate)
		})
	case OpExpireOwner, OpCloseOwner:
		x.str(&c.Session.Owner)
		x.uvarint(&c.Session.Incarnation)
	case OpExpireLease:
		x.str(&c.Session.Owner)
		x.uvarint(&c.Session.Incarnation)
		x.uvarint(&c.RenewIndex)
	case OpOpenIncarnation:
		x.str(&c.Session.Owner)
		x.uvarint(&c.Nonce)
		x.varint(&c.Time)
		x.varint(&c.Grace)
	case OpOrphanOwner:
		x.str(&c.Session.Owner)
		x.uvarint(&c.Session.Incarnation)
		x.varint(&c.Time)
	case OpOrphanLease:
		x.str(&c.Session.Owner)
		x.uvarint(&c.Session.Incarnation)
		x.uvarint(&c.RenewIndex)
		x.varint(&c.Time)
	case OpExpireOrphans:
		x.varint(&c.Time)
	case OpCreateTopic, OpDeleteTopic:
		x.str(&c.Topic)
	case OpCreateChannel, OpDeleteChannel:
		x.str(&c.Topic)
		x.str(&c.Channel)
	case OpTombstone:
		x.str(&c.Topic)
		x.str(&c.Node)
		x.varint(&c.Time)
	case OpSetMember:
		memberFields(x, &c.Member)
	case OpRemoveMember:
		x.str(&c.Member.ID)
	default:
		if x.ok() {
			x.fail(fmt.Errorf("%w %d", ErrUnknownOp, uint8(c.Op)))
		}
	}
}
