package ops

import (
	"fmt"
	"math"
	"sync/atomic"
	"testing"

	"github.com/memmamba/memmamba/quant"
)

func sameBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: [%d] = %v, want %v", what, i, got[i], want[i])
		}
	}
}

// TestPoolMatMul checks that the pool gives the single-threaded bits for
// several thread counts, for products big enough to be split.
func TestPoolMatMul(t *testing.T) {
	forLevels(t, testPoolMatMul)
}

func testPoolMatMul(t *testing.T) {
	rng := newRNG(5)
	pools := []*Pool{nil, NewPool(1), NewPool(2), NewPool(3), NewPool(7)}
	defer func() {
		for _, p := range pools {
			p.Close()
		}
	}()
	for _, typ := range allTypes() {
		const rows, cols = 301, 512
		m, _ := testMatrix(t, rng, typ, rows, cols, 0)
		for _, n := range []int{1, 2, 5} {
			x := randVec(rng, n*cols)
			want := make([]float32, n*rows)
			MatMul(want, m, x, n)
			for _, p := range pools {
				got, check := guarded(n*rows, 1)
				if n == 1 {
					p.MatVec(got, m, x)
				} else {
					p.MatMul(got, m, x, n)
				}
				check(t)
				sameBits(t, typ.String(), got, want)
			}
		}
	}
}

// TestMatVecThen checks MatVecThen's epilogue: its ranges are disjoint and
// cover every row, each range's rows are already computed (MatVec's bits)
// when it runs, and the product equals MatVec, with every pool size and a
// work estimate that makes a small product split.
func TestMatVecThen(t *testing.T) {
	rng := newRNG(6)
	pools := []*Pool{nil, NewPool(1), NewPool(2), NewPool(3)}
	defer func() {
		for _, p := range pools {
			p.Close()
		}
	}()
	for _, typ := range []quant.Type{quant.F32, quant.Q8_0} {
		for _, rows := range []int{1, 37, 301} {
			const cols = 64
			m, _ := testMatrix(t, rng, typ, rows, cols, 0)
			x := randVec(rng, cols)
			want := make([]float32, rows)
			MatVec(want, m, x)
			for pi, p := range pools {
				for _, work := range []int{0, 1 << 20} {
					what := fmt.Sprintf("%s rows=%d pool %d work=%d", typ, rows, pi, work)
					got, check := guarded(rows, 1)
					seen := make([]atomic.Int32, rows)
					var bad atomic.Bool
					then := func(lo, hi int) {
						for r := lo; r < hi; r++ {
							seen[r].Add(1)
							if math.Float32bits(got[r]) != math.Float32bits(want[r]) {
								bad.Store(true)
							}
						}
					}
					p.MatVecThen(got, m, x, then, work)
					check(t)
					sameBits(t, what, got, want)
					if bad.Load() {
						t.Errorf("%s: an epilogue ran before its rows were computed", what)
					}
					for r := range seen {
						if n := seen[r].Load(); n != 1 {
							t.Fatalf("%s: row %d went through the epilogue %d times", what, r, n)
						}
					}
				}
			}
		}
	}
}

func TestPoolFor(t *testing.T) {
	p := NewPool(4)
	defer p.Close()
	for _, n := range []int{0, 1, 5, 100, 1000} {
		hits := make([]int32, n)
		var calls atomic.Int32
		p.For(n, 10, func(lo, hi int) {
			calls.Add(1)
			for i := lo; i < hi; i++ {
				atomic.AddInt32(&hits[i], 1)
			}
		})
		for i, h := range hits {
			if h != 1 {
				t.Fatalf("n=%d: item %d visited %d times", n, i, h)
			}
		}
		if n >= 40 && calls.Load() < 2 {
			t.Errorf("n=%d: not split (%d calls)", n, calls.Load())
		}
	}
}

// TestSpan4 checks that the parts of a product cover its rows in order,
// once, on 4-row boundaries, and that tapered parts shrink.
func TestSpan4(t *testing.T) {
	for _, parts := range []int{1, 2, 3, 7, 8, 9, 16, 64, 4096} {
		for _, total := range []int{0, 1, 5, 64, 192, 1536, 50280, 1 << 20} {
			next, prev := 0, -1
			for i := range parts {
				lo, hi := span4(i, parts, total)
				if lo != next || hi < lo || (i < parts-1 && hi%4 != 0) {
					t.Fatalf("parts=%d total=%d: part %d is [%d, %d) after %d", parts, total, i, lo, hi, next)
				}
				if parts >= 8 && total >= 64*parts && i < parts-1 && prev >= 0 && hi-lo > prev+4 {
					t.Fatalf("parts=%d total=%d: part %d has %d rows, more than the %d before", parts, total, i, hi-lo, prev)
				}
				next, prev = hi, hi-lo
			}
			if next != total {
				t.Fatalf("parts=%d total=%d: parts end at %d", parts, total, next)
			}
		}
	}
}

