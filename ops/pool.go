package ops

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Pool is a fixed set of worker goroutines that split the rows of a product
// (or the range of a For loop) between them. The goroutines are started once
// by NewPool and reused, so a call spawns nothing and allocates nothing; the
// calling goroutine takes part in the work itself.
//
// A call is cut into a fixed number of parts (a few per thread), which the
// caller and the workers claim one at a time from one atomic word holding
// the call's sequence number, its part count and the next part. Claiming
// rather than assigning parts means a worker that the OS has not scheduled
// yet (the cores may be shared) costs nothing: the caller takes its parts.
// A worker that finished spins on that word for up to spinWait before it
// parks on its channel, and the caller spins briefly on the count of parts
// not yet done before it parks: decode runs about a hundred small products
// per token, microseconds apart, so a hand-off usually costs no goroutine
// wake-up at all.
//
// A Pool runs one call at a time (concurrent calls are serialised). Results
// are bit-identical to the single-threaded functions, whatever the thread
// count and whoever computes which part, because the parts' row ranges
// depend only on the call and each row's sum is computed in one fixed order.
// A nil *Pool is valid and runs everything on the caller.
type Pool struct {
	mu      sync.Mutex
	threads int
	workers []*poolWorker
	closed  atomic.Bool

	// job is seq<<32 | parts<<16 | next: a new seq publishes the call's
	// fields below (written before it is stored) to whoever claims a part.
	job atomic.Uint64
	// pending is the call's parts not yet finished, plus callerParked
	// once the caller waits on done. One word, so that the part that
	// finishes last learns from its own decrement whether the caller
	// waits: a separate flag, read after the decrement, could already
	// belong to the caller's next call (the caller returns as soon as it
	// sees no part left), and a wake sent for that call would end its
	// wait early.
	pending atomic.Int32
	done    chan struct{}

	// The current call, read by whoever claims one of its parts.
	kind  int
	prod  product
	qs    qscratch // quantised activations of the current product
	total int      // rows (or For's n)
	parts int
	fn    func(lo, hi int)
	then  func(lo, hi int) // MatVecThen's epilogue
	scan  scanArgs
	conv  convArgs

	// MatMuls: the products, their quantised activations, and the first
	// part of each (multiOff[i]..multiOff[i+1]-1 are product i's parts,
	// after MatMulsFor's forParts parts of fn over forN items).
	multi    []product
	multiQS  []qscratch
	multiOff []int
	forN     int
	forParts int
}

// poolWorker is one helper goroutine's parking place.
type poolWorker struct {
	parked atomic.Bool
	wake   chan struct{}
	_      [64]byte // keep the workers' flags on separate cache lines
}

const (
	maxParts = 1<<16 - 1

	// spinWait is how long a worker polls for the next call before it
	// parks: longer than the gap between the products of one decode step,
	// short enough not to hold a core that others need when the pool idles.
	spinWait = 50 * time.Microsecond

	// doneWait is how long the caller polls for the workers' last parts
	// before it parks (and frees its core for them).
	doneWait = 10 * time.Microsecond

	// partsPerThread is how many parts a call is cut into per thread, so
	// that the caller can take over the parts of a worker that is late.
	partsPerThread = 4
)

const (
	jobMatMul = iota
	jobFor
	jobScan
	jobConv
	jobMulti
)

// minWorkPerPart is the least number of weight values (rows*cols*tokens)
// worth a part of its own: below it the hand-off costs more than it saves.
const minWorkPerPart = 1 << 15

// Estimates of the conv's and the scan's cost in those units (a weight
// value of a product is one multiply-add), which split them across the
// Pool and which callers that fuse them into a product pass as
// MatVecThen's thenWork:
//
//   - ConvSiLUWork per channel, tap and token (E*K*T of them): the tap's
//     multiply-add weighted up for the SiLU's exp and division after it.
//   - ScanWork per channel, state dimension and token (E*N*T): an exp,
//     which costs several multiply-adds, and the few around it.
const (
	ConvSiLUWork = 4
	ScanWork     = 8
)

