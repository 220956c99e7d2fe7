package ops

import "fmt"

// ConvStep runs one token through the depthwise causal convolution of E
// channels with kernel width K (SPEC step 2, before the SiLU):
//
//	for e := 0; e < E; e++ {
//		c := b[e] // 0 when b is nil
//		for k := 0; k < K-1; k++ { c += w[e*K+k] * window[e*(K-1)+k] }
//		c += w[e*K+K-1] * x[e]
//		out[e] = c
//		// shift: window[e] = window[e][1:] + [x[e]]
//	}
//
// w is E x K (conv1d.weight E x 1 x K squeezed), b is E or nil (no conv
// bias), window is E x (K-1), oldest first, zeros at the sequence start;
// it is updated in place to hold the last K-1 inputs. out has E values and
// must not overlap the other arguments. K must be at least 1.
func ConvStep(out, window, x, w, b []float32, E, K int) {
	checkConv(out, window, x, w, b, E, K, 1)
	convStep(out, window, x, w, b, E, K)
}

// Conv runs T tokens through the convolution: x and out are T x E, window is
// the state before the first token and holds the state after the last one
// on return. It is exactly (bit for bit) T calls of ConvStep:
//
//	for t := 0; t < T; t++ {
//		ConvStep(out[t*E:(t+1)*E], window, x[t*E:(t+1)*E], w, b, E, K)
//	}
func Conv(out, window, x, w, b []float32, E, K, T int) {
	checkConv(out, window, x, w, b, E, K, T)
	convRange(out, window, x, w, b, E, K, T, 0, E)
}

func checkConv(out, window, x, w, b []float32, E, K, T int) {
	if E < 0 || K < 1 || T < 0 || len(out) != T*E || len(x) != T*E || len(window) != E*(K-1) ||
		len(w) != E*K || (b != nil && len(b) != E) {
		panic(fmt.Sprintf("ops: conv E=%d K=%d T=%d: out %d, window %d, x %d, w %d, b %d values",
			E, K, T, len(out), len(window), len(x), len(w), len(b)))
	}
}

func convStep(out, window, x, w, b []float32, E, K int) {
	convRange(out, window, x, w, b, E, K, 1, 0, E)
}

// convRange runs channels lo..hi-1 over T tokens (out and x are T x E):
// the channels are independent, so any split gives the same bits. It goes
// channel by channel, the channel's window in registers across the tokens
// (K = 4, Mamba's width, has its own loop); each output is summed in the
// plain loop's order. With K = 4 the vector kernels take whole groups of
// channels: convK4AVX2 eight at a time over 8 or more tokens, and at
// AVX-512 convStep16AVX512 sixteen at a time for a decode step's one token.
func convRange(out, window, x, w, b []float32, E, K, T, lo, hi int) {
	k1 := K - 1
	if K == 4 && cur().step16 && T == 1 && hi-lo >= 16 {
		n := (hi - lo) &^ 15
		var bp *float32
		if b != nil {
			bp = &b[lo]
		}
		convStep16AVX512(&out[lo], &window[lo*3], &x[lo], &w[lo*4], bp, n)
		lo += n
	}
	if K == 4 && cur().vec8 && T >= 8 {
		lo = convK4Blocks(out, window, x, w, b, E, T, lo, hi)
	}
	if K == 4 {
		for e := lo; e < hi; e++ {
			we := w[e*4 : e*4+4 : e*4+4]
			win := window[e*3 : e*3+3 : e*3+3]
			s0, s1, s2 := win[0], win[1], win[2]
			var c0 float32
			if b != nil {
				c0 = b[e]
			}
			for i := e; i < T*E; i += E {
				xv := x[i]
				c := c0
				// The conversions round each product, as the vector
				// kernels do: Go may otherwise fuse them into the adds.
				c += float32(we[0] * s0)
				c += float32(we[1] * s1)
				c += float32(we[2] * s2)
				c += float32(we[3] * xv)
				out[i] = c
				s0, s1, s2 = s1, s2, xv
			}
			win[0], win[1], win[2] = s0, s1, s2
		}
		return
	}
	for e := lo; e < hi; e++ {
		we := w[e*K : e*K+K]
		win := window[e*k1 : e*k1+k1]
		for i := e; i < T*E; i += E {
			var c float32
			if b != nil {
				c = b[e]
			}
			for k, v := range win {
				c += float32(we[k] * v)
			}
			xv := x[i]
			c += float32(we[k1] * xv)
			out[i] = c
			if k1 > 0 {
				for k := 0; k < k1-1; k++ {
					win[k] = win[k+1]
				}
				win[k1-1] = xv
			}
		}
	}
}

