package fsm

import (
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// render is what a reader derives from an answer in these tests: the whole
// answer, including which session represents each identity.
func render(channels []string, producers []PeerInfo, found bool) []byte {
	return fmt.Appendf(nil, "%v %v %+v", found, channels, producers)
}

func remember(r *Registry, name string, f Filter) []byte {
	ch, ps, found, s := r.LookupStamped(name, f)
	body := render(ch, ps, found)
	r.Remember(s, body)
	return body
}

// memoBytesHeld sums the bodies the topics hold, to check the budget's count.
func memoBytesHeld(r *Registry) int64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var n int64
	for _, t := range r.topics {
		if m := t.memo.Load(); m != nil {
			n += int64(len(m.body()))
		}
	}
	return n
}

// TestMemoNeverStale applies random command sequences (every op, stale
// incarnations, duplicate batches) and reads at random clock times around the
// commands' times. Whenever Recall returns a body, it must equal what a fresh
// Lookup at that instant would give: memos follow every change of state and
// every inactivity or tombstone boundary of the reader's clock.
func TestMemoNeverStale(t *testing.T) {
	hits := 0
	for seed := int64(1); seed <= 40; seed++ {
		h := newHarness(t)
		r := h.reg()
		rnd := rand.New(rand.NewSource(seed))
		var last int64 = t0
		filter := func() Filter {
			// Inactive timeout and tombstone lifetime near the gaps between
			// command times, so boundaries are crossed often, both ways.
			return Filter{Now: time.Unix(0, last+int64(rnd.Intn(int(90*time.Second)))-int64(30*time.Second)),
				InactiveTimeout: 40 * time.Second, TombstoneLifetime: 25 * time.Second}
		}
		for i, c := range randomEntries(seed, 300) {
			h.apply(c)
			if c.Time > 0 {
				last = max(last, c.Time)
			}
			for _, name := range append([]string{"*"}, genTopics...) {
				for range 3 {
					f := filter()
					if body, ok := r.Recall(name, f); ok {
						hits++
						if want := render(r.Lookup(name, f)); string(body) != string(want) {
							t.Fatalf("seed %d entry %d (%v): Recall(%q) at %d = %s, Lookup = %s", seed, i, c.Op, name, f.Now.UnixNano(), body, want)
						}
					}
					if rnd.Intn(2) == 0 {
						remember(r, name, filter())
					}
				}
			}
			if got, want := r.MemoBytes(), memoBytesHeld(r); got != want {
				t.Fatalf("seed %d entry %d: MemoBytes = %d, memos hold %d", seed, i, got, want)
			}
		}
		// A snapshot restore replaces every topic: nothing is recalled.
		data := snapshotBytes(t, h.f)
		if err := h.f.Restore(readCloser(data)); err != nil {
			t.Fatal(err)
		}
		for _, name := range genTopics {
			if _, ok := r.Recall(name, filter()); ok {
				t.Fatalf("seed %d: Recall(%q) after Restore", seed, name)
			}
		}
		if r.MemoBytes() != 0 {
			t.Fatalf("seed %d: MemoBytes = %d after Restore", seed, r.MemoBytes())
		}
	}
	if hits < 1000 {
		t.Fatalf("only %d recalls hit: the test does not exercise memos", hits)
	}
}

