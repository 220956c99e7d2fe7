// Package runtime runs a MemMamba or Mamba-1 model from the project's model
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
package runtime

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
	// Backend runs the dense blocks: "native" (the default, "" too) or
	// "ort" (ONNX Runtime; the conv, scan and Note Block pools stay in Go).
	Backend string
	// ORT configures the "ort" backend.
	ORT ORTOptions
	// MaxMemory, when positive, is the most bytes the model with one session may need (MemoryNeeded); 0 means the machine's memory.
	MaxMemory int64
}

// Backends lists the values of Options.Backend.
var Backends = []string{"native", "ort"}

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

	// ort is the ONNX Runtime backend; nil for the native one.
	ort *ortBackend

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

	// The gate's fused form (native backend, fuseGate): gateR is the view
	// of W_gate's first d columns (no copy) and gateM the d x A matrix
	// W_gate[:, d:] W_o (float32, or int8 for block-quantised models).
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
	w.gateR, w.gateM = gr, mm
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
	switch opts.Backend {
	case "", "native":
		m.fuseGates()
	case "ort":
		if m.ort, err = newORTBackend(m, path, opts); err != nil {
			m.Close()
			return nil, err
		}
	default:
		m.Close()
		return nil, fmt.Errorf("unknown backend %q (want native or ort)", opts.Backend)
	}
	return m, nil
}

// Close unmaps the file and stops the worker pool. Sessions of the model
// must not be used afterwards.
func (m *Model) Close() error {
	if m.ort != nil {
		m.ort.close()
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

// Threads is the number of worker threads of the dense kernels.
func (m *Model) Threads() int { return m.pool.Threads() }

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
	d, E, N, K, R := c.HiddenSize, c.Intermediate, c.StateSize, c.ConvKernel, c.TimeStepRank
	m.emb = b.matrix(arch.EmbeddingsName, c.VocabSize, d)
	m.normF = b.vec(arch.NormFName, d)
	if _, ok := f.Tensor(arch.LMHeadName); ok || !c.TieEmbeddings {
		m.lmHead = b.matrix(arch.LMHeadName, c.VocabSize, d)
	} else {
		m.lmHead = m.emb
	}
	m.layers = make([]layerWeights, c.NumLayers)
	for l := range m.layers {
		p := arch.LayerPrefix(l)
		mx := p + "mixer."
		lw := &m.layers[l]
		lw.norm = b.vec(p+"norm.weight", d)
		w := &lw.mixer
		w.inProj = b.matrix(mx+"in_proj.weight", 2*E, d)
		w.xProj = b.matrix(mx+"x_proj.weight", R+2*N, E)
		w.dtProj = b.matrix(mx+"dt_proj.weight", E, R)
		w.outProj = b.matrix(mx+"out_proj.weight", d, E)
		if c.UseBias {
			w.inBias = b.vec(mx+"in_proj.bias", 2*E)
			w.outBias = b.vec(mx+"out_proj.bias", d)
		}
		w.convW = b.vecShape(mx+"conv1d.weight", E, 1, K)
		if c.UseConvBias {
			w.convB = b.vec(mx+"conv1d.bias", E)
		}
		w.dtBias = b.vec(mx+"dt_proj.bias", E)
		aLog := b.vecShape(mx+"A_log", E, N)
		if aLog != nil {
			w.A = make([]float32, len(aLog))
			for i, v := range aLog {
				w.A[i] = float32(-math.Exp(float64(v)))
			}
		}
		w.D = b.vec(mx+"D", E)
		if c.IsMemMamba() {
			lw.note = b.note(p+"note.", c.HasCrossLayer(l))
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

// binder looks tensors up by name, checks their shapes and collects errors.
type binder struct {
	f    *format.File
	c    *arch.Config
	errs []error
}

func (b *binder) tensor(name string, shape ...int) (format.Tensor, bool) {
	t, ok := b.f.Tensor(name)
	if !ok {
		b.errs = append(b.errs, fmt.Errorf("tensor %q is missing", name))
		return t, false
	}
	if !arch.ShapeEqual(t.Shape, shape) {
		b.errs = append(b.errs, fmt.Errorf("tensor %q has shape %v, the config calls for %v", name, t.Shape, shape))
		return t, false
	}
	return t, true
}

func (b *binder) matrix(name string, rows, cols int) ops.Matrix {
	t, ok := b.tensor(name, rows, cols)
	if !ok {
		return ops.Matrix{}
	}
	mat, err := ops.NewMatrix(t.Type, rows, cols, t.Data)
	if err != nil {
		b.errs = append(b.errs, fmt.Errorf("tensor %q: %w", name, err))
	}
	return mat
}

func (b *binder) vec(name string, n int) []float32 { return b.vecShape(name, n) }

// vecShape returns a small tensor as float32: in place when it is stored as
// f32 (the converter keeps every vector f32), decoded otherwise.
func (b *binder) vecShape(name string, shape ...int) []float32 {
	t, ok := b.tensor(name, shape...)
	if !ok {
		return nil
	}
	n := 1
	for _, d := range shape {
		n *= d
	}
	if t.Type == quant.F32 && nativeLittleEndian && uintptr(unsafe.Pointer(unsafe.SliceData(t.Data)))%4 == 0 {
		return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(t.Data))), n)
	}
	out := make([]float32, n)
	if err := quant.Decode(t.Type, out, t.Data); err != nil {
		b.errs = append(b.errs, fmt.Errorf("tensor %q: %w", name, err))
	}
	return out
}

func (b *binder) scalar(name string) float32 {
	v := b.vecShape(name, 1)
	if len(v) != 1 {
		return 0
	}
	return v[0]
}

func (b *binder) note(p string, cross bool) *noteWeights {
	c := b.c
	mem := c.Memory
	d := c.HiddenSize
	nw := &noteWeights{
		fc1:      b.matrix(p+"score.fc1.weight", mem.ScoreDim, d),
		fc1B:     b.vec(p+"score.fc1.bias", mem.ScoreDim),
		fc2:      b.matrix(p+"score.fc2.weight", 1, mem.ScoreDim),
		fc2B:     b.scalar(p + "score.fc2.bias"),
		trigger:  b.matrix(p+"trigger.weight", 1, d),
		triggerB: b.scalar(p + "trigger.bias"),
		summary:  b.matrix(p+"summary.weight", mem.SummaryDim, d),
		tok:      b.attend(p + "token_attn."),
	}
	if cross {
		a := b.attend(p + "layer_attn.")
		nw.lay = &a
	}
	return nw
}

func (b *binder) attend(p string) attendWeights {
	c := b.c
	mem, d := c.Memory, c.HiddenSize
	return attendWeights{
		norm:  b.vec(p+"norm.weight", d),
		q:     b.matrix(p+"q_proj.weight", mem.AttnDim, d),
		k:     b.matrix(p+"k_proj.weight", mem.AttnDim, mem.SummaryDim),
		v:     b.matrix(p+"v_proj.weight", mem.AttnDim, mem.SummaryDim),
		o:     b.matrix(p+"o_proj.weight", d, mem.AttnDim),
		gate:  b.matrix(p+"gate.weight", d, 2*d),
		gateB: b.vec(p+"gate.bias", d),
	}
}

var nativeLittleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()
