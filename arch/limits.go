package arch

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Upper bounds on the configuration's sizes. A config.json, a GGUF file's
// metadata and a model file's header are input we do not control, and every
// size in them decides how much is allocated (per-layer lists, weight
// shapes, per-session state), so each is bounded before anything is built
// from it. Each bound is far above any published Mamba or MemMamba model
// (the largest Mamba-1 models have 64 layers, d_model 4096, d_state 16 and a
// vocabulary of 65024) and far below what would overflow a size computation.
const (
	// MaxLayers bounds num_hidden_layers.
	MaxLayers = 1024
	// MaxHiddenSize bounds hidden_size (d_model).
	MaxHiddenSize = 1 << 16
	// MaxVocabSize bounds vocab_size (the largest tokenizers in use have
	// about 2^18 tokens).
	MaxVocabSize = 1 << 21
	// MaxStateSize bounds state_size (d_state; Mamba-1 uses 16, Mamba-2
	// 64 to 256).
	MaxStateSize = 1024
	// MaxConvKernel bounds conv_kernel (Mamba uses 4).
	MaxConvKernel = 64
	// MaxIntermediate bounds intermediate_size (expand x d_model).
	MaxIntermediate = 1 << 18
	// MaxTimeStepRank bounds time_step_rank (ceil(d_model/16) by default).
	MaxTimeStepRank = MaxHiddenSize
	// MaxPoolSize bounds memory.pool_size, the summaries a Note Block
	// keeps (the SPEC's default is 50).
	MaxPoolSize = 1 << 16
	// MaxNoteDim bounds memory.summary_dim, memory.score_dim and
	// memory.attn_dim.
	MaxNoteDim = 1 << 16
	// MaxHeads bounds memory.n_heads.
	MaxHeads = 1024
	// MaxCrossLayerEvery bounds memory.cross_layer_every (a period above
	// the number of layers means no layer retrieves across layers).
	MaxCrossLayerEvery = MaxLayers
)

// limit is one bounded size key of the configuration.
type limit struct {
	key string
	v   int
	max int
}

// limits lists c's size keys with their values and bounds.
func (c *Config) limits() []limit {
	ls := []limit{
		{"vocab_size", c.VocabSize, MaxVocabSize},
		{"hidden_size", c.HiddenSize, MaxHiddenSize},
		{"num_hidden_layers", c.NumLayers, MaxLayers},
		{"state_size", c.StateSize, MaxStateSize},
		{"conv_kernel", c.ConvKernel, MaxConvKernel},
		{"intermediate_size", c.Intermediate, MaxIntermediate},
		{"time_step_rank", c.TimeStepRank, MaxTimeStepRank},
	}
	if m := c.Memory; m != nil {
		ls = append(ls,
			limit{"memory.pool_size", m.PoolSize, MaxPoolSize},
			limit{"memory.summary_dim", m.SummaryDim, MaxNoteDim},
			limit{"memory.score_dim", m.ScoreDim, MaxNoteDim},
			limit{"memory.attn_dim", m.AttnDim, MaxNoteDim},
			limit{"memory.n_heads", m.NumHeads, MaxHeads},
			limit{"memory.cross_layer_every", m.CrossLayerEvery, MaxCrossLayerEvery},
		)
	}
	return ls
}

// checkLimits returns an error for each size key above its bound.
func (c *Config) checkLimits() []error {
	var errs []error
	for _, l := range c.limits() {
		if l.v > l.max {
			errs = append(errs, fmt.Errorf("config: key %q is %d, above the limit of %d", l.key, l.v, l.max))
		}
	}
	return errs
}

// LayerTensorPrefix is the prefix of every per-layer canonical tensor name,
// followed by the layer's index and a dot.
const LayerTensorPrefix = "backbone.layers."

// LayersHeld returns how many layers a file's tensor names hold: the n such
// that layers 0 to n-1 each have at least one tensor named
// prefix + "<index>." and layer n has none. It costs one pass over the
// names, whatever a configuration claims, so it can be compared with the
// configured count before anything is built per layer. An index is read
// only in its canonical spelling ("7", not "07" or "+7").
func LayersHeld(names []string, prefix string) int {
	seen := make(map[int]bool)
	for _, n := range names {
		rest, ok := strings.CutPrefix(n, prefix)
		if !ok {
			continue
		}
		i := strings.IndexByte(rest, '.')
		if i <= 0 {
			continue
		}
		l, err := strconv.Atoi(rest[:i])
		// An index at or above the number of names cannot be part of an
		// unbroken run from 0.
		if err != nil || l < 0 || l >= len(names) || strconv.Itoa(l) != rest[:i] {
			continue
		}
		seen[l] = true
	}
	n := 0
	for seen[n] {
		n++
	}
	return n
}

// CheckLayerCount compares a configured number of layers, read from key,
// with the number the weights hold (LayersHeld), and returns an error
// naming the key and both numbers when the configuration asks for more.
// Run it before anything is built per configured layer.
func CheckLayerCount(key string, configured, held int) error {
	if configured <= held {
		return nil
	}
	what := "no layers"
	switch held {
	case 0:
	case 1:
		what = "1 layer (layer 0)"
	default:
		what = fmt.Sprintf("%d layers (0 to %d)", held, held-1)
	}
	return fmt.Errorf("key %q is %d, but the weights hold %s", key, configured, what)
}

// CheckHeld checks c against the tensors a file holds (canonical names
// and shapes): first that the file holds every layer the configuration
// counts (before any per-layer list is built), then that c's sizes are
// within their limits, then that every weight c calls for that the file
// holds has the shape c gives it. Missing weights are left to the caller,
// which knows which may be absent. Errors name the key or the tensor and
// the numbers.
func (c *Config) CheckHeld(held map[string][]int) error {
	names := make([]string, 0, len(held))
	for n := range held {
		names = append(names, n)
	}
	if err := CheckLayerCount("num_hidden_layers", c.NumLayers, LayersHeld(names, LayerTensorPrefix)); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := c.Validate(); err != nil {
		return err
	}
	var bad []string
	for _, w := range c.Weights() {
		s, ok := held[w.Name]
		if ok && !slices.Equal(s, w.Shape) {
			bad = append(bad, fmt.Sprintf("tensor %q has shape %v, the config calls for %v", w.Name, s, w.Shape))
		}
	}
	switch {
	case len(bad) == 0:
		return nil
	case len(bad) > 4:
		bad = append(bad[:4], fmt.Sprintf("and %d more", len(bad)-4))
	}
	return fmt.Errorf("%s (%s)", strings.Join(bad, "; "), c.SizeKeys())
}

// SizeKeys is a short line of c's shape keys and their values, for errors
// about shapes.
func (c *Config) SizeKeys() string {
	s := fmt.Sprintf("vocab_size=%d hidden_size=%d intermediate_size=%d state_size=%d conv_kernel=%d time_step_rank=%d",
		c.VocabSize, c.HiddenSize, c.Intermediate, c.StateSize, c.ConvKernel, c.TimeStepRank)
	if m := c.Memory; m != nil {
		s += fmt.Sprintf(" memory.summary_dim=%d memory.score_dim=%d memory.attn_dim=%d", m.SummaryDim, m.ScoreDim, m.AttnDim)
	}
	return s
}
