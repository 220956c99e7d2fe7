package interop

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/memmamba/memmamba/convert"
	"github.com/memmamba/memmamba/convert/gguf"
	"github.com/memmamba/memmamba/engine"
	"github.com/memmamba/memmamba/internal/fixtures"
	"github.com/memmamba/memmamba/quant"
)

// isFalcon reports whether a fixture is a Falcon-Mamba.
func isFalcon(name string) bool { return strings.HasPrefix(name, "falcon-mamba") }

// withMixerEps copies a Falcon-Mamba checkpoint folder (config.json and
// model.safetensors) with its config's mixer_rms_eps replaced by eps
// (nil: the layer norms' layer_norm_epsilon, which llama.cpp applies to
// the dt/B/C norms, having no eps of their own), and returns the copy.
func withMixerEps(t *testing.T, src string, eps *float64) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(src, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if eps != nil {
		cfg["mixer_rms_eps"] = *eps
	} else {
		cfg["mixer_rms_eps"] = cfg["layer_norm_epsilon"]
	}
	dir := t.TempDir()
	out, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), out, 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := os.ReadFile(filepath.Join(src, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors"), w, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// llamaSource is where TestLlamaCppMatrix exports a fixture from: the
// fixture itself, or for a Falcon-Mamba a copy whose mixer_rms_eps is the
// layer norms' eps, the one llama.cpp uses for the dt/B/C norms (see
// TestLlamaCppFalconEps for the fixture's own eps).
func llamaSource(t *testing.T, name string, g *fixtures.Golden) string {
	if isFalcon(name) {
		return withMixerEps(t, g.Source(), nil)
	}
	return g.Source()
}

// TestLlamaCppFalconEps: llama.cpp runs a Falcon-Mamba GGUF (architecture
// mamba, mamba.ssm.dt_b_c_rms true) with the layer norms' eps on delta, B
// and C: exported from falcon-mamba-tiny (mixer_rms_eps 1e-6, layer norms
// 1e-5), its f32 logits are within 1e-4 + 1e-4|x| of the runtime's on the
// same weights with mixer_rms_eps 1e-5, and measurably off those with the
// fixture's own 1e-6 (what the runtime, Hugging Face and the golden
// outputs use). The GGUF keeps 1e-6 in mamba.ssm.dt_b_c_rms_epsilon, so it
// imports back to the fixture's configuration.
func TestLlamaCppFalconEps(t *testing.T) {
	llamaOrSkip(t)
	g, err := fixtures.Load("falcon-mamba-tiny")
	if err != nil {
		t.Fatal(err)
	}
	gg, own := exportPair(t, g.Source(), quant.F32)
	lo := llamaLogits(t, gg, g.Tokens, 1)
	checkCleanLoad(t, lo)
	ownL, _ := runtimeRun(t, own, g.Tokens, 0)
	_, layerEps := exportPair(t, withMixerEps(t, g.Source(), nil), quant.F32)
	layerL, _ := runtimeRun(t, layerEps, g.Tokens, 0)
	wl, bad := maxDiff(lo.logits, layerL, 1e-4, 1e-4)
	t.Logf("max |llama.cpp - runtime| = %.3g with mixer_rms_eps = layer_norm_epsilon (1e-5)", wl)
	if bad != "" {
		t.Errorf("llama.cpp vs the runtime at eps 1e-5: max %.3g: %s", wl, bad)
	}
	wo, _ := maxDiff(lo.logits, ownL, 1e-4, 1e-4)
	t.Logf("max |llama.cpp - runtime| = %.3g with the fixture's mixer_rms_eps (1e-6)", wo)
	if !(wo > 10*wl) {
		t.Errorf("llama.cpp is as close to eps 1e-6 (%.3g) as to 1e-5 (%.3g): does it use mixer_rms_eps now?", wo, wl)
	}
	// GGUF -> model file keeps the fixture's configuration.
	back := filepath.Join(t.TempDir(), "back.mmq")
	if _, err := convert.Convert(gg, back, convert.Options{Policy: convert.Policy{Type: quant.F32}}); err != nil {
		t.Fatal(err)
	}
	m, err := engine.Open(back, engine.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	c := *m.Config
	m.Close()
	if c.ModelType != "falcon_mamba" || !c.DtBCRMS || c.MixerRMSEps != 1e-6 || c.LayerNormEps != 1e-5 {
		t.Errorf("imported configuration %+v", c)
	}
	f, err := gguf.Open(gg)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	md := f.Metadata()
	if md["general.architecture"] != "mamba" || md["mamba.ssm.dt_b_c_rms"] != true {
		t.Errorf("exported metadata: architecture %v, dt_b_c_rms %v", md["general.architecture"], md["mamba.ssm.dt_b_c_rms"])
	}
}
