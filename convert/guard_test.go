package convert

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/memmamba/memmamba/internal/fixtures"
	"github.com/memmamba/memmamba/internal/safeio"
	"github.com/memmamba/memmamba/quant"
)

// copyFixture copies the files of fixture name (not golden/) into a new
// folder and returns it.
func copyFixture(t *testing.T, name string) string {
	t.Helper()
	src := filepath.Join(fixtures.Dir(), name)
	dst := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// poke sets element i of tensor name in a safetensors file to the bits of
// x in the tensor's own type (F32, F16 or BF16).
func poke(t *testing.T, path, name string, i int, x float32) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(b)
	var hdr map[string]struct {
		DType   string `json:"dtype"`
		Offsets [2]int `json:"data_offsets"`
	}
	if err := json.Unmarshal(b[8:8+n], &hdr); err != nil {
		t.Fatal(err)
	}
	e, ok := hdr[name]
	if !ok {
		t.Fatalf("%s: no tensor %q", path, name)
	}
	at := 8 + int(n) + e.Offsets[0]
	switch e.DType {
	case "F32":
		binary.LittleEndian.PutUint32(b[at+4*i:], math.Float32bits(x))
	case "F16":
		binary.LittleEndian.PutUint16(b[at+2*i:], quant.F32ToF16(x))
	case "BF16":
		binary.LittleEndian.PutUint16(b[at+2*i:], quant.F32ToBF16(x))
	default:
		t.Fatalf("dtype %s", e.DType)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestNonFiniteWeights: a NaN or infinity is refused by tensor and index
// (a *NonFiniteError, which mmconvert words with --allow-nonfinite), on the
// bit-exact copy path (same type) and on the conversion path, and
// Policy.AllowNonFinite converts it anyway.
func TestNonFiniteWeights(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	for _, tc := range []struct {
		name, fixture, tensor string
		i                     int
		x                     float32
		typ                   quant.Type
		want                  []string
		allowOK               bool // the type can hold the value: f32, or a copy
	}{
		{"NaN in norm_f, f32 copy", "mamba-tiny", "backbone.norm_f.weight", 3, nan, quant.F32, []string{`norm_f.weight"`, "NaN", "index [3]"}, true},
		{"NaN in norm_f, kept f32 in an int8 file", "mamba-tiny", "backbone.norm_f.weight", 0, nan, quant.Q8_0, []string{`norm_f.weight"`, "index [0]"}, true},
		{"Inf in in_proj, quantised", "mamba-tiny", "backbone.layers.0.mixer.in_proj.weight", 70, inf, quant.Q8_0, []string{`layers.0.mixer.in_proj.weight"`, "+Inf", "index [1 6]"}, false},
		{"-Inf in in_proj, to f16", "mamba-tiny", "backbone.layers.0.mixer.in_proj.weight", 5, -inf, quant.F16, []string{"in_proj", "-Inf", "index [0 5]"}, false},
		{"NaN in an f16 checkpoint, f16 copy", "mamba-fp16", "backbone.norm_f.weight", 7, nan, quant.F16, []string{`norm_f.weight"`, "NaN", "index [7]"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyFixture(t, tc.fixture)
			poke(t, filepath.Join(dir, "model.safetensors"), tc.tensor, tc.i, tc.x)
			out := filepath.Join(t.TempDir(), "out.mmq")
			_, err := Convert(dir, out, Options{Policy: Policy{Type: tc.typ}})
			if err == nil {
				t.Fatal("converted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if nf := (*NonFiniteError)(nil); !errors.As(err, &nf) || nf.Element != tc.i {
				t.Errorf("error %v is not a *NonFiniteError at element %d", err, tc.i)
			}
			if _, err := os.Stat(out); err == nil {
				t.Error("a refused conversion left an output")
			}
			if m, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".*.tmp")); len(m) > 0 {
				t.Errorf("temporary files left: %v", m)
			}
			gout := filepath.Join(t.TempDir(), "out.gguf")
			if _, err := ConvertToGGUF(dir, gout, Options{Policy: Policy{Type: tc.typ}}); err == nil || !strings.Contains(err.Error(), tc.want[0]) {
				t.Errorf("to GGUF: %v", err)
			}
			// quant refuses to encode a non-finite value into the
			// quantised and half types; f32 and bit-exact copies keep it.
			_, err = Convert(dir, out, Options{Policy: Policy{Type: tc.typ, AllowNonFinite: true}})
			if tc.allowOK && err != nil {
				t.Errorf("with AllowNonFinite: %v", err)
			}
			if !tc.allowOK && (err == nil || !strings.Contains(err.Error(), "in_proj")) {
				t.Errorf("with AllowNonFinite, a type that cannot hold it: %v", err)
			}
		})
	}
}

func TestFirstNonFiniteRaw(t *testing.T) {
	f32 := make([]byte, 16)
	binary.LittleEndian.PutUint32(f32[8:], math.Float32bits(float32(math.Inf(-1))))
	f16 := make([]byte, 8)
	binary.LittleEndian.PutUint16(f16[6:], 0x7e00) // NaN
	bf16 := make([]byte, 8)
	binary.LittleEndian.PutUint16(bf16[2:], 0x7f80) // +Inf
	q8 := make([]byte, 3*quant.Q8_0BlockBytes)
	binary.LittleEndian.PutUint16(q8[2*quant.Q8_0BlockBytes:], 0x7c00) // +Inf scale
	q4 := make([]byte, 2*quant.Q4_0BlockBytes)
	binary.LittleEndian.PutUint16(q4[quant.Q4_0BlockBytes:], 0xfe00) // NaN scale
	for _, tc := range []struct {
		t    quant.Type
		raw  []byte
		want int
	}{
		{quant.F32, f32, 2}, {quant.F32, make([]byte, 16), -1},
		{quant.F16, f16, 3}, {quant.BF16, bf16, 1},
		{quant.Q8_0, q8, 64}, {quant.Q4_0, q4, 32}, {quant.Q4_0, make([]byte, 36), -1},
	} {
		if got, _ := firstNonFiniteRaw(tc.t, tc.raw); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.t, got, tc.want)
		}
	}
}

