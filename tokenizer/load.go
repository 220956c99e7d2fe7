package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/dlclark/regexp2/v2"
	"golang.org/x/text/unicode/norm"
)

// Limits on what a tokenizer.json may contain; files beyond them are
// refused rather than allowed to exhaust memory.
const (
	maxJSONBytes   = 256 << 20
	maxVocab       = 1 << 22
	maxTokenBytes  = 1 << 16
	maxAddedTokens = 1 << 16
	maxNesting     = 16
	maxTemplate    = 64
)

type fileJSON struct {
	Version       string           `json:"version"`
	Truncation    json.RawMessage  `json:"truncation"`
	Padding       json.RawMessage  `json:"padding"`
	AddedTokens   []addedTokenJSON `json:"added_tokens"`
	Normalizer    json.RawMessage  `json:"normalizer"`
	PreTokenizer  json.RawMessage  `json:"pre_tokenizer"`
	Model         json.RawMessage  `json:"model"`
	PostProcessor json.RawMessage  `json:"post_processor"`
	Decoder       json.RawMessage  `json:"decoder"`
}

type addedTokenJSON struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

type modelJSON struct {
	Type                    string          `json:"type"`
	Dropout                 *float64        `json:"dropout"`
	UnkToken                *string         `json:"unk_token"`
	ContinuingSubwordPrefix *string         `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string         `json:"end_of_word_suffix"`
	FuseUnk                 bool            `json:"fuse_unk"`
	ByteFallback            bool            `json:"byte_fallback"`
	IgnoreMerges            bool            `json:"ignore_merges"`
	Vocab                   map[string]int  `json:"vocab"`
	Merges                  json.RawMessage `json:"merges"`
}

// component is the common shape of normalizers, pre-tokenizers, decoders
// and post-processors: a type tag plus type-specific fields.
type component struct {
	Type string `json:"type"`
	// Sequence
	Normalizers   []json.RawMessage `json:"normalizers"`
	Pretokenizers []json.RawMessage `json:"pretokenizers"`
	Decoders      []json.RawMessage `json:"decoders"`
	Processors    []json.RawMessage `json:"processors"`
	// Split, Replace
	Pattern  *patternJSON `json:"pattern"`
	Behavior string       `json:"behavior"`
	Invert   bool         `json:"invert"`
	Content  *string      `json:"content"`
	// Prepend
	Prepend *string `json:"prepend"`
	// ByteLevel
	AddPrefixSpace bool  `json:"add_prefix_space"`
	TrimOffsets    bool  `json:"trim_offsets"`
	UseRegex       *bool `json:"use_regex"`
	// Digits
	IndividualDigits bool `json:"individual_digits"`
	// Strip
	Start int `json:"start"`
	Stop  int `json:"stop"`
	// TemplateProcessing
	Single        []json.RawMessage          `json:"single"`
	SpecialTokens map[string]templateSpecial `json:"special_tokens"`
}

type patternJSON struct {
	String *string `json:"String"`
	Regex  *string `json:"Regex"`
}

type templateSpecial struct {
	ID     string   `json:"id"`
	IDs    []int    `json:"ids"`
	Tokens []string `json:"tokens"`
}

type templatePiece struct {
	SpecialToken *struct {
		ID string `json:"id"`
	} `json:"SpecialToken"`
	Sequence *struct {
		ID string `json:"id"`
	} `json:"Sequence"`
}

// FromJSON builds a tokenizer from the bytes of a Hugging Face
// tokenizer.json. Components it does not implement are refused with an
// error naming them (wrapping ErrUnsupported).
func FromJSON(data []byte) (Tokenizer, error) {
	t, err := fromJSON(data)
	if err != nil {
		return nil, fmt.Errorf("tokenizer.json: %w", err)
	}
	return t, nil
}

func fromJSON(data []byte) (*hfTokenizer, error) {
	if len(data) > maxJSONBytes {
		return nil, fmt.Errorf("%d bytes exceeds the limit of %d", len(data), maxJSONBytes)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	known := map[string]bool{"version": true, "truncation": true, "padding": true, "added_tokens": true,
		"normalizer": true, "pre_tokenizer": true, "model": true, "post_processor": true, "decoder": true}
	for k := range top {
		if !known[k] {
			return nil, fmt.Errorf("top-level field %q: %w", k, ErrUnsupported)
		}
	}
	var f fileJSON
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if !isNull(f.Truncation) {
		return nil, fmt.Errorf("truncation settings: %w", ErrUnsupported)
	}
	t := &hfTokenizer{specials: Specials{-1, -1, -1, -1}}
	if err := t.loadModel(f.Model); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	var err error
	if t.norm, err = parseNormalizer(f.Normalizer, 0); err != nil {
		return nil, fmt.Errorf("normalizer: %w", err)
	}
	var byteLevel bool
	if t.pre, err = parsePreTokenizer(f.PreTokenizer, 0, &byteLevel); err != nil {
		return nil, fmt.Errorf("pre_tokenizer: %w", err)
	}
	if err := t.model.finish(byteLevel, t.pieces); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	if t.dec, err = parseDecoder(f.Decoder, 0); err != nil {
		return nil, fmt.Errorf("decoder: %w", err)
	}
	if err := t.loadAdded(f.AddedTokens); err != nil {
		return nil, fmt.Errorf("added_tokens: %w", err)
	}
	if err := t.parsePost(f.PostProcessor, 0); err != nil {
		return nil, fmt.Errorf("post_processor: %w", err)
	}
	if !isNull(f.Padding) {
		var p struct {
			PadID int `json:"pad_id"`
		}
		if err := json.Unmarshal(f.Padding, &p); err == nil && p.PadID >= 0 && p.PadID < t.vocabSize {
			t.specials.PAD = p.PadID
		}
	}
	t.guessSpecials()
	return t, nil
}

func isNull(r json.RawMessage) bool {
	r = bytes.TrimSpace(r)
	return len(r) == 0 || string(r) == "null"
}

func (t *hfTokenizer) loadModel(raw json.RawMessage) error {
	if isNull(raw) {
		return fmt.Errorf("missing")
	}
	var m modelJSON
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("parse: %w", err)
	}
	if m.Type == "" && m.Merges != nil {
		m.Type = "BPE"
	}
	if m.Type != "BPE" {
		return fmt.Errorf("model type %q: %w", m.Type, ErrUnsupported)
	}
	if m.Dropout != nil && *m.Dropout != 0 {
		return fmt.Errorf("BPE dropout: %w", ErrUnsupported)
	}
	if m.ContinuingSubwordPrefix != nil && *m.ContinuingSubwordPrefix != "" {
		return fmt.Errorf("continuing_subword_prefix %q: %w", *m.ContinuingSubwordPrefix, ErrUnsupported)
	}
	if m.EndOfWordSuffix != nil && *m.EndOfWordSuffix != "" {
		return fmt.Errorf("end_of_word_suffix %q: %w", *m.EndOfWordSuffix, ErrUnsupported)
	}
	if len(m.Vocab) > maxVocab {
		return fmt.Errorf("vocab of %d entries exceeds the limit of %d", len(m.Vocab), maxVocab)
	}
	maxID := -1
	for s, id := range m.Vocab {
		if id < 0 || id >= maxVocab {
			return fmt.Errorf("vocab entry %q: id %d out of range [0, %d)", s, id, maxVocab)
		}
		if len(s) > maxTokenBytes {
			return fmt.Errorf("vocab entry of %d bytes exceeds the limit of %d", len(s), maxTokenBytes)
		}
		maxID = max(maxID, id)
	}
	t.pieces = make([]string, maxID+1)
	t.hasPiece = make([]bool, maxID+1)
	for s, id := range m.Vocab {
		if t.hasPiece[id] {
			return fmt.Errorf("vocab id %d used by %q and %q", id, t.pieces[id], s)
		}
		t.pieces[id], t.hasPiece[id] = s, true
	}
	t.vocab = m.Vocab
	t.vocabSize = maxID + 1
	merges, err := parseMerges(m.Merges)
	if err != nil {
		return fmt.Errorf("merges: %w", err)
	}
	t.model = &bpeLoader{json: m, merges: merges}
	if m.UnkToken != nil {
		id, ok := m.Vocab[*m.UnkToken]
		if !ok {
			return fmt.Errorf("unk_token %q not in vocab", *m.UnkToken)
		}
		t.specials.UNK = id
	}
	return nil
}

// parseMerges accepts both the "a b" string form and the ["a", "b"] form.
func parseMerges(raw json.RawMessage) ([][2]string, error) {
	if isNull(raw) {
		return nil, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, err
	}
	if len(items) > maxVocab {
		return nil, fmt.Errorf("%d merges exceed the limit of %d", len(items), maxVocab)
	}
	out := make([][2]string, len(items))
	for i, it := range items {
		var s string
		if err := json.Unmarshal(it, &s); err == nil {
			a, b, ok := strings.Cut(s, " ")
			if !ok || strings.Contains(b, " ") {
				return nil, fmt.Errorf("merge %d %q is not two tokens separated by one space", i, s)
			}
			out[i] = [2]string{a, b}
			continue
		}
		var p []string
		if err := json.Unmarshal(it, &p); err != nil || len(p) != 2 {
			return nil, fmt.Errorf("merge %d: neither \"a b\" nor [\"a\", \"b\"]", i)
		}
		out[i] = [2]string{p[0], p[1]}
	}
	return out, nil
}

// bpeLoader holds the parsed model until the pre-tokenizer tells whether
// the vocabulary is byte-level.
type bpeLoader struct {
	json   modelJSON
	merges [][2]string
	bpe    *bpe
}

func (l *bpeLoader) finish(byteLevel bool, pieces []string) error {
	m := &bpe{byteLevel: byteLevel, ignoreMerges: l.json.IgnoreMerges, byteFallback: l.json.ByteFallback,
		fuseUnk: l.json.FuseUnk, unk: -1, cache: map[string][]int{}}
	if l.json.UnkToken != nil {
		m.unk = l.json.Vocab[*l.json.UnkToken]
	}
	if byteLevel {
		if l.json.ByteFallback {
			return fmt.Errorf("byte_fallback with a ByteLevel pre-tokenizer: %w", ErrUnsupported)
		}
		m.vocab = make(map[string]int, len(l.json.Vocab))
		for s, id := range l.json.Vocab {
			if raw, ok := fromByteLevel(s); ok {
				m.vocab[raw] = id
			}
		}
		for b := range 256 {
			m.byteID[b] = -1
			if id, ok := m.vocab[string([]byte{byte(b)})]; ok {
				m.byteID[b] = int32(id)
			}
		}
	} else {
		m.vocab = l.json.Vocab
	}
	m.merges = make(map[uint64]mergeRule, len(l.merges))
	for rank, p := range l.merges {
		a, ok1 := l.json.Vocab[p[0]]
		b, ok2 := l.json.Vocab[p[1]]
		c, ok3 := l.json.Vocab[p[0]+p[1]]
		if !ok1 || !ok2 || !ok3 {
			return fmt.Errorf("merge %d (%q %q) uses a token missing from the vocab", rank, p[0], p[1])
		}
		k := pairKey(int32(a), int32(b))
		if _, dup := m.merges[k]; !dup {
			m.merges[k] = mergeRule{int32(rank), int32(c)}
		}
	}
	l.bpe = m
	return nil
}

func parsePattern(p *patternJSON) (string, *regexp2.Regexp, error) {
	switch {
	case p == nil:
		return "", nil, fmt.Errorf("missing pattern")
	case p.String != nil:
		if *p.String == "" {
			return "", nil, fmt.Errorf("empty pattern")
		}
		return *p.String, nil, nil
	case p.Regex != nil:
		re, err := compileOniguruma(*p.Regex)
		return "", re, err
	}
	return "", nil, fmt.Errorf("pattern is neither String nor Regex")
}

func parseComponent(raw json.RawMessage, depth int) (*component, error) {
	if depth > maxNesting {
		return nil, fmt.Errorf("nested deeper than %d", maxNesting)
	}
	var c component
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	return &c, nil
}

// parseSequence parses the steps of a Sequence component (normalizers,
// pre-tokenizers, decoders, post-processors) with parse, one level deeper,
// naming a failing step by its index, and keeps the steps that are not
// null.
func parseSequence[T any](steps []json.RawMessage, depth int, parse func(json.RawMessage, int) (T, error)) ([]T, error) {
	var q []T
	for i, r := range steps {
		x, err := parse(r, depth+1)
		if err != nil {
			return nil, fmt.Errorf("Sequence[%d]: %w", i, err)
		}
		if any(x) != nil {
			q = append(q, x)
		}
	}
	return q, nil
}

func parseNormalizer(raw json.RawMessage, depth int) (normalizer, error) {
	if isNull(raw) {
		return nil, nil
	}
	c, err := parseComponent(raw, depth)
	if err != nil {
		return nil, err
	}
	switch c.Type {
	case "NFC":
		return unicodeNorm{norm.NFC}, nil
	case "NFKC":
		return unicodeNorm{norm.NFKC}, nil
	case "Sequence":
		q, err := parseSequence(c.Normalizers, depth, parseNormalizer)
		if err != nil {
			return nil, err
		}
		return normSeq(q), nil
	case "Prepend":
		if c.Prepend == nil {
			return nil, fmt.Errorf("Prepend without prepend")
		}
		return prependNorm{*c.Prepend}, nil
	case "Replace":
		lit, re, err := parsePattern(c.Pattern)
		if err != nil || c.Content == nil {
			return nil, fmt.Errorf("Replace: bad pattern or content: %v", err)
		}
		return replaceNorm{lit, re, *c.Content}, nil
	}
	return nil, fmt.Errorf("normalizer %q: %w", c.Type, ErrUnsupported)
}

func parsePreTokenizer(raw json.RawMessage, depth int, byteLevel *bool) (preTokenizer, error) {
	if isNull(raw) {
		return nil, nil
	}
	c, err := parseComponent(raw, depth)
	if err != nil {
		return nil, err
	}
	switch c.Type {
	case "Sequence":
		q, err := parseSequence(c.Pretokenizers, depth, func(r json.RawMessage, depth int) (preTokenizer, error) {
			return parsePreTokenizer(r, depth, byteLevel)
		})
		if err != nil {
			return nil, err
		}
		return preSeq(q), nil
	case "Split":
		lit, re, err := parsePattern(c.Pattern)
		if err != nil {
			return nil, fmt.Errorf("Split: %w", err)
		}
		b, ok := behaviors[c.Behavior]
		if !ok {
			return nil, fmt.Errorf("Split behavior %q: %w", c.Behavior, ErrUnsupported)
		}
		return &splitPre{lit, re, b, c.Invert}, nil
	case "Digits":
		return digitsPre{c.IndividualDigits}, nil
	case "ByteLevel":
		*byteLevel = true
		bl := &byteLevelPre{addPrefixSpace: c.AddPrefixSpace}
		if c.UseRegex == nil || *c.UseRegex {
			if bl.re, err = compileOniguruma(gpt2Pattern); err != nil {
				return nil, err
			}
		}
		return bl, nil
	}
	return nil, fmt.Errorf("pre-tokenizer %q: %w", c.Type, ErrUnsupported)
}

func parseDecoder(raw json.RawMessage, depth int) (decoder, error) {
	if isNull(raw) {
		return nil, nil
	}
	c, err := parseComponent(raw, depth)
	if err != nil {
		return nil, err
	}
	switch c.Type {
	case "ByteLevel":
		return byteLevelDec{}, nil
	case "Sequence":
		q, err := parseSequence(c.Decoders, depth, parseDecoder)
		if err != nil {
			return nil, err
		}
		return decSeq(q), nil
	case "Replace":
		lit, re, err := parsePattern(c.Pattern)
		if err != nil || c.Content == nil {
			return nil, fmt.Errorf("Replace: bad pattern or content: %v", err)
		}
		return replaceDec{lit, re, *c.Content}, nil
	case "Fuse":
		return fuseDec{}, nil
	case "Strip":
		if c.Content == nil || c.Start < 0 || c.Stop < 0 {
			return nil, fmt.Errorf("Strip: bad content, start or stop")
		}
		return stripDec{*c.Content, c.Start, c.Stop}, nil
	case "ByteFallback":
		return byteFallbackDec{}, nil
	}
	return nil, fmt.Errorf("decoder %q: %w", c.Type, ErrUnsupported)
}

func (t *hfTokenizer) parsePost(raw json.RawMessage, depth int) error {
	if isNull(raw) {
		return nil
	}
	c, err := parseComponent(raw, depth)
	if err != nil {
		return err
	}
	switch c.Type {
	case "ByteLevel":
		t.trimOffsets = c.TrimOffsets
		return nil
	case "Sequence":
		_, err := parseSequence(c.Processors, depth, func(r json.RawMessage, depth int) (any, error) {
			return nil, t.parsePost(r, depth)
		})
		return err
	case "TemplateProcessing":
		if t.template != nil {
			return fmt.Errorf("two TemplateProcessing steps: %w", ErrUnsupported)
		}
		if len(c.Single) > maxTemplate {
			return fmt.Errorf("template of %d items exceeds the limit of %d", len(c.Single), maxTemplate)
		}
		t.template = []templateItem{}
		seq := 0
		for i, r := range c.Single {
			var p templatePiece
			if err := json.Unmarshal(r, &p); err != nil {
				return fmt.Errorf("single[%d]: %w", i, err)
			}
			switch {
			case p.Sequence != nil:
				t.template = append(t.template, templateItem{sequence: true})
				seq++
			case p.SpecialToken != nil:
				sp, ok := c.SpecialTokens[p.SpecialToken.ID]
				if !ok {
					return fmt.Errorf("single[%d]: special token %q not in special_tokens", i, p.SpecialToken.ID)
				}
				for _, id := range sp.IDs {
					if id < 0 || id >= t.vocabSize {
						return fmt.Errorf("special token %q: id %d out of range", sp.ID, id)
					}
				}
				t.template = append(t.template, templateItem{ids: sp.IDs})
			default:
				return fmt.Errorf("single[%d]: neither Sequence nor SpecialToken", i)
			}
		}
		if seq != 1 {
			return fmt.Errorf("template has %d sequences, want 1", seq)
		}
		return nil
	}
	return fmt.Errorf("post-processor %q: %w", c.Type, ErrUnsupported)
}

func (t *hfTokenizer) loadAdded(list []addedTokenJSON) error {
	if len(list) > maxAddedTokens {
		return fmt.Errorf("%d added tokens exceed the limit of %d", len(list), maxAddedTokens)
	}
	t.addedByID = map[int]*addedToken{}
	for i, a := range list {
		if a.ID < 0 || a.ID >= maxVocab {
			return fmt.Errorf("[%d] %q: id %d out of range", i, a.Content, a.ID)
		}
		if a.Content == "" || len(a.Content) > maxTokenBytes {
			return fmt.Errorf("[%d]: content empty or longer than %d bytes", i, maxTokenBytes)
		}
		at := &addedToken{addedTokenJSON: a, match: a.Content}
		if a.Normalized && t.norm != nil {
			n, err := t.norm.normalize(nstr{s: a.Content})
			if err != nil {
				return fmt.Errorf("[%d] %q: %w", i, a.Content, err)
			}
			at.match = n.s
		}
		if at.match == "" {
			continue
		}
		t.addedByID[a.ID] = at
		t.vocabSize = max(t.vocabSize, a.ID+1)
		if a.Normalized && t.norm != nil {
			t.addedNorm.add(at)
		} else {
			t.addedRaw.add(at)
		}
	}
	t.addedRaw.sort()
	t.addedNorm.sort()
	t.addedByContent = map[string]int{}
	for id, a := range t.addedByID {
		t.addedByContent[a.Content] = id
	}
	return nil
}

// guessSpecials fills BOS/EOS from the template and else from the usual
// names of special tokens.
func (t *hfTokenizer) guessSpecials() {
	if t.template != nil {
		before := true
		for _, it := range t.template {
			switch {
			case it.sequence:
				before = false
			case before && len(it.ids) > 0:
				t.specials.BOS = it.ids[len(it.ids)-1]
			case !before && len(it.ids) > 0 && t.specials.EOS < 0:
				t.specials.EOS = it.ids[0]
			}
		}
	}
	find := func(names ...string) int {
		for _, n := range names {
			if id, ok := t.PieceToID(n); ok {
				return id
			}
		}
		return -1
	}
	if t.specials.BOS < 0 {
		t.specials.BOS = find("<|begin_of_text|>", "<s>", "<bos>", "<|startoftext|>", "<｜begin▁of▁sentence｜>")
	}
	if t.specials.EOS < 0 {
		t.specials.EOS = find("<|end_of_text|>", "</s>", "<eos>", "<|endoftext|>", "<｜end▁of▁sentence｜>")
	}
	if t.specials.PAD < 0 {
		t.specials.PAD = find("<pad>", "<|padding|>", "[PAD]", "<|pad|>", "<|finetune_right_pad_id|>")
	}
}
