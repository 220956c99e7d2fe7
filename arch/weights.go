package arch

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// WeightID names one row of Table: a top-level tensor, or one of a layer's
// tensors for every layer at once.
type WeightID uint8

// The weights, in the order of the model file (Config.Weights).
const (
	WEmbeddings WeightID = iota
	WALog
	WD
	WInProj
	WInProjBias
	WConv
	WConvBias
	WXProj
	WDtProj
	WDtProjBias
	WOutProj
	WOutProjBias
	WNorm
	WScoreFC1
	WScoreFC1Bias
	WScoreFC2
	WScoreFC2Bias
	WTrigger
	WTriggerBias
	WSummary
	WTokNorm
	WTokQ
	WTokK
	WTokV
	WTokO
	WTokGate
	WTokGateBias
	WLayNorm
	WLayQ
	WLayK
	WLayV
	WLayO
	WLayGate
	WLayGateBias
	WNormF
	WLMHead
	numWeights
)

// Attention is the seven weights of one of the Note Block's two
// attentions (SPEC.md, Attend): token attention and cross-layer attention
// have the same form under different names.
type Attention struct {
	Norm, Q, K, V, O, Gate, GateBias WeightID
}

// The Note Block's attentions.
var (
	TokenAttn = Attention{WTokNorm, WTokQ, WTokK, WTokV, WTokO, WTokGate, WTokGateBias}
	LayerAttn = Attention{WLayNorm, WLayQ, WLayK, WLayV, WLayO, WLayGate, WLayGateBias}
)

// Dim is one dimension of a weight's shape, in SPEC.md's notation (its
// "Notation and configuration"): "V", "d", "2d", "E", "2E", "N", "K", "R",
// "R+2N", "Hs", "S", "A" or "1". Config.Dim gives its size.
type Dim string

// Dim returns the size of dimension x in configuration c (0 for a memory
// dimension of a plain Mamba model). It panics on a Dim that is not in
// the notation: the table is fixed, and a test reads every entry.
func (c *Config) Dim(x Dim) int {
	var m Memory
	if c.Memory != nil {
		m = *c.Memory
	}
	switch x {
	case "V":
		return c.VocabSize
	case "d":
		return c.HiddenSize
	case "2d":
		return 2 * c.HiddenSize
	case "E":
		return c.Intermediate
	case "2E":
		return 2 * c.Intermediate
	case "N":
		return c.StateSize
	case "K":
		return c.ConvKernel
	case "R":
		return c.TimeStepRank
	case "R+2N":
		return c.TimeStepRank + 2*c.StateSize
	case "Hs":
		return m.ScoreDim
	case "S":
		return m.SummaryDim
	case "A":
		return m.AttnDim
	case "1":
		return 1
	}
	panic(fmt.Sprintf("arch: unknown dimension %q", string(x)))
}

// Presence says which models and layers have a weight.
type Presence uint8

const (
	// Always: every model (for a layer's weight: every layer).
	Always Presence = iota
	// IfBias: use_bias is true.
	IfBias
	// IfConvBias: use_conv_bias is true.
	IfConvBias
	// IfMemMamba: MemMamba models (the Note Block).
	IfMemMamba
	// IfCrossLayer: the layers of a MemMamba model that run cross-layer
	// retrieval (Config.HasCrossLayer).
	IfCrossLayer
)

// Reader says which part of the runtime reads a weight, on either backend.
type Reader uint8

const (
	// ReadDense: the dense blocks (runtime.DenseBlocks), which the
	// chosen backend runs: the native kernels or the ONNX Runtime graphs.
	ReadDense Reader = 1 << iota
	// ReadEngine: the Go engine itself, on every backend: the embedding
	// lookup, the conv, the selective scan and the Note Block pools' keys
	// and values. (The embeddings are also the LM head when tied; the
	// dense blocks then read them through WLMHead's fallback.)
	ReadEngine
)

// WeightSpec is one row of Table.
type WeightSpec struct {
	ID WeightID
	// Name is the canonical name; "{l}" stands for the layer index in a
	// layer's weights.
	Name string
	// Shape is in SPEC.md's notation.
	Shape []Dim
	When  Presence
	// Tied: may be absent when tie_word_embeddings is true (lm_head; the
	// embeddings take its place).
	Tied bool
	// Matmul marks 2-D weights used as y = W x (W is out x in).
	Matmul bool
	// Quantisable: the converter may store it as int8 / int4 / f16 / bf16
	// (the Matmul weights and the embeddings); the others stay f32.
	Quantisable bool
	Reader      Reader
	// Role is what the weight does, in SPEC.md's symbols.
	Role string
}

// PerLayer reports whether the spec is a layer's weight.
func (s *WeightSpec) PerLayer() bool { return strings.Contains(s.Name, "{l}") }

func dims(ds ...Dim) []Dim { return ds }

