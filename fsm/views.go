package fsm

import (
	"cmp"
	"slices"
)

// Reads take the read lock and return fresh copies: nothing returned aliases
// registry state. Lists are sorted so every node gives identical answers.

// Lookup answers /lookup: the topic's channels (all of them, with or without
// producers) and its producers that pass the filter, one per identity. found
// is false when the "topic:T:" key does not exist. "*" is nsqlookupd's
// wildcard: every topic's channels and producers.
func (r *Registry) Lookup(name string, f Filter) (channels []string, producers []PeerInfo, found bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if name == "*" {
		channels = []string{}
		var m merger
		for _, t := range r.topics {
			if t.hasKey {
				found = true
			}
			for ch := range t.channels.all {
				channels = append(channels, ch)
			}
			if t.hasKey {
				m.addTopic(t, f, nil)
			}
		}
		if !found {
			return []string{}, []PeerInfo{}, false
		}
		slices.Sort(channels)
		return channels, m.peers(), true
	}
	t := r.topics[name]
	if t == nil || !t.hasKey {
		return []string{}, []PeerInfo{}, false
	}
	var m merger
	m.addTopic(t, f, nil)
	return topicChannels(t), m.peers(), true
}

// topicChannels returns t's channel names, sorted.
func topicChannels(t *topic) []string {
	out := make([]string, 0, t.channels.len())
	for ch := range t.channels.all {
		out = append(out, ch)
	}
	slices.Sort(out)
	return out
}

// Topics answers /topics: every topic key, producers or not.
func (r *Registry) Topics() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.topics))
	for name, t := range r.topics {
		if t.hasKey {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// Channels answers /channels: the channel keys of a topic ("*": of all
// topics, duplicates kept as nsqlookupd does).
func (r *Registry) Channels(name string) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := []string{}
	if name == "*" {
		for _, t := range r.topics {
			for ch := range t.channels.all {
				out = append(out, ch)
			}
		}
	} else if t := r.topics[name]; t != nil {
		for ch := range t.channels.all {
			out = append(out, ch)
		}
	}
	slices.Sort(out)
	return out
}

// Nodes answers /nodes: one entry per producer identity with at least one
// active session (inactivity only; tombstoned producers stay listed). Topics
// are those any active session of the identity registered; a topic counts as
// tombstoned when every such session's record of it is tombstoned within the
// lifetime, i.e. when /lookup hides the identity for that topic.
func (r *Registry) Nodes(f Filter) []NodesEntry {
	r.mu.RLock()
	defer r.mu.RUnlock()
	now := f.Now.UnixNano()
	type acc struct {
		rep    *session
		topics map[string]bool // topic -> tombstoned for every session so far
	}
	byID := map[Identity]*acc{}
	for _, s := range r.sessions {
		if !active(s, now, f) {
			continue
		}
		a := byID[s.peer.Identity()]
		if a == nil {
			a = &acc{rep: s, topics: map[string]bool{}}
			byID[s.peer.Identity()] = a
		} else if lessSession(s.id, a.rep.id) {
			a.rep = s
		}
		for t := range s.topics {
			p, _ := t.producers.get(s)
			tomb := tombstoned(p, now, f)
			if prev, ok := a.topics[t.name]; ok {
				tomb = tomb && prev
			}
			a.topics[t.name] = tomb
		}
	}
	out := make([]NodesEntry, 0, len(byID))
	for _, a := range byID {
		n := NodesEntry{PeerInfo: a.rep.peer, Topics: make([]string, 0, len(a.topics)), Tombstones: make([]bool, 0, len(a.topics))}
		for name := range a.topics {
			n.Topics = append(n.Topics, name)
		}
		slices.Sort(n.Topics)
		for _, name := range n.Topics {
			n.Tombstones = append(n.Tombstones, a.topics[name])
		}
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b NodesEntry) int { return compareIdentity(a.Identity(), b.Identity()) })
	return out
}

// Debug answers /debug: every key with at least one producer, raw and
// unfiltered, one record per session. Keys are "category:key:subkey".
func (r *Registry) Debug() map[string][]DebugProducer {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := map[string][]DebugProducer{}
	for _, s := range r.sessions {
		out["client::"] = append(out["client::"], debugProducer(s, nil))
		for t := range s.topics {
			k := "topic:" + t.name + ":"
			p, _ := t.producers.get(s)
			out[k] = append(out[k], debugProducer(s, &p))
		}
		for ch := range s.channels {
			k := "channel:" + ch.topic.name + ":" + ch.name
			out[k] = append(out[k], debugProducer(s, nil))
		}
	}
	for _, list := range out {
		slices.SortFunc(list, func(a, b DebugProducer) int { return compareSession(a.Session, b.Session) })
	}
	return out
}

func debugProducer(s *session, p *producer) DebugProducer {
	d := DebugProducer{Session: s.id, PeerInfo: s.peer, LastUpdate: s.lastUpdate, Orphaned: s.orphaned, OrphanDeadline: s.deadline}
	if p != nil {
		d.Tombstoned, d.TombstonedAt = p.tombstoned, p.tombstonedAt
	}
	return d
}

