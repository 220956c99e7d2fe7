package ortbackend

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"

	"github.com/memmamba/memmamba/arch"
	"github.com/memmamba/memmamba/engine"
	"github.com/memmamba/memmamba/format"
	"github.com/memmamba/memmamba/onnxgraph"
	"github.com/memmamba/memmamba/quant"
)

// buildFunc builds one graph into b (layer l's, or the model's when the
// graph is not a layer's) and returns its input and output names.
type buildFunc func(g *graphs, b *onnxgraph.Builder, l int) (ins, outs []string)

// fileTensor is where a tensor sits in the model file.
type fileTensor struct {
	typ          quant.Type
	shape        []int
	offset, size int64
}

// graphs builds the backend's ONNX graphs.
type graphs struct {
	m       *engine.Model
	file    string
	offsets map[string]fileTensor
	err     error
	// ext receives the re-laid-out blocks (external data extName).
	ext     *os.File
	extName string
	extOff  int64
	// read is the weights the graphs read (weight, linear); a test checks
	// it against arch.Table's ReadDense column.
	read map[string]bool
}

// use records that a graph reads the tensor name and returns where it is.
func (g *graphs) use(name string) (fileTensor, bool) {
	t, ok := g.offsets[name]
	if !ok {
		g.fail(fmt.Errorf("tensor %q missing", name))
		return t, false
	}
	if g.read == nil {
		g.read = map[string]bool{}
	}
	g.read[name] = true
	return t, true
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
	t, ok := g.use(name)
	if !ok {
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
		ft, _ := g.m.Tensor(name)
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
	t, ok := g.use(name)
	if !ok {
		return ""
	}
	var y string
	switch t.typ {
	case quant.Q8_0, quant.Q4_0:
		ft, _ := g.m.Tensor(name)
		q, err := onnxgraph.NBitsFromBlocks(t.typ, t.shape[0], t.shape[1], ft.Data)
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
		y = b.MatMulNBitsNode(x, w, s, "", int64(q.K), int64(q.N), int64(q.Bits), int64(q.BlockSize), accuracyLevel)
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

// accuracyLevel is MatMulNBits' accuracy_level for the block types: 4
// quantises the activations to int8 (the native kernels' arithmetic), 0
// keeps them float32.
const accuracyLevel = 4

func (g *graphs) eps() float32 { return float32(g.m.Config.LayerNormEps) }

// name is weight id of layer l's name, "" when the config does not call
// for it (arch.Table).
func (g *graphs) name(id arch.WeightID, l int) string { return g.m.Config.WeightName(id, l) }

// mixerIn adds layer l's norm and in_proj on x.
func (g *graphs) mixerIn(b *onnxgraph.Builder, x string, l int) string {
	u := b.RMSNorm(x, g.weight(b, g.name(arch.WNorm, l)), g.eps())
	return g.linear(b, u, g.name(arch.WInProj, l), g.name(arch.WInProjBias, l))
}

func (g *graphs) in0(b *onnxgraph.Builder, _ int) ([]string, []string) {
	c := g.m.Config
	x := b.Input("x", onnxgraph.Float, onnxgraph.Sym("T"), onnxgraph.D(int64(c.HiddenSize)))
	out(b, g.mixerIn(b, x, 0), "xz", 2*c.Intermediate)
	return []string{"x"}, []string{"xz"}
}

func (g *graphs) head(b *onnxgraph.Builder, _ int) ([]string, []string) {
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

// normDBC is Falcon-Mamba's step after x_proj (the native backend's normDBC):
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
