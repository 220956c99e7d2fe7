package convert

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/memmamba/memmamba/format"
	"github.com/memmamba/memmamba/internal/fixtures"
	"github.com/memmamba/memmamba/quant"
)

var fixedTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func convertTo(t *testing.T, in, out string, typ quant.Type) *Report {
	t.Helper()
	rep, err := Convert(in, out, Options{Policy: Policy{Type: typ}, Created: fixedTime})
	if err != nil {
		t.Fatalf("convert %s to %s: %v", in, typ, err)
	}
	return rep
}

// TestEveryFixtureEveryType converts every fixture to every type, verifies
// the file, checks the policy's choices, and converts again to check that
// the output is byte-identical.
func TestEveryFixtureEveryType(t *testing.T) {
	names, err := fixtures.Names()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, name := range names {
		g, err := fixtures.Load(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, typ := range quant.Types {
			out := filepath.Join(dir, name+"."+typ.String())
			rep := convertTo(t, g.Source(), out, typ)
			if err := format.Verify(out); err != nil {
				t.Fatalf("%s %s: %v", name, typ, err)
			}
			f, err := format.Open(out, format.OpenOptions{VerifyChecksums: true})
			if err != nil {
				t.Fatal(err)
			}
			if f.Header.Config.VocabSize != len(g.Logits[0]) {
				t.Errorf("%s: vocab %d in the file", name, f.Header.Config.VocabSize)
			}
			for _, tr := range rep.Tensors {
				ft, ok := f.Tensor(tr.Name)
				if !ok || ft.Type != tr.To {
					t.Errorf("%s %s: tensor %s is %v in the file, the report says %v", name, typ, tr.Name, ft.Type, tr.To)
				}
				quantisable := len(tr.Shape) == 2 && !strings.Contains(tr.Name, "A_log") && tr.Shape[1]%typ.BlockLen() == 0
				if !quantisable && tr.To != quant.F32 {
					t.Errorf("%s %s: %s %v stored as %s", name, typ, tr.Name, tr.Shape, tr.To)
				}
				if quantisable && tr.To != typ {
					t.Errorf("%s %s: matrix %s %v kept as %s (%s)", name, typ, tr.Name, tr.Shape, tr.To, tr.Reason)
				}
			}
			f.Close()
			again := out + ".again"
			convertTo(t, g.Source(), again, typ)
			a, _ := os.ReadFile(out)
			b, _ := os.ReadFile(again)
			if !bytes.Equal(a, b) {
				t.Errorf("%s %s: two conversions differ", name, typ)
			}
		}
	}
}

// TestFormsAgree converts the same weights from different forms: the ONNX
// export and the safetensors of mamba-tiny, and each fixture through GGUF
// and back.
func TestFormsAgree(t *testing.T) {
	dir := t.TempDir()
	tiny := filepath.Join(fixtures.Dir(), "mamba-tiny")
	a := filepath.Join(dir, "st.mmq")
	b := filepath.Join(dir, "onnx.mmq")
	convertTo(t, tiny, a, quant.F32)
	rep := convertTo(t, filepath.Join(tiny, "model.onnx"), b, quant.F32)
	if rep.Form != "onnx" {
		t.Fatalf("form %q", rep.Form)
	}
	sameTensors(t, a, b, "")

	for _, name := range []string{"mamba-tiny", "mamba-bias-untied", "memmamba-priority", "memmamba-bf16"} {
		for _, typ := range []quant.Type{quant.F32, quant.BF16, quant.Q8_0, quant.Q4_0} {
			src := filepath.Join(fixtures.Dir(), name)
			m1 := filepath.Join(dir, name+typ.String()+".1.mmq")
			gg := filepath.Join(dir, name+typ.String()+".gguf")
			m2 := filepath.Join(dir, name+typ.String()+".2.mmq")
			gg2 := filepath.Join(dir, name+typ.String()+".2.gguf")
			convertTo(t, src, m1, typ)
			opts := Options{Policy: Policy{Type: typ}, Created: fixedTime}
			if _, err := ConvertToGGUF(m1, gg, opts); err != nil {
				t.Fatalf("%s to GGUF: %v", name, err)
			}
			convertTo(t, gg, m2, typ)
			// model file -> GGUF -> model file: bit-exact but for A_log,
			// which GGUF stores as -exp(A_log).
			sameTensors(t, m1, m2, "A_log")
			// GGUF -> model file -> GGUF: bit-exact, ssm_a included.
			if _, err := ConvertToGGUF(m2, gg2, opts); err != nil {
				t.Fatal(err)
			}
			x, _ := os.ReadFile(gg)
			y, _ := os.ReadFile(gg2)
			if !bytes.Equal(x, y) {
				t.Errorf("%s %s: GGUF -> model file -> GGUF is not bit-exact", name, typ)
			}
		}
	}
}

// sameTensors checks that two model files hold the same tensors, bit for
// bit, except those whose name contains approx (A_log), whose decay
// A = -exp(A_log) must agree to 1 ulp: GGUF stores A, and log(-A) cannot
// recover A_log's low bits where A_log is near 0.
func sameTensors(t *testing.T, a, b, approx string) {
	t.Helper()
	fa, err := format.Open(a, format.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer fa.Close()
	fb, err := format.Open(b, format.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	if len(fa.Tensors()) != len(fb.Tensors()) {
		t.Fatalf("%s has %d tensors, %s %d", a, len(fa.Tensors()), b, len(fb.Tensors()))
	}
	for _, x := range fa.Tensors() {
		y, ok := fb.Tensor(x.Name)
		if !ok || x.Type != y.Type {
			t.Errorf("%s: tensor %s missing or of another type in %s", a, x.Name, b)
			continue
		}
		if approx != "" && strings.Contains(x.Name, approx) && x.Type == quant.F32 {
			for i := 0; i+4 <= len(x.Data); i += 4 {
				u := float32(-math.Exp(float64(math.Float32frombits(binary.LittleEndian.Uint32(x.Data[i:])))))
				v := float32(-math.Exp(float64(math.Float32frombits(binary.LittleEndian.Uint32(y.Data[i:])))))
				if d := int64(math.Float32bits(u)) - int64(math.Float32bits(v)); d > 1 || d < -1 {
					t.Errorf("%s: -exp(A_log)[%d] = %v vs %v", x.Name, i/4, u, v)
					break
				}
			}
			continue
		}
		if !bytes.Equal(x.Data, y.Data) {
			t.Errorf("tensor %s differs between %s and %s", x.Name, a, b)
		}
	}
}

// TestBrokenInputs checks that each broken input gets the error a user
// needs: the file and the problem named.
func TestBrokenInputs(t *testing.T) {
	dir := t.TempDir()
	tiny := filepath.Join(fixtures.Dir(), "mamba-tiny")
	cfg, _ := os.ReadFile(filepath.Join(tiny, "config.json"))
	st, _ := os.ReadFile(filepath.Join(tiny, "model.safetensors"))
	mk := func(name string, files map[string][]byte) string {
		d := filepath.Join(dir, name)
		os.MkdirAll(d, 0o755)
		for f, b := range files {
			os.WriteFile(filepath.Join(d, f), b, 0o644)
		}
		return d
	}
	evil, _ := os.ReadFile(filepath.Join("torchzip", "testdata", "evil_os_system.pt"))
	for _, tc := range []struct {
		name, input string
		want        []string
	}{
		{"truncated", mk("truncated", map[string][]byte{"config.json": cfg, "model.safetensors": st[:len(st)/2]}), []string{"model.safetensors"}},
		{"wrong magic", mk("magic", map[string][]byte{"config.json": cfg, "model.safetensors": append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, st[8:]...)}), []string{"model.safetensors"}},
		{"no config", mk("noconfig", map[string][]byte{"model.safetensors": st}), []string{"config.json"}},
		{"wrong shape", mk("shape", map[string][]byte{"config.json": bytes.Replace(cfg, []byte(`"state_size": 8`), []byte(`"state_size": 16`), 1), "model.safetensors": st}), []string{"A_log", "shape", "state_size=16"}},
		{"missing tensor", mk("missing", map[string][]byte{"config.json": bytes.Replace(cfg, []byte(`"num_hidden_layers": 2`), []byte(`"num_hidden_layers": 3`), 1), "model.safetensors": st}), []string{"config.json", `"num_hidden_layers" is 3`, "the weights hold 2 layers"}},
		{"bad config", mk("badcfg", map[string][]byte{"config.json": []byte(`{"hidden_size": 64}`), "model.safetensors": st}), []string{"vocab_size", "missing"}},
		{"no weights", mk("empty", map[string][]byte{"config.json": cfg}), []string{"no weights"}},
		{"pickle asks for os.system", mk("evil", map[string][]byte{"config.json": cfg, "model.pt": evil}), []string{"os.system", "refusing"}},
	} {
		_, err := Convert(tc.input, filepath.Join(dir, tc.name+".mmq"), Options{Policy: Policy{Type: quant.F32}})
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", tc.name, err, w)
			}
		}
		if _, serr := os.Stat(filepath.Join(dir, tc.name+".mmq")); serr == nil {
			t.Errorf("%s: a failed conversion left an output file", tc.name)
		}
	}
}