// Members returns the advertised addresses of every node, sorted by id.
func (r *Registry) Members() []Member {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Member, 0, len(r.members))
	for _, m := range r.members {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Member returns one node's advertised addresses.
func (r *Registry) Member(id string) (Member, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	m, ok := r.members[id]
	return m, ok
}

// Owners returns every node's lease record, sorted by id.
func (r *Registry) Owners() []Owner {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Owner, 0, len(r.owners))
	for id, o := range r.owners {
		out = append(out, ownerView(id, o))
	}
	slices.SortFunc(out, func(a, b Owner) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Owner returns one node's lease record.
func (r *Registry) Owner(id string) (Owner, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	o := r.owners[id]
	if o == nil {
		return Owner{}, false
	}
	return ownerView(id, o), true
}

func ownerView(id string, o *owner) Owner {
	return Owner{ID: id, Incarnation: o.inc, Nonce: o.nonce, Expired: o.expired, RenewedAt: o.renewedAt, RenewIndex: o.renewIndex, Sessions: len(o.sessions)}
}

// SessionLastUpdate returns a session's replicated last-update time.
func (r *Registry) SessionLastUpdate(id SessionID) (int64, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s := r.sessions[id]
	if s == nil {
		return 0, false
	}
	return s.lastUpdate, true
}

// Stats counts what the registry holds, for metrics.
type Stats struct {
	// Sessions counts live sessions and orphans; Orphans the latter.
	Sessions, Orphans, Topics, Channels, Producers int
}

// Stats returns the registry's counts. Producers counts topic and channel
// producer records. Apply keeps the key and record counts as it goes, so
// this costs a pass over the orphan deadlines only.
func (r *Registry) Stats() Stats {
	r.mu.RLock()
	defer r.mu.RUnlock()
	st := Stats{Sessions: len(r.sessions), Topics: r.counts.topicKeys, Channels: r.counts.channels, Producers: r.counts.producers}
	for _, group := range r.orphans {
		st.Orphans += len(group)
	}
	return st
}

// recount counts what Stats reports by a pass over every topic: what the
// kept counts must always equal (tests check it after every command).
func (r *Registry) recount() counts {
	var c counts
	for _, t := range r.topics {
		if t.hasKey {
			c.topicKeys++
		}
		c.producers += t.producers.len()
		c.channels += t.channels.len()
		for _, ch := range t.channels.all {
			c.producers += ch.producers.len()
		}
	}
	return c
}

func active(s *session, now int64, f Filter) bool {
	return now-s.lastUpdate <= int64(f.InactiveTimeout)
}

func tombstoned(p producer, now int64, f Filter) bool {
	return p.tombstoned && now-p.tombstonedAt < int64(f.TombstoneLifetime)
}

// merger collects a topic's visible producers, one per identity; the session
// with the smallest id represents an identity, so answers are stable. Most
// identities have one session, so candidates are sorted and deduplicated
// rather than indexed by a map.
type merger struct {
	cands []*session
}

// addTopic adds t's visible producers. With a stamp, it also narrows the
// stamp's window to the instants where the same producers are visible.
func (m *merger) addTopic(t *topic, f Filter, s *Stamp) {
	now := f.Now.UnixNano()
	if m.cands == nil {
		m.cands = make([]*session, 0, t.producers.len())
	}
	for sess, p := range t.producers.all {
		if s != nil {
			// active holds while now < lastUpdate+timeout+1; the tombstone
			// hides the producer while now < tombstonedAt+lifetime.
			s.narrow(now, satAdd(satAdd(sess.lastUpdate, int64(f.InactiveTimeout)), 1))
			if p.tombstoned {
				s.narrow(now, satAdd(p.tombstonedAt, int64(f.TombstoneLifetime)))
			}
		}
		if !active(sess, now, f) || tombstoned(p, now, f) {
			continue
		}
		m.cands = append(m.cands, sess)
	}
}

func (m *merger) peers() []PeerInfo {
	slices.SortFunc(m.cands, func(a, b *session) int {
		if c := compareIdentity(a.peer.Identity(), b.peer.Identity()); c != 0 {
			return c
		}
		return compareSession(a.id, b.id)
	})
	out := make([]PeerInfo, 0, len(m.cands))
	for i, s := range m.cands {
		if i > 0 && m.cands[i-1].peer.Identity() == s.peer.Identity() {
			continue // a later session of an identity already listed
		}
		out = append(out, s.peer)
	}
	return out
}

func compareIdentity(a, b Identity) int {
	if c := cmp.Compare(a.BroadcastAddress, b.BroadcastAddress); c != 0 {
		return c
	}
	if c := cmp.Compare(a.TCPPort, b.TCPPort); c != 0 {
		return c
	}
	return cmp.Compare(a.HTTPPort, b.HTTPPort)
}

func compareSession(a, b SessionID) int {
	if c := cmp.Compare(a.Owner, b.Owner); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Incarnation, b.Incarnation); c != 0 {
		return c
	}
	return cmp.Compare(a.Seq, b.Seq)
}

func lessSession(a, b SessionID) bool { return compareSession(a, b) < 0 }

// String renders a node address for logs.
func (m Member) String() string {
	return m.ID + "@" + m.RaftAddress + " http=" + m.HTTPAddress + " tcp=" + m.TCPAddress
}

// AppliedIndex returns the log index of the last applied entry.
func (r *Registry) AppliedIndex() uint64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.appliedIndex
}

// LastBatch returns the incarnation and sequence number of the last batch
// applied from origin (ok false when none). The leader orders forwarded
// batches by it.
func (r *Registry) LastBatch(origin string) (inc, seq uint64, ok bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	m, ok := r.batches[origin]
	return m.inc, m.seq, ok
}
