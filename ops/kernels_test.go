package ops

import (
	"fmt"
	"math"
	"testing"
)

func lengths() []int {
	l := make([]int, 0, 80)
	for i := 0; i <= 70; i++ {
		l = append(l, i)
	}
	return append(l, 255, 1024, 1537)
}

func near(got, want, rel, abs float64) bool {
	return math.Abs(got-want) <= abs+rel*math.Abs(want)
}

// TestElementwise compares each unary/binary kernel with its plain loop on
// every length and several slice offsets, with guards around the output.
func TestElementwise(t *testing.T) {
	forLevels(t, testElementwise)
}

func testElementwise(t *testing.T) {
	rng := newRNG(7)
	type unary struct {
		name string
		f    func(dst, x []float32)
		ref  func(v float64) float64
	}
	sig := func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }
	unaries := []unary{
		{"Sigmoid", Sigmoid, sig},
		{"SiLU", SiLU, func(v float64) float64 { return v * sig(v) }},
		{"Softplus", Softplus, func(v float64) float64 {
			if v > 20 {
				return v
			}
			return math.Log1p(math.Exp(v))
		}},
		{"ReLU", ReLU, func(v float64) float64 { return math.Max(v, 0) }},
		{"Scale", func(d, x []float32) { Scale(d, x, 1.5) }, func(v float64) float64 { return float64(float32(1.5) * float32(v)) }},
	}
	for _, n := range lengths() {
		for _, off := range []int{0, 1, 3} {
			x := randVec(rng, n)
			for i := range x {
				x[i] *= 30 // cover softplus's threshold and sigmoid's tails
			}
			x = offsetCopy(x, off)
			for _, u := range unaries {
				dst, check := guarded(n, off)
				u.f(dst, x)
				check(t)
				for i := range dst {
					if want := u.ref(float64(x[i])); !near(float64(dst[i]), want, 4e-7, 1e-30) {
						t.Fatalf("%s n=%d: [%d] f(%v) = %v, want %v", u.name, n, i, x[i], dst[i], want)
					}
				}
			}
			y := offsetCopy(randVec(rng, n), off)
			bin := []struct {
				name string
				f    func(dst, a, b []float32)
				ref  func(a, b float32) float32
			}{
				{"Add", Add, func(a, b float32) float32 { return a + b }},
				{"Mul", Mul, func(a, b float32) float32 { return a * b }},
				{"MulSiLU", MulSiLU, func(a, b float32) float32 { return a * SiLUScalar(b) }},
				{"AddScaled", func(d, a, b []float32) { copy(d, a); AddScaled(d, b, 0.75) }, func(a, b float32) float32 { return a + 0.75*b }},
			}
			for _, bf := range bin {
				dst, check := guarded(n, off)
				bf.f(dst, x, y)
				check(t)
				for i := range dst {
					if want := bf.ref(x[i], y[i]); math.Float32bits(dst[i]) != math.Float32bits(want) {
						t.Fatalf("%s n=%d: [%d] = %v, want %v", bf.name, n, i, dst[i], want)
					}
				}
			}
			// Dot: the documented order (four interleaved accumulators).
			var s [4]float32
			for i := range x {
				k := i % 4
				if i >= n-n%4 {
					k = 0 // the tail goes to the first accumulator
				}
				s[k] += x[i] * y[i]
			}
			want := (s[0] + s[1]) + (s[2] + s[3])
			if got := Dot(x, y); exactFloat && math.Float32bits(got) != math.Float32bits(want) {
				t.Fatalf("Dot n=%d: %v, want %v", n, got, want)
			}
			sum, abs := ref64(x, y)
			if got := Dot(x, y); math.Abs(float64(got)-sum) > float64(n+2)*0x1p-24*abs {
				t.Fatalf("Dot n=%d: %v, float64 %v", n, got, sum)
			}
		}
	}
}

