package ops

import (
	"math"
	"testing"
)

// forLevels runs f as a subtest once per kernel set this machine supports,
// the pure-Go one first, and restores the detected level afterwards.
func forLevels(t *testing.T, f func(t *testing.T)) {
	saved := simd
	defer func() { simd = saved }()
	for l := simdGo; l <= saved; l++ {
		simd = l
		t.Run(l.String(), f)
	}
}

// quantBound is the error that quantising x per block adds to sum w*x:
// sum |w[i]| * |x[i] - d*q[i]|, computed from QuantizeQ8's output; each term
// is at most |w[i]| * max|x_block|/254 (TestQuantizeQ8).
func quantBound(w, x []float32) float64 {
	q := make([]int8, len(x))
	d := make([]float32, len(x)/32)
	QuantizeQ8(q, d, x)
	var e float64
	for i := range x {
		e += math.Abs(float64(w[i])) * math.Abs(float64(x[i])-float64(d[i/32])*float64(q[i]))
	}
	return e
}

// checkQuantResult checks one output of a block-type product on quantised
// activations: within float rounding of sum w*x^ (x^ = d*q, the activations
// the kernel sees), and within quantBound plus rounding of sum w*x.
func checkQuantResult(t *testing.T, what string, r int, w, x []float32, got float32) {
	t.Helper()
	q := make([]int8, len(x))
	d := make([]float32, len(x)/32)
	QuantizeQ8(q, d, x)
	xh := make([]float32, len(x))
	for i := range x {
		xh[i] = d[i/32] * float32(q[i])
	}
	sum, abs := ref64(w, xh)
	rnd := float64(len(x)/32+8) * 0x1p-24 * abs
	if e := math.Abs(float64(got) - sum); e > rnd {
		t.Fatalf("%s row %d: got %v, sum over quantised x %v, error %g > %g", what, r, got, sum, e, rnd)
	}
	sum, abs = ref64(w, x)
	if e, b := math.Abs(float64(got)-sum), quantBound(w, x)+rnd+float64(len(x)+4)*0x1p-24*abs; e > b {
		t.Fatalf("%s row %d: got %v, float64 %v, error %g > bound %g", what, r, got, sum, e, b)
	}
}

// TestQuantizeQ8 checks the quantiser's contract on blocks of every kind:
// d = max|x|/127, |q| <= 127, |x - d*q| <= d/2 (with float32 slack).
func TestQuantizeQ8(t *testing.T) {
	rng := newRNG(40)
	x := randVec(rng, 32*8)
	for i := 32; i < 64; i++ {
		x[i] = 0 // an all-zero block
	}
	x[64] = 1e-30        // a tiny block
	x[96], x[97] = 5, -5 // a tie at the maximum
	for i := 128; i < 160; i++ {
		x[i] = float32(i-144) * 0.5 // values on the quantisation grid
	}
	for i := 160; i < 192; i++ {
		x[i] *= 1e6
	}
	q := make([]int8, len(x))
	d := make([]float32, len(x)/32)
	QuantizeQ8(q, d, x)
	for b := range d {
		var amax float32
		for _, v := range x[b*32 : b*32+32] {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		if d[b] != amax/127 {
			t.Fatalf("block %d: d = %v, want %v", b, d[b], amax/127)
		}
		for i := b * 32; i < b*32+32; i++ {
			if q[i] < -127 {
				t.Fatalf("[%d] q = %d", i, q[i])
			}
			if e := math.Abs(float64(x[i]) - float64(d[b])*float64(q[i])); e > float64(d[b])*(0.5+0x1p-16) {
				t.Fatalf("[%d] x = %v, d*q = %v*%d, error %g > d/2", i, x[i], d[b], q[i], e)
			}
		}
	}
	if d[1] != 0 || q[40] != 0 {
		t.Errorf("zero block: d = %v, q = %d", d[1], q[40])
	}
}

// TestVexp checks the scan's vector exp against math.Exp on a sweep of
// float32 bit patterns and on the edges of its range (the bound is in
// scan_simd.go's comment).
func TestVexp(t *testing.T) {
	if simd < simdAVX2 {
		t.Skip("no vector exp on this machine")
	}
	src := bitSweep(65521)
	for v := float32(-105); v <= 90; v += 0.0137 {
		src = append(src, v)
	}
	src = append(src, 0, -0.0, 88.72, 88.7228, 88.7229, -87.33, -87.34, -103.9, -103.98, -104, -1e30, 1e30,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 1e-30, -1e-30)
	for len(src)%8 != 0 {
		src = append(src, 1)
	}
	got := make([]float32, len(src))
	vexp(got, src)
	worst := 0.0
	for i, v := range src {
		want64 := math.Exp(float64(v))
		want := float32(want64)
		g := got[i]
		switch {
		case math.IsNaN(float64(v)):
			if !math.IsNaN(float64(g)) {
				t.Fatalf("vexp(NaN) = %v", g)
			}
		case want64 < 0x1p-126: // subnormal or zero result
			if e := math.Abs(float64(g) - want64); e > 0x1p-149 {
				t.Fatalf("vexp(%v) = %g, want %g (error %g > 2^-149)", v, g, want64, e)
			}
		case math.IsInf(float64(want), 1):
			if !math.IsInf(float64(g), 1) {
				t.Fatalf("vexp(%v) = %v, want +Inf", v, g)
			}
		default:
			d := ulpDiff(g, want)
			worst = max(worst, d)
			if d > 2 {
				t.Fatalf("vexp(%v) = %v, want %v (%v ulp)", v, g, want, d)
			}
		}
	}
	t.Logf("largest error on normal results: %v ulp", worst)
}

// TestSoftplusSweep bounds the vector softplus's error against float64 on a
// sweep of float32 bit patterns: at most 4 ulp of the correctly rounded
// result (the vector exp's 2 ulp, the division and the series).
func TestSoftplusSweep(t *testing.T) {
	if simd < simdAVX2 {
		t.Skip("no vector softplus on this machine")
	}
	src := bitSweep(4099)
	src = append(src, 0, -0.0, 20, 20.0001, 19.9999, -87.3, -103.9, -104, -200, 88.8, 1e30, -1e30,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()))
	got := make([]float32, len(src))
	softplusVec(got, src)
	worst := 0.0
	for i, v := range src {
		x := float64(v)
		want64 := x
		if x <= 20 {
			want64 = math.Log1p(math.Exp(x))
		}
		g := got[i]
		switch {
		case math.IsNaN(x):
			if !math.IsNaN(float64(g)) {
				t.Fatalf("softplus(NaN) = %v", g)
			}
		case want64 < 0x1p-126:
			if e := math.Abs(float64(g) - want64); e > 0x1p-148 {
				t.Fatalf("softplus(%v) = %g, want %g", v, g, want64)
			}
		default:
			want := float32(want64)
			d := ulpDiff(g, want)
			worst = max(worst, d)
			if d > 4 {
				t.Fatalf("softplus(%v) = %v, want %v (%v ulp)", v, g, want, d)
			}
		}
	}
	t.Logf("largest error on normal results: %v ulp", worst)
}

