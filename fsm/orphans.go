package fsm

import (
	"math"
	"slices"
)

// Orphans: nsqlookupd drops a producer when its connection closes, because
// there the connection is the nsqd. Here a connection also closes when the
// lookupd node that owns it goes away (drain, restart, lapsed lease) while
// the nsqd lives on and re-dials within a heartbeat. Such sessions become
// orphans: still listed, until a deadline or until a live session of the
// same producer identity has re-registered (its first replicated PING).

// acceptBatch decides whether a batch applies, and records it if so.
func (r *Registry) acceptBatch(c *Command) batchVerdict {
	origin, inc := c.Session.Owner, c.Session.Incarnation
	mark, seen := r.batches[origin]
	if o := r.owners[origin]; o != nil && o.nonce != 0 {
		// An incarnation the cluster numbered: only batches of the live
		// one apply, each once. A late batch of an earlier process, or of
		// an incarnation that was orphaned, changes nothing.
		if seen && ((mark.inc == inc && c.BatchSeq <= mark.seq) || (mark.prevInc == inc && c.BatchSeq <= mark.prevSeq)) {
			return batchDuplicate
		}
		if inc != o.inc || o.expired {
			return batchStale
		}
	} else if seen && (inc < mark.inc || (inc == mark.inc && c.BatchSeq <= mark.seq)) {
		// The rule of renewal-opened (wall-clock) incarnations: a duplicate,
		// or a late batch of an older incarnation.
		return batchDuplicate
	}
	if mark.inc != inc {
		// Renewal-opened incarnations (old logs) keep no previous mark.
		mark = batchMark{}
	}
	mark.inc, mark.seq = inc, c.BatchSeq
	r.batches[origin] = mark
	return batchApply
}

type batchVerdict int

const (
	batchApply     batchVerdict = iota
	batchDuplicate              // delivered again by a retry: applied once already
	batchStale                  // of an incarnation that is not the owner's live one
)

// openIncarnation starts an owner's next incarnation, numbered by index,
// and returns the incarnation c's nonce opened.
func (r *Registry) openIncarnation(index uint64, c *Command) Opened {
	id := c.Session.Owner
	o := r.owners[id]
	switch {
	case o == nil:
		o = &owner{sessions: map[SessionID]*session{}}
		r.owners[id] = o
	case o.nonce == c.Nonce:
		return Opened(o.inc) // the same open, committed again by a retry
	case !o.expired:
		// The previous process ended without a word (killed, or its
		// lease has not lapsed yet): its nsqds are probably alive.
		r.orphanSessions(o, addSat(c.Time, c.Grace))
	}
	o.inc, o.nonce, o.expired = index, c.Nonce, false
	o.renewedAt, o.renewIndex = c.Time, index
	prev := r.batches[id]
	r.batches[id] = batchMark{inc: index, prevInc: prev.inc, prevSeq: prev.seq}
	return Opened(index)
}

// orphanSessions makes every live session of o an orphan until deadline.
// All of them are orphaned before any is superseded, so the result does not
// depend on the order of o's sessions.
func (r *Registry) orphanSessions(o *owner, deadline int64) {
	if len(o.sessions) == 0 {
		return
	}
	orphaned := make([]*session, 0, len(o.sessions))
	for _, s := range o.sessions {
		if s.settled {
			r.unsettle(s)
		}
		s.orphaned, s.deadline = true, deadline
		r.indexOrphan(s)
		orphaned = append(orphaned, s)
	}
	o.sessions = map[SessionID]*session{}
	for _, s := range orphaned {
		if r.settled[s.peer.Identity()] > 0 {
			r.closeSession(s) // a settled live copy of this nsqd exists
		}
	}
}

// addLive indexes a new live session of o.
func (r *Registry) addLive(s *session, o *owner) {
	r.sessions[s.id] = s
	o.sessions[s.id] = s
	if s.settled {
		r.settled[s.peer.Identity()]++
	}
}

// settle records a live session's first replicated PING: by then nsqd has
// re-sent its REGISTERs, so the orphans of its identity are redundant.
func (r *Registry) settle(s *session) {
	s.settled = true
	id := s.peer.Identity()
	r.settled[id]++
	r.dropOrphansOf(id)
}

func (r *Registry) unsettle(s *session) {
	id := s.peer.Identity()
	if r.settled[id]--; r.settled[id] <= 0 {
		delete(r.settled, id)
	}
}

func (r *Registry) indexOrphan(s *session) {
	addToSet(r.orphans, s.deadline, s)
	addToSet(r.orphansOf, s.peer.Identity(), s)
}

func (r *Registry) unindexOrphan(s *session) {
	removeFromSet(r.orphans, s.deadline, s)
	removeFromSet(r.orphansOf, s.peer.Identity(), s)
}

// dropOrphansOf removes every orphan with this identity.
func (r *Registry) dropOrphansOf(id Identity) {
	for s := range r.orphansOf[id] {
		r.closeSession(s)
	}
}

func addToSet[K comparable](m map[K]map[*session]struct{}, k K, s *session) {
	set := m[k]
	if set == nil {
		set = map[*session]struct{}{}
		m[k] = set
	}
	set[s] = struct{}{}
}

func removeFromSet[K comparable](m map[K]map[*session]struct{}, k K, s *session) {
	delete(m[k], s)
	if len(m[k]) == 0 {
		delete(m, k)
	}
}

// expireOrphans removes the orphans whose deadline is at or before now. It
// visits deadlines (one per orphaning), not sessions.
func (r *Registry) expireOrphans(now int64) {
	var due []int64
	for d := range r.orphans {
		if d <= now {
			due = append(due, d)
		}
	}
	slices.Sort(due)
	for _, d := range due {
		for s := range r.orphans[d] {
			r.closeSession(s)
		}
	}
}

// addSat adds without wrapping around: a huge grace means "never", not a
// deadline in the past.
func addSat(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// NextOrphanDeadline returns the earliest deadline (ns) of any orphan, and
// false when there is none. Its cost is the number of distinct deadlines.
func (r *Registry) NextOrphanDeadline() (int64, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var next int64
	found := false
	for d := range r.orphans {
		if !found || d < next {
			next, found = d, true
		}
	}
	return next, found
}
