package ops

import (
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/memmamba/memmamba/quant"
)

// simdLevel names a set of kernels. The level is chosen once, at start-up,
// from the CPU's features (detectSIMD) or MMRUN_SIMD (level.go); every product of the process then
// uses the same kernels, which is what keeps MatVec, MatMul and the Pool
// bit-identical to each other. Tests lower it to exercise every set the
// machine supports.
type simdLevel int

const (
	simdGo     simdLevel = iota // pure Go (other CPUs, the purego tag)
	simdAVX2                    // AVX2 + FMA + F16C, 8-lane kernels
	simdAVX512                  // AVX-512 F/BW/VL/VNNI, 16-lane float kernels, VPDPBUSD
)

func (l simdLevel) String() string {
	switch l {
	case simdAVX2:
		return "avx2"
	case simdAVX512:
		return "avx512"
	}
	return "go"
}

// kernel names one assembly kernel of the products: kX runs the function
// x (kDotF32x4AVX2 runs dotF32x4AVX2). The kernels are called through a
// switch (callFloat, callBlock, ...), not through func values, so that the
// compiler sees their //go:noescape and the result array stays on the
// stack. Which level runs which is the table levels (level.go).
type kernel int

const (
	kNone kernel = iota

	// Four rows against one vector (simd_amd64.s).
	kDotF32x4AVX2
	kDotF32x4AVX512
	kDotF16x4AVX2
	kDotF16x4AVX512
	kDotBF16x4AVX2
	kDotBF16x4AVX512
	kDotQ8x4AVX2
	kDotQ8x4AVX512
	kDotQ4x4AVX2
	kDotQ4x4AVX512

	// Many rows against one vector, the four-row kernel in a loop
	// (simd_amd64.s).
	kDotF32RowsAVX2
	kDotF32RowsAVX512
	kDotF16RowsAVX2
	kDotF16RowsAVX512
	kDotBF16RowsAVX2
	kDotBF16RowsAVX512
	kDotQ8RowsAVX2
	kDotQ8RowsAVX512

	// Tiles of 4 rows x 2 or 4 tokens (tile_amd64.s), used by MatMul.
	kTileF32AVX2
	kTileF32AVX512
	kTileF16AVX2
	kTileF16AVX512
	kTileBF16AVX2
	kTileBF16AVX512
	kTileQ8AVX2
	kTileQ8AVX512

	// The Note Block's attention (scan_amd64.s): attendScores* and
	// attendAccum* of that level, used by Attend.
	kAttendAVX2
	kAttendAVX512

	// The activations' int8 quantiser (tile_amd64.s), used by QuantizeQ8.
	kQuantQ8AVX2
	kQuantQ8AVX512
)

// callTile runs tile kernel k; pf nonzero asks it to prefetch PF ahead:
// the AVX2 tiles in each row, the AVX-512 ones as one stream where the
// rows lie back to back (stride = n*size), else in each row (see
// tileF32AVX512). Zero: MatMul prefetches for it (groupPrefetch).
func callTile(k kernel, w *byte, stride, n int, x *float32, xstride int, out *float32, ostride, pf int) {
	switch k {
	case kTileF32AVX2:
		tileF32AVX2(w, stride, n, x, xstride, out, ostride, pf)
	case kTileF32AVX512:
		tileF32AVX512(w, stride, n, x, xstride, out, ostride, avx512TilePF(pf, stride == 4*n))
	case kTileF16AVX2:
		tileF16AVX2(w, stride, n, x, xstride, out, ostride, pf)
	case kTileF16AVX512:
		tileF16AVX512(w, stride, n, x, xstride, out, ostride, avx512TilePF(pf, stride == 2*n))
	case kTileBF16AVX2:
		tileBF16AVX2(w, stride, n, x, xstride, out, ostride, pf)
	case kTileBF16AVX512:
		tileBF16AVX512(w, stride, n, x, xstride, out, ostride, avx512TilePF(pf, stride == 2*n))
	default:
		panic("ops: no float tile kernel")
	}
}

// callBlockTile runs block tile kernel k; pf as for callTile (the
// AVX-512 tile's rows lie back to back when stride = nb*34).
func callBlockTile(k kernel, w *byte, stride, nb int, xq *int8, xstride int, xd *float32, out *float32, ostride, pf int) {
	switch k {
	case kTileQ8AVX2:
		tileQ8AVX2(w, stride, nb, xq, xstride, xd, out, ostride, pf)
	case kTileQ8AVX512:
		tileQ8AVX512(w, stride, nb, xq, xstride, xd, out, ostride, avx512TilePF(pf, stride == nb*quant.Q8_0BlockBytes))
	default:
		panic("ops: no block tile kernel")
	}
}

