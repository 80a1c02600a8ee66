package fsm

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// ephemeralSuffix marks topics and channels whose keys are deleted when their
// last producer unregisters them.
const ephemeralSuffix = "#ephemeral"

// Registry is the replicated registry: the state machine's data. Mutations
// happen only through Apply; reads return copies.
//
// Model (nsqlookupd's RegistrationDB, indexed): a topic entry holds the
// "topic:T:" key (which may be absent while channel keys remain, see
// docs/COMPATIBILITY.md#tcp-unregister) and its channel keys, each with the sessions that are its
// producers (smallMap: a slice while they are few). Sessions also index the
// keys that hold them, so closing one costs what it registered, never a
// scan.
type Registry struct {
	mu sync.RWMutex
	// *state is everything Apply changes and a snapshot holds. Restore
	// replaces it whole, under the lock, so no field can be left behind.
	*state
}

type state struct {
	members  map[string]Member
	owners   map[string]*owner
	sessions map[SessionID]*session
	topics   map[string]*topic
	// batches remembers the last batch applied per origin node, so a batch
	// delivered twice by a retry is applied once.
	batches map[string]batchMark
	// orphans indexes orphaned sessions by deadline and orphansOf by
	// producer identity, and settled counts the live settled sessions of
	// each identity: expiring, superseding and checking for a live copy
	// cost what they change, never a scan of sessions.
	orphans   map[int64]map[*session]struct{}
	orphansOf map[Identity]map[*session]struct{}
	settled   map[Identity]int
	// appliedIndex is the log index of the last applied entry.
	appliedIndex uint64
	// counts are the sizes Stats reports, kept by every change: the nodes
	// read them four times a second for their caps, and a pass over a
	// large registry each time cost a sixth of a follower's CPU under
	// /lookup load.
	counts counts
	// memoBytes is what the topics' memos hold together (memo.go).
	memoBytes atomic.Int64
}

type owner struct {
	inc uint64
	// nonce is the Nonce of the OpOpenIncarnation that opened inc; 0 for
	// an incarnation a lease renewal opened (logs written before
	// OpOpenIncarnation existed), which keeps that era's batch rule.
	nonce      uint64
	expired    bool
	renewedAt  int64
	renewIndex uint64
	// sessions holds the live sessions of inc, never orphans.
	sessions map[SessionID]*session
}

type session struct {
	id         SessionID
	peer       PeerInfo
	lastUpdate int64
	// settled: the session's first PING has been replicated, so nsqd has
	// sent all its REGISTERs; only then does it supersede orphans.
	settled bool
	// orphaned: the owner went away, not the nsqd; the session stays
	// listed until deadline (ns) unless a live one supersedes it.
	orphaned bool
	deadline int64
	topics   map[*topic]struct{} // its record is in the topic's producers
	channels map[*channel]struct{}
}

// producer is one session's record in one topic key: tombstones are per
// (topic, session) as in nsqlookupd.
type producer struct {
	tombstoned   bool
	tombstonedAt int64
}

type topic struct {
	name      string
	hasKey    bool
	producers smallMap[*session, producer]
	channels  smallMap[string, *channel]
	// version counts changes to what Lookup shows for the topic; memo is a
	// reader's remembered answer (memo.go). Neither is replicated state.
	version uint64
	memo    atomic.Pointer[memo]
}

type channel struct {
	topic     *topic
	name      string
	producers smallMap[*session, struct{}]
}

// counts are the registry's key and producer-record counts (see Stats).
type counts struct {
	topicKeys, channels, producers int
}

type batchMark struct {
	inc uint64
	seq uint64
	// prevInc and prevSeq are the last batch applied under the origin's
	// previous incarnation: a retry of it that arrives after the next
	// incarnation opened is a duplicate (it did apply), not a stale batch
	// (which did not), so its waiter is never told to send it again.
	prevInc uint64
	prevSeq uint64
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{state: &state{
		members:   map[string]Member{},
		owners:    map[string]*owner{},
		sessions:  map[SessionID]*session{},
		topics:    map[string]*topic{},
		batches:   map[string]batchMark{},
		orphans:   map[int64]map[*session]struct{}{},
		orphansOf: map[Identity]map[*session]struct{}{},
		settled:   map[Identity]int{},
	}}
}

