package fsm

import (
	"bytes"
	"errors"
	"math"
	"runtime"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

func TestValidate(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	id := SessionID{Owner: "n1", Incarnation: 1, Seq: 1}
	maxPeer := PeerInfo{RemoteAddress: long(MaxAddressLen), Hostname: long(MaxAddressLen),
		BroadcastAddress: long(MaxAddressLen), TCPPort: math.MinInt64, HTTPPort: math.MaxInt64, Version: long(MaxVersionLen)}
	withPeer := func(f func(p *PeerInfo)) Command {
		p := peerA
		f(&p)
		return open(id, p, t0)
	}
	tests := []struct {
		name string
		cmd  Command
		want string // "" = valid; else a substring of the error
	}{
		// Every golden command is valid.
		{"register", register(id, "orders", "archive#ephemeral"), ""},
		{"register topic only", register(id, "orders", ""), ""},
		{"unregister topic only", unregister(id, "orders", ""), ""},
		{"register bad topic", register(id, "bad$", ""), `register: topic "bad$" is not a valid name`},
		{"register bad channel", register(id, "t", "c$"), `register: channel "c$" is not a valid name`},
		{"register 65-byte topic", register(id, long(65), ""), "is not a valid name"},
		{"register 1 MiB topic", register(id, long(1<<20+1), ""), `(1048577 bytes) is not a valid name`},
		{"unregister bad channel", unregister(id, "t", "*"), `unregister: channel "*"`},
		{"register no owner", register(SessionID{}, "t", ""), "register: session owner must be 1 to 255 bytes, got 0"},
		{"register long owner", register(SessionID{Owner: long(256)}, "t", ""), "got 256"},
		{"register owner at limit", register(SessionID{Owner: long(255)}, "t", ""), ""},
		{"create topic", createTopic("t"), ""},
		{"create topic invalid", createTopic("t$"), `create-topic: topic "t$"`},
		{"delete topic invalid", deleteTopic(""), `delete-topic: topic ""`},
		{"delete topic wildcard", deleteTopic("*"), `delete-topic: topic "*"`},
		{"create channel bad channel", createChannel("t", "#ephemeral"), "create-channel: channel"},
		{"delete channel empty channel", deleteChannel("t", ""), "delete-channel: channel"},
		{"delete channel bad topic", deleteChannel("*", "c"), "delete-channel: topic"},
		{"tombstone", tombstone("t", "", t0), ""},
		{"tombstone node at limit", tombstone("t", long(MaxTombstoneNodeLen), t0), ""},
		{"tombstone node over", tombstone("t", long(MaxTombstoneNodeLen+1), t0), "tombstone: node must be at most 284 bytes, got 285"},
		{"tombstone bad topic", tombstone("x$", "a:1", t0), "tombstone: topic"},
		{"open session at limits", open(id, maxPeer, t0), ""},
		{"open session long broadcast", withPeer(func(p *PeerInfo) { p.BroadcastAddress = long(MaxAddressLen + 1) }),
			"open-session: broadcast_address must be at most 263 bytes, got 264"},
		{"open session long remote", withPeer(func(p *PeerInfo) { p.RemoteAddress = long(MaxAddressLen + 1) }), "remote_address"},
		{"open session long hostname", withPeer(func(p *PeerInfo) { p.Hostname = long(MaxAddressLen + 1) }), "hostname"},
		{"open session long version", withPeer(func(p *PeerInfo) { p.Version = long(MaxVersionLen + 1) }), "version must be at most 64"},
		{"close session no owner", closeSession(SessionID{Seq: 1}), "close-session: session owner"},
		{"renew", renew("n1", 1, t0, Touch{1, 2}), ""},
		{"renew max touches", renew("n1", 1, t0, make([]Touch, MaxTouches)...), ""},
		{"renew too many touches", renew("n1", 1, t0, make([]Touch, MaxTouches+1)...), "renew-lease: touches must be at most 65536, got 65537"},
		{"expire owner no owner", expireOwner("", 1), "expire-owner: session owner"},
		{"close owner", closeOwner("n1", 1), ""},
		{"expire lease long owner", Command{Op: OpExpireLease, Session: SessionID{Owner: long(300)}}, "expire-lease: session owner"},
		{"set member", setMember(Member{ID: "n1", RaftAddress: long(MaxAddressLen), HTTPAddress: "h:1", TCPAddress: "h:2"}), ""},
		{"set member no id", setMember(Member{}), "set-member: member id"},
		{"set member long raft address", setMember(Member{ID: "n1", RaftAddress: long(MaxAddressLen + 1)}), "set-member: raft address"},
		{"set member long http address", setMember(Member{ID: "n1", HTTPAddress: long(MaxAddressLen + 1)}), "set-member: http address"},
		{"set member long tcp address", setMember(Member{ID: "n1", TCPAddress: long(MaxAddressLen + 1)}), "set-member: tcp address"},
		{"remove member no id", removeMember(""), "remove-member: member id"},
		{"unknown op", Command{Op: 250}, "unknown op 250"},
		{"op zero", Command{}, "unknown op 0"},
		{"open incarnation", openInc("n1", 1, t0, grace), ""},
		{"open incarnation nonce 0", openInc("n1", 0, t0, grace), "open-incarnation: nonce must not be 0"},
		{"open incarnation negative grace", openInc("n1", 1, t0, -1), "open-incarnation: grace must not be negative"},
		{"open incarnation no owner", openInc("", 1, t0, grace), "open-incarnation: session owner"},
		{"open incarnation in a batch", batch("n1", 1, 1, openInc("n1", 1, t0, grace)), "batch[0] open-incarnation must be proposed as its own entry"},
		{"orphan owner", orphanOwner("n1", 1, t0), ""},
		{"orphan owner no owner", orphanOwner("", 1, t0), "orphan-owner: session owner"},
		{"orphan lease long owner", orphanLease(strings.Repeat("n", 256), 1, 1, t0), "orphan-lease: session owner"},
		{"expire orphans", expireOrphans(-1), ""},
		{"orphan commands batch", batch("n1", 1, 1, orphanLease("n2", 1, 2, t0), expireOrphans(t0), orphanOwner("n1", 1, t0)), ""},
		{"batch", goldenBatch(), ""},
		{"empty batch", batch("n1", 1, 1), ""},
		{"batch no origin", batch("", 1, 1), "batch: origin must be 1 to 255 bytes"},
		{"nested batch", batch("n1", 1, 1, createTopic("t"), batch("n1", 1, 2)), "batch[1] batch must be proposed as its own entry"},
		{"batch invalid inner", batch("n1", 1, 1, createTopic("t"), deleteTopic("x$")), `batch[1] delete-topic: topic "x$"`},
		{"batch unknown inner", batch("n1", 1, 1, Command{Op: 99}), "batch[0] unknown op 99"},
		{"batch max commands", batch("n1", 1, 1, make([]Command, MaxBatchCommands)...), "batch[0] unknown op 0"},
		{"batch too many commands", batch("n1", 1, 1, repeat(createTopic("t"), MaxBatchCommands+1)...), "batch: commands must be at most 65536, got 65537"},
		{"batch over entry size", batch("n1", 1, 1, repeat(open(id, maxPeer, t0), 10000)...), "batch entry of"},
		{"batch just under entry size", batch("n1", 1, 1, repeat(open(id, maxPeer, t0), 6000)...), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cmd.Validate()
			b, encErr := tc.cmd.Encode()
			if (err == nil) != (encErr == nil) {
				t.Fatalf("Validate = %v but Encode = %v", err, encErr)
			}
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want valid", err)
				}
				got, err := Decode(b)
				if err != nil {
					t.Fatalf("Decode(Encode) = %v", err)
				}
				if !bytes.Equal(enc(got), b) {
					t.Fatal("Decode(Encode(c)) encodes differently")
				}
				return
			}
			if !errors.Is(err, ErrInvalidCommand) || !errors.Is(encErr, ErrInvalidCommand) {
				t.Fatalf("Validate = %v, Encode = %v; want both to wrap ErrInvalidCommand", err, encErr)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate = %q, want it to contain %q", err, tc.want)
			}
			if len(err.Error()) > 400 {
				t.Errorf("error of %d bytes: a huge input must not be copied into it", len(err.Error()))
			}
		})
	}
}

