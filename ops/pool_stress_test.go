package ops

import (
	"testing"
	"time"
)

// TestPoolHandoffs runs many consecutive calls on one pool, some right
// after each other (workers still spinning) and some after a pause longer
// than spinWait (workers parked), and checks that every call covers its
// range exactly once; then Close with the workers parked.
func TestPoolHandoffs(t *testing.T) {
	for _, threads := range []int{2, 3} {
		p := NewPool(threads)
		hits := make([]int32, 64)
		fn := func(lo, hi int) {
			for i := lo; i < hi; i++ {
				hits[i]++ // ranges are disjoint: no atomics needed
			}
		}
		for call := 0; call < 2000; call++ {
			if call%500 == 499 {
				time.Sleep(3 * spinWait)
			}
			n := 1 + call%len(hits)
			clear(hits)
			p.For(n, 1, fn)
			for i, h := range hits {
				if want := int32(min(1, max(0, n-i))); h != want {
					t.Fatalf("threads %d call %d n=%d: item %d visited %d times", threads, call, n, i, h)
				}
			}
		}
		time.Sleep(3 * spinWait)
		p.Close()
		p.Close()
	}
}
