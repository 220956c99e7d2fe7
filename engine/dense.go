package engine

import (
	"slices"

	"github.com/memmamba/memmamba/ops"
)

// DenseBlocks runs a session's dense blocks over a chunk of T tokens: the
// norms and projections of the mixer, the Note Block's scorers, projections
// and gates, and the LM head. The embedding lookup, the conv, the selective
// scan and the pool bookkeeping stay in the engine (pass.forward,
// pass.noteBlock). Each pass has its own DenseBlocks (an implementation may
// keep buffers of its own), made by the model's backend: native Go
// (nativeDense) or one registered by name (RegisterBackend; the ONNX
// Runtime one is engine/ortbackend). Matrices are row-major, one row per
// token; every slice holds exactly the chunk's rows.
//
// The call order is part of the contract, so that a backend may fuse the
// end of one call with the start of the next (the ONNX Runtime backend
// computes layer l+1's xz in layer l's last graph, and the Note Block's
// inputs in MixerOut): for each chunk, for l = 0, ..., L-1 in order,
//
//	MixerIn(l), SSMIn(l), MixerOut(l), and for MemMamba NoteIn(l), NoteOut(l)
//
// all with the same T, and after the last layer any number of Logits calls
// on rows of the result. A backend may hold results computed early until
// the call that asks for them, and nothing else comes between. Only the
// native backend is given chunks whose rows belong to several sequences (a
// Batch's), and only it replaces a one-token chunk's MixerIn and SSMIn by
// its fused step (stepFuser).
type DenseBlocks interface {
	// MixerIn: xz (T x 2E) = W_in RMSNorm(x; norm_l) (+ b_in).
	MixerIn(l int, xz, x []float32, T int)
	// SSMIn: dbc (T x (R+2N)) = W_x a1; dt (T x E) = softplus(W_dt
	// delta + b_dt), delta being dbc's first R columns. For Falcon-Mamba
	// (Config.DtBCRMS) delta, B and C of dbc are RMS-normalised (no
	// weight, eps mixer_rms_eps) before dt_proj, and dbc holds them so.
	SSMIn(l int, dbc, dt, a1 []float32, T int)
	// MixerOut: mix (T x d) = W_out y (+ b_out); x += mix (x becomes r).
	// prevM is the mixer output before the chunk's first token (the Note
	// Block's trigger input, for a backend that fuses NoteIn here and
	// takes one sequence a chunk).
	MixerOut(l int, mix, x, y, prevM []float32, T int)
	// NoteIn: the Note Block's dense inputs (see NoteDense) from r and
	// prev (T x d), each row's m_{t-1}.
	NoteIn(l int, nd *NoteDense, r, prev []float32, T int)
	// NoteOut: r += sTok * Attend_tok's gated output of oTok, plus sLay *
	// Attend_lay's of oLay (sLay nil: no cross-layer attention). oTok and
	// oLay are the attention results before o_proj (T x A).
	NoteOut(l int, r, oTok, oLay, sTok, sLay []float32, T int)
	// Logits: out (n x V) = W_lm RMSNorm(x; norm_f) for n rows of x.
	Logits(out, x []float32, n int)
}

// NoteDense holds the Note Block's dense results for a chunk, which NoteIn
// fills (the slices are the caller's, of the sizes given): importance I_t
// and trigger G_t (T each), the unscaled summaries W_s r (T x S) and the
// queries of token and layer attention (T x A; QLay nil without
// cross-layer attention).
type NoteDense struct {
	Imp, Gate, Summ, QTok, QLay []float32
}

// nativeDense runs the dense blocks with the ops kernels on the mapped
// weights.
type nativeDense struct {
	m  *Model
	sc *scratch
	// work buffers
	u, h1, rn, rnLay, dTok, dLay []float32
	ps                           []ops.Product
	gTok, gLay                   gatedWork
	fused                        fusedStep
	ones                         []float32 // Falcon-Mamba's norm weight (mixerNorms)
	rowPass                      rowPass
}

func (m *Model) newDense(sc *scratch) DenseBlocks {
	if m.backend != nil {
		return m.backend.NewDense()
	}
	return &nativeDense{m: m, sc: sc}
}

func (n *nativeDense) eps() float32 { return float32(n.m.Config.LayerNormEps) }

func (n *nativeDense) MixerIn(l int, xz, x []float32, T int) {
	m, d, E := n.m, n.m.Config.HiddenSize, n.m.Config.Intermediate
	lw := &m.layers[l]
	u := n.sc.buf(&n.u, T*d)
	n.norms(u, x, lw.norm, T)
	m.pool.MatMul(xz, lw.mixer.inProj, u, T)
	if b := lw.mixer.inBias; b != nil {
		for t := range T {
			row := xz[t*2*E : (t+1)*2*E]
			ops.Add(row, row, b)
		}
	}
}

