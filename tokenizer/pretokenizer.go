package tokenizer

import (
	"unicode"
	"unicode/utf8"

	"github.com/dlclark/regexp2/v2"
)

// preTokenizer splits normalized text into the pieces the model encodes
// separately.
type preTokenizer interface {
	split(pieces []nstr) ([]nstr, error)
}

type preSeq []preTokenizer

func (q preSeq) split(p []nstr) ([]nstr, error) {
	var err error
	for _, x := range q {
		if p, err = x.split(p); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// behavior is what Split does with the matches of its pattern.
type behavior int

const (
	removed behavior = iota
	isolated
	mergedWithPrevious
	mergedWithNext
	contiguous
)

var behaviors = map[string]behavior{
	"Removed":            removed,
	"Isolated":           isolated,
	"MergedWithPrevious": mergedWithPrevious,
	"MergedWithNext":     mergedWithNext,
	"Contiguous":         contiguous,
}

type seg struct {
	start, end int
	match      bool
}

// applyBehavior turns the match/non-match segments of a piece into the
// ranges to keep, porting SplitDelimiterBehavior of the Rust tokenizers.
func applyBehavior(segs []seg, b behavior) []seg {
	var acc []seg
	switch b {
	case isolated:
		return segs
	case removed:
		for _, s := range segs {
			if !s.match {
				acc = append(acc, s)
			}
		}
	case mergedWithPrevious:
		prev := false
		for _, s := range segs {
			if s.match && !prev && len(acc) > 0 {
				acc[len(acc)-1].end = s.end
			} else {
				acc = append(acc, seg{s.start, s.end, false})
			}
			prev = s.match
		}
	case mergedWithNext:
		prev := false
		for i := len(segs) - 1; i >= 0; i-- {
			s := segs[i]
			if s.match && !prev && len(acc) > 0 {
				acc[len(acc)-1].start = s.start
			} else {
				acc = append(acc, seg{s.start, s.end, false})
			}
			prev = s.match
		}
		for i, j := 0, len(acc)-1; i < j; i, j = i+1, j-1 {
			acc[i], acc[j] = acc[j], acc[i]
		}
	case contiguous:
		prev := false
		for _, s := range segs {
			if s.match == prev && len(acc) > 0 {
				acc[len(acc)-1].end = s.end
			} else {
				acc = append(acc, seg{s.start, s.end, false})
			}
			prev = s.match
		}
	}
	return acc
}

// cut splits every piece at the segments produced by find and b.
func cut(pieces []nstr, b behavior, find func(s string) ([]seg, error)) ([]nstr, error) {
	out := make([]nstr, 0, len(pieces)*2)
	for i := range pieces {
		p := &pieces[i]
		segs, err := find(p.s)
		if err != nil {
			return nil, err
		}
		for _, s := range applyBehavior(segs, b) {
			if s.end > s.start {
				out = append(out, p.sub(s.start, s.end))
			}
		}
	}
	return out, nil
}

// matchSegs turns match ranges into covering match/non-match segments.
func matchSegs(s string, matches [][2]int, invert bool) []seg {
	segs := make([]seg, 0, 2*len(matches)+1)
	prev := 0
	for _, m := range matches {
		if m[0] > prev {
			segs = append(segs, seg{prev, m[0], invert})
		}
		segs = append(segs, seg{m[0], m[1], !invert})
		prev = m[1]
	}
	if prev < len(s) {
		segs = append(segs, seg{prev, len(s), invert})
	}
	return segs
}

// splitPre is the Split pre-tokenizer: a literal or a regex, a behavior and
// an invert flag.
type splitPre struct {
	literal string
	re      *regexp2.Regexp
	b       behavior
	invert  bool
}

func (sp *splitPre) split(p []nstr) ([]nstr, error) {
	return cut(p, sp.b, func(s string) ([]seg, error) {
		m, err := findAll(sp.literal, sp.re, s)
		if err != nil {
			return nil, err
		}
		return matchSegs(s, m, sp.invert), nil
	})
}

// digitsPre separates numeric characters (Rust's char::is_numeric: Unicode
// N) from the rest, one piece per digit when individual is set.
type digitsPre struct{ individual bool }

func (d digitsPre) split(p []nstr) ([]nstr, error) {
	b := contiguous
	if d.individual {
		b = isolated
	}
	return cut(p, b, func(s string) ([]seg, error) {
		var segs []seg
		for i, r := range s {
			n := utf8.RuneLen(r)
			if r == utf8.RuneError {
				n = 1
			}
			segs = append(segs, seg{i, i + n, unicode.IsNumber(r)})
		}
		return segs, nil
	})
}

// gpt2Pattern is the regex of the ByteLevel pre-tokenizer.
const gpt2Pattern = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`

// byteLevelPre is the ByteLevel pre-tokenizer: optionally a space in front
// of each piece, optionally the GPT-2 split. The byte-to-rune mapping
// itself is folded into the vocabulary at load (see bpe.go), so pieces stay
// raw bytes here.
type byteLevelPre struct {
	addPrefixSpace bool
	re             *regexp2.Regexp // nil when use_regex is false
}

func (bl *byteLevelPre) split(p []nstr) ([]nstr, error) {
	if bl.addPrefixSpace {
		for i := range p {
			if len(p[i].s) > 0 && p[i].s[0] != ' ' {
				p[i] = p[i].prepend(" ")
			}
		}
	}
	if bl.re == nil {
		return p, nil
	}
	return cut(p, isolated, func(s string) ([]seg, error) {
		m, err := findAll("", bl.re, s)
		if err != nil {
			return nil, err
		}
		return matchSegs(s, m, false), nil
	})
}