func TestGoldenCommandsAreValid(t *testing.T) {
	for op, c := range goldenCommands() {
		if err := c.Validate(); err != nil {
			t.Errorf("%v: %v", op, err)
		}
	}
}

// TestLargestCommandFits: no single command within the field limits can
// exceed MaxEntryBytes, which is why Validate encodes only batches; and the
// default batch of 4096 largest commands fits too.
func TestLargestCommandFits(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	owner := SessionID{Owner: long(MaxNodeIDLen), Incarnation: math.MaxUint64, Seq: math.MaxUint64}
	touches := make([]Touch, MaxTouches)
	for i := range touches {
		touches[i] = Touch{Seq: math.MaxUint64, LastUpdate: math.MinInt64}
	}
	peer := PeerInfo{RemoteAddress: long(MaxAddressLen), Hostname: long(MaxAddressLen),
		BroadcastAddress: long(MaxAddressLen), TCPPort: math.MinInt64, HTTPPort: math.MinInt64, Version: long(MaxVersionLen)}
	largest := map[string]Command{
		"renew":   {Op: OpRenewLease, Session: owner, Time: math.MinInt64, Touches: touches},
		"open":    {Op: OpOpenSession, Session: owner, Peer: peer, Time: math.MinInt64},
		"members": {Op: OpSetMember, Member: Member{ID: long(MaxNodeIDLen), RaftAddress: long(MaxAddressLen), HTTPAddress: long(MaxAddressLen), TCPAddress: long(MaxAddressLen)}},
	}
	for name, c := range largest {
		n := len(enc(c))
		t.Logf("largest %s: %d bytes", name, n)
		if n > MaxEntryBytes/4 {
			t.Errorf("largest %s command takes %d bytes, too close to MaxEntryBytes %d", name, n, MaxEntryBytes)
		}
	}
	b := batch(owner.Owner, math.MaxUint64, math.MaxUint64, repeat(largest["open"], 4096)...)
	if _, err := b.Encode(); err != nil {
		t.Errorf("a default-size batch of the largest open-session commands: %v", err)
	}
}

