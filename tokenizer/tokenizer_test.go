package tokenizer

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func loadTiny(t testing.TB) Tokenizer {
	t.Helper()
	data, err := os.ReadFile("testdata/tiny.json")
	if err != nil {
		t.Fatal(err)
	}
	tk, err := FromJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// TestTinyEncode checks the hand-written byte-level BPE tokenizer. The
// expected ids are Tokenizers.js's, except for single_word, which
// Tokenizers.js ignores and the Rust tokenizers (and this package) honour.
func TestTinyEncode(t *testing.T) {
	tk := loadTiny(t)
	tests := []struct {
		in   string
		ids  []int
		text string
	}{
		{"hello world", []int{274, 257, 259, 111, 267}, "<|endoftext|>hello world"},
		{"the thing", []int{274, 116, 257, 256, 104, 269}, "<|endoftext|>the thing"},
		{"Hello", []int{274, 72, 260, 111}, "<|endoftext|>Hello"},
		{"café", []int{274, 99, 97, 102, 273}, "<|endoftext|>café"},
		{"cafe\u0301", []int{274, 99, 97, 102, 273}, "<|endoftext|>café"},     // NFC
		{"a <mask> b", []int{274, 97, 275, 32, 98}, "<|endoftext|>a<mask> b"}, // lstrip
		{"a   <mask>b", []int{274, 97, 275, 98}, "<|endoftext|>a<mask>b"},
		{"wow", []int{274, 276}, "<|endoftext|>wow"},
		{"wowza wow!", []int{274, 119, 111, 119, 122, 97, 32, 276, 33}, "<|endoftext|>wowza wow!"}, // single_word
		{"x<|endoftext|>y", []int{274, 120, 274, 121}, "<|endoftext|>x<|endoftext|>y"},
		{"12 34", []int{274, 49, 50, 32, 51, 52}, "<|endoftext|>12 34"},
		{"it's", []int{274, 105, 116, 39, 115}, "<|endoftext|>it's"},
		{"", []int{274}, "<|endoftext|>"},
	}
	for _, tc := range tests {
		ids, err := tk.Encode(tc.in)
		if err != nil {
			t.Fatalf("%q: %v", tc.in, err)
		}
		if !slices.Equal(ids, tc.ids) {
			t.Errorf("Encode(%q) = %v, want %v", tc.in, ids, tc.ids)
		}
		got, err := tk.Decode(ids)
		if err != nil || got != tc.text {
			t.Errorf("Decode(%v) = %q, %v; want %q", ids, got, err, tc.text)
		}
	}
	sp := tk.Specials()
	if sp.BOS != 274 || sp.EOS != 274 || sp.PAD != -1 {
		t.Errorf("Specials = %+v, want BOS=EOS=274, PAD=-1", sp)
	}
	if tk.VocabSize() != 277 {
		t.Errorf("VocabSize = %d, want 277", tk.VocabSize())
	}
	if p, ok := tk.IDToPiece(258); !ok || p != "Ġthe" {
		t.Errorf("IDToPiece(258) = %q, %v", p, ok)
	}
	if id, ok := tk.PieceToID("<mask>"); !ok || id != 275 {
		t.Errorf("PieceToID(<mask>) = %d, %v", id, ok)
	}
	if _, err := tk.Decode([]int{277}); err == nil {
		t.Error("Decode of an id outside the vocabulary: no error")
	}
}

func TestTinyOffsets(t *testing.T) {
	tk := loadTiny(t)
	for _, s := range []string{"hello world", "the  thing\r\n\tx", "café 😀 12", "a <mask> b"} {
		toks, err := tk.EncodeWithOffsets(s)
		if err != nil {
			t.Fatal(err)
		}
		if toks[0].ID != 274 || toks[0].Start != 0 || toks[0].End != 0 {
			t.Errorf("%q: first token %+v, want the template's BOS at 0:0", s, toks[0])
		}
		prev := 0
		for _, tk := range toks[1:] {
			if tk.Start < prev || tk.End < tk.Start || tk.End > len(s) {
				t.Errorf("%q: token %+v out of order (prev end %d)", s, tk, prev)
			}
			prev = tk.End
		}
		if prev != len(s) {
			t.Errorf("%q: tokens end at %d, want %d", s, prev, len(s))
		}
	}
	toks, _ := tk.EncodeWithOffsets("the thing")
	want := []Token{{274, "<|endoftext|>", 0, 0}, {116, "t", 0, 1}, {257, "he", 1, 3}, {256, "Ġt", 3, 5}, {104, "h", 5, 6}, {269, "ing", 6, 9}}
	if !slices.Equal(toks, want) {
		t.Errorf("EncodeWithOffsets(the thing) = %v, want %v", toks, want)
	}
}

// TestRefused checks that components this package does not implement are
// refused by name.
func TestRefused(t *testing.T) {
	base, err := os.ReadFile("testdata/tiny.json")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ old, new, name string }{
		{`"normalizer": {`, `"x": 1, "normalizer": {`, "x"},
		{`{"type": "NFC"}`, `{"type": "Lowercase"}`, "Lowercase"},
		{`"type": "BPE"`, `"type": "WordPiece"`, "WordPiece"},
		{`{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}]}`, `{"type": "Metaspace"}]}`, "Metaspace"},
		{`"decoder": {"type": "ByteLevel"`, `"decoder": {"type": "WordPiece"`, "WordPiece"},
		{`"type": "TemplateProcessing"`, `"type": "BertProcessing"`, "BertProcessing"},
		{`"behavior": "Isolated"`, `"behavior": "Sideways"`, "Sideways"},
		{`"truncation": null`, `"truncation": {"max_length": 5}`, "truncation"},
		{`"end_of_word_suffix": null`, `"end_of_word_suffix": "</w>"`, "end_of_word_suffix"},
	}
	for _, tc := range tests {
		src := string(base)
		if !strings.Contains(src, tc.old) {
			t.Fatalf("test setup: %q not in tiny.json", tc.old)
		}
		_, err := FromJSON([]byte(strings.Replace(src, tc.old, tc.new, 1)))
		if err == nil || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("%s: err = %v, want an error naming it", tc.name, err)
		}
		if err != nil && tc.name != "Sideways" && !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: err = %v, want ErrUnsupported", tc.name, err)
		}
	}
	for _, bad := range []string{"", "{", "[]", `{"model": null}`, `{"model": {"type": "BPE", "vocab": {"a": -1}, "merges": []}}`,
		`{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}}`, `{"model": {"type": "BPE", "vocab": {"a": 0, "b": 0}, "merges": []}}`} {
		if _, err := FromJSON([]byte(bad)); err == nil {
			t.Errorf("FromJSON(%q): no error", bad)
		}
	}
}

