package tokenizer

import "unicode/utf8"

// lossyUTF8 returns s with every maximal invalid subsequence replaced by one
// U+FFFD, the rule of Rust's String::from_utf8_lossy and of the WHATWG
// TextDecoder (Go's strings.ToValidUTF8 merges whole runs instead).
func lossyUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	out := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r != utf8.RuneError || n > 1 {
			out = append(out, s[i:i+n]...)
			i += n
			continue
		}
		out = append(out, "\uFFFD"...)
		i += maximalSubpart(s[i:])
	}
	return string(out)
}

// maximalSubpart is the length (>= 1) of the longest prefix of s that is a
// prefix of some valid UTF-8 sequence, given that s does not start with one.
func maximalSubpart(s string) int {
	b := s[0]
	var need int
	lo, hi := byte(0x80), byte(0xBF)
	switch {
	case b >= 0xC2 && b <= 0xDF:
		need = 1
	case b == 0xE0:
		need, lo = 2, 0xA0
	case b >= 0xE1 && b <= 0xEC, b == 0xEE, b == 0xEF:
		need = 2
	case b == 0xED:
		need, hi = 2, 0x9F
	case b == 0xF0:
		need, lo = 3, 0x90
	case b >= 0xF1 && b <= 0xF3:
		need = 3
	case b == 0xF4:
		need, hi = 3, 0x8F
	default:
		return 1
	}
	n := 1
	for k := 0; k < need && n < len(s); k++ {
		c := s[n]
		if c < lo || c > hi {
			break
		}
		lo, hi = 0x80, 0xBF
		n++
	}
	return n
}

// incompleteTail returns the length of a trailing sequence of s that is an
// unfinished but still valid start of a UTF-8 character (0 if none). A
// stream decoder holds such bytes back until the next token completes them.
func incompleteTail(s string) int {
	for k := 1; k <= 3 && k <= len(s); k++ {
		start := len(s) - k
		b := s[start]
		if b < 0x80 {
			return 0
		}
		if b >= 0xC0 {
			if maximalSubpart(s[start:]) == k && !utf8.FullRuneInString(s[start:]) {
				return k
			}
			return 0
		}
	}
	return 0
}
