package runtime

import (
	"slices"

	"github.com/memmamba/memmamba/arch"
	"github.com/memmamba/memmamba/ops"
)

// notePool is one layer's Note Block state pool (SPEC.md step 4): at most
// cap notes, each a summary with its score and position, kept in slot order
// (appended while there is room, replaced in place when full). The keys and
// values that attention reads are computed once, when a note enters: under
// the layer's token attention (tokK, tokV) and, when a cross-layer attention
// reads this pool, under that layer's weights (layK, layV).
type notePool struct {
	cap, S, A  int
	n          int
	pos        []int
	score      []float32
	summ       []float32 // cap x S
	tokK, tokV []float32 // cap x A
	layK, layV []float32 // cap x A, nil when no cross-layer attention reads the pool
}

func newNotePool(capacity, S, A int, readByLayerAttn bool) *notePool {
	p := &notePool{
		cap: capacity, S: S, A: A,
		pos:   make([]int, capacity),
		score: make([]float32, capacity),
		summ:  make([]float32, capacity*S),
		tokK:  make([]float32, capacity*A),
		tokV:  make([]float32, capacity*A),
	}
	if readByLayerAttn {
		p.layK = make([]float32, capacity*A)
		p.layV = make([]float32, capacity*A)
	}
	return p
}

func (p *notePool) reset() { p.n = 0 }

func (p *notePool) clone() *notePool {
	q := *p
	q.pos = slices.Clone(p.pos)
	q.score = slices.Clone(p.score)
	q.summ = slices.Clone(p.summ)
	q.tokK = slices.Clone(p.tokK)
	q.tokV = slices.Clone(p.tokV)
	q.layK = slices.Clone(p.layK)
	q.layV = slices.Clone(p.layV)
	return &q
}

// copyFrom makes p hold q's entries (p and q have the same sizes).
func (p *notePool) copyFrom(q *notePool) {
	p.n = q.n
	copy(p.pos, q.pos)
	copy(p.score, q.score)
	copy(p.summ, q.summ)
	copy(p.tokK, q.tokK)
	copy(p.tokV, q.tokV)
	copy(p.layK, q.layK)
	copy(p.layV, q.layV)
}

// slotFor decides where a note of score imp goes (SPEC.md step 4): the
// next free slot; when full, with fifo the oldest entry, with priority the
// lowest-scoring one (ties: the most recent) if imp beats it. It returns
// the slot, the position evicted (-1 if none) and whether the note is
// dropped.
func (p *notePool) slotFor(imp float32, eviction string) (slot, evicted int, drop bool) {
	if p.n < p.cap {
		return p.n, -1, false
	}
	j := 0
	if eviction == arch.EvictFIFO {
		for k := 1; k < p.n; k++ {
			if p.pos[k] < p.pos[j] {
				j = k
			}
		}
		return j, p.pos[j], false
	}
	for k := 1; k < p.n; k++ {
		if p.score[k] < p.score[j] || (p.score[k] == p.score[j] && p.pos[k] > p.pos[j]) {
			j = k
		}
	}
	if imp > p.score[j] {
		return j, p.pos[j], false
	}
	return -1, -1, true
}

func (p *notePool) positions() []int { return slices.Clone(p.pos[:p.n]) }

// poolEvent records that a note entered a pool at slot during token t of
// the chunk, so that a cross-layer attention above can see the pool as it
// stood after each token.
type poolEvent struct {
	t, slot, pos int
	off          int // the note's layK then layV in poolHistory.data
}

// poolHistory is a pool at the start of the chunk and what entered it.
type poolHistory struct {
	start  *notePool
	view   *notePool // the pool replayed up to the current token
	next   int       // the next event to apply to view
	events []poolEvent
	data   []float32 // the events' keys and values, reused from chunk to chunk
}

// noteScratch holds a pass's Note Block buffers, one row per token of the
// pass.
type noteScratch struct {
	dense                              noteDense
	qLay, oTok, oLay, sTok, sLay, prev []float32
	retrieved, crossed                 []bool
}

// seqScratch holds one sequence's Note Block work memory: the pool
// histories that a cross-layer attention replays within a chunk, and the
// union it attends over.
type seqScratch struct {
	s, unionK, unionV []float32
	union             []*notePool
	hist              []poolHistory
	below             []*poolHistory
}

