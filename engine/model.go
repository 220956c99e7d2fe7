// Package engine runs a MemMamba or Mamba-1 model from the project's model
// file, natively in Go: a Model is the loaded, read-only weights (memory
// mapped, used in place), shared by any number of Sessions; a Session is one
// sequence's recurrent state (SPEC.md: the conv window, the SSM state, the
// previous mixer output, the Note Block pools and the position) with prefill,
// step, logits, Reset, Clone, Save and Load.
//
// Prefill and step are one code path: a chunk of T tokens goes through each
// layer as matrix-matrix products, a convolution and a scan over the chunk;
// only the Note Block's pool bookkeeping and its attention over the pools
// walk the tokens one by one, as SPEC.md allows. A step is the chunk of one
// token, so prefill and stepping give the same numbers.
//
// The package is the engine. Its dense blocks (DenseBlocks: the norms, the
// projections, the Note Block's scorers and gates, the LM head) run on a
// backend: the native Go kernels, built in, or one that registers itself
// by name (RegisterBackend), as engine/ortbackend does for ONNX Runtime;
// the engine imports none of them. (It was package runtime until issue 20:
// the name shadowed the standard library's, which callers had to alias.)
//
// # Dimensions
//
// The code names sizes with the symbols of ../shared/SPEC.md (its
// "Notation and configuration" table), as package ops does:
//
//	d  hidden size (the residual stream)
//	E  the mixer's inner size: channels of the conv and the scan
//	N  the scan's state size per channel
//	K  the conv's kernel width
//	R  the time-step rank (dt_proj's input)
//	A  the Note Block's attention width, split into H heads of dh = A/H
//	S  the width of a pool entry's summary
//	T  tokens in one pass (a prefill chunk, 1 for a decode step, or the
//	   rows of a Batch's pass over several sequences)
//	V  vocabulary size (the LM head's rows)
package engine

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"unsafe"

	"github.com/memmamba/memmamba/arch"
	"github.com/memmamba/memmamba/format"
	"github.com/memmamba/memmamba/ops"
	"github.com/memmamba/memmamba/quant"
	"github.com/memmamba/memmamba/tokenizer"
)

// Options configure Open.
type Options struct {
	// Threads is the number of worker threads for the dense kernels;
	// 0 means GOMAXPROCS.
	Threads int
	// VerifyChecksums checks every tensor's checksum at load (reads the
	// whole file once).
	VerifyChecksums bool
	// Backend runs the dense blocks: "native" (the default, "" too) or a
	// backend registered under that name (RegisterBackend): "ort", ONNX
	// Runtime, once a program imports engine/ortbackend. The conv, the
	// scan and the Note Block pools stay in Go on every backend.
	Backend string
	// BackendOptions configure the backend named by Backend (for "ort":
	// an ortbackend.Options); nil takes its defaults.
	BackendOptions any
	// MaxMemory, when positive, is the most bytes the model with one session may need (MemoryNeeded); 0 means the machine's memory.
	MaxMemory int64
}

// Model is a loaded model: configuration, tokenizer description and weights
// bound by name. It is read-only and safe for concurrent use by any number
// of sessions.
type Model struct {
	Config *arch.Config
	// Header is the model file's header (tokenizer, provenance, metadata).
	Header *format.Header
	// ID identifies the weights (a digest of the config and the tensor
	// checksums); a saved state records it, so that a state is never
	// loaded into another model.
	ID string

	file   *format.File
	pool   *ops.Pool
	emb    ops.Matrix
	lmHead ops.Matrix
	normF  []float32
	layers []layerWeights
	// reader[l] is the layer whose cross-layer attention reads layer l's
	// pool (Config.CrossLayerGroup's hi), or -1.
	reader []int

	// backend runs the dense blocks; nil for the native one.
	backend Backend

	tokOnce sync.Once
	tok     tokenizer.Tokenizer
	tokErr  error
}

type layerWeights struct {
	norm  []float32
	mixer mixerWeights
	note  *noteWeights
}

type mixerWeights struct {
	inProj, xProj, dtProj, outProj ops.Matrix
	inBias, outBias                []float32 // nil without use_bias
	convW, convB                   []float32 // E x K; convB nil without use_conv_bias
	dtBias                         []float32
	A                              []float32 // -exp(A_log), E x N
	D                              []float32
}

type noteWeights struct {
	fc1, fc2, trigger, summary ops.Matrix
	fc1B                       []float32
	fc2B, triggerB             float32
	tok                        attendWeights
	lay                        *attendWeights // nil unless the layer has cross-layer attention
}

