// Package arch is the model's definition in Go: the configuration of a Mamba
// or MemMamba model (../shared/SPEC.md, "Notation and configuration"), how it
// is read from a Hugging Face or mamba_ssm config.json, and the canonical list
// of weights with their shapes ("Weight names").
//
// Every other package (the converter, the model file, the runtime) takes its
// sizes and names from here, so the SPEC is implemented once.
//
// # The weights: one table
//
// Table holds one row per tensor of the canonical state_dict (a layer's
// tensors once, with "{l}" for the layer): its name, its shape in the SPEC's
// notation (Dim), the config keys that switch it on (Presence), its role,
// whether the converter may quantise it, and which part of the runtime
// reads it (Reader). Everything that names or sizes a weight reads it: the
// converter's validation and quantisation policy (Config.Weights, in the
// model file's order), the runtime's binder and the ONNX Runtime graphs
// (Config.Weight and Config.WeightName by WeightID), and the cross-layer
// attention's weights follow the grouping rule, Config.CrossLayerGroup.
//
// Why a table keyed by WeightID and not struct tags read by reflection, as
// ollama binds GGUF tensors (`gguf:"output,alt:token_embd"`): the runtime's
// weight structs hold unexported fields of several kinds (ops.Matrix,
// []float32, float32 scalars, -exp(A_log) computed at load), which
// reflection cannot set without unsafe; the ONNX Runtime graphs have no
// struct to tag, they need names only; and the converter needs the weights
// in the file's order with their shapes before any struct exists. A table
// is plain data that all three read and that a test compares with the
// SPEC's list line by line (TestWeightsMatchSpec), and the binding (which
// field takes which WeightID) stays a line of ordinary code that the
// compiler checks.
package arch

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// Model types accepted in config.json's "model_type".
const (
	TypeMamba    = "mamba"
	TypeMemMamba = "memmamba"
	// TypeFalconMamba is Hugging Face's FalconMambaForCausalLM: a Mamba-1
	// backbone whose mixer puts a weightless RMSNorm (eps mixer_rms_eps) on
	// delta, B and C right after x_proj splits them (Config.DtBCRMS). The
	// SPEC is silent on it; README.md records the decision.
	TypeFalconMamba = "falcon_mamba"
)

// DefaultMixerRMSEps is Hugging Face FalconMambaConfig's default
// mixer_rms_eps, the eps of the norms on delta, B and C.
const DefaultMixerRMSEps = 1e-6

// Eviction policies of a Note Block pool.
const (
	EvictPriority = "priority"
	EvictFIFO     = "fifo"
)

// Config is the resolved configuration of one model: every default applied,
// every alias folded into its canonical key. Field tags are the canonical
// config.json keys; the same struct is stored in the model file's header.
type Config struct {
	ModelType     string  `json:"model_type" msgpack:"model_type"`
	VocabSize     int     `json:"vocab_size" msgpack:"vocab_size"`
	HiddenSize    int     `json:"hidden_size" msgpack:"hidden_size"`
	NumLayers     int     `json:"num_hidden_layers" msgpack:"num_hidden_layers"`
	StateSize     int     `json:"state_size" msgpack:"state_size"`
	ConvKernel    int     `json:"conv_kernel" msgpack:"conv_kernel"`
	Intermediate  int     `json:"intermediate_size" msgpack:"intermediate_size"`
	TimeStepRank  int     `json:"time_step_rank" msgpack:"time_step_rank"`
	LayerNormEps  float64 `json:"layer_norm_epsilon" msgpack:"layer_norm_epsilon"`
	UseBias       bool    `json:"use_bias" msgpack:"use_bias"`
	UseConvBias   bool    `json:"use_conv_bias" msgpack:"use_conv_bias"`
	TieEmbeddings bool    `json:"tie_word_embeddings" msgpack:"tie_word_embeddings"`
	// DtBCRMS is Falcon-Mamba's mixer: delta, B and C each go through a
	// weightless RMSNorm with eps MixerRMSEps after x_proj (llama.cpp's
	// GGUF key mamba.ssm.dt_b_c_rms). True exactly for falcon_mamba; the
	// keys are omitted otherwise, so other models' headers are unchanged.
	DtBCRMS     bool    `json:"dt_b_c_rms,omitempty" msgpack:"dt_b_c_rms,omitempty"`
	MixerRMSEps float64 `json:"mixer_rms_eps,omitempty" msgpack:"mixer_rms_eps,omitempty"`
	// Memory is nil for plain Mamba models.
	Memory *Memory `json:"memory,omitempty" msgpack:"memory,omitempty"`
}

