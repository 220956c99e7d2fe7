package tokenizer

import (
	"strings"
	"testing"
)

// benchText is 10 MiB of corpus strings, each followed by "\n", built
// exactly as golden.mjs --bench builds the text it times Tokenizers.js on.
func benchText(b *testing.B) string {
	corpus := loadCorpus(b)
	var sb strings.Builder
	for i := 0; sb.Len() < 10<<20; i++ {
		sb.WriteString(corpus[i%len(corpus)])
		sb.WriteByte('\n')
	}
	return sb.String()
}

// BenchmarkEncode10MB reports the encoding throughput (MB/s) of the real
// tokenizers on 10 MiB of text; compare with: node golden.mjs --bench.
func BenchmarkEncode10MB(b *testing.B) {
	text := benchText(b)
	for _, name := range []string{"gpt4o", "llama3", "qwen3", "neox-like"} {
		b.Run(name, func(b *testing.B) {
			tk := loadReal(b, name)
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tk.Encode(text); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEncodeLines10MB encodes the same 10 MiB one line per call, the
// workload golden.mjs --bench times Tokenizers.js on.
func BenchmarkEncodeLines10MB(b *testing.B) {
	text := benchText(b)
	lines := strings.SplitAfter(text, "\n")
	for _, name := range []string{"gpt4o", "llama3", "qwen3"} {
		b.Run(name, func(b *testing.B) {
			tk := loadReal(b, name)
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			for b.Loop() {
				for _, l := range lines {
					if _, err := tk.Encode(l); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

func BenchmarkEncodeTiny(b *testing.B) {
	tk := loadTiny(b)
	text := strings.Repeat("hello world, the thing is café 😀 12345\n", 1000)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tk.Encode(text); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	tk := loadTiny(b)
	ids, _ := tk.Encode(strings.Repeat("hello world, the thing is café 😀 12345\n", 1000))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tk.Decode(ids); err != nil {
			b.Fatal(err)
		}
	}
}