func isEphemeral(name string) bool { return strings.HasSuffix(name, ephemeralSuffix) }

// apply mutates the registry for one command; the caller holds mu. index is
// the log index of the entry. It returns the command's result: nil or a
// sentinel error such as ErrChannelNotFound. Batches return []error.
func (r *Registry) apply(index uint64, c *Command) any {
	switch c.Op {
	case OpRegister, OpUnregister, OpCreateTopic, OpCreateChannel, OpDeleteChannel, OpTombstone:
		// Whatever the command does to the topic, answers taken before it
		// no longer hold. Commands for other topics leave this one's alone.
		if t := r.topics[c.Topic]; t != nil {
			r.changed(t)
		}
	}
	switch c.Op {
	case OpBatch:
		results := make([]error, len(c.Batch))
		switch r.acceptBatch(c) {
		case batchDuplicate:
			// Applied before: its results went to the first delivery,
			// which the sender may have lost. Say so, rather than claim
			// success for a command whose own result (a channel delete's
			// 404) is not known here.
			for i := range results {
				results[i] = ErrDuplicateBatch
			}
			return results
		case batchStale:
			// Its incarnation is over: nothing of it applies, and whoever
			// waits on it must not take silence for success.
			for i := range results {
				results[i] = ErrStaleIncarnation
			}
			return results
		}
		for i := range c.Batch {
			if c.Batch[i].Op == OpOpenIncarnation {
				continue // numbered by its own entry's index, so never batched
			}
			if err, ok := r.apply(index, &c.Batch[i]).(error); ok {
				results[i] = err
			}
		}
		return results
	case OpOpenSession:
		r.openSession(c.Session, c.Peer, c.Time)
	case OpRegister:
		if s := r.live(c.Session); s != nil {
			r.register(s, c.Topic, c.Channel)
		}
	case OpUnregister:
		if s := r.live(c.Session); s != nil {
			r.unregister(s, c.Topic, c.Channel)
		}
	case OpCloseSession:
		if s := r.live(c.Session); s != nil {
			// The nsqd hung up, so copies of it left by a lookupd that
			// went away are gone too.
			r.closeSession(s)
			r.dropOrphansOf(s.peer.Identity())
		}
	case OpOpenIncarnation:
		return r.openIncarnation(index, c)
	case OpOrphanOwner, OpOrphanLease:
		o := r.owners[c.Session.Owner]
		if o == nil || o.inc != c.Session.Incarnation || o.expired {
			break
		}
		if c.Op == OpOrphanLease && o.renewIndex != c.RenewIndex {
			break // renewed since the leader saw the lease lapse
		}
		r.orphanSessions(o, c.Time)
		o.expired = true
	case OpExpireOrphans:
		r.expireOrphans(c.Time)
	case OpRenewLease:
		r.renewLease(index, c)
	case OpExpireOwner, OpCloseOwner, OpExpireLease:
		o := r.owners[c.Session.Owner]
		if o == nil || o.inc != c.Session.Incarnation || o.expired {
			break
		}
		if c.Op == OpExpireLease && o.renewIndex != c.RenewIndex {
			break // renewed since the leader saw the lease lapse
		}
		r.dropSessions(o)
		o.expired = true
	case OpCreateTopic:
		r.setKey(r.ensureTopic(c.Topic), true)
	case OpDeleteTopic:
		r.deleteTopic(c.Topic)
	case OpCreateChannel:
		t := r.ensureTopic(c.Topic)
		r.ensureChannel(t, c.Channel)
		r.setKey(t, true)
	case OpDeleteChannel:
		t := r.topics[c.Topic]
		if t == nil {
			return ErrChannelNotFound
		}
		ch, ok := t.channels.get(c.Channel)
		if !ok {
			return ErrChannelNotFound
		}
		r.deleteChannel(ch)
	case OpTombstone:
		r.tombstone(c.Topic, c.Node, c.Time)
	case OpSetMember:
		r.members[c.Member.ID] = c.Member
	case OpRemoveMember:
		delete(r.members, c.Member.ID)
	}
	return nil
}

