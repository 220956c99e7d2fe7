package gguf

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/memmamba/memmamba/arch"
	"github.com/memmamba/memmamba/convert/source"
)

// Architectures (general.architecture).
const (
	// ArchMamba is llama.cpp's Mamba-1 architecture.
	ArchMamba = "mamba"
	// ArchMemMamba is this project's: mamba's tensors and keys plus the Note
	// Blocks (see README.md). llama.cpp does not know it.
	ArchMemMamba = "memmamba"
)

// Metadata keys shared by every architecture.
const (
	KeyArchitecture = "general.architecture"
	KeyName         = "general.name"
	KeyFileType     = "general.file_type"
)

// MambaContextLength is what llama.cpp's convert_hf_to_gguf.py writes as
// mamba.context_length: Mamba has no trained context length, the loader
// needs a value.
const MambaContextLength = 1 << 20

// Top-level GGUF tensor names of the mamba architecture.
const (
	TokenEmbdName  = "token_embd.weight"
	OutputNormName = "output_norm.weight"
	OutputName     = "output.weight"
)

// layerNames pairs each canonical per-layer suffix (after
// "backbone.layers.N.") with its GGUF suffix (after "blk.N."). The mixer
// names are llama.cpp's (llama-arch.cpp, LLM_ARCH_MAMBA); the note_* names
// are this project's for the memmamba architecture.
var layerNames = func() [][2]string {
	ns := [][2]string{
		{"norm.weight", "attn_norm.weight"},
		{"mixer.in_proj.weight", "ssm_in.weight"},
		{"mixer.in_proj.bias", "ssm_in.bias"},
		{"mixer.conv1d.weight", "ssm_conv1d.weight"},
		{"mixer.conv1d.bias", "ssm_conv1d.bias"},
		{"mixer.x_proj.weight", "ssm_x.weight"},
		{"mixer.dt_proj.weight", "ssm_dt.weight"},
		{"mixer.dt_proj.bias", "ssm_dt.bias"},
		{"mixer.A_log", "ssm_a"},
		{"mixer.D", "ssm_d"},
		{"mixer.out_proj.weight", "ssm_out.weight"},
		{"mixer.out_proj.bias", "ssm_out.bias"},
		{"note.score.fc1.weight", "note_score_fc1.weight"},
		{"note.score.fc1.bias", "note_score_fc1.bias"},
		{"note.score.fc2.weight", "note_score_fc2.weight"},
		{"note.score.fc2.bias", "note_score_fc2.bias"},
		{"note.trigger.weight", "note_trigger.weight"},
		{"note.trigger.bias", "note_trigger.bias"},
		{"note.summary.weight", "note_summary.weight"},
	}
	for _, a := range [][2]string{{"token_attn", "note_tok_attn"}, {"layer_attn", "note_lay_attn"}} {
		for _, p := range [][2]string{{"norm", "norm"}, {"q_proj", "q"}, {"k_proj", "k"}, {"v_proj", "v"}, {"o_proj", "o"}, {"gate", "gate"}} {
			ns = append(ns, [2]string{"note." + a[0] + "." + p[0] + ".weight", a[1] + "_" + p[1] + ".weight"})
		}
		ns = append(ns, [2]string{"note." + a[0] + ".gate.bias", a[1] + "_gate.bias"})
	}
	return ns
}()

var (
	canonToGGUF = map[string]string{}
	ggufToCanon = map[string]string{}
)

func init() {
	for _, p := range layerNames {
		canonToGGUF[p[0]] = p[1]
		ggufToCanon[p[1]] = p[0]
	}
}

// splitLayer splits "<prefix>N.<rest>" into N and rest. N is a decimal
// layer index without leading zeros, below 1e6.
func splitLayer(name, prefix string) (int, string, bool) {
	s, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return 0, "", false
	}
	num, rest, ok := strings.Cut(s, ".")
	if !ok || num == "" || len(num) > 6 || (len(num) > 1 && num[0] == '0') {
		return 0, "", false
	}
	l, err := strconv.Atoi(num)
	if err != nil || l < 0 {
		return 0, "", false
	}
	return l, rest, true
}

// MambaTensorName maps a canonical tensor name (SPEC.md, "Weight names") to
// its GGUF name: llama.cpp's for the Mamba tensors, this project's note_*
// names for the Note Block. ok is false for an unknown name.
func MambaTensorName(canonical string) (string, bool) {
	switch canonical {
	case arch.EmbeddingsName:
		return TokenEmbdName, true
	case arch.NormFName:
		return OutputNormName, true
	case arch.LMHeadName:
		return OutputName, true
	}
	l, rest, ok := splitLayer(canonical, "backbone.layers.")
	if !ok {
		return "", false
	}
	g, ok := canonToGGUF[rest]
	if !ok {
		return "", false
	}
	return fmt.Sprintf("blk.%d.%s", l, g), true
}

