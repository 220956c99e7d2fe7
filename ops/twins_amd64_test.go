//go:build !purego

package ops

// Go twins of the product kernels (simd_amd64.s, tile_amd64.s): the plain
// loops of their doc comments (simd_amd64.go, tile_amd64.go) written out
// in the kernels' order of operations — 8 or 16 accumulator lanes, lane =
// column mod lanes, FOLD16 then REDUCE4's pairwise tree, one rounding per
// FMA — so that the tests hold every kernel to its twin bit for bit
// (ggml keeps _generic twins for the same purpose). The twins are the
// documented loops made executable; the plain sum over columns (oracleRow,
// ref64) stays the oracle of the results' accuracy.

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/memmamba/memmamba/quant"
)

// fma32 is a*b+c rounded once to float32, what VFMADD231PS computes on
// each lane. math.FMA in float64 then a conversion would round twice, so
// the float64 sum (a*b is exact in float64) is rounded to odd first, which
// makes the conversion to float32 (24 bits, at most 51 of float64's 53)
// correctly rounded. Finite, normal results only (all the tests need).
func fma32(a, b, c float32) float32 {
	p := float64(a) * float64(b) // exact: 24+24 bits
	cc := float64(c)
	s := math.FMA(float64(a), float64(b), cc) // p + c rounded to float64
	// TwoSum: the exact error of s = p + c.
	bv := s - p
	e := (p - (s - bv)) + (cc - bv)
	if bits := math.Float64bits(s); e != 0 && bits&1 == 0 {
		if (e > 0) == (s > 0) {
			bits++
		} else {
			bits--
		}
		s = math.Float64frombits(bits)
	}
	return float32(s)
}

// TestFMA32 checks fma32 against exact arithmetic (math/big) on random
// operands and on sums that cancel or land near halfway cases.
func TestFMA32(t *testing.T) {
	rng := newRNG(90)
	exact := func(a, b, c float32) float32 {
		x := new(big.Float).SetPrec(200).SetFloat64(float64(a))
		x.Mul(x, new(big.Float).SetPrec(200).SetFloat64(float64(b)))
		x.Add(x, new(big.Float).SetPrec(200).SetFloat64(float64(c)))
		f, _ := x.Float32()
		return f
	}
	for i := 0; i < 200000; i++ {
		a := float32(rng.NormFloat64())
		b := float32(rng.NormFloat64())
		var c float32
		switch i % 4 {
		case 0:
			c = float32(rng.NormFloat64())
		case 1: // cancellation: c near -a*b
			c = -a * b * (1 + float32(rng.IntN(5)-2)*0x1p-23)
		case 2: // a tiny c next to a*b: a*b's rounding decides
			c = a * b * 0x1p-30 * float32(rng.NormFloat64())
		default: // halfway-like: a*b with low bits set, c a power of two
			c = float32(math.Ldexp(1, rng.IntN(20)-10))
		}
		if i%100 == 99 {
			// A double-rounding case: a*b+c is just below the midpoint
			// of two float32 values (by 2^-46 of a*b, below float64's
			// precision there), so float64 rounds it to the midpoint,
			// from which a float32 conversion would round to even, up.
			e := rng.IntN(40) - 20
			a = float32(math.Ldexp(1+0x1p-23, e-24))
			b = float32(1 - 0x1p-23)
			c = float32(math.Ldexp(1+float64(2*rng.IntN(1<<21)+1)*0x1p-23, e))
		}
		if got, want := fma32(a, b, c), exact(a, b, c); math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("fma32(%g, %g, %g) = %g, exact rounding %g", a, b, c, got, want)
		}
	}
}

// reduce4Twin is REDUCE4's tree over the 8 lanes of one row.
func reduce4Twin(a [8]float32) float32 {
	return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]))
}

// fold16Twin adds 16 lanes to 8 as FOLD16 does.
func fold16Twin(a [16]float32) (r [8]float32) {
	for l := range r {
		r[l] = a[l] + a[l+8]
	}
	return r
}

// decoder reads value c of a float row.
type decoder func(row []byte, c int) float32

