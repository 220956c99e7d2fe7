package gguf

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/memmamba/memmamba/convert/source"
	"github.com/memmamba/memmamba/internal/golden"
	"github.com/memmamba/memmamba/quant"
)

var update = flag.Bool("update", false, "rewrite golden files and fuzz seeds under testdata/")

// allKVs has one value of every GGUF type, arrays of every element type, an
// empty array and nested arrays.
func allKVs() []KV {
	return []KV{
		{"general.architecture", "test"},
		{"u8", uint8(200)}, {"i8", int8(-100)},
		{"u16", uint16(60000)}, {"i16", int16(-30000)},
		{"u32", uint32(4000000000)}, {"i32", int32(-2000000000)},
		{"f32", float32(1.5)}, {"bool", true}, {"str", "héllo\x00world"},
		{"u64", uint64(1) << 60}, {"i64", int64(-1) << 60}, {"f64", math.Pi},
		{"a.u8", []uint8{1, 2, 3}}, {"a.i8", []int8{-1, 0, 1}},
		{"a.u16", []uint16{1, 65535}}, {"a.i16", []int16{-32768, 32767}},
		{"a.u32", []uint32{7}}, {"a.i32", []int32{-7, 7}},
		{"a.f32", []float32{0.25, -2}}, {"a.bool", []bool{true, false}},
		{"a.str", []string{"a", "", "ccc"}}, {"a.u64", []uint64{1 << 63}},
		{"a.i64", []int64{-5}}, {"a.f64", []float64{1e300}},
		{"a.empty", []string{}},
		{"a.nested", []any{[]int32{1, 2}, []string{"x"}, []any{[]uint8{9}}}},
		{"a.deepest", []any{[]any{[]any{[]uint8{1}}}}},
	}
}

type testTensor struct {
	info TensorInfo
	data []byte
}

func f32bytes(v ...float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func seq(n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(i)*0.5 - 3
	}
	return v
}

// testTensors has one tensor of each type that ReadFloat32 decodes, with
// ranks 0 to 4.
func testTensors() []testTensor {
	f16 := make([]byte, 2*6)
	bf16 := make([]byte, 2*6)
	for i, v := range seq(6) {
		binary.LittleEndian.PutUint16(f16[2*i:], quant.F32ToF16(v))
		binary.LittleEndian.PutUint16(bf16[2*i:], quant.F32ToBF16(v))
	}
	q8 := make([]byte, 2*34) // 2 blocks: scale 0.5, q = i-16
	q4 := make([]byte, 18)   // 1 block: scale 2, nibbles
	for b := 0; b < 2; b++ {
		binary.LittleEndian.PutUint16(q8[b*34:], quant.F32ToF16(0.5))
		for i := 0; i < 32; i++ {
			q8[b*34+2+i] = byte(int8(i - 16 + b))
		}
	}
	binary.LittleEndian.PutUint16(q4, quant.F32ToF16(2))
	for j := 0; j < 16; j++ {
		q4[2+j] = byte(j) | byte(15-j)<<4
	}
	f64 := make([]byte, 8*3)
	for i := range 3 {
		binary.LittleEndian.PutUint64(f64[8*i:], math.Float64bits(float64(i)+0.25))
	}
	return []testTensor{
		{TensorInfo{Name: "scalar", Dims: nil, Type: GGMLF32}, f32bytes(42)},
		{TensorInfo{Name: "vec", Dims: []uint64{5}, Type: GGMLF32}, f32bytes(seq(5)...)},
		{TensorInfo{Name: "mat.f16", Dims: []uint64{3, 2}, Type: GGMLF16}, f16},
		{TensorInfo{Name: "mat.bf16", Dims: []uint64{2, 3}, Type: GGMLBF16}, bf16},
		{TensorInfo{Name: "q8", Dims: []uint64{32, 2}, Type: GGMLQ8_0}, q8},
		{TensorInfo{Name: "q4", Dims: []uint64{32, 1, 1, 1}, Type: GGMLQ4_0}, q4},
		{TensorInfo{Name: "f64", Dims: []uint64{3, 1, 1}, Type: GGMLF64}, f64},
		{TensorInfo{Name: "empty", Dims: []uint64{0, 4}, Type: GGMLF32}, nil},
	}
}