func TestMemo(t *testing.T) {
	a, b := SessionID{"n1", 1, 1}, SessionID{"n1", 1, 2}
	fresh := func(t *testing.T) *harness {
		h := newHarness(t)
		h.apply(setup(a, b)...)
		h.apply(register(a, "t", "c"), register(b, "t", ""), register(a, "other", ""))
		return h
	}
	recalled := func(r *Registry, f Filter) bool {
		_, ok := r.Recall("t", f)
		return ok
	}

	t.Run("kept until the topic changes", func(t *testing.T) {
		h := fresh(t)
		r := h.reg()
		body := remember(r, "t", now())
		if got, ok := r.Recall("t", now()); !ok || string(got) != string(body) {
			t.Fatalf("Recall = %q %v, want %q", got, ok, body)
		}
		h.apply(register(a, "other", "x"), createTopic("third"), setMember(Member{ID: "n9"}), renew("n1", 1, t0))
		if !recalled(r, now()) {
			t.Fatal("a command on other topics dropped the memo")
		}
		for _, c := range []Command{
			register(b, "t", "c"), unregister(b, "t", "c"), createChannel("t", "new"), deleteChannel("t", "new"),
			tombstone("t", nodeAddress(peerB), ns(0)), closeSession(b),
			closeOwner("n1", 1), createTopic("t"), deleteTopic("t"),
		} {
			remember(r, "t", now())
			h.apply(c)
			if recalled(r, now()) {
				t.Errorf("%v: memo survived", c.Op)
			}
		}
	})

	t.Run("a PING keeps an answer that showed its producer active throughout", func(t *testing.T) {
		h := fresh(t)
		r := h.reg()
		body := remember(r, "t", now())
		h.apply(renew("n1", 1, t0, Touch{Seq: a.Seq, LastUpdate: ns(time.Second)}))
		if got, ok := r.Recall("t", now()); !ok || string(got) != string(body) {
			t.Fatalf("after a's PING, Recall = %q %v, want %q", got, ok, body)
		}
		// The memo's window still ends where b turns inactive: a PING moves
		// no boundary of a memo it keeps.
		if recalled(r, at(inactive+1)) {
			t.Fatal("the kept memo was recalled past b's inactivity boundary")
		}
	})

	t.Run("a PING drops an answer that may have left its producer out", func(t *testing.T) {
		h := fresh(t)
		r := h.reg()
		// At inactive+1 both a and b are inactive: the answer lists nobody.
		late := at(inactive + time.Second)
		empty := remember(r, "t", late)
		h.apply(renew("n1", 1, t0, Touch{Seq: a.Seq, LastUpdate: ns(inactive)}))
		if body, ok := r.Recall("t", late); ok {
			t.Fatalf("after a's PING, the answer without a was recalled: %q", body)
		}
		if got := render(r.Lookup("t", late)); string(got) == string(empty) {
			t.Fatalf("a's PING did not bring a back: %s", got)
		}
	})

	t.Run("an answer taken before a PING is not remembered after it", func(t *testing.T) {
		h := fresh(t)
		r := h.reg()
		late := at(inactive + time.Second)
		_, _, _, s := r.LookupStamped("t", late) // lists nobody
		h.apply(renew("n1", 1, t0, Touch{Seq: a.Seq, LastUpdate: ns(inactive)}))
		r.Remember(s, []byte("without a"))
		if recalled(r, late) || r.MemoBytes() != 0 {
			t.Fatal("an answer taken before a PING was remembered after it")
		}
	})

	t.Run("window", func(t *testing.T) {
		h := fresh(t)
		r := h.reg()
		h.apply(tombstone("t", nodeAddress(peerB), ns(0)))
		remember(r, "t", at(time.Second))
		for _, c := range []struct {
			f    Filter
			want bool
		}{
			{at(time.Second), true},
			{at(tombLife - 1), true},
			{at(tombLife), false},  // peerB is visible again
			{at(-time.Hour), true}, // the same producers were visible then
			{at(inactive), false},  // beyond the tombstone boundary anyway
			{Filter{Now: time.Unix(0, ns(time.Second)), InactiveTimeout: inactive, TombstoneLifetime: time.Hour}, false},
			{Filter{Now: time.Unix(0, ns(time.Second)), InactiveTimeout: time.Hour, TombstoneLifetime: tombLife}, false},
		} {
			if got := recalled(r, c.f); got != c.want {
				t.Errorf("Recall at %v (timeouts %v/%v) = %v, want %v", time.Duration(c.f.Now.UnixNano()-t0), c.f.InactiveTimeout, c.f.TombstoneLifetime, got, c.want)
			}
		}
		remember(r, "t", at(tombLife))
		if !recalled(r, at(inactive)) || recalled(r, at(inactive+1)) {
			t.Error("the answer after the tombstone must hold until the producers turn inactive, not after")
		}
		if recalled(r, at(tombLife-1)) {
			t.Error("the answer after the tombstone was recalled while the tombstone still hid peerB")
		}
	})

	t.Run("stale stamp", func(t *testing.T) {
		h := fresh(t)
		r := h.reg()
		_, _, _, s := r.LookupStamped("t", now())
		h.apply(unregister(b, "t", ""))
		r.Remember(s, []byte("old"))
		if recalled(r, now()) || r.MemoBytes() != 0 {
			t.Fatal("an answer taken before a change was remembered")
		}
	})

	t.Run("wildcard and missing topics are not remembered", func(t *testing.T) {
		h := fresh(t)
		r := h.reg()
		for _, name := range []string{"*", "nope"} {
			remember(r, name, now())
			if _, ok := r.Recall(name, now()); ok {
				t.Errorf("Recall(%q) hit", name)
			}
		}
	})

	t.Run("budget", func(t *testing.T) {
		h := fresh(t)
		r := h.reg()
		_, _, _, s := r.LookupStamped("t", now())
		r.Remember(s, make([]byte, MemoBudget+1))
		if recalled(r, now()) || r.MemoBytes() != 0 {
			t.Fatal("a body beyond the budget was kept")
		}
		r.Remember(s, make([]byte, MemoBudget))
		_, _, _, s2 := r.LookupStamped("other", now())
		r.Remember(s2, []byte("x"))
		if _, ok := r.Recall("other", now()); ok {
			t.Fatal("kept beyond a full budget")
		}
		h.apply(register(b, "t", "c"))
		if r.MemoBytes() != 0 {
			t.Fatalf("MemoBytes = %d after the memo was dropped", r.MemoBytes())
		}
	})
}