func decF32(row []byte, c int) float32 {
	return math.Float32frombits(binary.LittleEndian.Uint32(row[4*c:]))
}
func decF16(row []byte, c int) float32 { return quant.F16ToF32(binary.LittleEndian.Uint16(row[2*c:])) }
func decBF16(row []byte, c int) float32 {
	return math.Float32frombits(uint32(binary.LittleEndian.Uint16(row[2*c:])) << 16)
}

// dotFloatTwin is the float row kernels' loop for one row: lanes 8 (AVX2)
// or 16 (AVX-512), n a multiple of lanes.
func dotFloatTwin(dec decoder, lanes int, row []byte, n int, x []float32) float32 {
	var acc [16]float32
	for c := 0; c < n; c++ {
		acc[c%lanes] = fma32(dec(row, c), x[c], acc[c%lanes])
	}
	if lanes == 16 {
		return reduce4Twin(fold16Twin(acc))
	}
	return reduce4Twin([8]float32(acc[:8]))
}

// blockWeight returns weight j of the block at blk as an int32: int8 for
// Q8_0, the nibble minus 8 for Q4_0 (low nibbles are weights 0-15).
func blockWeight(q4 bool, blk []byte, j int) int32 {
	if !q4 {
		return int32(int8(blk[2+j]))
	}
	if j < 16 {
		return int32(blk[2+j]&0x0f) - 8
	}
	return int32(blk[2+j-16]>>4) - 8
}

// dotBlockTwin is the block row kernels' loop at level for one row of nb
// blocks against quantised activations xq (scales xd). The AVX2 kernels
// add every block into 8 float lanes in block order; the AVX-512 ones (two
// blocks a 512-bit register, ADD2BLOCKS) add the even blocks of each pair
// into one 8-lane half and the odd ones into the other, fold the halves
// (low + high) after the last pair, and add an odd last block into the
// folded lanes. The same 8 lanes' tree (reduce4Twin) ends both.
func dotBlockTwin(level simdLevel, q4 bool, row []byte, nb int, xq []int8, xd []float32) float32 {
	bb := quant.Q8_0BlockBytes
	if q4 {
		bb = quant.Q4_0BlockBytes
	}
	add := func(acc []float32, b int) { // acc's 8 lanes += block b
		blk := row[b*bb:]
		dw := quant.F16ToF32(binary.LittleEndian.Uint16(blk))
		for l := 0; l < 8; l++ {
			var s int32
			for j := 4 * l; j < 4*l+4; j++ {
				s += blockWeight(q4, blk, j) * int32(xq[b*32+j])
			}
			acc[l] = fma32(float32(s), dw*xd[b], acc[l])
		}
	}
	var lanes [8]float32
	b := 0
	if level == simdAVX512 {
		var acc [16]float32
		for ; b+1 < nb; b += 2 {
			add(acc[:8], b)
			add(acc[8:], b+1)
		}
		lanes = fold16Twin(acc)
	}
	for ; b < nb; b++ {
		add(lanes[:], b)
	}
	return reduce4Twin(lanes)
}

// twinRow is the bits the current level's product gives for row r of m
// against x (MatVec): the Go loops' on the Go level; else the row kernel's
// twin over the whole vectors of columns plus the rest added in column
// order (floatTail), or the block kernel's twin on the quantised x.
func twinRow(m Matrix, r int, x []float32) (float32, bool) {
	k := kernelsFor(m.Type)
	if k.row == kNone {
		return 0, false
	}
	row := m.Row(r)
	if k.block {
		nb := m.Cols / quant.BlockSize
		xq, xd := make([]int8, len(x)), make([]float32, nb)
		QuantizeQ8(xq, xd, x)
		return dotBlockTwin(simd, m.Type == quant.Q4_0, row, nb, xq, xd), true
	}
	dec := map[quant.Type]decoder{quant.F32: decF32, quant.F16: decF16, quant.BF16: decBF16}[m.Type]
	nv := m.Cols &^ (k.lanes - 1)
	var s float32
	if nv > 0 {
		s = dotFloatTwin(dec, k.lanes, row, nv, x)
	}
	for c := nv; c < m.Cols; c++ {
		s += dec(row, c) * x[c]
	}
	return s, true
}

