package quant

import (
	"bytes"
	"encoding/binary"
	"flag"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "regenerate testdata/golden by running testdata/gen_golden.py (needs /usr/bin/python3 with numpy and torch)")

// errBound returns, for every element of a block (or single value) x, the
// largest |x - decode(encode(x))| that the codec may produce. The bounds are
// derived a priori from the formulas in the package doc, not measured:
//
// F32: exact, 0.
//
// F16: round to nearest gives at most half an ulp. For |x| >= 2^-14 the ulp
// is at most |x|*2^-10, so the error is <= |x|*2^-11; below, the ulp is
// 2^-24 (subnormals), so the error is <= 2^-25.
//
// BF16: likewise with 7 mantissa bits: <= max(|x|*2^-8, 2^-134).
//
// Q8_0: let d = amax/127 (real), d16 the stored f16 scale, q the quant.
// |x - d16*q| <= |x - d*q| + |q|*|d - d16| (+ the float32 rounding of the
// decode product, |x'|*2^-24).
//   - q = round(fl(x*fl(1/fl(d)))); the three float32 roundings move x/d by
//     at most 127*3*2^-24 < 2^-15, so |x/d - q| <= 1/2 + 2^-15 and
//     |x - d*q| <= d*(1/2 + 2^-15).
//   - |d - d16| <= delta = max(d*2^-11, 2^-25) + d*2^-23 (f16 rounding of
//     the float32 scale, plus the float32 rounding of amax/127), and
//     |q| <= |x|/d + 1/2 + 2^-15.
//
// So |x - x'| <= d*(1/2 + 2^-15) + (|x|/d + 1/2 + 2^-15)*delta + |x'|*2^-24.
// When the f16 scale flushes to 0 (d <= 2^-25) this is >= |x|, which covers
// the zero block that results (and the wrapped quants of float32-subnormal
// scales).
//
// Q4_0: d = amax/8, q-8 = trunc(x*id + 8.5) - 8 = round-half-up(x/d'), with
// id = 1/d' and d' = -m/8 = ±d. The additional float32 rounding of +8.5 is
// <= 2^-20, so the rounding term is d*(1/2 + 2^-16), except the clamp: an
// element of sign opposite to m with |x|/d > 7.5 wants q-8 = 8 but gets 7,
// an error of up to d*(1 + 2^-16). The scale term is as for Q8_0 with
// |q-8| <= |x|/d + 1/2 + 2^-16.
func errBound(t Type, x []float32, decoded []float32) []float64 {
	out := make([]float64, len(x))
	switch t {
	case F32:
	case F16:
		for i, v := range x {
			out[i] = math.Max(math.Abs(float64(v))*0x1p-11, 0x1p-25)
		}
	case BF16:
		for i, v := range x {
			out[i] = math.Max(math.Abs(float64(v))*0x1p-8, 0x1p-134)
		}
	case Q8_0, Q4_0:
		div, slack := 127.0, 0x1p-15
		if t == Q4_0 {
			div, slack = 8.0, 0x1p-16
		}
		for b := 0; b < len(x); b += BlockSize {
			blk := x[b : b+BlockSize]
			var amax, m float64
			for _, v := range blk {
				if a := math.Abs(float64(v)); a > amax {
					amax, m = a, float64(v)
				}
			}
			d := amax / div
			if d == 0 {
				continue // all zero: exact
			}
			delta := math.Max(d*0x1p-11, 0x1p-25) + d*0x1p-23
			for j, v := range blk {
				xv := float64(v)
				round := 0.5 + slack
				if t == Q4_0 && xv*m < 0 && math.Abs(xv)/d > 7.5-1e-4 {
					round = 1 + slack
				}
				out[b+j] = d*round + (math.Abs(xv)/d+0.5+slack)*delta + math.Abs(float64(decoded[b+j]))*0x1p-24
			}
		}
	}
	return out
}

