package quant

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// firstProblem is the oracle for Encode's refusals: the index Encode must
// name, or -1 when x is encodable as t.
func firstProblem(t Type, x []float32) int {
	bad := func(v float32) bool { return v != v || math.IsInf(float64(v), 0) }
	switch t {
	case F32:
		for i, v := range x {
			if bad(v) {
				return i
			}
		}
	case F16, BF16:
		// f16 rounds to inf from 65520 up; bf16 from 0x7f7f8000 (the
		// midpoint between its largest finite value and 2^128) up.
		for i, v := range x {
			a := math.Abs(float64(v))
			if bad(v) || t == F16 && a >= 65520 || t == BF16 && math.Float32bits(v)&0x7fffffff >= 0x7f7f8000 {
				return i
			}
		}
	case Q8_0, Q4_0:
		lim := 127 * 65520.0
		if t == Q4_0 {
			lim = 8 * 65520.0
		}
		for b := 0; b+BlockSize <= len(x); b += BlockSize {
			arg, amax := -1, 0.0
			for j, v := range x[b : b+BlockSize] {
				if bad(v) {
					return b + j
				}
				if a := math.Abs(float64(v)); arg < 0 || a > amax {
					arg, amax = b+j, a
				}
			}
			if float32(amax/(lim/65520)) >= 65520 {
				return arg
			}
		}
	}
	return -1
}

// FuzzRoundTrip: Encode then Decode never panics; Encode fails exactly when
// the oracle finds a NaN, an Inf or an overflow, and names its index;
// otherwise every decoded value is within errBound. Decode of the raw fuzz
// bytes as t never panics either.
func FuzzRoundTrip(f *testing.F) {
	inputs, _ := filepath.Glob(filepath.Join("testdata", "golden", "*.f32"))
	for i, in := range inputs {
		if raw, err := os.ReadFile(in); err == nil {
			f.Add(uint8(i), raw)
		}
	}
	f.Add(uint8(3), make([]byte, 4*BlockSize))
	f.Fuzz(func(t *testing.T, sel uint8, data []byte) {
		typ := Types[int(sel)%len(Types)]
		// Decode arbitrary bytes: must not panic.
		if n, err := typ.RowLen(len(data) / typ.blockBytes() * typ.blockBytes()); err == nil {
			out := make([]float32, n)
			if err := Decode(typ, out, data[:len(data)/typ.blockBytes()*typ.blockBytes()]); err != nil {
				t.Fatalf("Decode: %v", err)
			}
		}
		n := len(data) / 4 / typ.BlockLen() * typ.BlockLen()
		x := make([]float32, n)
		for i := range x {
			x[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
		}
		// The unchecked block encoders must not panic on any input,
		// NaN and Inf included.
		if len(x) >= BlockSize {
			var b8 [Q8_0BlockBytes]byte
			var b4 [Q4_0BlockBytes]byte
			EncodeQ8_0Block(&b8, (*[BlockSize]float32)(x))
			EncodeQ4_0Block(&b4, (*[BlockSize]float32)(x))
		}
		enc, err := Quantize(typ, x)
		if want := firstProblem(typ, x); want >= 0 {
			if err == nil || !strings.HasPrefix(err.Error(), fmt.Sprintf("value %d ", want)) {
				t.Fatalf("%s: Encode error %v, want one naming value %d (%g)", typ, err, want, x[want])
			}
			return
		}
		if err != nil {
			t.Fatalf("%s: unexpected Encode error: %v", typ, err)
		}
		dec, err := Dequantize(typ, enc)
		if err != nil {
			t.Fatalf("%s: Dequantize: %v", typ, err)
		}
		bound := errBound(typ, x, dec)
		for i := range x {
			if e := math.Abs(float64(x[i]) - float64(dec[i])); !(e <= bound[i]) {
				t.Fatalf("%s: value %d: %g decodes to %g, error %g > bound %g", typ, i, x[i], dec[i], e, bound[i])
			}
		}
	})
}
