package engine

import (
	"slices"
	"strconv"

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
	dense                              NoteDense
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
	run               noteRun // notePools' state, reused from call to call
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
	nd.Imp = sc.buf(&nd.Imp, T)
	nd.Gate = sc.buf(&nd.Gate, T)
	nd.Summ = sc.buf(&nd.Summ, T*S)
	nd.QTok = sc.buf(&nd.QTok, T*A)
	nd.QLay = nil
	if nw.lay != nil {
		nd.QLay = sc.buf(&ns.qLay, T*A)
	}
	prev := sc.buf(&ns.prev, T*d)
	for _, sr := range p.seqs {
		o, n := sr.off, len(sr.tokens)
		copy(prev[o*d:(o+1)*d], sr.s.layers[l].prevM)
		copy(prev[(o+1)*d:(o+n)*d], mix[o*d:(o+n-1)*d])
	}
	p.dense.NoteIn(l, nd, r, prev, T)

	// The sequential part, per sequence: pool bookkeeping and attention
	// over the pools.
	sc.buf(&ns.oTok, T*A)
	sc.buf(&ns.oLay, T*A)
	growBool(&ns.retrieved, T)
	growBool(&ns.crossed, T)
	if o, ok := p.dense.(notePooler); ok {
		o.notePools(l, r, nd.Gate, T, len(p.seqs), p.notesFn)
	} else {
		m.pool.For(len(p.seqs), 1, p.notesFn)
	}

	// Dense again: o_proj and the gates, then x = r + c_tok + c_lay, with
	// c_tok scaled by G_t where retrieval ran (0 elsewhere) and c_lay by 1
	// where cross-layer retrieval ran.
	sTok := sc.buf(&ns.sTok, T)
	sLay := sc.buf(&ns.sLay, T)
	for t := range T {
		sTok[t], sLay[t] = 0, 0
		if ns.retrieved[t] {
			sTok[t] = nd.Gate[t]
		}
		if ns.crossed[t] {
			sLay[t] = 1
		}
	}
	if nw.lay == nil {
		sLay = nil
	}
	p.dense.NoteOut(l, r, ns.oTok, ns.oLay, sTok, sLay, T)
}

// notesRange runs the pools of layer p.l for sequences lo..hi-1 (pool.For's
// part): each touches only its own session and its own rows.
func (p *pass) notesRange(lo, hi int) {
	for i := lo; i < hi; i++ {
		p.seqs[i].s.notePools(p.l, p, p.seqs[i].off, len(p.seqs[i].tokens))
	}
}

// NoteAction is what step 4 of SPEC.md did with a token's candidate note.
// Its String is the word a Trace records ("skip", "note", "evict",
// "drop"), the golden traces' form.
type NoteAction uint8

// The actions of step 4.
const (
	// NoteSkip: I_t <= tau1, no note.
	NoteSkip NoteAction = iota
	// NoteAppend: the note went into a free slot ("note").
	NoteAppend
	// NoteEvict: the pool was full and the note replaced another one.
	NoteEvict
	// NoteDrop: a full priority pool whose notes all score at least I_t
	// kept them and dropped this one.
	NoteDrop
)

var noteActionNames = [...]string{NoteSkip: "skip", NoteAppend: "note", NoteEvict: "evict", NoteDrop: "drop"}

func (a NoteAction) String() string {
	if int(a) < len(noteActionNames) {
		return noteActionNames[a]
	}
	return "NoteAction(" + strconv.Itoa(int(a)) + ")"
}

// noteRun is one call of notePools: layer l's Note Block for one session's
// T rows of a pass. Its slices are those rows of the pass's buffers. It
// lives in the session's seqScratch, so a step allocates nothing.
type noteRun struct {
	s    *Session
	l    int
	mem  *arch.Memory
	S, A int
	nw   *noteWeights
	pool *notePool
	// reader is the cross-layer attention that reads this layer's pool
	// (its keys and values are kept in the pool), nil when none does.
	reader *attendWeights
	// lo..l are the layers whose pools this layer's cross-layer attention
	// reads (Config.CrossLayerGroup).
	lo int
	// single: one token (decode). The layers below have then already
	// taken this token's notes, so their pools are read as they are; with
	// more tokens they are replayed token by token from their histories
	// (below), and this layer records its own (hist) when a layer above
	// reads it.
	single bool
	below  []*poolHistory
	hist   *poolHistory

	// Inputs, from the pass's dense results.
	imp, gate, summ, qTok, qLay []float32
	// Outputs: the attention results before o_proj and the decisions.
	oTok, oLay         []float32
	retrieved, crossed []bool
}

// notePools runs the sequential part of layer l's Note Block for the
// session's T tokens at rows off..off+T-1 of p: steps 3-5 of SPEC.md for
// each token in order, from the dense results in p.s.note.dense, writing
// the attention results (before o_proj) and the decisions into p's rows.
func (s *Session) notePools(l int, p *pass, off, T int) {
	r := s.newNoteRun(l, p, off, T)
	r.prepareHistories()
	sv := growFloat(&s.seq.s, r.S)
	for t := range T {
		pos := s.pos + t
		r.retrieveTokens(t)
		action, evicted := r.takeNote(t, pos, sv)
		r.retrieveLayers(t)
		if s.trace != nil {
			s.trace.Layers[l] = append(s.trace.Layers[l], TraceEntry{
				Pos: pos, Importance: float64(r.imp[t]), Trigger: float64(r.gate[t]), Retrieved: r.retrieved[t],
				Note: action.String(), Evicted: evicted, CrossLayer: r.crossed[t], Pool: r.pool.positions(),
			})
		}
	}
	*r = noteRun{} // hold no pass buffers between calls
}

