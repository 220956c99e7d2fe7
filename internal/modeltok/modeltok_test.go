package modeltok

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/memmamba/memmamba/format"
	"github.com/memmamba/memmamba/internal/fixtures"
)

func TestLoad(t *testing.T) {
	js, err := os.ReadFile(filepath.Join(fixtures.Dir(), "mamba-bias-untied", "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		tok   format.Tokenizer
		vocab int
		want  string // "" for ok
	}{
		{"bytes", format.Tokenizer{Kind: format.TokenizerBytes}, 256, ""},
		{"bytes, no kind", format.Tokenizer{}, 300, ""},
		{"bytes, vocab too small", format.Tokenizer{Kind: format.TokenizerBytes}, 100, "100"},
		{"tokenizer.json", format.Tokenizer{Kind: format.TokenizerHFBPE, JSON: js}, 320, ""},
		{"tokenizer.json, vocab too small", format.Tokenizer{Kind: format.TokenizerHFBPE, JSON: js}, 300, "the model's vocabulary 300"},
		{"not JSON", format.Tokenizer{Kind: format.TokenizerHFBPE, JSON: []byte("{")}, 320, "parse"},
		{"unknown kind", format.Tokenizer{Kind: "sentencepiece"}, 320, "unknown tokenizer kind"},
	} {
		_, err := Load(tc.tok, tc.vocab)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}