// ConvSiLU is Conv followed by SiLU on its output (the mixer's a' =
// silu(conv(a))), with the channels split across the pool.
func (p *Pool) ConvSiLU(out, window, x, w, b []float32, E, K, T int) {
	checkConv(out, window, x, w, b, E, K, T)
	parts := partsFor(E * K * T * ConvSiLUWork)
	if p == nil || p.threads == 1 || parts == 1 {
		convSiLURange(out, window, x, w, b, E, K, T, 0, E)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.kind, p.total = jobConv, E
	p.conv = convArgs{out, window, x, w, b, E, K, T}
	p.run(parts)
	p.conv = convArgs{}
}

// ConvSiLUChannels is ConvSiLU (the function's result, without a pool) on
// channels lo..hi-1 only: it writes out and updates window on those
// channels, which are exactly what the whole call gives there (channels
// are independent). It lets a caller split the channels its own way
// (MatVecThen).
func ConvSiLUChannels(out, window, x, w, b []float32, E, K, T, lo, hi int) {
	checkConv(out, window, x, w, b, E, K, T)
	if lo < 0 || hi > E || lo > hi {
		panic(fmt.Sprintf("ops: conv channels %d..%d of %d", lo, hi, E))
	}
	convSiLURange(out, window, x, w, b, E, K, T, lo, hi)
}

type convArgs struct {
	out, window, x, w, b []float32
	E, K, T              int
}

func convSiLURange(out, window, x, w, b []float32, E, K, T, lo, hi int) {
	convRange(out, window, x, w, b, E, K, T, lo, hi)
	for t := 0; t < T; t++ {
		o := out[t*E+lo : t*E+hi]
		SiLU(o, o)
	}
}

// convK4Blocks runs the channels lo.. in blocks of up to 64 (whole groups
// of 8) through convK4AVX2, the weights and window made planar on the
// stack, and returns the first channel it left (fewer than 8 remain).
func convK4Blocks(out, window, x, w, b []float32, E, T, lo, hi int) int {
	var pw [8][64]float32 // w0..w3, b, and the window s0..s2
	for lo+8 <= hi {
		n := min(64, (hi-lo)&^7)
		for i := range n {
			e := lo + i
			pw[0][i], pw[1][i], pw[2][i], pw[3][i] = w[e*4], w[e*4+1], w[e*4+2], w[e*4+3]
			pw[4][i] = 0
			if b != nil {
				pw[4][i] = b[e]
			}
			pw[5][i], pw[6][i], pw[7][i] = window[e*3], window[e*3+1], window[e*3+2]
		}
		_ = x[(T-1)*E+lo+n-1]
		_ = out[(T-1)*E+lo+n-1]
		convK4AVX2(&out[lo], &x[lo], &pw[0][0], &pw[1][0], &pw[2][0], &pw[3][0], &pw[4][0], &pw[5][0], &pw[6][0], &pw[7][0], E, T, n)
		for i := range n {
			e := lo + i
			window[e*3], window[e*3+1], window[e*3+2] = pw[5][i], pw[6][i], pw[7][i]
		}
		lo += n
	}
	return lo
}