type attendWeights struct {
	norm       []float32
	q, k, v, o ops.Matrix
	gate       ops.Matrix // d x 2d
	gateB      []float32

	// The gate's fused form (native backend, fuseGate): gateR is W_gate's
	// first d columns (a view, or for block-quantised models a contiguous
	// copy of the same blocks) and gateM the d x A matrix W_gate[:, d:] W_o
	// (float32, or int8 for block-quantised models).
	// Zero when the form does not pay (A > d/2) or the columns do not
	// split on blocks.
	gateR, gateM ops.Matrix
}

// fuseGate computes the gate's fused form: W_gate [r; o] = W_gate[:, :d] r
// + (W_gate[:, d:] W_o) att, which reads d x d + d x A weights per row
// instead of d x 2d (the SPEC's order of operations is W_o first, then the
// gate over [r; o]; the two differ by float rounding only). M = W_gate[:,
// d:] W_o is computed once here with the pool's own product: row t of
// W_o's transpose times the right half of the gate gives column t of M.
func (w *attendWeights) fuseGate(p *ops.Pool, d, A int, sc *fuseScratch) {
	if 2*A > d {
		return
	}
	gr, err := w.gate.Columns(0, d)
	if err != nil {
		return
	}
	gateO, err := w.gate.Columns(d, 2*d)
	if err != nil {
		return
	}
	if len(sc.wo) != d*A {
		sc.wo, sc.woT, sc.mT = make([]float32, d*A), make([]float32, A*d), make([]float32, A*d)
	}
	wo, woT, mT := sc.wo, sc.woT, sc.mT
	for r := range d {
		w.o.DequantRow(wo[r*A:(r+1)*A], r)
	}
	for r := range d {
		for c := range A {
			woT[c*d+r] = wo[r*A+c]
		}
	}
	p.MatMul(mT, gateO, woT, A)
	m := wo // reuse: M in row-major d x A
	for r := range d {
		for c := range A {
			m[r*A+c] = mT[c*d+r]
		}
	}
	// M keeps float32 unless the gate is block-quantised: then Q8_0 (its
	// rows are A wide), a quarter of the bytes, which is what decode reads.
	typ := quant.F32
	if t := w.gate.Type; (t == quant.Q8_0 || t == quant.Q4_0) && A%quant.BlockSize == 0 {
		typ = quant.Q8_0
	}
	raw, err := quant.Quantize(typ, m)
	if err != nil { // a non-finite product: keep the SPEC's form
		return
	}
	mm, err := ops.NewMatrix(typ, d, A, raw)
	if err != nil {
		return
	}
	if gr.Type == quant.Q8_0 {
		// A column view's rows are 2x their bytes apart, which the int8
		// many-row kernel's linear prefetch cannot follow (it takes the
		// four-row kernel, which streamed these 0.6 MB products at half
		// the rate of the rest); the same blocks back to back give the
		// same bits at the many-row kernel's rate. d x d int8 is within
		// the f32 left half MemoryNeeded budgets for it.
		gr = contiguous(gr)
	}
	w.gateR, w.gateM = gr, mm
}

// contiguous returns m with its rows copied back to back (Stride 0).
func contiguous(m ops.Matrix) ops.Matrix {
	rb := m.RowBytes()
	data := make([]byte, m.Rows*rb)
	for r := range m.Rows {
		copy(data[r*rb:], m.Row(r))
	}
	return ops.Matrix{Type: m.Type, Rows: m.Rows, Cols: m.Cols, Data: data}
}

