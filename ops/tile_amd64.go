//go:build !purego

package ops

// The tile kernels of tile_amd64.s; their contracts are in that file.

//go:noescape
func tileF32AVX512(w *byte, stride, n int, x *float32, xstride int, out *float32, ostride int)

//go:noescape
func tileF16AVX512(w *byte, stride, n int, x *float32, xstride int, out *float32, ostride int)

//go:noescape
func tileBF16AVX512(w *byte, stride, n int, x *float32, xstride int, out *float32, ostride int)

//go:noescape
func tileF32AVX2(w *byte, stride, n int, x *float32, xstride int, out *float32, ostride int)

//go:noescape
func tileF16AVX2(w *byte, stride, n int, x *float32, xstride int, out *float32, ostride int)

//go:noescape
func tileBF16AVX2(w *byte, stride, n int, x *float32, xstride int, out *float32, ostride int)

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
//						s += int32(int8(row[2+j])) * int32(x[j])
//					}
//					acc[l] = fma(float32(s), dw*xd[t*nb+b], acc[l])
//				}
//			}
//			out[t*ostride/4+i] = reduce4(acc) // REDUCE4's pairwise tree
//		}
//	}
//
//go:noescape
func tileQ8AVX2(w *byte, stride, nb int, xq *int8, xstride int, xd *float32, out *float32, ostride int)

//go:noescape
func tileQ8AVX512(w *byte, stride, nb int, xq *int8, xstride int, xd *float32, out *float32, ostride int)

//go:noescape
func quantQ8AVX512(q *int8, d *float32, x *float32, nb int)
