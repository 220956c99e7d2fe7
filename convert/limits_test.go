package convert

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/memmamba/memmamba/quant"
)

// setConfigKey rewrites the config.json of folder dir with key (or
// "memory.<key>") set to v.
func setConfigKey(t *testing.T, dir, key string, v any) {
	t.Helper()
	path := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if k, ok := strings.CutPrefix(key, "memory."); ok {
		m["memory"].(map[string]any)[k] = v
	} else {
		m[key] = v
	}
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// bounded runs fn and fails the test if it takes more than two seconds or
// allocates more than 100 MB, the bounds for a hostile input.
func bounded(t *testing.T, what string, fn func()) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	fn()
	el := time.Since(start)
	runtime.ReadMemStats(&after)
	if a := after.TotalAlloc - before.TotalAlloc; a > 100<<20 || el > 2*time.Second {
		t.Errorf("%s: %d MB allocated in %v", what, a>>20, el)
	}
}

// TestHostileConfigSizes checks that a config.json whose sizes the weights
// beside it do not hold, or above the limits, is refused at once with one
// sentence naming the file, the key and the numbers, and leaves nothing.
func TestHostileConfigSizes(t *testing.T) {
	for _, tc := range []struct {
		fixture, key string
		v            any
		want         string
	}{
		{"mamba-tiny", "num_hidden_layers", 1 << 40, `key "num_hidden_layers" is 1099511627776, but the weights hold 2 layers (0 to 1)`},
		{"mamba-tiny", "num_hidden_layers", 1e6, `key "num_hidden_layers" is 1000000, but the weights hold 2 layers (0 to 1)`},
		{"mamba-tiny", "n_layer", 1 << 40, `key "num_hidden_layers" is 1099511627776, but the weights hold 2 layers`},
		{"memmamba-priority", "memory.pool_size", 1 << 40, `key "memory.pool_size" is 1099511627776, above the limit of 65536`},
		{"memmamba-priority", "memory.pool_size", 1e8, `key "memory.pool_size" is 100000000, above the limit of 65536`},
		{"mamba-tiny", "vocab_size", 1 << 30, `key "vocab_size" is 1073741824, above the limit of 2097152`},
		{"mamba-tiny", "state_size", 1 << 20, `key "state_size" is 1048576, above the limit of 1024`},
	} {
		name := fmt.Sprintf("%s %s=%v", tc.fixture, tc.key, tc.v)
		dir := copyFixture(t, tc.fixture)
		if tc.key == "n_layer" {
			setConfigKey(t, dir, "num_hidden_layers", nil)
		}
		setConfigKey(t, dir, tc.key, tc.v)
		out := filepath.Join(t.TempDir(), "out.mmq")
		var err error
		bounded(t, name, func() { _, err = Convert(dir, out, Options{Policy: Policy{Type: quant.F32}}) })
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "config.json") {
			t.Errorf("%s: error %v, want %q", name, err, tc.want)
		}
		if ents, _ := os.ReadDir(filepath.Dir(out)); len(ents) != 0 {
			t.Errorf("%s: left %d files behind", name, len(ents))
		}
	}
}

// TestHostileGGUFBlockCount checks that a GGUF file whose mamba.block_count
// is far above the blocks it holds is refused at once, naming the key and
// both numbers.
func TestHostileGGUFBlockCount(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tiny.gguf")
	if _, err := ConvertToGGUF(copyFixture(t, "mamba-tiny"), path, Options{Policy: Policy{Type: quant.F32}}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The key, then its type (4, uint32) and value (2), little-endian.
	key := []byte("mamba.block_count")
	i := bytes.Index(b, key)
	if i < 0 || binary.LittleEndian.Uint32(b[i+len(key):]) != 4 || binary.LittleEndian.Uint32(b[i+len(key)+4:]) != 2 {
		t.Fatal("mamba.block_count not found as a uint32 of 2")
	}
	binary.LittleEndian.PutUint32(b[i+len(key)+4:], 1<<32-1)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	bounded(t, "gguf", func() {
		_, err = Convert(path, filepath.Join(dir, "out.mmq"), Options{Policy: Policy{Type: quant.F32}})
	})
	want := `key "mamba.block_count" is 4294967295, but the weights hold 2 layers (0 to 1)`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want %q", err, want)
	}
}
