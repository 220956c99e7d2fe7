package ops

// Row dot-product kernels, one set per weight type.
//
// Every (weight row, input vector) pair is summed in one fixed order no
// matter which kernel computes it, so MatVec, MatMul and the Pool variants
// give bit-identical results (and prefill equals one-token steps):
//
//   - F32, F16, BF16: one sequential chain, s += W[c]*x[c] for c = 0..Cols-1.
//   - Q8_0, Q4_0: per block of 32, chain a over elements 0..15 and chain b
//     over elements 16..31 (for Q4_0 these are the low and high nibbles of
//     the 16 bytes), then s += d*(a+b), blocks in order.
//
// Instruction-level parallelism comes from computing four independent pairs
// at once: four rows against one vector (the 4x1 kernels, for MatVec) or one
// row against four vectors (the 1x4 kernels, for MatMul, where each weight
// is decoded once for four tokens). The 1x1 kernels handle the remainders.

import (
	"encoding/binary"
	"math"
	"unsafe"

	"github.com/memmamba/memmamba/quant"
)

const (
	bs   = quant.BlockSize
	q8B  = quant.Q8_0BlockBytes
	q4B  = quant.Q4_0BlockBytes
	half = bs / 2
)

// littleEndian reports whether the host stores integers little-endian, in
// which case aligned F32/F16/BF16 rows are read through a typed view.
var littleEndian = func() bool {
	v := uint16(1)
	return *(*byte)(unsafe.Pointer(&v)) == 1
}()

// viewF32 returns b as float32 values when the host is little-endian and b
// is 4-byte aligned; otherwise nil, false.
func viewF32(b []byte) ([]float32, bool) {
	if len(b) == 0 {
		return nil, true
	}
	if !littleEndian || uintptr(unsafe.Pointer(&b[0]))%4 != 0 {
		return nil, false
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4), true
}

// viewU16 returns b as uint16 values when the host is little-endian and b is
// 2-byte aligned; otherwise nil, false.
func viewU16(b []byte) ([]uint16, bool) {
	if len(b) == 0 {
		return nil, true
	}
	if !littleEndian || uintptr(unsafe.Pointer(&b[0]))%2 != 0 {
		return nil, false
	}
	return unsafe.Slice((*uint16)(unsafe.Pointer(&b[0])), len(b)/2), true
}

