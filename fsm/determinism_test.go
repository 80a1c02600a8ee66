package fsm

import (
	"bytes"
	"fmt"
	"math/rand"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// gen generates random commands from a small alphabet, so that sequences hit
// every interaction: shared topics, ephemeral names, sessions of several owner
// incarnations, merged identities, duplicate batches. It tracks each owner's
// current incarnation so most commands are live, and some are stale.
type gen struct {
	rnd *rand.Rand
	now int64
	inc map[string]uint64
	// batchInc is each origin's batch incarnation.
	batchInc map[string]uint64
	batchSeq map[string]uint64
	// index is the log index of the entry being generated (entries apply
	// at 1, 2, ...), which numbers incarnations OpOpenIncarnation opens.
	index    uint64
	renewIdx map[string]uint64
	reopen   map[string]bool
	// opened: the owner's incarnation came from OpOpenIncarnation, so its
	// batches must carry it.
	opened map[string]bool
	nonce  map[string]uint64
}

var (
	genTopics   = []string{"t1", "t2", "e#ephemeral"}
	genChannels = []string{"", "c1", "d#ephemeral"}
	genOwners   = []string{"n1", "n2", "n3"}
	genPeers    = []PeerInfo{peerA, peerA2, peerAtcp, peerB, peerC, peer6}
)

func (g *gen) pick(n int) int { return g.rnd.Intn(n) }

func (g *gen) owner() string { return genOwners[g.pick(len(genOwners))] }

// incarnation is mostly the owner's current one, sometimes a stale or future one.
func (g *gen) incarnation(owner string) uint64 {
	cur := g.inc[owner]
	switch g.pick(10) {
	case 0:
		return max(cur, 2) - 1
	case 1:
		return cur + 1
	}
	return cur
}

func (g *gen) session() SessionID {
	o := g.owner()
	return SessionID{Owner: o, Incarnation: g.incarnation(o), Seq: uint64(1 + g.pick(4))}
}

func (g *gen) tick() int64 {
	g.now += int64(g.rnd.Intn(int(20 * time.Second)))
	return g.now
}

func (g *gen) topic() string   { return genTopics[g.pick(len(genTopics))] }
func (g *gen) channel() string { return genChannels[g.pick(len(genChannels))] }

// command returns one non-batch command.
func (g *gen) command() Command {
	if g.pick(40) == 0 {
		o := g.owner()
		inc := g.incarnation(o)
		deadline := g.now + int64(g.pick(int(60*time.Second)))
		if inc == g.inc[o] {
			g.reopen[o] = true // the node notices and opens a new incarnation
		}
		switch g.pick(3) {
		case 0:
			return orphanOwner(o, inc, deadline)
		case 1:
			idx := g.renewIdx[o]
			if g.pick(3) == 0 {
				idx++
			}
			return orphanLease(o, inc, idx, deadline)
		default:
			return expireOrphans(g.tick())
		}
	}
	switch g.pick(40) {
	case 0, 1, 2, 3:
		o := g.owner()
		inc := g.incarnation(o)
		if inc > g.inc[o] {
			g.inc[o], g.opened[o] = inc, false // a renewal-opened incarnation
		}
		c := renew(o, inc, g.tick())
		g.renewIdx[o] = g.index
		for range g.pick(4) {
			c.Touches = append(c.Touches, Touch{Seq: uint64(1 + g.pick(4)), LastUpdate: g.now - int64(g.pick(int(40*time.Second)))})
		}
		return c
	case 4, 5, 6, 7, 8:
		return open(g.session(), genPeers[g.pick(len(genPeers))], g.tick())
	case 9, 10, 11, 12, 13, 14, 15, 16, 17, 18:
		return register(g.session(), g.topic(), g.channel())
	case 19, 20, 21, 22:
		return unregister(g.session(), g.topic(), g.channel())
	case 23, 24:
		return closeSession(g.session())
	case 25, 26:
		o := g.owner()
		c := expireOwner(o, g.incarnation(o))
		if g.pick(2) == 0 {
			c.Op = OpCloseOwner
		}
		if c.Session.Incarnation == g.inc[o] {
			g.inc[o]++ // the node notices and starts a new incarnation
			g.opened[o] = false
		}
		return c
	case 27, 28:
		return createTopic(g.topic())
	case 29, 30:
		return deleteTopic(g.topic())
	case 31, 32:
		return createChannel(g.topic(), genChannels[1+g.pick(len(genChannels)-1)])
	case 33, 34:
		return deleteChannel(g.topic(), g.channel())
	case 35, 36, 37:
		p := genPeers[g.pick(len(genPeers))]
		return tombstone(g.topic(), nodeAddress(p), g.tick())
	case 38:
		id := g.owner()
		return setMember(Member{ID: id, RaftAddress: fmt.Sprintf("%s:%d", id, g.pick(3)), HTTPAddress: id + ":4161", TCPAddress: id + ":4160"})
	default:
		return removeMember(g.owner())
	}
}

// entry returns one log entry's command: a single command or a batch.
func (g *gen) entry() Command {
	g.index++
	o := g.owner()
	if g.pick(40) == 0 || g.reopen[o] {
		// A process start: a fresh nonce, or now and then a retry's
		// duplicate of the last one (which opens nothing).
		delete(g.reopen, o)
		c := openInc(o, uint64(1+g.pick(6)), g.tick(), time.Duration(g.pick(int(40*time.Second))))
		if g.opened[o] && g.pick(4) == 0 {
			return openInc(o, g.nonce[o], c.Time, 0) // a late duplicate: a no-op
		}
		if c.Nonce == g.nonce[o] {
			c.Nonce++
		}
		g.nonce[o] = c.Nonce
		g.inc[o], g.batchInc[o], g.batchSeq[o], g.opened[o] = g.index, g.index, 0, true
		return c
	}
	if g.pick(4) > 0 {
		return g.command()
	}
	// A process's batch incarnation only grows (cluster persists it); a new
	// one now and then stands for a restart.
	if g.batchInc[o] == 0 || (g.pick(8) == 0 && !g.opened[o]) {
		g.batchInc[o]++
		g.batchSeq[o] = 0
	}
	// Mostly the next sequence number; sometimes a retry's duplicate.
	if g.batchSeq[o] == 0 || g.pick(4) > 0 {
		g.batchSeq[o]++
	}
	b := batch(o, g.batchInc[o], g.batchSeq[o])
	for range g.pick(8) {
		b.Batch = append(b.Batch, g.command())
	}
	return b
}

func randomEntries(seed int64, n int) []Command {
	g := &gen{rnd: rand.New(rand.NewSource(seed)), now: t0, inc: map[string]uint64{}, batchInc: map[string]uint64{},
		batchSeq: map[string]uint64{}, renewIdx: map[string]uint64{}, reopen: map[string]bool{}, opened: map[string]bool{},
		nonce: map[string]uint64{}}
	for _, o := range genOwners {
		g.inc[o] = 1
	}
	out := make([]Command, n)
	for i := range out {
		out[i] = g.entry()
	}
	return out
}

// reads gathers every read the registry offers, at several read times.
func reads(r *Registry) map[string]any {
	out := map[string]any{}
	names := append([]string{"*", "nope"}, genTopics...)
	for _, d := range []time.Duration{0, time.Hour, 24 * time.Hour} {
		f := Filter{Now: time.Unix(0, t0).Add(d), InactiveTimeout: 10 * time.Minute, TombstoneLifetime: tombLife}
		for _, name := range names {
			ch, ps, found := r.Lookup(name, f)
			out[fmt.Sprintf("lookup %s %v", name, d)] = []any{ch, ps, found}
		}
		out[fmt.Sprintf("nodes %v", d)] = r.Nodes(f)
	}
	for _, name := range names {
		out["channels "+name] = r.Channels(name)
	}
	out["topics"] = r.Topics()
	out["debug"] = r.Debug()
	out["owners"] = r.Owners()
	out["members"] = r.Members()
	out["stats"] = r.Stats()
	return out
}

func diffReads(t *testing.T, what string, a, b map[string]any) {
	t.Helper()
	for k, va := range a {
		if vb := b[k]; !reflect.DeepEqual(va, vb) {
			t.Errorf("%s: %s differs:\n\t%+v\n\t%+v", what, k, va, vb)
		}
	}
}

// TestDeterminism applies the same random log to two state machines and
// compares their snapshots (byte for byte), results and reads; then restores
// a third from a snapshot, compares again, and keeps applying to both.
func TestDeterminism(t *testing.T) {
	// The random logs give a key at most a dozen producers; with the switch
	// moved to 2 they take smallMap's map form too.
	for _, max := range []int{smallMax, 2} {
		t.Run(fmt.Sprint("smallMax=", max), func(t *testing.T) {
			setSmallMax(t, max)
			testDeterminism(t)
		})
	}
}

func testDeterminism(t *testing.T) {
	const seeds, entries = 24, 600
	for seed := int64(1); seed <= seeds; seed++ {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			log := randomEntries(seed, 2*entries)
			a, b := New(), New()
			for i, c := range log[:entries] {
				l := &raft.Log{Index: uint64(i + 1), Data: enc(c)}
				ra, rb := a.Apply(l), b.Apply(l)
				if !reflect.DeepEqual(ra, rb) {
					t.Fatalf("entry %d (%v): results differ: %#v vs %#v", i+1, c.Op, ra, rb)
				}
				if i%50 == 0 {
					checkInvariants(t, a.Registry())
				}
			}
			checkInvariants(t, a.Registry())
			sa, sb := snapshotBytes(t, a), snapshotBytes(t, b)
			if !bytes.Equal(sa, sb) {
				t.Fatalf("snapshots of the same log differ (%d vs %d bytes)", len(sa), len(sb))
			}
			if again := snapshotBytes(t, a); !bytes.Equal(sa, again) {
				t.Fatal("two snapshots of one unchanged state differ")
			}
			diffReads(t, "same log", reads(a.Registry()), reads(b.Registry()))

			c := restored(t, sa)
			checkInvariants(t, c.Registry())
			if sc := snapshotBytes(t, c); !bytes.Equal(sa, sc) {
				t.Fatalf("snapshot -> restore -> snapshot changed the bytes (%d vs %d)", len(sa), len(sc))
			}
			diffReads(t, "restored", reads(a.Registry()), reads(c.Registry()))

			// The restored machine must keep evolving exactly like the original.
			for i, cmd := range log[entries:] {
				l := &raft.Log{Index: uint64(entries + i + 1), Data: enc(cmd)}
				ra, rc := a.Apply(l), c.Apply(l)
				if !reflect.DeepEqual(ra, rc) {
					t.Fatalf("entry %d after restore: results differ: %#v vs %#v", entries+i+1, ra, rc)
				}
			}
			checkInvariants(t, c.Registry())
			if sa, sc := snapshotBytes(t, a), snapshotBytes(t, c); !bytes.Equal(sa, sc) {
				t.Fatal("original and restored machines diverged after the same further log")
			}
			diffReads(t, "after restore and more log", reads(a.Registry()), reads(c.Registry()))
		})
	}
}