// Open maps the model file at path and binds every tensor the
// configuration calls for. A missing or misshapen tensor is an error that
// names it.
func Open(path string, opts Options) (*Model, error) {
	if err := ops.SIMDError(); err != nil {
		return nil, err
	}
	f, err := format.Open(path, format.OpenOptions{VerifyChecksums: opts.VerifyChecksums})
	if err != nil {
		return nil, err
	}
	m, err := newModel(f, opts)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if opts.Backend == "" || opts.Backend == "native" {
		m.fuseGates()
		return m, nil
	}
	open, err := lookupBackend(opts.Backend)
	if err == nil {
		m.backend, err = open(m, path, opts)
	}
	if err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// Close unmaps the file and stops the worker pool. Sessions of the model
// must not be used afterwards.
func (m *Model) Close() error {
	if m.backend != nil {
		m.backend.Close()
	}
	m.pool.Close()
	return m.file.Close()
}

// DecodeWeightBytes returns the weight bytes one decode step reads when
// every Note Block retrieves: every tensor of the file once, except the
// embeddings, of which a step reads one row (unless they are the tied LM
// head), and, where the gate is fused (native backend), W_gate's left half
// and W_gate[:, d:] W_o instead of all of W_gate.
func (m *Model) DecodeWeightBytes() int64 {
	var n int64
	for _, t := range m.Header.Tensors {
		if t.Name != arch.EmbeddingsName || m.Config.TieEmbeddings {
			n += int64(t.Size)
		}
	}
	for _, lw := range m.layers {
		if lw.note == nil {
			continue
		}
		for _, w := range []*attendWeights{&lw.note.tok, lw.note.lay} {
			if w == nil || w.gateM.Rows == 0 {
				continue
			}
			n -= int64(len(w.gate.Data))
			n += int64(w.gateR.Rows*w.gateR.RowBytes() + len(w.gateM.Data))
		}
	}
	return n
}

// ProductMACs returns the multiply-adds of one token's dense products
// (rows x columns of each matrix it multiplies): those of the layers and
// those of the LM head. A Note Block's products are each counted once a
// token, as in DecodeWeightBytes (every block retrieving), and the fused
// gate's two matrices replace W_gate where it is fused. Prefill runs the
// LM head once a prompt, a batched decode step once a row, so at
// prefill's compute rate a batched step reaches layers/(layers+head) of
// prefill's tokens a second: the ceiling that mmrun bench --batch reports.
func (m *Model) ProductMACs() (layers, head int64) {
	macs := func(ms ...*ops.Matrix) (n int64) {
		for _, x := range ms {
			n += int64(x.Rows) * int64(x.Cols)
		}
		return n
	}
	for _, lw := range m.layers {
		w := &lw.mixer
		layers += macs(&w.inProj, &w.xProj, &w.dtProj, &w.outProj)
		if nw := lw.note; nw != nil {
			layers += macs(&nw.fc1, &nw.fc2, &nw.trigger, &nw.summary)
			for _, a := range []*attendWeights{&nw.tok, nw.lay} {
				if a == nil {
					continue
				}
				layers += macs(&a.q, &a.k, &a.v, &a.o)
				if a.gateM.Rows != 0 {
					layers += macs(&a.gateR, &a.gateM)
				} else {
					layers += macs(&a.gate)
				}
			}
		}
	}
	return layers, macs(&m.lmHead)
}

// Threads is the number of worker threads of the dense kernels.
func (m *Model) Threads() int { return m.pool.Threads() }

// Tensor returns the model file's tensor of that name, its data mapped in
// place (read-only), for a backend that builds its own form of the
// weights.
func (m *Model) Tensor(name string) (format.Tensor, bool) { return m.file.Tensor(name) }

func newModel(f *format.File, opts Options) (*Model, error) {
	if err := checkLoad(f, opts); err != nil {
		return nil, err
	}
	if f.Header.Config.ModelType == "" {
		return nil, errors.New("the file has no model configuration")
	}
	c := f.Header.Config
	if err := c.Validate(); err != nil {
		return nil, err
	}
	m := &Model{Config: &c, Header: &f.Header, file: f}
	b := binder{f: f, c: &c}
	m.emb = b.matrix(arch.WEmbeddings, 0)
	m.normF = b.vec(arch.WNormF, 0)
	if _, ok := f.Tensor(arch.LMHeadName); ok || !c.TieEmbeddings {
		m.lmHead = b.matrix(arch.WLMHead, 0)
	} else {
		m.lmHead = m.emb
	}
	m.layers = make([]layerWeights, c.NumLayers)
	for l := range m.layers {
		lw := &m.layers[l]
		lw.norm = b.vec(arch.WNorm, l)
		w := &lw.mixer
		w.inProj = b.matrix(arch.WInProj, l)
		w.xProj = b.matrix(arch.WXProj, l)
		w.dtProj = b.matrix(arch.WDtProj, l)
		w.outProj = b.matrix(arch.WOutProj, l)
		w.inBias = b.vec(arch.WInProjBias, l)
		w.outBias = b.vec(arch.WOutProjBias, l)
		w.convW = b.vec(arch.WConv, l)
		w.convB = b.vec(arch.WConvBias, l)
		w.dtBias = b.vec(arch.WDtProjBias, l)
		if aLog := b.vec(arch.WALog, l); aLog != nil {
			w.A = make([]float32, len(aLog))
			for i, v := range aLog {
				w.A[i] = float32(-math.Exp(float64(v)))
			}
		}
		w.D = b.vec(arch.WD, l)
		if c.IsMemMamba() {
			lw.note = b.note(l)
		}
	}
	if err := errors.Join(b.errs...); err != nil {
		return nil, err
	}
	m.reader = make([]int, c.NumLayers)
	for l := range m.reader {
		m.reader[l] = -1
		if _, hi, ok := c.CrossLayerGroup(l); ok {
			m.reader[l] = hi
		}
	}
	m.ID = modelID(f)
	m.pool = ops.NewPool(opts.Threads)
	return m, nil
}

// fuseScratch is fuseGate's work memory, shared by all the attentions.
type fuseScratch struct{ wo, woT, mT []float32 }

// fuseGates prepares every attention's fused gate (the native backend's).
func (m *Model) fuseGates() {
	c := m.Config
	if !c.IsMemMamba() {
		return
	}
	var sc fuseScratch
	for l := range m.layers {
		if nw := m.layers[l].note; nw != nil {
			nw.tok.fuseGate(m.pool, c.HiddenSize, c.Memory.AttnDim, &sc)
			if nw.lay != nil {
				nw.lay.fuseGate(m.pool, c.HiddenSize, c.Memory.AttnDim, &sc)
			}
		}
	}
}

// binder binds the weights of arch.Table by WeightID: it looks each up by
// its name, checks the shape the config gives it and collects errors. A
// weight the config does not call for (a bias switched off) binds to nil.
type binder struct {
	f    *format.File
	c    *arch.Config
	errs []error
}

// tensor returns weight id of layer l from the file; ok is false when the
// config does not call for it or it is missing or misshapen (an error).
func (b *binder) tensor(id arch.WeightID, l int) (t format.Tensor, w arch.Weight, ok bool) {
	w, want := b.c.Weight(id, l)
	if !want {
		return t, w, false
	}
	t, ok = b.f.Tensor(w.Name)
	if !ok {
		b.errs = append(b.errs, fmt.Errorf("tensor %q is missing", w.Name))
		return t, w, false
	}
	if !arch.ShapeEqual(t.Shape, w.Shape) {
		b.errs = append(b.errs, fmt.Errorf("tensor %q has shape %v, the config calls for %v", w.Name, t.Shape, w.Shape))
		return t, w, false
	}
	return t, w, true
}

// matrix binds a 2-D weight in its stored type.
func (b *binder) matrix(id arch.WeightID, l int) ops.Matrix {
	t, w, ok := b.tensor(id, l)
	if !ok {
		return ops.Matrix{}
	}
	mat, err := ops.NewMatrix(t.Type, w.Shape[0], w.Shape[1], t.Data)
	if err != nil {
		b.errs = append(b.errs, fmt.Errorf("tensor %q: %w", w.Name, err))
	}
	return mat
}

// vec returns a small tensor of any shape as float32, flattened: in place
// when it is stored as f32 (the converter keeps every vector f32), decoded
// otherwise.
func (b *binder) vec(id arch.WeightID, l int) []float32 {
	t, w, ok := b.tensor(id, l)
	if !ok {
		return nil
	}
	n := 1
	for _, d := range w.Shape {
		n *= d
	}
	if t.Type == quant.F32 && nativeLittleEndian && uintptr(unsafe.Pointer(unsafe.SliceData(t.Data)))%4 == 0 {
		return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(t.Data))), n)
	}
	out := make([]float32, n)
	if err := quant.Decode(t.Type, out, t.Data); err != nil {
		b.errs = append(b.errs, fmt.Errorf("tensor %q: %w", w.Name, err))
	}
	return out
}