// TestStreamDecoder feeds ids one at a time: the pieces must join to
// Decode's text and never hold a U+FFFD that Decode does not.
func TestStreamDecoder(t *testing.T) {
	tk := loadTiny(t)
	bt, _ := Bytes(260)
	for _, tok := range []Tokenizer{tk, bt} {
		for _, s := range []string{"hello world", "😀👨‍👩‍👧‍👦 café 日本語", "a\r\nb  c", "é"} {
			ids, _ := tok.Encode(s)
			want, _ := tok.Decode(ids)
			d := tok.NewStreamDecoder()
			var got strings.Builder
			for _, id := range ids {
				p := d.Next(id)
				if strings.ContainsRune(p, utf8.RuneError) || !utf8.ValidString(p) {
					t.Errorf("%q: Next(%d) = %q", s, id, p)
				}
				got.WriteString(p)
			}
			got.WriteString(d.Flush())
			if got.String() != want {
				t.Errorf("%q: streamed %q, want %q", s, got.String(), want)
			}
		}
	}
	// A truncated character is held, then flushed as one U+FFFD.
	d := bt.NewStreamDecoder()
	if p := d.Next(0xF0) + d.Next(0x9F); p != "" {
		t.Errorf("partial character emitted: %q", p)
	}
	if p := d.Flush(); p != "\uFFFD" {
		t.Errorf("Flush = %q, want U+FFFD", p)
	}
	if p := d.Next(0xFF); p != "\uFFFD" {
		t.Errorf("invalid byte: Next = %q, want U+FFFD at once", p)
	}
}

func TestBytes(t *testing.T) {
	if _, err := Bytes(255); err == nil {
		t.Error("Bytes(255): no error")
	}
	bt, err := Bytes(300)
	if err != nil {
		t.Fatal(err)
	}
	ids, _ := bt.Encode("aé")
	if !slices.Equal(ids, []int{'a', 0xC3, 0xA9}) {
		t.Errorf("Encode = %v", ids)
	}
	if s, err := bt.Decode([]int{'a', 299, 0xC3, 0xA9}); err != nil || s != "aé" {
		t.Errorf("Decode = %q, %v", s, err)
	}
	if _, err := bt.Decode([]int{300}); err == nil {
		t.Error("Decode(300): no error")
	}
	toks, _ := bt.EncodeWithOffsets("ab")
	if !slices.Equal(toks, []Token{{'a', "a", 0, 1}, {'b', "b", 1, 2}}) {
		t.Errorf("EncodeWithOffsets = %v", toks)
	}
}

func TestLossyUTF8(t *testing.T) {
	tests := []struct{ in, want string }{
		{"abc", "abc"},
		{"a\xF0\x9F\x98", "a\uFFFD"},
		{"\xF0\x9F\x98\xF0\x9F\x98\x80", "\uFFFD😀"},
		{"\xC0\x80", "\uFFFD\uFFFD"},
		{"\xED\xA0\x80", "\uFFFD\uFFFD\uFFFD"},
		{"\xE2\x82", "\uFFFD"},
		{"\xFF\xFE", "\uFFFD\uFFFD"},
		{"\xF4\x90\x80\x80", "\uFFFD\uFFFD\uFFFD\uFFFD"},
	}
	for _, tc := range tests {
		if got := lossyUTF8(tc.in); got != tc.want {
			t.Errorf("lossyUTF8(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestTranslateOniguruma(t *testing.T) {
	tests := []struct{ in, want string }{
		{`\s+(?!\S)`, `[` + whiteSpace + `]+(?![^` + whiteSpace + `])`},
		{`(?i:'s|'t)`, `(?:'[sS]|'[tT])`},
		{`[^\s\p{L}]`, `[^` + whiteSpace + `\p{L}]`},
		{`(?i:[a-c])x`, `(?:[a-cA-C])x`},
		{`\x{1F600}`, "😀"},
	}
	for _, tc := range tests {
		got, err := translateOniguruma(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("translate(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{`(`, `[a`, `[\S]`, `(?x)a`, `\`} {
		if _, err := translateOniguruma(bad); err == nil {
			t.Errorf("translate(%q): no error", bad)
		}
	}
}
