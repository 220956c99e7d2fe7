package runtime

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"

	"github.com/memmamba/memmamba/arch"
	"github.com/memmamba/memmamba/format"
	"github.com/memmamba/memmamba/onnxgraph"
	"github.com/memmamba/memmamba/quant"
	"github.com/memmamba/memmamba/runtime/ort"
)

// The ONNX Runtime backend runs the dense blocks as ONNX graphs that the
// backend builds at load time from the model file's tensor table; the conv,
// the scan and the Note Block's pools stay in Go (forward, noteBlock).
//
// Graphs, for a chunk of T tokens (T is a symbolic dimension):
//
//	in0      x -> xz                                  (layer 0's norm and in_proj)
//	ssm[l]   a' -> dbc, dt                            (x_proj[, Falcon-Mamba's norms], dt_proj, softplus)
//	out[l]   Mamba:    y, x -> mix, r, xz'            (out_proj, residual, then layer l+1's norm and in_proj)
//	         MemMamba: y, x, m0 -> mix, r, I, G, W_s r, q_tok[, q_lay]
//	note[l]  r, o_tok[, o_lay], s_tok[, s_lay] -> x', xz'   (o_proj, gates, residual, layer l+1's in_proj)
//	head     x -> logits                              (norm_f, lm_head)
//
// so a token costs 2L+2 calls for Mamba and 3L+2 for MemMamba.
//
// Weights are not copied into the graphs. f32, f16 and bf16 tensors are ONNX
// external data pointing at their bytes in the model file (ONNX Runtime maps
// the file). f16 and bf16 matrices are decoded to f32 into a scratch file
// that ONNX Runtime reads as external data and packs (without a writable
// scratch folder, a Cast in the graph that ONNX Runtime folds). int8 and int4 matrices become com.microsoft
// MatMulNBits weights: the GGUF-style blocks are re-laid out once, at load,
// into MatMulNBits' layout (same bits, float32 scales), written to a scratch
// file that ONNX Runtime reads as external data and packs into its own
// layout; the file is deleted once the sessions exist. So the process holds
// ONNX Runtime's packed copy of the quantised weights, not also ours.
type ortBackend struct {
	m              *Model
	in0, head      *ort.Session
	ssm, out, note []*ort.Session
}

// ORTOptions configure the ONNX Runtime backend.
type ORTOptions struct {
	// Lib is the path of libonnxruntime.so.1; empty: MMRUN_ORT_LIB, then
	// the project's third_party/onnxruntime/lib.
	Lib string
	// Threads is ONNX Runtime's intra-op thread count (0: Options.Threads).
	Threads int
	// DisablePrepacking keeps ONNX Runtime from copying weights into its
	// own blocked layouts (less memory, usually slower).
	DisablePrepacking bool
	// DumpDir, when set, receives each graph as NAME.onnx (for inspection
	// with other ONNX tools; the weights stay external data).
	DumpDir string
}

