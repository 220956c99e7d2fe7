package convert

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/memmamba/memmamba/convert/gguf"
)

// GGUF tokenizer metadata that a tokenizer.json cannot hold (the
// pre-tokenizer's llama.cpp name, the BOS/EOS/UNK/padding ids, add_bos/
// add_eos) travels in a model file's header metadata under these keys:
// metaPrefix + the GGUF key (e.g. "gguf.tokenizer.ggml.pre"), values as
// text (ids in decimal, "true"/"false"). That is how GGUF -> model file ->
// GGUF keeps them.
const metaPrefix = "gguf."

// tokenizerMetaKeys are the GGUF keys kept that way, in the order they are
// applied.
var tokenizerMetaKeys = []string{gguf.KeyTokenizerPre, gguf.KeyBOS, gguf.KeyEOS, gguf.KeyUNK, gguf.KeyPAD, gguf.KeyAddBOS, gguf.KeyAddEOS}

// Pre-tokenizer names (tokenizer.ggml.pre) that the export writes.
const (
	// preGPT2 is llama.cpp's name for GPT-2's pre-tokenizer regex; the
	// byte-level tokenizer (no merges) is written with it.
	preGPT2 = "gpt-2"
	// preNeoX is what llama.cpp's convert_hf_to_gguf.py writes for the
	// GPT-NeoX-20B tokenizer of the public Mamba checkpoints (its hash
	// b6dc8df9... is listed for mpt-7b and, last, OLMo-1.7, so "olmo"
	// wins); llama.cpp runs "gpt-2", "mpt" and "olmo" with the same regex.
	preNeoX = "olmo"
)

// tokenizerMetaFromGGUF returns the keys of tokenizerMetaKeys that t sets,
// as text.
func tokenizerMetaFromGGUF(t *gguf.Tokenizer) map[string]string {
	m := map[string]string{}
	if t.Pre != "" {
		m[gguf.KeyTokenizerPre] = t.Pre
	}
	for _, id := range []struct {
		key string
		v   int
	}{{gguf.KeyBOS, t.BOS}, {gguf.KeyEOS, t.EOS}, {gguf.KeyUNK, t.UNK}, {gguf.KeyPAD, t.PAD}} {
		if id.v >= 0 {
			m[id.key] = strconv.Itoa(id.v)
		}
	}
	if t.AddBOS != nil {
		m[gguf.KeyAddBOS] = strconv.FormatBool(*t.AddBOS)
	}
	if t.AddEOS != nil {
		m[gguf.KeyAddEOS] = strconv.FormatBool(*t.AddEOS)
	}
	return m
}

// tokenizerMetaFromHeader picks the tokenizer keys out of a model file's
// header metadata (metaPrefix stripped); nil when there are none.
func tokenizerMetaFromHeader(h map[string]string) map[string]string {
	var m map[string]string
	for _, k := range tokenizerMetaKeys {
		if v, ok := h[metaPrefix+k]; ok {
			if m == nil {
				m = map[string]string{}
			}
			m[k] = v
		}
	}
	return m
}

// headerMetadata is a model file's header metadata: the source form, the
// GGUF tokenizer keys under metaPrefix and the chat template keys (chat,
// as they are).
func headerMetadata(form string, tok, chat map[string]string) map[string]string {
	h := map[string]string{"source_form": form}
	for k, v := range tok {
		h[metaPrefix+k] = v
	}
	for k, v := range chat {
		h[k] = v
	}
	return h
}

// applyTokenizerMeta overrides g's pre-tokenizer, special ids and add_*
// flags with those recorded in m (see metaPrefix). An id outside the
// vocabulary or a value that is not a number or a bool is an error naming
// the key.
func applyTokenizerMeta(g *gguf.Tokenizer, m map[string]string) error {
	for _, k := range tokenizerMetaKeys {
		v, ok := m[k]
		if !ok {
			continue
		}
		switch k {
		case gguf.KeyTokenizerPre:
			g.Pre = v
		case gguf.KeyAddBOS, gguf.KeyAddEOS:
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("tokenizer metadata %q: %q is not a bool", k, v)
			}
			if k == gguf.KeyAddBOS {
				g.AddBOS = &b
			} else {
				g.AddEOS = &b
			}
		default:
			id, err := strconv.Atoi(v)
			if err != nil || id < 0 || id >= len(g.Tokens) {
				return fmt.Errorf("tokenizer metadata %q: %q is not a token id below %d", k, v, len(g.Tokens))
			}
			switch k {
			case gguf.KeyBOS:
				g.BOS = id
			case gguf.KeyEOS:
				g.EOS = id
			case gguf.KeyUNK:
				g.UNK = id
			case gguf.KeyPAD:
				g.PAD = id
			}
		}
	}
	return nil
}

// preFor chooses tokenizer.ggml.pre for a tokenizer.json, as llama.cpp's
// converter would: a plain ByteLevel pre-tokenizer (GPT-2's regex) is
// "olmo" for the GPT-NeoX vocabulary (<|endoftext|> and <|padding|> as
// ids 0 and 1) and "gpt-2" otherwise. Other pre-tokenizers are not
// recognized: "" (no key; llama.cpp then warns and uses its default).
func preFor(preTokenizer json.RawMessage, tokens []string) string {
	var bl struct {
		Type     string `json:"type"`
		UseRegex *bool  `json:"use_regex"`
	}
	if json.Unmarshal(preTokenizer, &bl) != nil || bl.Type != "ByteLevel" || (bl.UseRegex != nil && !*bl.UseRegex) {
		return ""
	}
	if len(tokens) > 1 && tokens[0] == "<|endoftext|>" && tokens[1] == "<|padding|>" {
		return preNeoX
	}
	return preGPT2
}

// isPadToken reports whether tok is the filler the export (and llama.cpp's
// converter) writes at id i beyond the tokenizer's tokens: "[PADi]".
func isPadToken(tok string, i int) bool {
	return tok == "[PAD"+strconv.Itoa(i)+"]"
}

// trimPadTokens returns the number of tokens of t before its trailing run
// of unused "[PADi]" fillers: the vocabulary padding that the model's
// vocab_size restores on export.
func trimPadTokens(t *gguf.Tokenizer) int {
	n := len(t.Tokens)
	for n > 0 && t.TokenTypes != nil && t.TokenTypes[n-1] == gguf.TokenUnused && isPadToken(t.Tokens[n-1], n-1) {
		n--
	}
	return n
}

// isByteLevelGGUF reports whether t is the byte-level tokenizer as the
// export writes it: 256 normal tokens, byte b spelled as GPT-2's
// byte-to-unicode rune of b, no merges, then only "[PADi]" fillers.
func isByteLevelGGUF(t *gguf.Tokenizer) bool {
	if t.Model != gguf.TokenizerGPT2 || len(t.Merges) != 0 || trimPadTokens(t) != 256 {
		return false
	}
	b2u := bytesToUnicode()
	for b := range 256 {
		if t.Tokens[b] != string(b2u[b]) || (t.TokenTypes != nil && t.TokenTypes[b] != gguf.TokenNormal) {
			return false
		}
	}
	return true
}
