package ops

import "fmt"

// ScanStep advances the selective-scan state by one token (SPEC step 2) for
// E channels and N state dimensions, and writes the output y (E values):
//
//	for e := 0; e < E; e++ {
//		var s float32
//		for n := 0; n < N; n++ {
//			h[e*N+n] = exp(dt[e]*A[e*N+n])*h[e*N+n] + dt[e]*B[n]*a[e]
//			s += h[e*N+n] * C[n]
//		}
//		y[e] = s + D[e]*a[e]
//		if z != nil { y[e] *= silu(z[e]) }
//	}
//
// h is E x N (updated in place), dt, a, D and z are E (z may be nil: no
// gate), A is E x N and already -exp(A_log), B and C are N. exp is computed
// in float64 and rounded to float32. y must not overlap the inputs.
func ScanStep(y, h, dt, A, B, C, a, D, z []float32) {
	E, N := len(dt), len(B)
	checkScan(y, h, dt, A, B, C, a, D, z, E, N, 1)
	scanRange(y, h, dt, A, B, C, a, D, z, E, N, 1, 0, E)
}

// Scan runs T tokens through the selective scan: dt, a, z (or nil) and y are
// T x E, B and C are T x N; h holds the state before the first token and
// after the last on return. It is exactly (bit for bit) T calls of
// ScanStep with the rows of each argument:
//
//	for t := 0; t < T; t++ {
//		ScanStep(y[t*E:(t+1)*E], h, dt[t*E:(t+1)*E], A, B[t*N:(t+1)*N],
//			C[t*N:(t+1)*N], a[t*E:(t+1)*E], D, z[t*E:(t+1)*E])
//	}
//
// It loops channel by channel, keeping a channel's state row in cache across
// the tokens, which is valid because channels are independent.
func Scan(y, h, dt, A, B, C, a, D, z []float32, E, N, T int) {
	checkScan(y, h, dt, A, B, C, a, D, z, E, N, T)
	scanRange(y, h, dt, A, B, C, a, D, z, E, N, T, 0, E)
}

// Scan is Scan (the function) with the channels split across the pool.
func (p *Pool) Scan(y, h, dt, A, B, C, a, D, z []float32, E, N, T int) {
	checkScan(y, h, dt, A, B, C, a, D, z, E, N, T)
	parts := partsFor(E * N * T * ScanWork)
	if p == nil || p.threads == 1 || parts == 1 {
		scanRange(y, h, dt, A, B, C, a, D, z, E, N, T, 0, E)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.kind, p.total = jobScan, E
	p.scan = scanArgs{y, h, dt, A, B, C, a, D, z, E, N, T}
	p.run(parts)
	p.scan = scanArgs{}
}

// ScanChannels is Scan on channels lo..hi-1 only: it writes y and updates
// h on those channels, exactly as the whole call does there (channels are
// independent). It lets a caller split the channels its own way
// (MatVecThen).
func ScanChannels(y, h, dt, A, B, C, a, D, z []float32, E, N, T, lo, hi int) {
	checkScan(y, h, dt, A, B, C, a, D, z, E, N, T)
	if lo < 0 || hi > E || lo > hi {
		panic(fmt.Sprintf("ops: scan channels %d..%d of %d", lo, hi, E))
	}
	scanRange(y, h, dt, A, B, C, a, D, z, E, N, T, lo, hi)
}

type scanArgs struct {
	y, h, dt, A, B, C, a, D, z []float32
	E, N, T                    int
}

func checkScan(y, h, dt, A, B, C, a, D, z []float32, E, N, T int) {
	if E < 0 || N < 0 || T < 0 || len(y) != T*E || len(h) != E*N || len(dt) != T*E || len(A) != E*N ||
		len(B) != T*N || len(C) != T*N || len(a) != T*E || len(D) != E || (z != nil && len(z) != T*E) {
		panic(fmt.Sprintf("ops: scan E=%d N=%d T=%d: y %d, h %d, dt %d, A %d, B %d, C %d, a %d, D %d, z %d values",
			E, N, T, len(y), len(h), len(dt), len(A), len(B), len(C), len(a), len(D), len(z)))
	}
}

// scanRange runs channels lo..hi-1 over all T tokens.
func scanRange(y, h, dt, A, B, C, a, D, z []float32, E, N, T, lo, hi int) {
	if cur().vec8 && N > 0 && N%8 == 0 && T > 0 {
		scanRangeSIMD(y, h, dt, A, B, C, a, D, z, E, N, T, lo, hi)
		return
	}
	for e := lo; e < hi; e++ {
		he := h[e*N : e*N+N]
		Ae := A[e*N : e*N+N]
		De := D[e]
		for t := 0; t < T; t++ {
			i := t*E + e
			v := scanCell(he, Ae, B[t*N:t*N+N], C[t*N:t*N+N], dt[i], a[i], De)
			if z != nil {
				v *= SiLUScalar(z[i])
			}
			y[i] = v
		}
	}
}

// scanCell updates one channel's state row h (N) for one token and returns
// its output before the gate.
func scanCell(h, A, B, C []float32, dt, a, D float32) float32 {
	n := len(h)
	A, B, C = A[:n], B[:n], C[:n]
	var s float32
	for j := range h {
		v := exp32(dt*A[j])*h[j] + dt*B[j]*a
		h[j] = v
		s += v * C[j]
	}
	return s + D*a
}