// avx512TilePF is the AVX-512 tiles' pf for callTile's: 0 (none) stays,
// else 2 (one stream) for rows that lie back to back, 1 (each row) for
// others.
func avx512TilePF(pf int, backToBack bool) int {
	switch {
	case pf == 0:
		return 0
	case backToBack:
		return 2
	}
	return 1
}

func callFloat(k kernel, w *byte, stride, n int, x *float32, out *[4]float32) {
	switch k {
	case kDotF32x4AVX2:
		dotF32x4AVX2(w, stride, n, x, out)
	case kDotF32x4AVX512:
		dotF32x4AVX512(w, stride, n, x, out)
	case kDotF16x4AVX2:
		dotF16x4AVX2(w, stride, n, x, out)
	case kDotF16x4AVX512:
		dotF16x4AVX512(w, stride, n, x, out)
	case kDotBF16x4AVX2:
		dotBF16x4AVX2(w, stride, n, x, out)
	case kDotBF16x4AVX512:
		dotBF16x4AVX512(w, stride, n, x, out)
	default:
		panic("ops: no float kernel")
	}
}

// callFloatRows runs the many-row float kernel k over rows (a multiple of
// 4).
func callFloatRows(k kernel, w *byte, stride, n, rows int, x *float32, out *float32) {
	switch k {
	case kDotF32RowsAVX2:
		dotF32RowsAVX2(w, stride, n, rows, x, out)
	case kDotF16RowsAVX2:
		dotF16RowsAVX2(w, stride, n, rows, x, out)
	case kDotBF16RowsAVX2:
		dotBF16RowsAVX2(w, stride, n, rows, x, out)
	case kDotF32RowsAVX512:
		dotF32RowsAVX512(w, stride, n, rows, x, out)
	case kDotF16RowsAVX512:
		dotF16RowsAVX512(w, stride, n, rows, x, out)
	case kDotBF16RowsAVX512:
		dotBF16RowsAVX512(w, stride, n, rows, x, out)
	default:
		panic("ops: no many-row float kernel")
	}
}

func callBlock(k kernel, w *byte, stride, nb int, xq *int8, xd *float32, out *[4]float32) {
	switch k {
	case kDotQ8x4AVX2:
		dotQ8x4AVX2(w, stride, nb, xq, xd, out)
	case kDotQ8x4AVX512:
		dotQ8x4AVX512(w, stride, nb, xq, xd, out)
	case kDotQ4x4AVX2:
		dotQ4x4AVX2(w, stride, nb, xq, xd, out)
	case kDotQ4x4AVX512:
		dotQ4x4AVX512(w, stride, nb, xq, xd, out)
	default:
		panic("ops: no block kernel")
	}
}

// product is one prepared call of MatVec or MatMul: what every row range
// needs, shared read-only by the Pool's workers.
type product struct {
	dst []float32
	w   Matrix
	rb  int // row stride in bytes (Matrix.stride)
	x   []float32
	n   int
	k   typeKernels // what the current level runs for w.Type
	xq  []int8      // n x Cols quantised activations (block kernels)
	xd  []float32   // n x Cols/32 their scales
}

// qscratch holds quantised activations; its slices only grow.
type qscratch struct {
	q []int8
	d []float32
}

func (s *qscratch) size(vals int) ([]int8, []float32) {
	if cap(s.q) < vals {
		s.q = make([]int8, vals)
		s.d = make([]float32, vals/quant.BlockSize)
	}
	return s.q[:vals], s.d[:vals/quant.BlockSize]
}

// qpool lends scratch to the package-level MatVec and MatMul.
var qpool = sync.Pool{New: func() any { return new(qscratch) }}

// prepare fills pr for the product of w with n rows of x, quantising the
// activations into s when the block kernels are used. It reports whether s
// was used.
func (pr *product) prepare(dst []float32, w Matrix, rb int, x []float32, n int, s *qscratch) {
	*pr = product{dst: dst, w: w, rb: rb, x: x, n: n}
	pr.k = kernelsFor(w.Type)
	if pr.k.block {
		pr.xq, pr.xd = s.size(len(x))
		QuantizeQ8(pr.xq, pr.xd, x)
	}
}