func init() { levelTwin = twinRow }

// floatWeights fills w with random finite weights of a float type (f16:
// normal and subnormal halves, no infinities or NaN).
func floatWeights(rng *rand.Rand, size int, w []byte) {
	for i := 0; i+size <= len(w); i += size {
		switch size {
		case 4:
			binary.LittleEndian.PutUint32(w[i:], math.Float32bits(float32(rng.NormFloat64())))
		case 2: // f16 halves with exponents 0 .. 2^5 (bf16 reads them as small values)
			binary.LittleEndian.PutUint16(w[i:], uint16(rng.IntN(2))<<15|uint16(rng.IntN(21))<<10|uint16(rng.IntN(1024)))
		}
	}
}

// blockWeights fills w with random blocks of bb bytes at the given stride
// (rows rows): sane f16 scales, random weight bytes, with the extremes
// (-128, 127; nibbles 0 and 15) in the first block of every row.
func blockWeights(rng *rand.Rand, w []byte, rows, stride, nb, bb int) {
	for i := range w {
		w[i] = byte(rng.IntN(256))
	}
	for r := 0; r < rows; r++ {
		for b := 0; b < nb; b++ {
			o := r*stride + b*bb
			w[o], w[o+1] = byte(rng.IntN(256)), 0x24+byte(rng.IntN(12)) // 2^-6 .. 2^-1
			if b == 0 {
				w[o+2], w[o+3], w[o+4] = 0x80, 0x7f, 0xf0
			}
		}
	}
}

// quantActivations returns nb blocks of activations quantised as the
// products quantise them, with the extremes -127 and 127 in block 0, at
// element offset off of their buffers (one spare element after them, so
// that nb = 0 still has an address).
func quantActivations(rng *rand.Rand, nb, off int) ([]int8, []float32) {
	x := randVec(rng, nb*32)
	xq, xd := make([]int8, off+nb*32+1), make([]float32, off+nb+1)
	QuantizeQ8(xq[off:off+nb*32], xd[off:off+nb], x)
	if nb > 0 {
		xq[off], xq[off+1] = 127, -127
	}
	return xq[off:], xd[off:]
}

// outGuard returns a 4-value output with guard values on both sides and a
// check that they survived.
func outGuard(t *testing.T) (*[4]float32, func(what string)) {
	buf := make([]float32, 6)
	for i := range buf {
		buf[i] = guard
	}
	return (*[4]float32)(buf[1:5]), func(what string) {
		t.Helper()
		if math.Float32bits(buf[0]) != math.Float32bits(guard) || math.Float32bits(buf[5]) != math.Float32bits(guard) {
			t.Fatalf("%s: wrote outside out: %v", what, buf)
		}
	}
}

type floatKernel struct {
	name  string
	size  int // bytes per weight
	lanes int
	level simdLevel
	dec   decoder
	x4    func(w *byte, stride, n int, x *float32, out *[4]float32)
	rows  func(w *byte, stride, n, rows int, x *float32, out *float32)                         // nil: none
	tile  func(w *byte, stride, n int, x *float32, xstride int, out *float32, ostride, pf int) // pf as callTile's
	tt    int                                                                                  // the tile's tokens
}

func floatKernels() []floatKernel {
	return []floatKernel{
		{"f32/avx2", 4, 8, simdAVX2, decF32, dotF32x4AVX2, dotF32RowsAVX2, tileF32AVX2, 2},
		{"f16/avx2", 2, 8, simdAVX2, decF16, dotF16x4AVX2, dotF16RowsAVX2, tileF16AVX2, 2},
		{"bf16/avx2", 2, 8, simdAVX2, decBF16, dotBF16x4AVX2, dotBF16RowsAVX2, tileBF16AVX2, 2},
		{"f32/avx512", 4, 16, simdAVX512, decF32, dotF32x4AVX512, dotF32RowsAVX512, tileF32AVX512, 4},
		{"f16/avx512", 2, 16, simdAVX512, decF16, dotF16x4AVX512, dotF16RowsAVX512, tileF16AVX512, 4},
		{"bf16/avx512", 2, 16, simdAVX512, decBF16, dotBF16x4AVX512, dotBF16RowsAVX512, tileBF16AVX512, 4},
	}
}