// Memory is the Note Block configuration of a MemMamba model.
type Memory struct {
	PoolSize        int     `json:"pool_size" msgpack:"pool_size"`
	SummaryDim      int     `json:"summary_dim" msgpack:"summary_dim"`
	ScoreDim        int     `json:"score_dim" msgpack:"score_dim"`
	AttnDim         int     `json:"attn_dim" msgpack:"attn_dim"`
	NumHeads        int     `json:"n_heads" msgpack:"n_heads"`
	TauNote         float64 `json:"tau_note" msgpack:"tau_note"`
	TauRetrieve     float64 `json:"tau_retrieve" msgpack:"tau_retrieve"`
	CrossLayerEvery int     `json:"cross_layer_every" msgpack:"cross_layer_every"`
	Eviction        string  `json:"eviction" msgpack:"eviction"`
}

// IsMemMamba reports whether the model has Note Blocks.
func (c *Config) IsMemMamba() bool { return c.ModelType == TypeMemMamba }

// MixerEps is the eps of the weightless norms on delta, B and C (only
// meaningful when DtBCRMS).
func (c *Config) MixerEps() float32 { return float32(c.MixerRMSEps) }

// CrossLayerGroup is the cross-layer grouping rule (SPEC.md step 5), the
// one place it is written: with p = memory.cross_layer_every > 0, the
// layers fall into groups of p consecutive layers, lo = p*floor(l/p) to
// hi = lo+p-1, and the last layer of a group, hi, runs cross-layer
// retrieval over the pools of lo..hi, reading them under its own
// layer_attn weights. ok is false when no layer reads layer l's pool:
// plain Mamba, p = 0, or l in a last group cut short by num_hidden_layers
// (its hi would be past the last layer). So layer l's pool is read by
// layer hi (the runtime keeps the keys and values of that attention in
// it), and layer l runs cross-layer retrieval when ok and hi == l, over
// the pools of layers lo..l.
func (c *Config) CrossLayerGroup(l int) (lo, hi int, ok bool) {
	if c.Memory == nil || c.Memory.CrossLayerEvery <= 0 || l < 0 {
		return 0, 0, false
	}
	p := c.Memory.CrossLayerEvery
	lo = l / p * p
	hi = lo + p - 1
	return lo, hi, hi < c.NumLayers
}

// HasCrossLayer reports whether layer l runs cross-layer retrieval (has
// layer_attn weights): it is the last layer of its CrossLayerGroup, that
// is p > 0 and (l+1) % p == 0.
func (c *Config) HasCrossLayer(l int) bool {
	_, hi, ok := c.CrossLayerGroup(l)
	return ok && hi == l
}