// usesScratch reports whether w's products quantise their activations.
func usesScratch(t quant.Type) bool {
	return kernelsFor(t).block
}

// rows computes output rows lo..hi-1 for every token.
func (pr *product) rows(lo, hi int) {
	switch {
	case pr.k.row == kNone:
		matMulRows(pr.dst, pr.w, pr.rb, pr.x, pr.n, lo, hi)
	case pr.k.block:
		pr.blockRows(lo, hi)
	default:
		pr.floatRows(lo, hi)
	}
}

// tileRows returns how many weight rows MatMul keeps hot while every token
// passes over them: about 32 KiB of weights, a multiple of 4 rows.
func tileRows(rb int) int {
	return max(4, (32<<10)/max(rb, 1)&^3)
}

// floatRows is the SIMD path for F32, F16 and BF16. A row's sum is the
// kernel's (lanes-wide accumulator over the first Cols - Cols%lanes
// columns, reduced by a fixed tree) plus the remaining columns added one by
// one in order (floatTail), whichever rows and tokens it is computed with.
func (pr *product) floatRows(lo, hi int) {
	C, R := pr.w.Cols, pr.w.Rows
	if pr.n > 1 && C >= pr.k.lanes && pr.k.tile != kNone && pr.n >= pr.k.tileTokens && hi-lo >= 4 {
		pr.floatTiles(lo, hi)
		return
	}
	step := hi - lo
	if pr.n > 1 {
		step = tileRows(pr.rb)
	}
	for r0 := lo; r0 < hi; r0 += step {
		r1 := min(r0+step, hi)
		for t := 0; t < pr.n; t++ {
			pr.floatRowsTok(pr.dst[t*R:(t+1)*R], pr.x[t*C:(t+1)*C], r0, r1)
		}
	}
}

// floatTiles computes rows lo..hi-1 (at least 4) of every token with the
// tile kernel (4 rows x tileTokens tokens a call): each group of 4 rows stays in
// the L1 cache while the tokens pass over it. The rows and tokens left over
// go through floatRowsTok, which gives the same bits.
func (pr *product) floatTiles(lo, hi int) {
	C, R, rb := pr.w.Cols, pr.w.Rows, pr.rb
	t, data := pr.w.Type, pr.w.Data
	tk, tt := pr.k.tile, pr.k.tileTokens
	nv := C &^ (pr.k.lanes - 1)
	nt := pr.n - pr.n%tt
	var tab *[1 << 16]float32
	if t == quant.F16 && nv < C {
		tab = f16Table()
	}
	var pf groupPrefetch
	group, kpf := tilePrefetching(pr.k.tilePrefetch, nt/tt)
	r := lo
	for ; r+4 <= hi; r += 4 {
		pf.start(group, data, rb, r, hi, nt/tt)
		for tok := 0; tok < nt; tok += tt {
			pf.step()
			callTile(tk, &data[r*rb], rb, nv, &pr.x[tok*C], 4*C, &pr.dst[tok*R+r], 4*R, kpf)
		}
		if nv == C {
			continue
		}
		for tok := 0; tok < nt; tok++ {
			x := pr.x[tok*C : (tok+1)*C]
			for i := r; i < r+4; i++ {
				pr.dst[tok*R+i] = floatTail(pr.dst[tok*R+i], t, tab, data[i*rb:], x, nv)
			}
		}
	}
	for tok := 0; tok < pr.n; tok++ {
		r0 := r
		if tok >= nt {
			r0 = lo
		}
		if r0 < hi {
			pr.floatRowsTok(pr.dst[tok*R:(tok+1)*R], pr.x[tok*C:(tok+1)*C], r0, hi)
		}
	}
}

// tilePrefetching returns how a product's tiles prefetch, with calls tile
// calls per group of four rows: by groupPrefetch (group), or in the tile
// kernel (kpf = 1, its pf argument). groupPrefetch needs several calls to
// spread a group's lines over: given them all before one call, most were
// dropped (int8 batch-2 LM head at avx2: 3.8-4.5 ms -> 6.1-6.7 ms).
// gpf: the level's tiles take pf (typeKernels.tilePrefetch).
func tilePrefetching(gpf bool, calls int) (group bool, kpf int) {
	if gpf && calls >= groupPrefetchCalls {
		return true, 0
	}
	return false, 1
}