// CanonicalFromMamba is the inverse of MambaTensorName.
func CanonicalFromMamba(name string) (string, bool) {
	switch name {
	case TokenEmbdName:
		return arch.EmbeddingsName, true
	case OutputNormName:
		return arch.NormFName, true
	case OutputName:
		return arch.LMHeadName, true
	}
	l, rest, ok := splitLayer(name, "blk.")
	if !ok {
		return "", false
	}
	c, ok := ggufToCanon[rest]
	if !ok {
		return "", false
	}
	return arch.LayerPrefix(l) + c, true
}

// ToMamba converts a canonical tensor's values, in place, to what the GGUF
// mamba architecture stores, and returns the stored shape (PyTorch order):
//
//   - mixer.A_log (E x N) is stored as ssm_a = -exp(A_log), as llama.cpp's
//     convert_hf_to_gguf.py does;
//   - mixer.conv1d.weight (E x 1 x K) is stored squeezed, E x K.
//
// Every other tensor is unchanged.
func ToMamba(canonical string, shape []int, data []float32) ([]int, error) {
	switch {
	case strings.HasSuffix(canonical, ".mixer.A_log"):
		for i, v := range data {
			data[i] = float32(-math.Exp(float64(v)))
		}
	case strings.HasSuffix(canonical, ".mixer.conv1d.weight"):
		if len(shape) != 3 || shape[1] != 1 {
			return nil, fmt.Errorf("tensor %q: shape %v, want E x 1 x K", canonical, shape)
		}
		return []int{shape[0], shape[2]}, nil
	}
	return append([]int(nil), shape...), nil
}

// FromMamba is the inverse of ToMamba, keyed by the GGUF name: ssm_a becomes
// A_log = log(-ssm_a) (every value must be negative and finite; the round
// trip A_log -> ssm_a -> A_log is exact to float32 rounding, not bit-exact),
// and ssm_conv1d.weight E x K becomes E x 1 x K (E x 1 x K is accepted as
// is).
func FromMamba(name string, shape []int, data []float32) ([]int, error) {
	switch {
	case strings.HasSuffix(name, ".ssm_a"):
		for i, v := range data {
			if !(v < 0) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("tensor %q: element %d is %v; ssm_a = -exp(A_log) must be negative and finite", name, i, v)
			}
			data[i] = float32(math.Log(-float64(v)))
		}
	case strings.HasSuffix(name, ".ssm_conv1d.weight"):
		switch {
		case len(shape) == 2:
			return []int{shape[0], 1, shape[1]}, nil
		case len(shape) == 3 && shape[1] == 1:
		default:
			return nil, fmt.Errorf("tensor %q: shape %v, want E x K", name, shape)
		}
	}
	return append([]int(nil), shape...), nil
}

// Per-architecture metadata key suffixes ("<arch>." + suffix).
const (
	keyContextLength   = "context_length"
	keyEmbeddingLength = "embedding_length"
	keyBlockCount      = "block_count"
	keyFeedForward     = "feed_forward_length"
	keyHeadCount       = "attention.head_count"
	keyRMSEps          = "attention.layer_norm_rms_epsilon"
	keyVocabSize       = "vocab_size"
	keyConvKernel      = "ssm.conv_kernel"
	keyInnerSize       = "ssm.inner_size"
	keyStateSize       = "ssm.state_size"
	keyTimeStepRank    = "ssm.time_step_rank"
	keyDtBCRMS         = "ssm.dt_b_c_rms"
	// keyDtBCRMSEps is this project's key for Falcon-Mamba's mixer_rms_eps.
	// llama.cpp has none: it normalises delta, B and C with the layer norms'
	// eps (attention.layer_norm_rms_epsilon) and ignores this key.
	keyDtBCRMSEps = "ssm.dt_b_c_rms_epsilon"

	keyMemPool       = "memory.pool_size"
	keyMemSummary    = "memory.summary_dim"
	keyMemScore      = "memory.score_dim"
	keyMemAttn       = "memory.attn_dim"
	keyMemHeads      = "memory.head_count"
	keyMemTauNote    = "memory.tau_note"
	keyMemTauRetr    = "memory.tau_retrieve"
	keyMemCrossEvery = "memory.cross_layer_every"
	keyMemEviction   = "memory.eviction"
)