func newORTBackend(m *Model, path string, opts Options) (*ortBackend, error) {
	lib, err := ort.FindLibrary(opts.ORT.Lib, "")
	if err != nil {
		return nil, err
	}
	if err := ort.Init(lib); err != nil {
		return nil, err
	}
	threads := opts.ORT.Threads
	if threads == 0 {
		threads = m.Threads()
	}
	// External data is found relative to the model file's folder (ONNX
	// Runtime refuses paths that leave it, links included): the model file
	// itself, and a scratch file of the re-laid-out int8/int4 blocks next to
	// it, which ONNX Runtime reads while it creates the sessions and which
	// goes when loading is done. Where the folder is not writable, the
	// blocks go into the graphs instead (ONNX Runtime then holds one more
	// copy of them).
	dir := filepath.Dir(path)
	so := ort.Options{IntraOpThreads: threads, DisablePrepacking: opts.ORT.DisablePrepacking, ExternalDataDir: dir}
	g := &graphs{m: m, file: filepath.Base(path), offsets: map[string]fileTensor{}}
	if ext, err := os.CreateTemp(dir, "."+filepath.Base(path)+".ort-blocks-*.tmp"); err == nil {
		defer os.Remove(ext.Name())
		defer ext.Close()
		g.ext, g.extName = ext, filepath.Base(ext.Name())
	}
	for _, t := range m.Header.Tensors {
		g.offsets[t.Name] = fileTensor{t.Type, t.Shape, int64(t.Offset), int64(t.Size)}
	}
	b := &ortBackend{m: m}
	fail := func(err error) (*ortBackend, error) {
		b.close()
		return nil, fmt.Errorf("ONNX Runtime backend: %w", err)
	}
	c := m.Config
	// mk builds one graph (build returns its input and output names) and
	// creates its session.
	mk := func(what string, build func(*onnxgraph.Builder) ([]string, []string)) (*ort.Session, error) {
		gb := onnxgraph.NewBuilder(what)
		ins, outs := build(gb)
		model, err := gb.Marshal()
		if err == nil {
			err = g.err
		}
		if err == nil && opts.ORT.DumpDir != "" {
			err = os.WriteFile(filepath.Join(opts.ORT.DumpDir, what+".onnx"), model, 0o644)
		}
		if err != nil {
			return nil, fmt.Errorf("graph %s: %w", what, err)
		}
		s, err := ort.NewSession(model, ins, outs, so)
		if err != nil {
			return nil, fmt.Errorf("graph %s: %w", what, err)
		}
		// ONNX Runtime has copied what it needs: return the graph's bytes
		// to the OS before the next graph, so that loading never holds more
		// than one graph's transient copies.
		model = nil
		debug.FreeOSMemory()
		return s, nil
	}
	perLayer := func(b func(*onnxgraph.Builder, int) ([]string, []string), l int) func(*onnxgraph.Builder) ([]string, []string) {
		return func(gb *onnxgraph.Builder) ([]string, []string) { return b(gb, l) }
	}
	if b.in0, err = mk("in0", g.in0); err != nil {
		return fail(err)
	}
	if b.head, err = mk("head", g.head); err != nil {
		return fail(err)
	}
	for l := range c.NumLayers {
		s, err := mk(fmt.Sprintf("ssm%d", l), perLayer(g.ssm, l))
		if err != nil {
			return fail(err)
		}
		b.ssm = append(b.ssm, s)
		if s, err = mk(fmt.Sprintf("out%d", l), perLayer(g.out, l)); err != nil {
			return fail(err)
		}
		b.out = append(b.out, s)
		if c.IsMemMamba() {
			if s, err = mk(fmt.Sprintf("note%d", l), perLayer(g.note, l)); err != nil {
				return fail(err)
			}
			b.note = append(b.note, s)
		}
	}
	if opts.ORT.DumpDir != "" && g.ext != nil {
		// Keep the re-laid-out blocks with the dumped graphs.
		if data, err := os.ReadFile(g.ext.Name()); err == nil {
			os.WriteFile(filepath.Join(opts.ORT.DumpDir, g.extName), data, 0o644)
		}
	}
	return b, nil
}

func (b *ortBackend) close() {
	for _, s := range append(append(append([]*ort.Session{b.in0, b.head}, b.ssm...), b.out...), b.note...) {
		if s != nil {
			s.Close()
		}
	}
}

// fileTensor is where a tensor sits in the model file.
type fileTensor struct {
	typ          quant.Type
	shape        []int
	offset, size int64
}

// graphs builds the backend's ONNX graphs.
type graphs struct {
	m       *Model
	file    string
	offsets map[string]fileTensor
	err     error
	// ext receives the re-laid-out blocks (external data extName).
	ext     *os.File
	extName string
	extOff  int64
}

// external appends b to the blocks file (64-byte aligned) and returns where.
func (g *graphs) external(b []byte) onnxgraph.ExternalData {
	pad := (64 - g.extOff%64) % 64
	if _, err := g.ext.Write(make([]byte, pad)); err != nil {
		g.fail(err)
	}
	g.extOff += pad
	at := g.extOff
	if _, err := g.ext.Write(b); err != nil {
		g.fail(err)
	}
	g.extOff += int64(len(b))
	return onnxgraph.ExternalData{Location: g.extName, Offset: at, Length: int64(len(b))}
}