// NewPool starts a pool of threads workers (the caller counting as one).
// threads <= 0 means runtime.GOMAXPROCS(0).
func NewPool(threads int) *Pool {
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	threads = min(threads, 1024)
	p := &Pool{threads: threads, workers: make([]*poolWorker, threads-1), done: make(chan struct{}, 1)}
	for i := range p.workers {
		w := &poolWorker{wake: make(chan struct{}, 1)}
		p.workers[i] = w
		go p.worker(w)
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
	if p.closed.Load() {
		return
	}
	p.closed.Store(true)
	p.job.Store((p.job.Load()>>32 + 1) << 32) // no parts: wakes the workers up
	for _, w := range p.workers {
		w.wakeUp()
	}
}

// wakeUp unparks w if it is parked.
func (w *poolWorker) wakeUp() {
	if w.parked.Load() && w.parked.CompareAndSwap(true, false) {
		w.wake <- struct{}{}
	}
}

// worker takes parts of every call until the pool is closed.
func (p *Pool) worker(w *poolWorker) {
	var seq uint64
	for {
		seq = p.await(w, seq)
		if p.closed.Load() {
			return
		}
		p.claim(seq)
	}
}

// claim runs parts of call seq until none is left to take.
func (p *Pool) claim(seq uint64) {
	for {
		j := p.job.Load()
		if j>>32 != seq || j&0xffff >= j>>16&0xffff {
			return
		}
		if !p.job.CompareAndSwap(j, j+1) {
			continue
		}
		p.runPart(int(j & 0xffff))
		if p.pending.Add(-1) == callerParked {
			p.done <- struct{}{}
		}
	}
}

// await returns the sequence number of the next call after seq: it spins
// for up to spinWait, then parks on w.wake.
func (p *Pool) await(w *poolWorker, seq uint64) uint64 {
	for {
		start := time.Now()
		for i := 1; ; i++ {
			if s := p.job.Load() >> 32; s != seq {
				return s
			}
			if i%64 == 0 {
				if time.Since(start) > spinWait {
					break
				}
				osYield()
			}
		}
		w.parked.Store(true)
		if s := p.job.Load() >> 32; s != seq {
			if w.parked.CompareAndSwap(true, false) {
				return s
			}
			// A caller saw us parked and is sending a wake: take it.
		}
		<-w.wake
	}
}

// span returns the half-open range of part i of parts over total items.
func span(i, parts, total int) (lo, hi int) {
	return i * total / parts, (i + 1) * total / parts
}

// spanTaper is span with parts that shrink linearly, part i weighing
// parts+1-i (8 parts: 20% of the rows first, 4.5% last), so that the
// parts claimed last are small and the thread that finishes first waits
// less for the others: the parts are claimed in order, and a decode
// product ends with whichever thread holds the last one (BENCHMARKS.md,
// sixth session: equal parts left decode 10-20% slower at avx2). A part's
// rows come out with the same bits whatever its range.
func spanTaper(i, parts, total int) (lo, hi int) {
	c := parts + 1
	cum := func(i int) int { return c*i - i*(i-1)/2 }
	all := cum(parts)
	return total * cum(i) / all, total * cum(i+1) / all
}

// span4 is span (spanTaper from 8 parts on) with the inner boundaries
// rounded down to a multiple of 4, so that each part's rows go through
// the 4-row kernels.
func span4(i, parts, total int) (lo, hi int) {
	if parts >= 8 {
		lo, hi = spanTaper(i, parts, total)
	} else {
		lo, hi = span(i, parts, total)
	}
	lo &^= 3
	if i < parts-1 {
		hi &^= 3
	}
	return lo, hi
}

func (p *Pool) runPart(part int) {
	var lo, hi int
	if p.kind == jobMatMul {
		lo, hi = span4(part, p.parts, p.total)
	} else {
		lo, hi = span(part, p.parts, p.total)
	}
	if lo == hi && p.kind != jobMulti {
		return
	}
	switch p.kind {
	case jobMatMul:
		p.prod.rows(lo, hi)
		if p.then != nil {
			p.then(lo, hi)
		}
	case jobFor:
		p.fn(lo, hi)
	case jobScan:
		s := &p.scan
		scanRange(s.y, s.h, s.dt, s.A, s.B, s.C, s.a, s.D, s.z, s.E, s.N, s.T, lo, hi)
	case jobConv:
		c := &p.conv
		convSiLURange(c.out, c.window, c.x, c.w, c.b, c.E, c.K, c.T, lo, hi)
	case jobMulti:
		if part < p.forParts {
			if lo, hi := span(part, p.forParts, p.forN); lo < hi {
				p.fn(lo, hi)
			}
			return
		}
		i := 0
		for p.multiOff[i+1] <= part {
			i++
		}
		pr := &p.multi[i]
		k := p.multiOff[i+1] - p.multiOff[i]
		lo, hi := span4(part-p.multiOff[i], k, pr.w.Rows)
		if lo < hi {
			pr.rows(lo, hi)
		}
	}
}

// run cuts p.total items into at most `parts` parts and runs them on the
// caller and the workers. p.mu must be held.
func (p *Pool) run(parts int) {
	if p.closed.Load() {
		panic("ops: Pool used after Close")
	}
	if p.kind != jobMulti { // MatMuls sets its own parts, one per unit
		parts = max(1, min(parts, p.threads*partsPerThread, p.total, maxParts))
	}
	p.parts = parts
	if parts == 1 {
		p.runPart(0)
	} else {
		p.pending.Store(int32(parts))
		seq := p.job.Load()>>32 + 1
		p.job.Store(seq<<32 | uint64(parts)<<16)
		for _, w := range p.workers[:min(len(p.workers), parts-1)] {
			w.wakeUp()
		}
		p.claim(seq)
		p.wait()
	}
	p.prod, p.fn, p.then = product{}, nil, nil // drop references
	p.forN, p.forParts = 0, 0
	clear(p.multi)
}

// callerParked is the bit of Pool.pending that says the caller waits on
// done (the parts are far fewer).
const callerParked = 1 << 30

// wait returns when every part is done: it spins for up to doneWait, then
// parks on p.done, which the part that finishes last then signals.
func (p *Pool) wait() {
	start := time.Now()
	for i := 1; p.pending.Load() != 0; i++ {
		if i%16 != 0 {
			continue
		}
		osYield()
		if time.Since(start) > doneWait {
			for {
				n := p.pending.Load()
				if n == 0 {
					return
				}
				if p.pending.CompareAndSwap(n, n|callerParked) {
					<-p.done
					return
				}
			}
		}
	}
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
	st := checkMatVec(dst, w, x, n)
	parts := partsFor(w.Rows * w.Cols * n)
	if p == nil || p.threads == 1 || parts == 1 {
		MatMul(dst, w, x, n)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.prod.prepare(dst, w, st, x, n, &p.qs)
	p.kind, p.total = jobMatMul, w.Rows
	p.run(parts)
}

// MatVecThen is MatVec followed, part by part, by an epilogue: whoever
// computes a part's rows lo..hi-1 of dst then calls then(lo, hi), while
// those rows (and whatever then reads by the same index) are hot in its
// cache, instead of the caller running a second pass, alone or after a
// second hand-off. Decode fuses this way the conv into in_proj's product
// and the scan into dt_proj's. The ranges are disjoint and cover
// [0, w.Rows); then must be safe to call concurrently on disjoint ranges
// and must not use p. thenWork is the epilogue's cost in weight-value
// units (as rows*cols), so that a cheap product with a costly epilogue
// still splits. Keep then in a variable (a method value made once) to
// avoid an allocation per call.
func (p *Pool) MatVecThen(dst []float32, w Matrix, x []float32, then func(lo, hi int), thenWork int) {
	st := checkMatVec(dst, w, x, 1)
	parts := partsFor(w.Rows*w.Cols + thenWork)
	if p == nil || p.threads == 1 || parts == 1 {
		MatMul(dst, w, x, 1)
		then(0, w.Rows)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.prod.prepare(dst, w, st, x, 1, &p.qs)
	p.kind, p.total, p.then = jobMatMul, w.Rows, then
	p.run(parts)
}

// Product is one matrix product for MatMuls: Dst (N x W.Rows) = W times
// each of the N rows of X (N x W.Cols), as MatMul(Dst, W, X, N).
type Product struct {
	Dst []float32
	W   Matrix
	X   []float32
	N   int
}

// MatMuls runs independent products in one hand-off: each is cut into parts
// as MatMul would cut it, and the workers claim the parts of all of them,
// so that small products (the Note Block's, a few thousand weights each)
// share the cost of waking the workers instead of each paying it or
// running alone on the caller. Each product's result is MatMul's, bit for
// bit. The products must not write where another reads or writes.
func (p *Pool) MatMuls(ps []Product) {
	for _, q := range ps {
		checkMatVec(q.Dst, q.W, q.X, q.N)
	}
	if p == nil || p.threads == 1 || len(ps) <= 1 {
		for _, q := range ps {
			p.MatMul(q.Dst, q.W, q.X, q.N)
		}
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.multiRun(ps, 0, 0, nil)
}

// MatMulsFor is For(n, minChunk, fn) and MatMuls(ps) in one hand-off, for
// serial work that the products do not depend on (the Note Block's pools,
// one sequence a part, beside its gates' products of the rows alone):
// fn's parts come first in the claiming order, so that whoever starts
// first takes them while the others stream the products' weights, instead
// of the other threads idling through fn and then all of them running
// the products. fn must not use p and must not touch what the products
// read or write. The results are For's and MatMuls', bit for bit.
func (p *Pool) MatMulsFor(ps []Product, n, minChunk int, fn func(lo, hi int)) {
	if n < 0 {
		panic(fmt.Sprintf("ops: Pool.MatMulsFor over %d items", n))
	}
	for _, q := range ps {
		checkMatVec(q.Dst, q.W, q.X, q.N)
	}
	if p == nil || p.threads == 1 || len(ps) == 0 {
		p.For(n, minChunk, fn)
		p.MatMuls(ps)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	parts := 0
	if n > 0 {
		parts = max(1, min(n/max(1, minChunk), p.threads*partsPerThread, n))
	}
	p.multiRun(ps, n, parts, fn)
}

// multiRun runs MatMuls' products after forParts parts of fn over forN
// items. p.mu must be held.
func (p *Pool) multiRun(ps []Product, forN, forParts int, fn func(lo, hi int)) {
	if cap(p.multi) < len(ps) {
		p.multi = make([]product, len(ps))
		p.multiQS = make([]qscratch, len(ps))
		p.multiOff = make([]int, len(ps)+1)
	}
	p.multi, p.multiQS, p.multiOff = p.multi[:len(ps)], p.multiQS[:len(ps)], p.multiOff[:len(ps)+1]
	p.fn, p.forN, p.forParts = fn, forN, forParts
	total := forParts
	for i, q := range ps {
		p.multi[i].prepare(q.Dst, q.W, q.W.stride(), q.X, q.N, &p.multiQS[i])
		p.multiOff[i] = total
		total += max(1, min(partsFor(q.W.Rows*q.W.Cols*q.N), p.threads*partsPerThread, (q.W.Rows+3)/4))
	}
	p.multiOff[len(ps)] = total
	p.kind, p.total = jobMulti, total
	p.run(min(total, maxParts))
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