// TestFloatKernelsTwin holds the float row, many-row and tile kernels to
// their twin bit for bit: every column count that is a multiple of the
// lanes up to 8 vectors and a long row, weights at byte offsets 0-3, x at
// float offsets 0-3, padded strides and stride 0, guard values around the
// outputs.
func TestFloatKernelsTwin(t *testing.T) {
	rng := newRNG(91)
	for _, k := range floatKernels() {
		if simdDetected < k.level {
			t.Logf("%s: not on this CPU", k.name)
			continue
		}
		ns := []int{784}
		for v := 0; v <= 8; v++ {
			ns = append(ns, v*k.lanes)
		}
		for _, n := range ns {
			for off := 0; off < 4; off++ {
				for _, pad := range []int{0, k.size, 64} {
					stride := n*k.size + pad
					buf := make([]byte, off+16*stride+k.size)
					w := buf[off:]
					floatWeights(rng, k.size, w)
					x := offsetCopy(randVec(rng, 4*(n+3)), off)
					what := fmt.Sprintf("%s n=%d off=%d stride=%d", k.name, n, off, stride)
					// four rows, and stride 0 (one row four times)
					for _, st := range []int{stride, 0} {
						out, check := outGuard(t)
						k.x4(&w[0], st, n, &x[0], out)
						check(what)
						for i := 0; i < 4; i++ {
							if want := dotFloatTwin(k.dec, k.lanes, w[i*st:], n, x); math.Float32bits(out[i]) != math.Float32bits(want) {
								t.Fatalf("%s st=%d row %d: kernel %v, twin %v", what, st, i, out[i], want)
							}
						}
					}
					if k.rows != nil && n > 0 {
						for rows := 4; rows <= 16; rows += 4 {
							got, check := guarded(rows, off)
							k.rows(&w[0], stride, n, rows, &x[0], &got[0])
							check(t)
							for r := 0; r < rows; r++ {
								if want := dotFloatTwin(k.dec, k.lanes, w[r*stride:], n, x); math.Float32bits(got[r]) != math.Float32bits(want) {
									t.Fatalf("%s rows=%d row %d: kernel %v, twin %v", what, rows, r, got[r], want)
								}
							}
						}
					}
					// the tile: tt tokens n+3 apart, outputs 6 apart, with each
					// pf (AVX2: none, prefetch; AVX-512: none, per row, one stream)
					for pf := 0; pf < 3; pf++ {
						const ostride = 6
						got, check := guarded(k.tt*ostride, off)
						k.tile(&w[0], stride, n, &x[0], 4*(n+3), &got[0], 4*ostride, pf)
						for tok := 0; tok < k.tt; tok++ {
							for i := 0; i < 4; i++ {
								want := dotFloatTwin(k.dec, k.lanes, w[i*stride:], n, x[tok*(n+3):])
								if g := got[tok*ostride+i]; math.Float32bits(g) != math.Float32bits(want) {
									t.Fatalf("%s tile token %d row %d: kernel %v, twin %v", what, tok, i, g, want)
								}
							}
							for i := 4; i < ostride; i++ {
								if g := got[tok*ostride+i]; math.Float32bits(g) != math.Float32bits(guard) {
									t.Fatalf("%s tile: wrote between tokens at %d", what, tok*ostride+i)
								}
							}
						}
						check(t)
					}
				}
			}
		}
	}
}