// externalF32 decodes a half-precision tensor into the blocks file as f32,
// a chunk at a time (the LM head alone is 154 MB of f32 at mamba-130m's
// shape), and releases the source pages.
func (g *graphs) externalF32(name string, t quant.Type, src []byte) onnxgraph.ExternalData {
	const chunk = 1 << 16 // values
	v := make([]float32, chunk)
	raw := make([]byte, 4*chunk)
	var ext onnxgraph.ExternalData
	for i := 0; i < len(src)/2; i += chunk {
		n := min(chunk, len(src)/2-i)
		if err := quant.Decode(t, v[:n], src[2*i:2*(i+n)]); err != nil {
			g.fail(fmt.Errorf("tensor %q: %w", name, err))
		}
		for j, x := range v[:n] {
			binary.LittleEndian.PutUint32(raw[4*j:], math.Float32bits(x))
		}
		e := g.external(raw[:4*n])
		if i == 0 {
			ext = e
		} else {
			ext.Length += e.Length
		}
	}
	format.DropPages(src)
	return ext
}

func (g *graphs) fail(err error) {
	if g.err == nil {
		g.err = err
	}
}

func dims(shape []int) []int64 {
	d := make([]int64, len(shape))
	for i, v := range shape {
		d[i] = int64(v)
	}
	return d
}

// weight returns a float32 value for a stored f32/f16/bf16 tensor: external
// data in the model file, through a Cast for the half types.
func (g *graphs) weight(b *onnxgraph.Builder, name string, shape ...int) string {
	t, ok := g.offsets[name]
	if !ok {
		g.fail(fmt.Errorf("tensor %q missing", name))
		return ""
	}
	if len(shape) == 0 {
		shape = t.shape
	}
	ext := onnxgraph.ExternalData{Location: g.file, Offset: t.offset, Length: t.size}
	switch {
	case t.typ == quant.F32:
		return b.InitExternal(name, onnxgraph.Float, dims(shape), ext)
	case (t.typ == quant.F16 || t.typ == quant.BF16) && g.ext != nil:
		// Decoded to f32 into the scratch file: ONNX Runtime packs it into
		// its own layout and lets the file go, where a Cast in the graph
		// would leave it both the half copy and the folded f32 one.
		ft, _ := g.m.file.Tensor(name)
		return b.InitExternal(name, onnxgraph.Float, dims(shape), g.externalF32(name, t.typ, ft.Data))
	case t.typ == quant.F16:
		return b.Op("Cast", []string{b.InitExternal(name, onnxgraph.Float16, dims(shape), ext)}, onnxgraph.AttrInt("to", int64(onnxgraph.Float)))
	case t.typ == quant.BF16:
		return b.Op("Cast", []string{b.InitExternal(name, onnxgraph.BFloat16, dims(shape), ext)}, onnxgraph.AttrInt("to", int64(onnxgraph.Float)))
	}
	g.fail(fmt.Errorf("tensor %q: type %s is not a float type", name, t.typ))
	return ""
}

// linear is y = x W^T (+ bias) for a [out, in] weight of any stored type.
func (g *graphs) linear(b *onnxgraph.Builder, x, name, bias string) string {
	t, ok := g.offsets[name]
	if !ok {
		g.fail(fmt.Errorf("tensor %q missing", name))
		return ""
	}
	var y string
	switch t.typ {
	case quant.Q8_0, quant.Q4_0:
		ft, _ := g.m.file.Tensor(name)
		q, err := nbitsFromBlocks(t.typ, t.shape[0], t.shape[1], ft.Data)
		if t.size > 1<<20 {
			// The native kernels do not read this matrix on this backend.
			format.DropPages(ft.Data)
		}
		if err != nil {
			g.fail(fmt.Errorf("tensor %q: %w", name, err))
			return ""
		}
		// accuracy_level 4: ONNX Runtime quantises the activations to int8
		// per block, as the native kernels do (ops.QuantizeQ8).
		var w, s string
		if g.ext != nil {
			w = b.InitExternal(name+".qweight", onnxgraph.Uint8, q.BlockDims(), g.external(q.Blocks))
			sb := make([]byte, 4*len(q.Scales))
			for i, v := range q.Scales {
				binary.LittleEndian.PutUint32(sb[4*i:], math.Float32bits(v))
			}
			s = b.InitExternal(name+".scales", onnxgraph.Float, []int64{int64(len(q.Scales))}, g.external(sb))
		} else {
			w = b.Initializer(name+".qweight", onnxgraph.Uint8, q.BlockDims(), q.Blocks)
			s = b.InitFloat32(name+".scales", []int64{int64(len(q.Scales))}, q.Scales)
		}
		y = b.MatMulNBitsNode(x, w, s, "", int64(q.K), int64(q.N), int64(q.Bits), int64(q.BlockSize), ortAccuracyLevel)
		if bias != "" {
			y = b.Add(y, g.weight(b, bias))
		}
		return y
	}
	c := ""
	if bias != "" {
		c = g.weight(b, bias)
	}
	return b.Gemm(x, g.weight(b, name), c, true)
}

