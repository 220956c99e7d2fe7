package format

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/memmamba/memmamba/quant"
)

// benchFile writes a file of 300 small tensors (about the count of a
// 24-layer MemMamba) and returns its path and size.
func benchFile(b *testing.B) (string, int) {
	plan := make([]TensorSpec, 300)
	for i := range plan {
		plan[i] = TensorSpec{fmt.Sprintf("backbone.layers.%d.mixer.t%d.weight", i/12, i%12), quant.Types[i%len(quant.Types)], []int{4, 64}}
	}
	path := filepath.Join(b.TempDir(), "bench.mmb")
	raw := writeModel(b, path, testHeader(b), plan, testData(b, plan, 8))
	return path, len(raw)
}

func BenchmarkOpen(b *testing.B) {
	path, _ := benchFile(b)
	f, err := Open(path, OpenOptions{})
	if err != nil {
		b.Fatal(err)
	}
	f.Close()
	b.SetBytes(int64(f.Header.Tensors[0].Offset)) // the header is what Open reads
	b.ReportAllocs()
	for b.Loop() {
		f, err := Open(path, OpenOptions{})
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}

func BenchmarkVerify(b *testing.B) {
	path, size := benchFile(b)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		if err := Verify(path); err != nil {
			b.Fatal(err)
		}
	}
}
