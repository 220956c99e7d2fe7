package ops

import (
	"fmt"

	"github.com/memmamba/memmamba/quant"
)

// MatVec computes dst = W x for a Rows x Cols matrix W of any type, decoding
// the weights inside the dot products:
//
//	for r := 0; r < w.Rows; r++ {
//		var s float32
//		for c := 0; c < w.Cols; c++ { s += W[r, c] * x[c] }
//		dst[r] = s
//	}
//
// For F32, F16 and BF16 the sum is exactly that loop (W[r,c] is the exact
// float32 value of the weight). For Q8_0 and Q4_0 the activations stay
// float32 and the scale is factored out of each block: s += d*(a+b) with a,
// b the sums of q*x over the block's two halves. So the result equals the
// loop over the dequantised matrix up to float32 rounding of a different
// summation order (relative error of order Cols*2^-24 of sum|W||x|); no
// activation quantisation error is introduced.
//
// len(dst) must be w.Rows and len(x) w.Cols; dst must not overlap x. It
// panics otherwise.
func MatVec(dst []float32, w Matrix, x []float32) {
	MatMul(dst, w, x, 1)
}

// MatMul computes the product of W with n input rows at once (the prefill
// path): x is n x Cols row-major, dst is n x Rows row-major:
//
//	for t := 0; t < n; t++ {
//		MatVec(dst[t*w.Rows:(t+1)*w.Rows], w, x[t*w.Cols:(t+1)*w.Cols])
//	}
//
// The result is bit-identical to that loop. The work is blocked so that a
// tile of weight rows stays in cache while every token passes over it, and
// each weight is decoded once for four tokens.
func MatMul(dst []float32, w Matrix, x []float32, n int) {
	st := checkMatVec(dst, w, x, n)
	var s *qscratch
	if usesScratch(w.Type) {
		s = qpool.Get().(*qscratch)
		defer qpool.Put(s)
	}
	var pr product
	pr.prepare(dst, w, st, x, n, s)
	pr.rows(0, w.Rows)
}

// checkMatVec panics unless the shapes agree; it returns w's row stride.
func checkMatVec(dst []float32, w Matrix, x []float32, n int) int {
	st := w.check()
	if n < 0 || len(dst) != n*w.Rows || len(x) != n*w.Cols {
		panic(fmt.Sprintf("ops: product of %dx%d matrix with %d rows: dst has %d values (want %d), x has %d (want %d)",
			w.Rows, w.Cols, n, len(dst), n*w.Rows, len(x), n*w.Cols))
	}
	return st
}

// matVecRows computes dst[r] for rows lo..hi-1; st is the row stride in
// bytes.
func matVecRows(dst []float32, w Matrix, st int, x []float32, lo, hi int) {
	tab := f16Table()
	data := w.Data
	rb := w.RowBytes()
	row := func(r int) []byte { return data[r*st : r*st+rb] }
	r := lo
	switch w.Type {
	case quant.F32:
		v, ok := viewF32(data)
		if !ok {
			break
		}
		c, s := w.Cols, st/4
		for ; r+4 <= hi; r += 4 {
			dst[r], dst[r+1], dst[r+2], dst[r+3] = dot4x1F32(v[r*s:r*s+c], v[(r+1)*s:(r+1)*s+c], v[(r+2)*s:(r+2)*s+c], v[(r+3)*s:(r+3)*s+c], x)
		}
		for ; r < hi; r++ {
			dst[r] = dot1x1F32(v[r*s:r*s+c], x)
		}
	case quant.F16, quant.BF16:
		v, ok := viewU16(data)
		if !ok {
			break
		}
		c, s := w.Cols, st/2
		if w.Type == quant.F16 {
			for ; r+4 <= hi; r += 4 {
				dst[r], dst[r+1], dst[r+2], dst[r+3] = dot4x1F16(tab, v[r*s:r*s+c], v[(r+1)*s:(r+1)*s+c], v[(r+2)*s:(r+2)*s+c], v[(r+3)*s:(r+3)*s+c], x)
			}
			for ; r < hi; r++ {
				dst[r] = dot1x1F16(tab, v[r*s:r*s+c], x)
			}
		} else {
			for ; r+4 <= hi; r += 4 {
				dst[r], dst[r+1], dst[r+2], dst[r+3] = dot4x1BF16(v[r*s:r*s+c], v[(r+1)*s:(r+1)*s+c], v[(r+2)*s:(r+2)*s+c], v[(r+3)*s:(r+3)*s+c], x)
			}
			for ; r < hi; r++ {
				dst[r] = dot1x1BF16(v[r*s:r*s+c], x)
			}
		}
	case quant.Q8_0:
		for ; r+4 <= hi; r += 4 {
			dst[r], dst[r+1], dst[r+2], dst[r+3] = dot4x1Q8(tab, row(r), row(r+1), row(r+2), row(r+3), x)
		}
		for ; r < hi; r++ {
			dst[r] = dot1x1Q8(tab, row(r), x)
		}
	case quant.Q4_0:
		for ; r+4 <= hi; r += 4 {
			dst[r], dst[r+1], dst[r+2], dst[r+3] = dot4x1Q4(tab, row(r), row(r+1), row(r+2), row(r+3), x)
		}
		for ; r < hi; r++ {
			dst[r] = dot1x1Q4(tab, row(r), x)
		}
	default:
		panic(fmt.Sprintf("ops: unsupported matrix type %s", w.Type))
	}
	// Unaligned (or big-endian) float rows: decode value by value.
	for ; r < hi; r++ {
		dst[r] = dot1x1Slow(w.Type, tab, row(r), x)
	}
}