// nbitsFromBlocks re-lays GGUF Q8_0 / Q4_0 rows out as MatMulNBits blocks:
// the same codes (int8 q + 128, or the Q4_0 nibble) with the default zero
// point 2^(bits-1), packed low bits first, and float32 scales.
func nbitsFromBlocks(t quant.Type, rows, cols int, data []byte) (*onnxgraph.NBits, error) {
	nb := cols / quant.BlockSize
	q := &onnxgraph.NBits{N: rows, K: cols, BlockSize: quant.BlockSize, Scales: make([]float32, rows*nb)}
	switch t {
	case quant.Q8_0:
		q.Bits = 8
		q.Blocks = make([]byte, rows*nb*quant.BlockSize)
		for i := range rows * nb {
			blk := data[i*quant.Q8_0BlockBytes : (i+1)*quant.Q8_0BlockBytes]
			q.Scales[i] = quant.F16ToF32(uint16(blk[0]) | uint16(blk[1])<<8)
			for j := range quant.BlockSize {
				q.Blocks[i*quant.BlockSize+j] = byte(int8(blk[2+j])) + 128
			}
		}
	case quant.Q4_0:
		q.Bits = 4
		q.Blocks = make([]byte, rows*nb*quant.BlockSize/2)
		for i := range rows * nb {
			blk := data[i*quant.Q4_0BlockBytes : (i+1)*quant.Q4_0BlockBytes]
			q.Scales[i] = quant.F16ToF32(uint16(blk[0]) | uint16(blk[1])<<8)
			code := func(j int) byte {
				if j < 16 {
					return blk[2+j] & 0x0f
				}
				return blk[2+j-16] >> 4
			}
			for k := range quant.BlockSize / 2 {
				q.Blocks[i*quant.BlockSize/2+k] = code(2*k) | code(2*k+1)<<4
			}
		}
	default:
		return nil, fmt.Errorf("type %s is not a block type", t)
	}
	return q, q.Validate()
}

// ortAccuracyLevel is MatMulNBits' accuracy_level for the block types: 4
// quantises the activations to int8 (the native kernels' arithmetic), 0
// keeps them float32.
var ortAccuracyLevel int64 = 4

func (g *graphs) eps() float32 { return float32(g.m.Config.LayerNormEps) }

// name is weight id of layer l's name, "" when the config does not call
// for it (arch.Table).
func (g *graphs) name(id arch.WeightID, l int) string { return g.m.Config.WeightName(id, l) }

// mixerIn adds layer l's norm and in_proj on x.
func (g *graphs) mixerIn(b *onnxgraph.Builder, x string, l int) string {
	u := b.RMSNorm(x, g.weight(b, g.name(arch.WNorm, l)), g.eps())
	return g.linear(b, u, g.name(arch.WInProj, l), g.name(arch.WInProjBias, l))
}

func (g *graphs) in0(b *onnxgraph.Builder) ([]string, []string) {
	c := g.m.Config
	x := b.Input("x", onnxgraph.Float, onnxgraph.Sym("T"), onnxgraph.D(int64(c.HiddenSize)))
	out(b, g.mixerIn(b, x, 0), "xz", 2*c.Intermediate)
	return []string{"x"}, []string{"xz"}
}