// TestNewMemoCopiesBody checks the memo's one-allocation layout at every
// body length around the header's word alignment: the body reads back
// exactly, the window too, and the memo does not share the caller's bytes.
// Under -race, checkptr also checks that the header and body stay inside
// their allocation.
func TestNewMemoCopiesBody(t *testing.T) {
	s := Stamp{from: -5, until: 1 << 40, inactive: 7, lifetime: 9}
	for n := 0; n <= 70; n++ {
		body := make([]byte, n)
		for i := range body {
			body[i] = byte('a' + i%26)
		}
		m := newMemo(s, body)
		if got := m.body(); string(got) != string(body) || cap(got) != n {
			t.Fatalf("len %d: body %q (cap %d), want %q", n, got, cap(got), body)
		}
		if m.from != s.from || m.until != s.until || m.inactive != s.inactive || m.lifetime != s.lifetime {
			t.Fatalf("len %d: window %+v, want the stamp's %+v", n, *m, s)
		}
		if n > 0 {
			body[0] = '!'
			if m.body()[0] == '!' {
				t.Fatalf("len %d: the memo shares the caller's body", n)
			}
		}
	}
}

// TestRecallDuringApply runs readers that recall and remember while Apply
// registers a new channel on the topic each time: a recalled answer must
// never show fewer channels than were applied before the read began. Run
// with -race, it also checks the memos' locking. A reader whose recalls
// never hit (a Remember that keeps nothing) fails at its deadline instead
// of spinning.
func TestRecallDuringApply(t *testing.T) {
	a := SessionID{"n1", 1, 1}
	h := newHarness(t)
	r := h.reg()
	h.apply(setup(a)...)
	h.apply(register(a, "t", ""))
	const applies = 300
	var applied atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			recalls := 0
			deadline := time.Now().Add(30 * time.Second)
			for recalls < 2000 || applied.Load() < applies {
				if time.Now().After(deadline) {
					errs <- fmt.Errorf("%d recalls hit within 30s, want 2000", recalls)
					return
				}
				before := applied.Load()
				body, ok := r.Recall("t", now())
				if !ok {
					remember(r, "t", now())
					continue
				}
				recalls++
				if got := int64(channelsIn(body)); got < before {
					errs <- fmt.Errorf("recalled %d channels after %d were applied", got, before)
					return
				}
			}
		}()
	}
	for i := 1; i <= applies; i++ {
		h.apply(register(a, "t", fmt.Sprintf("c%d", i)))
		applied.Store(int64(i))
		if body, ok := r.Recall("t", now()); ok && channelsIn(body) != i {
			t.Fatalf("recalled %d channels right after the %d-th was applied", channelsIn(body), i)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// channelsIn counts the channels in a body render wrote ("true [c1 c2] [...]").
func channelsIn(body []byte) int {
	s := string(body)
	return len(strings.Fields(s[strings.IndexByte(s, '[')+1 : strings.IndexByte(s, ']')]))
}