// groupPrefetchCalls is the fewest tile calls per group of rows for which
// groupPrefetch replaces the kernel's own prefetch.
const groupPrefetchCalls = 4

// groupPrefetch brings the next group of four weight rows into the cache
// while the tile kernel computes the current one, a share of its lines
// before each of the group's calls (one call per tileTokens tokens), so
// that the weights stream from memory at an even pace through the whole
// group instead of all at once during its first call, with the cores
// waiting, and are in the cache by the time the next group starts. The
// AVX2 tiles are then called without their own prefetch (pf = 0,
// typeKernels.tilePrefetch): their load ports are the bound once the
// weights are in the cache, and a PREFETCHT0 per row and step in every
// call, most of them for lines already there, took a fifth of the prefill
// tile's speed (BENCHMARKS.md). The AVX-512 int8 tile likewise (int8
// prefill 1.19x faster on Zen 4).
type groupPrefetch struct {
	next  []byte // what is left to prefetch of the next group
	share int    // bytes per call, a multiple of 64
}

// start aims the prefetches of the group at rows r..r+3 of the rows
// 0..hi-1 at data (row stride rb; the last row may be shorter, as in a
// column view) at the group of four rows pfBytes or more ahead (none past
// hi), a share for each of calls calls; it sets nothing to do when on is
// false. A group ahead rather than the next one: when a group's calls are
// few (a batched step of two or three sequences has one), the memory's
// latency needs the lead.
func (g *groupPrefetch) start(on bool, data []byte, rb, r, hi, calls int) {
	g.next = nil
	r += 4 * max(1, (pfBytes+4*rb-1)/(4*rb))
	if !on || calls < 1 || r >= hi {
		return
	}
	g.next = data[r*rb : min(min(r+4, hi)*rb, len(data))]
	g.share = (len(g.next)/calls + 63) &^ 63
}

// pfBytes is how far ahead groupPrefetch prefetches at least: PF, the
// row kernels' distance (q8z_amd64.h).
const pfBytes = 8192

// step prefetches the next share.
func (g *groupPrefetch) step() {
	if len(g.next) == 0 {
		return
	}
	k := min(g.share, len(g.next))
	prefetchLines(&g.next[0], k)
	g.next = g.next[k:]
}

// floatTail returns s plus the products of columns nv.. of row and x, added
// in column order.
func floatTail(s float32, t quant.Type, tab *[1 << 16]float32, row []byte, x []float32, nv int) float32 {
	for c := nv; c < len(x); c++ {
		s += wAt(t, tab, row, c) * x[c]
	}
	return s
}

func (pr *product) floatRowsTok(dst, x []float32, lo, hi int) {
	t, data, rb := pr.w.Type, pr.w.Data, pr.rb
	C := len(x)
	nv := C &^ (pr.k.lanes - 1)
	var tab *[1 << 16]float32
	if t == quant.F16 && nv < C {
		tab = f16Table()
	}
	if pr.k.rows != kNone && nv == C && nv > 0 && hi-lo >= 8 && rb == pr.w.RowBytes() {
		// Rows back to back (not a column view): its linear prefetch
		// covers them.
		n4 := (hi - lo) &^ 3
		callFloatRows(pr.k.rows, &data[lo*rb], rb, nv, n4, &x[0], &dst[lo])
		lo += n4
	}
	var out [4]float32
	for r := lo; r < hi; {
		g, stride := 4, rb
		if hi-r < 4 {
			g, stride = 1, 0
		}
		if nv > 0 {
			callFloat(pr.k.row, &data[r*rb], stride, nv, &x[0], &out)
		}
		for i := 0; i < g; i++ {
			dst[r+i] = floatTail(out[i], t, tab, data[(r+i)*rb:], x, nv)
		}
		r += g
	}
}

// blockRows is the SIMD path for Q8_0 and Q4_0, on the quantised
// activations.
func (pr *product) blockRows(lo, hi int) {
	C := pr.w.Cols
	nb := C / quant.BlockSize
	if pr.k.tile != kNone && pr.n >= pr.k.tileTokens && nb > 0 && hi-lo >= 4 {
		if pr.w.Type == quant.Q4_0 {
			pr.q4Tiles(lo, hi)
		} else {
			pr.q8Tiles(lo, hi)
		}
		return
	}
	step := hi - lo
	if pr.n > 1 {
		step = tileRows(pr.rb)
	}
	for r0 := lo; r0 < hi; r0 += step {
		r1 := min(r0+step, hi)
		for t := 0; t < pr.n; t++ {
			pr.blockRowsTok(t, r0, r1)
		}
	}
}

