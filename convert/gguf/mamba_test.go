package gguf

import (
	"bytes"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/memmamba/memmamba/arch"
	"github.com/memmamba/memmamba/convert/source"
)

func mustConfig(t testing.TB, js string) *arch.Config {
	t.Helper()
	c, err := arch.ParseConfig([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const (
	tinyMamba    = `{"model_type":"mamba","vocab_size":16,"hidden_size":8,"num_hidden_layers":2,"state_size":4,"conv_kernel":4,"intermediate_size":16,"time_step_rank":1,"layer_norm_epsilon":1e-5}`
	tinyMemMamba = `{"model_type":"memmamba","vocab_size":16,"hidden_size":8,"num_hidden_layers":4,"state_size":4,"intermediate_size":16,"use_bias":true,"tie_word_embeddings":false,
	  "memory":{"pool_size":5,"summary_dim":6,"score_dim":3,"attn_dim":4,"n_heads":2,"tau_note":0.55,"tau_retrieve":0.3,"cross_layer_every":2,"eviction":"fifo"}}`
)

func TestTensorNames(t *testing.T) {
	for _, js := range []string{tinyMamba, tinyMemMamba} {
		c := mustConfig(t, js)
		seen := map[string]string{}
		for _, w := range c.Weights() {
			g, ok := MambaTensorName(w.Name)
			if !ok {
				t.Fatalf("%s: no GGUF name", w.Name)
			}
			if len(g) > MaxNameLen {
				t.Errorf("%s: GGUF name %q too long", w.Name, g)
			}
			if prev, dup := seen[g]; dup {
				t.Fatalf("%s and %s both map to %s", prev, w.Name, g)
			}
			seen[g] = w.Name
			back, ok := CanonicalFromMamba(g)
			if !ok || back != w.Name {
				t.Errorf("%s -> %s -> %s", w.Name, g, back)
			}
		}
	}
	for canon, g := range map[string]string{
		"backbone.embeddings.weight":                      "token_embd.weight",
		"backbone.layers.0.norm.weight":                   "blk.0.attn_norm.weight",
		"backbone.layers.12.mixer.in_proj.weight":         "blk.12.ssm_in.weight",
		"backbone.layers.1.mixer.conv1d.weight":           "blk.1.ssm_conv1d.weight",
		"backbone.layers.1.mixer.conv1d.bias":             "blk.1.ssm_conv1d.bias",
		"backbone.layers.1.mixer.x_proj.weight":           "blk.1.ssm_x.weight",
		"backbone.layers.1.mixer.dt_proj.weight":          "blk.1.ssm_dt.weight",
		"backbone.layers.1.mixer.dt_proj.bias":            "blk.1.ssm_dt.bias",
		"backbone.layers.1.mixer.A_log":                   "blk.1.ssm_a",
		"backbone.layers.1.mixer.D":                       "blk.1.ssm_d",
		"backbone.layers.1.mixer.out_proj.weight":         "blk.1.ssm_out.weight",
		"backbone.norm_f.weight":                          "output_norm.weight",
		"lm_head.weight":                                  "output.weight",
		"backbone.layers.3.note.token_attn.q_proj.weight": "blk.3.note_tok_attn_q.weight",
		"backbone.layers.3.note.layer_attn.gate.bias":     "blk.3.note_lay_attn_gate.bias",
	} {
		if got, _ := MambaTensorName(canon); got != g {
			t.Errorf("%s -> %q, want %q", canon, got, g)
		}
	}
	for _, bad := range []string{"", "blk.x.ssm_a", "blk.01.ssm_a", "blk.0.ssm_q", "blk.1234567.ssm_a", "blk.-1.ssm_a", "blk..ssm_a", "output", "backbone.layers.0.mixer.foo"} {
		if c, ok := CanonicalFromMamba(bad); ok {
			t.Errorf("%q mapped to %q", bad, c)
		}
		if g, ok := MambaTensorName(bad); ok {
			t.Errorf("%q mapped to %q", bad, g)
		}
	}
}

func TestTransforms(t *testing.T) {
	alog := []float32{0, float32(math.Log(2)), float32(math.Log(16)), -1}
	a := append([]float32(nil), alog...)
	sh, err := ToMamba("backbone.layers.0.mixer.A_log", []int{2, 2}, a)
	if err != nil || !reflect.DeepEqual(sh, []int{2, 2}) {
		t.Fatal(sh, err)
	}
	if a[0] != -1 || math.Abs(float64(a[1]+2)) > 1e-6 || math.Abs(float64(a[2]+16)) > 1e-5 {
		t.Fatalf("ssm_a = %v", a)
	}
	if _, err := FromMamba("blk.0.ssm_a", sh, a); err != nil {
		t.Fatal(err)
	}
	for i := range a {
		if math.Abs(float64(a[i]-alog[i])) > 1e-6 {
			t.Errorf("A_log[%d]: %v -> %v", i, alog[i], a[i])
		}
	}
	for _, bad := range []float32{0, 1, float32(math.NaN()), float32(math.Inf(-1))} {
		if _, err := FromMamba("blk.3.ssm_a", []int{1}, []float32{bad}); err == nil || !strings.Contains(err.Error(), "blk.3.ssm_a") {
			t.Errorf("ssm_a %v: %v", bad, err)
		}
	}
	sh, err = ToMamba("backbone.layers.0.mixer.conv1d.weight", []int{16, 1, 4}, nil)
	if err != nil || !reflect.DeepEqual(sh, []int{16, 4}) {
		t.Fatal(sh, err)
	}
	if _, err := ToMamba("backbone.layers.0.mixer.conv1d.weight", []int{16, 4}, nil); err == nil {
		t.Error("2-D canonical conv1d accepted")
	}
	for _, in := range [][]int{{16, 4}, {16, 1, 4}} {
		sh, err = FromMamba("blk.0.ssm_conv1d.weight", in, nil)
		if err != nil || !reflect.DeepEqual(sh, []int{16, 1, 4}) {
			t.Fatal(in, sh, err)
		}
	}
	if _, err := FromMamba("blk.0.ssm_conv1d.weight", []int{16, 2, 4}, nil); err == nil {
		t.Error("16x2x4 conv accepted")
	}
	d := []float32{1, 2}
	if sh, err := ToMamba("backbone.layers.0.mixer.D", []int{2}, d); err != nil || !reflect.DeepEqual(sh, []int{2}) || d[0] != 1 {
		t.Error(sh, err, d)
	}
}

// ggufTensors lists c's weights under their GGUF names and stored shapes.
func ggufTensors(t testing.TB, c *arch.Config) []source.Tensor {
	var ts []source.Tensor
	for _, w := range c.Weights() {
		if w.Optional {
			continue
		}
		g, _ := MambaTensorName(w.Name)
		sh, err := ToMamba(w.Name, w.Shape, nil)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, source.Tensor{Name: g, DType: source.F32, Shape: sh})
	}
	return ts
}

func TestConfigKV(t *testing.T) {
	for _, js := range []string{tinyMamba, tinyMemMamba} {
		c := mustConfig(t, js)
		kvs, err := ConfigToKV(c)
		if err != nil {
			t.Fatal(err)
		}
		md := map[string]any{}
		for _, kv := range kvs {
			md[kv.Key] = kv.Value
		}
		if md[KeyArchitecture] != c.ModelType || md[c.ModelType+".feed_forward_length"] != uint32(0) || md[c.ModelType+".attention.head_count"] != uint32(0) {
			t.Errorf("%v", md)
		}
		if _, ok := md[c.ModelType+".attention.layer_norm_rms_epsilon"].(float32); !ok {
			t.Error("eps must be float32 (llama.cpp checks the type)")
		}
		got, err := ConfigFromKV(md, ggufTensors(t, c))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Errorf("round trip:\n got %s\nwant %s", got.JSON(), c.JSON())
		}
	}
	c := mustConfig(t, tinyMamba)
	kvs, _ := ConfigToKV(c)
	base := map[string]any{}
	for _, kv := range kvs {
		base[kv.Key] = kv.Value
	}
	for _, tc := range []struct {
		name string
		edit func(map[string]any)
		want string
	}{
		{"arch", func(m map[string]any) { m[KeyArchitecture] = "llama" }, `"llama"`},
		{"missing", func(m map[string]any) { delete(m, "mamba.ssm.state_size") }, `"mamba.ssm.state_size" is missing`},
		{"type", func(m map[string]any) { m["mamba.block_count"] = "2" }, `"mamba.block_count"`},
		{"negative", func(m map[string]any) { m["mamba.block_count"] = int32(-2) }, `"mamba.block_count"`},
		{"blocks", func(m map[string]any) { m["mamba.block_count"] = uint64(1 << 40) }, `"mamba.block_count" is 1099511627776, but the weights hold`},
		{"blocks 1000", func(m map[string]any) { m["mamba.block_count"] = uint32(1000) }, `"mamba.block_count" is 1000, but the weights hold`},
		{"zero", func(m map[string]any) { m["mamba.ssm.inner_size"] = uint32(0) }, "intermediate_size"},
		{"dt_b_c_rms type", func(m map[string]any) { m["mamba.ssm.dt_b_c_rms"] = uint32(1) }, `"mamba.ssm.dt_b_c_rms": want a bool`},
		{"eps type", func(m map[string]any) { m["mamba.attention.layer_norm_rms_epsilon"] = "x" }, "want a float"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := map[string]any{}
			for k, v := range base {
				m[k] = v
			}
			tc.edit(m)
			_, err := ConfigFromKV(m, ggufTensors(t, c))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	// Without token_embd, the vocabulary comes from vocab_size, then tokens.
	m := map[string]any{}
	for k, v := range base {
		m[k] = v
	}
	var blocks []source.Tensor
	for _, tt := range ggufTensors(t, c) {
		if strings.HasPrefix(tt.Name, "blk.") && !strings.HasSuffix(tt.Name, ".bias") {
			blocks = append(blocks, tt)
		}
	}
	got, err := ConfigFromKV(m, blocks)
	if err != nil || got.VocabSize != 16 || !got.TieEmbeddings || got.UseConvBias {
		t.Fatalf("%+v %v", got, err)
	}
	delete(m, "mamba.vocab_size")
	m[KeyTokens] = []string{"a", "b", "c"}
	if got, err := ConfigFromKV(m, blocks); err != nil || got.VocabSize != 3 {
		t.Fatalf("%+v %v", got, err)
	}
	delete(m, KeyTokens)
	if _, err := ConfigFromKV(m, blocks); err == nil || !strings.Contains(err.Error(), "vocabulary size unknown") {
		t.Fatal(err)
	}
}

func testTokenizer() *Tokenizer {
	yes, no := true, false
	return &Tokenizer{
		Model: TokenizerGPT2, Pre: "gpt-2",
		Tokens:     []string{"<|endoftext|>", "a", "b", "ab", "Ġ"},
		TokenTypes: []int32{TokenControl, TokenNormal, TokenNormal, TokenNormal, TokenNormal},
		Merges:     []string{"a b"},
		BOS:        0, EOS: 0, UNK: -1, PAD: 0,
		AddBOS: &no, AddEOS: &yes,
	}
}

func TestTokenizer(t *testing.T) {
	tok := testTokenizer()
	kvs, err := tok.KVs()
	if err != nil {
		t.Fatal(err)
	}
	f := parse(t, writeBytes(t, kvs, nil))
	got, err := TokenizerFromKV(f.Metadata())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, tok) {
		t.Fatalf("got %+v\nwant %+v", got, tok)
	}
	if _, ok := f.Get(KeyUNK); ok {
		t.Error("unset UNK written")
	}
	if got, err := TokenizerFromKV(map[string]any{}); got != nil || err != nil {
		t.Error("no tokenizer:", got, err)
	}
	for _, tc := range []struct {
		name string
		kv   map[string]any
		want string
	}{
		{"no tokens", map[string]any{KeyTokenizerModel: "gpt2"}, "is missing"},
		{"types", map[string]any{KeyTokenizerModel: "gpt2", KeyTokens: []string{"a"}, KeyTokenType: []int32{1, 1}}, "2 entries for 1 tokens"},
		{"bos", map[string]any{KeyTokenizerModel: "gpt2", KeyTokens: []string{"a"}, KeyBOS: uint32(1)}, "outside"},
		{"merges", map[string]any{KeyTokenizerModel: "gpt2", KeyTokens: []string{"a"}, KeyMerges: []int32{1}}, KeyMerges},
	} {
		if _, err := TokenizerFromKV(tc.kv); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	bad := testTokenizer()
	bad.EOS = 9
	if _, err := bad.KVs(); err == nil {
		t.Error("EOS outside vocab accepted")
	}
}

// tinyMambaFile writes a complete tiny mamba GGUF as the converter would:
// config, tokenizer, then each canonical weight transformed and stored as
// F32 in canonical order.
func tinyMambaFile(t testing.TB) []byte {
	c := mustConfig(t, tinyMamba)
	kvs, err := ConfigToKV(c)
	if err != nil {
		t.Fatal(err)
	}
	kvs = append(kvs, KV{KeyName, "tiny"}, KV{KeyFileType, uint32(0)})
	tk, err := testTokenizer().KVs()
	if err != nil {
		t.Fatal(err)
	}
	kvs = append(kvs, tk...)
	var ts []testTensor
	for i, w := range c.Weights() {
		if w.Optional {
			continue
		}
		n := 1
		for _, d := range w.Shape {
			n *= d
		}
		v := make([]float32, n)
		for j := range v {
			v[j] = float32((i*131+j*7)%17)/17 - 0.5
		}
		sh, err := ToMamba(w.Name, w.Shape, v)
		if err != nil {
			t.Fatal(err)
		}
		g, _ := MambaTensorName(w.Name)
		ts = append(ts, testTensor{TensorInfo{Name: g, Dims: DimsFromShape(sh), Type: GGMLF32}, f32bytes(v...)})
	}
	return writeBytes(t, kvs, ts)
}

func TestTinyMambaFile(t *testing.T) {
	b := tinyMambaFile(t)
	f := parse(t, b)
	c, err := ConfigFromKV(f.Metadata(), f.Tensors())
	if err != nil {
		t.Fatal(err)
	}
	if want := mustConfig(t, tinyMamba); !reflect.DeepEqual(c, want) {
		t.Fatalf("config %s", c.JSON())
	}
	ti, ok := f.TensorInfo("blk.1.ssm_conv1d.weight")
	if !ok || !reflect.DeepEqual(ti.Dims, []uint64{4, 16}) {
		t.Fatalf("conv1d dims %v (llama.cpp wants {d_conv, d_inner})", ti.Dims)
	}
	if ti, _ := f.TensorInfo("blk.0.ssm_a"); !reflect.DeepEqual(ti.Dims, []uint64{4, 16}) {
		t.Fatalf("ssm_a dims %v (llama.cpp wants {d_state, d_inner})", ti.Dims)
	}
	if ti, _ := f.TensorInfo("blk.0.ssm_x.weight"); !reflect.DeepEqual(ti.Dims, []uint64{16, 1 + 2*4}) {
		t.Fatalf("ssm_x dims %v", ti.Dims)
	}
	a, err := f.ReadFloat32("blk.0.ssm_a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := FromMamba("blk.0.ssm_a", f.Tensors()[0].Shape, a); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, tinyMambaFile(t)) {
		t.Fatal("not deterministic")
	}
}
