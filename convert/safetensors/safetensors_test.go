package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/memmamba/memmamba/convert/source"
)

// fixture is a small checkpoint with every dtype.
func fixture() []NamedTensor {
	i64 := make([]byte, 8*3)
	for i := range 3 {
		binary.LittleEndian.PutUint64(i64[8*i:], uint64(int64(i-1)))
	}
	f64 := make([]byte, 8*2)
	binary.LittleEndian.PutUint64(f64, math.Float64bits(1.5))
	binary.LittleEndian.PutUint64(f64[8:], math.Float64bits(-1e-3))
	return []NamedTensor{
		F32("b.weight", []int{2, 3}, []float32{1, 2, 3, 4, 5, 6}),
		F16("a.half", []int{3}, []float32{0.5, -2, 65504}),
		BF16("a.bf", []int{2}, []float32{1, -3}),
		{Name: "pos", DType: source.I64, Shape: []int{3}, Data: i64},
		{Name: "d", DType: source.F64, Shape: []int{2}, Data: f64},
		{Name: "mask", DType: source.Bool, Shape: []int{2}, Data: []byte{1, 0}},
		{Name: "q", DType: source.I8, Shape: []int{1}, Data: []byte{0xff}},
		{Name: "u", DType: source.U8, Shape: []int{}, Data: []byte{7}},
		{Name: "i", DType: source.I32, Shape: []int{1}, Data: []byte{1, 0, 0, 0}},
		{Name: "empty", DType: source.F32, Shape: []int{0, 4}, Data: nil},
	}
}

func writeFixture(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "model.safetensors")
	if err := Write(path, fixture(), map[string]string{"format": "pt", "b<&>": "x"}); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRoundTrip(t *testing.T) {
	path := writeFixture(t)
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := f.Metadata(); !reflect.DeepEqual(got, map[string]any{"format": "pt", "b<&>": "x"}) {
		t.Errorf("metadata = %v", got)
	}
	byName := map[string]NamedTensor{}
	for _, nt := range fixture() {
		byName[nt.Name] = nt
	}
	if len(f.Tensors()) != len(byName) {
		t.Fatalf("got %d tensors, want %d", len(f.Tensors()), len(byName))
	}
	for _, ti := range f.Tensors() {
		want := byName[ti.Name]
		if ti.DType != want.DType || !reflect.DeepEqual(ti.Shape, append([]int{}, want.Shape...)) {
			t.Errorf("%s: got %v, want %v %v", ti.Name, ti, want.DType, want.Shape)
		}
		raw, err := f.ReadRaw(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(raw, want.Data) {
			t.Errorf("%s: raw %x, want %x", ti.Name, raw, want.Data)
		}
	}
	cases := map[string][]float32{
		"b.weight": {1, 2, 3, 4, 5, 6},
		"a.half":   {0.5, -2, 65504},
		"a.bf":     {1, -3},
		"d":        {1.5, float32(-1e-3)},
		"empty":    {},
	}
	for name, want := range cases {
		got, err := f.ReadFloat32(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %v, want %v", name, got, want)
		}
	}
	for _, name := range []string{"pos", "mask", "q", "u", "i"} {
		_, err := f.ReadFloat32(name)
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", name)) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: ReadFloat32 error %v, want one naming the file and tensor", name, err)
		}
	}
	if _, err := f.ReadRaw("nope"); err == nil {
		t.Error("ReadRaw of a missing tensor succeeded")
	}
}

// TestLayout checks the writer's layout against the Python library's:
// header padded to 8, __metadata__ first, tensors by descending dtype then
// name, offsets contiguous, every tensor aligned to its element size.
func TestLayout(t *testing.T) {
	data, err := Encode(fixture(), map[string]string{"format": "pt"})
	if err != nil {
		t.Fatal(err)
	}
	hlen := binary.LittleEndian.Uint64(data)
	if hlen%8 != 0 {
		t.Errorf("header length %d is not a multiple of 8", hlen)
	}
	header := string(data[8 : 8+hlen])
	if !strings.HasPrefix(header, `{"__metadata__":{"format":"pt"},"pos":{"dtype":"I64","shape":[3],"data_offsets":[0,24]},"d":{"dtype":"F64"`) {
		t.Errorf("header starts %q", header[:min(len(header), 160)])
	}
	f, err := NewReader(bytes.NewReader(data), int64(len(data)), "mem")
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	off := int64(0)
	for _, ti := range f.Tensors() {
		order = append(order, ti.Name)
		e := f.byName[ti.Name]
		if e.begin != off {
			t.Errorf("%s starts at %d, want %d", ti.Name, e.begin, off)
		}
		if (f.dataStart+e.begin)%int64(dtypeSize[ti.DType]) != 0 {
			t.Errorf("%s is misaligned", ti.Name)
		}
		off = e.end
	}
	want := []string{"pos", "d", "b.weight", "empty", "i", "a.bf", "a.half", "q", "u", "mask"}
	if !reflect.DeepEqual(order, want) {
		t.Errorf("order %v, want %v", order, want)
	}
}

