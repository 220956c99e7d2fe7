// Package tokenizer turns text into token ids and back for the models this
// project runs. It implements the subset of Hugging Face's tokenizer.json
// format that byte-level BPE models use (GPT-2, GPT-NeoX, Llama 3, Qwen,
// o200k style files) and the plain byte-level tokenizer (id = byte value).
//
// The converter embeds the tokenizer.json bytes in the model file and the
// runtime rebuilds the tokenizer with FromJSON, so a model file needs nothing
// else to turn a prompt into ids. Every component of a tokenizer.json that
// this package does not implement is refused at load, by name: a tokenizer
// that silently skipped a normalizer would feed the model wrong ids.
//
// Agreement with the reference (Hugging Face's Tokenizers.js) is checked
// token by token on real tokenizer files by the golden test in this package;
// see testdata/tokenizers/README.md at the repository root.
package tokenizer

import "errors"

// Token is one encoded token: its id, its vocabulary string and the byte
// range [Start, End) of the input text it came from. Tokens inserted by a
// post-processor (BOS/EOS) have Start == End == 0.
type Token struct {
	ID         int
	Piece      string
	Start, End int
}

// Specials holds the ids of the well-known special tokens; -1 where the
// tokenizer does not define one.
type Specials struct {
	BOS, EOS, PAD, UNK int
}

// Tokenizer encodes text to ids and decodes ids to text. Implementations are
// safe for concurrent use.
type Tokenizer interface {
	// Encode returns the ids of text, with the special tokens the
	// tokenizer's post-processor adds (Hugging Face's add_special_tokens=true).
	Encode(text string) ([]int, error)
	// EncodeWithOffsets is Encode with each token's piece and byte offsets.
	EncodeWithOffsets(text string) ([]Token, error)
	// Decode returns the text of ids, special tokens included. Byte
	// sequences that are not valid UTF-8 come out as U+FFFD, one per
	// maximal invalid subsequence (as Rust's from_utf8_lossy and the WHATWG
	// decoder do). An id outside the vocabulary is an error.
	Decode(ids []int) (string, error)
	// VocabSize is one more than the largest id the tokenizer can produce
	// or decode.
	VocabSize() int
	// Specials returns the BOS/EOS/PAD/UNK ids where known.
	Specials() Specials
	// IDToPiece returns the vocabulary string of id.
	IDToPiece(id int) (string, bool)
	// PieceToID returns the id of a vocabulary string (added tokens included).
	PieceToID(piece string) (int, bool)
	// NewStreamDecoder returns a decoder for ids produced one at a time.
	NewStreamDecoder() *StreamDecoder
}

// ErrUnsupported is wrapped by the load errors for components of a
// tokenizer.json that this package does not implement.
var ErrUnsupported = errors.New("unsupported tokenizer component")
