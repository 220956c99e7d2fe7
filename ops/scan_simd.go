package ops

// Vector exp and the SIMD selective scan.
//
// The scan is vectorised across the N state dimensions of a channel (N = 16
// in Mamba: two 8-lane vectors), channel by channel, each channel's state
// row staying in L1 across the tokens; the channels split across the Pool.
// Scan and ScanStep run the same kernel per (channel, token), so a sequence
// equals its steps bit for bit, as on the Go path.
//
// vexp, the kernel's exp (EXP in scan_amd64.s), computes in float32 with
// FMA: x clamped to [-104, 89] (NaN passes through), k = round(x*log2 e),
// r = x - k*ln2 (ln2 in two parts, |r| <= ln2/2), e^r by its degree-7
// Taylor polynomial in Horner form (truncation below 5.2e-9 relative), then
// times 2^(k>>1) and 2^(k-k>>1) so that results from subnormal to overflow
// come out of IEEE multiplication. Error bound, checked by TestVexp on a
// sweep of float32 inputs: at most 2 ulp where e^x is a normal float32
// (-87.33 <= x <= 88.72), at most 1 subnormal ulp (2^-149) below that;
// +Inf above 88.72, 0 below about -103.97, NaN for NaN.

// vexp sets dst[i] = e^src[i] with the vector kernel for the first
// len(src) &^ 7 values, and with exp32 for the rest. It needs a level
// with vec8; attendSIMD's softmax takes it, and the tests check the
// kernel's exp with it.
func vexp(dst, src []float32) {
	n := len(src) &^ 7
	if n > 0 {
		expAVX2(&dst[0], &src[0], n)
	}
	for i := n; i < len(src); i++ {
		dst[i] = exp32(src[i])
	}
}

// scanRangeSIMD runs channels lo..hi-1 over all T tokens with the AVX2
// kernel, or the AVX-512 one (16 lanes, the channel loop inside the kernel)
// when the level has it (scan16) and N is a multiple of 16. With N = 16
// (Mamba's) the channels go sixteen at a time at AVX-512 (scan16x16AVX512)
// and eight at a time at AVX2 (scan8x16AVX2), for the same bits. The
// caller checks that the level has vec8 and N is a positive multiple of 8.
// The gate is applied afterwards, token by token, on the range's outputs.
func scanRangeSIMD(y, h, dt, A, B, C, a, D, z []float32, E, N, T, lo, hi int) {
	if cur().scan16 && N%16 == 0 {
		e := lo
		if cur().step16 && N == 16 && hi-lo >= 16 {
			n := (hi - lo) &^ 15
			scan16x16AVX512(&h[lo*N], &A[lo*N], &B[0], &C[0], &dt[lo], &a[lo], &y[lo], &D[lo], T, E, n)
			e += n
		}
		if hi > e {
			scanChansAVX512(&h[e*N], &A[e*N], &B[0], &C[0], &dt[e], &a[e], &y[e], &D[e], N, T, E, hi-e)
		}
	} else {
		e := lo
		if N == 16 && hi-lo >= 8 {
			n := (hi - lo) &^ 7
			scan8x16AVX2(&h[lo*N], &A[lo*N], &B[0], &C[0], &dt[lo], &a[lo], &y[lo], &D[lo], T, E, n)
			e += n
		}
		if N%16 == 0 {
			for ; e+1 < hi; e += 2 {
				scanChan2AVX2(&h[e*N], &A[e*N], &B[0], &C[0], &dt[e], &a[e], &y[e], &D[e], N, T, E)
			}
		}
		for ; e < hi; e++ {
			scanChanAVX2(&h[e*N], &A[e*N], &B[0], &C[0], &dt[e], &a[e], &y[e], N, T, E, D[e])
		}
	}
	if z != nil {
		for t := 0; t < T; t++ {
			mulSiLUVec(y[t*E+lo:t*E+hi], z[t*E+lo:t*E+hi])
		}
	}
}

// mulSiLUVec sets y[i] *= z[i] / (1 + vexp(-z[i])) with mulSiLUAVX2.
// Every value goes through the kernel (the last partial group padded), so
// y[i] does not depend on where the slice starts: the Pool may split the
// channels anywhere.
func mulSiLUVec(y, z []float32) {
	n := len(y) &^ 7
	if n > 0 {
		mulSiLUAVX2(&y[0], &z[0], n)
	}
	if n < len(y) {
		var a, b [8]float32
		copy(a[:], y[n:])
		copy(b[:], z[n:len(y)])
		mulSiLUAVX2(&a[0], &b[0], 8)
		copy(y[n:], a[:len(y)-n])
	}
}

// softplusVec sets dst[i] = softplus(x[i]) with the vector kernel
// (softplusAVX2). Every value goes through the kernel (the last partial
// group padded), so dst[i] does not depend on the slice's length or start.
func softplusVec(dst, x []float32) {
	n := len(x) &^ 7
	if n > 0 {
		softplusAVX2(&dst[0], &x[0], n)
	}
	if n < len(x) {
		var in, out [8]float32
		copy(in[:], x[n:])
		softplusAVX2(&out[0], &in[0], 8)
		copy(dst[n:], out[:len(x)-n])
	}
}

// siluVec sets dst[i] = x[i] / (1 + vexp(-x[i])) (siluAVX2), every
// value through the kernel as in mulSiLUVec.
func siluVec(dst, x []float32) { padded8(false, dst, x) }

// sigmoidVec sets dst[i] = 1 / (1 + vexp(-x[i])) (sigmoidAVX2).
func sigmoidVec(dst, x []float32) { padded8(true, dst, x) }

// padded8 runs siluAVX2 (or sigmoidAVX2) over x, the last partial group
// through a zero-padded copy. The kernels are called directly, not as a
// function value: the padded arrays would escape through an indirect call,
// two allocations a call.
func padded8(sigmoid bool, dst, x []float32) {
	n := len(x) &^ 7
	if n > 0 {
		if sigmoid {
			sigmoidAVX2(&dst[0], &x[0], n)
		} else {
			siluAVX2(&dst[0], &x[0], n)
		}
	}
	if n < len(x) {
		var in, out [8]float32
		copy(in[:], x[n:])
		if sigmoid {
			sigmoidAVX2(&out[0], &in[0], 8)
		} else {
			siluAVX2(&out[0], &in[0], 8)
		}
		copy(dst[n:], out[:len(x)-n])
	}
}
