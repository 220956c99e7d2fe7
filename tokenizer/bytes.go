package tokenizer

import "fmt"

// byteTokenizer is the byte-level tokenizer: the id of a byte is its value.
type byteTokenizer struct{ vocab int }

// Bytes returns the byte-level tokenizer of a model with the given
// vocabulary size (at least 256; ids 256 and up decode to nothing).
func Bytes(vocab int) (Tokenizer, error) {
	if vocab < 256 || vocab > maxVocab {
		return nil, fmt.Errorf("byte tokenizer: vocab size %d outside [256, %d]", vocab, maxVocab)
	}
	return byteTokenizer{vocab}, nil
}

func (b byteTokenizer) Encode(text string) ([]int, error) {
	ids := make([]int, len(text))
	for i := 0; i < len(text); i++ {
		ids[i] = int(text[i])
	}
	return ids, nil
}

func (b byteTokenizer) EncodeWithOffsets(text string) ([]Token, error) {
	out := make([]Token, len(text))
	for i := 0; i < len(text); i++ {
		out[i] = Token{ID: int(text[i]), Piece: text[i : i+1], Start: i, End: i + 1}
	}
	return out, nil
}

func (b byteTokenizer) Decode(ids []int) (string, error) {
	s, err := b.decodeRaw(ids)
	return lossyUTF8(s), err
}

func (b byteTokenizer) decodeRaw(ids []int) (string, error) {
	buf := make([]byte, 0, len(ids))
	for i, id := range ids {
		if id < 0 || id >= b.vocab {
			return "", fmt.Errorf("decode: id %d at position %d is outside the vocabulary (size %d)", id, i, b.vocab)
		}
		if id < 256 {
			buf = append(buf, byte(id))
		}
	}
	return string(buf), nil
}

func (b byteTokenizer) VocabSize() int     { return b.vocab }
func (b byteTokenizer) Specials() Specials { return Specials{-1, -1, -1, -1} }

func (b byteTokenizer) IDToPiece(id int) (string, bool) {
	if id < 0 || id >= 256 {
		return "", false
	}
	return string([]byte{byte(id)}), true
}

func (b byteTokenizer) PieceToID(p string) (int, bool) {
	if len(p) != 1 {
		return 0, false
	}
	return int(p[0]), true
}

func (b byteTokenizer) NewStreamDecoder() *StreamDecoder {
	return &StreamDecoder{raw: b.decodeRaw}
}