func TestNoOverwriteWithoutForce(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "m.mmq")
	os.WriteFile(out, []byte("precious"), 0o644)
	_, err := Convert(filepath.Join(fixtures.Dir(), "mamba-tiny"), out, Options{Policy: Policy{Type: quant.F32}})
	if err == nil {
		t.Fatal("overwrote an existing file without Force")
	}
	if b, _ := os.ReadFile(out); string(b) != "precious" {
		t.Fatal("the existing file was touched")
	}
	if _, err := Convert(filepath.Join(fixtures.Dir(), "mamba-tiny"), out, Options{Policy: Policy{Type: quant.F32}, Force: true}); err != nil {
		t.Fatal(err)
	}
}

func TestKeepGlob(t *testing.T) {
	dir := t.TempDir()
	rep, err := Convert(filepath.Join(fixtures.Dir(), "memmamba-priority"), filepath.Join(dir, "k.mmq"),
		Options{Policy: Policy{Type: quant.Q8_0, Keep: []string{"*.note.*", "backbone.embeddings.weight"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range rep.Tensors {
		kept := strings.Contains(tr.Name, ".note.") || tr.Name == "backbone.embeddings.weight"
		if kept && tr.To != quant.F32 {
			t.Errorf("%s stored as %s despite --keep", tr.Name, tr.To)
		}
		if tr.Name == "backbone.layers.0.mixer.in_proj.weight" && tr.To != quant.Q8_0 {
			t.Errorf("in_proj stored as %s", tr.To)
		}
	}
	if err := (Policy{Keep: []string{"["}}).Validate(); err == nil {
		t.Error("a malformed glob is accepted")
	}
}
