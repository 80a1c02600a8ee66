package fsm

import (
	"errors"
	"fmt"
	"strconv"
)

// ErrInvalidCommand is wrapped by Validate and Encode for a command that
// must not reach the log: one that breaks a limit below or names a topic or
// channel nsq could never create.
var ErrInvalidCommand = errors.New("fsm: invalid command")

// Limits on what a command may carry. Each is far above what a legitimate
// producer sends and far below what would make an entry expensive to
// replicate, store or decode. They bound what enters the log; the decoder
// stays more tolerant (entries written before these limits must replay).
const (
	// MaxNodeIDLen bounds a cluster node id (Session.Owner, Member.ID): a
	// DNS name at most, which is what operators use as ids.
	MaxNodeIDLen = 255

	// MaxAddressLen bounds every address or host string: a member's
	// raft/http/tcp address and an nsqd's remote address, broadcast
	// address and hostname. A 255-byte DNS name, the brackets of an IPv6
	// literal, a colon and five port digits: 255 + 2 + 1 + 5.
	MaxAddressLen = 263

	// MaxVersionLen bounds the version an nsqd reports in IDENTIFY; real
	// ones are semver strings of a dozen bytes.
	MaxVersionLen = 64

	// MaxTombstoneNodeLen bounds the node of /topic/tombstone: the longest
	// node string a session can match is a broadcast address, ":" and an
	// http port, which IDENTIFY accepts as any JSON integer (up to 20
	// characters with its sign). A longer node matches nothing, ever.
	MaxTombstoneNodeLen = MaxAddressLen + 1 + 20

	// MaxTouches bounds the session touches one lease renewal carries:
	// one per session of the owner that pinged since the last renewal.
	MaxTouches = 1 << 16

	// MaxBatchCommands bounds the commands of one batch entry; a node
	// groups its queue into batches of at most its MaxBatch (4096 by
	// default).
	MaxBatchCommands = 1 << 16

	// MaxEntryBytes bounds one encoded log entry. The largest valid
	// command (an open-session with every string at its limit) takes
	// about 1.2 KiB, so a batch of 4096 of them (5 MiB) still fits, while
	// raft never has to ship or store an entry larger than this.
	MaxEntryBytes = 8 << 20
)

// Validate reports whether c may be written to the log: every field its op
// uses is within the limits above, topic and channel names follow
// ValidName, a batch holds no batch and no standalone-only command,
// and the entry fits MaxEntryBytes. Encode accepts exactly what Validate
// accepts. The error wraps ErrInvalidCommand and names the op and the field.
func (c *Command) Validate() error {
	if err := c.validate(topLevel); err != nil {
		return err
	}
	// Only a batch can outgrow an entry: the field limits keep any other
	// command far below MaxEntryBytes (TestLargestCommandFits), so the
	// common case costs no encoding.
	if c.Op == OpBatch {
		if n := len(c.entry()); n > MaxEntryBytes {
			return c.tooLarge(n)
		}
	}
	return nil
}

// ValidateEntry is Validate for a command decoded from an entry of size
// bytes, which is what would be proposed: the size is known, so a batch is
// not encoded again to learn it.
func (c *Command) ValidateEntry(size int) error {
	if err := c.validate(topLevel); err != nil {
		return err
	}
	if size > MaxEntryBytes {
		return c.tooLarge(size)
	}
	return nil
}

// topLevel is validate's pos for a command that is not inside a batch.
const topLevel = -1