// newNoteRun sets up the session's noteRun for layer l over rows
// off..off+T-1 of p.
func (s *Session) newNoteRun(l int, p *pass, off, T int) *noteRun {
	m, c := s.m, s.m.Config
	ns := &p.s.note
	mem := c.Memory
	S, A := mem.SummaryDim, mem.AttnDim
	rows := func(v []float32, w int) []float32 { return v[off*w : (off+T)*w] }
	nd := &ns.dense
	r := &s.seq.run
	lo, _, _ := c.CrossLayerGroup(l)
	*r = noteRun{
		s: s, l: l, mem: mem, S: S, A: A,
		nw: m.layers[l].note, pool: s.layers[l].pool,
		lo: lo, single: T == 1,
		imp: nd.Imp[off : off+T], gate: nd.Gate[off : off+T], summ: rows(nd.Summ, S), qTok: rows(nd.QTok, A),
		oTok: rows(ns.oTok, A), oLay: rows(ns.oLay, A),
		retrieved: ns.retrieved[off : off+T], crossed: ns.crossed[off : off+T],
	}
	if nd.QLay != nil {
		r.qLay = rows(nd.QLay, A)
	}
	if rd := m.reader[l]; rd >= 0 {
		r.reader = m.layers[rd].note.lay
	}
	return r
}

// prepareHistories readies the pool histories of a chunk of several tokens:
// the views of the pools below that this layer's cross-layer attention
// replays, rewound to the chunk's start, and this layer's own history
// when a layer above reads its pool.
func (r *noteRun) prepareHistories() {
	if r.single {
		return
	}
	sq := &r.s.seq
	if sq.hist == nil {
		sq.hist = make([]poolHistory, r.s.m.Config.NumLayers)
	}
	if r.nw.lay != nil {
		below := sq.below[:0]
		for j := r.lo; j < r.l; j++ {
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
		r.below = below
	}
	if r.s.m.reader[r.l] > r.l {
		h := &sq.hist[r.l]
		if h.start == nil {
			h.start = r.pool.clone()
		} else {
			h.start.copyFrom(r.pool)
		}
		h.events = h.events[:0]
		h.data = h.data[:0]
		r.hist = h
	}
}

// retrieveTokens is step 3 for token t: cross-token retrieval over the
// pool as it stands before the token's note, when G_t > tau2.
func (r *noteRun) retrieveTokens(t int) {
	A, pool := r.A, r.pool
	r.retrieved[t] = float64(r.gate[t]) > r.mem.TauRetrieve && pool.n > 0
	if r.retrieved[t] {
		ops.Attend(r.oTok[t*A:(t+1)*A], r.qTok[t*A:(t+1)*A], pool.tokK[:pool.n*A], pool.tokV[:pool.n*A], pool.n, r.mem.NumHeads)
	} else {
		clear(r.oTok[t*A : (t+1)*A])
	}
}

// takeNote is step 4 for token t at position pos: when I_t > tau1 the
// note I_t * W_s r goes into the pool (sv is work memory of S values). It
// returns the action and the position evicted (-1 if none).
func (r *noteRun) takeNote(t, pos int, sv []float32) (NoteAction, int) {
	imp := r.imp[t]
	if !(float64(imp) > r.mem.TauNote) {
		return NoteSkip, -1
	}
	slot, evicted, drop := r.pool.slotFor(imp, r.mem.Eviction)
	if drop {
		return NoteDrop, -1
	}
	S := r.S
	ops.Scale(sv, r.summ[t*S:(t+1)*S], imp)
	r.store(t, slot, pos, imp, sv)
	if evicted >= 0 {
		return NoteEvict, evicted
	}
	return NoteAppend, -1
}

// store writes the note sv of score imp into slot, with its keys and
// values under the token attention and, when a cross-layer attention reads
// the pool, under that one's (recorded in the history for the replay).
func (r *noteRun) store(t, slot, pos int, imp float32, sv []float32) {
	pool, S, A := r.pool, r.S, r.A
	if slot == pool.n {
		pool.n++
	}
	pool.pos[slot], pool.score[slot] = pos, imp
	copy(pool.summ[slot*S:(slot+1)*S], sv)
	ops.MatVec(pool.tokK[slot*A:(slot+1)*A], r.nw.tok.k, sv)
	ops.MatVec(pool.tokV[slot*A:(slot+1)*A], r.nw.tok.v, sv)
	if r.reader == nil {
		return
	}
	ops.MatVec(pool.layK[slot*A:(slot+1)*A], r.reader.k, sv)
	ops.MatVec(pool.layV[slot*A:(slot+1)*A], r.reader.v, sv)
	if h := r.hist; h != nil {
		h.events = append(h.events, poolEvent{t: t, slot: slot, pos: pos, off: len(h.data)})
		h.data = append(h.data, pool.layK[slot*A:(slot+1)*A]...)
		h.data = append(h.data, pool.layV[slot*A:(slot+1)*A]...)
	}
}

// retrieveLayers is step 5 for token t: on a layer with cross-layer
// attention, retrieval over the union of the pools of layers lo..l as they
// stand after the token's step 4.
func (r *noteRun) retrieveLayers(t int) {
	r.crossed[t] = false
	if r.nw.lay == nil {
		return
	}
	sq, A := &r.s.seq, r.A
	union := sq.union[:0]
	if r.single {
		for j := r.lo; j <= r.l; j++ {
			union = append(union, r.s.layers[j].pool)
		}
	} else {
		for _, h := range r.below {
			h.advance(t, A)
			union = append(union, h.view)
		}
		union = append(union, r.pool)
	}
	sq.union = union
	r.crossed[t] = sq.attendPools(r.oLay[t*A:(t+1)*A], r.qLay[t*A:(t+1)*A], union, A, r.mem.NumHeads)
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
