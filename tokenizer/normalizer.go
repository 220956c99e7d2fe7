package tokenizer

import (
	"fmt"
	"strings"

	"github.com/dlclark/regexp2/v2"
	"golang.org/x/text/unicode/norm"
)

// normalizer rewrites text before pre-tokenization, keeping alignments.
type normalizer interface {
	normalize(n nstr) (nstr, error)
}

type normSeq []normalizer

func (q normSeq) normalize(n nstr) (nstr, error) {
	var err error
	for _, x := range q {
		if n, err = x.normalize(n); err != nil {
			return n, err
		}
	}
	return n, nil
}

// unicodeNorm applies NFC or NFKC, segment by segment so that every output
// segment maps back to the input segment it came from.
type unicodeNorm struct{ form norm.Form }

func (u unicodeNorm) normalize(n nstr) (nstr, error) {
	if u.form.IsNormalString(n.s) {
		return n, nil
	}
	var it norm.Iter
	it.InitString(u.form, n.s)
	var b builder
	for !it.Done() {
		p0 := it.Pos()
		seg := it.Next()
		p1 := it.Pos()
		if string(seg) == n.s[p0:p1] {
			b.keep(&n, p0, p1)
		} else {
			b.put(&n, p0, p1, string(seg))
		}
	}
	return b.done(n.base), nil
}

// prependNorm puts a fixed string before non-empty text.
type prependNorm struct{ prefix string }

func (p prependNorm) normalize(n nstr) (nstr, error) {
	return n.prepend(p.prefix), nil
}

// replaceNorm replaces every match of a literal or a regex by content.
type replaceNorm struct {
	literal string
	re      *regexp2.Regexp
	content string
}

func (r replaceNorm) normalize(n nstr) (nstr, error) {
	matches, err := findAll(r.literal, r.re, n.s)
	if err != nil {
		return n, err
	}
	if len(matches) == 0 {
		return n, nil
	}
	var b builder
	prev := 0
	for _, m := range matches {
		b.keep(&n, prev, m[0])
		b.put(&n, m[0], m[1], r.content)
		prev = m[1]
	}
	b.keep(&n, prev, len(n.s))
	return b.done(n.base), nil
}

// replaceString applies a replace rule to a plain string (decoders and the
// normalization of added tokens).
func replaceString(literal string, re *regexp2.Regexp, content, s string) (string, error) {
	matches, err := findAll(literal, re, s)
	if err != nil || len(matches) == 0 {
		return s, err
	}
	var sb strings.Builder
	prev := 0
	for _, m := range matches {
		sb.WriteString(s[prev:m[0]])
		sb.WriteString(content)
		prev = m[1]
	}
	sb.WriteString(s[prev:])
	return sb.String(), nil
}

// findAll returns the byte ranges of the non-overlapping matches of a
// literal (when re is nil) or of re in s.
func findAll(literal string, re *regexp2.Regexp, s string) ([][2]int, error) {
	var out [][2]int
	if re == nil {
		if literal == "" {
			return nil, nil
		}
		for i := 0; ; {
			k := strings.Index(s[i:], literal)
			if k < 0 {
				return out, nil
			}
			out = append(out, [2]int{i + k, i + k + len(literal)})
			i += k + len(literal)
		}
	}
	idx, err := re.FindAllStringIndex(s, -1)
	if err != nil {
		return nil, fmt.Errorf("regex %q: %w", re.String(), err)
	}
	for _, m := range idx {
		out = append(out, [2]int{m[0], m[1]})
	}
	return out, nil
}
