package fsm

import (
	"errors"
	"fmt"
	"slices"
)

// Snapshot format: the magic "RLKS", a version byte, then sections in a fixed
// order, each a count followed by records sorted by key, so equal registries
// give equal bytes on every node. Sessions are referenced by id.
//
//	members:  id raft http tcp
//	owners:   id incarnation expired renewedAt renewIndex nonce
//	batches:  origin incarnation seq prevIncarnation prevSeq
//	sessions: session-id peer(remote hostname broadcast tcp http version) lastUpdate settled orphaned deadline
//	topics:   name hasKey producers[session-id tombstoned tombstonedAt] channels[name producers[session-id]]
//	trailer:  appliedIndex
//
// Version 1 lacks the owner's nonce, the batch mark of the previous
// incarnation, and the session's settled, orphaned and deadline: it restores as a registry of that era (renewal-opened
// incarnations, no orphans, every session settled).
const (
	snapshotMagic   = "RLKS"
	snapshotVersion = 2
)

// The snapshot's records, each with one field list for both directions. v
// is the format version being written or read.

func ownerFields(x fieldList, v byte, id *string, o *owner) {
	x.str(id)
	x.uvarint(&o.inc)
	x.bool(&o.expired)
	x.varint(&o.renewedAt)
	x.uvarint(&o.renewIndex)
	if v >= 2 {
		x.uvarint(&o.nonce)
	}
}

func batchMarkFields(x fieldList, v byte, origin *string, m *batchMark) {
	x.str(origin)
	x.uvarint(&m.inc)
	x.uvarint(&m.seq)
	if v >= 2 {
		x.uvarint(&m.prevInc)
		x.uvarint(&m.prevSeq)
	}
}

func sessionRecordFields(x fieldList, v byte, s *session) {
	sessionFields(x, &s.id)
	peerFields(x, &s.peer)
	x.varint(&s.lastUpdate)
	if v >= 2 {
		x.bool(&s.settled)
		x.bool(&s.orphaned)
		x.varint(&s.deadline)
	}
}

// topicRecord is a topic entry as the snapshot holds it: sessions by id.
type topicRecord struct {
	name      string
	hasKey    bool
	producers []producerRecord
	channels  []channelRecord
}

type producerRecord struct {
	session      SessionID
	tombstoned   bool
	tombstonedAt int64
}

type channelRecord struct {
	name      string
	producers []SessionID
}

func (t *topicRecord) fields(x fieldList) {
	x.str(&t.name)
	x.bool(&t.hasKey)
	list(x, &t.producers, 1, func(p *producerRecord) {
		sessionFields(x, &p.session)
		x.bool(&p.tombstoned)
		x.varint(&p.tombstonedAt)
	})
	list(x, &t.channels, 1, func(ch *channelRecord) {
		x.str(&ch.name)
		list(x, &ch.producers, 1, func(id *SessionID) { sessionFields(x, id) })
	})
}

// record returns t as the snapshot holds it, sorted.
func (t *topic) record() topicRecord {
	rec := topicRecord{name: t.name, hasKey: t.hasKey}
	for _, s := range sortedSessions(&t.producers) {
		p, _ := t.producers.get(s)
		rec.producers = append(rec.producers, producerRecord{s.id, p.tombstoned, p.tombstonedAt})
	}
	for _, name := range sortedNames(&t.channels) {
		ch, _ := t.channels.get(name)
		chRec := channelRecord{name: name}
		for _, s := range sortedSessions(&ch.producers) {
			chRec.producers = append(chRec.producers, s.id)
		}
		rec.channels = append(rec.channels, chRec)
	}
	return rec
}

func (r *Registry) encodeSnapshot() []byte {
	const v = snapshotVersion
	e := &encoder{b: make([]byte, 0, 1024)}
	e.b = append(e.b, snapshotMagic...)
	e.b = append(e.b, v)

	ids := sortedKeys(r.members)
	n := len(ids)
	e.count(&n, 1)
	for _, id := range ids {
		m := r.members[id]
		memberFields(e, &m)
	}

	ids = sortedKeys(r.owners)
	n = len(ids)
	e.count(&n, 1)
	for _, id := range ids {
		ownerFields(e, v, &id, r.owners[id])
	}

	ids = sortedKeys(r.batches)
	n = len(ids)
	e.count(&n, 1)
	for _, id := range ids {
		m := r.batches[id]
		batchMarkFields(e, v, &id, &m)
	}

	sids := make([]SessionID, 0, len(r.sessions))
	for id := range r.sessions {
		sids = append(sids, id)
	}
	slices.SortFunc(sids, compareSession)
	n = len(sids)
	e.count(&n, 1)
	for _, id := range sids {
		sessionRecordFields(e, v, r.sessions[id])
	}

	names := sortedKeys(r.topics)
	n = len(names)
	e.count(&n, 1)
	for _, name := range names {
		rec := r.topics[name].record()
		rec.fields(e)
	}
	e.uvarint(&r.appliedIndex)
	return e.b
}