// TestBlockKernelsTwin holds the int8 and int4 row kernels, the many-row
// int8 kernel and the int8 tiles to their twin bit for bit: block counts
// 0-9 and 24, weights at byte offsets 0-3, activations at offsets 0-3,
// padded strides and stride 0, extreme weights and activations, guard
// values around the outputs.
func TestBlockKernelsTwin(t *testing.T) {
	type blockKernel struct {
		name  string
		q4    bool
		level simdLevel
		x4    func(w *byte, stride, nb int, xq *int8, xd *float32, out *[4]float32)
	}
	rng := newRNG(92)
	for _, k := range []blockKernel{
		{"q8/avx2", false, simdAVX2, dotQ8x4AVX2},
		{"q4/avx2", true, simdAVX2, dotQ4x4AVX2},
		{"q8/avx512", false, simdAVX512, dotQ8x4AVX512},
		{"q4/avx512", true, simdAVX512, dotQ4x4AVX512},
	} {
		if simdDetected < k.level {
			t.Logf("%s: not on this CPU", k.name)
			continue
		}
		bb := quant.Q8_0BlockBytes
		if k.q4 {
			bb = quant.Q4_0BlockBytes
		}
		for _, nb := range []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 24} {
			for off := 0; off < 4; off++ {
				for _, pad := range []int{0, 3, 64} {
					stride := nb*bb + pad
					buf := make([]byte, off+16*stride+bb)
					w := buf[off:]
					blockWeights(rng, w, 16, stride, nb, bb)
					// four tokens' activations back to back
					xq, xd := quantActivations(rng, 4*nb, off)
					what := fmt.Sprintf("%s nb=%d off=%d stride=%d", k.name, nb, off, stride)
					for _, st := range []int{stride, 0} {
						out, check := outGuard(t)
						k.x4(&w[0], st, nb, &xq[0], &xd[0], out)
						check(what)
						for i := 0; i < 4; i++ {
							if want := dotBlockTwin(k.level, k.q4, w[i*st:], nb, xq, xd); math.Float32bits(out[i]) != math.Float32bits(want) {
								t.Fatalf("%s st=%d row %d: kernel %v, twin %v", what, st, i, out[i], want)
							}
						}
					}
					if k.q4 || nb == 0 {
						continue
					}
					if k.level == simdAVX2 || nb%2 == 0 {
						for rows := 4; rows <= 16; rows += 4 {
							got, check := guarded(rows, off)
							if k.level == simdAVX2 {
								dotQ8RowsAVX2(&w[0], stride, nb, rows, &xq[0], &xd[0], &got[0])
							} else {
								dotQ8RowsAVX512(&w[0], stride, nb, rows, &xq[0], &xd[0], &got[0])
							}
							check(t)
							for r := 0; r < rows; r++ {
								if want := dotBlockTwin(k.level, false, w[r*stride:], nb, xq, xd); math.Float32bits(got[r]) != math.Float32bits(want) {
									t.Fatalf("%s rows=%d row %d: kernel %v, twin %v", what, rows, r, got[r], want)
								}
							}
						}
					}
					tt, tile := 2, tileQ8AVX2
					if k.level == simdAVX512 {
						tt, tile = 4, tileQ8AVX512 // pf: lin, the prefetch stream
					}
					for pf := 0; pf < 3; pf++ { // each pf, as for the float tiles
						const ostride = 6
						got, check := guarded(tt*ostride, off)
						tile(&w[0], stride, nb, &xq[0], nb*32, &xd[0], &got[0], 4*ostride, pf)
						for tok := 0; tok < tt; tok++ {
							for i := 0; i < 4; i++ {
								want := dotBlockTwin(k.level, false, w[i*stride:], nb, xq[tok*nb*32:], xd[tok*nb:])
								if g := got[tok*ostride+i]; math.Float32bits(g) != math.Float32bits(want) {
									t.Fatalf("%s tile token %d row %d: kernel %v, twin %v", what, tok, i, g, want)
								}
							}
							for i := 4; i < ostride; i++ {
								if g := got[tok*ostride+i]; math.Float32bits(g) != math.Float32bits(guard) {
									t.Fatalf("%s tile: wrote between tokens at %d", what, tok*ostride+i)
								}
							}
						}
						check(t)
					}
					if k.level == simdAVX2 {
						dw := make([]float32, 4*nb+4) // the 2-token tile with the scales given
						for b := 0; b < nb; b++ {
							for i := 0; i < 4; i++ {
								dw[4*b+i] = quant.F16ToF32(binary.LittleEndian.Uint16(w[i*stride+b*34:]))
							}
						}
						for pf := 0; pf < 2; pf++ {
							const ostride = 6
							want, _ := guarded(2*ostride, off)
							tileQ8AVX2(&w[0], stride, nb, &xq[0], nb*32, &xd[0], &want[0], 4*ostride, pf)
							got, check := guarded(2*ostride, off)
							tileQ8DAVX2(&w[0], stride, nb, &xq[0], nb*32, &xd[0], &got[0], 4*ostride, pf, &dw[0])
							check(t)
							sameBits(t, what+" tile with float32 scales", got, want)
						}
						for pf := 0; pf < 2; pf++ { // the 2-row, 4-token tile
							const ostride = 3
							got, check := guarded(4*ostride, off)
							xd4 := make([]float32, 4*nb+1)
							for b := 0; b < nb; b++ {
								for tok := 0; tok < 4; tok++ {
									xd4[4*b+tok] = xd[tok*nb+b]
								}
							}
							tileQ8T4AVX2(&w[0], stride, nb, &xq[0], nb*32, &xd4[0], &got[0], 4*ostride, pf)
							for tok := 0; tok < 4; tok++ {
								for i := 0; i < 2; i++ {
									want := dotBlockTwin(k.level, false, w[i*stride:], nb, xq[tok*nb*32:], xd[tok*nb:])
									if g := got[tok*ostride+i]; math.Float32bits(g) != math.Float32bits(want) {
										t.Fatalf("%s T4 tile token %d row %d: kernel %v, twin %v", what, tok, i, g, want)
									}
								}
								if g := got[tok*ostride+2]; math.Float32bits(g) != math.Float32bits(guard) {
									t.Fatalf("%s T4 tile: wrote between tokens at %d", what, tok*ostride+2)
								}
							}
							check(t)
						}
					}
				}
			}
		}
	}
}

