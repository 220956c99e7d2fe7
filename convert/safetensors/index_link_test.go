package safetensors

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/memmamba/memmamba/internal/fixtures"
)

// TestIndexShardLinks: a shard symlink that leaves the index's folder is
// refused, unless the index itself resolves to the folder the shard lies
// in (Hugging Face's cache: snapshots/REV/* link to ../../blobs/*).
func TestIndexShardLinks(t *testing.T) {
	src := filepath.Join(fixtures.Dir(), "memmamba-fifo")
	names := []string{"model.safetensors.index.json", "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors"}
	root := t.TempDir()
	blobs := filepath.Join(root, "blobs")
	snap := filepath.Join(root, "snapshots", "rev")
	plain := filepath.Join(root, "plain")
	for _, d := range []string{blobs, snap, plain} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for i, n := range names {
		b, err := os.ReadFile(filepath.Join(src, n))
		if err != nil {
			t.Fatal(err)
		}
		blob := filepath.Join(blobs, "sha"+string(rune('0'+i)))
		if err := os.WriteFile(blob, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join("..", "..", "blobs", filepath.Base(blob)), filepath.Join(snap, n)); err != nil {
			t.Fatal(err)
		}
		// plain/: a real index and shards, one shard linking out.
		if i == 2 {
			err = os.Symlink(blob, filepath.Join(plain, n))
		} else {
			err = os.WriteFile(filepath.Join(plain, n), b, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	s, err := OpenIndex(filepath.Join(snap, names[0]))
	if err != nil {
		t.Fatalf("Hugging Face cache layout: %v", err)
	}
	s.Close()
	_, err = OpenIndex(filepath.Join(plain, names[0]))
	if err == nil || !strings.Contains(err.Error(), "outside the folder") || !strings.Contains(err.Error(), names[2]) {
		t.Errorf("a shard linking out of a plain folder: %v", err)
	}
}
