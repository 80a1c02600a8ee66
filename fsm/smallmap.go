package fsm

// smallMax is how many entries a smallMap keeps in a slice before it moves
// them to a map. Most topics and channels have a few producers (one per nsqd
// that has them), and a Go map of ten pointers takes about three times the
// memory of a slice of them, all of it for the collector to scan; the
// registry holds one per topic and channel. Past smallMax a map keeps every
// operation constant-time, however many producers a key has. A variable only
// so that tests can move the switch (TestDeterminism).
var smallMax = 16

// smallMap is a map from sessions to V for the registry's per-key producer
// sets. The zero value is empty. Iteration order is unspecified, as a map's.
type smallMap[V any] struct {
	few  []smallEntry[V]
	many map[*session]V // once it has held more than smallMax entries
}

// smallEntry puts v first: a zero-size last field (V = struct{}) would be
// padded to a word.
type smallEntry[V any] struct {
	v V
	s *session
}

func (m *smallMap[V]) get(s *session) (V, bool) {
	if m.many != nil {
		v, ok := m.many[s]
		return v, ok
	}
	for i := range m.few {
		if m.few[i].s == s {
			return m.few[i].v, true
		}
	}
	var zero V
	return zero, false
}

func (m *smallMap[V]) has(s *session) bool {
	_, ok := m.get(s)
	return ok
}

// set maps s to v and reports whether s was new.
func (m *smallMap[V]) set(s *session, v V) bool {
	if m.many != nil {
		n := len(m.many)
		m.many[s] = v
		return len(m.many) > n
	}
	for i := range m.few {
		if m.few[i].s == s {
			m.few[i].v = v
			return false
		}
	}
	if len(m.few) < smallMax {
		m.few = append(m.few, smallEntry[V]{v, s})
		return true
	}
	m.many = make(map[*session]V, 2*smallMax)
	for _, e := range m.few {
		m.many[e.s] = e.v
	}
	m.many[s] = v
	m.few = nil
	return true
}

// remove deletes s and reports whether it was there.
func (m *smallMap[V]) remove(s *session) bool {
	if m.many != nil {
		n := len(m.many)
		delete(m.many, s)
		return len(m.many) < n
	}
	for i := range m.few {
		if m.few[i].s == s {
			last := len(m.few) - 1
			m.few[i] = m.few[last]
			m.few[last] = smallEntry[V]{}
			m.few = m.few[:last]
			return true
		}
	}
	return false
}

func (m *smallMap[V]) len() int {
	if m.many != nil {
		return len(m.many)
	}
	return len(m.few)
}

// all yields every entry once. The loop may remove the entry it was given,
// and nothing else: the slice is walked from its end, so the entry that
// remove moves into the hole is one already yielded.
func (m *smallMap[V]) all(yield func(*session, V) bool) {
	if m.many != nil {
		for s, v := range m.many {
			if !yield(s, v) {
				return
			}
		}
		return
	}
	for i := len(m.few) - 1; i >= 0; i-- {
		if i >= len(m.few) {
			continue // the loop removed more than it was allowed to
		}
		if !yield(m.few[i].s, m.few[i].v) {
			return
		}
	}
}

// withCapacity returns an empty smallMap sized for n entries.
func withCapacity[V any](n int) smallMap[V] {
	if n > smallMax {
		return smallMap[V]{many: make(map[*session]V, n)}
	}
	return smallMap[V]{few: make([]smallEntry[V], 0, n)}
}
