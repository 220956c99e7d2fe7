package ops

import (
	"fmt"
	"runtime"
	"sync"
)

// Pool is a fixed set of worker goroutines that split the rows of a product
// (or the range of a For loop) between them. The goroutines are started once
// by NewPool and reused, so a call spawns nothing and allocates nothing; the
// calling goroutine does one share of the work itself.
//
// A Pool runs one call at a time (concurrent calls are serialised). Results
// are bit-identical to the single-threaded functions, whatever the thread
// count, because the work is split by rows and each row's sum is computed in
// one fixed order. A nil *Pool is valid and runs everything on the caller.
type Pool struct {
	mu      sync.Mutex
	threads int
	work    []chan int // one per helper goroutine; carries a part index
	wg      sync.WaitGroup
	closed  bool

	// The current call, read by the workers between the channel send that
	// hands them a part and wg.Done.
	kind  int
	prod  product
	qs    qscratch // quantised activations of the current product
	total int      // rows (or For's n)
	parts int
	fn    func(lo, hi int)
	scan  scanArgs
}

const (
	jobMatMul = iota
	jobFor
	jobScan
)

// minWorkPerPart is the least number of weight values (rows*cols*tokens)
// worth handing to another goroutine: below it the hand-off costs more than
// it saves.
const minWorkPerPart = 1 << 15

// NewPool starts a pool of threads workers (the caller counting as one).
// threads <= 0 means runtime.GOMAXPROCS(0).
func NewPool(threads int) *Pool {
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	p := &Pool{threads: threads, work: make([]chan int, threads-1)}
	for i := range p.work {
		ch := make(chan int, 1)
		p.work[i] = ch
		go p.worker(ch)
	}
	return p
}

// Threads returns the number of threads a call uses at most (1 for a nil
// Pool).
func (p *Pool) Threads() int {
	if p == nil {
		return 1
	}
	return p.threads
}

// Close stops the workers. The Pool must not be used afterwards; Close on a
// closed or nil Pool does nothing.
func (p *Pool) Close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	for _, ch := range p.work {
		close(ch)
	}
}

func (p *Pool) worker(ch chan int) {
	for part := range ch {
		p.runPart(part)
		p.wg.Done()
	}
}

// span returns the half-open range of part i of parts over total items.
func span(i, parts, total int) (lo, hi int) {
	return i * total / parts, (i + 1) * total / parts
}

func (p *Pool) runPart(part int) {
	lo, hi := span(part, p.parts, p.total)
	if lo == hi {
		return
	}
	switch p.kind {
	case jobMatMul:
		p.prod.rows(lo, hi)
	case jobFor:
		p.fn(lo, hi)
	case jobScan:
		s := &p.scan
		scanRange(s.y, s.h, s.dt, s.A, s.B, s.C, s.a, s.D, s.z, s.E, s.N, s.T, lo, hi)
	}
}

// run splits p.total items into at most `parts` parts, gives all but the
// first to the workers and does the first itself. p.mu must be held.
func (p *Pool) run(parts int) {
	if p.closed {
		panic("ops: Pool used after Close")
	}
	parts = max(1, min(parts, p.threads, p.total))
	p.parts = parts
	if parts > 1 {
		p.wg.Add(parts - 1)
		for i := 1; i < parts; i++ {
			p.work[i-1] <- i
		}
	}
	p.runPart(0)
	if parts > 1 {
		p.wg.Wait()
	}
	p.prod, p.fn = product{}, nil // drop references
}

// partsFor returns how many parts work units are worth splitting into.
func partsFor(work int) int {
	return max(1, work/minWorkPerPart)
}

// MatVec is MatVec (the function) with the rows split across the pool.
func (p *Pool) MatVec(dst []float32, w Matrix, x []float32) {
	p.MatMul(dst, w, x, 1)
}

// MatMul is MatMul (the function) with the rows split across the pool.
func (p *Pool) MatMul(dst []float32, w Matrix, x []float32, n int) {
	checkMatVec(dst, w, x, n)
	parts := partsFor(w.Rows * w.Cols * n)
	if p == nil || p.threads == 1 || parts == 1 {
		MatMul(dst, w, x, n)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.prod.prepare(dst, w, w.RowBytes(), x, n, &p.qs)
	p.kind, p.total = jobMatMul, w.Rows
	p.run(parts)
}

// For calls fn(lo, hi) on disjoint ranges covering [0, n), in parallel, and
// returns when all calls have returned. Each range holds at least minChunk
// items (except when n itself is smaller), so tiny loops stay on the caller.
// fn must be safe to call concurrently on disjoint ranges. Note that a
// closure capturing variables escapes to the heap when passed here; keep it
// in a variable to avoid an allocation per call.
func (p *Pool) For(n, minChunk int, fn func(lo, hi int)) {
	if n < 0 {
		panic(fmt.Sprintf("ops: Pool.For over %d items", n))
	}
	parts := max(1, n/max(1, minChunk))
	if p == nil || p.threads == 1 || parts == 1 {
		if n > 0 {
			fn(0, n)
		}
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.kind, p.fn, p.total = jobFor, fn, n
	p.run(parts)
}
