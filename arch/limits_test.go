package arch

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// tinyJSON is a valid MemMamba config.json of two layers.
const tinyJSON = `{"model_type":"memmamba","vocab_size":256,"hidden_size":16,"num_hidden_layers":2,"state_size":4,
	"memory":{"pool_size":4,"summary_dim":8,"score_dim":4,"attn_dim":8,"n_heads":2,"cross_layer_every":2}}`

// tinyHeld returns the canonical shapes of tinyJSON's weights.
func tinyHeld(t *testing.T) map[string][]int {
	t.Helper()
	c, err := ParseConfig([]byte(tinyJSON))
	if err != nil {
		t.Fatal(err)
	}
	held := map[string][]int{}
	for _, w := range c.Weights() {
		held[w.Name] = w.Shape
	}
	return held
}

// withKey returns tinyJSON with one key set: a top-level key, or
// "memory.<key>".
func withKey(key string, v int) string {
	var m map[string]any
	if err := json.Unmarshal([]byte(tinyJSON), &m); err != nil {
		panic(err)
	}
	if k, ok := strings.CutPrefix(key, "memory."); ok {
		m["memory"].(map[string]any)[k] = v
	} else {
		m[key] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestConfigLimits checks that every size key has an upper bound, and that
// the error names the key, the value and the bound.
func TestConfigLimits(t *testing.T) {
	for _, tc := range []struct {
		key string
		max int
	}{
		{"vocab_size", MaxVocabSize},
		{"hidden_size", MaxHiddenSize},
		{"num_hidden_layers", MaxLayers},
		{"state_size", MaxStateSize},
		{"conv_kernel", MaxConvKernel},
		{"intermediate_size", MaxIntermediate},
		{"time_step_rank", MaxTimeStepRank},
		{"memory.pool_size", MaxPoolSize},
		{"memory.summary_dim", MaxNoteDim},
		{"memory.score_dim", MaxNoteDim},
		{"memory.attn_dim", MaxNoteDim},
		{"memory.n_heads", MaxHeads},
		{"memory.cross_layer_every", MaxCrossLayerEvery},
	} {
		for _, v := range []int{tc.max + 1, 1e8, 1 << 40} {
			js := withKey(tc.key, v)
			_, err := ParseConfig([]byte(js))
			want := fmt.Sprintf("key %q is %d, above the limit of %d", tc.key, v, tc.max)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s = %d: error %v, want %q", tc.key, v, err, want)
			}
		}
	}
	// At the bound itself, the limit is not what fails.
	if _, err := ParseConfig([]byte(withKey("memory.pool_size", MaxPoolSize))); err != nil {
		t.Errorf("pool_size at the limit: %v", err)
	}
}

// TestParseConfigForLayers checks that a configuration of more layers than
// the weights hold is one error naming the key and both numbers, returned
// before anything is built per layer: no more than a megabyte allocated and
// well under a second, whatever the configured count.
func TestParseConfigForLayers(t *testing.T) {
	held := tinyHeld(t)
	for _, n := range []int{3, 1000, 1e6, 1 << 40} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		_, err := ParseConfigFor([]byte(withKey("num_hidden_layers", n)), held)
		el := time.Since(start)
		runtime.ReadMemStats(&after)
		want := fmt.Sprintf(`key "num_hidden_layers" is %d, but the weights hold 2 layers (0 to 1)`, n)
		if err == nil || err.Error() != "config: "+want {
			t.Errorf("%d layers: error %v, want %q", n, err, want)
		}
		if a := after.TotalAlloc - before.TotalAlloc; a > 1<<20 || el > time.Second {
			t.Errorf("%d layers: %d bytes allocated, %v", n, a, el)
		}
	}
	if _, err := ParseConfigFor([]byte(tinyJSON), held); err != nil {
		t.Errorf("the right config: %v", err)
	}
	held["backbone.norm_f.weight"] = []int{17}
	if _, err := ParseConfigFor([]byte(tinyJSON), held); err == nil || !strings.Contains(err.Error(), `tensor "backbone.norm_f.weight" has shape [17], the config calls for [16]`) {
		t.Errorf("a wrong shape: %v", err)
	}
}

// TestLayersHeld checks the count of layers held: an unbroken run from 0,
// indices read only in canonical spelling.
func TestLayersHeld(t *testing.T) {
	for _, tc := range []struct {
		names []string
		want  int
	}{
		{nil, 0},
		{[]string{"backbone.layers.0.x", "backbone.layers.1.y", "backbone.layers.1.z"}, 2},
		{[]string{"backbone.layers.1.x"}, 0},
		{[]string{"backbone.layers.0.x", "backbone.layers.2.x"}, 1},
		{[]string{"backbone.layers.00.x", "backbone.layers.+1.x", "backbone.layers.-0.x", "backbone.layers.0"}, 0},
		{[]string{"backbone.layers.0.x", "backbone.layers.99999999999999999999.x"}, 1},
	} {
		if got := LayersHeld(tc.names, LayerTensorPrefix); got != tc.want {
			t.Errorf("LayersHeld(%q) = %d, want %d", tc.names, got, tc.want)
		}
	}
}

// realConfigs returns the config.json files of the test models.
func realConfigs(t testing.TB) [][]byte {
	paths, _ := filepath.Glob(filepath.Join("..", "testdata", "models", "*", "config.json"))
	var out [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// FuzzParseConfig fuzzes config.json parsing, seeded with the test models'
// configs: no panic, and an accepted config is valid, within every limit,
// and its weight list is bounded by its (bounded) layer count.
func FuzzParseConfig(f *testing.F) {
	for _, b := range realConfigs(f) {
		f.Add(b)
	}
	f.Add([]byte(tinyJSON))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted, but invalid: %v", err)
		}
		for _, l := range c.limits() {
			if l.v > l.max || l.v < 0 {
				t.Fatalf("%s = %d accepted, limit %d", l.key, l.v, l.max)
			}
		}
		if n := len(c.Weights()); n > 40*c.NumLayers+3 {
			t.Fatalf("%d weights for %d layers", n, c.NumLayers)
		}
	})
}

// TestHugeIntegers checks that integers beyond what any limit needs are
// refused by name while parsing, before any product is formed.
func TestHugeIntegers(t *testing.T) {
	for _, js := range []string{withKey("num_hidden_layers", 1<<41), withKey("expand", 1<<50), `{"vocab_size":1e300,"hidden_size":8,"num_hidden_layers":1}`} {
		_, err := ParseConfig([]byte(js))
		if err == nil || !strings.Contains(err.Error(), "is out of range (above 2^40)") {
			t.Errorf("%s: %v", js, err)
		}
	}
}
