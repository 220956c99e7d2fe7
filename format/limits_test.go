package format

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/memmamba/memmamba/arch"
	"github.com/memmamba/memmamba/quant"
)

// TestHeaderConfigAgainstTensors checks that a model file whose header's
// config asks for more layers than its table holds, or a size above its
// limit, is refused by Open and Verify alike, with the key and the numbers.
func TestHeaderConfigAgainstTensors(t *testing.T) {
	c, err := arch.ParseConfig([]byte(`{"model_type":"memmamba","vocab_size":256,"hidden_size":8,"num_hidden_layers":2,"state_size":4,
		"memory":{"pool_size":4,"summary_dim":8,"score_dim":4,"attn_dim":8,"n_heads":2}}`))
	if err != nil {
		t.Fatal(err)
	}
	var plan []TensorSpec
	for _, w := range c.Weights() {
		if !w.Optional {
			plan = append(plan, TensorSpec{Name: w.Name, Type: quant.F32, Shape: w.Shape})
		}
	}
	ts, data := planned(t, plan)
	blobs := map[uint64][]byte{}
	for _, ti := range ts {
		blobs[ti.Offset] = data[ti.Name]
	}
	last := ts[len(ts)-1]
	for _, tc := range []struct {
		name string
		edit func(*arch.Config)
		want string
	}{
		{"as written", func(*arch.Config) {}, ""},
		{"2^40 layers", func(c *arch.Config) { c.NumLayers = 1 << 40 }, `key "num_hidden_layers" is 1099511627776, but the weights hold 2 layers (0 to 1)`},
		{"1000 layers", func(c *arch.Config) { c.NumLayers = 1000 }, `key "num_hidden_layers" is 1000, but the weights hold 2 layers (0 to 1)`},
		{"pool 2^40", func(c *arch.Config) { c.Memory.PoolSize = 1 << 40 }, `key "memory.pool_size" is 1099511627776, above the limit of 65536`},
		{"pool 1e8", func(c *arch.Config) { c.Memory.PoolSize = 1e8 }, `key "memory.pool_size" is 100000000, above the limit of 65536`},
		{"hidden", func(c *arch.Config) { c.HiddenSize = 9 }, `tensor "backbone.embeddings.weight" has shape [256 8], the config calls for [256 9]`},
	} {
		h := testHeader(t)
		cc := *c
		m := *c.Memory
		cc.Memory = &m
		tc.edit(&cc)
		h.Config = cc
		h.Tensors = ts
		b := rawFile(t, &h, int(last.Offset+last.Size), blobs)
		path := filepath.Join(t.TempDir(), "m.mmb")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		_, oerr := OpenBytes("m.mmb", b)
		verr := Verify(path)
		for what, err := range map[string]error{"Open": oerr, "Verify": verr} {
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("%s: %s: %v", tc.name, what, err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("%s: %s: error %v, want %q", tc.name, what, err, tc.want)
			}
		}
	}
}

// TestCheckModel checks the strict check engine.Open makes: a file whose
// tensors are not named as a model's opens, but CheckModel refuses its
// config's layers, naming the key and both numbers.
func TestCheckModel(t *testing.T) {
	f, err := OpenBytes("small.mmb", smallFile(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := `small.mmb: config: key "num_hidden_layers" is 1, but the weights hold no layers`
	if err := f.CheckModel(); err == nil || err.Error() != want {
		t.Errorf("CheckModel: %v, want %q", err, want)
	}
	path := filepath.Join(t.TempDir(), "small.mmb")
	if err := os.WriteFile(path, smallFile(t), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Verify(path); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if err := VerifyModel(path); err == nil || !strings.Contains(err.Error(), `key "num_hidden_layers" is 1, but the weights hold no layers`) {
		t.Errorf("VerifyModel: %v", err)
	}
}