func TestEncodeRejects(t *testing.T) {
	cases := map[string][]NamedTensor{
		"twice":     {F32("a", []int{1}, []float32{1}), F32("a", []int{1}, []float32{1})},
		"reserved":  {F32("__metadata__", []int{1}, []float32{1})},
		"dtype":     {{Name: "a", DType: "F8", Shape: []int{1}, Data: []byte{1}}},
		"size":      {{Name: "a", DType: source.F32, Shape: []int{2}, Data: []byte{1, 2, 3, 4}}},
		"negative":  {{Name: "a", DType: source.F32, Shape: []int{-1}, Data: nil}},
		"rank":      {{Name: "a", DType: source.U8, Shape: []int{1, 1, 1, 1, 1, 1, 1, 1, 1}, Data: []byte{1}}},
		"overflows": {{Name: "a", DType: source.U8, Shape: []int{1 << 40, 1 << 40}, Data: nil}},
	}
	for name, ts := range cases {
		if _, err := Encode(ts, nil); err == nil {
			t.Errorf("%s: Encode succeeded", name)
		}
	}
}

// build makes a file from a raw header string and data.
func build(header string, data []byte) []byte {
	b := make([]byte, 8, 8+len(header)+len(data))
	binary.LittleEndian.PutUint64(b, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

func TestRejects(t *testing.T) {
	huge := make([]byte, 8)
	binary.LittleEndian.PutUint64(huge, 1<<62)
	long := make([]byte, 16)
	binary.LittleEndian.PutUint64(long, 9)
	cases := []struct {
		name, want string
		file       []byte
	}{
		{"short", "too short", []byte{1, 2}},
		{"huge header", "exceeds the", huge},
		{"header past end", "exceeds the file", long},
		{"not json", "not JSON", build("xx", nil)},
		{"array", "not a JSON object", build("[1]", nil)},
		{"trailing", "trailing", build(`{} x`, nil)},
		{"dup", `"a" appears twice`, build(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, []byte{1, 2})},
		{"dtype", `unsupported dtype "F8_E4M3"`, build(`{"a":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}`, []byte{1})},
		{"missing", "lacks", build(`{"a":{"dtype":"U8","shape":[1]}}`, []byte{1})},
		{"rank", "rank 9", build(`{"a":{"dtype":"U8","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,1]}}`, []byte{1})},
		{"negative dim", "negative", build(`{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}}`, nil)},
		{"overflow", "overflows", build(`{"a":{"dtype":"U8","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,0]}}`, nil)},
		{"overflow size", "overflows", build(`{"a":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}}`, nil)},
		{"span", "span 2 bytes but", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,2]}}`, []byte{1, 2})},
		{"past end", "run past", build(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}`, []byte{1})},
		{"backwards", "backwards", build(`{"a":{"dtype":"U8","shape":[0],"data_offsets":[2,1]}}`, []byte{1, 2})},
		{"offsets", "has 3 values", build(`{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0,0]}}`, nil)},
		{"negative offset", `tensor "a"`, build(`{"a":{"dtype":"U8","shape":[0],"data_offsets":[-1,0]}}`, nil)},
		{"overlap", `overlaps tensor`, build(`{"a":{"dtype":"F16","shape":[1],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, []byte{1, 2})},
		{"metadata", "__metadata__", build(`{"__metadata__":{"a":1}}`, nil)},
	}
	for _, c := range cases {
		_, err := NewReader(bytes.NewReader(c.file), int64(len(c.file)), "bad.safetensors")
		if err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "bad.safetensors: ") {
			t.Errorf("%s: error %q, want it to name the file and contain %q", c.name, err, c.want)
		}
	}
}

func TestAcceptsGapsAndEmpty(t *testing.T) {
	// Not what the writer makes, but valid: a gap between tensors, two
	// empty tensors at the same offset, unknown fields, no tensors at all.
	for _, h := range []string{
		`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"extra":true},"z":{"dtype":"U8","shape":[1],"data_offsets":[2,3]},"e1":{"dtype":"F32","shape":[0],"data_offsets":[1,1]},"e2":{"dtype":"F32","shape":[0],"data_offsets":[1,1]}}`,
		`{}`,
	} {
		file := build(h, []byte{1, 9, 2})
		if _, err := NewReader(bytes.NewReader(file), int64(len(file)), "ok"); err != nil {
			t.Errorf("%s: %v", h, err)
		}
	}
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSharded(t *testing.T) {
	dir := t.TempDir()
	s1 := []NamedTensor{F32("a", []int{2}, []float32{1, 2}), F32("b", []int{1}, []float32{3})}
	s2 := []NamedTensor{F16("c", []int{1}, []float32{4})}
	if err := Write(filepath.Join(dir, "model-00001-of-00002.safetensors"), s1, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	if err := Write(filepath.Join(dir, "model-00002-of-00002.safetensors"), s2, nil); err != nil {
		t.Fatal(err)
	}
	index := filepath.Join(dir, "model.safetensors.index.json")
	wm := map[string]string{"a": "model-00001-of-00002.safetensors", "b": "model-00001-of-00002.safetensors", "c": "model-00002-of-00002.safetensors"}
	writeJSON(t, index, map[string]any{"metadata": map[string]any{"total_size": 14}, "weight_map": wm})
	s, err := OpenIndex(index)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ti := range s.Tensors() {
		names = append(names, ti.Name)
	}
	if !reflect.DeepEqual(names, []string{"a", "b", "c"}) {
		t.Errorf("tensors %v", names)
	}
	if v, err := s.ReadFloat32("c"); err != nil || !reflect.DeepEqual(v, []float32{4}) {
		t.Errorf("c = %v, %v", v, err)
	}
	if v, err := s.ReadFloat32("a"); err != nil || !reflect.DeepEqual(v, []float32{1, 2}) {
		t.Errorf("a = %v, %v", v, err)
	}
	if _, err := s.ReadRaw("zz"); err == nil || !strings.Contains(err.Error(), index) {
		t.Errorf("ReadRaw(zz) error %v", err)
	}
	if m := s.Metadata(); m["format"] != "pt" || m["total_size"] != float64(14) {
		t.Errorf("metadata %v", m)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	bad := []struct {
		name  string
		index string
		want  string
	}{
		{"missing shard", `{"weight_map":{"a":"nope.safetensors"}}`, "shard nope.safetensors"},
		{"escape", `{"weight_map":{"a":"../x.safetensors"}}`, "not a plain relative path"},
		{"absolute", `{"weight_map":{"a":"/etc/passwd"}}`, "not a plain relative path"},
		{"wrong shard", `{"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00001-of-00002.safetensors","c":"model-00001-of-00002.safetensors"}}`, `"c": the index maps it to shard model-00001`},
		{"unlisted", `{"weight_map":{"a":"model-00001-of-00002.safetensors"}}`, `holds tensor "b", which the index does not list`},
		{"elsewhere", `{"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors","c":"model-00002-of-00002.safetensors"}}`, `holds tensor "b", which the index maps to shard model-00002`},
		{"dup", `{"weight_map":{"a":"x","a":"y"}}`, `"a" is listed twice`},
		{"no map", `{"metadata":{}}`, "no weight_map"},
		{"empty", `{"weight_map":{}}`, "empty"},
		{"not json", `{`, "not a safetensors index"},
	}
	for _, c := range bad {
		p := filepath.Join(dir, "bad.index.json")
		if err := os.WriteFile(p, []byte(c.index), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := OpenIndex(p)
		if err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), p+": ") {
			t.Errorf("%s: error %q, want it to name the index and contain %q", c.name, err, c.want)
		}
	}
}

// TestSeedFiles checks that the committed seed fixtures still parse.
func TestSeedFiles(t *testing.T) {
	paths, _ := filepath.Glob("testdata/*.safetensors")
	if len(paths) == 0 {
		t.Skip("no testdata/*.safetensors")
	}
	for _, p := range paths {
		f, err := Open(p)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		for _, ti := range f.Tensors() {
			if _, err := f.ReadRaw(ti.Name); err != nil {
				t.Error(err)
			}
		}
		f.Close()
	}
}

func FuzzSafetensors(f *testing.F) {
	data, err := Encode(fixture(), map[string]string{"format": "pt"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	paths, _ := filepath.Glob("testdata/*.safetensors")
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sf, err := NewReader(bytes.NewReader(data), int64(len(data)), "fuzz")
		if err != nil {
			return
		}
		total := int64(0)
		for _, ti := range sf.Tensors() {
			raw, err := sf.ReadRaw(ti.Name)
			if err != nil {
				t.Fatalf("%s: validated tensor unreadable: %v", ti.Name, err)
			}
			total += int64(len(raw))
			if n := ti.NumElements() * DTypeSize(ti.DType); n != len(raw) {
				t.Fatalf("%s: %d bytes for %v", ti.Name, len(raw), ti)
			}
			if _, err := sf.ReadFloat32(ti.Name); err != nil && ti.DType == source.F32 {
				t.Fatal(err)
			}
		}
		if total > int64(len(data)) {
			t.Fatalf("tensors total %d bytes in a %d-byte file", total, len(data))
		}
	})
}
