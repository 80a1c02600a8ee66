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
//	batches:  origin incarnation seq
//	sessions: session-id peer(remote hostname broadcast tcp http version) lastUpdate settled orphaned deadline
//	topics:   name hasKey producers[session-id tombstoned tombstonedAt] channels[name producers[session-id]]
//	trailer:  appliedIndex
//
// Version 1 lacks the owner's nonce and the session's settled, orphaned and
// deadline: it restores as a registry of that era (renewal-opened
// incarnations, no orphans, every session settled).
const (
	snapshotMagic   = "RLKS"
	snapshotVersion = 2
)

func (r *Registry) encodeSnapshot() []byte {
	e := &encoder{b: make([]byte, 0, 1024)}
	e.b = append(e.b, snapshotMagic...)
	e.byte(snapshotVersion)

	ids := sortedKeys(r.members)
	e.uvarint(uint64(len(ids)))
	for _, id := range ids {
		m := r.members[id]
		e.str(m.ID)
		e.str(m.RaftAddress)
		e.str(m.HTTPAddress)
		e.str(m.TCPAddress)
	}

	ids = sortedKeys(r.owners)
	e.uvarint(uint64(len(ids)))
	for _, id := range ids {
		o := r.owners[id]
		e.str(id)
		e.uvarint(o.inc)
		e.bool(o.expired)
		e.varint(o.renewedAt)
		e.uvarint(o.renewIndex)
		e.uvarint(o.nonce)
	}

	ids = sortedKeys(r.batches)
	e.uvarint(uint64(len(ids)))
	for _, id := range ids {
		b := r.batches[id]
		e.str(id)
		e.uvarint(b.inc)
		e.uvarint(b.seq)
	}

	sids := make([]SessionID, 0, len(r.sessions))
	for id := range r.sessions {
		sids = append(sids, id)
	}
	slices.SortFunc(sids, compareSession)
	e.uvarint(uint64(len(sids)))
	for _, id := range sids {
		s := r.sessions[id]
		e.session(id)
		e.str(s.peer.RemoteAddress)
		e.str(s.peer.Hostname)
		e.str(s.peer.BroadcastAddress)
		e.varint(int64(s.peer.TCPPort))
		e.varint(int64(s.peer.HTTPPort))
		e.str(s.peer.Version)
		e.varint(s.lastUpdate)
		e.bool(s.settled)
		e.bool(s.orphaned)
		e.varint(s.deadline)
	}

	names := sortedKeys(r.topics)
	e.uvarint(uint64(len(names)))
	for _, name := range names {
		t := r.topics[name]
		e.str(name)
		e.bool(t.hasKey)
		ps := sortedSessions(t.producers)
		e.uvarint(uint64(len(ps)))
		for _, s := range ps {
			p := t.producers[s]
			e.session(s.id)
			e.bool(p.tombstoned)
			e.varint(p.tombstonedAt)
		}
		chs := sortedKeys(t.channels)
		e.uvarint(uint64(len(chs)))
		for _, chName := range chs {
			ch := t.channels[chName]
			e.str(chName)
			cs := sortedSessions(ch.producers)
			e.uvarint(uint64(len(cs)))
			for _, s := range cs {
				e.session(s.id)
			}
		}
	}
	e.uvarint(r.appliedIndex)
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

	for n := d.count(); n > 0 && d.err == nil; n-- {
		m := Member{ID: d.str(), RaftAddress: d.str(), HTTPAddress: d.str(), TCPAddress: d.str()}
		r.members[m.ID] = m
	}
	for n := d.count(); n > 0 && d.err == nil; n-- {
		id := d.str()
		o := &owner{inc: d.uvarint(), expired: d.bool(), renewedAt: d.varint(), renewIndex: d.uvarint(), sessions: map[SessionID]*session{}}
		if v >= 2 {
			o.nonce = d.uvarint()
		}
		r.owners[id] = o
	}
	for n := d.count(); n > 0 && d.err == nil; n-- {
		id := d.str()
		r.batches[id] = batchMark{inc: d.uvarint(), seq: d.uvarint()}
	}
	for n := d.count(); n > 0 && d.err == nil; n-- {
		s := &session{id: d.session(), topics: map[*topic]*producer{}, channels: map[*channel]struct{}{}}
		s.peer = PeerInfo{RemoteAddress: d.str(), Hostname: d.str(), BroadcastAddress: d.str(), TCPPort: d.int(), HTTPPort: d.int(), Version: d.str()}
		s.lastUpdate = d.varint()
		s.settled = true
		if v >= 2 {
			s.settled, s.orphaned, s.deadline = d.bool(), d.bool(), d.varint()
		}
		o := r.owners[s.id.Owner]
		switch {
		case d.err != nil:
		case o == nil:
			d.fail(fmt.Errorf("session %s has no owner", s.id))
		case r.sessions[s.id] != nil:
			d.fail(fmt.Errorf("session %s twice", s.id))
		case !s.orphaned && s.deadline != 0:
			d.fail(fmt.Errorf("live session %s has a deadline", s.id))
		case !s.orphaned && (o.inc != s.id.Incarnation || o.expired):
			d.fail(fmt.Errorf("live session %s of a dead incarnation", s.id))
		case s.orphaned:
			r.addSession(s)
			group := r.orphans[s.deadline]
			if group == nil {
				group = map[*session]struct{}{}
				r.orphans[s.deadline] = group
			}
			group[s] = struct{}{}
		default:
			r.addSession(s)
			o.sessions[s.id] = s
		}
	}
	session := func() *session {
		id := d.session()
		s := r.sessions[id]
		if d.err == nil && s == nil {
			d.fail(fmt.Errorf("unknown session %s", id))
		}
		return s
	}
	for n := d.count(); n > 0 && d.err == nil; n-- {
		t := r.ensureTopic(d.str())
		t.hasKey = d.bool()
		for m := d.count(); m > 0 && d.err == nil; m-- {
			s := session()
			p := &producer{tombstoned: d.bool(), tombstonedAt: d.varint()}
			if d.err == nil {
				t.producers[s] = p
				s.topics[t] = p
			}
		}
		for m := d.count(); m > 0 && d.err == nil; m-- {
			ch := r.ensureChannel(t, d.str())
			for k := d.count(); k > 0 && d.err == nil; k-- {
				if s := session(); d.err == nil {
					ch.producers[s] = struct{}{}
					s.channels[ch] = struct{}{}
				}
			}
		}
	}
	r.appliedIndex = d.uvarint()
	if d.err == nil && len(d.b) != 0 {
		d.fail(fmt.Errorf("%d trailing bytes", len(d.b)))
	}
	if d.err != nil {
		return nil, fmt.Errorf("fsm: restore: corrupt snapshot: %w", d.err)
	}
	return r, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func sortedSessions[V any](m map[*session]V) []*session {
	out := make([]*session, 0, len(m))
	for s := range m {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *session) int { return compareSession(a.id, b.id) })
	return out
}
