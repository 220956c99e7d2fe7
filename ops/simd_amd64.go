//go:build !purego

package ops

import "golang.org/x/sys/cpu"

// detectSIMD picks the widest kernel set this CPU and OS support.
func detectSIMD() simdLevel { return levelFor(features()) }

// features reads the CPU features the levels depend on.
func features() cpuFeatures {
	x := &cpu.X86
	return cpuFeatures{AVX2: x.HasAVX2, FMA: x.HasFMA, F16C: x.HasF16C, AVX512F: x.HasAVX512F,
		AVX512BW: x.HasAVX512BW, AVX512VL: x.HasAVX512VL, AVX512VNNI: x.HasAVX512VNNI}
}

// The kernels of simd_amd64.s and scan_amd64.s. Each is documented with
// the plain Go loop it computes, in the kernel's order of operations, so
// that it gives the kernel's bits; the tests hold the product kernels to
// Go twins of these loops bit for bit (twins_amd64_test.go). In the loops:
//
//   - w is the bytes at w; a float row i is the n values at w[i*stride:]
//     (f32: 4 bytes each, f16/bf16: 2), f16(b) and bf16(b) decode a value;
//     stride 0 computes one row four times.
//   - fma(a, b, c) is a*b+c rounded once (math.FMA in float32).
//   - reduce4(acc) is REDUCE4's fixed tree over 8 lanes:
//     ((acc[0]+acc[1])+(acc[2]+acc[3])) + ((acc[4]+acc[5])+(acc[6]+acc[7])).
//   - fold16(acc) adds 16 lanes to 8 as FOLD16 does: lane l + lane l+8.
//   - A Q8_0 block is 34 bytes: an f16 scale, 32 int8 weights. A Q4_0
//     block is 18 bytes: an f16 scale, 16 bytes whose low nibbles are
//     weights 0-15 and high nibbles weights 16-31, each nibble q meaning
//     q-8. q(blk, j) is weight j of a block as an int32.
//   - xq holds the activations quantised per block of 32 (QuantizeQ8:
//     -127..127), xd their scales, one per block.

// dotF32x4AVX2 is four f32 rows against x, n columns (a multiple of 8),
// one 8-lane accumulator per row:
//
//	for i := 0; i < 4; i++ {
//		var acc [8]float32
//		for c := 0; c < n; c++ {
//			acc[c%8] = fma(row_i[c], x[c], acc[c%8])
//		}
//		out[i] = reduce4(acc)
//	}
//
//go:noescape
func dotF32x4AVX2(w *byte, stride, n int, x *float32, out *[4]float32)

// dotF32x4AVX512 is dotF32x4AVX2 with 16 lanes, n a multiple of 16:
//
//	for i := 0; i < 4; i++ {
//		var acc [16]float32
//		for c := 0; c < n; c++ {
//			acc[c%16] = fma(row_i[c], x[c], acc[c%16])
//		}
//		out[i] = reduce4(fold16(acc))
//	}
//
//go:noescape
func dotF32x4AVX512(w *byte, stride, n int, x *float32, out *[4]float32)

// dotF16x4AVX2 is dotF32x4AVX2's loop on f16 rows: acc[c%8] =
// fma(f16(row_i[c]), x[c], acc[c%8]) (VCVTPH2PS decodes exactly).
//
//go:noescape
func dotF16x4AVX2(w *byte, stride, n int, x *float32, out *[4]float32)

// dotF16x4AVX512 is dotF32x4AVX512's loop on f16 rows.
//
//go:noescape
func dotF16x4AVX512(w *byte, stride, n int, x *float32, out *[4]float32)

// dotBF16x4AVX2 is dotF32x4AVX2's loop on bf16 rows: acc[c%8] =
// fma(bf16(row_i[c]), x[c], acc[c%8]), bf16(v) the float32 of bits v<<16.
//
//go:noescape
func dotBF16x4AVX2(w *byte, stride, n int, x *float32, out *[4]float32)

// dotBF16x4AVX512 is dotF32x4AVX512's loop on bf16 rows.
//
//go:noescape
func dotBF16x4AVX512(w *byte, stride, n int, x *float32, out *[4]float32)