func (n *nativeDense) SSMIn(l int, dbc, dt, a1 []float32, T int) {
	m, c := n.m, n.m.Config
	E, N, R := c.Intermediate, c.StateSize, c.TimeStepRank
	w := &m.layers[l].mixer
	m.pool.MatMul(dbc, w.xProj, a1, T)
	n.mixerNorms(dbc, T)
	delta := n.sc.buf(&n.rn, T*R)
	for t := range T {
		copy(delta[t*R:(t+1)*R], dbc[t*(R+2*N):t*(R+2*N)+R])
	}
	m.pool.MatMul(dt, w.dtProj, delta, T)
	n.softplusRows(dt[:T*E], w.dtBias, T)
}

func (n *nativeDense) MixerOut(l int, mix, x, y, _ []float32, T int) {
	m, d := n.m, n.m.Config.HiddenSize
	w := &m.layers[l].mixer
	m.pool.MatMul(mix, w.outProj, y, T)
	n.addRows(x[:T*d], mix[:T*d], w.outBias, T)
}

func (n *nativeDense) NoteIn(l int, nd *NoteDense, r, prev []float32, T int) {
	m, c := n.m, n.m.Config
	d, Hs := c.HiddenSize, c.Memory.ScoreDim
	nw := m.layers[l].note
	// The products that read r (or its norms) and m_{t-1} go in one
	// hand-off: W1 r, w_g m_{t-1}, W_s r and q = W_q RMSNorm(r; w_qn) for
	// both attentions.
	h1 := n.sc.buf(&n.h1, T*Hs)
	rnTok := n.sc.buf(&n.rn, T*d)
	n.norms(rnTok, r, nw.tok.norm, T)
	ps := append(n.ps[:0],
		ops.Product{Dst: h1, W: nw.fc1, X: r, N: T},
		ops.Product{Dst: nd.Gate, W: nw.trigger, X: prev, N: T},
		ops.Product{Dst: nd.Summ, W: nw.summary, X: r, N: T},
		ops.Product{Dst: nd.QTok, W: nw.tok.q, X: rnTok, N: T})
	if nw.lay != nil {
		rnLay := n.sc.buf(&n.rnLay, T*d)
		n.norms(rnLay, r, nw.lay.norm, T)
		ps = append(ps, ops.Product{Dst: nd.QLay, W: nw.lay.q, X: rnLay, N: T})
	}
	m.pool.MatMuls(ps)
	n.ps = ps
	// 1. I_t = sigma(w2 . relu(W1 r + b1) + b2)
	for t := range T {
		row := h1[t*Hs : (t+1)*Hs]
		ops.Add(row, row, nw.fc1B)
		ops.ReLU(row, row)
	}
	m.pool.MatMul(nd.Imp, nw.fc2, h1, T)
	for t := range nd.Imp {
		nd.Imp[t] = ops.SigmoidScalar(nd.Imp[t] + nw.fc2B)
	}
	// 2. G_t = sigma(w_g . m_{t-1} + b_g)
	for t := range nd.Gate {
		nd.Gate[t] = ops.SigmoidScalar(nd.Gate[t] + nw.triggerB)
	}
}

func (n *nativeDense) NoteOut(l int, r, oTok, oLay, sTok, sLay []float32, T int) {
	nw, d := n.m.layers[l].note, n.m.Config.HiddenSize
	dTok := n.sc.buf(&n.dTok, T*d)
	n.gTok.prepare(n, dTok, r, oTok, &nw.tok, sTok, T)
	ps := n.gTok.products(n.ps[:0])
	var dLay []float32
	if sLay != nil {
		dLay = n.sc.buf(&n.dLay, T*d)
		n.gLay.prepare(n, dLay, r, oLay, nw.lay, sLay, T)
		ps = n.gLay.products(ps)
	}
	n.m.pool.MatMuls(ps)
	n.ps = ps
	n.gTok.finish(n)
	n.addRows(r[:T*d], dTok, nil, T)
	if dLay != nil {
		n.gLay.finish(n)
		n.addRows(r[:T*d], dLay, nil, T)
	}
}

// notePooler is a DenseBlocks that runs the engine's pool work of a Note
// Block (steps 3-5 of SPEC.md, per sequence) in one hand-off with the
// products of NoteOut that do not depend on it, so that those stream
// their weights while the pools run instead of after them (the native
// backend: 7% of a one-sequence prefill ran on one thread with the
// others idle). Called between NoteIn(l) and NoteOut(l), in place of the
// engine's own loop over the sequences.
type notePooler interface {
	// notePools calls run over the pass's seqs sequences, as
	// Pool.For(seqs, 1, run), beside the products that read only r (T x
	// d); gate holds G_t of each row.
	notePools(l int, r, gate []float32, T, seqs int, run func(lo, hi int))
}

