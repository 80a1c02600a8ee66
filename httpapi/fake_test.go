package httpapi

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/raftlookupd/raftlookupd/fsm"
	"github.com/raftlookupd/raftlookupd/wire"
)

// fakeRegistry follows nsqlookupd's RegistrationDB (docs/COMPATIBILITY.md#registry-model): a map
// from (category, key, subkey) to producers keyed by peer id, wildcard "*"
// lookups, per-registration tombstones, FilterByActive. It is the reference
// the differential test holds this package to, so it mirrors nsqlookupd
// rather than raftlookupd's identity merging.
type fakeRegistry struct {
	mu sync.Mutex
	db map[regKey]map[string]*fakeProducer
	// panicOn makes the named method panic, for the 500 test.
	panicOn string
	calls   int
}

type regKey struct{ cat, key, sub string }

type fakePeer struct {
	fsm.PeerInfo
	lastUpdate int64
}

type fakeProducer struct {
	peer         *fakePeer
	tombstoned   bool
	tombstonedAt int64
}

func newFakeRegistry() *fakeRegistry {
	return &fakeRegistry{db: map[regKey]map[string]*fakeProducer{}}
}

func (r *fakeRegistry) enter(method string) {
	r.calls++
	if r.panicOn == method {
		panic("fake registry: " + method)
	}
}

func (r *fakeRegistry) ensure(k regKey) map[string]*fakeProducer {
	ps, ok := r.db[k]
	if !ok {
		ps = map[string]*fakeProducer{}
		r.db[k] = ps
	}
	return ps
}

// identify is IDENTIFY: the peer joins client::.
func (r *fakeRegistry) identify(pi fsm.PeerInfo, lastUpdate time.Time) *fakePeer {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := &fakePeer{PeerInfo: pi, lastUpdate: lastUpdate.UnixNano()}
	r.ensure(regKey{"client", "", ""})[pi.RemoteAddress] = &fakeProducer{peer: p}
	return p
}

// register is REGISTER topic [channel].
func (r *fakeRegistry) register(p *fakePeer, topic, channel string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	add := func(k regKey) {
		ps := r.ensure(k)
		if _, ok := ps[p.RemoteAddress]; !ok {
			ps[p.RemoteAddress] = &fakeProducer{peer: p}
		}
	}
	if channel != "" {
		add(regKey{"channel", topic, channel})
	}
	add(regKey{"topic", topic, ""})
}

// apply executes the HTTP commands as nsqlookupd's handlers do (docs/COMPATIBILITY.md#registry-transitions).
func (r *fakeRegistry) apply(cmd fsm.Command) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch cmd.Op {
	case fsm.OpCreateTopic:
		r.ensure(regKey{"topic", cmd.Topic, ""})
	case fsm.OpCreateChannel:
		r.ensure(regKey{"channel", cmd.Topic, cmd.Channel})
		r.ensure(regKey{"topic", cmd.Topic, ""})
	case fsm.OpDeleteTopic:
		for _, k := range r.find("channel", cmd.Topic, "*") {
			delete(r.db, k)
		}
		for _, k := range r.find("topic", cmd.Topic, "") {
			delete(r.db, k)
		}
	case fsm.OpDeleteChannel:
		ks := r.find("channel", cmd.Topic, cmd.Channel)
		if len(ks) == 0 {
			return fmt.Errorf("apply: %w", fsm.ErrChannelNotFound)
		}
		for _, k := range ks {
			delete(r.db, k)
		}
	case fsm.OpTombstone:
		for _, p := range r.producers("topic", cmd.Topic, "") {
			if fmt.Sprintf("%s:%d", p.peer.BroadcastAddress, p.peer.HTTPPort) == cmd.Node {
				p.tombstoned = true
				p.tombstonedAt = cmd.Time
			}
		}
	default:
		return fmt.Errorf("fake registry: unexpected op %v", cmd.Op)
	}
	return nil
}

func (r *fakeRegistry) find(cat, key, sub string) []regKey {
	if key != "*" && sub != "*" {
		if _, ok := r.db[regKey{cat, key, sub}]; ok {
			return []regKey{{cat, key, sub}}
		}
		return nil
	}
	var out []regKey
	for k := range r.db {
		if k.cat == cat && (key == "*" || k.key == key) && (sub == "*" || k.sub == sub) {
			out = append(out, k)
		}
	}
	return out
}

// producers is FindProducers: the union over matching keys, one per peer id.
func (r *fakeRegistry) producers(cat, key, sub string) []*fakeProducer {
	seen := map[string]bool{}
	var out []*fakeProducer
	for _, k := range r.find(cat, key, sub) {
		for id, p := range r.db[k] {
			if !seen[id] {
				seen[id] = true
				out = append(out, p)
			}
		}
	}
	return out
}

func (p *fakeProducer) isTombstoned(now time.Time, lifetime time.Duration) bool {
	return p.tombstoned && now.Sub(time.Unix(0, p.tombstonedAt)) < lifetime
}

func active(p *fakeProducer, f fsm.Filter, lifetime time.Duration) bool {
	if f.Now.Sub(time.Unix(0, p.peer.lastUpdate)) > f.InactiveTimeout {
		return false
	}
	return !p.isTombstoned(f.Now, lifetime)
}