// dotQ8x4AVX2 is four rows of nb Q8_0 blocks against the quantised
// activations: each block's 32 products summed exactly in 8 int32 lanes
// of 4, scaled by the float32 product d_w*d_x into the row's 8 lanes:
//
//	for i := 0; i < 4; i++ {
//		var acc [8]float32
//		for b := 0; b < nb; b++ {
//			blk := w[i*stride+b*34:]
//			dw := f16(blk[0:2])
//			for l := 0; l < 8; l++ {
//				s := int32(0)
//				for j := 4 * l; j < 4*l+4; j++ {
//					s += q(blk, j) * int32(xq[b*32+j])
//				}
//				acc[l] = fma(float32(s), dw*xd[b], acc[l])
//			}
//		}
//		out[i] = reduce4(acc)
//	}
//
//go:noescape
func dotQ8x4AVX2(w *byte, stride, nb int, xq *int8, xd *float32, out *[4]float32)

// dotQ4x4AVX2 is dotQ8x4AVX2's loop on Q4_0 blocks (18 bytes, weight j
// the nibble q-8 as above).
//
//go:noescape
func dotQ4x4AVX2(w *byte, stride, nb int, xq *int8, xd *float32, out *[4]float32)

// dotQ4x4AVX512 is dotQ8x4AVX512's loop on Q4_0 blocks, the nibbles
// entering VPDPBUSD as they are (unsigned 0..15) against lanes that start
// at -8 * their four x.
//
//go:noescape
func dotQ4x4AVX512(w *byte, stride, nb int, xq *int8, xd *float32, out *[4]float32)

// dotQ8x4AVX512 is four rows of nb Q8_0 blocks against the quantised
// activations, two blocks a step in 512-bit registers with VPDPBUSD
// (weights offset to unsigned, lanes started at -128 * their four x): the
// int32 lanes of dotQ8x4AVX2, each pair of blocks added by one 16-lane
// FMA, so the even blocks sum in lanes 0-7 and the odd ones in 8-15,
// folded after the last pair, an odd last block added to the fold:
//
//	for i := 0; i < 4; i++ {
//		var acc [16]float32
//		b := 0
//		for ; b+1 < nb; b += 2 {
//			add(acc[0:8], i, b)  // as dotQ8x4AVX2's block step:
//			add(acc[8:16], i, b+1) // acc[l] = fma(float32(s_l), dw*xd[b], acc[l])
//		}
//		var lanes [8]float32
//		for l := range lanes { lanes[l] = acc[l] + acc[l+8] }
//		if b < nb { add(lanes[:], i, b) }
//		out[i] = reduce4(lanes)
//	}
//
//go:noescape
func dotQ8x4AVX512(w *byte, stride, nb int, xq *int8, xd *float32, out *[4]float32)

// dotQ8RowsAVX2 is dotQ8x4AVX2 over rows/4 groups of four rows (rows a
// positive multiple of 4, nb > 0), with its bits; it prefetches the rows as
// one stream, so they should lie back to back (stride = 34*nb):
//
//	for g := 0; g < rows/4; g++ {
//		dotQ8x4AVX2(w[4*g*stride:], stride, nb, xq, xd, out[4*g:4*g+4])
//	}
//
//go:noescape
func dotQ8RowsAVX2(w *byte, stride, nb, rows int, xq *int8, xd *float32, out *float32)

// dotF32RowsAVX2 is dotF32x4AVX2 over rows/4 groups of four rows (rows a
// positive multiple of 4, n a positive multiple of 8), with its bits; it
// prefetches the rows as one stream, so they should lie back to back
// (stride = 4*n):
//
//	for g := 0; g < rows/4; g++ {
//		dotF32x4AVX2(w[4*g*stride:], stride, n, x, out[4*g:4*g+4])
//	}
//
//go:noescape
func dotF32RowsAVX2(w *byte, stride, n, rows int, x *float32, out *float32)

// dotF16RowsAVX2 is dotF16x4AVX2 over rows/4 groups of four rows (rows a
// positive multiple of 4, n a positive multiple of 8), with its bits, the
// rows back to back (stride = 2*n):
//
//	for g := 0; g < rows/4; g++ {
//		dotF16x4AVX2(w[4*g*stride:], stride, n, x, out[4*g:4*g+4])
//	}
//
//go:noescape
func dotF16RowsAVX2(w *byte, stride, n, rows int, x *float32, out *float32)