func (r *Registry) openSession(id SessionID, peer PeerInfo, now int64) {
	o := r.owners[id.Owner]
	if o == nil || o.inc != id.Incarnation || o.expired || r.sessions[id] != nil {
		// A session of a dead incarnation, or a duplicate: ignore.
		return
	}
	s := &session{
		id:         id,
		peer:       peer,
		lastUpdate: now,
		// Sessions of a renewal-opened incarnation count as settled from
		// the start: a snapshot of that era does not record first PINGs,
		// and replaying its log must give the state restoring it gives.
		settled:  o.nonce == 0,
		topics:   map[*topic]struct{}{},
		channels: map[*channel]struct{}{},
	}
	r.addLive(s, o)
}

// live returns a session that commands of its owner may still change: not
// an orphan, whose owner's incarnation ended.
func (r *Registry) live(id SessionID) *session {
	if s := r.sessions[id]; s != nil && !s.orphaned {
		return s
	}
	return nil
}

func (r *Registry) renewLease(index uint64, c *Command) {
	id, inc := c.Session.Owner, c.Session.Incarnation
	o := r.owners[id]
	switch {
	case o == nil:
		o = &owner{inc: inc, sessions: map[SessionID]*session{}}
		r.owners[id] = o
	case inc < o.inc || (inc == o.inc && o.expired):
		// A late renewal of an old or expired incarnation: the node must
		// start a new one, so this one stays dead.
		return
	case inc > o.inc:
		// The node restarted or recovered from expiry: its old sessions
		// belong to connections that no longer exist.
		r.dropSessions(o)
		o.inc, o.expired, o.nonce = inc, false, 0
	}
	o.renewedAt = c.Time
	o.renewIndex = index
	for _, t := range c.Touches {
		s := o.sessions[SessionID{id, inc, t.Seq}]
		if s == nil {
			continue
		}
		if t.LastUpdate > s.lastUpdate {
			before := s.lastUpdate
			s.lastUpdate = t.LastUpdate
			// A producer a reader saw as inactive may be active again.
			for tp := range s.topics {
				r.touched(tp, before)
			}
		}
		if !s.settled {
			r.settle(s)
		}
	}
}

func (r *Registry) dropSessions(o *owner) {
	for _, s := range o.sessions {
		r.closeSession(s)
	}
}

func (r *Registry) ensureTopic(name string) *topic {
	t := r.topics[name]
	if t == nil {
		t = &topic{name: name}
		r.topics[name] = t
	}
	return t
}

func (r *Registry) ensureChannel(t *topic, name string) *channel {
	ch, ok := t.channels.get(name)
	if !ok {
		ch = &channel{topic: t, name: name}
		t.channels.set(name, ch)
		r.counts.channels++
	}
	return ch
}

// setKey sets or clears t's "topic:T:" key.
func (r *Registry) setKey(t *topic, has bool) {
	switch {
	case has && !t.hasKey:
		r.counts.topicKeys++
	case !has && t.hasKey:
		r.counts.topicKeys--
	}
	t.hasKey = has
}

// addTopicProducer and the three below change producer records, and their
// count, together.
func (r *Registry) addTopicProducer(t *topic, s *session, p producer) {
	if t.producers.set(s, p) {
		r.counts.producers++
	}
	s.topics[t] = struct{}{}
}

func (r *Registry) removeTopicProducer(t *topic, s *session) {
	if t.producers.remove(s) {
		r.counts.producers--
	}
	delete(s.topics, t)
}

