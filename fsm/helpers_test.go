package fsm

import (
	"bytes"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// t0 is the fixed base of every time value the tests stamp into commands.
const t0 int64 = 1_700_000_000_000_000_000

// ns turns an offset from t0 into command time.
func ns(d time.Duration) int64 { return t0 + int64(d) }

// Defaults of nsqlookupd's -inactive-producer-timeout and -tombstone-lifetime.
const (
	inactive  = 300 * time.Second
	tombLife  = 45 * time.Second
	readDelay = time.Second // default read time: t0 + 1s
)

// at returns the read filter /lookup uses, with the reader's clock at t0+d.
func at(d time.Duration) Filter {
	return Filter{Now: time.Unix(0, ns(d)), InactiveTimeout: inactive, TombstoneLifetime: tombLife}
}

// now is the default read filter.
func now() Filter { return at(readDelay) }

// harness applies commands to one FSM through raft.Log entries with
// increasing indexes, as raft does.
type harness struct {
	t   testing.TB
	f   *FSM
	idx uint64
}

func newHarness(t testing.TB) *harness { return &harness{t: t, f: New()} }

func (h *harness) reg() *Registry { return h.f.Registry() }

// apply applies each command as its own log entry and returns the last result.
func (h *harness) apply(cmds ...Command) any {
	h.t.Helper()
	var res any
	for i := range cmds {
		h.idx++
		res = h.f.Apply(&raft.Log{Index: h.idx, Term: 1, Data: enc(cmds[i])})
	}
	return res
}

// Peers with distinct identities (broadcast_address, tcp_port, http_port).
var (
	peerA = PeerInfo{RemoteAddress: "10.0.0.1:40001", Hostname: "host-a", BroadcastAddress: "a.example", TCPPort: 4150, HTTPPort: 4151, Version: "1.3.0"}
	peerB = PeerInfo{RemoteAddress: "10.0.0.2:40002", Hostname: "host-b", BroadcastAddress: "b.example", TCPPort: 4150, HTTPPort: 4151, Version: "1.3.0"}
	peerC = PeerInfo{RemoteAddress: "10.0.0.3:40003", Hostname: "host-c", BroadcastAddress: "c.example", TCPPort: 4150, HTTPPort: 4151, Version: "1.3.0"}
	// peerA2 is peerA connected a second time (another socket, maybe another node).
	peerA2 = PeerInfo{RemoteAddress: "10.0.0.1:40099", Hostname: "host-a", BroadcastAddress: "a.example", TCPPort: 4150, HTTPPort: 4151, Version: "1.3.0"}
	// peerAtcp shares peerA's broadcast address and http port but not its tcp port:
	// another identity that the same /topic/tombstone node string matches.
	peerAtcp = PeerInfo{RemoteAddress: "10.0.0.1:40100", Hostname: "host-a", BroadcastAddress: "a.example", TCPPort: 5150, HTTPPort: 4151, Version: "1.3.0"}
	// peer6 has an IPv6 broadcast address; the node string is a plain concatenation.
	peer6 = PeerInfo{RemoteAddress: "[::1]:40006", Hostname: "host-6", BroadcastAddress: "::1", TCPPort: 4150, HTTPPort: 4151, Version: "1.3.0"}
)

// Sessions of owner n1 incarnation 1 (opened after renew("n1", 1, ...)).
var (
	s1 = SessionID{"n1", 1, 1}
	s2 = SessionID{"n1", 1, 2}
	s3 = SessionID{"n1", 1, 3}
	s4 = SessionID{"n1", 1, 4}
	// s21 is a session of owner n2 incarnation 1.
	s21 = SessionID{"n2", 1, 1}
)

// Command constructors.

func renew(owner string, inc uint64, at int64, touches ...Touch) Command {
	return Command{Op: OpRenewLease, Session: SessionID{Owner: owner, Incarnation: inc}, Time: at, Touches: touches}
}

func open(id SessionID, p PeerInfo, at int64) Command {
	return Command{Op: OpOpenSession, Session: id, Peer: p, Time: at}
}

func register(id SessionID, topic, channel string) Command {
	return Command{Op: OpRegister, Session: id, Topic: topic, Channel: channel}
}

func unregister(id SessionID, topic, channel string) Command {
	return Command{Op: OpUnregister, Session: id, Topic: topic, Channel: channel}
}

func closeSession(id SessionID) Command { return Command{Op: OpCloseSession, Session: id} }

func expireOwner(owner string, inc uint64) Command {
	return Command{Op: OpExpireOwner, Session: SessionID{Owner: owner, Incarnation: inc}}
}

func closeOwner(owner string, inc uint64) Command {
	return Command{Op: OpCloseOwner, Session: SessionID{Owner: owner, Incarnation: inc}}
}

func createTopic(t string) Command { return Command{Op: OpCreateTopic, Topic: t} }
func deleteTopic(t string) Command { return Command{Op: OpDeleteTopic, Topic: t} }

func createChannel(t, c string) Command { return Command{Op: OpCreateChannel, Topic: t, Channel: c} }
func deleteChannel(t, c string) Command { return Command{Op: OpDeleteChannel, Topic: t, Channel: c} }

func tombstone(t, node string, at int64) Command {
	return Command{Op: OpTombstone, Topic: t, Node: node, Time: at}
}

func setMember(m Member) Command { return Command{Op: OpSetMember, Member: m} }
func removeMember(id string) Command {
	return Command{Op: OpRemoveMember, Member: Member{ID: id}}
}

func openInc(owner string, nonce uint64, at int64, grace time.Duration) Command {
	return Command{Op: OpOpenIncarnation, Session: SessionID{Owner: owner}, Nonce: nonce, Time: at, Grace: int64(grace)}
}

func orphanOwner(owner string, inc uint64, deadline int64) Command {
	return Command{Op: OpOrphanOwner, Session: SessionID{Owner: owner, Incarnation: inc}, Time: deadline}
}

func orphanLease(owner string, inc, renewIndex uint64, deadline int64) Command {
	return Command{Op: OpOrphanLease, Session: SessionID{Owner: owner, Incarnation: inc}, RenewIndex: renewIndex, Time: deadline}
}

func expireOrphans(now int64) Command { return Command{Op: OpExpireOrphans, Time: now} }

func batch(owner string, inc, seq uint64, cmds ...Command) Command {
	return Command{Op: OpBatch, Session: SessionID{Owner: owner, Incarnation: inc}, BatchSeq: seq, Batch: cmds}
}

// setup opens owner n1 incarnation 1 and the given sessions at t0 with peers
// A, B, C, ... in order.
func setup(ids ...SessionID) []Command {
	peers := []PeerInfo{peerA, peerB, peerC, peerA2, peer6}
	out := []Command{renew("n1", 1, t0), renew("n2", 1, t0)}
	for i, id := range ids {
		out = append(out, open(id, peers[i], t0))
	}
	return out
}

func concat(parts ...[]Command) []Command { return slices.Concat(parts...) }

// A check is one read expectation on the registry.
type check func(t *testing.T, r *Registry)

// producerNames renders producers as "broadcast:tcp:http" identities.
func producerNames(ps []PeerInfo) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, identName(p.Identity()))
	}
	return out
}

