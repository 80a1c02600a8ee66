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
// PROTOCOL.md §1.8) and its channel keys, each with the sessions that are its
// producers. Sessions also index the keys that hold them, so closing one costs
// what it registered, never a scan.
type Registry struct {
	mu       sync.RWMutex
	members  map[string]Member
	owners   map[string]*owner
	sessions map[SessionID]*session
	topics   map[string]*topic
	// batches remembers the last batch applied per origin node, so a batch
	// delivered twice by a retry is applied once.
	batches map[string]batchMark
	// appliedIndex is the log index of the last applied entry.
	appliedIndex uint64
	// memoBytes is what the topics' memos hold together (memo.go).
	memoBytes atomic.Int64
}

type owner struct {
	inc        uint64
	expired    bool
	renewedAt  int64
	renewIndex uint64
	sessions   map[SessionID]*session
}

type session struct {
	id         SessionID
	peer       PeerInfo
	lastUpdate int64
	topics     map[*topic]*producer
	channels   map[*channel]struct{}
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
	producers map[*session]*producer
	channels  map[string]*channel
	// version counts changes to what Lookup shows for the topic; memo is a
	// reader's remembered answer (memo.go). Neither is replicated state.
	version uint64
	memo    atomic.Pointer[memo]
}

type channel struct {
	topic     *topic
	name      string
	producers map[*session]struct{}
}

type batchMark struct {
	inc uint64
	seq uint64
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{
		members:  map[string]Member{},
		owners:   map[string]*owner{},
		sessions: map[SessionID]*session{},
		topics:   map[string]*topic{},
		batches:  map[string]batchMark{},
	}
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
		mark, seen := r.batches[c.Session.Owner]
		if seen && (c.Session.Incarnation < mark.inc || (c.Session.Incarnation == mark.inc && c.BatchSeq <= mark.seq)) {
			// A duplicate delivery, or a late batch of a process that has
			// since restarted (incarnations only grow): applied once, never.
			return make([]error, len(c.Batch))
		}
		r.batches[c.Session.Owner] = batchMark{c.Session.Incarnation, c.BatchSeq}
		results := make([]error, len(c.Batch))
		for i := range c.Batch {
			if err, ok := r.apply(index, &c.Batch[i]).(error); ok {
				results[i] = err
			}
		}
		return results
	case OpOpenSession:
		r.openSession(c.Session, c.Peer, c.Time)
	case OpRegister:
		if s := r.sessions[c.Session]; s != nil {
			r.register(s, c.Topic, c.Channel)
		}
	case OpUnregister:
		if s := r.sessions[c.Session]; s != nil {
			r.unregister(s, c.Topic, c.Channel)
		}
	case OpCloseSession:
		if s := r.sessions[c.Session]; s != nil {
			r.closeSession(s)
		}
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
		r.ensureTopic(c.Topic).hasKey = true
	case OpDeleteTopic:
		r.deleteTopic(c.Topic)
	case OpCreateChannel:
		t := r.ensureTopic(c.Topic)
		r.ensureChannel(t, c.Channel)
		t.hasKey = true
	case OpDeleteChannel:
		t := r.topics[c.Topic]
		if t == nil || t.channels[c.Channel] == nil {
			return ErrChannelNotFound
		}
		r.deleteChannel(t.channels[c.Channel])
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
		topics:     map[*topic]*producer{},
		channels:   map[*channel]struct{}{},
	}
	r.sessions[id] = s
	o.sessions[id] = s
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
		o.inc, o.expired = inc, false
	}
	o.renewedAt = c.Time
	o.renewIndex = index
	for _, t := range c.Touches {
		if s := o.sessions[SessionID{id, inc, t.Seq}]; s != nil && t.LastUpdate > s.lastUpdate {
			s.lastUpdate = t.LastUpdate
			// A producer a reader saw as inactive may be active again.
			for tp := range s.topics {
				r.changed(tp)
			}
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
		t = &topic{name: name, producers: map[*session]*producer{}, channels: map[string]*channel{}}
		r.topics[name] = t
	}
	return t
}

func (r *Registry) ensureChannel(t *topic, name string) *channel {
	ch := t.channels[name]
	if ch == nil {
		ch = &channel{topic: t, name: name, producers: map[*session]struct{}{}}
		t.channels[name] = ch
	}
	return ch
}

// dropTopicIfEmpty forgets a topic entry that holds no key at all.
func (r *Registry) dropTopicIfEmpty(t *topic) {
	if !t.hasKey && len(t.channels) == 0 {
		r.changed(t)
		delete(r.topics, t.name)
	}
}

func (r *Registry) register(s *session, topicName, channelName string) {
	t := r.ensureTopic(topicName)
	if channelName != "" {
		ch := r.ensureChannel(t, channelName)
		ch.producers[s] = struct{}{}
		s.channels[ch] = struct{}{}
	}
	t.hasKey = true
	if _, ok := t.producers[s]; !ok {
		// An existing record, tombstone included, is kept.
		p := &producer{}
		t.producers[s] = p
		s.topics[t] = p
	}
}

func (r *Registry) unregister(s *session, topicName, channelName string) {
	t := r.topics[topicName]
	if t == nil {
		return
	}
	if channelName != "" {
		ch := t.channels[channelName]
		if ch == nil {
			return
		}
		delete(ch.producers, s)
		delete(s.channels, ch)
		if len(ch.producers) == 0 && isEphemeral(channelName) {
			r.deleteChannel(ch)
		}
		return
	}
	for _, ch := range t.channels {
		delete(ch.producers, s)
		delete(s.channels, ch)
	}
	delete(t.producers, s)
	delete(s.topics, t)
	if t.hasKey && len(t.producers) == 0 && isEphemeral(topicName) {
		// Only the topic key goes; its channel keys stay, as in nsqlookupd.
		t.hasKey = false
		r.dropTopicIfEmpty(t)
	}
}

// closeSession removes a session from every key that holds it. No key is
// deleted, not even an ephemeral one (PROTOCOL.md §1.10).
func (r *Registry) closeSession(s *session) {
	for t := range s.topics {
		r.changed(t)
		delete(t.producers, s)
	}
	for ch := range s.channels {
		delete(ch.producers, s)
	}
	delete(r.sessions, s.id)
	if o := r.owners[s.id.Owner]; o != nil {
		delete(o.sessions, s.id)
	}
}

func (r *Registry) deleteChannel(ch *channel) {
	for s := range ch.producers {
		delete(s.channels, ch)
	}
	delete(ch.topic.channels, ch.name)
	r.dropTopicIfEmpty(ch.topic)
}

func (r *Registry) deleteTopic(name string) {
	t := r.topics[name]
	if t == nil {
		return
	}
	for _, ch := range t.channels {
		for s := range ch.producers {
			delete(s.channels, ch)
		}
	}
	for s := range t.producers {
		delete(s.topics, t)
	}
	r.changed(t)
	delete(r.topics, name)
}

func (r *Registry) tombstone(topicName, node string, at int64) {
	t := r.topics[topicName]
	if t == nil || !t.hasKey {
		return
	}
	for s, p := range t.producers {
		if nodeAddress(s.peer) == node {
			p.tombstoned, p.tombstonedAt = true, at
		}
	}
}

// nodeAddress is the node string /topic/tombstone matches: a plain
// concatenation, without IPv6 brackets, as nsqlookupd does.
func nodeAddress(p PeerInfo) string {
	return p.BroadcastAddress + ":" + strconv.Itoa(p.HTTPPort)
}
