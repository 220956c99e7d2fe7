package convert

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/memmamba/memmamba/convert/gguf"
	"github.com/memmamba/memmamba/format"
	"github.com/memmamba/memmamba/internal/fixtures"
	"github.com/memmamba/memmamba/quant"
)

// exportGGUF converts src (a fixture folder, a model file or a GGUF) to a
// GGUF of type typ in dir and opens it.
func exportGGUF(t *testing.T, src, out string, typ quant.Type) *gguf.File {
	t.Helper()
	if _, err := ConvertToGGUF(src, out, Options{Policy: Policy{Type: typ}, Created: fixedTime}); err != nil {
		t.Fatalf("%s to GGUF %s: %v", src, typ, err)
	}
	f, err := gguf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// rewriteGGUF copies the GGUF src to dst with its metadata replaced by
// edit(metadata); the tensors are copied bit for bit.
func rewriteGGUF(t *testing.T, src, dst string, edit func([]gguf.KV) []gguf.KV) {
	t.Helper()
	f, err := gguf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	infos := f.TensorInfos()
	w, err := gguf.Create(dst, edit(slices.Clone(f.KVs())), infos)
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
}

// setKV replaces (or appends) key's value in kvs.
func setKV(kvs []gguf.KV, key string, v any) []gguf.KV {
	for i := range kvs {
		if kvs[i].Key == key {
			kvs[i].Value = v
			return kvs
		}
	}
	return append(kvs, gguf.KV{Key: key, Value: v})
}

// TestGGUFExportLlamaCppKeys checks the keys llama.cpp's loader needs in
// the exported files: tokenizer.ggml.merges always (empty for the
// byte-level model, the tokenizer.json's for a BPE), tokenizer.ggml.pre,
// token types with the vocabulary padding unused, explicit special ids, and
// general.file_type in llama.cpp's numbering for each tensor type.
func TestGGUFExportLlamaCppKeys(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		fixture              string
		pre                  string
		merges               int // -1: the tokenizer.json's
		bos, eos, pad, pads0 int // pads0: first "[PADn]" id
	}{
		{"mamba-tiny", "gpt-2", 0, 0, 0, 0, 256},
		{"mamba-bias-untied", "olmo", -1, 0, 0, 1, 314},
	}
	fileTypes := map[quant.Type]uint32{quant.F32: 0, quant.F16: 1, quant.Q4_0: 2, quant.Q8_0: 7, quant.BF16: 32}
	for _, c := range cases {
		for _, typ := range quant.Types {
			t.Run(c.fixture+"/"+typ.String(), func(t *testing.T) {
				f := exportGGUF(t, filepath.Join(fixtures.Dir(), c.fixture), filepath.Join(dir, c.fixture+typ.String()+".gguf"), typ)
				md := f.Metadata()
				if ft, _ := md[gguf.KeyFileType].(uint32); ft != fileTypes[typ] || md[gguf.KeyFileType] == nil {
					t.Errorf("general.file_type = %v, want %d", md[gguf.KeyFileType], fileTypes[typ])
				}
				tok, err := gguf.TokenizerFromKV(md)
				if err != nil {
					t.Fatal(err)
				}
				merges, ok := md[gguf.KeyMerges].([]string)
				if !ok {
					t.Fatalf("tokenizer.ggml.merges missing or not strings: %T", md[gguf.KeyMerges])
				}
				if c.merges >= 0 && len(merges) != c.merges || c.merges < 0 && len(merges) == 0 {
					t.Errorf("%d merges", len(merges))
				}
				if tok.Pre != c.pre || tok.BOS != c.bos || tok.EOS != c.eos || tok.PAD != c.pad {
					t.Errorf("pre %q bos %d eos %d pad %d; want %q %d %d %d", tok.Pre, tok.BOS, tok.EOS, tok.PAD, c.pre, c.bos, c.eos, c.pad)
				}
				for i := c.pads0; i < len(tok.Tokens); i++ {
					if tok.TokenTypes[i] != gguf.TokenUnused || !isPadToken(tok.Tokens[i], i) {
						t.Fatalf("padding token %d is %q type %d", i, tok.Tokens[i], tok.TokenTypes[i])
					}
				}
				if tok.TokenTypes[0] != map[bool]int32{true: gguf.TokenNormal, false: gguf.TokenControl}[c.pre == "gpt-2"] {
					t.Errorf("token 0 has type %d", tok.TokenTypes[0])
				}
			})
		}
	}
}