func (g *graphs) head(b *onnxgraph.Builder) ([]string, []string) {
	c := g.m.Config
	x := b.Input("x", onnxgraph.Float, onnxgraph.Sym("T"), onnxgraph.D(int64(c.HiddenSize)))
	xn := b.RMSNorm(x, g.weight(b, g.name(arch.WNormF, 0)), g.eps())
	lm := g.name(arch.WLMHead, 0)
	if _, ok := g.offsets[lm]; !ok {
		lm = g.name(arch.WEmbeddings, 0) // tied
	}
	out(b, g.linear(b, xn, lm, ""), "logits", c.VocabSize)
	return []string{"x"}, []string{"logits"}
}

func (g *graphs) ssm(b *onnxgraph.Builder, l int) ([]string, []string) {
	c := g.m.Config
	a := b.Input("a", onnxgraph.Float, onnxgraph.Sym("T"), onnxgraph.D(int64(c.Intermediate)))
	dbc := g.linear(b, a, g.name(arch.WXProj, l), "")
	if c.DtBCRMS {
		dbc = g.normDBC(b, dbc)
	}
	delta := b.Slice(dbc, []int64{0}, []int64{int64(c.TimeStepRank)}, []int64{1})
	dt := b.Softplus(g.linear(b, delta, g.name(arch.WDtProj, l), g.name(arch.WDtProjBias, l)))
	out(b, dbc, "dbc", c.TimeStepRank+2*c.StateSize)
	out(b, dt, "dt", c.Intermediate)
	return []string{"a"}, []string{"dbc", "dt"}
}

// normDBC is Falcon-Mamba's step after x_proj (nativeDense.mixerNorms):
// delta, B and C, the three column ranges of dbc [T, R+2N], each divided by
// its root mean square (eps mixer_rms_eps, no weight), concatenated back.
func (g *graphs) normDBC(b *onnxgraph.Builder, dbc string) string {
	c := g.m.Config
	R, N := int64(c.TimeStepRank), int64(c.StateSize)
	var parts []string
	for _, r := range [][2]int64{{0, R}, {R, R + N}, {R + N, R + 2*N}} {
		v := b.Slice(dbc, []int64{r[0]}, []int64{r[1]}, []int64{1})
		ms := b.ReduceMean(b.Pow(v, b.Const("two", nil, 2)), true, -1)
		parts = append(parts, b.Div(v, b.Sqrt(b.Add(ms, b.Const("mixer_eps", nil, c.MixerEps())))))
	}
	return b.Concat(1, parts...)
}

// out adds a graph output named name of shape [T, width].
func out(b *onnxgraph.Builder, v, name string, width int) {
	b.Rename(v, name)
	b.Output(name, onnxgraph.Float, onnxgraph.Sym("T"), onnxgraph.D(int64(width)))
}

func (g *graphs) out(b *onnxgraph.Builder, l int) ([]string, []string) {
	c := g.m.Config
	d := int64(c.HiddenSize)
	y := b.Input("y", onnxgraph.Float, onnxgraph.Sym("T"), onnxgraph.D(int64(c.Intermediate)))
	x := b.Input("x", onnxgraph.Float, onnxgraph.Sym("T"), onnxgraph.D(d))
	mix := g.linear(b, y, g.name(arch.WOutProj, l), g.name(arch.WOutProjBias, l))
	r := b.Add(x, mix)
	out(b, mix, "mix", c.HiddenSize)
	out(b, r, "r", c.HiddenSize)
	if !c.IsMemMamba() {
		if l+1 < c.NumLayers {
			out(b, g.mixerIn(b, r, l+1), "xz", 2*c.Intermediate)
			return []string{"y", "x"}, []string{"mix", "r", "xz"}
		}
		return []string{"y", "x"}, []string{"mix", "r"}
	}
	mem := c.Memory
	m0 := b.Input("m0", onnxgraph.Float, onnxgraph.D(1), onnxgraph.D(d))
	h := b.Op("Relu", []string{g.linear(b, r, g.name(arch.WScoreFC1, l), g.name(arch.WScoreFC1Bias, l))})
	out(b, b.Sigmoid(g.linear(b, h, g.name(arch.WScoreFC2, l), g.name(arch.WScoreFC2Bias, l))), "imp", 1)
	prev := b.Concat(0, m0, b.Slice(mix, []int64{0}, []int64{-1}, []int64{0}))
	out(b, b.Sigmoid(g.linear(b, prev, g.name(arch.WTrigger, l), g.name(arch.WTriggerBias, l))), "gate", 1)
	out(b, g.linear(b, r, g.name(arch.WSummary, l), ""), "summ", mem.SummaryDim)
	outs := []string{"mix", "r", "imp", "gate", "summ", "q_tok"}
	out(b, g.query(b, r, arch.TokenAttn, l), "q_tok", mem.AttnDim)
	if c.HasCrossLayer(l) {
		out(b, g.query(b, r, arch.LayerAttn, l), "q_lay", mem.AttnDim)
		outs = append(outs, "q_lay")
	}
	return []string{"y", "x", "m0"}, outs
}

