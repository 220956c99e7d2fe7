package convert

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/memmamba/memmamba/convert/gguf"
)

// tokenizerJSONFromGGUF rebuilds a Hugging Face tokenizer.json from a GGUF
// file's "gpt2" (byte-level BPE) tokenizer metadata: the vocabulary and
// merges, the GPT-2 ByteLevel pre-tokenizer and decoder, and the control
// tokens (token type 3) as special added tokens and the user-defined ones
// (type 4) as plain added tokens. llama.cpp's GGUF does not
// record normalizers or post-processors; a byte-level BPE of the GPT-2
// family (GPT-NeoX's included) has neither. The trailing unused "[PADn]"
// tokens that pad the vocabulary to the embedding's rows are left out: the
// export adds them back from vocab_size.
func tokenizerJSONFromGGUF(t *gguf.Tokenizer) ([]byte, error) {
	n := trimPadTokens(t)
	vocab := make(map[string]int, n)
	type added struct {
		ID         int    `json:"id"`
		Content    string `json:"content"`
		SingleWord bool   `json:"single_word"`
		Lstrip     bool   `json:"lstrip"`
		Rstrip     bool   `json:"rstrip"`
		Normalized bool   `json:"normalized"`
		Special    bool   `json:"special"`
	}
	var specials []added
	for i, tok := range t.Tokens[:n] {
		// JSON holds text: invalid UTF-8 would be replaced by U+FFFD and
		// silently merge tokens.
		if !utf8.ValidString(tok) {
			return nil, fmt.Errorf("token %d (%q) is not valid UTF-8, which tokenizer.json cannot hold", i, tok)
		}
		if _, dup := vocab[tok]; dup {
			return nil, fmt.Errorf("token %d (%q) appears twice in the vocabulary", i, tok)
		}
		vocab[tok] = i
		if t.TokenTypes != nil {
			switch t.TokenTypes[i] {
			case 3: // control
				specials = append(specials, added{ID: i, Content: tok, Special: true})
			case 4: // user-defined (llama.cpp's padding tokens among them)
				specials = append(specials, added{ID: i, Content: tok})
			}
		}
	}
	for i, m := range t.Merges {
		if !utf8.ValidString(m) {
			return nil, fmt.Errorf("merge %d (%q) is not valid UTF-8, which tokenizer.json cannot hold", i, m)
		}
	}
	bl := map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}
	doc := map[string]any{
		"version":        "1.0",
		"truncation":     nil,
		"padding":        nil,
		"added_tokens":   specials,
		"normalizer":     nil,
		"pre_tokenizer":  bl,
		"post_processor": bl,
		"decoder":        bl,
		"model": map[string]any{
			"type": "BPE", "dropout": nil, "unk_token": nil, "continuing_subword_prefix": nil,
			"end_of_word_suffix": nil, "fuse_unk": false, "byte_fallback": false,
			"vocab": vocab, "merges": t.Merges,
		},
	}
	return json.Marshal(doc)
}