// attendScoresTwin is attendScoresAVX2's (lanes 8) or attendScoresAVX512's
// (lanes 16) loop in Go: per lane a once-rounded FMA chain over the head's
// columns, 16 lanes folded to 8, then the 8 in a fixed tree.
func attendScoresTwin(lanes int, s, q, K []float32, n, A, dh int, scale float32) {
	for h := 0; h < A/dh; h++ {
		for j := 0; j < n; j++ {
			var acc [16]float32
			for c := h * dh; c < (h+1)*dh; c++ {
				acc[c%lanes] = fma32(q[c], K[j*A+c], acc[c%lanes])
			}
			u := [8]float32(acc[:8])
			if lanes == 16 {
				u = fold16Twin(acc)
			}
			s[h*n+j] = (((u[0] + u[4]) + (u[1] + u[5])) + ((u[2] + u[6]) + (u[3] + u[7]))) / scale
		}
	}
}

// attendAccumTwin is attendAccum*'s loop in Go: one FMA chain over the keys
// per output value, whatever the lanes.
func attendAccumTwin(out, e, V []float32, n, A, dh int) {
	for h := 0; h < A/dh; h++ {
		for c := h * dh; c < (h+1)*dh; c++ {
			var o float32
			for j := 0; j < n; j++ {
				o = fma32(e[h*n+j], V[j*A+c], o)
			}
			out[c] = o
		}
	}
}

