package ops

import (
	"runtime"
	"sync/atomic"
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

// TestPoolCallerParks runs back-to-back calls whose parts outlast
// doneWait, so that the caller parks on almost every call, while other
// goroutines compete for the CPUs and preempt the workers at any point.
// A call must not return before its last part is done (every item is
// visited when it returns), and no wake meant for one call may end the
// next one's wait: the caller's parking and the last part's decrement
// share one word (Pool.pending).
func TestPoolCallerParks(t *testing.T) {
	stop := make(chan struct{})
	defer close(stop)
	for range 2 {
		go func() {
			for {
				select {
				case <-stop:
					return
				default:
					runtime.Gosched()
				}
			}
		}()
	}
	p := NewPool(3)
	defer p.Close()
	var hits [8]atomic.Int32
	fn := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			if i%3 == 1 {
				start := time.Now()
				for time.Since(start) < 2*doneWait {
				}
			}
			hits[i].Add(1)
		}
	}
	calls := 3000
	if testing.Short() {
		calls = 300
	}
	for call := range calls {
		n := 2 + call%(len(hits)-1)
		for i := range hits {
			hits[i].Store(0)
		}
		p.For(n, 1, fn)
		for i := range n {
			if h := hits[i].Load(); h != 1 {
				t.Fatalf("call %d n=%d: item %d visited %d times when For returned", call, n, i, h)
			}
		}
	}
}
