package gguf

import (
	"reflect"
	"strings"
	"testing"

	"github.com/memmamba/memmamba/arch"
)

const tinyFalcon = `{"model_type":"falcon_mamba","vocab_size":16,"hidden_size":8,"num_hidden_layers":2,"state_size":4,
"layer_norm_epsilon":1e-5,"mixer_rms_eps":1e-6}`

// kvMap turns ConfigToKV's list into File.Metadata's map.
func kvMap(kvs []KV) map[string]any {
	m := map[string]any{}
	for _, kv := range kvs {
		m[kv.Key] = kv.Value
	}
	return m
}

// TestFalconMambaKV: Falcon-Mamba is written as llama.cpp's converter
// writes FalconMambaForCausalLM (architecture mamba, ssm.dt_b_c_rms true,
// the layer norms' eps) plus this project's ssm.dt_b_c_rms_epsilon, and
// reads back to the same configuration; without the eps key (llama.cpp's
// own files) mixer_rms_eps is Hugging Face's default; a plain Mamba says
// false and has no eps key.
func TestFalconMambaKV(t *testing.T) {
	c := mustConfig(t, tinyFalcon)
	kvs, err := ConfigToKV(c)
	if err != nil {
		t.Fatal(err)
	}
	md := kvMap(kvs)
	if md[KeyArchitecture] != ArchMamba || md["mamba.ssm.dt_b_c_rms"] != true || md["mamba.ssm.dt_b_c_rms_epsilon"] != float32(1e-6) ||
		md["mamba.attention.layer_norm_rms_epsilon"] != float32(1e-5) {
		t.Errorf("metadata %v", md)
	}
	got, err := ConfigFromKV(md, ggufTensors(t, c))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Errorf("round trip:\n got %s\nwant %s", got.JSON(), c.JSON())
	}
	delete(md, "mamba.ssm.dt_b_c_rms_epsilon")
	if got, err = ConfigFromKV(md, ggufTensors(t, c)); err != nil || got.ModelType != arch.TypeFalconMamba || got.MixerRMSEps != arch.DefaultMixerRMSEps {
		t.Errorf("without the eps key: %+v, %v", got, err)
	}
	md["mamba.ssm.dt_b_c_rms_epsilon"] = float32(1e-3)
	if got, err = ConfigFromKV(md, ggufTensors(t, c)); err != nil || got.MixerRMSEps != 1e-3 {
		t.Errorf("eps 1e-3: %+v, %v", got, err)
	}
	md["mamba.ssm.dt_b_c_rms_epsilon"] = float32(0)
	if _, err = ConfigFromKV(md, ggufTensors(t, c)); err == nil || !strings.Contains(err.Error(), "mixer_rms_eps") {
		t.Errorf("eps 0: %v", err)
	}
	md["mamba.ssm.dt_b_c_rms_epsilon"] = "x"
	if _, err = ConfigFromKV(md, ggufTensors(t, c)); err == nil || !strings.Contains(err.Error(), "want a float") {
		t.Errorf("eps a string: %v", err)
	}
	plain := kvMap(must(ConfigToKV(mustConfig(t, tinyMamba))))
	if plain["mamba.ssm.dt_b_c_rms"] != false {
		t.Errorf("plain Mamba: dt_b_c_rms %v", plain["mamba.ssm.dt_b_c_rms"])
	}
	if _, ok := plain["mamba.ssm.dt_b_c_rms_epsilon"]; ok {
		t.Error("plain Mamba has an eps key for the dt/B/C norms")
	}
}

// TestFalconMambaKVRefusals: the norms on a MemMamba architecture are
// refused, naming the key.
func TestFalconMambaKVRefusals(t *testing.T) {
	c := mustConfig(t, `{"model_type":"memmamba","vocab_size":16,"hidden_size":8,"num_hidden_layers":2,"state_size":4,"memory":{"attn_dim":8,"n_heads":2}}`)
	md := kvMap(must(ConfigToKV(c)))
	md["memmamba.ssm.dt_b_c_rms"] = true
	_, err := ConfigFromKV(md, ggufTensors(t, c))
	if err == nil || !strings.Contains(err.Error(), `"memmamba.ssm.dt_b_c_rms" is true`) {
		t.Errorf("error %v", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
