package fsm

import (
	"math"
	"unsafe"
)

// MemoBudget bounds the bytes all remembered answers hold together. Beyond
// it answers are still correct, only computed per read. 64 MiB keeps the
// encoded /lookup answers of about 40,000 topics of ten producers.
const MemoBudget = 64 << 20

// A reader may remember what it derived from one topic's Lookup answer (the
// HTTP layer keeps the encoded response) and reuse it while it still holds:
// until anything Lookup shows for the topic changes, and only while the
// reader's clock stays in the window where no producer crosses the
// inactivity or tombstone boundary. Apply only drops memos (see changed and
// touched), and what it replicates never depends on them, so the state
// machine stays deterministic.

// Stamp identifies the state and clock window of one Lookup answer. The zero
// Stamp (wildcard or missing topic) cannot be remembered.
type Stamp struct {
	topic    *topic
	version  uint64
	from     int64 // the answer holds for from <= now < until (Unix ns)
	until    int64
	inactive int64 // the filter's durations, which must match on recall
	lifetime int64
}

// memo is a remembered answer: the window it holds in, followed in the same
// allocation by the body. Recall reads both for every /lookup, so they share
// one allocation, where the body's first bytes share the header's cache line
// and the rest follows it in memory; and the allocation holds no pointers, so
// the collector never scans it. newMemo is the only way to make one.
type memo struct {
	from, until        int64 // as in Stamp
	inactive, lifetime int64
	size               int64 // the body's length
}

const memoHeader = unsafe.Sizeof(memo{})

// newMemo copies body behind a header holding s's window. The allocation is
// a []uint64, so the header is aligned whatever the allocator does, and it
// is at least a byte longer than what it holds, so that body's pointer stays
// inside it even for an empty body.
func newMemo(s Stamp, body []byte) *memo {
	words := make([]uint64, (int(memoHeader)+len(body))/8+1)
	m := (*memo)(unsafe.Pointer(&words[0]))
	*m = memo{from: s.from, until: s.until, inactive: s.inactive, lifetime: s.lifetime, size: int64(len(body))}
	copy(m.body(), body)
	return m
}

// body is the remembered answer; callers must not modify it.
func (m *memo) body() []byte {
	return unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(m), memoHeader)), m.size)
}

// LookupStamped is Lookup plus the Stamp under which a derivation of the
// answer may be remembered.
func (r *Registry) LookupStamped(name string, f Filter) (channels []string, producers []PeerInfo, found bool, s Stamp) {
	if name == "*" {
		channels, producers, found = r.Lookup(name, f)
		return channels, producers, found, Stamp{}
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	t := r.topics[name]
	if t == nil || !t.hasKey {
		return []string{}, []PeerInfo{}, false, Stamp{}
	}
	channels = topicChannels(t)
	var m merger
	s = Stamp{topic: t, version: t.version, from: math.MinInt64, until: math.MaxInt64,
		inactive: int64(f.InactiveTimeout), lifetime: int64(f.TombstoneLifetime)}
	m.addTopic(t, f, &s)
	return channels, m.peers(), true, s
}

// Remember keeps a copy of body for the answer stamped s, so Recall can
// return it. It does nothing when the topic changed since, or when the
// budget is spent.
func (r *Registry) Remember(s Stamp, body []byte) {
	t := s.topic
	if t == nil {
		return
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.topics[t.name] != t || t.version != s.version {
		return
	}
	size := int64(len(body))
	if r.memoBytes.Add(size) > MemoBudget {
		r.memoBytes.Add(-size)
		return
	}
	if old := t.memo.Swap(newMemo(s, body)); old != nil {
		r.memoBytes.Add(-old.size)
	}
}

// Recall returns the body remembered for topic if it still holds for f; the
// caller must not modify it.
func (r *Registry) Recall(name string, f Filter) ([]byte, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	t := r.topics[name]
	if t == nil {
		return nil, false
	}
	m := t.memo.Load()
	if m == nil {
		return nil, false
	}
	now := f.Now.UnixNano()
	if now < m.from || now >= m.until || m.inactive != int64(f.InactiveTimeout) || m.lifetime != int64(f.TombstoneLifetime) {
		return nil, false
	}
	return m.body(), true
}

// MemoBytes reports the bytes remembered answers hold together.
func (r *Registry) MemoBytes() int64 { return r.memoBytes.Load() }

// changed records, under the write lock, that what Lookup shows for t may
// have changed: a stamp taken before no longer matches, and the memo goes.
func (r *Registry) changed(t *topic) {
	t.version++
	r.dropMemo(t)
}

// dropMemo forgets t's remembered answer, if any, and its bytes.
func (r *Registry) dropMemo(t *topic) {
	if old := t.memo.Swap(nil); old != nil {
		r.memoBytes.Add(-old.size)
	}
}

// touched records, under the write lock, that a producer of t last updated
// at before was updated again (a PING). An answer that showed the producer
// active for its whole window still holds: the producer stays active longer
// now, and nothing else an answer shows moved. So that memo is kept, and only
// one whose window reaches past the old inactivity boundary (it may have left
// the producer out) is dropped. Every nsqd PINGs every 15 s, and dropping
// every topic's memo on each PING meant that with ten producers per topic a
// memo lived about 1.5 s. The version moves either way: an answer derived
// before the PING might have left the producer out, so it is not remembered
// after it.
func (r *Registry) touched(t *topic, before int64) {
	t.version++
	m := t.memo.Load()
	if m == nil {
		return
	}
	// active holds while now < lastUpdate+timeout+1 (merger.addTopic).
	if m.until <= satAdd(satAdd(before, m.inactive), 1) {
		return
	}
	r.dropMemo(t)
}

// narrow shrinks the window around now to exclude boundary b: a predicate
// that holds for now < b (and not after), or the reverse.
func (s *Stamp) narrow(now, b int64) {
	if b > now {
		s.until = min(s.until, b)
	} else {
		s.from = max(s.from, b)
	}
}

// satAdd is a+b without wrapping around.
func satAdd(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	if b < 0 && a < math.MinInt64-b {
		return math.MinInt64
	}
	return a + b
}