// ArchOf is the GGUF architecture of a model configuration: "mamba" for
// Mamba-1 and Falcon-Mamba (as llama.cpp's converter writes
// FalconMambaForCausalLM, with ssm.dt_b_c_rms true), "memmamba" for
// MemMamba.
func ArchOf(c *arch.Config) string {
	if c.ModelType == arch.TypeFalconMamba {
		return ArchMamba
	}
	return c.ModelType
}

// ConfigToKV returns the GGUF metadata of a model configuration, in a fixed
// order: general.architecture ("mamba" or "memmamba", see ArchOf) and the
// keys llama.cpp's mamba loader reads (the same as convert_hf_to_gguf.py's
// MambaModel writes: context_length 2^20, feed_forward_length and
// attention.head_count 0, ssm.*, layer_norm_rms_epsilon as float32,
// ssm.dt_b_c_rms: true for Falcon-Mamba, false otherwise), plus
// <arch>.vocab_size, for Falcon-Mamba mamba.ssm.dt_b_c_rms_epsilon (its
// mixer_rms_eps as float32, this project's key) and, for MemMamba,
// memmamba.memory.*. Biases and tied embeddings are told by which tensors
// are present, as in llama.cpp.
func ConfigToKV(c *arch.Config) ([]KV, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	a := ArchOf(c)
	u := func(v int) uint32 { return uint32(v) }
	kvs := []KV{
		{KeyArchitecture, a},
		{a + "." + keyVocabSize, u(c.VocabSize)},
		{a + "." + keyContextLength, uint32(MambaContextLength)},
		{a + "." + keyEmbeddingLength, u(c.HiddenSize)},
		{a + "." + keyFeedForward, uint32(0)},
		{a + "." + keyHeadCount, uint32(0)},
		{a + "." + keyBlockCount, u(c.NumLayers)},
		{a + "." + keyConvKernel, u(c.ConvKernel)},
		{a + "." + keyInnerSize, u(c.Intermediate)},
		{a + "." + keyStateSize, u(c.StateSize)},
		{a + "." + keyTimeStepRank, u(c.TimeStepRank)},
		{a + "." + keyRMSEps, float32(c.LayerNormEps)},
		{a + "." + keyDtBCRMS, c.DtBCRMS},
	}
	if c.DtBCRMS {
		kvs = append(kvs, KV{a + "." + keyDtBCRMSEps, float32(c.MixerRMSEps)})
	}
	for _, kv := range kvs {
		if v, ok := kv.Value.(uint32); ok && v > math.MaxInt32 {
			return nil, fmt.Errorf("gguf: metadata key %q: %d is too large", kv.Key, v)
		}
	}
	if m := c.Memory; m != nil {
		kvs = append(kvs,
			KV{a + "." + keyMemPool, u(m.PoolSize)},
			KV{a + "." + keyMemSummary, u(m.SummaryDim)},
			KV{a + "." + keyMemScore, u(m.ScoreDim)},
			KV{a + "." + keyMemAttn, u(m.AttnDim)},
			KV{a + "." + keyMemHeads, u(m.NumHeads)},
			KV{a + "." + keyMemTauNote, m.TauNote},
			KV{a + "." + keyMemTauRetr, m.TauRetrieve},
			KV{a + "." + keyMemCrossEvery, u(m.CrossLayerEvery)},
			KV{a + "." + keyMemEviction, m.Eviction},
		)
	}
	return kvs, nil
}