// ParseConfig reads a config.json (Hugging Face MambaConfig, mamba_ssm's
// MambaConfig with an ssm_cfg, or this project's MemMamba config), applies
// the SPEC's aliases and defaults, and validates the result. Unknown keys are
// ignored.
func ParseConfig(data []byte) (*Config, error) {
	c, err := parseConfig(data)
	if err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// ParseConfigFor is ParseConfig for a config.json beside the weights it
// describes; held maps the weights' canonical names to their shapes. The
// configured number of layers is compared with the layers the weights hold
// before anything else (see CheckHeld), so a config.json of 2^40 layers
// beside two layers of weights is one error naming both numbers, at once.
func ParseConfigFor(data []byte, held map[string][]int) (*Config, error) {
	c, err := parseConfig(data)
	if err != nil {
		return nil, err
	}
	if err := c.CheckHeld(held); err != nil {
		return nil, err
	}
	return c, nil
}

// MaxConfigSize bounds a config.json's length (real ones are about a
// kilobyte; internal/safeio reads config.json with the same bound).
const MaxConfigSize = 16 << 20

// parseConfig is ParseConfig without Validate.
func parseConfig(data []byte) (*Config, error) {
	if len(data) > MaxConfigSize {
		return nil, fmt.Errorf("config: %d bytes, above the limit of %d", len(data), MaxConfigSize)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	// mamba_ssm nests some SSM keys under ssm_cfg; top-level keys win.
	if sc, ok := raw["ssm_cfg"]; ok && string(sc) != "null" {
		var sub map[string]json.RawMessage
		if err := json.Unmarshal(sc, &sub); err != nil {
			return nil, fmt.Errorf("config: key \"ssm_cfg\": %w", err)
		}
		for k, v := range sub {
			if _, dup := raw[k]; !dup {
				raw[k] = v
			}
		}
	}
	p := parser{raw: raw}
	c := &Config{}
	c.ModelType = p.str("model_type", TypeMamba)
	switch c.ModelType {
	case TypeMamba, TypeMemMamba, TypeFalconMamba:
	case "mamba_ssm", "MambaForCausalLM":
		c.ModelType = TypeMamba
	case "FalconMambaForCausalLM":
		c.ModelType = TypeFalconMamba
	default:
		p.fail("model_type", fmt.Errorf("%q is not %q, %q or %q", c.ModelType, TypeMamba, TypeMemMamba, TypeFalconMamba))
	}
	c.VocabSize = p.reqInt("vocab_size")
	c.HiddenSize = p.reqInt("hidden_size", "d_model")
	c.NumLayers = p.reqInt("num_hidden_layers", "n_layer")
	c.StateSize = p.optInt(16, "state_size", "d_state")
	c.ConvKernel = p.optInt(4, "conv_kernel", "d_conv")
	expand := p.optInt(2, "expand")
	c.Intermediate = p.optInt(expand*c.HiddenSize, "intermediate_size", "d_inner")
	c.TimeStepRank = p.rank(c.HiddenSize)
	c.LayerNormEps = p.optFloat(1e-5, "layer_norm_epsilon", "rms_norm_eps", "norm_epsilon")
	c.UseBias = p.optBool(false, "use_bias", "bias")
	c.UseConvBias = p.optBool(true, "use_conv_bias", "conv_bias")
	c.TieEmbeddings = p.optBool(true, "tie_word_embeddings", "tie_embeddings")
	if c.ModelType == TypeFalconMamba {
		// Hugging Face's FalconMamba always normalises delta, B and C.
		c.DtBCRMS = p.optBool(true, "dt_b_c_rms")
		c.MixerRMSEps = p.optFloat(DefaultMixerRMSEps, "mixer_rms_eps")
	} else if p.optBool(false, "dt_b_c_rms") {
		p.fail("dt_b_c_rms", fmt.Errorf("true is only valid with model_type %q", TypeFalconMamba))
	}
	if c.ModelType == TypeMemMamba {
		mem, err := parseMemory(raw["memory"], c.HiddenSize)
		if err != nil {
			p.errs = append(p.errs, err)
		}
		c.Memory = mem
	}
	if err := errors.Join(p.errs...); err != nil {
		return nil, err
	}
	return c, nil
}

func parseMemory(data json.RawMessage, d int) (*Memory, error) {
	raw := map[string]json.RawMessage{}
	if len(data) > 0 && string(data) != "null" {
		if err := json.Unmarshal(data, &raw); err != nil {
			return nil, fmt.Errorf("config: key \"memory\": %w", err)
		}
	}
	p := parser{raw: raw, prefix: "memory."}
	m := &Memory{
		PoolSize:        p.optInt(50, "pool_size"),
		SummaryDim:      p.optInt(64, "summary_dim"),
		ScoreDim:        p.optInt(max(d/4, 1), "score_dim"),
		AttnDim:         p.optInt(64, "attn_dim"),
		NumHeads:        p.optInt(4, "n_heads"),
		TauNote:         p.optFloat(0.5, "tau_note"),
		TauRetrieve:     p.optFloat(0.3, "tau_retrieve"),
		CrossLayerEvery: p.optInt(4, "cross_layer_every"),
		Eviction:        p.str("eviction", EvictPriority),
	}
	return m, errors.Join(p.errs...)
}

// Validate checks that every size is positive and within its limit (see
// MaxLayers and the other bounds) and every choice known. Each error names
// the config key.
func (c *Config) Validate() error {
	errs := c.checkLimits()
	pos := func(key string, v int) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("config: key %q must be positive, got %d", key, v))
		}
	}
	pos("vocab_size", c.VocabSize)
	pos("hidden_size", c.HiddenSize)
	pos("num_hidden_layers", c.NumLayers)
	pos("state_size", c.StateSize)
	pos("conv_kernel", c.ConvKernel)
	pos("intermediate_size", c.Intermediate)
	pos("time_step_rank", c.TimeStepRank)
	if !(c.LayerNormEps > 0) || math.IsInf(c.LayerNormEps, 0) {
		errs = append(errs, fmt.Errorf("config: key \"layer_norm_epsilon\" must be positive and finite, got %v", c.LayerNormEps))
	}
	if c.ModelType == TypeFalconMamba {
		if !c.DtBCRMS {
			errs = append(errs, fmt.Errorf("config: model_type %q needs key \"dt_b_c_rms\" true (its mixer normalises delta, B and C)", TypeFalconMamba))
		}
		if !(c.MixerRMSEps > 0) || math.IsInf(c.MixerRMSEps, 0) {
			errs = append(errs, fmt.Errorf("config: key \"mixer_rms_eps\" must be positive and finite, got %v", c.MixerRMSEps))
		}
	} else if c.DtBCRMS || c.MixerRMSEps != 0 {
		errs = append(errs, fmt.Errorf("config: keys \"dt_b_c_rms\" and \"mixer_rms_eps\" are only valid with model_type %q", TypeFalconMamba))
	}
	switch c.ModelType {
	case TypeMamba, TypeFalconMamba:
		if c.Memory != nil {
			errs = append(errs, errors.New("config: key \"memory\" is only valid with model_type \"memmamba\""))
		}
	case TypeMemMamba:
		if c.Memory == nil {
			errs = append(errs, errors.New("config: model_type \"memmamba\" needs a \"memory\" object"))
			break
		}
		m := c.Memory
		pos("memory.pool_size", m.PoolSize)
		pos("memory.summary_dim", m.SummaryDim)
		pos("memory.score_dim", m.ScoreDim)
		pos("memory.attn_dim", m.AttnDim)
		pos("memory.n_heads", m.NumHeads)
		if m.NumHeads > 0 && m.AttnDim%m.NumHeads != 0 {
			errs = append(errs, fmt.Errorf("config: key \"memory.attn_dim\" (%d) must be a multiple of \"memory.n_heads\" (%d)", m.AttnDim, m.NumHeads))
		}
		if m.CrossLayerEvery < 0 {
			errs = append(errs, fmt.Errorf("config: key \"memory.cross_layer_every\" must not be negative, got %d", m.CrossLayerEvery))
		}
		for _, t := range []struct {
			key string
			v   float64
		}{{"memory.tau_note", m.TauNote}, {"memory.tau_retrieve", m.TauRetrieve}} {
			if math.IsNaN(t.v) || math.IsInf(t.v, 0) {
				errs = append(errs, fmt.Errorf("config: key %q must be finite", t.key))
			}
		}
		if m.Eviction != EvictPriority && m.Eviction != EvictFIFO {
			errs = append(errs, fmt.Errorf("config: key \"memory.eviction\" must be %q or %q, got %q", EvictPriority, EvictFIFO, m.Eviction))
		}
	default:
		errs = append(errs, fmt.Errorf("config: key \"model_type\": unknown %q", c.ModelType))
	}
	return errors.Join(errs...)
}