// scalar binds a weight of shape [1].
func (b *binder) scalar(id arch.WeightID, l int) float32 {
	v := b.vec(id, l)
	if len(v) != 1 {
		return 0
	}
	return v[0]
}

// note binds layer l's Note Block.
func (b *binder) note(l int) *noteWeights {
	nw := &noteWeights{
		fc1:      b.matrix(arch.WScoreFC1, l),
		fc1B:     b.vec(arch.WScoreFC1Bias, l),
		fc2:      b.matrix(arch.WScoreFC2, l),
		fc2B:     b.scalar(arch.WScoreFC2Bias, l),
		trigger:  b.matrix(arch.WTrigger, l),
		triggerB: b.scalar(arch.WTriggerBias, l),
		summary:  b.matrix(arch.WSummary, l),
		tok:      b.attend(arch.TokenAttn, l),
	}
	if b.c.HasCrossLayer(l) {
		a := b.attend(arch.LayerAttn, l)
		nw.lay = &a
	}
	return nw
}

// attend binds one of layer l's attentions.
func (b *binder) attend(a arch.Attention, l int) attendWeights {
	return attendWeights{
		norm:  b.vec(a.Norm, l),
		q:     b.matrix(a.Q, l),
		k:     b.matrix(a.K, l),
		v:     b.matrix(a.V, l),
		o:     b.matrix(a.O, l),
		gate:  b.matrix(a.Gate, l),
		gateB: b.vec(a.GateBias, l),
	}
}

var nativeLittleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()