// TestTokenizerRefusedAtConversion: a tokenizer.json that mmrun would
// refuse is refused by mmconvert, naming the file, before anything is
// written.
func TestTokenizerRefusedAtConversion(t *testing.T) {
	base, err := os.ReadFile(filepath.Join(fixtures.Dir(), "mamba-bias-untied", "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(base, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name string
		json []byte
	}{
		{"not JSON", []byte("{\"model\": ")},
		{"not an object", []byte("[1, 2, 3]")},
		{"invalid regex", edit(func(m map[string]any) {
			m["pre_tokenizer"] = map[string]any{"type": "Split", "pattern": map[string]any{"Regex": "(?<=a"}, "behavior": "Isolated", "invert": false}
		})},
		{"Unigram model", edit(func(m map[string]any) {
			m["model"] = map[string]any{"type": "Unigram", "unk_id": 0, "vocab": [][]any{{"<unk>", 0.0}, {"a", -1.0}}}
		})},
		{"added token id beyond vocab_size", edit(func(m map[string]any) {
			m["added_tokens"] = append(m["added_tokens"].([]any), map[string]any{"id": 5000, "content": "<|x|>", "special": true,
				"single_word": false, "lstrip": false, "rstrip": false, "normalized": false})
		})},
		{"vocab id beyond vocab_size", edit(func(m map[string]any) {
			m["model"].(map[string]any)["vocab"].(map[string]any)["zzzz"] = 100000
		})},
		{"negative vocab id", edit(func(m map[string]any) {
			m["model"].(map[string]any)["vocab"].(map[string]any)["zzzz"] = -1
		})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyFixture(t, "mamba-bias-untied")
			if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), tc.json, 0o644); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "out.mmq")
			_, err := Convert(dir, out, Options{Policy: Policy{Type: quant.F32}})
			if err == nil {
				t.Fatal("converted")
			}
			if !strings.Contains(err.Error(), "tokenizer.json") || !strings.Contains(err.Error(), "mmrun would refuse") {
				t.Errorf("error %q does not name tokenizer.json and the reason", err)
			}
			t.Log(err)
			if _, err := os.Stat(out); err == nil {
				t.Error("a refused conversion left an output")
			}
		})
	}
}

// TestOutputIsInput: an output naming any file the conversion reads is
// refused, even with Force, and the file is left as it was.
func TestOutputIsInput(t *testing.T) {
	dir := copyFixture(t, "mamba-bias-untied")
	link := filepath.Join(t.TempDir(), "link.mmq")
	if err := os.Symlink(filepath.Join(dir, "pytorch_model.bin"), link); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{"pytorch_model.bin", "config.json", "tokenizer.json", link} {
		if !filepath.IsAbs(out) {
			out = filepath.Join(dir, out)
		}
		before, _ := os.ReadFile(out)
		for _, to := range []string{"mmq", "gguf"} {
			var err error
			if to == "mmq" {
				_, err = Convert(dir, out, Options{Policy: Policy{Type: quant.F32}, Force: true})
			} else {
				_, err = ConvertToGGUF(dir, out, Options{Policy: Policy{Type: quant.F32}, Force: true})
			}
			if !errors.Is(err, safeio.ErrOutputIsInput) {
				t.Errorf("%s to %s: %v, want ErrOutputIsInput", to, out, err)
			}
		}
		if after, _ := os.ReadFile(out); string(after) != string(before) {
			t.Errorf("%s changed", out)
		}
	}
}