// TestGGUFTokenizerRoundTrip: GGUF -> model file -> GGUF keeps the
// tokenizer keys of a GGUF that are not the export's defaults (a
// pre-tokenizer, BOS/EOS/UNK/padding ids and add_bos/add_eos as llama.cpp's
// converter writes them for other tokenizer configs), and a byte-level GGUF
// comes back as the byte-level tokenizer.
func TestGGUFTokenizerRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, fx := range []string{"mamba-tiny", "mamba-bias-untied"} {
		t.Run(fx, func(t *testing.T) {
			base := filepath.Join(dir, fx+".gguf")
			exportGGUF(t, filepath.Join(fixtures.Dir(), fx), base, quant.F32)
			edited := filepath.Join(dir, fx+".edited.gguf")
			rewriteGGUF(t, base, edited, func(kvs []gguf.KV) []gguf.KV {
				kvs = setKV(kvs, gguf.KeyTokenizerPre, "mpt")
				kvs = setKV(kvs, gguf.KeyBOS, uint32(2))
				kvs = setKV(kvs, gguf.KeyEOS, uint32(3))
				kvs = setKV(kvs, gguf.KeyUNK, uint32(4))
				kvs = setKV(kvs, gguf.KeyPAD, uint32(5))
				kvs = setKV(kvs, gguf.KeyAddBOS, true)
				return setKV(kvs, gguf.KeyAddEOS, false)
			})
			mmq := filepath.Join(dir, fx+".mmq")
			convertTo(t, edited, mmq, quant.F32)
			mf, err := format.Open(mmq, format.OpenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			kind := mf.Header.Tokenizer.Kind
			mf.Close()
			if want := map[bool]string{true: format.TokenizerBytes, false: format.TokenizerHFBPE}[fx == "mamba-tiny"]; kind != want {
				t.Errorf("model file tokenizer kind %q, want %q", kind, want)
			}
			back := filepath.Join(dir, fx+".back.gguf")
			exportGGUF(t, mmq, back, quant.F32)
			sameGGUF(t, edited, back)
		})
	}
}

// TestGGUFTokenizerMetaRefused: an id in a model file's header that is
// outside the vocabulary, or a flag that is not a bool, is refused on
// export with the key named.
func TestGGUFTokenizerMetaRefused(t *testing.T) {
	for _, c := range []struct {
		key, value, want string
	}{
		{gguf.KeyBOS, "256", `"tokenizer.ggml.bos_token_id": "256" is not a token id below 256`},
		{gguf.KeyPAD, "-1", `"tokenizer.ggml.padding_token_id": "-1" is not a token id`},
		{gguf.KeyAddBOS, "yes", `"tokenizer.ggml.add_bos_token": "yes" is not a bool`},
	} {
		g, err := ggufTokenizer(format.Tokenizer{Kind: format.TokenizerBytes}, 256)
		if err != nil {
			t.Fatal(err)
		}
		err = applyTokenizerMeta(g, map[string]string{c.key: c.value})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s=%s: %v, want %q", c.key, c.value, err, c.want)
		}
	}
}

// sameGGUF checks that two GGUF files hold the same metadata (in any
// order) and the same tensors, bit for bit.
func sameGGUF(t *testing.T, pa, pb string) {
	t.Helper()
	a, err := gguf.Open(pa)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := gguf.Open(pb)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if len(a.KVs()) != len(b.KVs()) {
		t.Errorf("%d metadata keys, came back with %d", len(a.KVs()), len(b.KVs()))
	}
	for _, kv := range a.KVs() {
		if v, _ := b.Get(kv.Key); !sameValue(v, kv.Value) {
			t.Errorf("%s: %v, came back %v", kv.Key, short(kv.Value), short(v))
		}
	}
	if len(a.TensorInfos()) != len(b.TensorInfos()) {
		t.Fatalf("%d tensors, came back with %d", len(a.TensorInfos()), len(b.TensorInfos()))
	}
	for _, ti := range a.TensorInfos() {
		x, err := a.ReadTensor(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		y, err := b.ReadTensor(ti.Name)
		if err != nil || !bytes.Equal(x, y) {
			t.Errorf("tensor %s differs (%v)", ti.Name, err)
		}
	}
}

// sameValue compares two metadata values (slices element-wise).
func sameValue(a, b any) bool {
	switch x := a.(type) {
	case []string:
		y, ok := b.([]string)
		return ok && slices.Equal(x, y)
	case []int32:
		y, ok := b.([]int32)
		return ok && slices.Equal(x, y)
	}
	return a == b
}

// short prints a value, cut to 80 characters.
func short(v any) string {
	s := strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(fmt.Sprint(v), "\n", " "), "\t", " "))
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return s
}
