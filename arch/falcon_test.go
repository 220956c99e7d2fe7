package arch

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestFalconMambaConfig: model_type falcon_mamba (or its architecture name)
// is a Mamba-1 backbone with the dt/B/C norms on and mixer_rms_eps read or
// defaulted; the keys round-trip through the canonical JSON and are absent
// from other models' JSON.
func TestFalconMambaConfig(t *testing.T) {
	const base = `"vocab_size":65024,"hidden_size":64,"num_hidden_layers":2,"layer_norm_epsilon":1e-5`
	for _, tc := range []struct {
		json string
		eps  float64
	}{
		{`{"model_type":"falcon_mamba",` + base + `}`, DefaultMixerRMSEps},
		{`{"model_type":"falcon_mamba","mixer_rms_eps":1e-4,` + base + `}`, 1e-4},
		{`{"model_type":"FalconMambaForCausalLM","mixer_rms_eps":1e-6,` + base + `}`, 1e-6},
	} {
		c, err := ParseConfig([]byte(tc.json))
		if err != nil {
			t.Fatalf("%s: %v", tc.json, err)
		}
		if c.ModelType != TypeFalconMamba || !c.DtBCRMS || c.MixerRMSEps != tc.eps || c.Memory != nil || c.IsMemMamba() {
			t.Errorf("%s: got %+v", tc.json, c)
		}
		back, err := ParseConfig(c.JSON())
		if err != nil || *back != *c {
			t.Errorf("%s: canonical JSON round trip: %+v, %v", tc.json, back, err)
		}
	}
	m, err := ParseConfig([]byte(`{"model_type":"mamba",` + base + `}`))
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(m.JSON(), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"dt_b_c_rms", "mixer_rms_eps"} {
		if _, ok := raw[k]; ok {
			t.Errorf("a plain Mamba's canonical JSON has key %q", k)
		}
	}
}

// TestFalconMambaConfigErrors: each bad combination is one error naming the
// key.
func TestFalconMambaConfigErrors(t *testing.T) {
	const base = `"vocab_size":4,"hidden_size":8,"num_hidden_layers":1`
	for _, tc := range []struct{ json, want string }{
		{`{"model_type":"falcon_mamba","mixer_rms_eps":0,` + base + `}`, `"mixer_rms_eps" must be positive`},
		{`{"model_type":"falcon_mamba","mixer_rms_eps":-1e-6,` + base + `}`, `"mixer_rms_eps" must be positive`},
		{`{"model_type":"falcon_mamba","mixer_rms_eps":"x",` + base + `}`, `"mixer_rms_eps": want a number`},
		{`{"model_type":"falcon_mamba","dt_b_c_rms":false,` + base + `}`, `needs key "dt_b_c_rms" true`},
		{`{"model_type":"mamba","dt_b_c_rms":true,` + base + `}`, `"dt_b_c_rms": true is only valid with model_type "falcon_mamba"`},
	} {
		_, err := ParseConfig([]byte(tc.json))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.json, err, tc.want)
		}
	}
	c := &Config{ModelType: TypeMamba, VocabSize: 4, HiddenSize: 8, NumLayers: 1, StateSize: 1, ConvKernel: 1,
		Intermediate: 16, TimeStepRank: 1, LayerNormEps: 1e-5, MixerRMSEps: 1e-6}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), `only valid with model_type "falcon_mamba"`) {
		t.Errorf("mamba with mixer_rms_eps: %v", err)
	}
}
