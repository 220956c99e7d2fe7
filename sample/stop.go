package sample

import (
	"strings"
	"unicode/utf8"
)

// StopMatcher finds the first stop string in text that arrives in pieces
// (one decoded token at a time) and says what is safe to print: text that
// may still turn out to be the start of a stop string is held back until
// the next piece settles it.
//
// The stream stops after the first piece that completes a stop string, at
// the earliest stop string in the text so far, as a generator must (it
// cannot wait to see whether a longer stop string that began earlier will
// complete later: with stops "abc" and "b", "ab" then "c" stops at "b").
//
// Matching is on bytes. Stop strings that are valid UTF-8 can only match at
// rune boundaries of valid UTF-8 text, and the matcher never emits part of
// a rune: an incomplete UTF-8 sequence at the end of the text is held back
// too (bytes that cannot become a valid rune are passed on as they are).
type StopMatcher struct {
	stops   []string
	maxLen  int
	held    string
	matched string
	stopped bool
}

// NewStopMatcher returns a matcher for stops. Empty strings are ignored; with
// no stops the matcher only holds back incomplete runes.
func NewStopMatcher(stops []string) *StopMatcher {
	m := &StopMatcher{}
	for _, s := range stops {
		if s == "" {
			continue
		}
		m.stops = append(m.stops, s)
		m.maxLen = max(m.maxLen, len(s))
	}
	return m
}

// Push adds text to the stream. It returns the text now safe to print and
// whether a stop string has been reached; at a stop, emit ends just before
// it and the rest (the stop string and anything after) is dropped. Once
// stopped, Push returns ("", true).
func (m *StopMatcher) Push(text string) (emit string, stopped bool) {
	if m.stopped {
		return "", true
	}
	buf := m.held + text
	if at, stop := m.find(buf); at >= 0 {
		m.stopped, m.matched, m.held = true, stop, ""
		return buf[:at], true
	}
	keep := max(m.partialStop(buf), partialRune(buf))
	m.held = buf[len(buf)-keep:]
	return buf[:len(buf)-keep], false
}

// Flush ends the stream and returns what was held back (nothing after a
// stop). The matcher is then empty and may take a new stream only after
// Reset.
func (m *StopMatcher) Flush() string {
	h := m.held
	m.held = ""
	return h
}

// Stopped reports whether a stop string has been reached.
func (m *StopMatcher) Stopped() bool { return m.stopped }

// Matched returns the stop string that ended the stream, or "" if none has.
// When two stop strings begin at the same place, it is the first of them in
// the list given to NewStopMatcher.
func (m *StopMatcher) Matched() string { return m.matched }

// Reset readies the matcher for a new stream with the same stop strings.
func (m *StopMatcher) Reset() {
	m.held, m.matched, m.stopped = "", "", false
}

// find returns where the earliest stop string in buf begins and which one
// it is, or -1.
func (m *StopMatcher) find(buf string) (int, string) {
	at, stop := -1, ""
	for _, s := range m.stops {
		if i := strings.Index(buf, s); i >= 0 && (at < 0 || i < at) {
			at, stop = i, s
		}
	}
	return at, stop
}

// partialStop returns the length of the longest suffix of buf that is a
// proper prefix of a stop string (it could still grow into one).
func (m *StopMatcher) partialStop(buf string) int {
	for k := min(len(buf), m.maxLen-1); k > 0; k-- {
		suf := buf[len(buf)-k:]
		for _, s := range m.stops {
			if len(s) > k && strings.HasPrefix(s, suf) {
				return k
			}
		}
	}
	return 0
}

// partialRune returns the length of an incomplete but possibly valid UTF-8
// sequence at the end of buf (0 to 3 bytes).
func partialRune(buf string) int {
	// A rune is at most 4 bytes; look back at most 3 for its first byte.
	for k := 1; k <= min(3, len(buf)); k++ {
		b := buf[len(buf)-k]
		if utf8.RuneStart(b) {
			if b >= utf8.RuneSelf && !utf8.FullRuneInString(buf[len(buf)-k:]) {
				return k
			}
			return 0
		}
	}
	return 0
}
