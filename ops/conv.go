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
	for t := 0; t < T; t++ {
		convStep(out[t*E:(t+1)*E], window, x[t*E:(t+1)*E], w, b, E, K)
	}
}

func checkConv(out, window, x, w, b []float32, E, K, T int) {
	if E < 0 || K < 1 || T < 0 || len(out) != T*E || len(x) != T*E || len(window) != E*(K-1) ||
		len(w) != E*K || (b != nil && len(b) != E) {
		panic(fmt.Sprintf("ops: conv E=%d K=%d T=%d: out %d, window %d, x %d, w %d, b %d values",
			E, K, T, len(out), len(window), len(x), len(w), len(b)))
	}
}

func convStep(out, window, x, w, b []float32, E, K int) {
	k1 := K - 1
	out, x = out[:E], x[:E]
	for e := range out {
		var c float32
		if b != nil {
			c = b[e]
		}
		we := w[e*K : e*K+K]
		win := window[e*k1 : e*k1+k1]
		for k, v := range win {
			c += we[k] * v
		}
		xv := x[e]
		c += we[k1] * xv
		out[e] = c
		if k1 > 0 {
			for k := 0; k < k1-1; k++ {
				win[k] = win[k+1]
			}
			win[k1-1] = xv
		}
	}
}