func identName(id Identity) string {
	return fmt.Sprintf("%s:%d:%d", id.BroadcastAddress, id.TCPPort, id.HTTPPort)
}

// ident is the identity name of a peer, for expectations.
func ident(p PeerInfo) string { return identName(p.Identity()) }

func idents(ps ...PeerInfo) []string {
	out := []string{}
	for _, p := range ps {
		out = append(out, ident(p))
	}
	return out
}

// lookup expects /lookup?topic=name under filter f.
func lookupAt(f Filter, name string, found bool, channels []string, producers ...PeerInfo) check {
	return func(t *testing.T, r *Registry) {
		t.Helper()
		gotCh, gotP, gotFound := r.Lookup(name, f)
		if gotFound != found {
			t.Errorf("Lookup(%q) found = %v, want %v", name, gotFound, found)
		}
		if channels == nil {
			channels = []string{}
		}
		if gotCh == nil || gotP == nil {
			t.Errorf("Lookup(%q) returned a nil list (channels %v, producers %v); JSON would be null", name, gotCh == nil, gotP == nil)
		}
		if !slices.Equal(gotCh, channels) {
			t.Errorf("Lookup(%q) channels = %q, want %q", name, gotCh, channels)
		}
		if got, want := producerNames(gotP), idents(producers...); !slices.Equal(got, want) {
			t.Errorf("Lookup(%q) producers = %q, want %q", name, got, want)
		}
	}
}

