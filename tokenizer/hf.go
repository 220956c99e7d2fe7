package tokenizer

import (
	"fmt"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// hfTokenizer is a tokenizer loaded from a tokenizer.json.
type hfTokenizer struct {
	vocab     map[string]int // model vocabulary as written in the file
	pieces    []string       // id -> model vocabulary string
	hasPiece  []bool
	vocabSize int

	model       *bpeLoader
	norm        normalizer
	pre         preTokenizer
	dec         decoder
	template    []templateItem // nil: no TemplateProcessing
	trimOffsets bool

	addedByID      map[int]*addedToken
	addedByContent map[string]int
	addedRaw       addedSet // matched on the original text
	addedNorm      addedSet // matched on the normalized text

	specials Specials
}

type templateItem struct {
	sequence bool
	ids      []int
}

type addedToken struct {
	addedTokenJSON
	match string // content, normalized when the token is
}

// addedSet finds added tokens in text, leftmost-longest like the
// Aho-Corasick matcher of the Rust tokenizers.
type addedSet struct {
	byFirst map[byte][]*addedToken // longest first
}

func (a *addedSet) add(t *addedToken) {
	if a.byFirst == nil {
		a.byFirst = map[byte][]*addedToken{}
	}
	a.byFirst[t.match[0]] = append(a.byFirst[t.match[0]], t)
}

func (a *addedSet) sort() {
	for _, l := range a.byFirst {
		sort.SliceStable(l, func(i, j int) bool { return len(l[i].match) > len(l[j].match) })
	}
}

// item is a stretch of input: an added token or text still to encode.
type item struct {
	added *addedToken
	n     nstr
}

func isWordChar(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r) }

// split cuts n at the added tokens it contains.
func (a *addedSet) split(n nstr, dst []item) []item {
	if len(a.byFirst) == 0 {
		return append(dst, item{n: n})
	}
	s := n.s
	prev := 0
	for i := 0; i < len(s); {
		var hit *addedToken
		for _, c := range a.byFirst[s[i]] {
			if strings.HasPrefix(s[i:], c.match) {
				hit = c
				break
			}
		}
		if hit == nil {
			i++
			continue
		}
		start, stop := i, i+len(hit.match)
		if hit.SingleWord {
			before, _ := utf8.DecodeLastRuneInString(s[:start])
			after, _ := utf8.DecodeRuneInString(s[stop:])
			if (start > 0 && isWordChar(before)) || (stop < len(s) && isWordChar(after)) {
				i = stop
				continue
			}
		}
		if hit.LStrip {
			for start > prev {
				r, k := utf8.DecodeLastRuneInString(s[prev:start])
				if !unicode.IsSpace(r) {
					break
				}
				start -= k
			}
		}
		if hit.RStrip {
			for stop < len(s) {
				r, k := utf8.DecodeRuneInString(s[stop:])
				if !unicode.IsSpace(r) {
					break
				}
				stop += k
			}
		}
		if start > prev {
			dst = append(dst, item{n: n.sub(prev, start)})
		}
		dst = append(dst, item{added: hit, n: n.sub(start, stop)})
		prev, i = stop, stop
	}
	if prev < len(s) {
		dst = append(dst, item{n: n.sub(prev, len(s))})
	}
	return dst
}

func (t *hfTokenizer) Encode(text string) ([]int, error) {
	toks, err := t.encode(text)
	if err != nil {
		return nil, err
	}
	ids := make([]int, len(toks))
	for i, x := range toks {
		ids[i] = x.id
	}
	return ids, nil
}

func (t *hfTokenizer) EncodeWithOffsets(text string) ([]Token, error) {
	toks, err := t.encode(text)
	if err != nil {
		return nil, err
	}
	out := make([]Token, len(toks))
	for i, x := range toks {
		p, _ := t.IDToPiece(x.id)
		out[i] = Token{ID: x.id, Piece: p, Start: x.start, End: x.end}
	}
	return out, nil
}

// encode runs the whole pipeline; token ranges are in the original text.
func (t *hfTokenizer) encode(text string) ([]tok, error) {
	out := make([]tok, 0, len(text)/3+4)
	items := t.addedRaw.split(nstr{s: text}, nil)
	var pieces []nstr
	var local []tok
	for _, it := range items {
		if it.added != nil {
			s, e := it.n.orig(0, len(it.n.s))
			out = append(out, tok{it.added.ID, s, e})
			continue
		}
		n := it.n
		if t.norm != nil {
			var err error
			if n, err = t.norm.normalize(n); err != nil {
				return nil, err
			}
		}
		for _, it2 := range t.addedNorm.split(n, nil) {
			if it2.added != nil {
				s, e := it2.n.orig(0, len(it2.n.s))
				out = append(out, tok{it2.added.ID, s, e})
				continue
			}
			pieces = append(pieces[:0], it2.n)
			if t.pre != nil {
				var err error
				if pieces, err = t.pre.split(pieces); err != nil {
					return nil, err
				}
			}
			for i := range pieces {
				p := &pieces[i]
				local = t.model.bpe.encodePiece(local[:0], p.s)
				for _, x := range local {
					s, e := p.orig(x.start, x.end)
					out = append(out, tok{x.id, s, e})
				}
			}
		}
	}
	if t.template != nil {
		var full []tok
		for _, it := range t.template {
			if it.sequence {
				full = append(full, out...)
				continue
			}
			for _, id := range it.ids {
				full = append(full, tok{id, 0, 0})
			}
		}
		out = full
	}
	return out, nil
}

func (t *hfTokenizer) IDToPiece(id int) (string, bool) {
	if a, ok := t.addedByID[id]; ok {
		return a.Content, true
	}
	if id >= 0 && id < len(t.pieces) && t.hasPiece[id] {
		return t.pieces[id], true
	}
	return "", false
}

func (t *hfTokenizer) PieceToID(p string) (int, bool) {
	if id, ok := t.addedByContent[p]; ok {
		return id, true
	}
	id, ok := t.vocab[p]
	return id, ok
}

func (t *hfTokenizer) VocabSize() int     { return t.vocabSize }
func (t *hfTokenizer) Specials() Specials { return t.specials }

func (t *hfTokenizer) Decode(ids []int) (string, error) {
	s, err := t.decodeRaw(ids)
	return lossyUTF8(s), err
}

// decodeRaw decodes ids to bytes that may not be valid UTF-8.
func (t *hfTokenizer) decodeRaw(ids []int) (string, error) {
	toks := make([]string, len(ids))
	for i, id := range ids {
		p, ok := t.IDToPiece(id)
		if !ok {
			return "", fmt.Errorf("decode: id %d at position %d is not in the vocabulary (size %d)", id, i, t.vocabSize)
		}
		toks[i] = p
	}
	if t.dec == nil {
		return strings.Join(toks, " "), nil
	}
	out, err := t.dec.decode(toks)
	if err != nil {
		return "", fmt.Errorf("decode: %w", err)
	}
	return strings.Join(out, ""), nil
}

func (t *hfTokenizer) NewStreamDecoder() *StreamDecoder {
	return &StreamDecoder{raw: t.decodeRaw}
}
