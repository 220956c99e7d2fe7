package gguf

import (
	"errors"
	"fmt"
)

// Tokenizer metadata keys (llama.cpp's llama-arch.cpp, LLM_KV_TOKENIZER_*).
const (
	KeyTokenizerModel = "tokenizer.ggml.model"
	KeyTokenizerPre   = "tokenizer.ggml.pre"
	KeyTokens         = "tokenizer.ggml.tokens"
	KeyTokenType      = "tokenizer.ggml.token_type"
	KeyMerges         = "tokenizer.ggml.merges"
	KeyBOS            = "tokenizer.ggml.bos_token_id"
	KeyEOS            = "tokenizer.ggml.eos_token_id"
	KeyUNK            = "tokenizer.ggml.unknown_token_id"
	KeyPAD            = "tokenizer.ggml.padding_token_id"
	KeyAddBOS         = "tokenizer.ggml.add_bos_token"
	KeyAddEOS         = "tokenizer.ggml.add_eos_token"
)

// TokenizerGPT2 is tokenizer.ggml.model for byte-level BPE (Hugging Face
// tokenizer.json with a ByteLevel pre-tokenizer, e.g. GPT-NeoX's).
const TokenizerGPT2 = "gpt2"

// Token types (tokenizer.ggml.token_type; llama.cpp's llama_token_type).
const (
	TokenNormal      int32 = 1
	TokenUnknown     int32 = 2
	TokenControl     int32 = 3
	TokenUserDefined int32 = 4
	TokenUnused      int32 = 5
	TokenByte        int32 = 6
)

// Tokenizer is the tokenizer metadata of a GGUF file. Token ids that the
// file does not set are -1.
type Tokenizer struct {
	Model string // tokenizer.ggml.model, e.g. "gpt2"
	Pre   string // tokenizer.ggml.pre (pre-tokenizer name), "" when absent
	// Tokens are the vocabulary strings in id order, in the model's own
	// encoding (for gpt2: GPT-2's byte-to-unicode mapping).
	Tokens     []string
	TokenTypes []int32 // one per token; nil when absent
	// Merges are the BPE merges, "left right", by priority.
	Merges             []string
	BOS, EOS, UNK, PAD int
	// AddBOS and AddEOS are nil when the file does not say.
	AddBOS, AddEOS *bool
}

// KVs returns the tokenizer's metadata in a fixed order, omitting what is
// unset (ids < 0, empty Pre, nil TokenTypes and AddBOS/AddEOS).
func (t *Tokenizer) KVs() ([]KV, error) {
	if t.Model == "" {
		return nil, errors.New("gguf: tokenizer model is empty")
	}
	if t.TokenTypes != nil && len(t.TokenTypes) != len(t.Tokens) {
		return nil, fmt.Errorf("gguf: tokenizer has %d tokens but %d token types", len(t.Tokens), len(t.TokenTypes))
	}
	kvs := []KV{{KeyTokenizerModel, t.Model}}
	if t.Pre != "" {
		kvs = append(kvs, KV{KeyTokenizerPre, t.Pre})
	}
	kvs = append(kvs, KV{KeyTokens, nonNil(t.Tokens)})
	if t.TokenTypes != nil {
		kvs = append(kvs, KV{KeyTokenType, t.TokenTypes})
	}
	if t.Merges != nil {
		kvs = append(kvs, KV{KeyMerges, t.Merges})
	}
	for _, id := range []struct {
		key string
		v   int
	}{{KeyBOS, t.BOS}, {KeyEOS, t.EOS}, {KeyUNK, t.UNK}, {KeyPAD, t.PAD}} {
		if id.v < 0 {
			continue
		}
		if id.v >= len(t.Tokens) {
			return nil, fmt.Errorf("gguf: %s %d is outside the %d tokens", id.key, id.v, len(t.Tokens))
		}
		kvs = append(kvs, KV{id.key, uint32(id.v)})
	}
	if t.AddBOS != nil {
		kvs = append(kvs, KV{KeyAddBOS, *t.AddBOS})
	}
	if t.AddEOS != nil {
		kvs = append(kvs, KV{KeyAddEOS, *t.AddEOS})
	}
	return kvs, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// TokenizerFromKV reads the tokenizer metadata. It returns nil and no error
// when the file has no tokenizer.ggml.model. Errors name the key.
func TokenizerFromKV(kv map[string]any) (*Tokenizer, error) {
	mv, ok := kv[KeyTokenizerModel]
	if !ok {
		return nil, nil
	}
	t := &Tokenizer{BOS: -1, EOS: -1, UNK: -1, PAD: -1}
	var errs []error
	bad := func(key string, want string, v any) {
		errs = append(errs, fmt.Errorf("gguf: metadata key %q: want %s, got %T", key, want, v))
	}
	if t.Model, ok = mv.(string); !ok {
		bad(KeyTokenizerModel, "a string", mv)
	}
	if v, ok := kv[KeyTokenizerPre]; ok {
		if t.Pre, ok = v.(string); !ok {
			bad(KeyTokenizerPre, "a string", v)
		}
	}
	if v, ok := kv[KeyTokens]; ok {
		if t.Tokens, ok = v.([]string); !ok {
			bad(KeyTokens, "an array of strings", v)
		}
	} else {
		errs = append(errs, fmt.Errorf("gguf: metadata key %q is missing", KeyTokens))
	}
	if v, ok := kv[KeyTokenType]; ok {
		if t.TokenTypes, ok = v.([]int32); !ok {
			bad(KeyTokenType, "an array of INT32", v)
		} else if len(t.TokenTypes) != len(t.Tokens) {
			errs = append(errs, fmt.Errorf("gguf: metadata key %q has %d entries for %d tokens", KeyTokenType, len(t.TokenTypes), len(t.Tokens)))
		}
	}
	if v, ok := kv[KeyMerges]; ok {
		if t.Merges, ok = v.([]string); !ok {
			bad(KeyMerges, "an array of strings", v)
		}
	}
	for _, id := range []struct {
		key string
		dst *int
	}{{KeyBOS, &t.BOS}, {KeyEOS, &t.EOS}, {KeyUNK, &t.UNK}, {KeyPAD, &t.PAD}} {
		v, ok := kv[id.key]
		if !ok {
			continue
		}
		n, ok := asUint(v)
		if !ok {
			bad(id.key, "a non-negative integer", v)
			continue
		}
		if n >= uint64(len(t.Tokens)) {
			errs = append(errs, fmt.Errorf("gguf: metadata key %q: id %d is outside the %d tokens", id.key, n, len(t.Tokens)))
			continue
		}
		*id.dst = int(n)
	}
	for _, b := range []struct {
		key string
		dst **bool
	}{{KeyAddBOS, &t.AddBOS}, {KeyAddEOS, &t.AddEOS}} {
		v, ok := kv[b.key]
		if !ok {
			continue
		}
		x, ok := v.(bool)
		if !ok {
			bad(b.key, "a bool", v)
			continue
		}
		*b.dst = &x
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return t, nil
}
