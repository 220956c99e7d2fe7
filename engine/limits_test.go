package engine

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"os"
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

// patchHeader returns the model file b with the msgpack value of key in
// its header replaced by the uint64 v and the header checksum made right;
// the header grows into the zero padding before the first tensor.
func patchHeader(t *testing.T, b []byte, key string, v uint64) []byte {
	t.Helper()
	hlen := binary.LittleEndian.Uint64(b[16:])
	hdr := b[32 : 32+hlen]
	k := append([]byte{byte(0xa0 + len(key))}, key...)
	i := bytes.Index(hdr, k)
	if i < 0 || hdr[i+len(k)] > 0x7f {
		t.Fatalf("no %q with a small value in the header", key)
	}
	j := i + len(k)
	val := make([]byte, 9)
	val[0] = 0xcf // uint 64
	binary.BigEndian.PutUint64(val[1:], v)
	nh := append(append(append([]byte{}, hdr[:j]...), val...), hdr[j+1:]...)
	if !bytes.Equal(b[32+hlen:32+uint64(len(nh))], make([]byte, len(nh)-len(hdr))) {
		t.Fatal("no padding after the header to grow into")
	}
	out := bytes.Clone(b)
	copy(out[32:], nh)
	binary.LittleEndian.PutUint64(out[16:], uint64(len(nh)))
	tab := crc32.MakeTable(crc32.Castagnoli)
	c := crc32.Update(0, tab, out[:24])
	c = crc32.Update(c, tab, out[28:32])
	binary.LittleEndian.PutUint32(out[24:], crc32.Update(c, tab, nh))
	return out
}

// TestOpenHostileHeader checks that a model file whose header asks for
// 2^40 layers beside its 4, or a pool of 2^40 or 1e8 summaries, is refused
// by Open with one sentence naming the key and the numbers (it used to
// panic in makeslice or die allocating pools).
func TestOpenHostileHeader(t *testing.T) {
	good, err := os.ReadFile(convertFixture(t, "memmamba-priority", quant.F32))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key  string
		v    uint64
		want string
	}{
		{"num_hidden_layers", 1 << 40, `key "num_hidden_layers" is 1099511627776, but the weights hold 4 layers (0 to 3)`},
		{"pool_size", 1 << 40, `key "memory.pool_size" is 1099511627776, above the limit of 65536`},
		{"pool_size", 1e8, `key "memory.pool_size" is 100000000, above the limit of 65536`},
	} {
		path := filepath.Join(t.TempDir(), "hostile.mmq")
		if err := os.WriteFile(path, patchHeader(t, good, tc.key, tc.v), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Open(path, Options{Threads: 1})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s = %d: error %v, want %q", tc.key, tc.v, err, tc.want)
		}
	}
}