// blockRowsTok computes rows lo..hi-1 of token t with the row kernel.
func (pr *product) blockRowsTok(t, lo, hi int) {
	C, R := pr.w.Cols, pr.w.Rows
	nb := C / quant.BlockSize
	dst := pr.dst[t*R : (t+1)*R]
	if nb == 0 {
		clear(dst[lo:hi])
		return
	}
	xq, xd := &pr.xq[t*C], &pr.xd[t*nb]
	if hi-lo >= 8 && pr.rb == nb*quant.Q8_0BlockBytes {
		// Rows back to back (not a column view): the many-row kernels'
		// linear prefetch covers them.
		n4 := (hi - lo) &^ 3
		switch {
		case pr.k.rows == kDotQ8RowsAVX512 && nb%2 == 0:
			dotQ8RowsAVX512(&pr.w.Data[lo*pr.rb], pr.rb, nb, n4, xq, xd, &dst[lo])
			lo += n4
		case pr.k.rows == kDotQ8RowsAVX2:
			dotQ8RowsAVX2(&pr.w.Data[lo*pr.rb], pr.rb, nb, n4, xq, xd, &dst[lo])
			lo += n4
		}
	}
	var out [4]float32
	for r := lo; r < hi; {
		if hi-r >= 4 {
			callBlock(pr.k.row, &pr.w.Data[r*pr.rb], pr.rb, nb, xq, xd, &out)
			dst[r], dst[r+1], dst[r+2], dst[r+3] = out[0], out[1], out[2], out[3]
			r += 4
		} else {
			callBlock(pr.k.row, &pr.w.Data[r*pr.rb], 0, nb, xq, xd, &out)
			dst[r] = out[0]
			r++
		}
	}
}

// q8Tiles computes rows lo..hi-1 (at least 4) of every token with the Q8_0
// tile kernel (4 rows x tileTokens tokens a call); the rows and tokens left
// over go through blockRowsTok, which gives the same bits.
func (pr *product) q8Tiles(lo, hi int) {
	r := lo + (hi-lo)&^3
	pr.tileQ8Rows(pr.w.Data[lo*pr.rb:], pr.rb, lo, r, true)
	pr.tileLeftovers(lo, r, hi)
}

// q4TileBytes is the stack buffer q4Tiles widens int4 rows into: about
// 32 KiB of Q8_0 rows, which stay in the L1 cache while the tokens pass.
const q4TileBytes = 32 << 10

// q4Tiles computes rows lo..hi-1 (at least 4) of every token of an int4
// product with the Q8_0 tile kernel: each group of rows is first widened
// to Q8_0 blocks (the weights q-8 as int8, the same f16 scales) in a stack
// buffer, which is exact, so the tile kernel forms the int4 row kernel's
// integers and gives its bits (TestMatMulTiles) while each weight is
// unpacked once for all the tokens instead of once per token. The rows and
// tokens left over go through blockRowsTok.
func (pr *product) q4Tiles(lo, hi int) {
	nb := pr.w.Cols / quant.BlockSize
	rb8 := nb * quant.Q8_0BlockBytes
	step := (q4TileBytes / rb8) &^ 3
	r := lo
	if step >= 4 {
		var buf [q4TileBytes]byte
		for ; r+4 <= hi; r += step {
			n := min(step, (hi-r)&^3)
			widenQ4(buf[:n*rb8], pr.w.Data[r*pr.rb:], pr.rb, n, nb)
			pr.tileQ8Rows(buf[:n*rb8], rb8, r, r+n, false)
			if n < step {
				r += n
				break
			}
		}
	}
	pr.tileLeftovers(lo, r, hi)
}

