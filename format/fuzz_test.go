package format

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/memmamba/memmamba/arch"
	"github.com/memmamba/memmamba/internal/golden"
	"github.com/memmamba/memmamba/quant"
)

// seedFiles returns small real files for the fuzz corpus: the small model,
// one with a BPE tokenizer and a MemMamba config, and one with no tensors.
func seedFiles(t testing.TB) [][]byte {
	dir := t.TempDir()
	seeds := [][]byte{smallFile(t)}

	h := testHeader(t)
	h.Tokenizer = Tokenizer{Kind: TokenizerHFBPE, JSON: []byte(`{"version":"1.0","model":{"type":"BPE","vocab":{"a":0},"merges":[]}}`)}
	mc, err := arch.ParseConfig([]byte(`{"model_type": "memmamba", "vocab_size": 300, "hidden_size": 16, "num_hidden_layers": 2, "memory": {"pool_size": 4}}`))
	if err != nil {
		t.Fatal(err)
	}
	h.Config = *mc
	plan := []TensorSpec{{"w", quant.Q4_0, []int{2, 32}}, {"v", quant.BF16, []int{3}}}
	seeds = append(seeds, writeModel(t, filepath.Join(dir, "bpe.mmb"), h, plan, testData(t, plan, 7)))

	h = testHeader(t)
	h.Metadata = nil
	h.Provenance.Sources = nil
	seeds = append(seeds, writeModel(t, filepath.Join(dir, "empty.mmb"), h, nil, nil))
	return seeds
}

func FuzzOpen(f *testing.F) {
	for _, s := range seedFiles(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// Try the input as it is, and with its header checksum made right
		// so that mutations reach the header decoder.
		for _, in := range [][]byte{b, fixChecksum(bytes.Clone(b))} {
			file, err := OpenBytes("fuzz.mmb", in)
			if err != nil {
				continue
			}
			checkInvariants(t, file, in)
			file.VerifyChecksums()
			file.checkPadding()
			file.Close()
		}
	})
}

// checkInvariants checks what Open promises of any file it accepts.
func checkInvariants(t *testing.T, f *File, b []byte) {
	t.Helper()
	if len(f.Tensors()) > MaxTensors {
		t.Fatalf("%d tensors", len(f.Tensors()))
	}
	type span struct{ lo, hi uint64 }
	var spans []span
	for i, tt := range f.Tensors() {
		info := f.Header.Tensors[i]
		size, err := DataSize(tt.Type, tt.Shape)
		if err != nil || uint64(len(tt.Data)) != size || info.Size != size {
			t.Fatalf("tensor %q: %d bytes, DataSize %d, %v", tt.Name, len(tt.Data), size, err)
		}
		if info.Offset%Alignment != 0 || info.Offset+size > uint64(len(b)) || info.Offset < PreambleSize {
			t.Fatalf("tensor %q: [%d, +%d) in %d bytes", tt.Name, info.Offset, size, len(b))
		}
		if size > 0 {
			for _, s := range spans {
				if info.Offset < s.hi && s.lo < info.Offset+size {
					t.Fatalf("tensor %q overlaps", tt.Name)
				}
			}
			spans = append(spans, span{info.Offset, info.Offset + size})
		}
		if got, ok := f.Tensor(tt.Name); !ok || got.Name != tt.Name {
			t.Fatalf("tensor %q not found by name", tt.Name)
		}
	}
}

// TestSeedCorpus writes the committed seed corpus of FuzzOpen under
// testdata/fuzz/FuzzOpen with -update; go test runs those files as part of
// FuzzOpen.
func TestSeedCorpus(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite testdata/fuzz/FuzzOpen")
	}
	seeds := map[string][]byte{}
	for i, s := range seedFiles(t) {
		seeds[fmt.Sprintf("seed-%d", i)] = s
	}
	golden.WriteSeeds(t, "FuzzOpen", seeds)
}
