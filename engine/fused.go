package engine

import "github.com/memmamba/memmamba/ops"

// stepFuser is implemented by a backend that fuses a one-token step's conv
// and scan into the products that feed them (nativeDense): each thread
// runs the conv on the channels of in_proj it just computed, and the
// softplus and the scan on the channels of dt_proj it just computed, so
// the step saves the conv's pass on the caller alone and the scan's
// hand-off. The results are those of the separate calls, bit for bit
// (every channel goes through the same kernels, and channels are
// independent).
type stepFuser interface {
	// mixerInStep: xz (2E) = W_in RMSNorm(x; norm_l) (+ b_in), then
	// cv = silu(conv(xz[:E])) with the conv window updated.
	mixerInStep(l int, xz, x, cv, window []float32)
	// ssmStep: dbc = W_x cv (delta, B and C normalised for Falcon-Mamba,
	// as in SSMIn); dt = softplus(W_dt delta + b_dt); y = the scan of cv
	// gated by z (h updated).
	ssmStep(l int, dbc, dt, y, cv, z, h []float32)
}

// fusedStep holds the arguments of the epilogues that mixerInStep and
// ssmStep hand to ops.Pool.MatVecThen, and the epilogues as method values
// made once (a method value made per call would allocate).
type fusedStep struct {
	w                  *mixerWeights
	E, N, K            int
	xz, cv, window     []float32 // cv: the conv's output, the scan's input
	dt, y, z, h, B, C  []float32
	convThen, scanThen func(lo, hi int)
}

func (f *fusedStep) init() {
	if f.convThen == nil {
		f.convThen, f.scanThen = f.conv, f.scan
	}
}

// conv adds b_in to rows lo..hi-1 of xz, then runs the conv and SiLU on
// the channels among them (rows below E are a; the rest are z).
func (f *fusedStep) conv(lo, hi int) {
	if b := f.w.inBias; b != nil {
		ops.Add(f.xz[lo:hi], f.xz[lo:hi], b[lo:hi])
	}
	if hi = min(hi, f.E); lo < hi {
		ops.ConvSiLUChannels(f.cv, f.window, f.xz[:f.E], f.w.convW, f.w.convB, f.E, f.K, 1, lo, hi)
	}
}

// scan finishes dt = softplus(W_dt delta + b_dt) on channels lo..hi-1 and
// runs them through the scan.
func (f *fusedStep) scan(lo, hi int) {
	dt := f.dt[lo:hi]
	ops.Add(dt, dt, f.w.dtBias[lo:hi])
	ops.Softplus(dt, dt)
	ops.ScanChannels(f.y, f.h, f.dt, f.w.A, f.B, f.C, f.cv, f.w.D, f.z, f.E, f.N, 1, lo, hi)
}

func (n *nativeDense) mixerInStep(l int, xz, x, cv, window []float32) {
	m, c := n.m, n.m.Config
	lw := &m.layers[l]
	u := n.sc.buf(&n.u, c.HiddenSize)
	ops.RMSNorm(u, x, lw.norm, n.eps())
	f := &n.fused
	f.init()
	f.w, f.E, f.K = &lw.mixer, c.Intermediate, c.ConvKernel
	f.xz, f.cv, f.window = xz, cv, window
	// The conv's cost in multiply-adds, so the product still splits.
	m.pool.MatVecThen(xz, lw.mixer.inProj, u, f.convThen, c.Intermediate*c.ConvKernel*ops.ConvSiLUWork)
	f.xz, f.cv, f.window = nil, nil, nil
}

func (n *nativeDense) ssmStep(l int, dbc, dt, y, cv, z, h []float32) {
	m, c := n.m, n.m.Config
	E, N, R := c.Intermediate, c.StateSize, c.TimeStepRank
	w := &m.layers[l].mixer
	m.pool.MatVec(dbc, w.xProj, cv)
	n.mixerNorms(dbc, 1)
	f := &n.fused
	f.init()
	f.w, f.E, f.N = w, E, N
	f.cv, f.dt, f.y, f.z, f.h = cv, dt, y, z, h
	f.B, f.C = dbc[R:R+N], dbc[R+N:R+2*N]
	m.pool.MatVecThen(dt, w.dtProj, dbc[:R], f.scanThen, E*N*ops.ScanWork)
	f.cv, f.dt, f.y, f.z, f.h, f.B, f.C = nil, nil, nil, nil, nil, nil, nil
}