// query is an attention's q = W_q RMSNorm(r; w_qn).
func (g *graphs) query(b *onnxgraph.Builder, r string, a arch.Attention, l int) string {
	return g.linear(b, b.RMSNorm(r, g.weight(b, g.name(a.Norm, l)), g.eps()), g.name(a.Q, l), "")
}

// gated is Attend's end: scale * sigma(W_gate [r; o] + b_gate) * o with
// o = W_o att.
func (g *graphs) gated(b *onnxgraph.Builder, r, att, scale string, a arch.Attention, l int) string {
	o := g.linear(b, att, g.name(a.O, l), "")
	gt := b.Sigmoid(g.linear(b, b.Concat(1, r, o), g.name(a.Gate, l), g.name(a.GateBias, l)))
	return b.Mul(b.Mul(o, gt), scale)
}

func (g *graphs) note(b *onnxgraph.Builder, l int) ([]string, []string) {
	c := g.m.Config
	mem := c.Memory
	T := onnxgraph.Sym("T")
	r := b.Input("r", onnxgraph.Float, T, onnxgraph.D(int64(c.HiddenSize)))
	oTok := b.Input("o_tok", onnxgraph.Float, T, onnxgraph.D(int64(mem.AttnDim)))
	sTok := b.Input("s_tok", onnxgraph.Float, T, onnxgraph.D(1))
	ins := []string{"r", "o_tok", "s_tok"}
	x := b.Add(r, g.gated(b, r, oTok, sTok, arch.TokenAttn, l))
	if c.HasCrossLayer(l) {
		oLay := b.Input("o_lay", onnxgraph.Float, T, onnxgraph.D(int64(mem.AttnDim)))
		sLay := b.Input("s_lay", onnxgraph.Float, T, onnxgraph.D(1))
		ins = append(ins, "o_lay", "s_lay")
		x = b.Add(x, g.gated(b, r, oLay, sLay, arch.LayerAttn, l))
	}
	out(b, x, "x", c.HiddenSize)
	if l+1 < c.NumLayers {
		out(b, g.mixerIn(b, x, l+1), "xz", 2*c.Intermediate)
		return ins, []string{"x", "xz"}
	}
	return ins, []string{"x"}
}

// ortDense is one session's view of the ONNX Runtime backend: it carries
// the next layer's xz and the Note Block's results from the fused graph
// that computed them to the call that asks for them.
type ortDense struct {
	b      *ortBackend
	sc     *scratch
	xzNext []float32
	xzOK   bool
	r      []float32
	nd     noteDense
	ndOK   bool
}

func (b *ortBackend) newDense(sc *scratch) dense { return &ortDense{b: b, sc: sc} }

func t2(data []float32, T, w int) ort.Tensor {
	return ort.Tensor{Shape: []int64{int64(T), int64(w)}, Data: data[:T*w]}
}

// run runs s, panicking on failure: an ONNX Runtime error at this point is
// a bug (the shapes are the graph's own), and the panic carries it.
func run(s *ort.Session, in, out []ort.Tensor) {
	if err := s.RunInto(in, out); err != nil {
		panic(fmt.Errorf("ONNX Runtime: %w", err))
	}
}