func decodeSnapshot(b []byte) (*Registry, error) {
	if len(b) < len(snapshotMagic)+1 || string(b[:len(snapshotMagic)]) != snapshotMagic {
		return nil, errors.New("fsm: restore: not a raftlookupd snapshot")
	}
	v := b[len(snapshotMagic)]
	if v != 1 && v != snapshotVersion {
		return nil, fmt.Errorf("fsm: restore: snapshot version %d, this build reads 1 to %d", v, snapshotVersion)
	}
	d := &decoder{b: b[len(snapshotMagic)+1:]}
	r := NewRegistry()
	var n int

	for d.count(&n, 1); n > 0 && d.ok(); n-- {
		var m Member
		memberFields(d, &m)
		r.members[m.ID] = m
	}
	for d.count(&n, 1); n > 0 && d.ok(); n-- {
		var id string
		o := &owner{sessions: map[SessionID]*session{}}
		ownerFields(d, v, &id, o)
		r.owners[id] = o
	}
	for d.count(&n, 1); n > 0 && d.ok(); n-- {
		var origin string
		var m batchMark
		batchMarkFields(d, v, &origin, &m)
		r.batches[origin] = m
	}
	for d.count(&n, 1); n > 0 && d.ok(); n-- {
		s := &session{topics: map[*topic]struct{}{}, channels: map[*channel]struct{}{}, settled: true}
		sessionRecordFields(d, v, s)
		if d.ok() {
			if err := r.restoreSession(s); err != nil {
				d.fail(err)
			}
		}
	}
	for d.count(&n, 1); n > 0 && d.ok(); n-- {
		var rec topicRecord
		rec.fields(d)
		if d.ok() {
			if err := r.restoreTopic(&rec); err != nil {
				d.fail(err)
			}
		}
	}
	d.uvarint(&r.appliedIndex)
	if d.err == nil && len(d.b) != 0 {
		d.fail(fmt.Errorf("%d trailing bytes", len(d.b)))
	}
	if d.err != nil {
		return nil, fmt.Errorf("fsm: restore: corrupt snapshot: %w", d.err)
	}
	// Counted once the maps are built (a record naming a session twice
	// holds it once), rather than as they fill.
	r.counts = r.recount()
	return r, nil
}

// restoreSession indexes a session read from a snapshot, after checking it
// against its owner.
func (r *Registry) restoreSession(s *session) error {
	o := r.owners[s.id.Owner]
	switch {
	case o == nil:
		return fmt.Errorf("session %s has no owner", s.id)
	case r.sessions[s.id] != nil:
		return fmt.Errorf("session %s twice", s.id)
	case !s.orphaned && s.deadline != 0:
		return fmt.Errorf("live session %s has a deadline", s.id)
	case !s.orphaned && (o.inc != s.id.Incarnation || o.expired):
		return fmt.Errorf("live session %s of a dead incarnation", s.id)
	case s.orphaned:
		r.sessions[s.id] = s
		r.indexOrphan(s)
	default:
		r.addLive(s, o)
	}
	return nil
}

// restoreTopic rebuilds a topic entry, resolving its sessions. Its own maps
// are made at their final size. decodeSnapshot counts the registry after.
func (r *Registry) restoreTopic(rec *topicRecord) error {
	t := r.topics[rec.name]
	if t == nil {
		t = &topic{name: rec.name, producers: withCapacity[*session, producer](len(rec.producers)),
			channels: withCapacity[string, *channel](len(rec.channels))}
		r.topics[rec.name] = t
	}
	t.hasKey = rec.hasKey
	for _, p := range rec.producers {
		s := r.sessions[p.session]
		if s == nil {
			return fmt.Errorf("unknown session %s", p.session)
		}
		t.producers.set(s, producer{tombstoned: p.tombstoned, tombstonedAt: p.tombstonedAt})
		s.topics[t] = struct{}{}
	}
	for _, chRec := range rec.channels {
		ch := r.ensureChannel(t, chRec.name)
		if ch.producers.len() == 0 {
			ch.producers = withCapacity[*session, struct{}](len(chRec.producers))
		}
		for _, id := range chRec.producers {
			s := r.sessions[id]
			if s == nil {
				return fmt.Errorf("unknown session %s", id)
			}
			ch.producers.set(s, struct{}{})
			s.channels[ch] = struct{}{}
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// sortedNames returns m's keys in order.
func sortedNames[V any](m *smallMap[string, V]) []string {
	out := make([]string, 0, m.len())
	for k := range m.all {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func sortedSessions[V any](m *smallMap[*session, V]) []*session {
	out := make([]*session, 0, m.len())
	for s := range m.all {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *session) int { return compareSession(a.id, b.id) })
	return out
}
