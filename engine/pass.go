package engine

import "github.com/memmamba/memmamba/ops"

// seqRun is one sequence's part of a forward pass: its session and the
// tokens it advances by, at rows off..off+len(tokens)-1 of the pass's
// buffers.
type seqRun struct {
	s      *Session
	tokens []int
	off    int
}

// pass is the work memory of forward passes over the rows of one or more
// sequences: one session's chunk (a session's own Prefill and Step) or
// several sessions' tokens side by side (a Batch). Every dense product of
// a layer runs once over all the rows (the rows of a product are
// independent, so each sequence's rows come out as they would alone, bit
// for bit); the conv, the scan and the Note Block's pools run per sequence,
// in parallel over sequences and channels.
type pass struct {
	m     *Model
	s     scratch
	dense DenseBlocks
	seqs  []seqRun
	rows  int // the current pass's rows (the sum of its sequences' tokens)

	// The layer that the per-sequence loops below work on, and the loops
	// as method values made once (one made per call would allocate).
	l                       int
	convFn, scanFn, notesFn func(lo, hi int)
}

func (m *Model) newPass() *pass {
	p := &pass{m: m}
	p.dense = m.newDense(&p.s)
	p.convFn, p.scanFn, p.notesFn = p.convRange, p.scanRange, p.notesRange
	return p
}

// scratch holds a pass's work buffers, grown to the most rows seen.
type scratch struct {
	x, xz, a, z, c, dbc, B, C, dt, y, mix []float32
	logits, gathered                      []float32
	note                                  noteScratch
}

// buf returns *p resized to n values, growing it when needed.
func (sc *scratch) buf(p *[]float32, n int) []float32 { return growFloat(p, n) }

// chunkChannels is how many channels of one sequence a part of the
// parallel conv and scan of a multi-sequence pass takes at least.
const chunkChannels = 256

// forward runs the sequences' tokens through every layer and advances
// their positions; afterwards p.s.x holds the last layer's output of every
// row. The dense blocks run in p.dense (native Go or ONNX Runtime, which
// takes one sequence a pass); the embedding lookup, the conv, the scan and
// the Note Block's pools run here.
func (p *pass) forward(seqs []seqRun) {
	m, c, sc := p.m, p.m.Config, &p.s
	p.seqs = seqs
	T := 0
	for i := range seqs {
		seqs[i].off = T
		T += len(seqs[i].tokens)
	}
	p.rows = T
	d, E, N, R := c.HiddenSize, c.Intermediate, c.StateSize, c.TimeStepRank
	x := sc.buf(&sc.x, T*d)
	for _, sr := range seqs {
		for t, tok := range sr.tokens {
			m.emb.DequantRow(x[(sr.off+t)*d:(sr.off+t+1)*d], tok)
		}
	}
	xz := sc.buf(&sc.xz, T*2*E)
	a := sc.buf(&sc.a, T*E)
	z := sc.buf(&sc.z, T*E)
	cv := sc.buf(&sc.c, T*E)
	dbc := sc.buf(&sc.dbc, T*(R+2*N))
	B := sc.buf(&sc.B, T*N)
	C := sc.buf(&sc.C, T*N)
	dt := sc.buf(&sc.dt, T*E)
	y := sc.buf(&sc.y, T*E)
	mix := sc.buf(&sc.mix, T*d)
	one := len(seqs) == 1
	for l := range m.layers {
		lw := &m.layers[l]
		p.l = l
		if f, ok := p.dense.(stepFuser); ok && T == 1 {
			// The same steps, the conv and the scan fused into the
			// products before them.
			ls := &seqs[0].s.layers[l]
			f.mixerInStep(l, xz, x, cv, ls.conv)
			f.ssmStep(l, dbc, dt, y, cv, xz[E:], ls.ssm)
		} else {
			// 1-2. [a; z] = W_in RMSNorm(x) (+ b_in)
			p.dense.MixerIn(l, xz, x, T)
			for t := range T {
				row := xz[t*2*E : (t+1)*2*E]
				copy(a[t*E:(t+1)*E], row[:E])
				copy(z[t*E:(t+1)*E], row[E:])
			}
			// conv, a' = silu(c)
			if one {
				w := &lw.mixer
				m.pool.ConvSiLU(cv, seqs[0].s.layers[l].conv, a, w.convW, w.convB, E, c.ConvKernel, T)
			} else {
				m.pool.For(len(seqs)*E, chunkChannels, p.convFn)
			}
			// [delta; B; C] = W_x a', dt = softplus(W_dt delta + b_dt)
			p.dense.SSMIn(l, dbc, dt, cv, T)
			for t := range T {
				row := dbc[t*(R+2*N) : (t+1)*(R+2*N)]
				copy(B[t*N:(t+1)*N], row[R:R+N])
				copy(C[t*N:(t+1)*N], row[R+N:])
			}
			// scan, y = (sum_n h C + D a') * silu(z)
			if one {
				w := &lw.mixer
				m.pool.Scan(y, seqs[0].s.layers[l].ssm, dt, w.A, B, C, cv, w.D, z, E, N, T)
			} else {
				m.pool.For(len(seqs)*E, chunkChannels, p.scanFn)
			}
		}
		// 3. m = W_out y (+ b_out); x = r = x + m. (Only the ONNX Runtime
		// backend reads prevM here, and it runs one sequence a pass.)
		p.dense.MixerOut(l, mix, x, y, seqs[0].s.layers[l].prevM, T)
		// 4. Note Block: x = r + c_tok + c_lay
		if lw.note != nil {
			p.noteBlock(l, x, mix)
		}
		for _, sr := range seqs {
			end := sr.off + len(sr.tokens)
			copy(sr.s.layers[l].prevM, mix[(end-1)*d:end*d])
		}
	}
	for _, sr := range seqs {
		sr.s.pos += len(sr.tokens)
	}
}

