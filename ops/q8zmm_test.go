//go:build !purego && amd64

package ops

import (
	"encoding/binary"
	"fmt"
	"math"
	"testing"

	"github.com/memmamba/memmamba/quant"
)

// TestBlockExtremes checks the AVX2 and AVX-512 int8 and int4 row kernels
// against their level's twin (dotBlockTwin), bit for bit, at the edges:
// every block count from 0 to 9 (the AVX-512 kernels end odd counts in the
// 256-bit body), row strides with and without padding, the four row slots
// (stride 0 runs one row four times), int8 weights at -128 and 127, int4
// weights at every nibble, activations at their extremes, and a guard
// word after out.
func TestBlockExtremes(t *testing.T) {
	type kernel func(w *byte, stride, nb int, xq *int8, xd *float32, out *[4]float32)
	for _, k := range []struct {
		name  string
		q4    bool
		level simdLevel
		got   kernel
	}{
		{"int8/avx2", false, simdAVX2, dotQ8x4AVX2},
		{"int8/avx512", false, simdAVX512, dotQ8x4AVX512},
		{"int4/avx2", true, simdAVX2, dotQ4x4AVX2},
		{"int4/avx512", true, simdAVX512, dotQ4x4AVX512},
	} {
		if simdDetected < k.level {
			t.Logf("%s: not on this CPU", k.name)
			continue
		}
		rng := newRNG(77)
		bb := 2 + quant.BlockSize
		if k.q4 {
			bb = 2 + quant.BlockSize/2
		}
		for nb := 0; nb <= 9; nb++ {
			for _, pad := range []int{0, 3, 64} {
				stride := nb*bb + pad
				w := make([]byte, 4*stride+bb)
				for i := range w {
					w[i] = byte(rng.IntN(256))
				}
				for r := 0; r < 4; r++ { // sane f16 scales; extreme weights
					for b := 0; b < nb; b++ {
						o := r*stride + b*bb
						w[o], w[o+1] = 0x00, 0x2c+byte(rng.IntN(8)) // 2^-4 .. 2^-1
						if b == 0 {
							w[o+2], w[o+3] = 0x80, 0x7f
						}
					}
				}
				xq := make([]int8, nb*quant.BlockSize+1)
				xd := make([]float32, nb+1)
				for i := range xq {
					xq[i] = int8(rng.IntN(255) - 127)
				}
				if nb > 0 {
					xq[0], xq[1] = 127, -127
				}
				for i := range xd {
					xd[i] = rng.Float32() + 0.01
				}
				for _, st := range []int{stride, 0} {
					var want, got [5]float32
					got[4] = math.Float32frombits(0x7fc0dead)
					for r := range 4 {
						want[r] = dotBlockTwin(k.level, k.q4, w[r*st:], nb, xq, xd)
					}
					k.got(&w[0], st, nb, &xq[0], &xd[0], (*[4]float32)(got[:4]))
					what := fmt.Sprintf("%s nb=%d pad=%d stride=%d", k.name, nb, pad, st)
					sameBits(t, what, got[:4], want[:4])
					if math.Float32bits(got[4]) != 0x7fc0dead {
						t.Fatalf("%s: wrote past out", what)
					}
				}
			}
		}
	}
}