// TestRandomLogIsNotTrivial guards the generator: the random logs must reach
// states with sessions, producers, channels and tombstones, or the
// determinism test proves little. It samples the state along the log.
func TestRandomLogIsNotTrivial(t *testing.T) {
	var samples, sessions, producers, channels, tombstoned, orphans int
	var duplicates int
	for seed := int64(1); seed <= 24; seed++ {
		f := New()
		for i, c := range randomEntries(seed, 600) {
			if c.Op == OpBatch && isDuplicate(f.Registry(), c) {
				duplicates++
			}
			f.Apply(&raft.Log{Index: uint64(i + 1), Data: enc(c)})
			if i%25 != 24 {
				continue
			}
			samples++
			st := f.Registry().Stats()
			sessions += min(st.Sessions, 1)
			producers += min(st.Producers, 1)
			channels += min(st.Channels, 1)
			orphans += min(st.Orphans, 1)
			n := 0
			for _, ps := range f.Registry().Debug() {
				for _, p := range ps {
					if p.Tombstoned {
						n++
					}
				}
			}
			tombstoned += min(n, 1)
		}
	}
	t.Logf("%d samples: with sessions %d, producers %d, channels %d, tombstones %d, orphans %d; duplicate batches %d",
		samples, sessions, producers, channels, tombstoned, orphans, duplicates)
	if sessions < samples/3 || producers < samples/3 || channels < samples/3 || tombstoned < samples/10 || orphans < samples/10 || duplicates == 0 {
		t.Error("random logs reach too little state")
	}
}

// isDuplicate reports whether a batch about to be applied will be dropped:
// the origin's mark already covers it.
func isDuplicate(r *Registry, c Command) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	m := r.batches[c.Session.Owner]
	return m.inc > c.Session.Incarnation || (m.inc == c.Session.Incarnation && m.seq >= c.BatchSeq)
}