func lookup(name string, found bool, channels []string, producers ...PeerInfo) check {
	return lookupAt(now(), name, found, channels, producers...)
}

// lookupRemote expects the remote addresses of /lookup's producers (which
// session represents each identity).
func lookupRemote(name string, remotes ...string) check {
	return func(t *testing.T, r *Registry) {
		t.Helper()
		_, ps, _ := r.Lookup(name, now())
		got := []string{}
		for _, p := range ps {
			got = append(got, p.RemoteAddress)
		}
		if !slices.Equal(got, remotes) {
			t.Errorf("Lookup(%q) remote addresses = %q, want %q", name, got, remotes)
		}
	}
}

func topics(want ...string) check {
	return func(t *testing.T, r *Registry) {
		t.Helper()
		if want == nil {
			want = []string{}
		}
		got := r.Topics()
		if got == nil || !slices.Equal(got, want) {
			t.Errorf("Topics() = %#v, want %q", got, want)
		}
	}
}

func channels(topic string, want ...string) check {
	return func(t *testing.T, r *Registry) {
		t.Helper()
		if want == nil {
			want = []string{}
		}
		got := r.Channels(topic)
		if got == nil || !slices.Equal(got, want) {
			t.Errorf("Channels(%q) = %#v, want %q", topic, got, want)
		}
	}
}

// nodeWant is one expected /nodes entry: identity, topics, tombstones.
type nodeWant struct {
	peer       PeerInfo
	topics     []string
	tombstones []bool
}

func node(p PeerInfo, topicsAndTombs ...any) nodeWant {
	n := nodeWant{peer: p, topics: []string{}, tombstones: []bool{}}
	for i := 0; i < len(topicsAndTombs); i += 2 {
		n.topics = append(n.topics, topicsAndTombs[i].(string))
		n.tombstones = append(n.tombstones, topicsAndTombs[i+1].(bool))
	}
	return n
}

func nodesAt(f Filter, want ...nodeWant) check {
	return func(t *testing.T, r *Registry) {
		t.Helper()
		got := r.Nodes(f)
		if got == nil {
			t.Errorf("Nodes() = nil, want a non-nil list")
		}
		render := func(id string, topics []string, tombs []bool) string {
			return fmt.Sprintf("%s topics=%q tombstones=%v", id, topics, tombs)
		}
		var g, w []string
		for _, n := range got {
			if len(n.Topics) != len(n.Tombstones) {
				t.Errorf("Nodes(): %s has %d topics but %d tombstones (nsqadmin panics)", ident(n.PeerInfo), len(n.Topics), len(n.Tombstones))
			}
			if n.Topics == nil || n.Tombstones == nil {
				t.Errorf("Nodes(): %s has a nil topics or tombstones list", ident(n.PeerInfo))
			}
			g = append(g, render(ident(n.PeerInfo), n.Topics, n.Tombstones))
		}
		for _, n := range want {
			w = append(w, render(ident(n.peer), n.topics, n.tombstones))
		}
		if !slices.Equal(g, w) {
			t.Errorf("Nodes() =\n\t%s\nwant\n\t%s", strings.Join(g, "\n\t"), strings.Join(w, "\n\t"))
		}
	}
}

func nodes(want ...nodeWant) check { return nodesAt(now(), want...) }

// debugKeys expects the keys of /debug and, per key, its sessions in order.
func debugKeys(want map[string][]SessionID) check {
	return func(t *testing.T, r *Registry) {
		t.Helper()
		got := map[string][]SessionID{}
		for k, ps := range r.Debug() {
			for _, p := range ps {
				got[k] = append(got[k], p.Session)
			}
		}
		if want == nil {
			want = map[string][]SessionID{}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Debug() keys =\n\t%v\nwant\n\t%v", got, want)
		}
	}
}