// TestNoAllocs checks that the hot paths allocate nothing per call.
func TestNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are measured without -race")
	}
	rng := newRNG(6)
	p := NewPool(3)
	defer p.Close()
	m, _ := testMatrix(t, rng, quant.Q8_0, 256, 512, 0)
	x := randVec(rng, 4*512)
	dst := make([]float32, 4*256)
	const E, N, T, K = 64, 16, 4, 4
	h, y := make([]float32, E*N), make([]float32, T*E)
	dt, a, z, D := randVec(rng, T*E), randVec(rng, T*E), randVec(rng, T*E), randVec(rng, E)
	A, B, C := randVec(rng, E*N), randVec(rng, T*N), randVec(rng, T*N)
	win, w := make([]float32, E*(K-1)), randVec(rng, E*K)
	q, kv := randVec(rng, 64), randVec(rng, 50*64)
	out := make([]float32, 64)
	forFn := func(lo, hi int) {}
	ps := []Product{{Dst: dst, W: m, X: x, N: 4}, {Dst: y[:256], W: m, X: x[:512], N: 1}}
	cases := map[string]func(){
		"Pool.MatMuls":    func() { p.MatMuls(ps) },
		"Pool.MatMulsFor": func() { p.MatMulsFor(ps, 3, 1, forFn) },
		"MatVec":          func() { MatVec(dst[:256], m, x[:512]) },
		"MatMul":          func() { MatMul(dst, m, x, 4) },
		"Pool.MatVec":     func() { p.MatVec(dst[:256], m, x[:512]) },
		"Pool.MatMul":     func() { p.MatMul(dst, m, x, 4) },
		"Pool.For":        func() { p.For(1000, 1, forFn) },
		"Scan":            func() { Scan(y, h, dt, A, B, C, a, D, z, E, N, T) },
		"Pool.Scan":       func() { p.Scan(y, h, dt, A, B, C, a, D, z, E, N, T) },
		"Conv":            func() { Conv(y, win, a, w, D, E, K, T) },
		"Attend":          func() { Attend(out, q, kv, kv, 50, 4) },
		"RMSNorm":         func() { RMSNorm(y[:E], a[:E], D, 1e-5) },
	}
	for name, f := range cases {
		if raceEnabled && (name == "MatVec" || name == "MatMul") {
			continue // their scratch comes from a sync.Pool
		}
		if n := testing.AllocsPerRun(20, f); n != 0 {
			t.Errorf("%s: %v allocations per call", name, n)
		}
	}
}

// TestPoolMatMuls checks that products run together in one hand-off give
// each product's MatMul result bit for bit, whatever their types and sizes.
func TestPoolMatMuls(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		rng := newRNG(123)
		for _, threads := range []int{1, 2, 3} {
			p := NewPool(threads)
			shapes := []struct {
				typ        quant.Type
				rows, cols int
				n          int
			}{
				{quant.Q8_0, 192, 768, 1}, {quant.F32, 1, 64, 1}, {quant.Q8_0, 64, 768, 1}, {quant.F16, 37, 96, 3},
				{quant.Q4_0, 768, 64, 5}, {quant.BF16, 3, 32, 2}, {quant.F32, 1536, 64, 4},
			}
			var ps []Product
			var wants [][]float32
			var checks []func(*testing.T)
			for _, sh := range shapes {
				w, _ := testMatrix(t, rng, sh.typ, sh.rows, sh.cols, 0)
				x := randVec(rng, sh.n*sh.cols)
				want := make([]float32, sh.n*sh.rows)
				MatMul(want, w, x, sh.n)
				dst, check := guarded(sh.n*sh.rows, 1)
				ps = append(ps, Product{Dst: dst, W: w, X: x, N: sh.n})
				wants = append(wants, want)
				checks = append(checks, check)
			}
			for round := 0; round < 3; round++ { // reuse of the pool's scratch
				p.MatMuls(ps)
				for i := range ps {
					checks[i](t)
					sameBits(t, fmt.Sprintf("threads=%d product %d (%s %dx%d n=%d)", threads, i, shapes[i].typ,
						shapes[i].rows, shapes[i].cols, shapes[i].n), ps[i].Dst, wants[i])
				}
			}
			// MatMulsFor: the same products, and fn over each item once.
			for _, n := range []int{0, 1, 3, 50} {
				hits := make([]int32, n)
				fn := func(lo, hi int) {
					for i := lo; i < hi; i++ {
						atomic.AddInt32(&hits[i], 1)
					}
				}
				for _, sub := range [][]Product{ps, ps[:1], nil} {
					clear(hits)
					for _, q := range sub {
						for i := range q.Dst {
							q.Dst[i] = float32(math.NaN())
						}
					}
					p.MatMulsFor(sub, n, 2, fn)
					for i, h := range hits {
						if h != 1 {
							t.Fatalf("threads=%d MatMulsFor n=%d over %d products: item %d visited %d times", threads, n, len(sub), i, h)
						}
					}
					for i := range sub {
						checks[i](t)
						sameBits(t, fmt.Sprintf("threads=%d MatMulsFor n=%d product %d", threads, n, i), sub[i].Dst, wants[i])
					}
				}
			}
			p.MatMuls(ps[:1])
			p.MatMuls(nil)
			p.Close()
		}
	})
}