// TestActivationKernels checks the assembly SiLU, sigmoid and gated SiLU
// against the same formulas around the vector exp in Go, bit for bit, on
// every length and offset and on special values.
func TestActivationKernels(t *testing.T) {
	if simd < simdAVX2 {
		t.Skip("no vector kernels on this machine")
	}
	rng := newRNG(5)
	vexpOf := func(v float32) float32 {
		var in, out [8]float32
		in[0] = v
		expAVX2(&out[0], &in[0], 8)
		return out[0]
	}
	specials := []float32{0, float32(math.Copysign(0, -1)), 1e-30, -1e-30, 20, -20, 88, -88, 104, -104, 1e30, -1e30,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN())}
	for _, n := range lengths() {
		for _, off := range []int{0, 3} {
			x := randVec(rng, n)
			for i := range x {
				x[i] *= 30
				if i < len(specials) && n > 40 {
					x[i] = specials[i]
				}
			}
			x = offsetCopy(x, off)
			z := offsetCopy(randVec(rng, n), off)
			silu, check1 := guarded(n, off)
			siluVec(silu, x)
			check1(t)
			sig, check2 := guarded(n, off)
			sigmoidVec(sig, x)
			check2(t)
			y, check3 := guarded(n, off)
			copy(y, z)
			mulSiLUVec(y, x)
			check3(t)
			for i, v := range x {
				e := vexpOf(-v)
				same := func(name string, got, want float32) {
					if math.Float32bits(got) != math.Float32bits(want) && !(got != got && want != want) {
						t.Fatalf("%s n=%d [%d] x=%v: %v, want %v", name, n, i, v, got, want)
					}
				}
				same("silu", silu[i], v/(1+e))
				same("sigmoid", sig[i], 1/(1+e))
				same("mulSiLU", y[i], z[i]*(v/(1+e)))
			}
		}
	}
}

// bitSweep returns the float32 values of every step-th bit pattern (all
// signs and exponents, NaNs and infinities included).
func bitSweep(step uint64) []float32 {
	var src []float32
	for bits := uint64(0); bits < 1<<32; bits += step {
		src = append(src, math.Float32frombits(uint32(bits)))
	}
	return src
}

// ulpDiff is the distance of two float32 values of the same sign in units
// in the last place.
func ulpDiff(a, b float32) float64 {
	return math.Abs(float64(int64(math.Float32bits(a)) - int64(math.Float32bits(b))))
}
