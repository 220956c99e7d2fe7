package format

import (
	"bytes"
	"encoding/binary"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/memmamba/memmamba/arch"
	"github.com/memmamba/memmamba/quant"
)

var update = flag.Bool("update", false, "rewrite the golden file and the fuzz seed corpus under testdata/")

// fixedTime is the creation time of every test file, for byte-identical
// output.
var fixedTime = time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)

func testConfig(t testing.TB) arch.Config {
	t.Helper()
	c, err := arch.ParseConfig([]byte(`{"vocab_size": 256, "hidden_size": 8, "num_hidden_layers": 1}`))
	if err != nil {
		t.Fatal(err)
	}
	return *c
}

func testHeader(t testing.TB) Header {
	return Header{
		Config:    testConfig(t),
		Tokenizer: Tokenizer{Kind: TokenizerBytes},
		Provenance: Provenance{
			Sources:   []SourceFile{{Path: "model.safetensors", SHA256: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}},
			Converter: "mmconvert test",
			Created:   fixedTime,
		},
		Metadata: map[string]string{"b": "2", "a": "1", "c": "3"},
	}
}

// smallPlan has one tensor of every type and ranks 0 to 4, with a zero-size
// tensor in the middle.
var smallPlan = []TensorSpec{
	{"f32.scalar", quant.F32, nil},
	{"f32.vec", quant.F32, []int{5}},
	{"f16.mat", quant.F16, []int{3, 7}},
	{"bf16.r3", quant.BF16, []int{2, 1, 3}},
	{"empty", quant.F32, []int{0, 4}},
	{"q8.mat", quant.Q8_0, []int{3, 64}},
	{"q4.r4", quant.Q4_0, []int{2, 1, 2, 32}},
}

// testData returns deterministic bytes for each planned tensor.
func testData(t testing.TB, plan []TensorSpec, seed uint64) map[string][]byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	m := make(map[string][]byte, len(plan))
	for _, s := range plan {
		n, err := DataSize(s.Type, s.Shape)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		m[s.Name] = b
	}
	return m
}

// writeModel writes a model file at path and returns its bytes.
func writeModel(t testing.TB, path string, h Header, plan []TensorSpec, data map[string][]byte) []byte {
	t.Helper()
	w, err := Create(path, h, plan, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	// Write in reverse order: the writer takes any order.
	for i := len(plan) - 1; i >= 0; i-- {
		if err := w.WriteTensor(plan[i].Name, data[plan[i].Name]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// smallFile writes the small test model and returns its bytes.
func smallFile(t testing.TB) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "small.mmb")
	return writeModel(t, path, testHeader(t), smallPlan, testData(t, smallPlan, 1))
}

// dataBase is where rawFile puts tensor data: far enough past any test
// header.
const dataBase = 1 << 16

// planned returns a valid tensor table for plan with data from dataBase on,
// and the data.
func planned(t testing.TB, plan []TensorSpec) ([]TensorInfo, map[string][]byte) {
	t.Helper()
	data := testData(t, plan, 2)
	ts := make([]TensorInfo, len(plan))
	pos := uint64(dataBase)
	for i, s := range plan {
		d := data[s.Name]
		ts[i] = TensorInfo{Name: s.Name, Type: s.Type, Shape: s.Shape, Offset: pos, Size: uint64(len(d)), Checksum: Checksum(d)}
		pos = alignUp(pos + uint64(len(d)))
	}
	return ts, data
}

// rawFile builds a file by hand from any msgpack-encodable header (which
// need not be valid) and tensor data at given offsets; the file is size
// bytes long and its header checksum is right.
func rawFile(t testing.TB, hdr any, size int, data map[uint64][]byte) []byte {
	t.Helper()
	var enc []byte
	switch h := hdr.(type) {
	case []byte:
		enc = h
	default:
		var buf bytes.Buffer
		e := msgpack.NewEncoder(&buf)
		e.SetSortMapKeys(true)
		if err := e.Encode(hdr); err != nil {
			t.Fatal(err)
		}
		enc = buf.Bytes()
	}
	b := make([]byte, max(size, PreambleSize+len(enc)))
	copy(b, preamble(enc))
	copy(b[PreambleSize:], enc)
	for off, d := range data {
		if off < uint64(PreambleSize+len(enc)) {
			t.Fatalf("data at %d would overwrite the header", off)
		}
		copy(b[off:], d)
	}
	return b
}

// fixChecksum recomputes the header checksum of b in place, where the
// preamble is whole and the header length fits; it returns b.
func fixChecksum(b []byte) []byte {
	if len(b) < PreambleSize {
		return b
	}
	n := binary.LittleEndian.Uint64(b[16:])
	if n > uint64(len(b)-PreambleSize) {
		return b
	}
	binary.LittleEndian.PutUint32(b[24:], headerChecksum(b[:PreambleSize], b[PreambleSize:PreambleSize+n]))
	return b
}