// TestDecodeAllocatesWithInput: counts that claim more elements than the
// bytes left could hold fail before allocating for them.
func TestDecodeAllocatesWithInput(t *testing.T) {
	claims := map[string][]byte{
		"batch":   {Version, byte(OpBatch), 1, 'n', 1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"touches": {Version, byte(OpRenewLease), 1, 'n', 1, 2, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"string":  {Version, byte(OpCreateTopic), 0xff, 0xff, 0xff, 0xff, 0x0f},
	}
	for name, b := range claims {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range 10 {
			if _, err := Decode(b); err == nil {
				t.Errorf("%s: Decode accepted a count beyond its input", name)
			}
		}
		runtime.ReadMemStats(&after)
		if per := (after.TotalAlloc - before.TotalAlloc) / 10; per > 4096 {
			t.Errorf("%s: %d bytes allocated per Decode of %d bytes", name, per, len(b))
		}
	}
}

func repeat(c Command, n int) []Command {
	out := make([]Command, n)
	for i := range out {
		out[i] = c
	}
	return out
}

// FuzzValidate drives commands built from the fuzz input (every op, nested
// batches, strings at, under and far over every limit) through Validate,
// Encode, Decode and Apply. It fails on a panic, on Validate and Encode
// disagreeing, on encoded bytes Decode refuses or reads back differently,
// and on an accepted command that does not apply.
func FuzzValidate(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 3, 2, 0, 0})
	f.Add([]byte{2, 0, 1, 2, 3, 4, 5, 6, 7})
	f.Add([]byte{1, 1, 6, 0xff, 0xff, 0xff})
	f.Add(bytes.Repeat([]byte{3, 250, 9}, 40))
	f.Fuzz(func(t *testing.T, data []byte) {
		g := &fuzzGen{b: data}
		c := g.command(0)
		verr := c.Validate()
		b, eerr := c.Encode()
		if (verr == nil) != (eerr == nil) {
			t.Fatalf("Validate = %v, Encode = %v", verr, eerr)
		}
		if verr != nil {
			if !errors.Is(verr, ErrInvalidCommand) || !errors.Is(eerr, ErrInvalidCommand) {
				t.Fatalf("errors do not wrap ErrInvalidCommand: %v / %v", verr, eerr)
			}
			return
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("Decode refused what Encode wrote: %v", err)
		}
		// Fields c's op does not use are not encoded: compare bytes.
		if again := enc(got); !bytes.Equal(again, b) {
			t.Fatalf("Decode(Encode(c)) re-encodes differently:\n%x\n%x", b, again)
		}
		h := newHarness(t)
		h.apply(setup(s1, s2)...)
		h.f.Apply(&raft.Log{Index: h.idx + 1, Data: b})
		checkInvariants(t, h.reg())
	})
}

