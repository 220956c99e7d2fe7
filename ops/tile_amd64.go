//go:build !purego

package ops

// The tile kernels of tile_amd64.s, documented with the plain loops they
// compute (notation as in simd_amd64.go). A tile is four weight rows (row
// i at w + i*stride bytes) against several tokens (token t's activations
// at x + t*xstride bytes); output (row i, token t) goes to out + t*ostride
// + 4*i bytes. Every output has the operations and the order of the row
// kernel for that row and token, so MatMul gives MatVec's bits.

// tileF32AVX512 is 4 f32 rows x 4 tokens, n columns (a multiple of 16),
// with dotF32x4AVX512's bits for each row and token:
//
//	for t := 0; t < 4; t++ {
//		x := x[t*xstride/4:]
//		for i := 0; i < 4; i++ {
//			var acc [16]float32
//			for c := 0; c < n; c++ {
//				acc[c%16] = fma(row_i[c], x[c], acc[c%16])
//			}
//			out[t*ostride/4+i] = reduce4(fold16(acc))
//		}
//	}
//
// pf picks its prefetch as tileQ8AVX512's does: 2 for rows that lie back
// to back (stride = n*4), the prefetches following them as one stream PF
// ahead, a line for each 64 bytes of a step (batch-4 decode steps of
// mamba-130m 1.2-1.4x faster at f16 and f32 than four prefetches a step,
// one a row, Zen 4); 1 PF ahead in each row; 0 none. tileF16AVX512 and
// tileBF16AVX512 likewise, with stride = n*2.
//
//go:noescape
func tileF32AVX512(w *byte, stride, n int, x *float32, xstride int, out *float32, ostride, pf int)

// tileF16AVX512 is tileF32AVX512's loop on f16 rows (dotF16x4AVX512's
// bits).
//
//go:noescape
func tileF16AVX512(w *byte, stride, n int, x *float32, xstride int, out *float32, ostride, pf int)

// tileBF16AVX512 is tileF32AVX512's loop on bf16 rows (dotBF16x4AVX512's
// bits).
//
//go:noescape
func tileBF16AVX512(w *byte, stride, n int, x *float32, xstride int, out *float32, ostride, pf int)

// tileF32AVX2 is 4 f32 rows x 2 tokens, n columns (a multiple of 8), with
// dotF32x4AVX2's bits for each row and token:
//
//	for t := 0; t < 2; t++ {
//		x := x[t*xstride/4:]
//		for i := 0; i < 4; i++ {
//			var acc [8]float32
//			for c := 0; c < n; c++ {
//				acc[c%8] = fma(row_i[c], x[c], acc[c%8])
//			}
//			out[t*ostride/4+i] = reduce4(acc)
//		}
//	}
//
// pf != 0 prefetches PF bytes ahead in each row as it goes; pf == 0 reads
// only the tile (MatMul prefetches for it: groupPrefetch). The bits do
// not depend on pf.
//
//go:noescape
func tileF32AVX2(w *byte, stride, n int, x *float32, xstride int, out *float32, ostride, pf int)

// tileF16AVX2 is tileF32AVX2's loop on f16 rows (dotF16x4AVX2's bits).
//
//go:noescape
func tileF16AVX2(w *byte, stride, n int, x *float32, xstride int, out *float32, ostride, pf int)

// tileBF16AVX2 is tileF32AVX2's loop on bf16 rows (dotBF16x4AVX2's bits).
//
//go:noescape
func tileBF16AVX2(w *byte, stride, n int, x *float32, xstride int, out *float32, ostride, pf int)