// noteBlock runs layer l's Note Block over the pass's rows: r (T x d)
// holds x + m on entry and x^{l+1} on return; mix (T x d) is the layer's
// mixer output. The dense parts run over all rows at once; the pools of
// each sequence run in parallel over the sequences (notesRange).
func (p *pass) noteBlock(l int, r, mix []float32) {
	m, c, sc := p.m, p.m.Config, &p.s
	ns := &sc.note
	nw := m.layers[l].note
	mem := c.Memory
	d, S, A := c.HiddenSize, mem.SummaryDim, mem.AttnDim
	T := p.rows

	// Dense parts, over all rows: I_t, G_t, W_s r, the queries. The
	// trigger reads m_{t-1}: a sequence's first row takes its session's
	// previous mixer output, the others the row above.
	nd := &ns.dense
	nd.imp = sc.buf(&nd.imp, T)
	nd.gate = sc.buf(&nd.gate, T)
	nd.summ = sc.buf(&nd.summ, T*S)
	nd.qTok = sc.buf(&nd.qTok, T*A)
	nd.qLay = nil
	if nw.lay != nil {
		nd.qLay = sc.buf(&ns.qLay, T*A)
	}
	prev := sc.buf(&ns.prev, T*d)
	for _, sr := range p.seqs {
		o, n := sr.off, len(sr.tokens)
		copy(prev[o*d:(o+1)*d], sr.s.layers[l].prevM)
		copy(prev[(o+1)*d:(o+n)*d], mix[o*d:(o+n-1)*d])
	}
	p.dense.noteIn(l, nd, r, prev, T)

	// The sequential part, per sequence: pool bookkeeping and attention
	// over the pools.
	sc.buf(&ns.oTok, T*A)
	sc.buf(&ns.oLay, T*A)
	growBool(&ns.retrieved, T)
	growBool(&ns.crossed, T)
	m.pool.For(len(p.seqs), 1, p.notesFn)

	// Dense again: o_proj and the gates, then x = r + c_tok + c_lay, with
	// c_tok scaled by G_t where retrieval ran (0 elsewhere) and c_lay by 1
	// where cross-layer retrieval ran.
	sTok := sc.buf(&ns.sTok, T)
	sLay := sc.buf(&ns.sLay, T)
	for t := range T {
		sTok[t], sLay[t] = 0, 0
		if ns.retrieved[t] {
			sTok[t] = nd.gate[t]
		}
		if ns.crossed[t] {
			sLay[t] = 1
		}
	}
	if nw.lay == nil {
		sLay = nil
	}
	p.dense.noteOut(l, r, ns.oTok, ns.oLay, sTok, sLay, T)
}

// notesRange runs the pools of layer p.l for sequences lo..hi-1 (pool.For's
// part): each touches only its own session and its own rows.
func (p *pass) notesRange(lo, hi int) {
	for i := lo; i < hi; i++ {
		p.seqs[i].s.notePools(p.l, p, p.seqs[i].off, len(p.seqs[i].tokens))
	}
}