// rowTile is the number of weight rows MatMul keeps hot while the tokens
// pass over them: 8 rows of 1536 f32 values are 48 KiB.
const rowTile = 8

// matMulRows computes dst[t*Rows+r] for rows lo..hi-1 and every token t.
func matMulRows(dst []float32, w Matrix, st int, x []float32, n, lo, hi int) {
	if n == 1 {
		matVecRows(dst, w, st, x, lo, hi)
		return
	}
	tab := f16Table()
	data := w.Data
	rb := w.RowBytes()
	R, C := w.Rows, w.Cols
	xr := func(t int) []float32 { return x[t*C : (t+1)*C] }
	var f32 []float32
	var u16 []uint16
	aligned := true
	switch w.Type {
	case quant.F32:
		f32, aligned = viewF32(data)
	case quant.F16, quant.BF16:
		u16, aligned = viewU16(data)
	case quant.Q8_0, quant.Q4_0:
	default:
		panic(fmt.Sprintf("ops: unsupported matrix type %s", w.Type))
	}
	if !aligned {
		for r := lo; r < hi; r++ {
			row := data[r*st : r*st+rb]
			for t := 0; t < n; t++ {
				dst[t*R+r] = dot1x1Slow(w.Type, tab, row, xr(t))
			}
		}
		return
	}
	for r0 := lo; r0 < hi; r0 += rowTile {
		r1 := min(r0+rowTile, hi)
		t := 0
		for ; t+4 <= n; t += 4 {
			x0, x1, x2, x3 := xr(t), xr(t+1), xr(t+2), xr(t+3)
			for r := r0; r < r1; r++ {
				var s0, s1, s2, s3 float32
				switch w.Type {
				case quant.F32:
					s0, s1, s2, s3 = dot1x4F32(f32[r*(st/4):r*(st/4)+C], x0, x1, x2, x3)
				case quant.F16:
					s0, s1, s2, s3 = dot1x4F16(tab, u16[r*(st/2):r*(st/2)+C], x0, x1, x2, x3)
				case quant.BF16:
					s0, s1, s2, s3 = dot1x4BF16(u16[r*(st/2):r*(st/2)+C], x0, x1, x2, x3)
				case quant.Q8_0:
					s0, s1, s2, s3 = dot1x4Q8(tab, data[r*st:r*st+rb], x0, x1, x2, x3)
				case quant.Q4_0:
					s0, s1, s2, s3 = dot1x4Q4(tab, data[r*st:r*st+rb], x0, x1, x2, x3)
				}
				dst[t*R+r], dst[(t+1)*R+r], dst[(t+2)*R+r], dst[(t+3)*R+r] = s0, s1, s2, s3
			}
		}
		for ; t < n; t++ {
			// Remaining tokens: a MatVec over the tile's rows.
			matVecRows(dst[t*R:(t+1)*R], w, st, xr(t), r0, r1)
		}
	}
}
