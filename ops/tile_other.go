//go:build purego || !amd64

package ops

func tileF32AVX512(w *byte, stride, n int, x *float32, xstride int, out *float32, ostride, pf int) {
	panic(noAsm)
}
func tileF16AVX512(w *byte, stride, n int, x *float32, xstride int, out *float32, ostride, pf int) {
	panic(noAsm)
}
func tileBF16AVX512(w *byte, stride, n int, x *float32, xstride int, out *float32, ostride, pf int) {
	panic(noAsm)
}
func tileF32AVX2(w *byte, stride, n int, x *float32, xstride int, out *float32, ostride, pf int) {
	panic(noAsm)
}
func tileF16AVX2(w *byte, stride, n int, x *float32, xstride int, out *float32, ostride, pf int) {
	panic(noAsm)
}
func tileBF16AVX2(w *byte, stride, n int, x *float32, xstride int, out *float32, ostride, pf int) {
	panic(noAsm)
}
func tileQ8AVX2(w *byte, stride, nb int, xq *int8, xstride int, xd *float32, out *float32, ostride, pf int) {
	panic(noAsm)
}
func tileQ8DAVX2(w *byte, stride, nb int, xq *int8, xstride int, xd *float32, out *float32, ostride, pf int, dw *float32) {
	panic(noAsm)
}
func tileQ8T4AVX2(w *byte, stride, nb int, xq *int8, xstride int, xd4 *float32, out *float32, ostride, pf int) {
	panic(noAsm)
}
func tileQ8AVX512(w *byte, stride, nb int, xq *int8, xstride int, xd *float32, out *float32, ostride, pf int) {
	panic(noAsm)
}

func quantQ8AVX512(q *int8, d *float32, x *float32, nb int) { panic(noAsm) }
func quantQ8AVX2(q *int8, d *float32, x *float32, nb int)   { panic(noAsm) }

func prefetchLines(p *byte, n int) {}
