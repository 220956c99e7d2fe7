package interop

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/memmamba/memmamba/arch"
	"github.com/memmamba/memmamba/convert"
	"github.com/memmamba/memmamba/convert/gguf"
	"github.com/memmamba/memmamba/format"
	"github.com/memmamba/memmamba/internal/fixtures"
	"github.com/memmamba/memmamba/quant"
)

// rewriteGGUF copies the GGUF src to a new file with the metadata
// kvs(old metadata) and the tensors keep accepts, bit for bit, and returns
// its path.
func rewriteGGUF(t *testing.T, src, name string, kvs func([]gguf.KV) []gguf.KV, keep func(string) bool) string {
	t.Helper()
	f, err := gguf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var infos []gguf.TensorInfo
	for _, ti := range f.TensorInfos() {
		if keep(ti.Name) {
			infos = append(infos, gguf.TensorInfo{Name: ti.Name, Dims: ti.Dims, Type: ti.Type})
		}
	}
	dst := filepath.Join(t.TempDir(), name)
	w, err := gguf.Create(dst, kvs(f.KVs()), infos)
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range infos {
		b, err := f.ReadTensor(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WriteTensor(ti.Name, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

// withoutBiases returns a copy of a GGUF without the in_proj and out_proj
// biases (blk.N.ssm_in.bias, blk.N.ssm_out.bias), which llama.cpp's mamba
// does not have.
func withoutBiases(t *testing.T, src string) string {
	t.Helper()
	same := func(kvs []gguf.KV) []gguf.KV { return kvs }
	return rewriteGGUF(t, src, "nobias.gguf", same, func(name string) bool {
		return !strings.HasSuffix(name, ".ssm_in.bias") && !strings.HasSuffix(name, ".ssm_out.bias")
	})
}

// llamaCppKVs is the metadata llama.cpp's convert_hf_to_gguf.py writes for a
// Mamba-1 (MambaModel.set_gguf_parameters, the base class's general.* keys,
// gguf-py's quantization version, _set_vocab_gpt2 and its SpecialVocab), in
// its order and with its value types, taken from ours: our export's
// general.name and mamba.vocab_size are not among them, general.type,
// general.size_label and general.quantization_version are.
func llamaCppKVs(t *testing.T, ours []gguf.KV, name string) []gguf.KV {
	t.Helper()
	get := map[string]any{}
	for _, kv := range ours {
		get[kv.Key] = kv.Value
	}
	out := []gguf.KV{
		{Key: "general.architecture", Value: "mamba"},
		{Key: "general.type", Value: "model"},
		{Key: "general.name", Value: name},
		{Key: "general.size_label", Value: "1.2M"},
	}
	for _, k := range []string{
		"mamba.context_length", "mamba.embedding_length", "mamba.feed_forward_length", "mamba.attention.head_count",
		"mamba.block_count", "mamba.ssm.conv_kernel", "mamba.ssm.inner_size", "mamba.ssm.state_size",
		"mamba.ssm.time_step_rank", "mamba.attention.layer_norm_rms_epsilon", "mamba.ssm.dt_b_c_rms", "general.file_type",
	} {
		v, ok := get[k]
		if !ok {
			t.Fatalf("our export has no %s", k)
		}
		out = append(out, gguf.KV{Key: k, Value: v})
	}
	out = append(out, gguf.KV{Key: "general.quantization_version", Value: uint32(2)})
	for _, k := range []string{
		"tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens", "tokenizer.ggml.token_type",
		"tokenizer.ggml.merges", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
		"tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id",
	} {
		if v, ok := get[k]; ok {
			out = append(out, gguf.KV{Key: k, Value: v})
		} else if k == "tokenizer.ggml.unknown_token_id" {
			// SpecialVocab takes unk from tokenizer_config.json; GPT-NeoX's
			// names <|endoftext|>, id 0.
			out = append(out, gguf.KV{Key: k, Value: uint32(0)})
		}
	}
	return out
}

// TestImportLlamaCppStyleGGUF: a GGUF with exactly the keys llama.cpp's
// converter writes for a Mamba-1 (llamaCppKVs; tensors under llama.cpp's
// names, ssm_a = -exp(A_log), the conv kernel squeezed) imports into the
// model file with the configuration of the checkpoint it came from, the
// runtime's logits on it match those on the direct conversion, the
// tokenizer comes back (byte-level as bytes; GPT-NeoX-style BPE as its
// tokenizer.json with pre "olmo" kept in the header), and, where llama.cpp
// is installed, llama.cpp itself loads the file cleanly.
func TestImportLlamaCppStyleGGUF(t *testing.T) {
	for _, c := range []struct {
		name, kind, pre string
	}{
		{"trained/mamba-kjv", format.TokenizerBytes, "gpt-2"},
		{"mamba-bias-untied", format.TokenizerHFBPE, "olmo"},
		// mamba.ssm.dt_b_c_rms true and no eps key of its own: mixer_rms_eps
		// comes back as Hugging Face's default, the fixture's 1e-6.
		{"falcon-mamba-tiny", format.TokenizerBytes, "gpt-2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			g, err := fixtures.Load(c.name)
			if err != nil {
				t.Fatal(err)
			}
			ours, direct := exportPair(t, g.Source(), quant.F32)
			keep := func(string) bool { return true }
			if c.name == "mamba-bias-untied" {
				ours = withoutBiases(t, ours)
				direct = filepath.Join(t.TempDir(), "direct.mmq")
				if _, err := convert.Convert(ours, direct, convert.Options{Policy: convert.Policy{Type: quant.F32}}); err != nil {
					t.Fatal(err)
				}
			}
			style := rewriteGGUF(t, ours, "llamacpp-style.gguf", func(kvs []gguf.KV) []gguf.KV {
				return llamaCppKVs(t, kvs, "Mamba Fixture")
			}, keep)
			f, err := gguf.Open(style)
			if err != nil {
				t.Fatal(err)
			}
			if _, has := f.Get("mamba.vocab_size"); has {
				t.Fatal("the llama.cpp-style file has our mamba.vocab_size")
			}
			f.Close()

			mmq := filepath.Join(t.TempDir(), "imported.mmq")
			if _, err := convert.Convert(style, mmq, convert.Options{Policy: convert.Policy{Type: quant.F32}}); err != nil {
				t.Fatalf("import of a llama.cpp-style GGUF: %v", err)
			}
			mf, err := format.Open(mmq, format.OpenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			h := mf.Header
			mf.Close()
			want, err := g.ParsedConfig()
			if err != nil {
				t.Fatal(err)
			}
			if c.name == "mamba-bias-untied" {
				want.UseBias = false
			}
			if got := h.Config; !sameShape(&got, want) {
				t.Errorf("imported config %+v, the checkpoint's %+v", got, *want)
			}
			if h.Tokenizer.Kind != c.kind {
				t.Errorf("imported tokenizer kind %q, want %q", h.Tokenizer.Kind, c.kind)
			}
			if p := h.Metadata["gguf.tokenizer.ggml.pre"]; p != c.pre {
				t.Errorf("header keeps tokenizer.ggml.pre %q, want %q", p, c.pre)
			}
			a, _ := runtimeRun(t, mmq, g.Tokens, 0)
			b, _ := runtimeRun(t, direct, g.Tokens, 0)
			if worst, bad := maxDiff(a, b, 1e-5, 1e-5); bad != "" {
				t.Errorf("runtime on the imported file vs the direct conversion (max %.3g): %s", worst, bad)
			}
			if llamaInstalled() {
				o := runLlama(t, style, "0")
				checkCleanLoad(t, o)
			}
		})
	}
}

// sameShape compares the fields of two configurations that a GGUF records.
func sameShape(a, b *arch.Config) bool {
	return a.ModelType == b.ModelType && a.VocabSize == b.VocabSize && a.HiddenSize == b.HiddenSize &&
		a.NumLayers == b.NumLayers && a.ConvKernel == b.ConvKernel && a.Intermediate == b.Intermediate &&
		a.StateSize == b.StateSize && a.TimeStepRank == b.TimeStepRank && a.LayerNormEps == b.LayerNormEps &&
		a.UseBias == b.UseBias && a.UseConvBias == b.UseConvBias && a.TieEmbeddings == b.TieEmbeddings &&
		a.DtBCRMS == b.DtBCRMS && a.MixerRMSEps == b.MixerRMSEps
}