func bf16(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// ---- F32 ----

func dot1x1F32(w, x []float32) (s float32) {
	w = w[:len(x)]
	for i, xv := range x {
		s += w[i] * xv
	}
	return s
}

func dot4x1F32(w0, w1, w2, w3, x []float32) (s0, s1, s2, s3 float32) {
	n := len(x)
	w0, w1, w2, w3 = w0[:n], w1[:n], w2[:n], w3[:n]
	for i, xv := range x {
		s0 += w0[i] * xv
		s1 += w1[i] * xv
		s2 += w2[i] * xv
		s3 += w3[i] * xv
	}
	return
}

func dot1x4F32(w, x0, x1, x2, x3 []float32) (s0, s1, s2, s3 float32) {
	n := len(w)
	x0, x1, x2, x3 = x0[:n], x1[:n], x2[:n], x3[:n]
	for i, wv := range w {
		s0 += wv * x0[i]
		s1 += wv * x1[i]
		s2 += wv * x2[i]
		s3 += wv * x3[i]
	}
	return
}

// ---- F16 (through the 64K-entry table) ----

func dot1x1F16(tab *[1 << 16]float32, w []uint16, x []float32) (s float32) {
	w = w[:len(x)]
	for i, xv := range x {
		s += tab[w[i]] * xv
	}
	return s
}

func dot4x1F16(tab *[1 << 16]float32, w0, w1, w2, w3 []uint16, x []float32) (s0, s1, s2, s3 float32) {
	n := len(x)
	w0, w1, w2, w3 = w0[:n], w1[:n], w2[:n], w3[:n]
	for i, xv := range x {
		s0 += tab[w0[i]] * xv
		s1 += tab[w1[i]] * xv
		s2 += tab[w2[i]] * xv
		s3 += tab[w3[i]] * xv
	}
	return
}

func dot1x4F16(tab *[1 << 16]float32, w []uint16, x0, x1, x2, x3 []float32) (s0, s1, s2, s3 float32) {
	n := len(w)
	x0, x1, x2, x3 = x0[:n], x1[:n], x2[:n], x3[:n]
	for i, h := range w {
		wv := tab[h]
		s0 += wv * x0[i]
		s1 += wv * x1[i]
		s2 += wv * x2[i]
		s3 += wv * x3[i]
	}
	return
}

// ---- BF16 ----

func dot1x1BF16(w []uint16, x []float32) (s float32) {
	w = w[:len(x)]
	for i, xv := range x {
		s += bf16(w[i]) * xv
	}
	return s
}

func dot4x1BF16(w0, w1, w2, w3 []uint16, x []float32) (s0, s1, s2, s3 float32) {
	n := len(x)
	w0, w1, w2, w3 = w0[:n], w1[:n], w2[:n], w3[:n]
	for i, xv := range x {
		s0 += bf16(w0[i]) * xv
		s1 += bf16(w1[i]) * xv
		s2 += bf16(w2[i]) * xv
		s3 += bf16(w3[i]) * xv
	}
	return
}

func dot1x4BF16(w []uint16, x0, x1, x2, x3 []float32) (s0, s1, s2, s3 float32) {
	n := len(w)
	x0, x1, x2, x3 = x0[:n], x1[:n], x2[:n], x3[:n]
	for i, h := range w {
		wv := bf16(h)
		s0 += wv * x0[i]
		s1 += wv * x1[i]
		s2 += wv * x2[i]
		s3 += wv * x3[i]
	}
	return
}

// ---- Unaligned or big-endian F32/F16/BF16 rows: decode each value ----

// wAt decodes value c of a float-typed row.
func wAt(t quant.Type, tab *[1 << 16]float32, row []byte, c int) float32 {
	switch t {
	case quant.F32:
		return math.Float32frombits(binary.LittleEndian.Uint32(row[4*c:]))
	case quant.F16:
		return tab[binary.LittleEndian.Uint16(row[2*c:])]
	default:
		return bf16(binary.LittleEndian.Uint16(row[2*c:]))
	}
}

func dot1x1Slow(t quant.Type, tab *[1 << 16]float32, row []byte, x []float32) (s float32) {
	for i, xv := range x {
		s += wAt(t, tab, row, i) * xv
	}
	return s
}

// ---- Q8_0 ----

func f16le(tab *[1 << 16]float32, b *[2]byte) float32 {
	return tab[uint16(b[0])|uint16(b[1])<<8]
}

func dot1x1Q8(tab *[1 << 16]float32, w []byte, x []float32) (s float32) {
	for len(x) >= bs {
		q := (*[q8B]byte)(w)
		xs := (*[bs]float32)(x)
		var a, b float32
		for i := 0; i < half; i++ {
			a += float32(int8(q[2+i])) * xs[i]
			b += float32(int8(q[2+half+i])) * xs[half+i]
		}
		s += f16le(tab, (*[2]byte)(q[:2])) * (a + b)
		w, x = w[q8B:], x[bs:]
	}
	return s
}

func dot4x1Q8(tab *[1 << 16]float32, w0, w1, w2, w3 []byte, x []float32) (s0, s1, s2, s3 float32) {
	for len(x) >= bs {
		q0 := (*[q8B]byte)(w0)
		q1 := (*[q8B]byte)(w1)
		q2 := (*[q8B]byte)(w2)
		q3 := (*[q8B]byte)(w3)
		xs := (*[bs]float32)(x)
		var a0, b0, a1, b1, a2, b2, a3, b3 float32
		for i := 0; i < half; i++ {
			xa, xb := xs[i], xs[half+i]
			a0 += float32(int8(q0[2+i])) * xa
			b0 += float32(int8(q0[2+half+i])) * xb
			a1 += float32(int8(q1[2+i])) * xa
			b1 += float32(int8(q1[2+half+i])) * xb
			a2 += float32(int8(q2[2+i])) * xa
			b2 += float32(int8(q2[2+half+i])) * xb
			a3 += float32(int8(q3[2+i])) * xa
			b3 += float32(int8(q3[2+half+i])) * xb
		}
		s0 += f16le(tab, (*[2]byte)(q0[:2])) * (a0 + b0)
		s1 += f16le(tab, (*[2]byte)(q1[:2])) * (a1 + b1)
		s2 += f16le(tab, (*[2]byte)(q2[:2])) * (a2 + b2)
		s3 += f16le(tab, (*[2]byte)(q3[:2])) * (a3 + b3)
		w0, w1, w2, w3, x = w0[q8B:], w1[q8B:], w2[q8B:], w3[q8B:], x[bs:]
	}
	return
}

func dot1x4Q8(tab *[1 << 16]float32, w []byte, x0, x1, x2, x3 []float32) (s0, s1, s2, s3 float32) {
	for len(w) >= q8B {
		q := (*[q8B]byte)(w)
		y0 := (*[bs]float32)(x0)
		y1 := (*[bs]float32)(x1)
		y2 := (*[bs]float32)(x2)
		y3 := (*[bs]float32)(x3)
		var a0, b0, a1, b1, a2, b2, a3, b3 float32
		for i := 0; i < half; i++ {
			wa, wb := float32(int8(q[2+i])), float32(int8(q[2+half+i]))
			a0 += wa * y0[i]
			b0 += wb * y0[half+i]
			a1 += wa * y1[i]
			b1 += wb * y1[half+i]
			a2 += wa * y2[i]
			b2 += wb * y2[half+i]
			a3 += wa * y3[i]
			b3 += wb * y3[half+i]
		}
		d := f16le(tab, (*[2]byte)(q[:2]))
		s0 += d * (a0 + b0)
		s1 += d * (a1 + b1)
		s2 += d * (a2 + b2)
		s3 += d * (a3 + b3)
		w, x0, x1, x2, x3 = w[q8B:], x0[bs:], x1[bs:], x2[bs:], x3[bs:]
	}
	return
}

// ---- Q4_0 ----

func lo4(v byte) float32 { return float32(int(v&15) - 8) }
func hi4(v byte) float32 { return float32(int(v>>4) - 8) }

func dot1x1Q4(tab *[1 << 16]float32, w []byte, x []float32) (s float32) {
	for len(x) >= bs {
		q := (*[q4B]byte)(w)
		xs := (*[bs]float32)(x)
		var a, b float32
		for i := 0; i < half; i++ {
			v := q[2+i]
			a += lo4(v) * xs[i]
			b += hi4(v) * xs[half+i]
		}
		s += f16le(tab, (*[2]byte)(q[:2])) * (a + b)
		w, x = w[q4B:], x[bs:]
	}
	return s
}

func dot4x1Q4(tab *[1 << 16]float32, w0, w1, w2, w3 []byte, x []float32) (s0, s1, s2, s3 float32) {
	for len(x) >= bs {
		q0 := (*[q4B]byte)(w0)
		q1 := (*[q4B]byte)(w1)
		q2 := (*[q4B]byte)(w2)
		q3 := (*[q4B]byte)(w3)
		xs := (*[bs]float32)(x)
		var a0, b0, a1, b1, a2, b2, a3, b3 float32
		for i := 0; i < half; i++ {
			xa, xb := xs[i], xs[half+i]
			v0, v1, v2, v3 := q0[2+i], q1[2+i], q2[2+i], q3[2+i]
			a0 += lo4(v0) * xa
			b0 += hi4(v0) * xb
			a1 += lo4(v1) * xa
			b1 += hi4(v1) * xb
			a2 += lo4(v2) * xa
			b2 += hi4(v2) * xb
			a3 += lo4(v3) * xa
			b3 += hi4(v3) * xb
		}
		s0 += f16le(tab, (*[2]byte)(q0[:2])) * (a0 + b0)
		s1 += f16le(tab, (*[2]byte)(q1[:2])) * (a1 + b1)
		s2 += f16le(tab, (*[2]byte)(q2[:2])) * (a2 + b2)
		s3 += f16le(tab, (*[2]byte)(q3[:2])) * (a3 + b3)
		w0, w1, w2, w3, x = w0[q4B:], w1[q4B:], w2[q4B:], w3[q4B:], x[bs:]
	}
	return
}

func dot1x4Q4(tab *[1 << 16]float32, w []byte, x0, x1, x2, x3 []float32) (s0, s1, s2, s3 float32) {
	for len(w) >= q4B {
		q := (*[q4B]byte)(w)
		y0 := (*[bs]float32)(x0)
		y1 := (*[bs]float32)(x1)
		y2 := (*[bs]float32)(x2)
		y3 := (*[bs]float32)(x3)
		var a0, b0, a1, b1, a2, b2, a3, b3 float32
		for i := 0; i < half; i++ {
			v := q[2+i]
			wa, wb := lo4(v), hi4(v)
			a0 += wa * y0[i]
			b0 += wb * y0[half+i]
			a1 += wa * y1[i]
			b1 += wb * y1[half+i]
			a2 += wa * y2[i]
			b2 += wb * y2[half+i]
			a3 += wa * y3[i]
			b3 += wb * y3[half+i]
		}
		d := f16le(tab, (*[2]byte)(q[:2]))
		s0 += d * (a0 + b0)
		s1 += d * (a1 + b1)
		s2 += d * (a2 + b2)
		s3 += d * (a3 + b3)
		w, x0, x1, x2, x3 = w[q4B:], x0[bs:], x1[bs:], x2[bs:], x3[bs:]
	}
	return
}