// JSON returns the canonical config.json of c (every key explicit).
func (c *Config) JSON() []byte {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		panic(err) // Config holds only plain values.
	}
	return b
}

// parser reads keys with aliases from a decoded JSON object and collects
// errors that name the key.
type parser struct {
	raw    map[string]json.RawMessage
	prefix string
	errs   []error
}

func (p *parser) fail(key string, err error) {
	p.errs = append(p.errs, fmt.Errorf("config: key %q: %w", p.prefix+key, err))
}

// lookup returns the first of keys present (and not null).
func (p *parser) lookup(keys ...string) (string, json.RawMessage, bool) {
	for _, k := range keys {
		if v, ok := p.raw[k]; ok && string(v) != "null" {
			return k, v, true
		}
	}
	return "", nil, false
}

func (p *parser) reqInt(keys ...string) int {
	k, v, ok := p.lookup(keys...)
	if !ok {
		p.errs = append(p.errs, fmt.Errorf("config: required key %q is missing", p.prefix+keys[0]))
		return 0
	}
	return p.toInt(k, v)
}

func (p *parser) optInt(def int, keys ...string) int {
	k, v, ok := p.lookup(keys...)
	if !ok {
		return def
	}
	return p.toInt(k, v)
}

func (p *parser) toInt(k string, v json.RawMessage) int {
	var f float64
	if err := json.Unmarshal(v, &f); err != nil {
		p.fail(k, fmt.Errorf("want an integer, got %s", v))
		return 0
	}
	if f != math.Trunc(f) {
		p.fail(k, fmt.Errorf("want an integer, got %s", v))
		return 0
	}
	// Far above every limit of Validate, and small enough that products
	// of two sizes (expand x hidden_size) cannot overflow before it runs.
	if math.Abs(f) > 1<<40 {
		p.fail(k, fmt.Errorf("%s is out of range (above 2^40)", v))
		return 0
	}
	return int(f)
}