// tileQ8Rows runs the Q8_0 tile kernel on rows lo..hi-1 (a multiple of 4)
// for every whole group of tileTokens tokens (4 for tileQ8AVX512, 2 for
// tileQ8AVX2: its 16 registers hold 4 rows x 2 tokens of accumulators), row r's weights at
// w[(r-lo)*rb:]. prefetch: w is the matrix in memory, whose rows are
// prefetched (tilePrefetching), not q4Tiles' widened rows in the L1 cache.
func (pr *product) tileQ8Rows(w []byte, rb, lo, hi int, prefetch bool) {
	C, R := pr.w.Cols, pr.w.Rows
	nb := C / quant.BlockSize
	tt := pr.k.tileTokens
	nt := pr.n - pr.n%tt
	var pf groupPrefetch
	group, kpf := tilePrefetching(prefetch && pr.k.tilePrefetch, nt/tt)
	if !prefetch {
		kpf = 0
	}
	// The stack buffer of tileQ8T4AVX2's token scales (four a block, a
	// run of nb blocks for each four tokens) or of tileQ8DAVX2's row
	// scales (four a block).
	var scales [tileScaleBlocks * 4]float32
	// Four to t4Tokens-1 tokens at AVX2 (a batched decode step of a few
	// sequences): each four of them in one pass over the rows, two rows at
	// a time (tileQ8T4AVX2), so that the weights stream from memory while
	// the first four tokens' arithmetic runs (not during the first of
	// several two-token calls), and the next fours find the two rows in
	// the L1 cache. The two-token calls after them find the rows in the
	// cache too.
	first, kpf4 := 0, 0
	if quads := pr.n / 4; pr.k.tile == kTileQ8AVX2 && quads >= 1 && pr.n < t4Tokens && quads*nb <= tileScaleBlocks {
		first, group, kpf = 4*quads, false, 0
		if prefetch {
			kpf4 = 1
		}
		for q := range quads {
			for b := 0; b < nb; b++ {
				for t := 0; t < 4; t++ {
					scales[4*(q*nb+b)+t] = pr.xd[(4*q+t)*nb+b]
				}
			}
		}
	}
	// Many pairs of tokens at AVX2 (prefill): each group's scales are
	// converted to float32 once, not once per pair (tileQ8DAVX2).
	convert := pr.k.tile == kTileQ8AVX2 && first == 0 && nt/tt >= 2 && nb <= tileScaleBlocks
	for r := lo; r+4 <= hi; r += 4 {
		for h := r; first > 0 && h < r+4; h += 2 { // the fours, two rows a call
			for q := 0; q < first/4; q++ {
				pfq := kpf4
				if q > 0 {
					pfq = 0
				}
				tileQ8T4AVX2(&w[(h-lo)*rb], rb, nb, &pr.xq[4*q*C], C, &scales[4*q*nb], &pr.dst[4*q*R+h], 4*R, pfq)
			}
		}
		pf.start(group, w, rb, r-lo, hi-lo, (nt-first)/tt)
		if convert {
			g := w[(r-lo)*rb:]
			for i := 0; i < 4; i++ {
				row := g[i*rb:]
				for b := 0; b < nb; b++ {
					scales[4*b+i] = quant.F16ToF32(binary.LittleEndian.Uint16(row[b*quant.Q8_0BlockBytes:]))
				}
			}
			for tok := 0; tok < nt; tok += tt {
				pf.step()
				tileQ8DAVX2(&g[0], rb, nb, &pr.xq[tok*C], C, &pr.xd[tok*nb], &pr.dst[tok*R+r], 4*R, kpf, &scales[0])
			}
			continue
		}
		for tok := first; tok < nt; tok += tt {
			pf.step()
			callBlockTile(pr.k.tile, &w[(r-lo)*rb], rb, nb, &pr.xq[tok*C], C, &pr.xd[tok*nb], &pr.dst[tok*R+r], 4*R, kpf)
		}
	}
}

// t4Tokens bounds the products that take tileQ8T4AVX2 for each four of
// their tokens: up to 23 tokens (a batched step of up to 23 sequences) it
// beat the two-token tiles, whose first call per group of rows streams
// the rows from memory while the others wait on it. 24 x 768 x 1536
// int8 products of n tokens, Pool of 2, AVX2, min of 15 rounds (ms per
// token, two-token tiles -> tileQ8T4AVX2 fours): n=8 0.83 -> 0.46-0.67,
// n=12 0.83 -> 0.45-0.47, n=16 0.67-0.74 -> 0.45-0.59, n=20 0.63 ->
// 0.51-0.59; at 24 the scales of 48-block rows no longer fit its buffer.
const t4Tokens = 24

// tileScaleBlocks is the most blocks a row (8192 columns) may have for
// tileQ8Rows to lay out four rows' or four tokens' scales in its stack
// buffer (tileQ8DAVX2, tileQ8T4AVX2); longer rows take tileQ8AVX2 alone.
const tileScaleBlocks = 256

