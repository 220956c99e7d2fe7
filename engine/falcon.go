package engine

import "github.com/memmamba/memmamba/ops"

// Falcon-Mamba's mixer (arch.Config.DtBCRMS): x_proj's output row [delta;
// B; C] has each of its three parts put through an RMSNorm without weight
// (eps mixer_rms_eps) before dt_proj reads delta and the scan reads B and
// C. normDBC is the one place that does it, for the chunked path
// (nativeDense.SSMIn) and the fused step (nativeDense.ssmStep) alike, so
// prefill and steps, batched and alone, give the same bits.

// normDBC normalises the delta, B and C parts of T rows of dbc (each R+2N
// wide) in place, when the model's mixer has the norms; ones is at least
// max(R, N) long and all ones (RMSNorm's weight: v*r*1 is v*r exactly).
func normDBC(dbc []float32, T, R, N int, eps float32, ones []float32) {
	W := R + 2*N
	for t := range T {
		row := dbc[t*W : (t+1)*W]
		ops.RMSNorm(row[:R], row[:R], ones[:R], eps)
		ops.RMSNorm(row[R:R+N], row[R:R+N], ones[:N], eps)
		ops.RMSNorm(row[R+N:], row[R+N:], ones[:N], eps)
	}
}

// onesOf returns *p grown to at least n values, every one of them 1.
func onesOf(p *[]float32, n int) []float32 {
	if len(*p) < n {
		*p = make([]float32, n)
		for i := range *p {
			(*p)[i] = 1
		}
	}
	return (*p)[:n]
}

// mixerNorms applies normDBC to T rows of dbc for a Falcon-Mamba model and
// does nothing for the others.
func (n *nativeDense) mixerNorms(dbc []float32, T int) {
	c := n.m.Config
	if !c.DtBCRMS {
		return
	}
	R, N := c.TimeStepRank, c.StateSize
	normDBC(dbc, T, R, N, c.MixerEps(), onesOf(&n.ones, max(R, N)))
}
