package fsm

import (
	"math/rand"
	"testing"
	"unsafe"
)

// TestSmallMapMatchesMap drives a smallMap and a Go map with the same random
// operations, across the switch from slice to map, and compares them after
// every step; removing while iterating, as the registry does, included.
func TestSmallMapMatchesMap(t *testing.T) {
	setSmallMax(t, 16)
	rng := rand.New(rand.NewSource(1))
	sessions := make([]*session, 3*smallMax)
	for i := range sessions {
		sessions[i] = &session{id: SessionID{Owner: "n", Incarnation: 1, Seq: uint64(i)}}
	}
	for round := 0; round < 200; round++ {
		var m smallMap[*session, int]
		model := map[*session]int{}
		for step := 0; step < 300; step++ {
			s := sessions[rng.Intn(len(sessions))]
			switch op := rng.Intn(10); {
			case op < 6:
				v := rng.Int()
				_, had := model[s]
				if added := m.set(s, v); added == had {
					t.Fatalf("round %d step %d: set reported new=%v, model had it: %v", round, step, added, had)
				}
				model[s] = v
			case op < 9:
				_, had := model[s]
				if removed := m.remove(s); removed != had {
					t.Fatalf("round %d step %d: remove = %v, model had it: %v", round, step, removed, had)
				}
				delete(model, s)
			default:
				// Remove every other entry while iterating.
				seen := map[*session]bool{}
				odd := false
				for s := range m.all {
					if seen[s] {
						t.Fatalf("round %d step %d: iteration yielded a session twice", round, step)
					}
					seen[s] = true
					if odd = !odd; odd {
						m.remove(s)
						delete(model, s)
					}
				}
			}
			if m.len() != len(model) {
				t.Fatalf("round %d step %d: len %d, want %d", round, step, m.len(), len(model))
			}
			n := 0
			for s, v := range m.all {
				n++
				if want, ok := model[s]; !ok || want != v {
					t.Fatalf("round %d step %d: holds %v=%d, model %d (present %v)", round, step, s.id, v, want, ok)
				}
			}
			if n != len(model) {
				t.Fatalf("round %d step %d: iterated %d entries, want %d", round, step, n, len(model))
			}
			for s, want := range model {
				if v, ok := m.get(s); !ok || v != want {
					t.Fatalf("round %d step %d: get %v = %d, %v; want %d", round, step, s.id, v, ok, want)
				}
			}
		}
	}
}

// TestSmallMapMovesToMap checks where the slice ends and the map begins.
func TestSmallMapMovesToMap(t *testing.T) {
	setSmallMax(t, 16)
	var m smallMap[*session, struct{}]
	for i := 0; i < smallMax; i++ {
		m.set(&session{}, struct{}{})
	}
	if m.many != nil || len(m.few) != smallMax {
		t.Fatalf("at %d entries: %d in the slice, map %v", smallMax, len(m.few), m.many != nil)
	}
	m.set(&session{}, struct{}{})
	if m.many == nil || m.few != nil || m.len() != smallMax+1 {
		t.Fatalf("at %d entries: %d in the slice, map of %d", smallMax+1, len(m.few), len(m.many))
	}
	if w := withCapacity[*session, struct{}](smallMax + 1); w.many == nil {
		t.Fatal("withCapacity past smallMax made a slice")
	}
}

func TestSmallEntryOfSetIsOneWord(t *testing.T) {
	if n := unsafe.Sizeof(smallEntry[*session, struct{}]{}); n != unsafe.Sizeof(uintptr(0)) {
		t.Fatalf("a set's entry takes %d bytes, want one pointer", n)
	}
}

// setSmallMax moves smallMap's switch for the rest of the test.
func setSmallMax(t testing.TB, n int) {
	old := smallMax
	smallMax = n
	t.Cleanup(func() { smallMax = old })
}