// TestRowsKernels holds the many-row kernels (dotF32RowsAVX512,
// dotF16RowsAVX512, dotBF16RowsAVX512, dotQ8RowsAVX512) to the four-row
// kernels they loop, bit for bit, over
// 4..16 rows, several row lengths and padded strides, with a guard value
// after the outputs.
func TestRowsKernels(t *testing.T) {
	if simd < simdAVX512 {
		t.Skip("no AVX-512 VNNI on this machine")
	}
	rng := newRNG(78)
	const guard = 0x7fc0dead
	check := func(what string, got, want []float32) {
		t.Helper()
		sameBits(t, what, got[:len(want)], want)
		if math.Float32bits(got[len(want)]) != guard {
			t.Fatalf("%s: wrote past out", what)
		}
	}
	type floatKernels struct {
		name string
		size int            // bytes per weight
		draw func(w []byte) // one weight
		x4   func(*byte, int, int, *float32, *[4]float32)
		rows func(*byte, int, int, int, *float32, *float32)
	}
	floats := []floatKernels{
		{"f32", 4, func(w []byte) {
			binary.LittleEndian.PutUint32(w, math.Float32bits(float32(rng.NormFloat64())))
		}, dotF32x4AVX512, dotF32RowsAVX512},
		{"f16", 2, func(w []byte) { // normal halves, exponents 2^-5 .. 2^5
			binary.LittleEndian.PutUint16(w, uint16(rng.IntN(2))<<15|uint16(10+rng.IntN(11))<<10|uint16(rng.IntN(1024)))
		}, dotF16x4AVX512, dotF16RowsAVX512},
		{"bf16", 2, func(w []byte) {
			binary.LittleEndian.PutUint16(w, uint16(math.Float32bits(float32(rng.NormFloat64()))>>16))
		}, dotBF16x4AVX512, dotBF16RowsAVX512},
	}
	for rows := 4; rows <= 16; rows += 4 {
		for _, k := range floats {
			for _, n := range []int{16, 48, 64, 784} {
				for _, pad := range []int{0, 4, 64} {
					stride := k.size*n + pad
					w := make([]byte, rows*stride)
					for r := 0; r < rows; r++ {
						for c := 0; c < n; c++ {
							k.draw(w[r*stride+c*k.size:])
						}
					}
					x := randVec(rng, n)
					want := make([]float32, rows)
					for r := 0; r < rows; r += 4 {
						k.x4(&w[r*stride], stride, n, &x[0], (*[4]float32)(want[r:r+4]))
					}
					got := make([]float32, rows+1)
					got[rows] = math.Float32frombits(guard)
					k.rows(&w[0], stride, n, rows, &x[0], &got[0])
					check(fmt.Sprintf("%s rows=%d n=%d pad=%d", k.name, rows, n, pad), got, want)
				}
			}
		}
		const bb = 2 + quant.BlockSize
		for _, nb := range []int{2, 4, 24, 48} {
			for _, pad := range []int{0, 3, 64} {
				stride := nb*bb + pad
				w := make([]byte, rows*stride)
				for i := range w {
					w[i] = byte(rng.IntN(256))
				}
				for r := 0; r < rows; r++ { // sane f16 scales
					for b := 0; b < nb; b++ {
						o := r*stride + b*bb
						w[o], w[o+1] = 0x00, 0x2c+byte(rng.IntN(8))
					}
				}
				xq := make([]int8, nb*quant.BlockSize)
				xd := make([]float32, nb)
				for i := range xq {
					xq[i] = int8(rng.IntN(255) - 127)
				}
				for i := range xd {
					xd[i] = rng.Float32() + 0.01
				}
				want := make([]float32, rows)
				for r := 0; r < rows; r += 4 {
					dotQ8x4AVX512(&w[r*stride], stride, nb, &xq[0], &xd[0], (*[4]float32)(want[r:r+4]))
				}
				got := make([]float32, rows+1)
				got[rows] = math.Float32frombits(guard)
				dotQ8RowsAVX512(&w[0], stride, nb, rows, &xq[0], &xd[0], &got[0])
				check(fmt.Sprintf("q8 rows=%d nb=%d pad=%d", rows, nb, pad), got, want)
			}
		}
	}
}

// TestBlockLevels checks MatVec's int8 and int4 products at the AVX2 and
// AVX-512 levels against their level's twin, with a weight at -128 (legal
// in a file) and a row count that is not a multiple of four.
func TestBlockLevels(t *testing.T) {
	rng := newRNG(41)
	saved := simd
	defer func() { simd = saved }()
	for _, typ := range []quant.Type{quant.Q8_0, quant.Q4_0} {
		m, _ := testMatrix(t, rng, typ, 37, 768, 0)
		if typ == quant.Q8_0 {
			m.Data[5], m.Data[6] = 0x80, 0x7f
		}
		x := randVec(rng, 768)
		for _, level := range []simdLevel{simdAVX2, simdAVX512} {
			if simdDetected < level {
				continue
			}
			simd = level
			got := make([]float32, m.Rows)
			MatVec(got, m, x)
			for r := range m.Rows {
				want, _ := twinRow(m, r, x)
				if math.Float32bits(got[r]) != math.Float32bits(want) {
					t.Fatalf("%s at level %d row %d: MatVec %v, twin %v", typ, level, r, got[r], want)
				}
			}
		}
	}
}