func (p *parser) optFloat(def float64, keys ...string) float64 {
	k, v, ok := p.lookup(keys...)
	if !ok {
		return def
	}
	var f float64
	if err := json.Unmarshal(v, &f); err != nil {
		p.fail(k, fmt.Errorf("want a number, got %s", v))
	}
	return f
}

func (p *parser) optBool(def bool, keys ...string) bool {
	k, v, ok := p.lookup(keys...)
	if !ok {
		return def
	}
	var b bool
	if err := json.Unmarshal(v, &b); err != nil {
		p.fail(k, fmt.Errorf("want true or false, got %s", v))
	}
	return b
}

func (p *parser) str(key, def string) string {
	k, v, ok := p.lookup(key)
	if !ok {
		return def
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		p.fail(k, fmt.Errorf("want a string, got %s", v))
	}
	return s
}

// rank resolves time_step_rank / dt_rank, where "auto" means ceil(d/16).
func (p *parser) rank(d int) int {
	auto := (d + 15) / 16
	k, v, ok := p.lookup("time_step_rank", "dt_rank")
	if !ok {
		return auto
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		if s == "auto" {
			return auto
		}
		p.fail(k, fmt.Errorf("want an integer or \"auto\", got %q", s))
		return 0
	}
	return p.toInt(k, v)
}