// Table is the model's weights, in the model file's order: the top-level
// weights before the first layer weight, then every layer's (in table
// order), then the top-level ones after. Indexed by WeightID.
var Table = func() [numWeights]WeightSpec {
	const (
		L  = "backbone.layers.{l}."
		mx = L + "mixer."
		nb = L + "note."
	)
	t := [numWeights]WeightSpec{ // the attentions' rows are filled below
		WEmbeddings:   {Name: EmbeddingsName, Shape: dims("V", "d"), Quantisable: true, Reader: ReadEngine, Role: "token embeddings (and the LM head when tied)"},
		WALog:         {Name: mx + "A_log", Shape: dims("E", "N"), Reader: ReadEngine, Role: "A = -exp(A_log), the scan's decay"},
		WD:            {Name: mx + "D", Shape: dims("E"), Reader: ReadEngine, Role: "D, the scan's skip"},
		WInProj:       {Name: mx + "in_proj.weight", Shape: dims("2E", "d"), Matmul: true, Reader: ReadDense, Role: "W_in: [x; z] from the normed input"},
		WInProjBias:   {Name: mx + "in_proj.bias", Shape: dims("2E"), When: IfBias, Reader: ReadDense, Role: "b_in"},
		WConv:         {Name: mx + "conv1d.weight", Shape: dims("E", "1", "K"), Reader: ReadEngine, Role: "the depthwise causal conv's kernel"},
		WConvBias:     {Name: mx + "conv1d.bias", Shape: dims("E"), When: IfConvBias, Reader: ReadEngine, Role: "the conv's bias"},
		WXProj:        {Name: mx + "x_proj.weight", Shape: dims("R+2N", "E"), Matmul: true, Reader: ReadDense, Role: "W_x: [delta; B; C]"},
		WDtProj:       {Name: mx + "dt_proj.weight", Shape: dims("E", "R"), Matmul: true, Reader: ReadDense, Role: "W_dt: dt = softplus(W_dt delta + b_dt)"},
		WDtProjBias:   {Name: mx + "dt_proj.bias", Shape: dims("E"), Reader: ReadDense, Role: "b_dt"},
		WOutProj:      {Name: mx + "out_proj.weight", Shape: dims("d", "E"), Matmul: true, Reader: ReadDense, Role: "W_out: the mixer's output"},
		WOutProjBias:  {Name: mx + "out_proj.bias", Shape: dims("d"), When: IfBias, Reader: ReadDense, Role: "b_out"},
		WNorm:         {Name: L + "norm.weight", Shape: dims("d"), Reader: ReadDense, Role: "the layer's RMSNorm weight"},
		WScoreFC1:     {Name: nb + "score.fc1.weight", Shape: dims("Hs", "d"), When: IfMemMamba, Matmul: true, Reader: ReadDense, Role: "W1 of the importance I_t"},
		WScoreFC1Bias: {Name: nb + "score.fc1.bias", Shape: dims("Hs"), When: IfMemMamba, Reader: ReadDense, Role: "b1"},
		WScoreFC2:     {Name: nb + "score.fc2.weight", Shape: dims("1", "Hs"), When: IfMemMamba, Matmul: true, Reader: ReadDense, Role: "w2 of the importance I_t"},
		WScoreFC2Bias: {Name: nb + "score.fc2.bias", Shape: dims("1"), When: IfMemMamba, Reader: ReadDense, Role: "b2"},
		WTrigger:      {Name: nb + "trigger.weight", Shape: dims("1", "d"), When: IfMemMamba, Matmul: true, Reader: ReadDense, Role: "w_g of the trigger G_t"},
		WTriggerBias:  {Name: nb + "trigger.bias", Shape: dims("1"), When: IfMemMamba, Reader: ReadDense, Role: "b_g"},
		WSummary:      {Name: nb + "summary.weight", Shape: dims("S", "d"), When: IfMemMamba, Matmul: true, Reader: ReadDense, Role: "W_s: a note's summary"},
		WNormF:        {Name: NormFName, Shape: dims("d"), Reader: ReadDense, Role: "the final RMSNorm weight"},
		WLMHead:       {Name: LMHeadName, Shape: dims("V", "d"), Tied: true, Matmul: true, Reader: ReadDense, Role: "the LM head"},
	}
	attn := func(a Attention, p string, when Presence, what string) {
		t[a.Norm] = WeightSpec{Name: p + "norm.weight", Shape: dims("d"), When: when, Reader: ReadDense, Role: what + ": w_qn, the query's RMSNorm weight"}
		t[a.Q] = WeightSpec{Name: p + "q_proj.weight", Shape: dims("A", "d"), When: when, Matmul: true, Reader: ReadDense, Role: what + ": W_q"}
		t[a.K] = WeightSpec{Name: p + "k_proj.weight", Shape: dims("A", "S"), When: when, Matmul: true, Reader: ReadEngine, Role: what + ": W_k, a note's key (kept in the pool)"}
		t[a.V] = WeightSpec{Name: p + "v_proj.weight", Shape: dims("A", "S"), When: when, Matmul: true, Reader: ReadEngine, Role: what + ": W_v, a note's value (kept in the pool)"}
		t[a.O] = WeightSpec{Name: p + "o_proj.weight", Shape: dims("d", "A"), When: when, Matmul: true, Reader: ReadDense, Role: what + ": W_o"}
		t[a.Gate] = WeightSpec{Name: p + "gate.weight", Shape: dims("d", "2d"), When: when, Matmul: true, Reader: ReadDense, Role: what + ": W_gate over [r; o]"}
		t[a.GateBias] = WeightSpec{Name: p + "gate.bias", Shape: dims("d"), When: when, Reader: ReadDense, Role: what + ": b_gate"}
	}
	attn(TokenAttn, nb+"token_attn.", IfMemMamba, "token attention")
	attn(LayerAttn, nb+"layer_attn.", IfCrossLayer, "cross-layer attention")
	for id := range t {
		t[id].ID = WeightID(id)
		t[id].Quantisable = t[id].Quantisable || t[id].Matmul // every matrix product's weight
	}
	return t
}()

