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

// The kernels of simd_amd64.s; their contracts are in that file.

//go:noescape
func dotF32x4AVX2(w *byte, stride, n int, x *float32, out *[4]float32)

//go:noescape
func dotF32x4AVX512(w *byte, stride, n int, x *float32, out *[4]float32)

//go:noescape
func dotF16x4AVX2(w *byte, stride, n int, x *float32, out *[4]float32)

//go:noescape
func dotF16x4AVX512(w *byte, stride, n int, x *float32, out *[4]float32)

//go:noescape
func dotBF16x4AVX2(w *byte, stride, n int, x *float32, out *[4]float32)

//go:noescape
func dotBF16x4AVX512(w *byte, stride, n int, x *float32, out *[4]float32)

//go:noescape
func dotQ8x4AVX2(w *byte, stride, nb int, xq *int8, xd *float32, out *[4]float32)

//go:noescape
func dotQ4x4AVX2(w *byte, stride, nb int, xq *int8, xd *float32, out *[4]float32)

//go:noescape
func dotQ4x4AVX512(w *byte, stride, nb int, xq *int8, xd *float32, out *[4]float32)

//go:noescape
func dotF32RowsAVX512(w *byte, stride, n, rows int, x *float32, out *float32)

//go:noescape
func dotF16RowsAVX512(w *byte, stride, n, rows int, x *float32, out *float32)

//go:noescape
func dotBF16RowsAVX512(w *byte, stride, n, rows int, x *float32, out *float32)

//go:noescape
func dotQ8RowsAVX512(w *byte, stride, nb, rows int, xq *int8, xd *float32, out *float32)

// The kernels of scan_amd64.s.

//go:noescape
func expAVX2(dst, src *float32, n int)

//go:noescape
func scanChanAVX2(h, A, B, C, dt, a, y *float32, N, T, E int, D float32)

//go:noescape
func softplusAVX2(dst, src *float32, n int)

//go:noescape
func scanChansAVX512(h, A, B, C, dt, a, y, D *float32, N, T, E, count int)

//go:noescape
func siluAVX2(dst, src *float32, n int)

//go:noescape
func sigmoidAVX2(dst, src *float32, n int)

//go:noescape
func mulSiLUAVX2(y, z *float32, n int)

//go:noescape
func convK4AVX2(out, x, w0, w1, w2, w3, b, s0, s1, s2 *float32, E, T, n int)

//go:noescape
func attendScoresAVX512(s, q, K *float32, n, A, dh int, scale float32)

//go:noescape
func attendAccumAVX512(out, e, V *float32, n, A, dh int)

//go:noescape
func dotQ8x4AVX512(w *byte, stride, nb int, xq *int8, xd *float32, out *[4]float32)

// CPUFeatures lists the CPU features the kernel levels depend on, those
// this CPU has.
func CPUFeatures() string {
	if f := features().names(); f != "" {
		return f
	}
	return "none of avx2, fma, f16c, avx-512"
}
