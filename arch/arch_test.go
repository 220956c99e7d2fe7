package arch

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseConfigAliases(t *testing.T) {
	hf := `{"model_type":"mamba","vocab_size":50280,"hidden_size":768,"num_hidden_layers":24,
		"state_size":16,"conv_kernel":4,"expand":2,"time_step_rank":"auto","layer_norm_epsilon":1e-5,
		"use_bias":false,"use_conv_bias":true,"tie_word_embeddings":true,"bos_token_id":0}`
	ssm := `{"d_model":768,"n_layer":24,"vocab_size":50280,"ssm_cfg":{"d_state":16,"d_conv":4,"expand":2},
		"rms_norm":true,"residual_in_fp32":true,"fused_add_norm":true,"pad_vocab_size_multiple":8}`
	a, err := ParseConfig([]byte(hf))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseConfig([]byte(ssm))
	if err != nil {
		t.Fatal(err)
	}
	if string(a.JSON()) != string(b.JSON()) {
		t.Errorf("HF and mamba_ssm configs differ:\n%s\n%s", a.JSON(), b.JSON())
	}
	if a.Intermediate != 1536 || a.TimeStepRank != 48 || a.Memory != nil {
		t.Errorf("defaults not applied: %+v", a)
	}
}

func TestParseConfigMemoryDefaults(t *testing.T) {
	c, err := ParseConfig([]byte(`{"model_type":"memmamba","vocab_size":256,"d_model":64,"n_layer":4}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Memory{PoolSize: 50, SummaryDim: 64, ScoreDim: 16, AttnDim: 64, NumHeads: 4, TauNote: 0.5,
		TauRetrieve: 0.3, CrossLayerEvery: 4, Eviction: EvictPriority}
	if *c.Memory != want {
		t.Errorf("memory = %+v, want %+v", *c.Memory, want)
	}
	if !c.HasCrossLayer(3) || c.HasCrossLayer(2) {
		t.Error("cross-layer placement wrong")
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{`, "config"},
		{`{"hidden_size":8,"num_hidden_layers":1}`, `"vocab_size" is missing`},
		{`{"vocab_size":0,"hidden_size":8,"num_hidden_layers":1}`, `"vocab_size" must be positive`},
		{`{"vocab_size":"x","hidden_size":8,"num_hidden_layers":1}`, `"vocab_size": want an integer`},
		{`{"vocab_size":3.5,"hidden_size":8,"num_hidden_layers":1}`, `"vocab_size": want an integer`},
		{`{"vocab_size":4,"hidden_size":8,"num_hidden_layers":1,"model_type":"gpt2"}`, `"model_type"`},
		{`{"vocab_size":4,"hidden_size":8,"num_hidden_layers":1,"time_step_rank":"big"}`, `"time_step_rank"`},
		{`{"vocab_size":4,"hidden_size":8,"num_hidden_layers":1,"model_type":"memmamba","memory":{"attn_dim":10,"n_heads":4}}`, `"memory.attn_dim" (10) must be a multiple`},
		{`{"vocab_size":4,"hidden_size":8,"num_hidden_layers":1,"model_type":"memmamba","memory":{"eviction":"lru"}}`, `"memory.eviction"`},
		{`{"vocab_size":4,"hidden_size":8,"num_hidden_layers":1,"model_type":"memmamba","memory":{"pool_size":-1}}`, `"memory.pool_size" must be positive`},
	} {
		_, err := ParseConfig([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
}

func TestCanonicalName(t *testing.T) {
	for in, want := range map[string]string{
		"module.backbone.embedding.weight":    EmbeddingsName,
		"model.backbone.layers.0.norm.weight": "backbone.layers.0.norm.weight",
		"module.model.lm_head.weight":         LMHeadName,
		"backbone.layers.1.mixer.A_log":       "backbone.layers.1.mixer.A_log",
		"backbone.embeddings.weight":          EmbeddingsName,
		"something.else":                      "something.else",
	} {
		if got := CanonicalName(in); got != want {
			t.Errorf("CanonicalName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestWeightsMatchReference compares Weights() with the tensor names and
// shapes of the reference's state_dict, as stored in the fixtures.
func TestWeightsMatchReference(t *testing.T) {
	for _, name := range []string{"mamba-tiny", "memmamba-priority", "memmamba-bf16"} {
		dir := filepath.Join("..", "testdata", "models", name)
		raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		c, err := ParseConfig(raw)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string][]int{}
		for _, w := range c.Weights() {
			if !w.Optional {
				got[w.Name] = w.Shape
			}
		}
		want := safetensorsShapes(t, filepath.Join(dir, "model.safetensors"))
		for n, s := range want {
			if g, ok := got[n]; !ok {
				t.Errorf("%s: reference tensor %s not in Weights()", name, n)
			} else if !slices.Equal(g, s) {
				t.Errorf("%s: %s has shape %v, Weights() says %v", name, n, s, g)
			}
		}
		for n := range got {
			if _, ok := want[n]; !ok {
				t.Errorf("%s: Weights() lists %s, the reference has no such tensor", name, n)
			}
		}
	}
}

func safetensorsShapes(t *testing.T, path string) map[string][]int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(b)
	var h map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &h); err != nil {
		t.Fatal(err)
	}
	out := map[string][]int{}
	for k, v := range h {
		if k == "__metadata__" {
			continue
		}
		var e struct{ Shape []int }
		if err := json.Unmarshal(v, &e); err != nil {
			t.Fatal(err)
		}
		out[k] = e.Shape
	}
	return out
}

// TestCrossLayerGroup pins the grouping rule against the SPEC's form: layer
// l runs cross-layer retrieval when (l+1) % p == 0, over the pools of layers
// l-p+1..l, and a last group cut short by the layer count has no reader.
func TestCrossLayerGroup(t *testing.T) {
	for _, tc := range []struct{ layers, p int }{{4, 4}, {10, 4}, {7, 3}, {5, 1}, {6, 0}, {3, 5}} {
		c := &Config{ModelType: TypeMemMamba, NumLayers: tc.layers, Memory: &Memory{CrossLayerEvery: tc.p}}
		for l := range tc.layers {
			lo, hi, ok := c.CrossLayerGroup(l)
			wantOK := tc.p > 0 && (l/tc.p+1)*tc.p-1 < tc.layers
			if ok != wantOK {
				t.Fatalf("%d layers, p %d: layer %d: ok %v, want %v", tc.layers, tc.p, l, ok, wantOK)
			}
			if !ok {
				continue
			}
			if lo > l || l > hi || hi-lo+1 != tc.p || (hi+1)%tc.p != 0 {
				t.Errorf("%d layers, p %d: layer %d: group %d..%d", tc.layers, tc.p, l, lo, hi)
			}
			if got, want := c.HasCrossLayer(l), (l+1)%tc.p == 0; got != want {
				t.Errorf("%d layers, p %d: HasCrossLayer(%d) = %v, want %v", tc.layers, tc.p, l, got, want)
			}
		}
	}
	if _, _, ok := (&Config{ModelType: TypeMamba, NumLayers: 4}).CrossLayerGroup(3); ok {
		t.Error("a plain Mamba model has a cross-layer group")
	}
}