// Weight is one tensor of a model of a given configuration: a row of Table
// resolved for one layer.
type Weight struct {
	ID    WeightID
	Name  string
	Shape []int
	// Optional weights may be absent: lm_head when embeddings are tied.
	// (Biases switched off in the config are not listed at all.)
	Optional bool
	// Matmul marks 2-D weights used as y = W x (W is out x in).
	Matmul bool
	// Quantisable: the converter may store it in the requested type (the
	// Matmul weights and the embeddings).
	Quantisable bool
	Reader      Reader
}

// Canonical names of the top-level tensors.
const (
	EmbeddingsName = "backbone.embeddings.weight"
	NormFName      = "backbone.norm_f.weight"
	LMHeadName     = "lm_head.weight"
)

// LayerPrefix is the name prefix of layer l's tensors.
func LayerPrefix(l int) string { return fmt.Sprintf("backbone.layers.%d.", l) }

// Has reports whether configuration c calls for weight id in layer l (l
// is ignored for a top-level weight).
func (c *Config) Has(id WeightID, l int) bool {
	switch Table[id].When {
	case IfBias:
		return c.UseBias
	case IfConvBias:
		return c.UseConvBias
	case IfMemMamba:
		return c.IsMemMamba()
	case IfCrossLayer:
		return c.IsMemMamba() && c.HasCrossLayer(l)
	}
	return true
}

// Weight returns weight id of layer l (l is ignored for a top-level
// weight) and whether the configuration calls for it.
func (c *Config) Weight(id WeightID, l int) (Weight, bool) {
	s := &Table[id]
	w := Weight{ID: id, Name: s.Name, Matmul: s.Matmul, Quantisable: s.Quantisable, Reader: s.Reader,
		Optional: s.Tied && c.TieEmbeddings, Shape: make([]int, len(s.Shape))}
	if s.PerLayer() {
		w.Name = strings.Replace(s.Name, "{l}", strconv.Itoa(l), 1)
	}
	for i, x := range s.Shape {
		w.Shape[i] = c.Dim(x)
	}
	return w, c.Has(id, l)
}

// WeightName is the name of weight id of layer l, "" when the
// configuration does not call for it (a bias switched off, a Note Block
// weight of a plain Mamba model).
func (c *Config) WeightName(id WeightID, l int) string {
	w, ok := c.Weight(id, l)
	if !ok {
		return ""
	}
	return w.Name
}

// Weights lists every tensor of a model of configuration c, in the model
// file's order (see Table). Weights the config does not call for are not
// listed; lm_head is listed as optional when embeddings are tied.
func (c *Config) Weights() []Weight {
	var ws []Weight
	add := func(id WeightID, l int) {
		if w, ok := c.Weight(id, l); ok {
			ws = append(ws, w)
		}
	}
	layersDone := false
	for id := range numWeights {
		if !Table[id].PerLayer() {
			add(id, 0)
			continue
		}
		if layersDone {
			continue
		}
		layersDone = true
		for l := range c.NumLayers {
			for lid := range numWeights {
				if Table[lid].PerLayer() {
					add(lid, l)
				}
			}
		}
	}
	return ws
}

// CanonicalName maps the accepted spellings of a checkpoint's tensor name to
// the canonical one: it strips the "module." and "model." prefixes that
// DataParallel and wrapper modules add, and renames mamba_ssm's
// "backbone.embedding.weight". Other names are returned unchanged.
func CanonicalName(name string) string {
	for {
		switch {
		case strings.HasPrefix(name, "module."):
			name = name[len("module."):]
			continue
		case strings.HasPrefix(name, "model."):
			name = name[len("model."):]
			continue
		}
		break
	}
	if name == "backbone.embedding.weight" {
		return EmbeddingsName
	}
	return name
}

// ShapeEqual reports whether two shapes are the same.
func ShapeEqual(a, b []int) bool { return slices.Equal(a, b) }
