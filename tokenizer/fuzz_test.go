package tokenizer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// FuzzEncode: random strings never panic, and decode(encode(s)) gives s
// back wherever the tokenizer is lossless: always for the byte tokenizer,
// and for the tiny BPE (NFC normalizer, BOS template) on NFC text without
// "<mask>" (an lstrip token, which swallows the spaces before it).
func FuzzEncode(f *testing.F) {
	for _, s := range []string{"", "hello world", "café 😀\r\n\t  x", "<|endoftext|><mask> wow", "\xff\xfe", "e\u0301", "12 345 'S 'll"} {
		f.Add(s)
	}
	tk := loadTiny(f)
	bt, _ := Bytes(256)
	f.Fuzz(func(t *testing.T, s string) {
		ids, err := tk.Encode(s)
		if err != nil {
			t.Fatalf("Encode(%q): %v", s, err)
		}
		got, err := tk.Decode(ids)
		if err != nil {
			t.Fatalf("Decode: %v", err)
		}
		if utf8.ValidString(s) && norm.NFC.IsNormalString(s) && !strings.Contains(s, "<mask>") && got != "<|endoftext|>"+s {
			t.Fatalf("round trip of %q gave %q", s, got)
		}
		if _, err := tk.EncodeWithOffsets(s); err != nil {
			t.Fatal(err)
		}
		ids, _ = bt.Encode(s)
		got, _ = bt.Decode(ids)
		if utf8.ValidString(s) && got != s {
			t.Fatalf("bytes round trip of %q gave %q", s, got)
		}
	})
}

// FuzzFromJSON: arbitrary bytes never make the loader panic; whatever
// loads can encode.
func FuzzFromJSON(f *testing.F) {
	tiny, err := os.ReadFile("testdata/tiny.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tiny)
	f.Add([]byte(`{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": [["a", "b"]]}, "pre_tokenizer": {"type": "Digits", "individual_digits": true}, "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "a"}, {"type": "Replace", "pattern": {"String": "b"}, "content": "ab"}]}}`))
	f.Add([]byte(`{"model": {"type": "BPE", "vocab": {"<0x61>": 0, "x": 1}, "merges": [], "byte_fallback": true, "unk_token": "x", "fuse_unk": true}, "decoder": {"type": "Sequence", "decoders": [{"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}}`))
	if data, err := os.ReadFile(filepath.Join(goldenDir, "files", "qwen3.json")); err == nil && len(data) < 1<<16 {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tk, err := FromJSON(data)
		if err != nil {
			return
		}
		ids, err := tk.Encode("ab ba 12 <mask> é😀\n")
		if err != nil {
			return
		}
		_, _ = tk.Decode(ids)
	})
}
