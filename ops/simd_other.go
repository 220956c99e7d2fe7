//go:build purego || !amd64

package ops

// Without assembly (another architecture, or the purego build tag) every
// product runs the pure-Go kernels; the stubs below are never called.

func detectSIMD() simdLevel { return simdGo }

// CPUFeatures says that this build has no assembly kernels.
func CPUFeatures() string { return "none used (pure-Go build)" }

const noAsm = "ops: assembly kernel called in a purego build"

func dotF32x4AVX2(w *byte, stride, n int, x *float32, out *[4]float32)    { panic(noAsm) }
func dotF32x4AVX512(w *byte, stride, n int, x *float32, out *[4]float32)  { panic(noAsm) }
func dotF16x4AVX2(w *byte, stride, n int, x *float32, out *[4]float32)    { panic(noAsm) }
func dotF16x4AVX512(w *byte, stride, n int, x *float32, out *[4]float32)  { panic(noAsm) }
func dotBF16x4AVX2(w *byte, stride, n int, x *float32, out *[4]float32)   { panic(noAsm) }
func dotBF16x4AVX512(w *byte, stride, n int, x *float32, out *[4]float32) { panic(noAsm) }
func dotQ8x4AVX2(w *byte, stride, nb int, xq *int8, xd *float32, out *[4]float32) {
	panic(noAsm)
}
func dotQ8x4AVX512(w *byte, stride, nb int, xq *int8, xd *float32, out *[4]float32) {
	panic(noAsm)
}
func dotQ4x4AVX2(w *byte, stride, nb int, xq *int8, xd *float32, out *[4]float32) {
	panic(noAsm)
}
func dotQ4x4AVX512(w *byte, stride, nb int, xq *int8, xd *float32, out *[4]float32) {
	panic(noAsm)
}

func dotF32RowsAVX2(w *byte, stride, n, rows int, x *float32, out *float32)    { panic(noAsm) }
func dotF16RowsAVX2(w *byte, stride, n, rows int, x *float32, out *float32)    { panic(noAsm) }
func dotBF16RowsAVX2(w *byte, stride, n, rows int, x *float32, out *float32)   { panic(noAsm) }
func dotF32RowsAVX512(w *byte, stride, n, rows int, x *float32, out *float32)  { panic(noAsm) }
func dotF16RowsAVX512(w *byte, stride, n, rows int, x *float32, out *float32)  { panic(noAsm) }
func dotBF16RowsAVX512(w *byte, stride, n, rows int, x *float32, out *float32) { panic(noAsm) }
func dotQ8RowsAVX2(w *byte, stride, nb, rows int, xq *int8, xd *float32, out *float32) {
	panic(noAsm)
}
func dotQ8RowsAVX512(w *byte, stride, nb, rows int, xq *int8, xd *float32, out *float32) {
	panic(noAsm)
}

func expAVX2(dst, src *float32, n int) { panic(noAsm) }

func scanChanAVX2(h, A, B, C, dt, a, y *float32, N, T, E int, D float32) { panic(noAsm) }

func scanChan2AVX2(h, A, B, C, dt, a, y, D *float32, N, T, E int) {
	panic(noAsm)
}

func softplusAVX2(dst, src *float32, n int) { panic(noAsm) }

func scanChansAVX512(h, A, B, C, dt, a, y, D *float32, N, T, E, count int) { panic(noAsm) }

func scan16x16AVX512(h, A, B, C, dt, a, y, D *float32, T, E, count int) { panic(noAsm) }

func scan8x16AVX2(h, A, B, C, dt, a, y, D *float32, T, E, count int) { panic(noAsm) }

func convStep16AVX512(out, window, x, w, b *float32, count int) { panic(noAsm) }

func siluAVX2(dst, src *float32, n int) { panic(noAsm) }

func sigmoidAVX2(dst, src *float32, n int) { panic(noAsm) }

func mulSiLUAVX2(y, z *float32, n int) { panic(noAsm) }

func convK4AVX2(out, x, w0, w1, w2, w3, b, s0, s1, s2 *float32, E, T, n int) { panic(noAsm) }

func attendScoresAVX512(s, q, K *float32, n, A, dh int, scale float32) { panic(noAsm) }

func attendAccumAVX512(out, e, V *float32, n, A, dh int) { panic(noAsm) }

func attendScoresAVX2(s, q, K *float32, n, A, dh int, scale float32) { panic(noAsm) }

func attendAccumAVX2(out, e, V *float32, n, A, dh int) { panic(noAsm) }