// dotBF16RowsAVX2 is dotBF16x4AVX2 over rows/4 groups of four rows (rows
// a positive multiple of 4, n a positive multiple of 8), with its bits,
// the rows back to back (stride = 2*n):
//
//	for g := 0; g < rows/4; g++ {
//		dotBF16x4AVX2(w[4*g*stride:], stride, n, x, out[4*g:4*g+4])
//	}
//
//go:noescape
func dotBF16RowsAVX2(w *byte, stride, n, rows int, x *float32, out *float32)

// dotF32RowsAVX512 is dotF32x4AVX512 over rows/4 groups of four rows
// (rows a positive multiple of 4, n a positive multiple of 16), with its
// bits; it prefetches the rows as one stream, so they should lie back to
// back (stride = 4*n):
//
//	for g := 0; g < rows/4; g++ {
//		dotF32x4AVX512(w[4*g*stride:], stride, n, x, out[4*g:4*g+4])
//	}
//
//go:noescape
func dotF32RowsAVX512(w *byte, stride, n, rows int, x *float32, out *float32)

// dotF16RowsAVX512 is dotF16x4AVX512 over rows/4 groups of four rows, as
// dotF32RowsAVX512 (rows back to back: stride = 2*n).
//
//go:noescape
func dotF16RowsAVX512(w *byte, stride, n, rows int, x *float32, out *float32)

// dotBF16RowsAVX512 is dotBF16x4AVX512 over rows/4 groups of four rows, as
// dotF32RowsAVX512 (rows back to back: stride = 2*n).
//
//go:noescape
func dotBF16RowsAVX512(w *byte, stride, n, rows int, x *float32, out *float32)

// dotQ8RowsAVX512 is dotQ8x4AVX512 over rows/4 groups of four rows (rows
// a positive multiple of 4, nb a positive even number), with its bits; it
// prefetches the rows as one stream, so they should lie back to back
// (stride = nb*34):
//
//	for g := 0; g < rows/4; g++ {
//		dotQ8x4AVX512(w[4*g*stride:], stride, nb, xq, xd, out[4*g:4*g+4])
//	}
//
//go:noescape
func dotQ8RowsAVX512(w *byte, stride, nb, rows int, xq *int8, xd *float32, out *float32)

// expAVX2 is the vector exp (vexp; its steps and error bound are in
// scan_simd.go) on n values, n a multiple of 8:
//
//	for i := 0; i < n; i++ { dst[i] = vexp(src[i]) }
//
//go:noescape
func expAVX2(dst, src *float32, n int)

// scanChanAVX2 is the selective scan of one channel over T tokens: h and A
// the channel's N state values and A row, B and C the first token's rows
// (N values, the next token's N further on), dt, a and y the channel's
// first-token values (the next token's E further on); N is a positive
// multiple of 8:
//
//	for t := 0; t < T; t++ {
//		d, av := dt[t*E], a[t*E]
//		var s [8]float32
//		for j := 0; j < N; j++ {
//			h[j] = fma(vexp(d*A[j]), h[j], (d*B[t*N+j])*av)
//			s[j%8] = fma(h[j], C[t*N+j], s[j%8])
//		}
//		y[t*E] = (((s[0]+s[4])+(s[1]+s[5])) + ((s[2]+s[6])+(s[3]+s[7]))) + D*av
//	}
//
//go:noescape
func scanChanAVX2(h, A, B, C, dt, a, y *float32, N, T, E int, D float32)

// scanChan2AVX2 is scanChanAVX2 on channels e and e+1 at once, N a
// positive multiple of 16: h and A point at channel e's N-value rows
// (e+1's follow), dt, a and y at channel e's first-token values (e+1's
// next to them), D at channel e's D (e+1's next). Its four 8-lane vectors
// run the exp side by side; each channel gets scanChanAVX2's bits:
//
//	scanChanAVX2(h, A, B, C, dt, a, y, N, T, E, D[0])
//	scanChanAVX2(h[N:], A[N:], B, C, dt[1:], a[1:], y[1:], N, T, E, D[1])
//
//go:noescape
func scanChan2AVX2(h, A, B, C, dt, a, y, D *float32, N, T, E int)

