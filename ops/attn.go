package ops

import (
	"fmt"
	"math"
)

// Attend computes multi-head softmax attention of one query over n keys and
// values (the Note Block's pool): q and out have A values, K and V are
// n x A row-major, and the A dimensions are split into H heads of A/H:
//
//	for h := 0; h < H; h++ {
//		// over the head's slice [h*dh, (h+1)*dh), dh = A/H:
//		s[j] = dot(q_h, K[j]_h) / sqrt(dh)          for j < n
//		alpha = softmax(s)                          // stable: exp(s[j]-max s)
//		out_h = sum_j alpha[j] * V[j]_h
//	}
//
// The softmax is computed without scratch memory: a first pass finds the
// largest score, a second recomputes the (identical) scores, exponentiates
// them and accumulates sum_j e^(s[j]-max)*V[j]_h and the normaliser, and
// the head's output is divided by the normaliser at the end. With n == 0
// out is all zeros. out must not overlap q, K or V. A must be a multiple of
// H; Attend panics otherwise.
func Attend(out, q, K, V []float32, n, H int) {
	A := len(q)
	if H <= 0 || A%H != 0 || n < 0 || len(out) != A || len(K) != n*A || len(V) != n*A {
		panic(fmt.Sprintf("ops: Attend A=%d H=%d n=%d: out %d, K %d, V %d values", A, H, n, len(out), len(K), len(V)))
	}
	clear(out)
	if n == 0 {
		return
	}
	dh := A / H
	scale := float32(math.Sqrt(float64(dh)))
	if k := cur().attend; k != kNone && dh%attendLanes(k) == 0 && n*H <= maxSIMDScores && H <= maxSIMDHeads {
		attendSIMD(k, out, q, K, V, n, H, dh, scale)
		return
	}
	if n <= maxKeptScores {
		attendKept(out, q, K, V, n, H, dh, scale)
		return
	}
	attendTwoPass(out, q, K, V, n, H, dh, scale)
}

// attendTwoPass is Attend's loop for any n: a first pass for the largest
// score, a second that recomputes each score.
func attendTwoPass(out, q, K, V []float32, n, H, dh int, scale float32) {
	A := len(q)
	for h := 0; h < H; h++ {
		lo, hi := h*dh, h*dh+dh
		qh, oh := q[lo:hi], out[lo:hi]
		m := float32(math.Inf(-1))
		for j := 0; j < n; j++ {
			if s := Dot(qh, K[j*A+lo:j*A+hi]) / scale; s > m {
				m = s
			}
		}
		var sum float32
		for j := 0; j < n; j++ {
			s := Dot(qh, K[j*A+lo:j*A+hi]) / scale
			e := exp32(s - m)
			sum += e
			AddScaled(oh, V[j*A+lo:j*A+hi], e)
		}
		Scale(oh, oh, 1/sum)
	}
}

// maxKeptScores is the most scores attendKept holds on the stack.
const maxKeptScores = 256

// attendKept is attendTwoPass with each head's scores computed once and
// kept (n <= maxKeptScores) instead of recomputed: the same operations on
// the same values, so the same bits.
func attendKept(out, q, K, V []float32, n, H, dh int, scale float32) {
	A := len(q)
	var sc [maxKeptScores]float32
	s := sc[:n]
	for h := 0; h < H; h++ {
		lo, hi := h*dh, h*dh+dh
		qh, oh := q[lo:hi], out[lo:hi]
		m := float32(math.Inf(-1))
		for j := range s {
			v := Dot(qh, K[j*A+lo:j*A+hi]) / scale
			s[j] = v
			if v > m {
				m = v
			}
		}
		var sum float32
		for j, v := range s {
			e := exp32(v - m)
			sum += e
			AddScaled(oh, V[j*A+lo:j*A+hi], e)
		}
		Scale(oh, oh, 1/sum)
	}
}

const (
	maxSIMDScores = 2048 // n*H, on the stack
	maxSIMDHeads  = 64
)

// attendLanes is the head width the attention kernels k work in: heads
// must be a multiple of it wide.
func attendLanes(k kernel) int {
	if k == kAttendAVX512 {
		return 16
	}
	return 8
}

// attendSIMD is Attend with the dot products and the weighted sum of values
// in the kernels k (kAttendAVX2: attendScoresAVX2 and attendAccumAVX2,
// heads a multiple of 8 wide; kAttendAVX512: the AVX-512 pair, a multiple
// of 16): the same formula, summed in a different order than the Go loops
// and with the vector exp (vexp) in the softmax (within TestAttend's bound
// of them; TestAttendKernelsTwin holds each level's bits).
func attendSIMD(k kernel, out, q, K, V []float32, n, H, dh int, scale float32) {
	A := len(q)
	var sb [maxSIMDScores]float32
	var inv [maxSIMDHeads]float32
	s := sb[:n*H]
	if k == kAttendAVX512 {
		attendScoresAVX512(&s[0], &q[0], &K[0], n, A, dh, scale)
	} else {
		attendScoresAVX2(&s[0], &q[0], &K[0], n, A, dh, scale)
	}
	// The softmax: each head's scores less their maximum, then one vector
	// exp over all the heads' (vexp, within 2 ulp of e^x; the scalar exp32
	// here took 40% of a decode step's pools), then each head's sum in key
	// order.
	for h := 0; h < H; h++ {
		sh := s[h*n : (h+1)*n]
		m := sh[0]
		for _, v := range sh[1:] {
			if v > m {
				m = v
			}
		}
		for j := range sh {
			sh[j] -= m
		}
	}
	vexp(s, s)
	for h := 0; h < H; h++ {
		var sum float32
		for _, e := range s[h*n : (h+1)*n] {
			sum += e
		}
		inv[h] = 1 / sum
	}
	if k == kAttendAVX512 {
		attendAccumAVX512(&out[0], &s[0], &V[0], n, A, dh)
	} else {
		attendAccumAVX2(&out[0], &s[0], &V[0], n, A, dh)
	}
	for h := 0; h < H; h++ {
		oh := out[h*dh : (h+1)*dh]
		Scale(oh, oh, inv[h])
	}
}
