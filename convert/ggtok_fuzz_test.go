package convert

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/memmamba/memmamba/convert/gguf"
	"github.com/memmamba/memmamba/internal/fixtures"
	"github.com/memmamba/memmamba/tokenizer"
)

// ggufTokenizerFile returns a GGUF file (no tensors) holding t's metadata,
// written by the gguf writer.
func ggufTokenizerFile(tb testing.TB, t *gguf.Tokenizer) []byte {
	tb.Helper()
	kvs, err := t.KVs()
	if err != nil {
		tb.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := gguf.NewWriter(&buf, kvs, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// fixtureGGUFTokenizer is the byte-level BPE of the mamba-bias-untied
// fixture (GPT-NeoX style, 314 tokens and its merges) as GGUF metadata:
// what llama.cpp's converter would write for it.
func fixtureGGUFTokenizer(tb testing.TB) *gguf.Tokenizer {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join(fixtures.Dir(), "mamba-bias-untied", "tokenizer.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var doc struct {
		AddedTokens []struct {
			ID      int  `json:"id"`
			Special bool `json:"special"`
		} `json:"added_tokens"`
		Model struct {
			Vocab  map[string]int `json:"vocab"`
			Merges []string       `json:"merges"`
		} `json:"model"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		tb.Fatal(err)
	}
	n := 0
	for _, id := range doc.Model.Vocab {
		n = max(n, id+1)
	}
	t := &gguf.Tokenizer{Model: "gpt2", Pre: "gpt-2", Tokens: make([]string, n), TokenTypes: make([]int32, n),
		Merges: doc.Model.Merges, BOS: 0, EOS: 0, UNK: -1, PAD: 1}
	for i := range t.Tokens {
		t.Tokens[i], t.TokenTypes[i] = fmt.Sprintf("<unused%d>", i), 5
	}
	for tok, id := range doc.Model.Vocab {
		t.Tokens[id], t.TokenTypes[id] = tok, 1
	}
	for _, a := range doc.AddedTokens {
		if a.Special {
			t.TokenTypes[a.ID] = 3
		}
	}
	return t
}

// FuzzGGUFTokenizer feeds the GGUF reader, its tokenizer metadata and the
// conversion to tokenizer.json (what mmconvert does for a GGUF without a
// tokenizer.json beside it) arbitrary files, seeded with files the gguf
// writer made from the fixture's tokenizer and small hand-made ones. No
// step may panic; a conversion that succeeds must be JSON whose vocabulary
// maps every token to its id and whose added tokens are the control and
// user-defined ones; the runtime's tokenizer loader must not panic on it.
func FuzzGGUFTokenizer(f *testing.F) {
	yes := true
	f.Add(ggufTokenizerFile(f, fixtureGGUFTokenizer(f)))
	f.Add(ggufTokenizerFile(f, &gguf.Tokenizer{Model: "gpt2", Tokens: []string{"a", "b", "ab", "<|endoftext|>", "<pad>"},
		TokenTypes: []int32{1, 1, 1, 3, 4}, Merges: []string{"a b"}, BOS: -1, EOS: 3, UNK: -1, PAD: 4, AddBOS: &yes}))
	f.Add(ggufTokenizerFile(f, &gguf.Tokenizer{Model: "gpt2", Tokens: []string{"Ġ", "x", "Ġx"}, Merges: []string{"Ġ x"}, BOS: -1, EOS: -1, UNK: -1, PAD: -1}))
	f.Add(ggufTokenizerFile(f, &gguf.Tokenizer{Model: "llama", Tokens: []string{"▁a"}, BOS: -1, EOS: -1, UNK: -1, PAD: -1}))
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := gguf.NewReader(bytes.NewReader(b), int64(len(b)), "fuzz.gguf")
		if err != nil {
			return
		}
		tok, err := gguf.TokenizerFromKV(file.Metadata())
		if err != nil || tok == nil || tok.Model != "gpt2" {
			return
		}
		js, err := tokenizerJSONFromGGUF(tok)
		if err != nil {
			return
		}
		checkTokenizerJSON(t, tok, js)
		if tk, err := tokenizer.FromJSON(js); err == nil {
			if ids, err := tk.Encode("ab Ġx é😀\n"); err == nil {
				_, _ = tk.Decode(ids)
			}
		}
	})
}

// checkTokenizerJSON checks that js, converted from tok, maps each token
// to its id and lists the control (type 3) and user-defined (type 4)
// tokens as added tokens, in id order.
func checkTokenizerJSON(t *testing.T, tok *gguf.Tokenizer, js []byte) {
	t.Helper()
	var doc struct {
		AddedTokens []struct {
			ID      int    `json:"id"`
			Content string `json:"content"`
			Special bool   `json:"special"`
		} `json:"added_tokens"`
		Model struct {
			Type   string         `json:"type"`
			Vocab  map[string]int `json:"vocab"`
			Merges []string       `json:"merges"`
		} `json:"model"`
	}
	if err := json.Unmarshal(js, &doc); err != nil {
		t.Fatalf("the converted tokenizer is not JSON: %v", err)
	}
	n := trimPadTokens(tok) // the trailing "[PADn]" fillers are left out
	if doc.Model.Type != "BPE" || len(doc.Model.Vocab) != n {
		t.Fatalf("converted: a %q model of %d tokens, the GGUF has %d before its padding", doc.Model.Type, len(doc.Model.Vocab), n)
	}
	for i, s := range tok.Tokens[:n] {
		if id, ok := doc.Model.Vocab[s]; !ok || id != i {
			t.Fatalf("token %d (%q) converts to id %d (present %v)", i, s, id, ok)
		}
	}
	if !slices.Equal(doc.Model.Merges, tok.Merges) && len(doc.Model.Merges)+len(tok.Merges) > 0 {
		t.Fatalf("merges changed in the conversion")
	}
	var want []int
	for i := range tok.Tokens[:n] {
		if tok.TokenTypes != nil && (tok.TokenTypes[i] == 3 || tok.TokenTypes[i] == 4) {
			want = append(want, i)
		}
	}
	if len(doc.AddedTokens) != len(want) {
		t.Fatalf("%d added tokens, the GGUF has %d control or user-defined ones", len(doc.AddedTokens), len(want))
	}
	for k, a := range doc.AddedTokens {
		if a.ID != want[k] || a.Content != tok.Tokens[a.ID] || a.Special != (tok.TokenTypes[a.ID] == 3) {
			t.Fatalf("added token %d is %+v, the GGUF's is id %d %q type %d", k, a, want[k], tok.Tokens[want[k]], tok.TokenTypes[want[k]])
		}
	}
}