// checkRoundTrip encodes x as t, decodes it and checks every element
// against errBound. It returns the largest error in units of the bound.
func checkRoundTrip(tb testing.TB, typ Type, x []float32) float64 {
	tb.Helper()
	enc, err := Quantize(typ, x)
	if err != nil {
		tb.Fatalf("%s: %v", typ, err)
	}
	dec, err := Dequantize(typ, enc)
	if err != nil {
		tb.Fatalf("%s: %v", typ, err)
	}
	if len(dec) != len(x) {
		tb.Fatalf("%s: decoded %d values, want %d", typ, len(dec), len(x))
	}
	bound := errBound(typ, x, dec)
	worst := 0.0
	for i := range x {
		e := math.Abs(float64(x[i]) - float64(dec[i]))
		if e > bound[i] || dec[i] != dec[i] {
			tb.Fatalf("%s: value %d: %g decodes to %g, error %g > bound %g", typ, i, x[i], dec[i], e, bound[i])
		}
		if bound[i] > 0 {
			worst = max(worst, e/bound[i])
		} else if e != 0 {
			tb.Fatalf("%s: value %d: %g decodes to %g, want exact", typ, i, x[i], dec[i])
		}
	}
	return worst
}

// limit returns the largest magnitude each type accepts in a block, with a
// margin, so that random data stays encodable.
func limit(t Type) float64 {
	switch t {
	case F16:
		return 65504
	case Q8_0:
		return 127 * 65504
	case Q4_0:
		return 8 * 65504
	}
	return 1e38
}

func TestRoundTripBounds(t *testing.T) {
	const n = 64 * BlockSize
	r := rand.New(rand.NewPCG(7, 11))
	gens := []struct {
		name string
		gen  func(i int) float64
	}{
		{"normal", func(int) float64 { return r.NormFloat64() }},
		{"uniform", func(int) float64 { return r.Float64()*2 - 1 }},
		{"uniform_positive", func(int) float64 { return r.Float64() * 3 }},
		// One scale per block, from 1e-12 to 1e5.
		{"block_scales", func(i int) float64 {
			s := math.Pow(10, float64((i/BlockSize)%18-12))
			return r.NormFloat64() * s
		}},
		// Scales varying by element across 14 decades inside a block.
		{"element_scales", func(int) float64 { return r.NormFloat64() * math.Pow(10, r.Float64()*14-10) }},
		// One outlier per block; the rest are crushed towards zero.
		{"outlier", func(i int) float64 {
			if i%BlockSize == 5 {
				return 1000
			}
			return r.NormFloat64() * 1e-3
		}},
		{"zeros", func(int) float64 { return 0 }},
		{"negative_zeros", func(int) float64 { return math.Copysign(0, -1) }},
		{"subnormal_f32", func(int) float64 { return r.NormFloat64() * 1e-40 }},
		{"tiny_scale_f16_subnormal", func(int) float64 { return r.NormFloat64() * 1e-5 }},
		{"tiny_scale_f16_zero", func(int) float64 { return r.NormFloat64() * 1e-8 }},
		{"inverse_scale_overflow", func(int) float64 { return (r.Float64()*2 - 1) * 0x1p-130 }},
		{"near_limit", func(int) float64 { return 0 }}, // per type, below
		{"constant", func(int) float64 { return -3.25 }},
	}
	for _, g := range gens {
		for _, typ := range Types {
			t.Run(g.name+"/"+typ.String(), func(t *testing.T) {
				x := make([]float32, n)
				for i := range x {
					x[i] = float32(g.gen(i))
				}
				if g.name == "near_limit" {
					lim := limit(typ)
					for i := range x {
						x[i] = float32((r.Float64()*2 - 1) * lim)
					}
					for b := 0; b < n; b += BlockSize {
						x[b+b/BlockSize%BlockSize] = float32(lim) // pin the block max
					}
				}
				// Keep each block encodable: scale down any block whose
				// largest value passes the type's limit.
				lim := limit(typ)
				for b := 0; b < n; b += BlockSize {
					amax := 0.0
					for _, v := range x[b : b+BlockSize] {
						amax = max(amax, math.Abs(float64(v)))
					}
					if amax > lim {
						for j := b; j < b+BlockSize; j++ {
							x[j] = float32(float64(x[j]) * lim / amax)
						}
					}
				}
				w := checkRoundTrip(t, typ, x)
				t.Logf("worst error / bound = %.3f", w)
			})
		}
	}
}

// TestQuantErrorIsTight checks that the bounds are not vacuous: on
// uniform data the worst Q8_0 error is close to d/2 and Q4_0's to d
// (the clamped element), so a codec that got the rounding wrong would be
// caught by the bound check above.
func TestQuantErrorIsTight(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	x := make([]float32, 256*BlockSize)
	for i := range x {
		x[i] = float32(r.Float64()*2 - 1)
	}
	for _, typ := range []Type{Q8_0, Q4_0} {
		if w := checkRoundTrip(t, typ, x); w < 0.9 {
			t.Errorf("%s: worst error is only %.3f of the bound", typ, w)
		}
	}
}

