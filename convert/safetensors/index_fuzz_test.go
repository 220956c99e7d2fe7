package safetensors

import (
	"os"
	"path/filepath"
	"testing"
)

// fifoDir is the test model whose weights are sharded.
var fifoDir = filepath.Join("..", "..", "testdata", "models", "memmamba-fifo")

// FuzzIndex fuzzes the shard index (model.safetensors.index.json) against
// the real shards of the memmamba-fifo test model, seeded with its real
// index: no panic, and an accepted index gives every tensor exactly one
// shard that holds it.
func FuzzIndex(f *testing.F) {
	dir := f.TempDir()
	shards, _ := filepath.Glob(filepath.Join(fifoDir, "*.safetensors"))
	for _, p := range shards {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(p)), b, 0o644); err != nil {
			f.Fatal(err)
		}
	}
	if real, err := os.ReadFile(filepath.Join(fifoDir, "model.safetensors.index.json")); err == nil {
		f.Add(real)
	}
	f.Add([]byte(`{"weight_map":{"a":"model-00001-of-00003.safetensors"}}`))
	f.Add([]byte(`{"metadata":{"total_size":1},"weight_map":{"a":"../x.safetensors","a":"y"}}`))
	index := filepath.Join(dir, "model.safetensors.index.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := openIndex(index, data)
		if err != nil {
			return
		}
		defer s.Close()
		seen := map[string]bool{}
		for _, ti := range s.Tensors() {
			if seen[ti.Name] {
				t.Fatalf("tensor %q listed twice", ti.Name)
			}
			seen[ti.Name] = true
			if sh := s.owner[ti.Name]; sh == nil || !sh.Has(ti.Name) {
				t.Fatalf("tensor %q has no shard that holds it", ti.Name)
			}
		}
		if len(s.Shards()) > MaxShards {
			t.Fatalf("%d shards", len(s.Shards()))
		}
	})
}
