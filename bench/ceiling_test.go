package main

import (
	"testing"
	"unsafe"
)

// The chunked ballast holds exactly the bytes the small-object ballast asks
// for, in chunks no larger than 180 kB, and holds no pointers but the
// chunks' own.
func TestChunkBallastHoldsTheSameBytes(t *testing.T) {
	for _, n := range []int{0, 1, 1000, 5000} {
		want := 0
		count := 0
		for node := makeBallast(n); node != nil; node = node.next {
			want += int(unsafe.Sizeof(*node)) + len(node.name) + len(node.pad)
			count++
		}
		if count != n {
			t.Fatalf("makeBallast(%d) made %d nodes", n, count)
		}
		got := 0
		for _, c := range makeChunkBallast(n) {
			if len(c) == 0 || len(c) > 180<<10 {
				t.Fatalf("n=%d: a chunk of %d bytes", n, len(c))
			}
			got += len(c)
		}
		if got != want {
			t.Errorf("n=%d: chunks hold %d bytes, the small objects %d", n, got, want)
		}
	}
}