// TestGolden checks Encode against bytes computed independently with numpy
// and torch (testdata/gen_golden.py), and Decode against the decoded
// goldens' plain formula.
func TestGolden(t *testing.T) {
	dir := filepath.Join("testdata", "golden")
	if *update {
		cmd := exec.Command("/usr/bin/python3", filepath.Join("testdata", "gen_golden.py"))
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("gen_golden.py: %v", err)
		}
	}
	inputs, err := filepath.Glob(filepath.Join(dir, "*.f32"))
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no golden inputs in %s (%v)", dir, err)
	}
	types := map[string]Type{"f16": F16, "bf16": BF16, "q8_0": Q8_0, "q4_0": Q4_0}
	checked := 0
	for _, in := range inputs {
		raw, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		x, err := Dequantize(F32, raw)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		base := strings.TrimSuffix(in, ".f32")
		for ext, typ := range types {
			name := filepath.Base(base) + "." + ext
			got, encErr := Quantize(typ, x)
			if want, err := os.ReadFile(base + "." + ext + ".err"); err == nil {
				if encErr == nil || !strings.Contains(encErr.Error(), strings.TrimSpace(string(want))+" ") {
					t.Errorf("%s: error %v, want one naming %q", name, encErr, strings.TrimSpace(string(want)))
				}
				checked++
				continue
			}
			want, err := os.ReadFile(base + "." + ext)
			if err != nil {
				t.Errorf("%s: no golden: %v", name, err)
				continue
			}
			if encErr != nil {
				t.Errorf("%s: %v", name, encErr)
				continue
			}
			if !bytes.Equal(got, want) {
				for i := range got {
					if got[i] != want[i] {
						t.Errorf("%s: byte %d = %#02x, numpy has %#02x", name, i, got[i], want[i])
						break
					}
				}
				continue
			}
			checked++
		}
	}
	if checked < 40 {
		t.Errorf("only %d golden files checked", checked)
	}
}