// fuzzGen turns fuzz bytes into a command; when the bytes run out, every
// choice is zero.
type fuzzGen struct{ b []byte }

func (g *fuzzGen) next() byte {
	if len(g.b) == 0 {
		return 0
	}
	v := g.b[0]
	g.b = g.b[1:]
	return v
}

func (g *fuzzGen) u64() uint64 {
	var v uint64
	for range g.next() % 9 {
		v = v<<8 | uint64(g.next())
	}
	return v
}

func (g *fuzzGen) str() string {
	names := []string{"", "t", "orders", "c#ephemeral", "#ephemeral", "*", "bad$", "n1", "n2", "a.example:4151"}
	limits := []int{maxNameLen, MaxNodeIDLen, MaxAddressLen, MaxVersionLen, MaxTombstoneNodeLen, maxString}
	switch k := g.next(); k % 4 {
	case 0, 1:
		return names[int(g.next())%len(names)]
	case 2:
		n := limits[int(g.next())%len(limits)] + int(g.next()%3) - 1
		return strings.Repeat(string(rune('a'+k%26)), n)
	default:
		n := int(g.next() % 16)
		out := make([]byte, n)
		for i := range out {
			out[i] = g.next()
		}
		return string(out)
	}
}

func (g *fuzzGen) command(depth int) Command {
	c := Command{Op: Op(g.next() % 24)}
	c.Session = SessionID{Owner: g.str(), Incarnation: g.u64(), Seq: g.u64()}
	c.Time = int64(g.u64())
	switch c.Op {
	case OpOpenSession:
		c.Peer = PeerInfo{RemoteAddress: g.str(), Hostname: g.str(), BroadcastAddress: g.str(),
			TCPPort: int(g.u64()), HTTPPort: int(g.u64()), Version: g.str()}
	case OpRegister, OpUnregister, OpCreateChannel, OpDeleteChannel:
		c.Topic, c.Channel = g.str(), g.str()
	case OpCreateTopic, OpDeleteTopic:
		c.Topic = g.str()
	case OpTombstone:
		c.Topic, c.Node = g.str(), g.str()
	case OpRenewLease:
		n := int(g.next())
		if n == 255 {
			n = MaxTouches + int(g.next()%2)
		}
		c.Touches = make([]Touch, n)
		for i := range min(n, 8) {
			c.Touches[i] = Touch{Seq: g.u64(), LastUpdate: int64(g.u64())}
		}
	case OpExpireLease, OpOrphanLease:
		c.RenewIndex = g.u64()
	case OpOpenIncarnation:
		c.Nonce, c.Grace = g.u64(), int64(g.u64())
	case OpSetMember, OpRemoveMember:
		c.Member = Member{ID: g.str(), RaftAddress: g.str(), HTTPAddress: g.str(), TCPAddress: g.str()}
	case OpBatch:
		c.BatchSeq = g.u64()
		if depth > 1 {
			return c
		}
		n := int(g.next() % 8)
		if g.next() == 255 {
			// Many copies of one command: the count and entry size limits.
			one := g.command(depth + 1)
			c.Batch = repeat(one, MaxBatchCommands+int(g.next()%2)-int(g.next())*256)
			return c
		}
		for range n {
			c.Batch = append(c.Batch, g.command(depth+1))
		}
	}
	return c
}

// TestOldEntriesStillApply: entries a build without Validate could write
// (names nsq never accepts, strings up to the decoder's 1 MiB) still decode
// and apply, so a log written before the limits replays.
func TestOldEntriesStillApply(t *testing.T) {
	h := newHarness(t)
	h.apply(createTopic("t"))
	for _, c := range []Command{
		deleteTopic("bad$"),
		tombstone("x$", strings.Repeat("n", maxString), t0),
		deleteTopic(strings.Repeat("a", maxString)),
		batch(strings.Repeat("o", 1000), 1, 1, createTopic("u$"), deleteChannel("t", "*")),
		setMember(Member{ID: "n1", RaftAddress: strings.Repeat("r", 4096)}),
	} {
		if c.Validate() == nil {
			t.Fatalf("%v: valid today, so this case proves nothing", c.Op)
		}
		h.apply(c)
	}
	topics("t", "u$")(t, h.reg())
	checkInvariants(t, h.reg())
}
