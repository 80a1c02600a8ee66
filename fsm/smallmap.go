package fsm

// smallMax is how many entries a smallMap keeps in a slice before it moves
// them to a map. Most topics and channels have a few producers (one per nsqd
// that has them) and most topics a few channels, and a Go map of ten
// pointers takes about three times the memory of a slice of them, all of it
// for the collector to scan; the registry holds three such sets per topic
// (with two channels). Past smallMax a map keeps every operation
// constant-time, however many producers or channels a key has. A variable
// only so that tests can move the switch (TestDeterminism).
var smallMax = 16

// smallMap is a map for the registry's per-key sets: a topic's and a
// channel's producers, a topic's channels. The zero value is empty.
// Iteration order is unspecified, as a map's.
type smallMap[K comparable, V any] struct {
	few  []smallEntry[K, V]
	many map[K]V // once it has held more than smallMax entries
}

// smallEntry puts v first: a zero-size last field (V = struct{}) would be
// padded to a word.
type smallEntry[K comparable, V any] struct {
	v V
	k K
}

func (m *smallMap[K, V]) get(k K) (V, bool) {
	if m.many != nil {
		v, ok := m.many[k]
		return v, ok
	}
	for i := range m.few {
		if m.few[i].k == k {
			return m.few[i].v, true
		}
	}
	var zero V
	return zero, false
}

func (m *smallMap[K, V]) has(k K) bool {
	_, ok := m.get(k)
	return ok
}

// set maps k to v and reports whether k was new.
func (m *smallMap[K, V]) set(k K, v V) bool {
	if m.many != nil {
		n := len(m.many)
		m.many[k] = v
		return len(m.many) > n
	}
	for i := range m.few {
		if m.few[i].k == k {
			m.few[i].v = v
			return false
		}
	}
	if len(m.few) < smallMax {
		m.few = append(m.few, smallEntry[K, V]{v, k})
		return true
	}
	m.many = make(map[K]V, 2*smallMax)
	for _, e := range m.few {
		m.many[e.k] = e.v
	}
	m.many[k] = v
	m.few = nil
	return true
}

// remove deletes k and reports whether it was there.
func (m *smallMap[K, V]) remove(k K) bool {
	if m.many != nil {
		n := len(m.many)
		delete(m.many, k)
		return len(m.many) < n
	}
	for i := range m.few {
		if m.few[i].k == k {
			last := len(m.few) - 1
			m.few[i] = m.few[last]
			m.few[last] = smallEntry[K, V]{}
			m.few = m.few[:last]
			return true
		}
	}
	return false
}

func (m *smallMap[K, V]) len() int {
	if m.many != nil {
		return len(m.many)
	}
	return len(m.few)
}

// all yields every entry once. The loop may remove the entry it was given,
// and nothing else: the slice is walked from its end, so the entry that
// remove moves into the hole is one already yielded.
func (m *smallMap[K, V]) all(yield func(K, V) bool) {
	if m.many != nil {
		for k, v := range m.many {
			if !yield(k, v) {
				return
			}
		}
		return
	}
	for i := len(m.few) - 1; i >= 0; i-- {
		if i >= len(m.few) {
			continue // the loop removed more than it was allowed to
		}
		if !yield(m.few[i].k, m.few[i].v) {
			return
		}
	}
}

// withCapacity returns an empty smallMap sized for n entries.
func withCapacity[K comparable, V any](n int) smallMap[K, V] {
	if n > smallMax {
		return smallMap[K, V]{many: make(map[K]V, n)}
	}
	return smallMap[K, V]{few: make([]smallEntry[K, V], 0, n)}
}