// convRange runs the conv of layer p.l on the channels lo..hi-1 of the
// flat sequence-major range (pool.For's part).
func (p *pass) convRange(lo, hi int) {
	c, sc := p.m.Config, &p.s
	E, K := c.Intermediate, c.ConvKernel
	w := &p.m.layers[p.l].mixer
	for i := lo / E; i*E < hi; i++ {
		sr := &p.seqs[i]
		e0, e1 := max(lo-i*E, 0), min(hi-i*E, E)
		r0, r1 := sr.off*E, (sr.off+len(sr.tokens))*E
		ops.ConvSiLUChannels(sc.c[r0:r1], sr.s.layers[p.l].conv, sc.a[r0:r1], w.convW, w.convB, E, K, len(sr.tokens), e0, e1)
	}
}

// scanRange runs the selective scan of layer p.l on the channels lo..hi-1
// of the flat sequence-major range (pool.For's part).
func (p *pass) scanRange(lo, hi int) {
	c, sc := p.m.Config, &p.s
	E, N := c.Intermediate, c.StateSize
	w := &p.m.layers[p.l].mixer
	for i := lo / E; i*E < hi; i++ {
		sr := &p.seqs[i]
		T := len(sr.tokens)
		e0, e1 := max(lo-i*E, 0), min(hi-i*E, E)
		r0, r1 := sr.off*E, (sr.off+T)*E
		n0, n1 := sr.off*N, (sr.off+T)*N
		ops.ScanChannels(sc.y[r0:r1], sr.s.layers[p.l].ssm, sc.dt[r0:r1], w.A, sc.B[n0:n1], sc.C[n0:n1],
			sc.c[r0:r1], w.D, sc.z[r0:r1], E, N, T, e0, e1)
	}
}

// logits computes the logits of n rows of the pass's output starting at
// row t0.
func (p *pass) logits(t0, n int) []float32 {
	c, sc := p.m.Config, &p.s
	d, V := c.HiddenSize, c.VocabSize
	out := sc.buf(&sc.logits, n*V)
	p.dense.Logits(out, sc.x[t0*d:(t0+n)*d], n)
	return out
}