func (o *ortDense) mixerIn(l int, xz, x []float32, T int) {
	c := o.b.m.Config
	if l == 0 {
		run(o.b.in0, []ort.Tensor{t2(x, T, c.HiddenSize)}, []ort.Tensor{t2(xz, T, 2*c.Intermediate)})
		return
	}
	if !o.xzOK {
		panic(errors.New("ONNX Runtime backend: layer input not prepared"))
	}
	copy(xz, o.xzNext[:T*2*c.Intermediate])
	o.xzOK = false
}

func (o *ortDense) ssmIn(l int, dbc, dt, a1 []float32, T int) {
	c := o.b.m.Config
	run(o.b.ssm[l], []ort.Tensor{t2(a1, T, c.Intermediate)},
		[]ort.Tensor{t2(dbc, T, c.TimeStepRank+2*c.StateSize), t2(dt, T, c.Intermediate)})
}

func (o *ortDense) mixerOut(l int, mix, x, y, prevM []float32, T int) {
	c := o.b.m.Config
	d, E := c.HiddenSize, c.Intermediate
	o.r = o.sc.buf(&o.r, T*d)
	ins := []ort.Tensor{t2(y, T, E), t2(x, T, d)}
	outs := []ort.Tensor{t2(mix, T, d), t2(o.r, T, d)}
	if !c.IsMemMamba() {
		if l+1 < c.NumLayers {
			o.xzNext = o.sc.buf(&o.xzNext, T*2*E)
			outs = append(outs, t2(o.xzNext, T, 2*E))
			o.xzOK = true
		}
		run(o.b.out[l], ins, outs)
		copy(x, o.r)
		return
	}
	mem := c.Memory
	ins = append(ins, ort.Tensor{Shape: []int64{1, int64(d)}, Data: prevM})
	nd := &o.nd
	nd.imp = o.sc.buf(&nd.imp, T)
	nd.gate = o.sc.buf(&nd.gate, T)
	nd.summ = o.sc.buf(&nd.summ, T*mem.SummaryDim)
	nd.qTok = o.sc.buf(&nd.qTok, T*mem.AttnDim)
	outs = append(outs, t2(nd.imp, T, 1), t2(nd.gate, T, 1), t2(nd.summ, T, mem.SummaryDim), t2(nd.qTok, T, mem.AttnDim))
	if c.HasCrossLayer(l) {
		nd.qLay = o.sc.buf(&nd.qLay, T*mem.AttnDim)
		outs = append(outs, t2(nd.qLay, T, mem.AttnDim))
	}
	run(o.b.out[l], ins, outs)
	copy(x, o.r)
	o.ndOK = true
}

func (o *ortDense) noteIn(l int, nd *noteDense, r, prev []float32, T int) {
	if !o.ndOK {
		panic(errors.New("ONNX Runtime backend: Note Block inputs not prepared"))
	}
	copy(nd.imp, o.nd.imp)
	copy(nd.gate, o.nd.gate)
	copy(nd.summ, o.nd.summ)
	copy(nd.qTok, o.nd.qTok)
	if nd.qLay != nil {
		copy(nd.qLay, o.nd.qLay)
	}
	o.ndOK = false
}

func (o *ortDense) noteOut(l int, r, oTok, oLay, sTok, sLay []float32, T int) {
	c := o.b.m.Config
	d, A, E := c.HiddenSize, c.Memory.AttnDim, c.Intermediate
	ins := []ort.Tensor{t2(r, T, d), t2(oTok, T, A), t2(sTok, T, 1)}
	if sLay != nil {
		ins = append(ins, t2(oLay, T, A), t2(sLay, T, 1))
	}
	o.r = o.sc.buf(&o.r, T*d)
	outs := []ort.Tensor{t2(o.r, T, d)}
	if l+1 < c.NumLayers {
		o.xzNext = o.sc.buf(&o.xzNext, T*2*E)
		outs = append(outs, t2(o.xzNext, T, 2*E))
		o.xzOK = true
	}
	run(o.b.note[l], ins, outs)
	copy(r, o.r)
}

func (o *ortDense) logits(out, x []float32, n int) {
	c := o.b.m.Config
	run(o.b.head, []ort.Tensor{t2(x, n, c.HiddenSize)}, []ort.Tensor{t2(out, n, c.VocabSize)})
}