// softplusAVX2 is softplus in float32 on n values, n a multiple of 8, with
// t = vexp(-|v|) and s = t/(2+t):
//
//	dst[i] = max(v, 0) + 2s*(1 + z/3 + z^2/5 + ... + z^6/13), z = s*s, v = src[i]
//
// (log1p(t) = 2*atanh(s); the series' steps are in scan_amd64.s.)
//
//go:noescape
func softplusAVX2(dst, src *float32, n int)

// scanChansAVX512 is scanChanAVX2 with 16 lanes over count consecutive
// channels (h and A their N-value rows back to back, D their D values,
// dt, a and y their first-token values side by side); N is a positive
// multiple of 16. Per channel e < count:
//
//	for t := 0; t < T; t++ {
//		d, av := dt[e+t*E], a[e+t*E]
//		var s [16]float32
//		for j := 0; j < N; j++ {
//			h[e*N+j] = fma(vexp(d*A[e*N+j]), h[e*N+j], (d*B[t*N+j])*av)
//			s[j%16] = fma(h[e*N+j], C[t*N+j], s[j%16])
//		}
//		u := fold16(s)
//		y[e+t*E] = (((u[0]+u[4])+(u[1]+u[5])) + ((u[2]+u[6])+(u[3]+u[7]))) + D[e]*av
//	}
//
//go:noescape
func scanChansAVX512(h, A, B, C, dt, a, y, D *float32, N, T, E, count int)

// siluAVX2 is SiLU through the vector exp, n a multiple of 8:
//
//	for i := 0; i < n; i++ { dst[i] = src[i] / (1 + vexp(-src[i])) }
//
//go:noescape
func siluAVX2(dst, src *float32, n int)

// sigmoidAVX2 is the logistic function through the vector exp, n a
// multiple of 8:
//
//	for i := 0; i < n; i++ { dst[i] = 1 / (1 + vexp(-src[i])) }
//
//go:noescape
func sigmoidAVX2(dst, src *float32, n int)

// mulSiLUAVX2 gates y by SiLU(z) through the vector exp, n a multiple of
// 8:
//
//	for i := 0; i < n; i++ { y[i] = y[i] * (z[i] / (1 + vexp(-z[i]))) }
//
//go:noescape
func mulSiLUAVX2(y, z *float32, n int)

// convK4AVX2 is the causal convolution of width 4 for n channels (a
// multiple of 8) over T tokens: w0..w3, b and the window s0..s2 (oldest
// first) hold n values each; x and out point at the first channel of
// token 0, the next token's E further on. Separate multiplies and adds, in
// the Go loop's order:
//
//	for t := 0; t < T; t++ {
//		for c := 0; c < n; c++ {
//			v := x[t*E+c]
//			out[t*E+c] = (((b[c] + w0[c]*s0[c]) + w1[c]*s1[c]) + w2[c]*s2[c]) + w3[c]*v
//			s0[c], s1[c], s2[c] = s1[c], s2[c], v
//		}
//	}
//
//go:noescape
func convK4AVX2(out, x, w0, w1, w2, w3, b, s0, s1, s2 *float32, E, T, n int)

// attendScoresAVX512 is the attention scores of every head h (A/dh of
// them, dh a multiple of 16) against keys j < n (n >= 1; K is n x A):
//
//	for h := 0; h < A/dh; h++ {
//		for j := 0; j < n; j++ {
//			var acc [16]float32
//			for c := h * dh; c < (h+1)*dh; c++ {
//				acc[c%16] = fma(q[c], K[j*A+c], acc[c%16])
//			}
//			u := fold16(acc)
//			s[h*n+j] = (((u[0]+u[4])+(u[1]+u[5])) + ((u[2]+u[6])+(u[3]+u[7]))) / scale
//		}
//	}
//
//go:noescape
func attendScoresAVX512(s, q, K *float32, n, A, dh int, scale float32)

// attendAccumAVX512 is the weighted sum of values per head (dh a multiple
// of 16, n >= 1; V is n x A), out overwritten:
//
//	for h := 0; h < A/dh; h++ {
//		for c := h * dh; c < (h+1)*dh; c++ {
//			var o float32
//			for j := 0; j < n; j++ { o = fma(e[h*n+j], V[j*A+c], o) }
//			out[c] = o
//		}
//	}
//
//go:noescape
func attendAccumAVX512(out, e, V *float32, n, A, dh int)