// tileQ8AVX2 is the Q8_0 tile with AVX2: rows i = 0..3 of nb blocks each
// (row i at w + i*stride bytes) against tokens t = 0..1 (quants at
// xq + t*xstride, their block scales at xd + t*nb), with the bits of the
// row kernel dotQ8x4AVX2, which computes, in 8 lanes per output:
//
//	for i := 0; i < 4; i++ {
//		for t := 0; t < 2; t++ {
//			var acc [8]float32
//			for b := 0; b < nb; b++ {
//				row := w[i*stride+b*34:]
//				dw := f16(row[0:2])
//				x := xq[t*xstride+b*32:]
//				for l := 0; l < 8; l++ {
//					s := int32(0)
//					for j := 4 * l; j < 4*l+4; j++ {
//						s += q(row, j) * int32(x[j])
//					}
//					acc[l] = fma(float32(s), dw*xd[t*nb+b], acc[l])
//				}
//			}
//			out[t*ostride/4+i] = reduce4(acc) // REDUCE4's pairwise tree
//		}
//	}
//
// pf as for tileF32AVX2.
//
//go:noescape
func tileQ8AVX2(w *byte, stride, nb int, xq *int8, xstride int, xd *float32, out *float32, ostride, pf int)

// tileQ8DAVX2 is tileQ8AVX2 with the four rows' block scales given as
// float32, dw[4*b+i] = f16(row i's block b scale), so that a caller that
// runs one group of rows against many pairs of tokens (prefill) converts
// them once: the same multiplies d_w*d_x and the same bits.
//
//	tileQ8AVX2(w, stride, nb, xq, xstride, xd, out, ostride, pf)
//
//go:noescape
func tileQ8DAVX2(w *byte, stride, nb int, xq *int8, xstride int, xd *float32, out *float32, ostride, pf int, dw *float32)

// tileQ8T4AVX2 is tileQ8AVX2's loop for 2 rows x 4 tokens (i < 2, t < 4),
// with the same operations on each row, token and block, so the bits of
// dotQ8x4AVX2 for each: one call reads each weight once for four tokens
// (batched decode of four sequences), where tileQ8AVX2 takes two. The
// tokens' block scales come four a block, xd4[4*b+t] = xd[t*nb+b], laid
// out once for all the rows by the caller: one load a block where a
// gather of four was.
//
//go:noescape
func tileQ8T4AVX2(w *byte, stride, nb int, xq *int8, xstride int, xd4 *float32, out *float32, ostride, pf int)

// tileQ8AVX512 is dotQ8x4AVX512's loop for 4 rows x 4 tokens, with
// VPDPBUSD on the activations offset to unsigned once per token, two
// blocks a step: the same int32 lanes, float operations and order, so the
// bits of dotQ8x4AVX512 for each row and token:
//
//	for t := 0; t < 4; t++ {
//		dotQ8x4AVX512(w, stride, nb, xq[t*xstride:], xd[t*nb:], out[t*ostride:t*ostride+4])
//	}
//
// pf picks its prefetch: 2 for rows that lie back to back (stride =
// nb*34), the prefetches following them as one stream PF ahead, five
// lines a step (which made batch-4 int8 decode steps 1.5x faster than two
// lines a row and step, Zen 4); 1 PF ahead in each row; 0 none (MatMul
// prefetches for it: groupPrefetch, for four or more calls a group).
//
//go:noescape
func tileQ8AVX512(w *byte, stride, nb int, xq *int8, xstride int, xd *float32, out *float32, ostride, pf int)

// quantQ8AVX512 is QuantizeQ8 on nb blocks of 32, with the bits of its Go
// loop:
//
//	quantizeQ8Go(q[:32*nb], d[:nb], x[:32*nb])
//
//go:noescape
func quantQ8AVX512(q *int8, d *float32, x *float32, nb int)

// quantQ8AVX2 is QuantizeQ8 on nb blocks of 32 in 256-bit registers, with
// the bits of its Go loop:
//
//	quantizeQ8Go(q[:32*nb], d[:nb], x[:32*nb])
//
//go:noescape
func quantQ8AVX2(q *int8, d *float32, x *float32, nb int)

// prefetchLines asks for the cache lines of the n bytes at p (n > 0) to be
// brought into the cache, one PREFETCHT0 per 64 bytes, and returns without
// waiting for them; it reads nothing and cannot fault:
//
//	for off := 0; off < n; off += 64 { prefetcht0(p + off) }
//
//go:noescape
func prefetchLines(p *byte, n int)