// ConfigFromKV builds a model configuration from GGUF metadata (as
// File.Metadata returns it) and the file's tensors (GGUF names, PyTorch
// shapes, as File.Tensors returns them). The vocabulary size is the rows of
// token_embd.weight (llama.cpp pads it to a multiple of 8), else
// <arch>.vocab_size, else the length of tokenizer.ggml.tokens. use_bias,
// use_conv_bias and tie_word_embeddings follow from which tensors exist.
// Errors name the key.
func ConfigFromKV(kv map[string]any, tensors []source.Tensor) (*arch.Config, error) {
	a, _ := kv[KeyArchitecture].(string)
	if a != ArchMamba && a != ArchMemMamba {
		return nil, fmt.Errorf("gguf: metadata key %q is %q; want %q or %q", KeyArchitecture, kv[KeyArchitecture], ArchMamba, ArchMemMamba)
	}
	var errs []error
	geti := func(suffix string, required bool) int {
		key := a + "." + suffix
		v, ok := kv[key]
		if !ok {
			if required {
				errs = append(errs, fmt.Errorf("gguf: required metadata key %q is missing", key))
			}
			return 0
		}
		n, ok := asUint(v)
		if !ok || n > 1<<40 {
			errs = append(errs, fmt.Errorf("gguf: metadata key %q: want a non-negative integer, got %v (%T)", key, v, v))
			return 0
		}
		return int(n)
	}
	getf := func(suffix string, def float64) float64 {
		key := a + "." + suffix
		v, ok := kv[key]
		if !ok {
			return def
		}
		switch x := v.(type) {
		case float32:
			// Back to the shortest decimal that the float32 came from, so
			// 1e-5 stored as float32 reads back as 1e-5.
			f, _ := strconv.ParseFloat(strconv.FormatFloat(float64(x), 'g', -1, 32), 64)
			return f
		case float64:
			return x
		}
		errs = append(errs, fmt.Errorf("gguf: metadata key %q: want a float, got %v (%T)", key, v, v))
		return 0
	}
	modelType := a
	dtbc := false
	if v, ok := kv[a+"."+keyDtBCRMS]; ok {
		b, isBool := v.(bool)
		switch {
		case !isBool:
			errs = append(errs, fmt.Errorf("gguf: metadata key %q: want a bool, got %v (%T)", a+"."+keyDtBCRMS, v, v))
		case b && a != ArchMamba:
			errs = append(errs, fmt.Errorf("gguf: metadata key %q is true: RMS norms on dt, B and C (Falcon-Mamba) are only for architecture %q", a+"."+keyDtBCRMS, ArchMamba))
		case b:
			modelType, dtbc = arch.TypeFalconMamba, true
		}
	}
	c := &arch.Config{
		ModelType:    modelType,
		HiddenSize:   geti(keyEmbeddingLength, true),
		NumLayers:    geti(keyBlockCount, true),
		ConvKernel:   geti(keyConvKernel, true),
		Intermediate: geti(keyInnerSize, true),
		StateSize:    geti(keyStateSize, true),
		TimeStepRank: geti(keyTimeStepRank, true),
		LayerNormEps: getf(keyRMSEps, 1e-5),
	}
	if dtbc {
		// A GGUF from llama.cpp's converter has no eps of its own for
		// these norms: Hugging Face's default, which the Falcon-Mamba
		// checkpoints use (llama.cpp itself runs them with the layer
		// norms' eps; README.md).
		c.DtBCRMS, c.MixerRMSEps = true, getf(keyDtBCRMSEps, arch.DefaultMixerRMSEps)
	}
	has := map[string][]int{}
	for _, t := range tensors {
		has[t.Name] = t.Shape
	}
	if s, ok := has[TokenEmbdName]; ok && len(s) == 2 {
		c.VocabSize = s[0]
	} else if v := geti(keyVocabSize, false); v > 0 {
		c.VocabSize = v
	} else if toks, ok := kv[KeyTokens].([]string); ok {
		c.VocabSize = len(toks)
	} else {
		errs = append(errs, fmt.Errorf("gguf: vocabulary size unknown: no %q tensor, %q key or %q", TokenEmbdName, a+"."+keyVocabSize, KeyTokens))
	}
	_, c.UseBias = has["blk.0.ssm_in.bias"]
	_, c.UseConvBias = has["blk.0.ssm_conv1d.bias"]
	_, hasOut := has[OutputName]
	c.TieEmbeddings = !hasOut
	if a == ArchMemMamba {
		c.Memory = &arch.Memory{
			PoolSize:        geti(keyMemPool, true),
			SummaryDim:      geti(keyMemSummary, true),
			ScoreDim:        geti(keyMemScore, true),
			AttnDim:         geti(keyMemAttn, true),
			NumHeads:        geti(keyMemHeads, true),
			TauNote:         getf(keyMemTauNote, 0.5),
			TauRetrieve:     getf(keyMemTauRetr, 0.3),
			CrossLayerEvery: geti(keyMemCrossEvery, true),
			Eviction:        arch.EvictPriority,
		}
		if v, ok := kv[a+"."+keyMemEviction]; ok {
			s, ok := v.(string)
			if !ok {
				errs = append(errs, fmt.Errorf("gguf: metadata key %q: want a string, got %T", a+"."+keyMemEviction, v))
			}
			c.Memory.Eviction = s
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	// The block count is compared with the blocks the file holds before
	// anything is built per block.
	names := make([]string, len(tensors))
	for i, t := range tensors {
		names[i] = t.Name
	}
	if err := arch.CheckLayerCount(a+"."+keyBlockCount, c.NumLayers, arch.LayersHeld(names, "blk.")); err != nil {
		return nil, fmt.Errorf("gguf: metadata %w", err)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	return c, nil
}
