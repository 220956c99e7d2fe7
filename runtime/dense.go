package runtime

import "github.com/memmamba/memmamba/ops"

// dense runs a session's dense blocks over a chunk of T tokens: the norms
// and projections of the mixer, the Note Block's scorers, projections and
// gates, and the LM head. The conv, the selective scan and the pool
// bookkeeping stay in Go (forward, noteBlock). Each session has its own
// dense (an implementation may keep per-session buffers), made by the
// model's backend: native Go (nativeDense) or ONNX Runtime (ortDense).
//
// The calls come in the order forward makes them, layer by layer, which
// lets a backend fuse the end of layer l with the start of layer l+1.
type dense interface {
	// mixerIn: xz (T x 2E) = W_in RMSNorm(x; norm_l) (+ b_in).
	mixerIn(l int, xz, x []float32, T int)
	// ssmIn: dbc (T x (R+2N)) = W_x a1; dt (T x E) = softplus(W_dt
	// delta + b_dt), delta being dbc's first R columns.
	ssmIn(l int, dbc, dt, a1 []float32, T int)
	// mixerOut: mix (T x d) = W_out y (+ b_out); x += mix (x becomes r).
	// prevM is the previous token's mixer output (the Note Block's
	// trigger input, for a backend that fuses noteIn here).
	mixerOut(l int, mix, x, y, prevM []float32, T int)
	// noteIn: the Note Block's dense inputs (see noteDense) from r, the
	// mixer output mix and the previous token's mixer output prevM.
	noteIn(l int, nd *noteDense, r, mix, prevM []float32, T int)
	// noteOut: r += sTok * Attend_tok's gated output of oTok, plus sLay *
	// Attend_lay's of oLay (sLay nil: no cross-layer attention). oTok and
	// oLay are the attention results before o_proj (T x A).
	noteOut(l int, r, oTok, oLay, sTok, sLay []float32, T int)
	// logits: out (n x V) = W_lm RMSNorm(x; norm_f) for n rows of x.
	logits(out, x []float32, n int)
}

// noteDense holds the Note Block's dense results for a chunk: importance
// I_t and trigger G_t (T each), the unscaled summaries W_s r (T x S) and the
// queries of token and layer attention (T x A; qLay nil without
// cross-layer attention).
type noteDense struct {
	imp, gate, summ, qTok, qLay []float32
}

// nativeDense runs the dense blocks with the ops kernels on the mapped
// weights.
type nativeDense struct {
	m  *Model
	sc *scratch
	// work buffers
	u, h1, prev, rn, dTok, dLay, cat, g []float32
	gAtt, gR, gScale, gOut              []float32
	rows                                []int32
}

func (m *Model) newDense(s *Session) dense {
	if m.ort != nil {
		return m.ort.newDense(s)
	}
	return &nativeDense{m: m, sc: &s.s}
}

func (n *nativeDense) eps() float32 { return float32(n.m.Config.LayerNormEps) }

func (n *nativeDense) mixerIn(l int, xz, x []float32, T int) {
	m, d, E := n.m, n.m.Config.HiddenSize, n.m.Config.Intermediate
	lw := &m.layers[l]
	u := n.sc.buf(&n.u, T*d)
	for t := range T {
		ops.RMSNorm(u[t*d:(t+1)*d], x[t*d:(t+1)*d], lw.norm, n.eps())
	}
	m.pool.MatMul(xz, lw.mixer.inProj, u, T)
	if b := lw.mixer.inBias; b != nil {
		for t := range T {
			row := xz[t*2*E : (t+1)*2*E]
			ops.Add(row, row, b)
		}
	}
}

func (n *nativeDense) ssmIn(l int, dbc, dt, a1 []float32, T int) {
	m, c := n.m, n.m.Config
	E, N, R := c.Intermediate, c.StateSize, c.TimeStepRank
	w := &m.layers[l].mixer
	m.pool.MatMul(dbc, w.xProj, a1, T)
	delta := n.sc.buf(&n.rn, T*R)
	for t := range T {
		copy(delta[t*R:(t+1)*R], dbc[t*(R+2*N):t*(R+2*N)+R])
	}
	m.pool.MatMul(dt, w.dtProj, delta, T)
	for t := range T {
		row := dt[t*E : (t+1)*E]
		ops.Add(row, row, w.dtBias)
		ops.Softplus(row, row)
	}
}

func (n *nativeDense) mixerOut(l int, mix, x, y, _ []float32, T int) {
	m, d := n.m, n.m.Config.HiddenSize
	w := &m.layers[l].mixer
	m.pool.MatMul(mix, w.outProj, y, T)
	if w.outBias != nil {
		for t := range T {
			row := mix[t*d : (t+1)*d]
			ops.Add(row, row, w.outBias)
		}
	}
	ops.Add(x, x, mix)
}

func (n *nativeDense) noteIn(l int, nd *noteDense, r, mix, prevM []float32, T int) {
	m, c := n.m, n.m.Config
	d, Hs := c.HiddenSize, c.Memory.ScoreDim
	nw := m.layers[l].note
	// 1. I_t = sigma(w2 . relu(W1 r + b1) + b2)
	h1 := n.sc.buf(&n.h1, T*Hs)
	m.pool.MatMul(h1, nw.fc1, r, T)
	for t := range T {
		row := h1[t*Hs : (t+1)*Hs]
		ops.Add(row, row, nw.fc1B)
		ops.ReLU(row, row)
	}
	m.pool.MatMul(nd.imp, nw.fc2, h1, T)
	for t := range nd.imp {
		nd.imp[t] = ops.SigmoidScalar(nd.imp[t] + nw.fc2B)
	}
	// 2. G_t = sigma(w_g . m_{t-1} + b_g)
	prev := n.sc.buf(&n.prev, T*d)
	copy(prev, prevM)
	copy(prev[d:], mix[:(T-1)*d])
	m.pool.MatMul(nd.gate, nw.trigger, prev, T)
	for t := range nd.gate {
		nd.gate[t] = ops.SigmoidScalar(nd.gate[t] + nw.triggerB)
	}
	// W_s r, and q = W_q RMSNorm(r; w_qn) for both attentions.
	m.pool.MatMul(nd.summ, nw.summary, r, T)
	n.query(nd.qTok, r, &nw.tok, T)
	if nw.lay != nil {
		n.query(nd.qLay, r, nw.lay, T)
	}
}