// TestDecodeLayout pins the byte layout with hand-built blocks.
func TestDecodeLayout(t *testing.T) {
	// Q8_0: scale 0.5 (f16 0x3800), q[j] = j-16.
	q8 := make([]byte, Q8_0BlockBytes)
	binary.LittleEndian.PutUint16(q8, 0x3800)
	for j := range BlockSize {
		q8[2+j] = byte(int8(j - 16))
	}
	// Q4_0: scale -2 (f16 0xc000); byte 2+j = q[j] | q[j+16]<<4 with
	// q[j] = j and q[j+16] = 15-j.
	q4 := make([]byte, Q4_0BlockBytes)
	binary.LittleEndian.PutUint16(q4, 0xc000)
	for j := range 16 {
		q4[2+j] = byte(j) | byte(15-j)<<4
	}
	got8, err := Dequantize(Q8_0, q8)
	if err != nil {
		t.Fatal(err)
	}
	got4, err := Dequantize(Q4_0, q4)
	if err != nil {
		t.Fatal(err)
	}
	for j := range BlockSize {
		if want := 0.5 * float32(j-16); got8[j] != want {
			t.Errorf("Q8_0 value %d = %v, want %v", j, got8[j], want)
		}
		q := j
		if j >= 16 {
			q = 15 - (j - 16)
		}
		if want := -2 * float32(q-8); got4[j] != want {
			t.Errorf("Q4_0 value %d = %v, want %v", j, got4[j], want)
		}
	}
	// Float types: little-endian bit patterns.
	for _, c := range []struct {
		typ  Type
		raw  []byte
		want float32
	}{
		{F32, []byte{0x00, 0x00, 0x80, 0x3f}, 1},
		{F16, []byte{0x00, 0x3c}, 1},
		{F16, []byte{0x01, 0x00}, 0x1p-24},
		{BF16, []byte{0x80, 0x3f}, 1},
		{BF16, []byte{0x49, 0x40}, 3.140625},
	} {
		got, err := Dequantize(c.typ, c.raw)
		if err != nil || len(got) != 1 || got[0] != c.want {
			t.Errorf("%s % x: got %v, %v; want %v", c.typ, c.raw, got, err, c.want)
		}
		enc, err := Quantize(c.typ, []float32{c.want})
		if err != nil || !bytes.Equal(enc, c.raw) {
			t.Errorf("%s %v: encoded % x, %v; want % x", c.typ, c.want, enc, err, c.raw)
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	block := func(i int, v float32) []float32 {
		x := make([]float32, 2*BlockSize)
		for j := range x {
			x[j] = float32(j%7) - 3
		}
		x[i] = v
		return x
	}
	// The largest float32 amax whose Q8_0/Q4_0 scale still fits f16, and
	// the next one up.
	q8ok := float32(127 * 65519.99)
	for F32ToF16(q8ok/127) == 0x7c00 {
		q8ok = math.Nextafter32(q8ok, 0)
	}
	for F32ToF16(math.Nextafter32(q8ok, inf)/127) != 0x7c00 {
		q8ok = math.Nextafter32(q8ok, inf)
	}
	q4ok := math.Nextafter32(8*65520, 0)
	for _, c := range []struct {
		name    string
		typ     Type
		dst     int // -1: the right size
		src     []float32
		wantErr string // "" for success
	}{
		{"nan f32", F32, -1, block(17, nan), "value 17 is NaN"},
		{"+inf f16", F16, -1, block(3, inf), "value 3 is +Inf"},
		{"-inf bf16", BF16, -1, block(63, -inf), "value 63 is -Inf"},
		{"nan q8", Q8_0, -1, block(40, nan), "value 40 is NaN"},
		{"inf q4", Q4_0, -1, block(0, -inf), "value 0 is -Inf"},
		{"f16 overflow", F16, -1, block(9, 65520), "value 9 (65520) overflows f16"},
		{"f16 max ok", F16, -1, block(9, 65519.996), ""},
		{"f16 -max ok", F16, -1, block(9, -65504), ""},
		{"bf16 overflow", BF16, -1, block(9, -math.MaxFloat32), "value 9 (-3.4028235e+38) overflows bf16"},
		{"bf16 rounds to inf", BF16, -1, block(2, math.Float32frombits(0x7f7f8000)), "value 2 (3.3961775e+38) overflows bf16"},
		{"bf16 largest ok", BF16, -1, block(2, math.Float32frombits(0x7f7f7fff)), ""},
		{"q8 scale overflow", Q8_0, -1, block(33, math.Nextafter32(q8ok, inf)), "value 33 ("},
		{"q8 scale overflow neg", Q8_0, -1, block(34, -1e30), "value 34 (-1e+30): the int8 block scale"},
		{"q8 scale max ok", Q8_0, -1, block(33, -q8ok), ""},
		{"q4 scale overflow", Q4_0, -1, block(5, 8*65520), "value 5 (524160): the int4 block scale"},
		{"q4 scale max ok", Q4_0, -1, block(5, q4ok), ""},
		{"q4 f32 max", Q4_0, -1, block(5, math.MaxFloat32), "value 5 ("},
		{"nan before overflow in block", Q8_0, -1, func() []float32 { x := block(3, nan); x[1] = 1e20; return x }(), "value 3 is NaN"},
		{"dst short", Q8_0, 67, block(0, 0), "destination has 67 bytes, want 68"},
		{"dst long", F16, 129, block(0, 0), "destination has 129 bytes, want 128"},
		{"partial block", Q4_0, 18, make([]float32, 31), "31 values do not fill whole int4 blocks"},
		{"unknown type", Type(99), 0, nil, "unknown tensor type 99"},
		{"empty", Q8_0, 0, nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := c.dst
			if n < 0 {
				var err error
				if n, err = c.typ.RowBytes(len(c.src)); err != nil {
					t.Fatal(err)
				}
			}
			err := Encode(c.typ, make([]byte, n), c.src)
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, c.wantErr)
			case c.wantErr == "":
				checkRoundTrip(t, c.typ, c.src)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, c := range []struct {
		typ     Type
		n, src  int
		wantErr string
	}{
		{Q8_0, 32, 33, "source has 33 bytes, want 34"},
		{Q4_0, 33, 18, "33 values do not fill whole int4 blocks"},
		{F32, 2, 7, "source has 7 bytes, want 8"},
		{Type(7), 1, 1, "unknown tensor type 7"},
	} {
		err := Decode(c.typ, make([]float32, c.n), make([]byte, c.src))
		if err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("Decode(%s, %d values, %d bytes): %v, want %q", c.typ, c.n, c.src, err, c.wantErr)
		}
	}
	for _, c := range []struct {
		typ     Type
		nbytes  int
		want    int
		wantErr string
	}{
		{Q8_0, 68, 64, ""},
		{Q4_0, 36, 64, ""},
		{F16, 6, 3, ""},
		{F32, 0, 0, ""},
		{Q8_0, 35, 0, "35 bytes are not whole int8 blocks of 34 bytes"},
		{F32, -4, 0, "-4 bytes"},
		{Type(3), 4, 0, "unknown tensor type 3"},
	} {
		got, err := c.typ.RowLen(c.nbytes)
		if c.wantErr == "" && (err != nil || got != c.want) || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
			t.Errorf("%s.RowLen(%d) = %d, %v; want %d, %q", c.typ, c.nbytes, got, err, c.want, c.wantErr)
		}
	}
	if _, err := Dequantize(Q4_0, make([]byte, 19)); err == nil {
		t.Error("Dequantize of a partial Q4_0 block succeeded")
	}
}

// TestDecodeAnyBytes: every scale bit pattern decodes without panicking;
// NaN and Inf scales give NaN or Inf, finite scales finite values.
func TestDecodeAnyBytes(t *testing.T) {
	b8 := make([]byte, Q8_0BlockBytes)
	b4 := make([]byte, Q4_0BlockBytes)
	for i := range b8[2:] {
		b8[2+i] = byte(i * 37)
	}
	for i := range b4[2:] {
		b4[2+i] = byte(i * 37)
	}
	var out [BlockSize]float32
	for h := 0; h < 1<<16; h++ {
		binary.LittleEndian.PutUint16(b8, uint16(h))
		binary.LittleEndian.PutUint16(b4, uint16(h))
		finite := uint16(h)&0x7c00 != 0x7c00
		DecodeQ8_0Block(&out, (*[Q8_0BlockBytes]byte)(b8))
		for _, v := range out {
			if finite != !math.IsInf(float64(v), 0) && v == v {
				t.Fatalf("scale %#04x decoded to %v", h, v)
			}
		}
		DecodeQ4_0Block(&out, (*[Q4_0BlockBytes]byte)(b4))
		for _, v := range out {
			if finite && (v != v || math.IsInf(float64(v), 0)) {
				t.Fatalf("scale %#04x decoded to %v", h, v)
			}
		}
	}
}

// TestBlockHelpersMatchRow: the exported block helpers produce what
// Encode/Decode do for each block of a row, and Decode writes exactly
// len(dst) values (guards after the row stay untouched).
func TestBlockHelpersMatchRow(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const nb = 5
	x := make([]float32, nb*BlockSize)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	for _, typ := range []Type{Q8_0, Q4_0} {
		enc, err := Quantize(typ, x)
		if err != nil {
			t.Fatal(err)
		}
		bb := typ.blockBytes()
		guard := float32(-12345)
		dec := make([]float32, len(x)+3)
		for i := range dec {
			dec[i] = guard
		}
		if err := Decode(typ, dec[:len(x)], enc); err != nil {
			t.Fatal(err)
		}
		for i := len(x); i < len(dec); i++ {
			if dec[i] != guard {
				t.Fatalf("%s: Decode wrote past the row at %d", typ, i)
			}
		}
		for b := range nb {
			var blk [BlockSize]float32
			one := make([]byte, bb)
			switch typ {
			case Q8_0:
				EncodeQ8_0Block((*[Q8_0BlockBytes]byte)(one), (*[BlockSize]float32)(x[b*BlockSize:]))
				DecodeQ8_0Block(&blk, (*[Q8_0BlockBytes]byte)(enc[b*bb:]))
			case Q4_0:
				EncodeQ4_0Block((*[Q4_0BlockBytes]byte)(one), (*[BlockSize]float32)(x[b*BlockSize:]))
				DecodeQ4_0Block(&blk, (*[Q4_0BlockBytes]byte)(enc[b*bb:]))
			}
			if !bytes.Equal(one, enc[b*bb:(b+1)*bb]) {
				t.Fatalf("%s block %d: block encoder differs from Encode", typ, b)
			}
			for j, v := range blk {
				if v != dec[b*BlockSize+j] {
					t.Fatalf("%s block %d value %d: %v vs %v", typ, b, j, v, dec[b*BlockSize+j])
				}
			}
		}
	}
}