func (r *Registry) addChannelProducer(ch *channel, s *session) {
	if ch.producers.set(s, struct{}{}) {
		r.counts.producers++
	}
	s.channels[ch] = struct{}{}
}

func (r *Registry) removeChannelProducer(ch *channel, s *session) {
	if ch.producers.remove(s) {
		r.counts.producers--
	}
	delete(s.channels, ch)
}

// dropTopicIfEmpty forgets a topic entry that holds no key at all.
func (r *Registry) dropTopicIfEmpty(t *topic) {
	if !t.hasKey && t.channels.len() == 0 {
		r.changed(t)
		delete(r.topics, t.name)
	}
}

func (r *Registry) register(s *session, topicName, channelName string) {
	t := r.ensureTopic(topicName)
	if channelName != "" {
		r.addChannelProducer(r.ensureChannel(t, channelName), s)
	}
	r.setKey(t, true)
	if !t.producers.has(s) {
		// An existing record, tombstone included, is kept.
		r.addTopicProducer(t, s, producer{})
	}
}

func (r *Registry) unregister(s *session, topicName, channelName string) {
	t := r.topics[topicName]
	if t == nil {
		return
	}
	if channelName != "" {
		ch, ok := t.channels.get(channelName)
		if !ok {
			return
		}
		r.removeChannelProducer(ch, s)
		if ch.producers.len() == 0 && isEphemeral(channelName) {
			r.deleteChannel(ch)
		}
		return
	}
	for _, ch := range t.channels.all {
		r.removeChannelProducer(ch, s)
	}
	r.removeTopicProducer(t, s)
	if t.hasKey && t.producers.len() == 0 && isEphemeral(topicName) {
		// Only the topic key goes; its channel keys stay, as in nsqlookupd.
		r.setKey(t, false)
		r.dropTopicIfEmpty(t)
	}
}

// closeSession removes a session from every key that holds it. No key is
// deleted, not even an ephemeral one (docs/COMPATIBILITY.md#tcp-close).
func (r *Registry) closeSession(s *session) {
	for t := range s.topics {
		r.changed(t)
		r.removeTopicProducer(t, s)
	}
	for ch := range s.channels {
		r.removeChannelProducer(ch, s)
	}
	delete(r.sessions, s.id)
	if o := r.owners[s.id.Owner]; o != nil {
		delete(o.sessions, s.id)
	}
	if s.orphaned {
		r.unindexOrphan(s)
	} else if s.settled {
		r.unsettle(s)
	}
}

func (r *Registry) deleteChannel(ch *channel) {
	for s := range ch.producers.all {
		r.removeChannelProducer(ch, s)
	}
	ch.topic.channels.remove(ch.name)
	r.counts.channels--
	r.dropTopicIfEmpty(ch.topic)
}

func (r *Registry) deleteTopic(name string) {
	t := r.topics[name]
	if t == nil {
		return
	}
	for _, ch := range t.channels.all {
		for s := range ch.producers.all {
			r.removeChannelProducer(ch, s)
		}
		t.channels.remove(ch.name)
		r.counts.channels--
	}
	for s := range t.producers.all {
		r.removeTopicProducer(t, s)
	}
	r.setKey(t, false)
	r.changed(t)
	delete(r.topics, name)
}

func (r *Registry) tombstone(topicName, node string, at int64) {
	t := r.topics[topicName]
	if t == nil || !t.hasKey {
		return
	}
	for s := range t.producers.all {
		if nodeAddress(s.peer) == node {
			t.producers.set(s, producer{tombstoned: true, tombstonedAt: at})
		}
	}
}

// nodeAddress is the node string /topic/tombstone matches: a plain
// concatenation, without IPv6 brackets, as nsqlookupd does.
func nodeAddress(p PeerInfo) string {
	return p.BroadcastAddress + ":" + strconv.Itoa(p.HTTPPort)
}