// tileLeftovers computes, with the row kernel, what the tiles left of rows
// lo..hi-1: rows done..hi-1 of the tokens in whole tiles, and every row of
// the tokens after them.
func (pr *product) tileLeftovers(lo, done, hi int) {
	tt := pr.k.tileTokens
	nt := pr.n - pr.n%tt
	for tok := 0; tok < pr.n; tok++ {
		r0 := done
		if tok >= nt {
			r0 = lo
		}
		if r0 < hi {
			pr.blockRowsTok(tok, r0, hi)
		}
	}
}

// nibblesToInt8 maps eight bytes 0..15 to eight int8 values -8..7.
func nibblesToInt8(v uint64) uint64 {
	const high, eight = 0x8080808080808080, 0x0808080808080808
	return ((v | high) - eight) ^ high
}

// widenQ4 writes rows Q4_0 rows of nb blocks (src, stride bytes apart) as
// Q8_0 rows into dst, back to back: each block's f16 scale as it is, and
// its 32 weights q-8 (q the nibble; element j is byte j's low nibble,
// element j+16 its high one) as int8. Eight nibbles at a time:
// ((q | 0x80) - 0x08) ^ 0x80 is q-8 in two's complement, with no borrow
// between bytes.
func widenQ4(dst, src []byte, stride, rows, nb int) {
	const (
		lowNibbles = 0x0f0f0f0f0f0f0f0f
		q4, q8     = quant.Q4_0BlockBytes, quant.Q8_0BlockBytes
	)
	o := 0
	for r := 0; r < rows; r++ {
		row := src[r*stride:]
		for b := 0; b < nb; b++ {
			blk := row[b*q4 : (b+1)*q4]
			out := dst[o : o+q8]
			out[0], out[1] = blk[0], blk[1]
			v0 := binary.LittleEndian.Uint64(blk[2:10])
			v1 := binary.LittleEndian.Uint64(blk[10:18])
			binary.LittleEndian.PutUint64(out[2:10], nibblesToInt8(v0&lowNibbles))
			binary.LittleEndian.PutUint64(out[10:18], nibblesToInt8(v1&lowNibbles))
			binary.LittleEndian.PutUint64(out[18:26], nibblesToInt8(v0>>4&lowNibbles))
			binary.LittleEndian.PutUint64(out[26:34], nibblesToInt8(v1>>4&lowNibbles))
			o += q8
		}
	}
}

// QuantizeQ8 quantises x per block of 32 values the way the int8 products
// do (llama.cpp's Q8_0 activations, with a float32 scale): for each block,
// d = max|x|/127, q = round-half-even(x/d) (0 when d is 0), so that
// |x - d*q| <= d/2 (up to float32 rounding of x*(1/d)). len(x) must be a
// multiple of 32, len(q) = len(x) and len(d) = len(x)/32.
//
//	for b := range d {
//		d[b] = max(|x[32b:32b+32]|) / 127
//		for i in the block { q[i] = roundEven(x[i] * (1/d[b])) }
//	}
func QuantizeQ8(q []int8, d []float32, x []float32) {
	const bs = quant.BlockSize
	if len(x)%bs != 0 || len(q) != len(x) || len(d) != len(x)/bs {
		panic(fmt.Sprintf("ops: QuantizeQ8 of %d values into %d quants and %d scales", len(x), len(q), len(d)))
	}
	if len(d) == 0 {
		return
	}
	switch cur().quantize {
	case kQuantQ8AVX2:
		quantQ8AVX2(&q[0], &d[0], &x[0], len(d))
	case kQuantQ8AVX512:
		quantQ8AVX512(&q[0], &d[0], &x[0], len(d))
	default:
		quantizeQ8Go(q, d, x)
	}
}

// quantizeQ8Go is QuantizeQ8's loop, the oracle of its vector version.
func quantizeQ8Go(q []int8, d []float32, x []float32) {
	const bs = quant.BlockSize
	for b := range d {
		xs := (*[bs]float32)(x[b*bs:])
		qs := (*[bs]int8)(q[b*bs:])
		var amax float32
		for _, v := range xs {
			if v < 0 {
				v = -v
			}
			if v > amax {
				amax = v
			}
		}
		dd := amax / 127
		var id float32
		if dd != 0 {
			id = 1 / dd
		}
		d[b] = dd
		const magic = 0x1.8p23 // adding and subtracting it rounds half to even
		for i, v := range xs {
			r := float32(v*id+magic) - magic
			qs[i] = int8(int32(r))
		}
	}
}
