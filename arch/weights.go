package arch

import (
	"fmt"
	"slices"
	"strings"
)

// Weight is one tensor of the canonical state_dict (SPEC.md, "Weight names").
type Weight struct {
	Name  string
	Shape []int
	// Optional weights may be absent: biases switched off in the config, and
	// lm_head when embeddings are tied.
	Optional bool
	// Matmul marks 2-D weights used as y = W x (W is out x in); the
	// quantisation policy only considers these.
	Matmul bool
}

// Canonical names of the top-level tensors.
const (
	EmbeddingsName = "backbone.embeddings.weight"
	NormFName      = "backbone.norm_f.weight"
	LMHeadName     = "lm_head.weight"
)

// LayerPrefix is the name prefix of layer l's tensors.
func LayerPrefix(l int) string { return fmt.Sprintf("backbone.layers.%d.", l) }

// Weights lists every tensor of a model of configuration c, layer by layer. Biases disabled by the config are not
// listed; lm_head is listed as optional when embeddings are tied.
func (c *Config) Weights() []Weight {
	d, E, N, K, R, V := c.HiddenSize, c.Intermediate, c.StateSize, c.ConvKernel, c.TimeStepRank, c.VocabSize
	var ws []Weight
	add := func(name string, matmul bool, shape ...int) {
		ws = append(ws, Weight{Name: name, Shape: shape, Matmul: matmul})
	}
	add(EmbeddingsName, false, V, d)
	for l := 0; l < c.NumLayers; l++ {
		p := LayerPrefix(l)
		mx := p + "mixer."
		add(mx+"A_log", false, E, N)
		add(mx+"D", false, E)
		add(mx+"in_proj.weight", true, 2*E, d)
		if c.UseBias {
			add(mx+"in_proj.bias", false, 2*E)
		}
		add(mx+"conv1d.weight", false, E, 1, K)
		if c.UseConvBias {
			add(mx+"conv1d.bias", false, E)
		}
		add(mx+"x_proj.weight", true, R+2*N, E)
		add(mx+"dt_proj.weight", true, E, R)
		add(mx+"dt_proj.bias", false, E)
		add(mx+"out_proj.weight", true, d, E)
		if c.UseBias {
			add(mx+"out_proj.bias", false, d)
		}
		add(p+"norm.weight", false, d)
		if c.IsMemMamba() {
			m := c.Memory
			nb := p + "note."
			add(nb+"score.fc1.weight", true, m.ScoreDim, d)
			add(nb+"score.fc1.bias", false, m.ScoreDim)
			add(nb+"score.fc2.weight", true, 1, m.ScoreDim)
			add(nb+"score.fc2.bias", false, 1)
			add(nb+"trigger.weight", true, 1, d)
			add(nb+"trigger.bias", false, 1)
			add(nb+"summary.weight", true, m.SummaryDim, d)
			ws = append(ws, c.attendWeights(nb+"token_attn.")...)
			if c.HasCrossLayer(l) {
				ws = append(ws, c.attendWeights(nb+"layer_attn.")...)
			}
		}
	}
	add(NormFName, false, d)
	ws = append(ws, Weight{Name: LMHeadName, Shape: []int{V, d}, Matmul: true, Optional: c.TieEmbeddings})
	return ws
}

func (c *Config) attendWeights(p string) []Weight {
	d, m := c.HiddenSize, c.Memory
	return []Weight{
		{Name: p + "norm.weight", Shape: []int{d}},
		{Name: p + "q_proj.weight", Shape: []int{m.AttnDim, d}, Matmul: true},
		{Name: p + "k_proj.weight", Shape: []int{m.AttnDim, m.SummaryDim}, Matmul: true},
		{Name: p + "v_proj.weight", Shape: []int{m.AttnDim, m.SummaryDim}, Matmul: true},
		{Name: p + "o_proj.weight", Shape: []int{d, m.AttnDim}, Matmul: true},
		{Name: p + "gate.weight", Shape: []int{d, 2 * d}, Matmul: true},
		{Name: p + "gate.bias", Shape: []int{d}},
	}
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
