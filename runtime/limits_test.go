package runtime

import (
	"bufio"
	"path/filepath"
	"strings"
	"testing"

	"github.com/memmamba/memmamba/arch"
	"github.com/memmamba/memmamba/format"
	"github.com/memmamba/memmamba/quant"
)

// TestMemTotal checks the reading of /proc/meminfo's MemTotal line.
func TestMemTotal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"MemTotal:       16318412 kB\nMemFree: 1 kB\n", 16318412 << 10},
		{"MemFree: 1 kB\nMemTotal: 2 kB\n", 2 << 10},
		{"MemTotal: 2 MB\n", 0},
		{"MemTotal: -2 kB\n", 0},
		{"MemTotal: 99999999999999999999 kB\n", 0},
		{"", 0},
	} {
		if got := memTotal(bufio.NewScanner(strings.NewReader(tc.in))); got != tc.want {
			t.Errorf("memTotal(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
	if MachineMemory() < 0 {
		t.Error("negative machine memory")
	}
}

// TestMemoryNeeded checks the estimate's parts for a small MemMamba and
// that the largest configuration the limits allow does not overflow.
func TestMemoryNeeded(t *testing.T) {
	c, err := arch.ParseConfig([]byte(`{"model_type":"memmamba","vocab_size":256,"hidden_size":16,"num_hidden_layers":2,
		"state_size":4,"memory":{"pool_size":4,"summary_dim":8,"attn_dim":8}}`))
	if err != nil {
		t.Fatal(err)
	}
	n := MemoryNeeded(c, 1000)
	E := int64(c.Intermediate)
	minState := 2 * (E*3 + E*4 + 16) * 4 // conv, ssm and prevM of both layers
	if n.Weights != 1000 || n.State <= minState || n.Scratch < ChunkSize*256*4 || n.Decoded < 2*E*4*4 {
		t.Errorf("need %+v, state at least %d", n, minState)
	}
	if n.Total() != n.Weights+n.Decoded+n.State+n.Scratch || n.PerSession() != n.State+n.Scratch {
		t.Errorf("total %d, per session %d of %+v", n.Total(), n.PerSession(), n)
	}
	big := *c
	big.NumLayers, big.HiddenSize, big.Intermediate, big.StateSize, big.ConvKernel = arch.MaxLayers, arch.MaxHiddenSize, arch.MaxIntermediate, arch.MaxStateSize, arch.MaxConvKernel
	big.VocabSize, big.TimeStepRank = arch.MaxVocabSize, arch.MaxTimeStepRank
	m := *c.Memory
	m.PoolSize, m.SummaryDim, m.AttnDim, m.ScoreDim = arch.MaxPoolSize, arch.MaxNoteDim, arch.MaxNoteDim, arch.MaxNoteDim
	big.Memory = &m
	if err := big.Validate(); err != nil {
		t.Fatal(err)
	}
	if b := MemoryNeeded(&big, 1<<50); b.Total() <= 1<<50 || b.State <= 0 || b.Scratch <= 0 || b.Decoded <= 0 {
		t.Errorf("largest config: %+v", b)
	}
}

// TestOpenChecksLimits checks that Open refuses, with one sentence and
// before building anything per layer, a model that needs more memory than
// allowed and a file whose config counts layers its table does not hold.
func TestOpenChecksLimits(t *testing.T) {
	path := convertFixture(t, "memmamba-priority", quant.F32)
	_, err := Open(path, Options{Threads: 1, MaxMemory: 1 << 20})
	t.Log(err)
	if err == nil || !strings.Contains(err.Error(), "more than the limit of 1.0 MiB") || !strings.Contains(err.Error(), "memory.pool_size=") {
		t.Errorf("MaxMemory 1 MiB: %v", err)
	}
	m, err := Open(path, Options{Threads: 1, MaxMemory: 1 << 30})
	if err != nil {
		t.Fatalf("MaxMemory 1 GiB: %v", err)
	}
	m.Close()

	// A file format accepts (its tensors are not named as a model's),
	// whose config counts 1000 layers.
	c, err := arch.ParseConfig([]byte(`{"vocab_size":256,"hidden_size":8,"num_hidden_layers":1000}`))
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "other.mmq")
	w, err := format.Create(other, format.Header{Config: *c, Tokenizer: format.Tokenizer{Kind: format.TokenizerBytes}},
		[]format.TensorSpec{{Name: "x", Type: quant.F32, Shape: []int{1}}}, format.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteTensor("x", make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	_, err = Open(other, Options{Threads: 1})
	if err == nil || !strings.Contains(err.Error(), `key "num_hidden_layers" is 1000, but the weights hold no layers`) {
		t.Errorf("1000 layers, none held: %v", err)
	}
}