// ownerIs expects one owner's lease record.
func ownerIs(id string, inc uint64, expired bool, sessions int) check {
	return func(t *testing.T, r *Registry) {
		t.Helper()
		o, ok := r.Owner(id)
		if !ok {
			t.Errorf("Owner(%q) missing", id)
			return
		}
		if o.Incarnation != inc || o.Expired != expired || o.Sessions != sessions {
			t.Errorf("Owner(%q) = inc %d expired %v sessions %d, want inc %d expired %v sessions %d",
				id, o.Incarnation, o.Expired, o.Sessions, inc, expired, sessions)
		}
	}
}

func noOwner(id string) check {
	return func(t *testing.T, r *Registry) {
		t.Helper()
		if o, ok := r.Owner(id); ok {
			t.Errorf("Owner(%q) = %+v, want none", id, o)
		}
	}
}

// orphansAre expects exactly these orphans, with their deadlines.
func orphansAre(want map[SessionID]int64) check {
	return func(t *testing.T, r *Registry) {
		t.Helper()
		got := map[SessionID]int64{}
		for _, ps := range r.Debug() {
			for _, p := range ps {
				if p.Orphaned {
					got[p.Session] = p.OrphanDeadline
				}
			}
		}
		if want == nil {
			want = map[SessionID]int64{}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("orphans = %v, want %v", got, want)
		}
		if n := r.Stats().Orphans; n != len(want) {
			t.Errorf("Stats().Orphans = %d, want %d", n, len(want))
		}
	}
}

// lastUpdate expects a session's replicated last-update time (ok=false: no session).
func lastUpdate(id SessionID, want int64, ok bool) check {
	return func(t *testing.T, r *Registry) {
		t.Helper()
		got, gotOK := r.SessionLastUpdate(id)
		if gotOK != ok || got != want {
			t.Errorf("SessionLastUpdate(%v) = %d, %v; want %d, %v", id, got, gotOK, want, ok)
		}
	}
}

func members(want ...Member) check {
	return func(t *testing.T, r *Registry) {
		t.Helper()
		if want == nil {
			want = []Member{}
		}
		if got := r.Members(); !reflect.DeepEqual(got, want) {
			t.Errorf("Members() = %+v, want %+v", got, want)
		}
	}
}

// memSink is an in-memory raft.SnapshotSink.
type memSink struct {
	bytes.Buffer
	closed, cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }
func (s *memSink) Close() error  { s.closed = true; return nil }

// snapshotBytes takes a snapshot through the raft.FSM interface and persists it.
func snapshotBytes(t testing.TB, f *FSM) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	defer snap.Release()
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatalf("Persist: %v", err)
	}
	if !sink.closed || sink.cancelled {
		t.Fatalf("Persist: sink closed=%v cancelled=%v, want closed", sink.closed, sink.cancelled)
	}
	return sink.Bytes()
}

// restored returns a fresh FSM restored from snapshot bytes.
func restored(t testing.TB, data []byte) *FSM {
	t.Helper()
	f := New()
	if err := f.Restore(readCloser(data)); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	return f
}