// TestAttendKernelsTwin holds the Note Block's attention kernels of each
// level to their Go twins bit for bit: heads of every multiple of the
// lanes up to 4 vectors, 1 to 4 heads, 1 to 40 keys, inputs at float
// offsets 0-3, guard values around the outputs.
func TestAttendKernelsTwin(t *testing.T) {
	rng := newRNG(93)
	for _, k := range []struct {
		name   string
		level  simdLevel
		lanes  int
		scores func(s, q, K *float32, n, A, dh int, scale float32)
		accum  func(out, e, V *float32, n, A, dh int)
	}{
		{"avx2", simdAVX2, 8, attendScoresAVX2, attendAccumAVX2},
		{"avx512", simdAVX512, 16, attendScoresAVX512, attendAccumAVX512},
	} {
		if simdDetected < k.level {
			t.Logf("%s: not on this CPU", k.name)
			continue
		}
		for v := 1; v <= 4; v++ {
			dh := v * k.lanes
			for H := 1; H <= 4; H++ {
				A := H * dh
				for _, n := range []int{1, 2, 3, 7, 16, 40} {
					off := rng.IntN(4)
					what := fmt.Sprintf("%s dh=%d H=%d n=%d off=%d", k.name, dh, H, n, off)
					q := offsetCopy(randVec(rng, A), off)
					K := offsetCopy(randVec(rng, n*A), off)
					V := offsetCopy(randVec(rng, n*A), off)
					e := offsetCopy(randVec(rng, n*H), off)
					scale := float32(math.Sqrt(float64(dh)))

					s, check := guarded(n*H, off)
					k.scores(&s[0], &q[0], &K[0], n, A, dh, scale)
					check(t)
					want := make([]float32, n*H)
					attendScoresTwin(k.lanes, want, q, K, n, A, dh, scale)
					sameBits(t, what+" scores", s, want)

					out, check := guarded(A, off)
					k.accum(&out[0], &e[0], &V[0], n, A, dh)
					check(t)
					wo := make([]float32, A)
					attendAccumTwin(wo, e, V, n, A, dh)
					sameBits(t, what+" accumulation", out, wo)
				}
			}
		}
	}
}

// TestScanChan2Twin holds scanChan2AVX2 (two channels, EXP4) to two
// calls of scanChanAVX2 bit for bit: every N it takes, token counts from
// none up, dt large enough that exp(dt*A) is subnormal or zero, states
// that grow past float32's range (Inf, then NaN from Inf*0), and guard
// values around each output row and after the state rows.
func TestScanChan2Twin(t *testing.T) {
	if simdDetected < simdAVX2 {
		t.Skip("no AVX2 on this CPU")
	}
	rng := newRNG(95)
	for _, N := range []int{16, 32, 48} {
		for _, T := range []int{0, 1, 2, 7} {
			for _, wild := range []bool{false, true} {
				const E = 3 // channels 0 and 1, and a guard column
				name := fmt.Sprintf("N=%d T=%d wild=%v", N, T, wild)
				c := newScanCase(rng.Uint64(), E, N, T, false)
				if wild {
					wildScan(rng, &c)
				}
				run := func(two bool) (h, y []float32) {
					h = append(append([]float32(nil), c.h0[:2*N]...), guard, guard)
					y = make([]float32, T*E)
					for i := range y {
						y[i] = guard
					}
					if T == 0 {
						return h, y
					}
					if two {
						scanChan2AVX2(&h[0], &c.A[0], &c.B[0], &c.C[0], &c.dt[0], &c.a[0], &y[0], &c.D[0], N, T, E)
					} else {
						scanChanAVX2(&h[0], &c.A[0], &c.B[0], &c.C[0], &c.dt[0], &c.a[0], &y[0], N, T, E, c.D[0])
						scanChanAVX2(&h[N], &c.A[N], &c.B[0], &c.C[0], &c.dt[1], &c.a[1], &y[1], N, T, E, c.D[1])
					}
					return h, y
				}
				h2, y2 := run(true)
				h1, y1 := run(false)
				for tok := 0; tok < T; tok++ {
					if math.Float32bits(y2[tok*E+2]) != math.Float32bits(guard) {
						t.Fatalf("%s: wrote y outside channels 0 and 1 at token %d", name, tok)
					}
				}
				sameBits(t, name+" h", h2, h1)
				sameBits(t, name+" y", y2, y1)
			}
		}
	}
}

