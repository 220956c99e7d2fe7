package sample

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// stopRef is the plain oracle: the stream up to the earliest stop string,
// and whether there was one.
func stopRef(stream string, stops []string) (string, bool) {
	at := -1
	for _, s := range stops {
		if s == "" {
			continue
		}
		if i := strings.Index(stream, s); i >= 0 && (at < 0 || i < at) {
			at = i
		}
	}
	if at < 0 {
		return stream, false
	}
	return stream[:at], true
}

// stopRefPieces is the streaming oracle: the text stops after the first
// piece that completes a stop string, at the earliest stop string in the
// text so far. It differs from stopRef only when a longer stop string that
// starts earlier would complete in a later piece (stops "abc" and "b" on
// "ab" then "c"): a generator cannot wait for it, so it stops at "b".
func stopRefPieces(pieces []string, stops []string) (string, bool) {
	acc := ""
	for _, p := range pieces {
		acc += p
		if out, ok := stopRef(acc, stops); ok {
			return out, true
		}
	}
	return acc, false
}

var stopCases = []struct {
	name   string
	stream string
	stops  []string
}{
	{"no stops", "hello world", nil},
	{"empty stop ignored", "hello", []string{""}},
	{"empty stream", "", []string{"x"}},
	{"absent", "hello world", []string{"xyz"}},
	{"simple", "hello world", []string{"wor"}},
	{"at start", "stop here", []string{"stop"}},
	{"at end", "the end", []string{"end"}},
	{"whole", "abc", []string{"abc"}},
	{"false start then match", "aab aaab", []string{"aaab"}},
	{"overlapping prefix", "ababac", []string{"abac"}},
	{"prefix held then dropped", "<|im_x <|im_end|> tail", []string{"<|im_end|>"}},
	{"newline pair", "line one\nline two\n\nmore", []string{"\n\n"}},
	{"earliest of several", "one two three", []string{"three", "two", "one two three four"}},
	{"one is prefix of another", "xx ab abc", []string{"abc", "ab"}},
	{"longer first in list", "xx abc", []string{"abc", "ab"}},
	{"multi-byte stop", "naïve café ☕ au lait", []string{"☕"}},
	{"multi-byte text, ascii stop", "日本語のテキスト END 後", []string{"END"}},
	{"emoji stop", "a 😀 b 😃 c", []string{"😃"}},
	{"shared lead bytes", "é è ê", []string{"ê"}}, // all begin with 0xC3
	{"stop never completed", "partial <|im_en", []string{"<|im_end|>"}},
	{"multi-byte stream, no stops", "héllo wörld 😀 日本", nil},
	{"invalid bytes", "a\xffb\xc3(c\xe2\x82", []string{"zz"}},
	{"trailing incomplete rune", "abc\xe2\x82", nil},
}

// splits returns every way to cut s into pieces at the given cut points.
func pieces(s string, cuts []int) []string {
	var out []string
	prev := 0
	for _, c := range cuts {
		out = append(out, s[prev:c])
		prev = c
	}
	return append(out, s[prev:])
}

// runStop pushes the pieces and returns all that was emitted and whether it
// stopped, checking the invariants on the way.
func runStop(t *testing.T, stops []string, ps []string) (string, bool) {
	t.Helper()
	m := NewStopMatcher(stops)
	var out strings.Builder
	stopped := false
	// A stop string that is not valid UTF-8 may match inside a rune; the
	// rune-boundary promise holds for valid stops in valid text.
	valid := utf8.ValidString(strings.Join(ps, ""))
	for _, s := range stops {
		valid = valid && utf8.ValidString(s)
	}
	for _, p := range ps {
		emit, st := m.Push(p)
		if stopped && (emit != "" || !st) {
			t.Fatalf("pieces %q: Push after a stop gave (%q, %v)", ps, emit, st)
		}
		// Whole runes only.
		if valid && !utf8.ValidString(out.String()+emit) {
			t.Fatalf("pieces %q: emitted %q splits a rune", ps, out.String()+emit)
		}
		out.WriteString(emit)
		stopped = st
		if st != m.Stopped() {
			t.Fatalf("Stopped() = %v, Push said %v", m.Stopped(), st)
		}
	}
	f := m.Flush()
	if stopped && f != "" {
		t.Fatalf("pieces %q: Flush after a stop gave %q", ps, f)
	}
	out.WriteString(f)
	return out.String(), stopped
}

