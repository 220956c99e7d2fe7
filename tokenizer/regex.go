package tokenizer

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/dlclark/regexp2/v2"
)

// maxPatternLen bounds the regexes read from a file.
const maxPatternLen = 8192

// whiteSpace is Unicode's White_Space property, which is what Oniguruma
// (used by the Rust tokenizers) and Tokenizers.js mean by \s. .NET's \s
// (regexp2) lacks U+0085 and adds nothing else, JavaScript's adds U+FEFF.
const whiteSpace = `\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000`

// compileOniguruma compiles a regex written for Oniguruma (the dialect of
// tokenizer.json files) with regexp2, rewriting the constructs whose meaning
// differs: \s and \S become explicit White_Space classes, \x{H} becomes a
// literal code point, and the ASCII letters of an inline case-insensitive
// group (?i:...) become [xX] classes (Tokenizers.js folds ASCII only there,
// and .NET's case folding is wider).
func compileOniguruma(pat string) (*regexp2.Regexp, error) {
	if len(pat) > maxPatternLen {
		return nil, fmt.Errorf("regex of %d bytes exceeds the limit of %d", len(pat), maxPatternLen)
	}
	tr, err := translateOniguruma(pat)
	if err != nil {
		return nil, fmt.Errorf("regex %q: %w", pat, err)
	}
	re, err := regexp2.Compile(tr)
	if err != nil {
		return nil, fmt.Errorf("regex %q: %w", pat, err)
	}
	return re, nil
}

func translateOniguruma(p string) (string, error) {
	var out strings.Builder
	inClass := false
	// ignoreCase holds, per open group, whether the group folds case.
	var groups []bool
	fold := func() bool { return len(groups) > 0 && groups[len(groups)-1] }
	for i := 0; i < len(p); {
		r, n := utf8.DecodeRuneInString(p[i:])
		switch {
		case r == '\\':
			if i+1 >= len(p) {
				return "", fmt.Errorf("trailing backslash")
			}
			c := p[i+1]
			switch c {
			case 's':
				if inClass {
					out.WriteString(whiteSpace)
				} else {
					out.WriteString("[" + whiteSpace + "]")
				}
				i += 2
			case 'S':
				if inClass {
					return "", fmt.Errorf("\\S inside a character class: %w", ErrUnsupported)
				}
				out.WriteString("[^" + whiteSpace + "]")
				i += 2
			case 'x':
				if i+2 < len(p) && p[i+2] == '{' {
					end := strings.IndexByte(p[i:], '}')
					if end < 0 {
						return "", fmt.Errorf("unterminated \\x{")
					}
					v, err := strconv.ParseUint(p[i+3:i+end], 16, 32)
					if err != nil || v > utf8.MaxRune {
						return "", fmt.Errorf("bad code point \\x{%s}", p[i+3:i+end])
					}
					out.WriteString(regexp2.Escape(string(rune(v))))
					i += end + 1
				} else {
					out.WriteString(p[i : i+2])
					i += 2
				}
			case 'p', 'P':
				end := strings.IndexByte(p[i:], '}')
				if end < 0 || i+2 >= len(p) || p[i+2] != '{' {
					return "", fmt.Errorf("bad \\%c escape", c)
				}
				out.WriteString(p[i : i+end+1])
				i += end + 1
			default:
				_, m := utf8.DecodeRuneInString(p[i+1:])
				out.WriteString(p[i : i+1+m])
				i += 1 + m
			}
		case inClass:
			if r == ']' {
				inClass = false
				out.WriteByte(']')
				i++
				continue
			}
			if r == '[' {
				return "", fmt.Errorf("nested character class: %w", ErrUnsupported)
			}
			if fold() && r < utf8.RuneSelf && isASCIILetter(byte(r)) {
				// a-z style range: add the other case's range too.
				if i+2 < len(p) && p[i+1] == '-' && isASCIILetter(p[i+2]) {
					out.WriteString(p[i : i+3])
					out.WriteString(string(otherCase(p[i])) + "-" + string(otherCase(p[i+2])))
					i += 3
					continue
				}
				out.WriteByte(byte(r))
				out.WriteByte(otherCase(byte(r)))
				i++
				continue
			}
			out.WriteString(p[i : i+n])
			i += n
		case r == '[':
			inClass = true
			out.WriteByte('[')
			i++
			if i < len(p) && p[i] == '^' {
				out.WriteByte('^')
				i++
			}
			if i < len(p) && p[i] == ']' { // a leading ] is a literal
				out.WriteString(`\]`)
				i++
			}
		case r == '(':
			switch {
			case strings.HasPrefix(p[i:], "(?i:"):
				groups = append(groups, true)
				out.WriteString("(?:")
				i += 4
			case strings.HasPrefix(p[i:], "(?-i:"):
				groups = append(groups, false)
				out.WriteString("(?:")
				i += 5
			case strings.HasPrefix(p[i:], "(?") && i+2 < len(p) && strings.IndexByte(":=!<>", p[i+2]) < 0:
				return "", fmt.Errorf("inline option group at %d: %w", i, ErrUnsupported)
			default:
				groups = append(groups, fold())
				out.WriteByte('(')
				i++
			}
		case r == ')':
			if len(groups) == 0 {
				return "", fmt.Errorf("unbalanced )")
			}
			groups = groups[:len(groups)-1]
			out.WriteByte(')')
			i++
		case fold() && r < utf8.RuneSelf && isASCIILetter(byte(r)):
			out.WriteString("[" + string(rune(r)) + string(otherCase(byte(r))) + "]")
			i++
		default:
			out.WriteString(p[i : i+n])
			i += n
		}
	}
	if inClass {
		return "", fmt.Errorf("unterminated character class")
	}
	if len(groups) != 0 {
		return "", fmt.Errorf("unbalanced (")
	}
	return out.String(), nil
}

func isASCIILetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

func otherCase(c byte) byte { return c ^ 0x20 }