// notePools runs the pools beside the fused gates' W_gate[:, :d] r over
// the rows that may retrieve: for the token attention those with G_t >
// tau2 (step 3 retrieves only there), for the cross-layer one every row.
// NoteOut takes those rows' results (gatedWork.early) instead of
// computing them; the others it computes itself.
func (n *nativeDense) notePools(l int, r, gate []float32, T, seqs int, run func(lo, hi int)) {
	nw, tau := n.m.layers[l].note, n.m.Config.Memory.TauRetrieve
	ps := n.gTok.early(n, r, &nw.tok, T, func(t int) bool { return float64(gate[t]) > tau }, n.ps[:0])
	if nw.lay != nil {
		ps = n.gLay.early(n, r, nw.lay, T, nil, ps)
	}
	n.m.pool.MatMulsFor(ps, seqs, 1, run)
	n.ps = ps
}

// gatedWork finishes Attend for a chunk's rows: o = W_o att, g =
// sigma(W_gate [r; o] + b_gate), dst = scale * g * o, and 0 on the rows
// where scale is 0. Only the rows with a non-zero scale are computed (the
// trigger is off on the others): they are gathered into a compact block
// when some are off, which gives the same bits, as a product's row does
// not depend on the other rows. With the fused gate (attendWeights.
// fuseGate) its three products, W_o att, M att and W_gate[:, :d] r, are
// handed to the caller (products) to run together with the other
// attention's; without it, finish runs W_o and then the gate itself.
type gatedWork struct {
	w                *attendWeights
	dst, r, att, scl []float32
	rows             []int32
	n                int  // rows to compute
	compact          bool // r, att, scl are gathered copies; scatter at the end
	o, mo, g         []float32
	out              []float32        // finish's result rows (dst, or a compact block)
	d                int              // hidden size, for gateRows
	gateFn           func(lo, hi int) // gateRows, bound once
	// W_gate[:, :d] r computed before the pools ran (early, for the next
	// prepare: hasPre), preAt[t] its row of pre for row t of the chunk, -1
	// where none, preRows the rows it computed; fromPre: prepare took the
	// rows from there.
	hasPre, fromPre bool
	preAt, preRows  []int32
	pre             []float32
	// buffers
	bAtt, bR, bScl, bO, bMo, bG, bOut, bCat, bPreR []float32
}

// early appends to ps the fused gate's W_gate[:, :d] r over the rows t of
// the chunk for which want(t) (every row for a nil want), computed into
// gw.pre before the pools run; prepare then takes those rows from there.
// Without the fused form it appends nothing.
func (gw *gatedWork) early(nd *nativeDense, r []float32, w *attendWeights, T int, want func(t int) bool, ps []ops.Product) []ops.Product {
	gw.hasPre = false
	if w.gateR.Rows == 0 || w.gateM.Rows == 0 {
		return ps
	}
	d := nd.m.Config.HiddenSize
	at, rows := gw.preAt[:0], gw.preRows[:0]
	for t := range T {
		if want == nil || want(t) {
			at = append(at, int32(len(rows)))
			rows = append(rows, int32(t))
		} else {
			at = append(at, -1)
		}
	}
	gw.preAt, gw.preRows = at, rows
	k := len(rows)
	if k == 0 {
		return ps
	}
	x := r[:T*d]
	if k < T {
		x = gatherRows(nd.sc.buf(&gw.bPreR, k*d), r, rows, d)
	}
	gw.pre = nd.sc.buf(&gw.pre, k*d)
	gw.hasPre = true
	return append(ps, ops.Product{Dst: gw.pre, W: w.gateR, X: x, N: k})
}

func (gw *gatedWork) prepare(nd *nativeDense, dst, r, att []float32, w *attendWeights, scale []float32, T int) {
	c := nd.m.Config
	d, A := c.HiddenSize, c.Memory.AttnDim
	sc := nd.sc
	gw.w, gw.dst = w, dst
	hasPre := gw.hasPre
	gw.hasPre, gw.fromPre = false, false // early's rows serve one prepare
	rows := gw.rows[:0]
	for t := range T {
		if scale[t] != 0 {
			rows = append(rows, int32(t))
		}
	}
	gw.rows, gw.n, gw.compact = rows, len(rows), len(rows) < T
	gw.r, gw.att, gw.scl = r, att, scale
	if gw.compact {
		clear(dst[:T*d])
		gs := sc.buf(&gw.bScl, gw.n)
		for i, t := range rows {
			gs[i] = scale[t]
		}
		gw.r = gatherRows(sc.buf(&gw.bR, gw.n*d), r, rows, d)
		gw.att = gatherRows(sc.buf(&gw.bAtt, gw.n*A), att, rows, A)
		gw.scl = gs
	}
	if w.gateM.Rows != 0 && gw.n > 0 {
		gw.o = sc.buf(&gw.bO, gw.n*d)
		gw.mo = sc.buf(&gw.bMo, gw.n*d)
		gw.g = sc.buf(&gw.bG, gw.n*d)
		// Rows that early computed are copied, the same bits as the
		// product would give them here (a product's row depends on that
		// row alone); if one is missing, the product runs for all.
		gw.fromPre = hasPre && !slices.ContainsFunc(rows, func(t int32) bool { return gw.preAt[t] < 0 })
		switch {
		case gw.fromPre && len(gw.pre) == gw.n*d:
			gw.g = gw.pre // every row, in order (a decode step's one)
		case gw.fromPre:
			for i, t := range rows {
				j := int(gw.preAt[t])
				copy(gw.g[i*d:(i+1)*d], gw.pre[j*d:(j+1)*d])
			}
		}
	}
}

