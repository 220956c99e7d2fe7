package quant

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

// refF16ToF64 is the plain oracle for F16ToF32: the value the bits denote,
// computed in float64 from the format's definition.
func refF16ToF64(h uint16) float64 {
	s := 1.0
	if h&0x8000 != 0 {
		s = -1
	}
	exp := int(h>>10) & 0x1f
	mant := float64(h & 0x3ff)
	switch exp {
	case 0x1f:
		if mant != 0 {
			return math.NaN()
		}
		return s * math.Inf(1)
	case 0:
		return s * math.Ldexp(mant, -24)
	}
	return s * math.Ldexp(1024+mant, exp-25)
}

func TestF16ToF32Exhaustive(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		got := F16ToF32(h)
		want := refF16ToF64(h)
		if math.IsNaN(want) {
			if !math.IsNaN(float64(got)) {
				t.Fatalf("F16ToF32(%#04x) = %v, want NaN", h, got)
			}
			// Payload and sign are kept.
			b := math.Float32bits(got)
			if uint16(b>>16)&0x8000 != h&0x8000 || (b>>13)&0x3ff != uint32(h&0x3ff) {
				t.Fatalf("F16ToF32(%#04x) = %#08x: NaN sign/payload lost", h, b)
			}
			continue
		}
		if float64(got) != want || math.Signbit(float64(got)) != math.Signbit(want) {
			t.Fatalf("F16ToF32(%#04x) = %v, want %v", h, got, want)
		}
	}
}

func TestF32ToF16RoundTripEveryHalf(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		f := F16ToF32(h)
		got := F32ToF16(f)
		if h&0x7c00 == 0x7c00 && h&0x3ff != 0 { // NaN: stays NaN, quiet, same sign
			if got&0x7c00 != 0x7c00 || got&0x3ff == 0 || got&0x200 == 0 || got&0x8000 != h&0x8000 {
				t.Fatalf("F32ToF16(F16ToF32(%#04x)) = %#04x, want quiet NaN", h, got)
			}
			continue
		}
		if got != h {
			t.Fatalf("F32ToF16(F16ToF32(%#04x)) = %#04x", h, got)
		}
	}
}

// TestF32ToF16Midpoints checks every midpoint between adjacent finite halves
// of the same sign (ties go to the even mantissa) and the float32 values one
// ulp either side of it (they go to the nearer half).
func TestF32ToF16Midpoints(t *testing.T) {
	for _, sign := range []uint16{0, 0x8000} {
		for m := uint16(0); m < 0x7bff; m++ {
			lo, hi := sign|m, sign|(m+1)
			a, b := float64(F16ToF32(lo)), float64(F16ToF32(hi))
			mid := float32((a + b) / 2) // exact: 12 significant bits
			if float64(mid) != (a+b)/2 {
				t.Fatalf("midpoint of %#04x,%#04x not exact in float32", lo, hi)
			}
			even := lo
			if m&1 == 1 {
				even = hi
			}
			if got := F32ToF16(mid); got != even {
				t.Fatalf("F32ToF16(%v) (midpoint of %#04x,%#04x) = %#04x, want %#04x", mid, lo, hi, got, even)
			}
			// lo is the half nearer zero: "below" is one float32 ulp toward
			// zero from the midpoint, "above" one ulp away from zero.
			below := math.Nextafter32(mid, 0)
			above := math.Nextafter32(mid, mid*2)
			if got := F32ToF16(below); got != lo {
				t.Fatalf("F32ToF16(%v) = %#04x, want %#04x", below, got, lo)
			}
			if got := F32ToF16(above); got != hi {
				t.Fatalf("F32ToF16(%v) = %#04x, want %#04x", above, got, hi)
			}
		}
	}
}