func writeBytes(t testing.TB, kvs []KV, ts []testTensor) []byte {
	t.Helper()
	var buf bytes.Buffer
	infos := make([]TensorInfo, len(ts))
	for i, tt := range ts {
		infos[i] = tt.info
	}
	w, err := NewWriter(&buf, kvs, infos)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range ts {
		if err := w.WriteTensor(tt.info.Name, tt.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func parse(t testing.TB, b []byte) *File {
	t.Helper()
	f, err := NewReader(bytes.NewReader(b), int64(len(b)), "mem.gguf")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestRoundTrip(t *testing.T) {
	for _, align := range []uint32{0, 1, 8, 64, 4096} {
		t.Run(fmt.Sprint("align", align), func(t *testing.T) {
			kvs := allKVs()
			want := uint64(DefaultAlignment)
			if align != 0 {
				kvs = append(kvs, KV{KeyAlignment, align})
				want = uint64(align)
			}
			ts := testTensors()
			b := writeBytes(t, kvs, ts)
			if b2 := writeBytes(t, kvs, ts); !bytes.Equal(b, b2) {
				t.Fatal("writer output is not deterministic")
			}
			f := parse(t, b)
			if f.Version() != 3 || f.Alignment() != want {
				t.Fatalf("version %d alignment %d", f.Version(), f.Alignment())
			}
			if !reflect.DeepEqual(f.KVs(), kvs) {
				t.Fatalf("kvs differ:\n got %#v\nwant %#v", f.KVs(), kvs)
			}
			if f.DataOffset()%want != 0 {
				t.Errorf("data offset %d not aligned", f.DataOffset())
			}
			if len(f.TensorInfos()) != len(ts) {
				t.Fatalf("%d tensors", len(f.TensorInfos()))
			}
			for i, tt := range ts {
				ti := f.TensorInfos()[i]
				if ti.Name != tt.info.Name || ti.Type != tt.info.Type || len(ti.Dims) != len(tt.info.Dims) {
					t.Fatalf("tensor %d: %+v", i, ti)
				}
				if ti.Offset%want != 0 {
					t.Errorf("%s: offset %d not aligned", ti.Name, ti.Offset)
				}
				raw, err := f.ReadRaw(tt.info.Name)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(raw, tt.data) && len(tt.data)+len(raw) > 0 {
					t.Errorf("%s: raw data differs", ti.Name)
				}
			}
		})
	}
}

func TestSourceReader(t *testing.T) {
	b := writeBytes(t, allKVs(), testTensors())
	var r source.Reader = parse(t, b)
	wantShapes := map[string][]int{
		"scalar": {}, "vec": {5}, "mat.f16": {2, 3}, "mat.bf16": {3, 2},
		"q8": {2, 32}, "q4": {1, 1, 1, 32}, "f64": {1, 1, 3}, "empty": {4, 0},
	}
	for _, tn := range r.Tensors() {
		if !reflect.DeepEqual(tn.Shape, wantShapes[tn.Name]) {
			t.Errorf("%s: shape %v, want %v", tn.Name, tn.Shape, wantShapes[tn.Name])
		}
	}
	q8 := make([]float32, 64)
	for b := 0; b < 2; b++ {
		for i := 0; i < 32; i++ {
			q8[b*32+i] = 0.5 * float32(i-16+b)
		}
	}
	q4 := make([]float32, 32)
	for j := 0; j < 16; j++ {
		q4[j] = 2 * float32(j-8)
		q4[j+16] = 2 * float32(15-j-8)
	}
	for _, tc := range []struct {
		name string
		want []float32
	}{
		{"scalar", []float32{42}}, {"vec", seq(5)}, {"mat.f16", seq(6)}, {"mat.bf16", seq(6)},
		{"q8", q8}, {"q4", q4}, {"f64", []float32{0.25, 1.25, 2.25}}, {"empty", []float32{}},
	} {
		got, err := r.ReadFloat32(tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
	if _, err := r.ReadFloat32("nope"); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("missing tensor: %v", err)
	}
	if md := r.Metadata(); md["str"] != "héllo\x00world" {
		t.Errorf("metadata: %v", md["str"])
	}
}

// specFile assembles a GGUF v3 file byte by byte from the spec (docs/gguf.md),
// independently of the writer: one string KV, one uint32 alignment KV, and a
// 2x3 F32 tensor followed by a 1-D F16 tensor.
func specFile() []byte {
	var b bytes.Buffer
	le := func(v any) { binary.Write(&b, binary.LittleEndian, v) }
	str := func(s string) { le(uint64(len(s))); b.WriteString(s) }
	b.WriteString("GGUF")
	le(uint32(3))
	le(uint64(2)) // tensor_count
	le(uint64(2)) // metadata_kv_count
	str("general.architecture")
	le(uint32(8)) // GGUF_METADATA_VALUE_TYPE_STRING
	str("mamba")
	str("general.alignment")
	le(uint32(4)) // UINT32
	le(uint32(16))
	str("a")
	le(uint32(2))         // n_dimensions
	le([]uint64{3, 2})    // ne: 3 columns, 2 rows
	le(uint32(0))         // GGML_TYPE_F32
	le(uint64(0))         // offset
	str("b")              //
	le(uint32(1))         //
	le([]uint64{2})       //
	le(uint32(1))         // GGML_TYPE_F16
	le(uint64(32))        // 24 bytes of a, padded to 16 -> 32
	for b.Len()%16 != 0 { // header padding
		b.WriteByte(0)
	}
	le([]float32{1, 2, 3, 4, 5, 6})
	b.Write(make([]byte, 8))     // pad a to 32
	le([]uint16{0x3c00, 0xc000}) // 1.0, -2.0
	b.Write(make([]byte, 12))    // pad b to 16
	return b.Bytes()
}

func TestSpecBytes(t *testing.T) {
	spec := specFile()
	f := parse(t, spec)
	if s, _ := f.String(KeyArchitecture); s != "mamba" || f.Alignment() != 16 {
		t.Fatalf("arch %q alignment %d", s, f.Alignment())
	}
	a, err := f.ReadFloat32("a")
	if err != nil || !reflect.DeepEqual(a, []float32{1, 2, 3, 4, 5, 6}) {
		t.Fatalf("a = %v, %v", a, err)
	}
	if sh := f.Tensors()[0].Shape; !reflect.DeepEqual(sh, []int{2, 3}) {
		t.Errorf("a shape %v", sh)
	}
	bv, err := f.ReadFloat32("b")
	if err != nil || !reflect.DeepEqual(bv, []float32{1, -2}) {
		t.Fatalf("b = %v, %v", bv, err)
	}
	// The writer produces exactly these bytes from the same input.
	got := writeBytes(t, []KV{{KeyArchitecture, "mamba"}, {KeyAlignment, uint32(16)}}, []testTensor{
		{TensorInfo{Name: "a", Dims: []uint64{3, 2}, Type: GGMLF32}, f32bytes(1, 2, 3, 4, 5, 6)},
		{TensorInfo{Name: "b", Dims: []uint64{2}, Type: GGMLF16}, []byte{0x00, 0x3c, 0x00, 0xc0}},
	})
	if !bytes.Equal(got, spec) {
		t.Fatalf("writer output differs from the spec bytes:\n got %x\nwant %x", got, spec)
	}
}

func TestVersion2(t *testing.T) {
	b := specFile()
	binary.LittleEndian.PutUint32(b[4:], 2)
	if f := parse(t, b); f.Version() != 2 {
		t.Fatal(f.Version())
	}
}

// header builds the start of a file: magic, version and counts.
func header(version uint32, nt, nkv uint64) *bytes.Buffer {
	var b bytes.Buffer
	b.WriteString("GGUF")
	binary.Write(&b, binary.LittleEndian, version)
	binary.Write(&b, binary.LittleEndian, nt)
	binary.Write(&b, binary.LittleEndian, nkv)
	return &b
}

func TestMalformed(t *testing.T) {
	le := func(b *bytes.Buffer, v ...any) *bytes.Buffer {
		for _, x := range v {
			if s, ok := x.(string); ok {
				binary.Write(b, binary.LittleEndian, uint64(len(s)))
				b.WriteString(s)
				continue
			}
			binary.Write(b, binary.LittleEndian, x)
		}
		return b
	}
	spec := specFile()
	patch := func(off int, v any) []byte {
		b := append([]byte(nil), spec...)
		var w bytes.Buffer
		binary.Write(&w, binary.LittleEndian, v)
		copy(b[off:], w.Bytes())
		return b
	}
	// Offsets into specFile: kv0 key at 24, tensor "a" info after the KVs.
	aInfo := bytes.Index(spec, []byte("\x01\x00\x00\x00\x00\x00\x00\x00a")) + 9
	bInfo := bytes.Index(spec, []byte("\x01\x00\x00\x00\x00\x00\x00\x00b")) + 9
	tensor := func(name string, dims []uint64, typ uint32, off uint64) *bytes.Buffer {
		b := header(3, 1, 0)
		le(b, name, uint32(len(dims)))
		for _, d := range dims {
			le(b, d)
		}
		le(b, typ, off)
		b.Write(make([]byte, 64))
		return b
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "not a GGUF file"},
		{"magic", []byte("GGML\x03\x00\x00\x00"), "not a GGUF file"},
		{"v1", header(1, 0, 0).Bytes(), "version 1"},
		{"v4", header(4, 0, 0).Bytes(), "unsupported GGUF version 4"},
		{"big-endian", header(0x03000000, 0, 0).Bytes(), "big-endian"},
		{"truncated header", spec[:20], "unexpected end"},
		{"truncated kv", spec[:40], "past the end"},
		{"truncated data", spec[:len(spec)-13], "runs past the end"},
		{"too many tensors", header(3, MaxTensors+1, 0).Bytes(), "tensors exceed"},
		{"too many kvs", header(3, 0, MaxKVs+1).Bytes(), "keys exceed"},
		{"huge key", le(header(3, 0, 1), uint64(1)<<40).Bytes(), "exceeds the limit"},
		{"key past end", le(header(3, 0, 1), uint64(100)).Bytes(), "past the end"},
		{"unknown value type", le(header(3, 0, 1), "k", uint32(13)).Bytes(), "unknown value type 13"},
		{"bad bool", le(header(3, 0, 1), "k", uint32(7), uint8(2)).Bytes(), "neither 0 nor 1"},
		{"huge string", le(header(3, 0, 1), "k", uint32(8), uint64(MaxStringLen+1)).Bytes(), "exceeds the limit"},
		{"huge array", le(header(3, 0, 1), "k", uint32(9), uint32(0), uint64(1)<<62).Bytes(), "exceeds the limit"},
		{"array past end", le(header(3, 0, 1), "k", uint32(9), uint32(10), uint64(1000)).Bytes(), "past the end"},
		{"array of unknown", le(header(3, 0, 1), "k", uint32(9), uint32(99), uint64(1)).Bytes(), "unknown type"},
		{"deep nesting", le(header(3, 0, 1), "k", uint32(9), uint32(9), uint64(1), uint32(9), uint64(1), uint32(9), uint64(1), uint32(9), uint64(1), uint32(9), uint64(1), uint32(0), uint64(0)).Bytes(), "nested deeper"},
		{"duplicate key", le(header(3, 0, 2), "k", uint32(0), uint8(1), "k", uint32(0), uint8(1)).Bytes(), "appears twice"},
		{"alignment type", le(header(3, 0, 1), KeyAlignment, uint32(10), uint64(32)).Bytes(), "must be UINT32"},
		{"alignment not pow2", le(header(3, 0, 1), KeyAlignment, uint32(4), uint32(24)).Bytes(), "power of two"},
		{"alignment zero", le(header(3, 0, 1), KeyAlignment, uint32(4), uint32(0)).Bytes(), "power of two"},
		{"too many dims", tensor("t", []uint64{1, 1, 1, 1, 1}, 0, 0).Bytes(), "5 dims"},
		{"unknown ggml type", tensor("t", []uint64{1}, 99, 0).Bytes(), "unsupported ggml type 99"},
		{"partial block", tensor("t", []uint64{16}, 8, 0).Bytes(), "not a multiple of Q8_0's block"},
		{"dims overflow", tensor("t", []uint64{1 << 32, 1 << 32}, 0, 0).Bytes(), "overflow"},
		{"misaligned offset", tensor("t", []uint64{1}, 0, 4).Bytes(), "not a multiple of the alignment"},
		{"offset past end", tensor("t", []uint64{1}, 0, 1<<20).Bytes(), "runs past the end"},
		{"offset overflow", tensor("t", []uint64{8}, 0, math.MaxUint64-31).Bytes(), "runs past the end"},
		{"overlap", patch(bInfo+16, uint64(0)), "overlaps"},
		{"duplicate tensor", patch(bInfo-1, byte('a')), "appears twice"},
		{"dims of a", patch(aInfo+4, uint64(1000)), "runs past the end"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewReader(bytes.NewReader(tc.data), int64(len(tc.data)), "bad.gguf")
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "bad.gguf") {
				t.Fatalf("error %q, want it to contain %q and the file name", err, tc.want)
			}
		})
	}
}

func TestWriterErrors(t *testing.T) {
	good := []TensorInfo{{Name: "a", Dims: []uint64{2}, Type: GGMLF32}, {Name: "b", Dims: []uint64{1}, Type: GGMLF32}}
	for _, tc := range []struct {
		name    string
		kvs     []KV
		tensors []TensorInfo
		want    string
	}{
		{"int value", []KV{{"k", 1}}, nil, "unsupported value type int"},
		{"scalar in []any", []KV{{"k", []any{uint8(1)}}}, nil, "holds arrays only"},
		{"dup key", []KV{{"k", true}, {"k", false}}, nil, "given twice"},
		{"nesting", []KV{{"k", []any{[]any{[]any{[]any{[]uint8{}}}}}}}, nil, "nested deeper"},
		{"empty key", []KV{{"", true}}, nil, "length"},
		{"alignment", []KV{{KeyAlignment, uint32(3)}}, nil, "power of two"},
		{"alignment type", []KV{{KeyAlignment, uint64(32)}}, nil, "power of two"},
		{"long name", nil, []TensorInfo{{Name: strings.Repeat("x", 64), Type: GGMLF32}}, "name must be"},
		{"dup tensor", nil, []TensorInfo{good[0], good[0]}, "given twice"},
		{"bad type", nil, []TensorInfo{{Name: "a", Dims: []uint64{1}, Type: 99}}, "unsupported ggml type"},
		{"dims", nil, []TensorInfo{{Name: "a", Dims: []uint64{1, 1, 1, 1, 1}, Type: GGMLF32}}, "dims"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewWriter(&bytes.Buffer{}, tc.kvs, tc.tensors)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	w, err := NewWriter(&bytes.Buffer{}, nil, good)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteTensor("b", f32bytes(1)); err == nil || !strings.Contains(err.Error(), "out of order") {
		t.Errorf("out of order: %v", err)
	}
	if err := w.WriteTensor("a", f32bytes(1)); err == nil || !strings.Contains(err.Error(), "needs 8") {
		t.Errorf("short data: %v", err)
	}
	if err := w.WriteTensor("a", f32bytes(1, 2)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err == nil || !strings.Contains(err.Error(), "only 1 of 2") {
		t.Errorf("close: %v", err)
	}
}

func TestCreate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.gguf")
	infos := []TensorInfo{{Name: "a", Dims: []uint64{2}, Type: GGMLF32}}
	// A failed write leaves nothing behind.
	w, err := Create(path, nil, infos)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err == nil {
		t.Fatal("close without data succeeded")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("left behind: %v", ents)
	}
	w, err = Create(path, []KV{{"k", "v"}}, infos)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteTensor("a", f32bytes(1, 2)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := f.ReadFloat32("a")
	if err != nil || !reflect.DeepEqual(got, []float32{1, 2}) {
		t.Fatalf("%v %v", got, err)
	}
	p := make([]byte, 4)
	if _, err := f.ReadAt("a", p, 4); err != nil || math.Float32frombits(binary.LittleEndian.Uint32(p)) != 2 {
		t.Fatalf("ReadAt: %v %x", err, p)
	}
	if _, err := f.ReadAt("a", p, 5); err == nil {
		t.Fatal("ReadAt past the tensor succeeded")
	}
	if _, err := Open(filepath.Join(dir, "missing.gguf")); err == nil {
		t.Fatal("opened a missing file")
	}
}

// fuzzSeeds are the writer's files and the hand-assembled spec file.
func fuzzSeeds(t testing.TB) map[string][]byte {
	return map[string][]byte{
		"spec":      specFile(),
		"all_types": writeBytes(t, allKVs(), testTensors()),
		"mamba":     tinyMambaFile(t),
	}
}

// TestFuzzSeeds keeps testdata/fuzz/FuzzOpen in step with the writer
// (-update rewrites it).
func TestFuzzSeeds(t *testing.T) {
	golden.CheckSeeds(t, "FuzzOpen", fuzzSeeds(t), *update, "go test ./convert/gguf -run TestFuzzSeeds -update")
}

func FuzzOpen(f *testing.F) {
	for _, b := range fuzzSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := NewReader(bytes.NewReader(b), int64(len(b)), "fuzz.gguf")
		if err != nil {
			return
		}
		for _, ti := range file.TensorInfos() {
			raw, err := file.ReadRaw(ti.Name)
			if err != nil {
				t.Fatalf("%s: %v", ti.Name, err)
			}
			if uint64(len(raw)) != ti.Size {
				t.Fatalf("%s: %d bytes, size %d", ti.Name, len(raw), ti.Size)
			}
			if decodable(ti.Type) {
				if _, err := file.ReadFloat32(ti.Name); err != nil {
					t.Fatalf("%s: %v", ti.Name, err)
				}
			}
		}
		md := file.Metadata()
		ConfigFromKV(md, file.Tensors())
		TokenizerFromKV(md)
		// What parses re-encodes to a file that parses the same.
		infos := file.TensorInfos()
		w, err := NewWriter(&bytes.Buffer{}, file.KVs(), infos)
		if err != nil {
			if strings.Contains(err.Error(), "name must be") || strings.Contains(err.Error(), "length must be") || strings.Contains(err.Error(), "alignment") {
				return
			}
			t.Fatalf("re-encode: %v", err)
		}
		_ = w
	})
}
