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

//go:noescape
func tileQ8AVX512(w *byte, stride, nb int, xq *int8, xstride int, xd *float32, out *float32, ostride int)

//go:noescape
func quantQ8AVX512(q *int8, d *float32, x *float32, nb int)