// gatherRows sets dst's row i to src's row rows[i] (rows w wide) and
// returns dst.
func gatherRows(dst, src []float32, rows []int32, w int) []float32 {
	for i, t := range rows {
		copy(dst[i*w:(i+1)*w], src[int(t)*w:(int(t)+1)*w])
	}
	return dst
}

// products appends the fused form's three products, o = W_o att, M att
// and W_gate[:, :d] r (none without the fused form, or when no row
// retrieves).
func (gw *gatedWork) products(ps []ops.Product) []ops.Product {
	if gw.w.gateM.Rows == 0 || gw.n == 0 {
		return ps
	}
	ps = append(ps,
		ops.Product{Dst: gw.o, W: gw.w.o, X: gw.att, N: gw.n},
		ops.Product{Dst: gw.mo, W: gw.w.gateM, X: gw.att, N: gw.n})
	if gw.fromPre {
		return ps
	}
	return append(ps, ops.Product{Dst: gw.g, W: gw.w.gateR, X: gw.r, N: gw.n})
}

func (gw *gatedWork) finish(nd *nativeDense) {
	if gw.n == 0 {
		return
	}
	m, d, w := nd.m, nd.m.Config.HiddenSize, gw.w
	out := gw.dst
	if gw.compact {
		out = nd.sc.buf(&gw.bOut, gw.n*d)
	}
	if w.gateM.Rows != 0 {
		// Row by row, split across the pool for a prefill's many rows.
		if gw.gateFn == nil {
			gw.gateFn = gw.gateRows
		}
		gw.out, gw.d = out, d
		m.pool.For(gw.n, max(1, rowPassMin/d), gw.gateFn)
		gw.out = nil
	} else {
		// The SPEC's order: o = W_o att, then the gate over [r; o].
		m.pool.MatMul(out[:gw.n*d], w.o, gw.att, gw.n)
		cat := nd.sc.buf(&gw.bCat, gw.n*2*d)
		for t := range gw.n {
			copy(cat[t*2*d:], gw.r[t*d:(t+1)*d])
			copy(cat[t*2*d+d:], out[t*d:(t+1)*d])
		}
		g := nd.sc.buf(&gw.bG, gw.n*d)
		m.pool.MatMul(g, w.gate, cat, gw.n)
		for t := range gw.n {
			o := out[t*d : (t+1)*d]
			gw.combine(o, o, g[t*d:(t+1)*d], gw.scl[t])
		}
	}
	if gw.compact {
		for i, t := range gw.rows {
			copy(gw.dst[int(t)*d:(int(t)+1)*d], out[i*d:(i+1)*d])
		}
	}
}

// gateRows finishes the fused form's rows lo..hi-1: g += M att, then
// combine.
func (gw *gatedWork) gateRows(lo, hi int) {
	d := gw.d
	for t := lo; t < hi; t++ {
		o, mo := gw.o[t*d:(t+1)*d], gw.mo[t*d:(t+1)*d]
		g := gw.g[t*d : (t+1)*d]
		ops.Add(g, g, mo)
		gw.combine(gw.out[t*d:(t+1)*d], o, g, gw.scl[t])
	}
}

// combine sets dst = scale * sigma(g + b_gate) * o (g is overwritten).
func (gw *gatedWork) combine(dst, o, g []float32, scale float32) {
	ops.Add(g, g, gw.w.gateB)
	ops.Sigmoid(g, g)
	ops.Mul(dst, o, g)
	if scale != 1 {
		ops.Scale(dst, dst, scale)
	}
}

func (n *nativeDense) Logits(out, x []float32, rows int) {
	m, d := n.m, n.m.Config.HiddenSize
	xn := n.sc.buf(&n.u, rows*d)
	for t := range rows {
		ops.RMSNorm(xn[t*d:(t+1)*d], x[t*d:(t+1)*d], m.normF, n.eps())
	}
	m.pool.MatMul(out, m.lmHead, xn, rows)
}
