package tokenizer

import (
	"strconv"
	"strings"

	"github.com/dlclark/regexp2/v2"
)

// decoder turns the vocabulary strings of ids into text, as the decoders of
// the Rust tokenizers do (decode_chain). The strings may hold raw bytes
// that are not valid UTF-8; Decode repairs them once, at the end.
type decoder interface {
	decode(tokens []string) ([]string, error)
}

type decSeq []decoder

func (q decSeq) decode(t []string) ([]string, error) {
	var err error
	for _, d := range q {
		if t, err = d.decode(t); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// byteLevelDec maps byte-level runes back to bytes and joins everything. A
// token with a rune outside the alphabet (an added token such as
// "<｜begin▁of▁sentence｜>") is taken as its own UTF-8 bytes.
type byteLevelDec struct{}

func (byteLevelDec) decode(t []string) ([]string, error) {
	var b strings.Builder
	for _, s := range t {
		if raw, ok := fromByteLevel(s); ok {
			b.WriteString(raw)
		} else {
			b.WriteString(s)
		}
	}
	return []string{b.String()}, nil
}

// replaceDec replaces a literal or regex in every token.
type replaceDec struct {
	literal string
	re      *regexp2.Regexp
	content string
}

func (r replaceDec) decode(t []string) ([]string, error) {
	out := make([]string, len(t))
	for i, s := range t {
		v, err := replaceString(r.literal, r.re, r.content, s)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// fuseDec joins all tokens into one.
type fuseDec struct{}

func (fuseDec) decode(t []string) ([]string, error) { return []string{strings.Join(t, "")}, nil }

// stripDec removes up to start leading and stop trailing copies of content
// from every token.
type stripDec struct {
	content     string
	start, stop int
}

func (d stripDec) decode(t []string) ([]string, error) {
	out := make([]string, len(t))
	for i, s := range t {
		for k := 0; k < d.start && d.content != "" && strings.HasPrefix(s, d.content); k++ {
			s = s[len(d.content):]
		}
		for k := 0; k < d.stop && d.content != "" && strings.HasSuffix(s, d.content); k++ {
			s = s[:len(s)-len(d.content)]
		}
		out[i] = s
	}
	return out, nil
}

// byteFallbackDec turns <0xXX> tokens into the bytes they stand for.
// (Rust replaces an invalid run by one U+FFFD per byte; here the bytes are
// kept and repaired at the end, one U+FFFD per maximal invalid subpart.)
type byteFallbackDec struct{}

func (byteFallbackDec) decode(t []string) ([]string, error) {
	out := make([]string, 0, len(t))
	var pending []byte
	for _, s := range t {
		if len(s) == 6 && strings.HasPrefix(s, "<0x") && s[5] == '>' {
			if v, err := strconv.ParseUint(s[3:5], 16, 8); err == nil {
				pending = append(pending, byte(v))
				continue
			}
		}
		if len(pending) > 0 {
			out = append(out, string(pending))
			pending = pending[:0]
		}
		out = append(out, s)
	}
	if len(pending) > 0 {
		out = append(out, string(pending))
	}
	return out, nil
}