// attendScoresAVX2 is attendScoresAVX512 with 8 lanes (dh a multiple of 8):
//
//	for h := 0; h < A/dh; h++ {
//		for j := 0; j < n; j++ {
//			var u [8]float32
//			for c := h * dh; c < (h+1)*dh; c++ {
//				u[c%8] = fma(q[c], K[j*A+c], u[c%8])
//			}
//			s[h*n+j] = (((u[0]+u[4])+(u[1]+u[5])) + ((u[2]+u[6])+(u[3]+u[7]))) / scale
//		}
//	}
//
//go:noescape
func attendScoresAVX2(s, q, K *float32, n, A, dh int, scale float32)

// attendAccumAVX2 is attendAccumAVX512's loop (dh a multiple of 8, n >= 1),
// 8 lanes at a time, so the same bits:
//
//	for h := 0; h < A/dh; h++ {
//		for c := h * dh; c < (h+1)*dh; c++ {
//			var o float32
//			for j := 0; j < n; j++ { o = fma(e[h*n+j], V[j*A+c], o) }
//			out[c] = o
//		}
//	}
//
//go:noescape
func attendAccumAVX2(out, e, V *float32, n, A, dh int)

// CPUFeatures lists the CPU features the kernel levels depend on, those
// this CPU has.
func CPUFeatures() string {
	if f := features().names(); f != "" {
		return f
	}
	return "none of avx2, fma, f16c, avx-512"
}

// scan16x16AVX512 is scanChansAVX512 with N = 16 over count channels,
// count a positive multiple of 16: the same bits, sixteen channels at a
// time, their horizontal sums done together. Per channel e < count and
// token t < T (i = e + t*E):
//
//	var s [16]float32
//	for j := 0; j < 16; j++ {
//		h[e*16+j] = fma(vexp(dt[i]*A[e*16+j]), h[e*16+j], (dt[i]*B[t*16+j])*a[i])
//		s[j] = fma(h[e*16+j], C[t*16+j], 0)
//	}
//	u := fold16(s)
//	y[i] = (((u[0]+u[4])+(u[1]+u[5])) + ((u[2]+u[6])+(u[3]+u[7]))) + a[i]*D[e]
//
//go:noescape
func scan16x16AVX512(h, A, B, C, dt, a, y, D *float32, T, E, count int)

// convStep16AVX512 is convRange's K = 4 loop for one token (T = 1) over
// count channels, count a positive multiple of 16 (window is count x 3,
// w count x 4, b count values or nil): the same products and sums in the
// same order, so the same bits, sixteen channels at a time. Per channel
// e < count:
//
//	c := float32(0)
//	if b != nil { c = b[e] }
//	c += w[e*4+0] * window[e*3+0]
//	c += w[e*4+1] * window[e*3+1]
//	c += w[e*4+2] * window[e*3+2]
//	c += w[e*4+3] * x[e]
//	out[e] = c
//	window[e*3+0], window[e*3+1], window[e*3+2] = window[e*3+1], window[e*3+2], x[e]
//
//go:noescape
func convStep16AVX512(out, window, x, w, b *float32, count int)

// scan8x16AVX2 is scanChanAVX2 with N = 16 over count channels, count a
// positive multiple of 8: the same bits, eight channels at a time (two
// through EXP4 at once, as scanChan2AVX2 does), their horizontal sums
// done together. Per channel e < count and token t < T (i = e + t*E):
//
//	var s [8]float32
//	for j := 0; j < 16; j++ {
//		h[e*16+j] = fma(vexp(dt[i]*A[e*16+j]), h[e*16+j], (dt[i]*B[t*16+j])*a[i])
//		s[j%8] = fma(h[e*16+j], C[t*16+j], s[j%8])
//	}
//	y[i] = (((s[0]+s[4])+(s[1]+s[5])) + ((s[2]+s[6])+(s[3]+s[7]))) + a[i]*D[e]
//
//go:noescape
func scan8x16AVX2(h, A, B, C, dt, a, y, D *float32, T, E, count int)