// TestStopMatcherEverySplit feeds each stream cut at every byte position,
// at every pair of positions and one byte at a time.
func TestStopMatcherEverySplit(t *testing.T) {
	for _, c := range stopCases {
		t.Run(c.name, func(t *testing.T) {
			want, wantStop := stopRef(c.stream, c.stops)
			check := func(ps []string) {
				got, stopped := runStop(t, c.stops, ps)
				if got != want || stopped != wantStop {
					t.Fatalf("pieces %q: got (%q, %v), want (%q, %v)", ps, got, stopped, want, wantStop)
				}
			}
			n := len(c.stream)
			check([]string{c.stream})
			var bytes []int
			for i := 0; i <= n; i++ {
				bytes = append(bytes, i)
				check(pieces(c.stream, []int{i}))
				for j := i; j <= n; j++ {
					check(pieces(c.stream, []int{i, j}))
				}
			}
			check(pieces(c.stream, bytes))
		})
	}
}

func TestStopMatcherHoldsBack(t *testing.T) {
	m := NewStopMatcher([]string{"<|end|>", "\n\n"})
	steps := []struct {
		push, emit string
		stopped    bool
	}{
		{"Hello", "Hello", false},
		{" <|", " ", false},
		{"en", "", false},
		{"x", "<|enx", false},
		{"\n", "", false},
		{"a", "\na", false},
		{"\xe2\x98", "", false},   // first two bytes of ☕
		{"\x95 <", "☕ ", false},   // completes it; "<" held
		{"|end|> more", "", true}, // stop: text after it dropped
		{"later", "", true},
	}
	for i, s := range steps {
		emit, st := m.Push(s.push)
		if emit != s.emit || st != s.stopped {
			t.Fatalf("step %d Push(%q) = (%q, %v), want (%q, %v)", i, s.push, emit, st, s.emit, s.stopped)
		}
	}
	if m.Matched() != "<|end|>" {
		t.Fatalf("Matched() = %q", m.Matched())
	}
	if f := m.Flush(); f != "" {
		t.Fatalf("Flush after stop = %q", f)
	}
	m.Reset()
	if emit, st := m.Push("ok <|e"); emit != "ok " || st {
		t.Fatalf("after Reset: (%q, %v)", emit, st)
	}
	if f := m.Flush(); f != "<|e" {
		t.Fatalf("Flush = %q, want the held prefix", f)
	}
}

func TestStopMatcherMatched(t *testing.T) {
	cases := []struct {
		stream string
		stops  []string
		want   string
	}{
		{"a ab abc", []string{"abc", "ab"}, "ab"},    // earliest start wins
		{"xx abc", []string{"abc", "ab"}, "abc"},     // same start: first listed
		{"xx abc", []string{"ab", "abc"}, "ab"},      // same start: first listed
		{"nothing here", []string{"zzz"}, ""},        // none
		{"日本語", []string{"本"}, "本"},                  // multi-byte
		{"tail \n\n", []string{"\n\n", "x"}, "\n\n"}, // at the very end
	}
	for _, c := range cases {
		m := NewStopMatcher(c.stops)
		m.Push(c.stream)
		if got := m.Matched(); got != c.want {
			t.Errorf("%q with %q: Matched() = %q, want %q", c.stream, c.stops, got, c.want)
		}
	}
}

func FuzzStopMatcher(f *testing.F) {
	for _, c := range stopCases {
		f.Add(c.stream, strings.Join(c.stops, "\x00"), uint64(0x0123456789))
	}
	f.Fuzz(func(t *testing.T, stream, stopList string, cuts uint64) {
		if len(stream) > 4096 || len(stopList) > 256 {
			return
		}
		stops := strings.Split(stopList, "\x00")
		// Cut the stream where the bits of cuts say (cyclically).
		var ps []string
		prev := 0
		for i := 1; i < len(stream); i++ {
			if cuts>>(i%64)&1 == 1 {
				ps = append(ps, stream[prev:i])
				prev = i
			}
		}
		ps = append(ps, stream[prev:])
		want, wantStop := stopRefPieces(ps, stops)
		got, stopped := runStop(t, stops, ps)
		if got != want || stopped != wantStop {
			t.Fatalf("pieces %q stops %q: got (%q, %v), want (%q, %v)", ps, stops, got, stopped, want, wantStop)
		}
	})
}

func BenchmarkStopMatcher(b *testing.B) {
	text := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 20)
	var toks []string
	for i := 0; i < len(text); i += 4 {
		toks = append(toks, text[i:min(i+4, len(text))])
	}
	m := NewStopMatcher([]string{"<|im_end|>", "\n\nUser:", "</s>"})
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		m.Reset()
		for _, tk := range toks {
			m.Push(tk)
		}
		m.Flush()
	}
}