// checkInvariants verifies the registry's cross-indexes agree with each other:
// sessions <-> owners, topic/channel producers <-> session back-references,
// and that no key-less empty topic entry lingers. It reads internals under
// the read lock.
func checkInvariants(t testing.TB, r *Registry) {
	t.Helper()
	r.mu.RLock()
	defer r.mu.RUnlock()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf("invariant: "+format, args...)
	}
	for id, s := range r.sessions {
		if s.id != id {
			fail("sessions[%v].id = %v", id, s.id)
		}
		o := r.owners[id.Owner]
		switch {
		case o == nil:
			fail("session %v has no owner", id)
		case s.orphaned:
			if o.sessions[id] != nil {
				fail("owner %s indexes orphan %v as live", id.Owner, id)
			}
			if _, ok := r.orphans[s.deadline][s]; !ok {
				fail("orphan %v is not indexed under its deadline %d", id, s.deadline)
			}
			if _, ok := r.orphansOf[s.peer.Identity()][s]; !ok {
				fail("orphan %v is not indexed under its identity", id)
			}
		case s.deadline != 0:
			fail("live session %v has a deadline", id)
		case o.sessions[id] != s:
			fail("owner %s does not index session %v", id.Owner, id)
		case o.inc != id.Incarnation || o.expired:
			fail("session %v lives but owner %s is at incarnation %d expired=%v", id, id.Owner, o.inc, o.expired)
		}
		for tp := range s.topics {
			if r.topics[tp.name] != tp || !tp.producers.has(s) {
				fail("session %v: topic %q back-reference broken", id, tp.name)
			}
		}
		for ch := range s.channels {
			if r.topics[ch.topic.name] != ch.topic || !hasChannel(ch.topic, ch) {
				fail("session %v: channel %s/%s is not in the registry", id, ch.topic.name, ch.name)
			}
			if !ch.producers.has(s) {
				fail("session %v: channel %s/%s back-reference broken", id, ch.topic.name, ch.name)
			}
		}
	}
	for d, group := range r.orphans {
		if len(group) == 0 {
			fail("empty orphan group at %d", d)
		}
		for s := range group {
			if r.sessions[s.id] != s || !s.orphaned || s.deadline != d {
				fail("orphan group %d holds %v (orphaned %v, deadline %d)", d, s.id, s.orphaned, s.deadline)
			}
		}
	}
	settled := map[Identity]int{}
	orphans := 0
	for _, s := range r.sessions {
		if s.orphaned {
			orphans++
		} else if s.settled {
			settled[s.peer.Identity()]++
		}
	}
	if !reflect.DeepEqual(settled, r.settled) {
		fail("settled counts %v, sessions say %v", r.settled, settled)
	}
	n := 0
	for id, set := range r.orphansOf {
		if len(set) == 0 {
			fail("empty orphan set of %v", id)
		}
		for s := range set {
			n++
			if r.sessions[s.id] != s || !s.orphaned || s.peer.Identity() != id {
				fail("orphans of %v hold %v (orphaned %v)", id, s.id, s.orphaned)
			}
		}
	}
	if n != orphans {
		fail("identity index holds %d orphans, registry %d", n, orphans)
	}
	for name, o := range r.owners {
		for id, s := range o.sessions {
			if r.sessions[id] != s {
				fail("owner %s indexes session %v that the registry does not hold", name, id)
			}
		}
	}
	for name, tp := range r.topics {
		if tp.name != name {
			fail("topics[%q].name = %q", name, tp.name)
		}
		if !tp.hasKey && tp.channels.len() == 0 {
			fail("topic %q has no key and no channels but is kept", name)
		}
		if !tp.hasKey && tp.producers.len() > 0 {
			fail("topic %q has producers but no key", name)
		}
		for s := range tp.producers.all {
			if _, ok := s.topics[tp]; r.sessions[s.id] != s || !ok {
				fail("topic %q: producer %v not back-referenced", name, s.id)
			}
		}
		for chName, ch := range tp.channels.all {
			if ch.name != chName || ch.topic != tp {
				fail("channel %s/%s misnamed", name, chName)
			}
			for s := range ch.producers.all {
				if _, ok := s.channels[ch]; !ok || r.sessions[s.id] != s {
					fail("channel %s/%s: producer %v not back-referenced", name, chName, s.id)
				}
			}
		}
	}
}

func readCloser(b []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(b)) }

// enc returns a command's log bytes without Validate, as an entry written
// before the limits existed would be: Apply must take whatever decodes.
func enc(c Command) []byte { return c.entry() }

// mustEncode is Encode for commands a test knows to be valid.
func mustEncode(t testing.TB, c Command) []byte {
	t.Helper()
	b, err := c.Encode()
	if err != nil {
		t.Fatalf("Encode(%v): %v", c.Op, err)
	}
	return b
}

// hasChannel reports whether t holds ch under its name.
func hasChannel(t *topic, ch *channel) bool {
	got, ok := t.channels.get(ch.name)
	return ok && got == ch
}