// validate checks c; pos is its index in a batch, or topLevel. Error texts
// are built only on failure: this runs for every queued command.
func (c *Command) validate(pos int) error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %s%v: %s %s", ErrInvalidCommand, where(pos), c.Op, field, fmt.Sprintf(format, args...))
	}
	checkID := func(field, id string) error {
		if id == "" || len(id) > MaxNodeIDLen {
			return bad(field, "must be 1 to %d bytes, got %d", MaxNodeIDLen, len(id))
		}
		return nil
	}
	checkLen := func(field, s string, limit int) error {
		if len(s) > limit {
			return bad(field, "must be at most %d bytes, got %d", limit, len(s))
		}
		return nil
	}
	checkName := func(field, name string) error {
		if !ValidName(name) {
			return bad(field, "%s is not a valid name", quoteShort(name))
		}
		return nil
	}
	switch c.Op {
	case OpBatch:
		if err := checkID("origin", c.Session.Owner); err != nil {
			return err
		}
		if len(c.Batch) > MaxBatchCommands {
			return bad("commands", "must be at most %d, got %d", MaxBatchCommands, len(c.Batch))
		}
		for i := range c.Batch {
			inner := &c.Batch[i]
			if inner.Op == OpBatch || inner.Op == OpOpenIncarnation {
				return fmt.Errorf("%w: %s%v must be proposed as its own entry", ErrInvalidCommand, where(i), inner.Op)
			}
			if err := inner.validate(i); err != nil {
				return err
			}
		}
		return nil
	case OpOpenSession:
		if err := checkID("session owner", c.Session.Owner); err != nil {
			return err
		}
		if err := c.Peer.Validate(); err != nil {
			return fmt.Errorf("%w: %s%v: %w", ErrInvalidCommand, where(pos), c.Op, err)
		}
		return nil
	case OpRegister, OpUnregister:
		var channel error
		if c.Channel != "" {
			channel = checkName("channel", c.Channel)
		}
		return first(checkID("session owner", c.Session.Owner), checkName("topic", c.Topic), channel)
	case OpCloseSession, OpExpireOwner, OpCloseOwner, OpExpireLease, OpOrphanOwner, OpOrphanLease:
		return checkID("session owner", c.Session.Owner)
	case OpRenewLease:
		if len(c.Touches) > MaxTouches {
			return bad("touches", "must be at most %d, got %d", MaxTouches, len(c.Touches))
		}
		return checkID("session owner", c.Session.Owner)
	case OpOpenIncarnation:
		if c.Nonce == 0 {
			return bad("nonce", "must not be 0")
		}
		if c.Grace < 0 {
			return bad("grace", "must not be negative, got %d", c.Grace)
		}
		return checkID("session owner", c.Session.Owner)
	case OpExpireOrphans:
		return nil
	case OpCreateTopic, OpDeleteTopic:
		return checkName("topic", c.Topic)
	case OpCreateChannel, OpDeleteChannel:
		return first(checkName("topic", c.Topic), checkName("channel", c.Channel))
	case OpTombstone:
		return first(checkName("topic", c.Topic), checkLen("node", c.Node, MaxTombstoneNodeLen))
	case OpSetMember:
		return first(
			checkID("member id", c.Member.ID),
			checkLen("raft address", c.Member.RaftAddress, MaxAddressLen),
			checkLen("http address", c.Member.HTTPAddress, MaxAddressLen),
			checkLen("tcp address", c.Member.TCPAddress, MaxAddressLen),
		)
	case OpRemoveMember:
		return checkID("member id", c.Member.ID)
	}
	return fmt.Errorf("%w: %s%w %d", ErrInvalidCommand, where(pos), ErrUnknownOp, uint8(c.Op))
}

// Validate reports whether an nsqd's IDENTIFY fits the limits of an
// open-session command. The error names the field as IDENTIFY's JSON body
// does, so the TCP protocol can send it back as is. Emptiness is the
// protocol's own check: nsqlookupd answers it with its own text.
func (p PeerInfo) Validate() error {
	for _, f := range []struct {
		name  string
		value string
		limit int
	}{
		{"remote_address", p.RemoteAddress, MaxAddressLen},
		{"hostname", p.Hostname, MaxAddressLen},
		{"broadcast_address", p.BroadcastAddress, MaxAddressLen},
		{"version", p.Version, MaxVersionLen},
	} {
		if len(f.value) > f.limit {
			return fmt.Errorf("%s must be at most %d bytes, got %d", f.name, f.limit, len(f.value))
		}
	}
	return nil
}

// first returns the first non-nil error, so a reply names one problem.
func first(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// where names a command's place in an error: "" or "batch[i] ".
func where(pos int) string {
	if pos == topLevel {
		return ""
	}
	return "batch[" + strconv.Itoa(pos) + "] "
}

// quoteShort quotes a name for an error message without copying a huge one
// into logs and replies.
func quoteShort(s string) string {
	const show = 2 * maxNameLen
	if len(s) <= show {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:show]) + "... (" + strconv.Itoa(len(s)) + " bytes)"
}
