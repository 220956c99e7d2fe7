// Package modeltok loads the tokenizer a model file carries. It is the one
// place that decides whether a tokenizer is usable with a model: mmrun
// (engine.Model.Tokenizer) loads it at run time and mmconvert checks it at
// conversion with the same call, so a model file is never written with a
// tokenizer that mmrun would refuse.
package modeltok

import (
	"fmt"

	"github.com/memmamba/memmamba/format"
	"github.com/memmamba/memmamba/tokenizer"
)

// Load builds the tokenizer described by t for a model of vocabSize
// tokens: a Hugging Face tokenizer.json (every part the tokenizer package
// supports, its regexes compiled) or the byte-level tokenizer. A tokenizer
// with more tokens than the model's vocabulary is refused, with both
// numbers: its ids would index past the embeddings.
func Load(t format.Tokenizer, vocabSize int) (tokenizer.Tokenizer, error) {
	var tok tokenizer.Tokenizer
	var err error
	switch t.Kind {
	case format.TokenizerHFBPE:
		tok, err = tokenizer.FromJSON(t.JSON)
	case format.TokenizerBytes, "":
		tok, err = tokenizer.Bytes(vocabSize)
	default:
		err = fmt.Errorf("unknown tokenizer kind %q", t.Kind)
	}
	if err != nil {
		return nil, err
	}
	if n := tok.VocabSize(); n > vocabSize {
		return nil, fmt.Errorf("the tokenizer has %d tokens, the model's vocabulary %d (vocab_size)", n, vocabSize)
	}
	return tok, nil
}