// TestExp32 checks exp32 against math.Exp on a sweep of float32 bit
// patterns: at most 1 ulp from the correctly rounded float32 result (and
// exact for zero/infinity/NaN cases handled by math.Exp).
func TestExp32(t *testing.T) {
	for bits := uint64(0); bits < 1<<32; bits += 65521 {
		v := math.Float32frombits(uint32(bits))
		got, want := exp32(v), float32(math.Exp(float64(v)))
		if math.IsNaN(float64(want)) {
			if !math.IsNaN(float64(got)) {
				t.Fatalf("exp32(%v) = %v, want NaN", v, got)
			}
			continue
		}
		d := int64(math.Float32bits(got)) - int64(math.Float32bits(want))
		if d < -1 || d > 1 {
			t.Fatalf("exp32(%v) = %v, want %v (%d ulp)", v, got, want, d)
		}
	}
	for _, v := range []float32{0, -87, 88, -86.99, 87.99, float32(math.Inf(1)), float32(math.Inf(-1)), -200} {
		if got, want := exp32(v), float32(math.Exp(float64(v))); math.Abs(float64(got-want)) > 1e-7*float64(want) && got != want {
			t.Errorf("exp32(%v) = %v, want %v", v, got, want)
		}
	}
}

func TestSpecialValues(t *testing.T) {
	tests := []struct {
		name string
		got  float32
		want float32
	}{
		{"sigmoid(-200)", SigmoidScalar(-200), 0},
		{"sigmoid(200)", SigmoidScalar(200), 1},
		{"silu(-200)", SiLUScalar(-200), 0},
		{"silu(200)", SiLUScalar(200), 200},
		{"softplus(20)", SoftplusScalar(20), float32(math.Log1p(math.Exp(20)))},
		{"softplus(20.5)", SoftplusScalar(20.5), 20.5},
		{"softplus(-200)", SoftplusScalar(-200), 0},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

func TestRMSNorm(t *testing.T) {
	rng := newRNG(8)
	for _, n := range lengths() {
		for _, off := range []int{0, 1, 2} {
			x := offsetCopy(randVec(rng, n), off)
			w := offsetCopy(randVec(rng, n), off)
			dst, check := guarded(n, off)
			RMSNorm(dst, x, w, 1e-5)
			check(t)
			var ss float64
			for _, v := range x {
				ss += float64(v) * float64(v)
			}
			r := 1 / math.Sqrt(ss/float64(n)+float64(float32(1e-5)))
			for i := range dst {
				want := float64(x[i]) * r * float64(w[i])
				if !near(float64(dst[i]), want, 5e-7, 1e-30) {
					t.Fatalf("n=%d [%d]: %v, want %v", n, i, dst[i], want)
				}
			}
			// In place.
			in := append([]float32(nil), x...)
			RMSNorm(in, in, w, 1e-5)
			sameBits(t, fmt.Sprintf("RMSNorm in place n=%d", n), in, dst)
		}
	}
}

// refConvStep is ConvStep's documented loop.
func refConvStep(out, window, x, w, b []float32, E, K int) {
	for e := 0; e < E; e++ {
		var c float32
		if b != nil {
			c = b[e]
		}
		for k := 0; k < K-1; k++ {
			c += w[e*K+k] * window[e*(K-1)+k]
		}
		c += w[e*K+K-1] * x[e]
		out[e] = c
		if K > 1 {
			win := append(window[e*(K-1)+1:e*(K-1)+K-1:e*(K-1)+K-1], x[e])
			copy(window[e*(K-1):], win)
		}
	}
}

// TestConv holds the conv at each level to its plain loop, stepping and
// over a sequence; E covers the vector kernels' groups (8 channels over
// tokens, 16 for one token at AVX-512) and their remainders, and guard
// values follow the outputs and the window.
func TestConv(t *testing.T) {
	forLevels(t, testConv)
}

func testConv(t *testing.T) {
	rng := newRNG(9)
	for _, E := range []int{0, 1, 3, 16, 17, 48, 64, 70} {
		for _, K := range []int{1, 2, 4, 5} {
			for _, bias := range []bool{true, false} {
				for _, off := range []int{0, 1} {
					const T = 9
					name := fmt.Sprintf("E=%d K=%d bias=%v off=%d", E, K, bias, off)
					w := offsetCopy(randVec(rng, E*K), off)
					var b []float32
					if bias {
						b = offsetCopy(randVec(rng, E), off)
					}
					win0 := randVec(rng, E*(K-1))
					x := offsetCopy(randVec(rng, T*E), off)
					// Stepping vs the plain loop.
					winS, checkWin := guarded(E*(K-1), off)
					copy(winS, win0)
					winR := append([]float32(nil), win0...)
					stepOut := make([]float32, T*E)
					for tok := 0; tok < T; tok++ {
						out, check := guarded(E, off)
						ConvStep(out, winS, x[tok*E:(tok+1)*E], w, b, E, K)
						check(t)
						ref := make([]float32, E)
						refConvStep(ref, winR, x[tok*E:(tok+1)*E], w, b, E, K)
						if exactFloat {
							sameBits(t, name+" step", out, ref)
						}
						for e := range out {
							if !near(float64(out[e]), float64(ref[e]), 1e-6, 1e-6) {
								t.Fatalf("%s token %d: out[%d] = %v, want %v", name, tok, e, out[e], ref[e])
							}
						}
						sameBits(t, name+" window", winS, winR)
						checkWin(t)
						copy(stepOut[tok*E:], out)
					}
					// The sequence form equals stepping exactly.
					winQ := offsetCopy(win0, off)
					out, check := guarded(T*E, off)
					Conv(out, winQ, x, w, b, E, K, T)
					check(t)
					sameBits(t, name+" Conv vs steps", out, stepOut)
					sameBits(t, name+" Conv window", winQ, winS)
				}
			}
		}
	}
}

// refScanStep is ScanStep's documented loop, in float64 (to bound the
// float32 kernel's error) or float32 (its exact order).
func refScanStep32(y, h, dt, A, B, C, a, D, z []float32) {
	E, N := len(dt), len(B)
	for e := 0; e < E; e++ {
		var s float32
		for n := 0; n < N; n++ {
			h[e*N+n] = exp32(dt[e]*A[e*N+n])*h[e*N+n] + dt[e]*B[n]*a[e]
			s += h[e*N+n] * C[n]
		}
		y[e] = s + D[e]*a[e]
		if z != nil {
			y[e] *= z[e] / (1 + exp32(-z[e]))
		}
	}
}

func refScanStep64(y, h []float64, dt, A, B, C, a, D, z []float32) {
	E, N := len(dt), len(B)
	for e := 0; e < E; e++ {
		var s float64
		for n := 0; n < N; n++ {
			h[e*N+n] = math.Exp(float64(dt[e])*float64(A[e*N+n]))*h[e*N+n] + float64(dt[e])*float64(B[n])*float64(a[e])
			s += h[e*N+n] * float64(C[n])
		}
		y[e] = s + float64(D[e])*float64(a[e])
		if z != nil {
			zz := float64(z[e])
			y[e] *= zz / (1 + math.Exp(-zz))
		}
	}
}

type scanCase struct {
	E, N, T            int
	h0, dt, A, B, C, a []float32
	D, z               []float32
}

func newScanCase(seed uint64, E, N, T int, gate bool) scanCase {
	rng := newRNG(seed)
	c := scanCase{E: E, N: N, T: T}
	c.h0 = randVec(rng, E*N)
	c.dt = randVec(rng, T*E)
	for i := range c.dt {
		c.dt[i] = SoftplusScalar(c.dt[i]*3 - 2)
	}
	c.A = randVec(rng, E*N)
	for i := range c.A {
		c.A[i] = -exp32(c.A[i] * 2)
	}
	c.B, c.C, c.a, c.D = randVec(rng, T*N), randVec(rng, T*N), randVec(rng, T*E), randVec(rng, E)
	if gate {
		c.z = randVec(rng, T*E)
	}
	return c
}

func (c scanCase) zAt(t int) []float32 {
	if c.z == nil {
		return nil
	}
	return c.z[t*c.E : (t+1)*c.E]
}

func TestScan(t *testing.T) {
	forLevels(t, testScan)
}

func testScan(t *testing.T) {
	p := NewPool(3)
	defer p.Close()
	seed := uint64(10)
	for _, E := range []int{0, 1, 5, 33, 70} {
		for _, N := range []int{0, 1, 4, 8, 16, 17, 32} {
			for _, gate := range []bool{false, true} {
				seed++
				const T = 7
				name := fmt.Sprintf("E=%d N=%d gate=%v", E, N, gate)
				c := newScanCase(seed, E, N, T, gate)
				h := append([]float32(nil), c.h0...)
				hr := append([]float32(nil), c.h0...)
				h64 := make([]float64, E*N)
				for i, v := range c.h0 {
					h64[i] = float64(v)
				}
				stepY := make([]float32, T*E)
				for tok := 0; tok < T; tok++ {
					e0, e1, n0, n1 := tok*E, (tok+1)*E, tok*N, (tok+1)*N
					y, check := guarded(E, 1)
					ScanStep(y, h, c.dt[e0:e1], c.A, c.B[n0:n1], c.C[n0:n1], c.a[e0:e1], c.D, c.zAt(tok))
					check(t)
					yr := make([]float32, E)
					refScanStep32(yr, hr, c.dt[e0:e1], c.A, c.B[n0:n1], c.C[n0:n1], c.a[e0:e1], c.D, c.zAt(tok))
					if exactFloat && (simd == simdGo || N%8 != 0) {
						sameBits(t, name+" y", y, yr)
						sameBits(t, name+" h", h, hr)
					}
					y64 := make([]float64, E)
					refScanStep64(y64, h64, c.dt[e0:e1], c.A, c.B[n0:n1], c.C[n0:n1], c.a[e0:e1], c.D, c.zAt(tok))
					for e := range y {
						if !near(float64(y[e]), y64[e], 1e-5, 1e-5) {
							t.Fatalf("%s token %d: y[%d] = %v, float64 %v", name, tok, e, y[e], y64[e])
						}
					}
					copy(stepY[e0:], y)
				}
				for _, pool := range []*Pool{nil, p} {
					hs := append([]float32(nil), c.h0...)
					y, check := guarded(T*E, 2)
					if pool == nil {
						Scan(y, hs, c.dt, c.A, c.B, c.C, c.a, c.D, c.z, E, N, T)
					} else {
						pool.Scan(y, hs, c.dt, c.A, c.B, c.C, c.a, c.D, c.z, E, N, T)
					}
					check(t)
					sameBits(t, name+" Scan vs steps y", y, stepY)
					sameBits(t, name+" Scan vs steps h", hs, h)
				}
			}
		}
	}
}

// TestPoolScanSplit runs a scan big enough for the pool to split it.
func TestPoolScanSplit(t *testing.T) {
	forLevels(t, testPoolScanSplit)
}

func testPoolScanSplit(t *testing.T) {
	p := NewPool(3)
	defer p.Close()
	c := newScanCase(99, 203, 16, 16, true) // split at channels 67 and 135
	h1, h2 := append([]float32(nil), c.h0...), append([]float32(nil), c.h0...)
	y1, y2 := make([]float32, c.T*c.E), make([]float32, c.T*c.E)
	Scan(y1, h1, c.dt, c.A, c.B, c.C, c.a, c.D, c.z, c.E, c.N, c.T)
	p.Scan(y2, h2, c.dt, c.A, c.B, c.C, c.a, c.D, c.z, c.E, c.N, c.T)
	sameBits(t, "y", y2, y1)
	sameBits(t, "h", h2, h1)
}

func refAttend(q, K, V []float32, n, H int) []float64 {
	A := len(q)
	dh := A / H
	out := make([]float64, A)
	for h := 0; h < H; h++ {
		s := make([]float64, n)
		m := math.Inf(-1)
		for j := range s {
			for i := h * dh; i < (h+1)*dh; i++ {
				s[j] += float64(q[i]) * float64(K[j*A+i])
			}
			s[j] /= math.Sqrt(float64(dh))
			m = math.Max(m, s[j])
		}
		var sum float64
		for j := range s {
			s[j] = math.Exp(s[j] - m)
			sum += s[j]
		}
		for j := range s {
			for i := h * dh; i < (h+1)*dh; i++ {
				out[i] += s[j] / sum * float64(V[j*A+i])
			}
		}
	}
	return out
}

func TestAttend(t *testing.T) {
	forLevels(t, testAttend)
}

func testAttend(t *testing.T) {
	rng := newRNG(11)
	for _, H := range []int{1, 2, 4} {
		for _, dh := range []int{1, 3, 8, 16, 24, 32} {
			for n := 0; n <= 60; n += 1 + n/8 {
				for _, off := range []int{0, 1} {
					A := H * dh
					q := randVec(rng, A)
					for i := range q {
						q[i] *= 8 // sharp softmax: stability matters
					}
					q = offsetCopy(q, off)
					K := offsetCopy(randVec(rng, n*A), off)
					V := offsetCopy(randVec(rng, n*A), off)
					out, check := guarded(A, off)
					Attend(out, q, K, V, n, H)
					check(t)
					want := refAttend(q, K, V, n, H)
					for i := range out {
						if !near(float64(out[i]), want[i], 1e-5, 1e-6) {
							t.Fatalf("H=%d dh=%d n=%d: out[%d] = %v, want %v", H, dh, n, i, out[i], want[i])
						}
					}
				}
			}
		}
	}
	// Keeping the scores changes no bit; past maxKeptScores Attend
	// recomputes them.
	for _, n := range []int{1, 7, 64, maxKeptScores, maxKeptScores + 1, 700} {
		A, H := 64, 4
		q, K, V := randVec(rng, A), randVec(rng, n*A), randVec(rng, n*A)
		two := make([]float32, A)
		attendTwoPass(two, q, K, V, n, H, A/H, 4)
		if n <= maxKeptScores {
			kept, check := guarded(A, 0)
			clear(kept)
			attendKept(kept, q, K, V, n, H, A/H, 4)
			check(t)
			sameBits(t, fmt.Sprintf("n=%d the kept-scores loop vs the two-pass loop", n), kept, two)
		}
		out, check := guarded(A, 0)
		Attend(out, q, K, V, n, H)
		check(t)
		want := refAttend(q, K, V, n, H)
		for i := range out {
			if !near(float64(out[i]), want[i], 1e-5, 1e-6) {
				t.Fatalf("n=%d: out[%d] = %v, want %v", n, i, out[i], want[i])
			}
		}
	}
	// Large scores must not overflow.
	q := []float32{1000, -1000}
	K := []float32{1000, 0, -1000, 0, 0, 1000}
	V := []float32{1, 2, 3, 4, 5, 6}
	out := make([]float32, 2)
	Attend(out, q, K, V, 3, 1)
	if math.IsNaN(float64(out[0])) || out[0] != 1 || out[1] != 2 {
		t.Errorf("large scores: %v, want [1 2]", out)
	}
}

// TestPoolConvSiLU checks that the pool's fused conv + SiLU, split across
// threads, equals Conv then SiLU bit for bit, state included.
func TestPoolConvSiLU(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		rng := newRNG(91)
		p := NewPool(3)
		defer p.Close()
		for _, c := range []struct{ E, K, T int }{{1536, 4, 16}, {203, 4, 200}, {5, 3, 2}, {64, 1, 3}} {
			w, b := randVec(rng, c.E*c.K), randVec(rng, c.E)
			win0, x := randVec(rng, c.E*(c.K-1)), randVec(rng, c.T*c.E)
			want := make([]float32, c.T*c.E)
			winW := append([]float32(nil), win0...)
			Conv(want, winW, x, w, b, c.E, c.K, c.T)
			SiLU(want, want)
			for _, pool := range []*Pool{nil, p} {
				got, check := guarded(c.T*c.E, 1)
				win := append([]float32(nil), win0...)
				pool.ConvSiLU(got, win, x, w, b, c.E, c.K, c.T)
				check(t)
				name := fmt.Sprintf("E=%d K=%d T=%d pool=%v", c.E, c.K, c.T, pool != nil)
				sameBits(t, name+" out", got, want)
				sameBits(t, name+" window", win, winW)
			}
		}
	})
}
