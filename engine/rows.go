package engine

import "github.com/memmamba/memmamba/ops"

// rowPass is one of the dense blocks' elementwise passes over a chunk's
// rows (the norms before the products, dt's bias and softplus, the
// residual adds), which the model's pool splits by rows when the chunk is
// large enough to pay for the hand-off (a prefill): run serially on the
// caller, they left the other threads idle for 7% of a 512-token prefill
// (BENCHMARKS.md). Each row gets the same calls on the same slices as in
// the serial loop, so the split changes no bits. A batched decode step's
// few rows stay on the caller (rowPassMin).
type rowPass struct {
	kind  rowKind
	dst   []float32 // T x width: the result (and, for rowAdd, an addend)
	x     []float32 // T x width: the input (rowNorm), the addend (rowAdd)
	w     []float32 // width: the norm's weight, or the bias (nil: none)
	width int
	eps   float32
	fn    func(lo, hi int) // rows, bound once so that a pass allocates nothing
}

type rowKind int

const (
	// rowNorm: dst_t = RMSNorm(x_t; w).
	rowNorm rowKind = iota
	// rowSoftplus: dst_t = softplus(dst_t + w).
	rowSoftplus
	// rowAdd: x_t += w (when w is not nil), then dst_t += x_t: MixerOut's
	// mix_t += b_out and r_t = x_t + mix_t.
	rowAdd
)

// rowPassMin is the fewest values a part of a rowPass gets: below it the
// hand-off costs more than the loop.
const rowPassMin = 1 << 14

// run applies the pass to T rows, split across the pool.
func (rp *rowPass) run(p *ops.Pool, T int) {
	if rp.fn == nil {
		rp.fn = rp.rows
	}
	p.For(T, max(1, rowPassMin/rp.width), rp.fn)
	rp.dst, rp.x, rp.w = nil, nil, nil // drop references
}

// rows applies the pass to rows lo..hi-1.
func (rp *rowPass) rows(lo, hi int) {
	W := rp.width
	for t := lo; t < hi; t++ {
		dst := rp.dst[t*W : (t+1)*W]
		switch rp.kind {
		case rowNorm:
			ops.RMSNorm(dst, rp.x[t*W:(t+1)*W], rp.w, rp.eps)
		case rowSoftplus:
			ops.Add(dst, dst, rp.w)
			ops.Softplus(dst, dst)
		case rowAdd:
			x := rp.x[t*W : (t+1)*W]
			if rp.w != nil {
				ops.Add(x, x, rp.w)
			}
			ops.Add(dst, dst, x)
		}
	}
}

// norms sets dst's T rows (d wide) to RMSNorm(x's rows; w), split across
// the pool for a large chunk.
func (n *nativeDense) norms(dst, x, w []float32, T int) {
	rp := &n.rowPass
	rp.kind, rp.dst, rp.x, rp.w, rp.width, rp.eps = rowNorm, dst, x, w, n.m.Config.HiddenSize, n.eps()
	rp.run(n.m.pool, T)
}

// softplusRows sets dt's T rows (E wide) to softplus(dt + bias).
func (n *nativeDense) softplusRows(dt, bias []float32, T int) {
	rp := &n.rowPass
	rp.kind, rp.dst, rp.x, rp.w, rp.width = rowSoftplus, dt, nil, bias, n.m.Config.Intermediate
	rp.run(n.m.pool, T)
}

// addRows adds bias (if not nil) to add's T rows (d wide) and then those
// rows to dst's.
func (n *nativeDense) addRows(dst, add, bias []float32, T int) {
	rp := &n.rowPass
	rp.kind, rp.dst, rp.x, rp.w, rp.width = rowAdd, dst, add, bias, n.m.Config.HiddenSize
	rp.run(n.m.pool, T)
}