func (n *nativeDense) query(q, r []float32, w *attendWeights, T int) {
	d := n.m.Config.HiddenSize
	rn := n.sc.buf(&n.rn, T*d)
	for t := range T {
		ops.RMSNorm(rn[t*d:(t+1)*d], r[t*d:(t+1)*d], w.norm, n.eps())
	}
	n.m.pool.MatMul(q, w.q, rn, T)
}

func (n *nativeDense) noteOut(l int, r, oTok, oLay, sTok, sLay []float32, T int) {
	nw, d := n.m.layers[l].note, n.m.Config.HiddenSize
	dTok := n.sc.buf(&n.dTok, T*d)
	n.gated(dTok, r, oTok, &nw.tok, sTok, T)
	var dLay []float32
	if sLay != nil {
		dLay = n.sc.buf(&n.dLay, T*d)
		n.gated(dLay, r, oLay, nw.lay, sLay, T)
	}
	ops.Add(r, r, dTok)
	if dLay != nil {
		ops.Add(r, r, dLay)
	}
}

// gated finishes Attend for T rows: o = W_o att, g = sigma(W_gate [r; o] +
// b_gate), dst = scale * g * o, and 0 on the rows where scale is 0. Only
// the rows with a non-zero scale are computed (the trigger is off on the
// others): they are gathered into a compact block when some are off, which
// gives the same bits, as a product's row does not depend on the other
// rows.
func (n *nativeDense) gated(dst, r, att []float32, w *attendWeights, scale []float32, T int) {
	d, A := n.m.Config.HiddenSize, n.m.Config.Memory.AttnDim
	rows := n.rows[:0]
	for t := range T {
		if scale[t] != 0 {
			rows = append(rows, int32(t))
		}
	}
	n.rows = rows
	if len(rows) < T {
		clear(dst[:T*d])
		if len(rows) == 0 {
			return
		}
		// Gather the active rows of att and r to the front of their own
		// buffers, compute them, then scatter the results.
		ga := n.sc.buf(&n.gAtt, len(rows)*A)
		gr := n.sc.buf(&n.gR, len(rows)*d)
		gs := n.sc.buf(&n.gScale, len(rows))
		for i, t := range rows {
			copy(ga[i*A:(i+1)*A], att[int(t)*A:(int(t)+1)*A])
			copy(gr[i*d:(i+1)*d], r[int(t)*d:(int(t)+1)*d])
			gs[i] = scale[t]
		}
		out := n.sc.buf(&n.gOut, len(rows)*d)
		n.gatedRows(out, gr, ga, w, gs, len(rows))
		for i, t := range rows {
			copy(dst[int(t)*d:(int(t)+1)*d], out[i*d:(i+1)*d])
		}
		return
	}
	n.gatedRows(dst, r, att, w, scale, T)
}

// gatedRows is gated on T rows that all have a non-zero scale.
func (n *nativeDense) gatedRows(dst, r, att []float32, w *attendWeights, scale []float32, T int) {
	m, d := n.m, n.m.Config.HiddenSize
	if w.oM.Rows != 0 {
		// The fused form (attendWeights.fuseGate): [o; M att] in one
		// product, then g = W_gate[:, :d] r + M att + b_gate.
		om := n.sc.buf(&n.cat, T*2*d)
		m.pool.MatMul(om, w.oM, att, T)
		g := n.sc.buf(&n.g, T*d)
		m.pool.MatMul(g, w.gateR, r, T)
		for t := range T {
			o, mo := om[t*2*d:t*2*d+d], om[t*2*d+d:(t+1)*2*d]
			gr := g[t*d : (t+1)*d]
			ops.Add(gr, gr, mo)
			ops.Add(gr, gr, w.gateB)
			ops.Sigmoid(gr, gr)
			out := dst[t*d : (t+1)*d]
			ops.Mul(out, o, gr)
			if scale[t] != 1 {
				ops.Scale(out, out, scale[t])
			}
		}
		return
	}
	m.pool.MatMul(dst, w.o, att, T)
	cat := n.sc.buf(&n.cat, T*2*d)
	for t := range T {
		copy(cat[t*2*d:], r[t*d:(t+1)*d])
		copy(cat[t*2*d+d:], dst[t*d:(t+1)*d])
	}
	g := n.sc.buf(&n.g, T*d)
	m.pool.MatMul(g, w.gate, cat, T)
	for t := range T {
		o := dst[t*d : (t+1)*d]
		gr := g[t*d : (t+1)*d]
		ops.Add(gr, gr, w.gateB)
		ops.Sigmoid(gr, gr)
		ops.Mul(o, o, gr)
		if scale[t] != 1 {
			ops.Scale(o, o, scale[t])
		}
	}
}

func (n *nativeDense) logits(out, x []float32, rows int) {
	m, d := n.m, n.m.Config.HiddenSize
	xn := n.sc.buf(&n.u, rows*d)
	for t := range rows {
		ops.RMSNorm(xn[t*d:(t+1)*d], x[t*d:(t+1)*d], m.normF, n.eps())
	}
	m.pool.MatMul(out, m.lmHead, xn, rows)
}