// TestScan16x16 holds scan16x16AVX512 (sixteen channels a group, their
// sums folded together) to scanChansAVX512 bit for bit.
func TestScan16x16(t *testing.T) {
	if !levels[simdAVX512].scan16 || simdDetected < simdAVX512 {
		t.Skip("no AVX-512 on this CPU")
	}
	testGroupScan(t, 16, func(c scanCase, h, y []float32, T, E, C int, group bool) {
		if group {
			scan16x16AVX512(&h[0], &c.A[0], &c.B[0], &c.C[0], &c.dt[0], &c.a[0], &y[0], &c.D[0], T, E, C)
		} else {
			scanChansAVX512(&h[0], &c.A[0], &c.B[0], &c.C[0], &c.dt[0], &c.a[0], &y[0], &c.D[0], 16, T, E, C)
		}
	})
}

// TestScan8x16 holds scan8x16AVX2 (eight channels a group) to
// scanChan2AVX2 on each pair of channels bit for bit.
func TestScan8x16(t *testing.T) {
	if simdDetected < simdAVX2 {
		t.Skip("no AVX2 on this CPU")
	}
	testGroupScan(t, 8, func(c scanCase, h, y []float32, T, E, C int, group bool) {
		if group {
			scan8x16AVX2(&h[0], &c.A[0], &c.B[0], &c.C[0], &c.dt[0], &c.a[0], &y[0], &c.D[0], T, E, C)
			return
		}
		for e := 0; e < C; e += 2 {
			scanChan2AVX2(&h[e*16], &c.A[e*16], &c.B[0], &c.C[0], &c.dt[e], &c.a[e], &y[e], &c.D[e], 16, T, E)
		}
	})
}

// testGroupScan runs a grouped scan kernel (run with group set) against
// its reference (group unset) on C channels of one to three groups of
// size channels, N = 16, over 0 to 5 tokens, with wild values as in
// TestScanChan2Twin (subnormal decays, states past float32's range, NaN,
// infinite states) and guard values after the state rows and in a guard
// column (E = C+1) of every token's outputs.
func testGroupScan(t *testing.T, size int, run func(c scanCase, h, y []float32, T, E, C int, group bool)) {
	rng := newRNG(uint64(90 + size))
	for _, groups := range []int{1, 2, 3} {
		for _, T := range []int{0, 1, 2, 5} {
			for _, wild := range []bool{false, true} {
				const N = 16
				C := size * groups
				E := C + 1
				name := fmt.Sprintf("channels=%d T=%d wild=%v", C, T, wild)
				c := newScanCase(rng.Uint64(), E, N, T, false)
				if wild {
					wildScan(rng, &c)
					for i := range c.h0 {
						if rng.IntN(50) == 0 {
							c.h0[i] = float32(math.Inf(1 - 2*rng.IntN(2)))
						}
					}
				}
				out := func(group bool) (h, y []float32) {
					h = append(append([]float32(nil), c.h0[:C*N]...), guard, guard)
					y = make([]float32, T*E+2)
					for i := range y {
						y[i] = guard
					}
					if T > 0 {
						run(c, h, y, T, E, C, group)
					}
					return h, y
				}
				h2, y2 := out(true)
				h1, y1 := out(false)
				for tok := 0; tok < T; tok++ {
					if math.Float32bits(y2[tok*E+C]) != math.Float32bits(guard) {
						t.Fatalf("%s: wrote y outside the channels at token %d", name, tok)
					}
				}
				sameBits(t, name+" h", h2, h1)
				sameBits(t, name+" y", y2, y1)
			}
		}
	}
}

// wildScan makes a scan case's dt large enough that exp(dt*A) is
// subnormal or zero, and some B large enough for the states to overflow
// to Inf (then NaN from Inf*0) or zero.
func wildScan(rng *rand.Rand, c *scanCase) {
	for i := range c.dt {
		c.dt[i] = float32(rng.ExpFloat64() * 20) // dt*A below -87 often
	}
	for i := range c.B {
		switch rng.IntN(3) {
		case 0:
			c.B[i] *= 3e37 // h overflows to Inf, sums to NaN
		case 1:
			c.B[i] = 0 // h decays to subnormal or zero
		}
	}
}