// refF32ToF16 is the plain oracle: binary search over the sorted finite
// non-negative halves for the nearest one, ties to even; beyond 65520 inf.
func refF32ToF16(f float32) uint16 {
	x := float64(f)
	var sign uint16
	if math.Signbit(x) {
		sign, x = 0x8000, -x
	}
	if x >= 65520 {
		return sign | 0x7c00
	}
	// Halves 0..0x7bff are increasing in value.
	i := sort.Search(0x7c00, func(i int) bool { return refF16ToF64(uint16(i)) >= x })
	if i == 0 {
		return sign
	}
	lo, hi := uint16(i-1), uint16(i)
	if i == 0x7c00 {
		return sign | 0x7bff
	}
	dl, dh := x-refF16ToF64(lo), refF16ToF64(hi)-x
	switch {
	case dh == 0 || dh < dl:
		return sign | hi
	case dl < dh:
		return sign | lo
	case lo&1 == 0:
		return sign | lo
	}
	return sign | hi
}

func TestF32ToF16Random(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	specials := []float32{0, float32(math.Copysign(0, -1)), 65504, 65519.996, 65520, 65536, 1e10,
		float32(math.Inf(1)), float32(math.Inf(-1)), math.MaxFloat32, math.SmallestNonzeroFloat32,
		5.960464477539063e-08, 2.9802322387695312e-08, 2.98023259e-08, 6.103515625e-05, 6.1035156e-05}
	check := func(f float32) {
		got, want := F32ToF16(f), refF32ToF16(f)
		if got != want {
			t.Fatalf("F32ToF16(%v = %#08x) = %#04x, want %#04x", f, math.Float32bits(f), got, want)
		}
	}
	for _, f := range specials {
		check(f)
		check(-f)
	}
	for range 200000 {
		// Random bits restricted to exponents near the half range, plus
		// fully random bits.
		b := r.Uint32()
		if r.IntN(2) == 0 {
			b = b&0x807fffff | (r.Uint32N(40)+127-30)<<23
		}
		f := math.Float32frombits(b)
		if f != f {
			continue
		}
		check(f)
	}
	if h := F32ToF16(float32(math.NaN())); h&0x7c00 != 0x7c00 || h&0x200 == 0 {
		t.Fatalf("F32ToF16(NaN) = %#04x, want quiet NaN", h)
	}
	// A signalling NaN whose payload sits only in the low bits stays NaN.
	if h := F32ToF16(math.Float32frombits(0x7f800001)); h&0x7c00 != 0x7c00 || h&0x3ff == 0 {
		t.Fatalf("F32ToF16(sNaN) = %#04x, want NaN", h)
	}
}

func TestBF16(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		f := BF16ToF32(h)
		if math.Float32bits(f) != uint32(h)<<16 {
			t.Fatalf("BF16ToF32(%#04x) = %v", h, f)
		}
		got := F32ToBF16(f)
		if f != f {
			if got&0x7f80 != 0x7f80 || got&0x7f == 0 || got&0x40 == 0 || got&0x8000 != h&0x8000 {
				t.Fatalf("F32ToBF16(NaN %#04x) = %#04x, want quiet NaN", h, got)
			}
			continue
		}
		if got != h {
			t.Fatalf("F32ToBF16(BF16ToF32(%#04x)) = %#04x", h, got)
		}
		// Midpoint to the next value up in magnitude (skipping into NaN).
		if h&0x7fff >= 0x7f80 {
			continue
		}
		mid := math.Float32frombits(uint32(h)<<16 | 0x8000)
		want := h
		if h&1 == 1 {
			want = h + 1
		}
		if got := F32ToBF16(mid); got != want {
			t.Fatalf("F32ToBF16(midpoint above %#04x) = %#04x, want %#04x", h, got, want)
		}
		if got := F32ToBF16(math.Float32frombits(uint32(h)<<16 | 0x7fff)); got != h {
			t.Fatalf("F32ToBF16(just below midpoint above %#04x) = %#04x", h, got)
		}
		if got := F32ToBF16(math.Float32frombits(uint32(h)<<16 | 0x8001)); got != h+1 {
			t.Fatalf("F32ToBF16(just above midpoint above %#04x) = %#04x", h, got)
		}
	}
	if got := F32ToBF16(math.MaxFloat32); got != 0x7f80 {
		t.Fatalf("F32ToBF16(MaxFloat32) = %#04x, want inf", got)
	}
	if got := F32ToBF16(math.Float32frombits(0x7f800001)); got&0x7f80 != 0x7f80 || got&0x7f == 0 {
		t.Fatalf("F32ToBF16(sNaN) = %#04x, want NaN", got)
	}
}