// notePools runs the sequential part of layer l's Note Block for the
// session's T tokens at rows off..off+T-1 of p: steps 3-5 of SPEC.md for
// each token in order, from the dense results in p.s.note.dense, writing
// the attention results (before o_proj) and the decisions into p's rows.
func (s *Session) notePools(l int, p *pass, off, T int) {
	m, c := s.m, s.m.Config
	ns := &p.s.note
	sq := &s.seq
	nw := m.layers[l].note
	mem := c.Memory
	S, A := mem.SummaryDim, mem.AttnDim
	pool := s.layers[l].pool
	if sq.hist == nil {
		sq.hist = make([]poolHistory, c.NumLayers)
	}
	rows := func(v []float32, w int) []float32 { return v[off*w : (off+T)*w] }
	nd := &ns.dense
	imp, gate, summ, qTok := nd.imp[off:off+T], nd.gate[off:off+T], rows(nd.summ, S), rows(nd.qTok, A)
	var qLay []float32
	if nd.qLay != nil {
		qLay = rows(nd.qLay, A)
	}
	oTok, oLay := rows(ns.oTok, A), rows(ns.oLay, A)
	retrieved, crossed := ns.retrieved[off:off+T], ns.crossed[off:off+T]

	// The pools of the layers below that this layer's cross-layer
	// attention reads, replayed token by token.
	// With one token (decode) the layers below have already taken this
	// token's notes, so their pools are read as they are: no replay.
	single := T == 1
	below := sq.below[:0]
	lo, _, _ := c.CrossLayerGroup(l) // the union is the pools of lo..l
	if nw.lay != nil && !single {
		for j := lo; j < l; j++ {
			h := &sq.hist[j]
			if h.view == nil {
				h.view = h.start.clone()
			} else {
				h.view.copyFrom(h.start)
			}
			h.next = 0
			below = append(below, h)
		}
		sq.below = below
	}
	// This layer's history, when a layer above reads its pool.
	var hist *poolHistory
	if m.reader[l] > l && !single {
		hist = &sq.hist[l]
		if hist.start == nil {
			hist.start = pool.clone()
		} else {
			hist.start.copyFrom(pool)
		}
		hist.events = hist.events[:0]
		hist.data = hist.data[:0]
	}
	var reader *attendWeights
	if r := m.reader[l]; r >= 0 {
		reader = m.layers[r].note.lay
	}

	sv := growFloat(&sq.s, S)
	for t := range T {
		pos := s.pos + t
		// 3. cross-token retrieval over the pool before this token
		retrieved[t] = float64(gate[t]) > mem.TauRetrieve && pool.n > 0
		if retrieved[t] {
			ops.Attend(oTok[t*A:(t+1)*A], qTok[t*A:(t+1)*A], pool.tokK[:pool.n*A], pool.tokV[:pool.n*A], pool.n, mem.NumHeads)
		} else {
			clear(oTok[t*A : (t+1)*A])
		}
		// 4. note taking
		action, evicted := "skip", -1
		if float64(imp[t]) > mem.TauNote {
			slot, ev, drop := pool.slotFor(imp[t], mem.Eviction)
			switch {
			case drop:
				action = "drop"
			case ev >= 0:
				action, evicted = "evict", ev
			default:
				action = "note"
			}
			if !drop {
				ops.Scale(sv, summ[t*S:(t+1)*S], imp[t])
				if slot == pool.n {
					pool.n++
				}
				pool.pos[slot], pool.score[slot] = pos, imp[t]
				copy(pool.summ[slot*S:(slot+1)*S], sv)
				ops.MatVec(pool.tokK[slot*A:(slot+1)*A], nw.tok.k, sv)
				ops.MatVec(pool.tokV[slot*A:(slot+1)*A], nw.tok.v, sv)
				if reader != nil {
					ops.MatVec(pool.layK[slot*A:(slot+1)*A], reader.k, sv)
					ops.MatVec(pool.layV[slot*A:(slot+1)*A], reader.v, sv)
					if hist != nil {
						hist.events = append(hist.events, poolEvent{t: t, slot: slot, pos: pos, off: len(hist.data)})
						hist.data = append(hist.data, pool.layK[slot*A:(slot+1)*A]...)
						hist.data = append(hist.data, pool.layV[slot*A:(slot+1)*A]...)
					}
				}
			}
		}
		// 5. cross-layer retrieval over the pools after this token's step 4
		crossed[t] = false
		if nw.lay != nil {
			union := sq.union[:0]
			if single {
				for j := lo; j <= l; j++ {
					union = append(union, s.layers[j].pool)
				}
			} else {
				for _, h := range below {
					h.advance(t, A)
					union = append(union, h.view)
				}
				union = append(union, pool)
			}
			sq.union = union
			crossed[t] = sq.attendPools(oLay[t*A:(t+1)*A], qLay[t*A:(t+1)*A], union, A, mem.NumHeads)
		}
		if s.trace != nil {
			s.trace.Layers[l] = append(s.trace.Layers[l], TraceEntry{
				Pos: pos, Importance: float64(imp[t]), Trigger: float64(gate[t]), Retrieved: retrieved[t],
				Note: action, Evicted: evicted, CrossLayer: crossed[t], Pool: pool.positions(),
			})
		}
	}

}

// advance replays the events of tokens up to t into h.view.
func (h *poolHistory) advance(t, A int) {
	for h.next < len(h.events) && h.events[h.next].t <= t {
		e := h.events[h.next]
		if e.slot == h.view.n {
			h.view.n++
		}
		h.view.pos[e.slot] = e.pos
		copy(h.view.layK[e.slot*A:(e.slot+1)*A], h.data[e.off:e.off+A])
		copy(h.view.layV[e.slot*A:(e.slot+1)*A], h.data[e.off+A:e.off+2*A])
		h.next++
	}
}

// attendPools sets out to the attention of q over the union of pools (in
// order, under the cross-layer attention's keys and values) and reports
// whether the union had any note; out is zero when it had none.
func (sq *seqScratch) attendPools(out, q []float32, pools []*notePool, A, H int) bool {
	n, most := 0, 0
	for _, p := range pools {
		n += p.n
		most += p.cap
	}
	if n == 0 {
		clear(out)
		return false
	}
	// Grown once to the pools' capacity, not as they fill.
	uk := growFloat(&sq.unionK, most*A)[:0]
	uv := growFloat(&sq.unionV, most*A)[:0]
	for _, p := range pools {
		uk = append(uk, p.layK[:p.n*A]...)
		uv = append(uv, p.layV[:p.n*A]...)
	}
	ops.Attend(out, q, uk, uv, n, H)
	return true
}

func growBool(p *[]bool, n int) []bool {
	if cap(*p) < n {
		*p = make([]bool, n)
	}
	*p = (*p)[:n]
	return *p
}

// growFloat returns *p resized to n values, growing it when needed.
func growFloat(p *[]float32, n int) []float32 {
	if cap(*p) < n {
		*p = make([]float32, n)
	}
	*p = (*p)[:n]
	return *p
}