// LookupStamped never stamps: the fake remembers nothing, so every /lookup
// is encoded from its answer (the memo is tested with the real registry).
func (r *fakeRegistry) LookupStamped(topic string, f fsm.Filter) ([]string, []fsm.PeerInfo, bool, fsm.Stamp) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.enter("Lookup")
	if len(r.find("topic", topic, "")) == 0 {
		return nil, nil, false, fsm.Stamp{}
	}
	channels := []string{}
	for _, k := range r.find("channel", topic, "*") {
		channels = append(channels, k.sub)
	}
	peers := []fsm.PeerInfo{}
	for _, p := range r.producers("topic", topic, "") {
		if active(p, f, f.TombstoneLifetime) {
			peers = append(peers, p.peer.PeerInfo)
		}
	}
	return channels, peers, true, fsm.Stamp{}
}

func (r *fakeRegistry) Remember(fsm.Stamp, []byte) {}

func (r *fakeRegistry) Recall(string, fsm.Filter) ([]byte, bool) { return nil, false }

func (r *fakeRegistry) Topics() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.enter("Topics")
	out := []string{}
	for _, k := range r.find("topic", "*", "") {
		out = append(out, k.key)
	}
	return out
}

func (r *fakeRegistry) Channels(topic string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.enter("Channels")
	out := []string{}
	for _, k := range r.find("channel", topic, "*") {
		out = append(out, k.sub)
	}
	return out
}

// Nodes is /nodes: membership filtered by inactivity only, tombstones within
// the real lifetime.
func (r *fakeRegistry) Nodes(f fsm.Filter) []fsm.NodesEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.enter("Nodes")
	out := []fsm.NodesEntry{}
	for _, c := range r.producers("client", "", "") {
		if !active(c, f, 0) {
			continue
		}
		n := fsm.NodesEntry{PeerInfo: c.peer.PeerInfo, Topics: []string{}, Tombstones: []bool{}}
		for k, ps := range r.db {
			if k.cat != "topic" {
				continue
			}
			if p, ok := ps[c.peer.RemoteAddress]; ok {
				n.Topics = append(n.Topics, k.key)
				n.Tombstones = append(n.Tombstones, p.isTombstoned(f.Now, f.TombstoneLifetime))
			}
		}
		out = append(out, n)
	}
	return out
}

func (r *fakeRegistry) Debug() map[string][]fsm.DebugProducer {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.enter("Debug")
	out := map[string][]fsm.DebugProducer{}
	for k, ps := range r.db {
		for _, p := range ps {
			key := k.cat + ":" + k.key + ":" + k.sub
			out[key] = append(out[key], fsm.DebugProducer{
				PeerInfo:     p.peer.PeerInfo,
				LastUpdate:   p.peer.lastUpdate,
				Tombstoned:   p.tombstoned,
				TombstonedAt: p.tombstonedAt,
			})
		}
	}
	return out
}

func (r *fakeRegistry) callCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

// fakeCluster records what the server asks of the node and answers with
// programmable errors. Propose applies to reg, as a one-node cluster would.
type fakeCluster struct {
	mu  sync.Mutex
	reg *fakeRegistry

	proposeErr  error
	proposed    []fsm.Command
	proposeDead []time.Duration // time left on each Propose context

	barrierErr    error
	barrierLevels []wire.Consistency
	// barrierAdvance is added to the applied index by ReadBarrier, to show
	// the headers are taken after it.
	barrierAdvance uint64
	readState      wire.ReadState

	status    wire.Status
	statusErr error
	ready     bool

	adminErr  error // for join, leave, transfer, apply, read-index
	joins     []wire.JoinRequest
	leaves    []string
	transfers []string
}

func newFakeCluster(reg *fakeRegistry) *fakeCluster {
	return &fakeCluster{reg: reg, readState: wire.ReadState{LeaderID: "n1", AppliedIndex: 1}}
}

func (c *fakeCluster) Propose(ctx context.Context, cmd fsm.Command) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d, ok := ctx.Deadline(); ok {
		c.proposeDead = append(c.proposeDead, time.Until(d))
	} else {
		c.proposeDead = append(c.proposeDead, -1)
	}
	c.proposed = append(c.proposed, cmd)
	// The real cluster refuses what the log must not hold; so does the fake.
	if err := cmd.Validate(); err != nil {
		return err
	}
	if c.proposeErr != nil {
		return c.proposeErr
	}
	c.readState.AppliedIndex++
	return c.reg.apply(cmd)
}

func (c *fakeCluster) ReadBarrier(_ context.Context, level wire.Consistency) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.barrierLevels = append(c.barrierLevels, level)
	c.readState.AppliedIndex += c.barrierAdvance
	return c.barrierErr
}

func (c *fakeCluster) ReadState() wire.ReadState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.readState
}

func (c *fakeCluster) Status(context.Context, bool) (wire.Status, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status, c.statusErr
}

func (c *fakeCluster) Ready() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ready
}

func (c *fakeCluster) Join(_ context.Context, req wire.JoinRequest) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.joins = append(c.joins, req)
	return c.adminErr
}

func (c *fakeCluster) Leave(_ context.Context, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.leaves = append(c.leaves, id)
	return c.adminErr
}

func (c *fakeCluster) TransferLeadership(_ context.Context, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.transfers = append(c.transfers, id)
	return c.adminErr
}
