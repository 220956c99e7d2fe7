package onnxinit

import (
	"encoding/binary"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	onnx "github.com/owulveryck/onnx-go"

	"github.com/memmamba/memmamba/convert/source"
	"github.com/memmamba/memmamba/internal/golden"
)

var update = flag.Bool("update", false, "rewrite the fuzz seeds under testdata/fuzz")

// expected is testdata/expected.json, written by make_testdata.py with numpy.
type expectedTensor struct {
	DType  int64     `json:"dtype"`
	Shape  []int     `json:"shape"`
	Values []float64 `json:"values"`
}

func loadExpected(t *testing.T) map[string]map[string]expectedTensor {
	b, err := os.ReadFile("testdata/expected.json")
	if err != nil {
		t.Fatal(err)
	}
	var e map[string]map[string]expectedTensor
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestAgainstPython(t *testing.T) {
	exp := loadExpected(t)
	for _, file := range []string{"tiny.onnx", "tiny_folded.onnx"} {
		t.Run(file, func(t *testing.T) {
			f, err := Open(filepath.Join("testdata", file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			want := exp[file]
			if len(f.Tensors()) != len(want) {
				t.Fatalf("%d initializers, want %d", len(f.Tensors()), len(want))
			}
			for _, tn := range f.Tensors() {
				w, ok := want[tn.Name]
				if !ok {
					t.Fatalf("unexpected initializer %q", tn.Name)
				}
				if !reflect.DeepEqual(tn.Shape, w.Shape) || tn.DType != elems[w.DType].dtype {
					t.Errorf("%s: %v %s, want %v %s", tn.Name, tn.Shape, tn.DType, w.Shape, typeName(w.DType))
				}
				got, err := f.ReadFloat32(tn.Name)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(w.Values) || len(got) != tn.NumElements() {
					t.Fatalf("%s: %d values, want %d", tn.Name, len(got), len(w.Values))
				}
				for i := range got {
					if got[i] != float32(w.Values[i]) {
						t.Fatalf("%s[%d] = %v, want %v", tn.Name, i, got[i], float32(w.Values[i]))
					}
				}
				raw, err := f.ReadRaw(tn.Name)
				if err != nil || len(raw) != tn.NumElements()*elems[w.DType].size {
					t.Fatalf("%s: raw %d bytes, %v", tn.Name, len(raw), err)
				}
			}
		})
	}
}

func TestNames(t *testing.T) {
	f, err := Open("testdata/tiny_folded.onnx")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var names []string
	for _, tn := range f.Tensors() {
		names = append(names, tn.Name)
	}
	// Constant folding stores lin.weight transposed under a generated name;
	// the reader reports it as stored.
	if !strings.Contains(strings.Join(names, " "), "onnx::MatMul_") || strings.Contains(strings.Join(names, " "), "lin.weight") {
		t.Errorf("names %v", names)
	}
	g, err := Open("testdata/tiny.onnx")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	md := g.Metadata()
	if md["purpose"] != "onnxinit test" || md["onnx.producer_name"] != "pytorch" {
		t.Errorf("metadata %v", md)
	}
}

// TestOnnxGo decodes every initializer that onnx-go knows (float, double,
// int64) with its public onnx.NewTensor and compares.
func TestOnnxGo(t *testing.T) {
	checked := 0
	for _, file := range []string{"tiny.onnx", "tiny_folded.onnx"} {
		f, err := Open(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		for _, tn := range f.Tensors() {
			if tn.DType != source.F32 && tn.DType != source.F64 && tn.DType != source.I64 {
				continue
			}
			msg, _ := f.tensorProto(tn.Name)
			ot, err := onnx.NewTensor(msg)
			if err != nil {
				t.Fatalf("%s: onnx-go: %v", tn.Name, err)
			}
			if len(tn.Shape) > 0 && !reflect.DeepEqual([]int(ot.Shape()), tn.Shape) {
				t.Errorf("%s: onnx-go shape %v, ours %v", tn.Name, ot.Shape(), tn.Shape)
			}
			got, err := f.ReadFloat32(tn.Name)
			if err != nil {
				t.Fatal(err)
			}
			var want []float32
			switch d := ot.Data().(type) {
			case []float32:
				want = d
			case float32:
				want = []float32{d}
			case []float64:
				for _, v := range d {
					want = append(want, float32(v))
				}
			case []int64:
				for _, v := range d {
					want = append(want, float32(v))
				}
			default:
				t.Fatalf("%s: onnx-go data %T", tn.Name, d)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: ours %v, onnx-go %v", tn.Name, got, want)
			}
			checked++
		}
		f.Close()
	}
	if checked < 10 {
		t.Fatalf("only %d tensors checked", checked)
	}
}

func TestExternalRefused(t *testing.T) {
	_, err := Open("testdata/external.onnx")
	if err == nil || !strings.Contains(err.Error(), "external data") || !strings.Contains(err.Error(), `"D"`) || !strings.Contains(err.Error(), "external.onnx") {
		t.Fatalf("error %v", err)
	}
}

// pb builds protobuf messages for the malformed-input tests.
type pb []byte

func (b pb) tag(num, wire int) pb { return binary.AppendUvarint(b, uint64(num<<3|wire)) }
func (b pb) varint(num int, v uint64) pb {
	return binary.AppendUvarint(b.tag(num, wireVarint), v)
}
func (b pb) bytes(num int, d []byte) pb {
	b = binary.AppendUvarint(b.tag(num, wireBytes), uint64(len(d)))
	return append(b, d...)
}
func (b pb) str(num int, s string) pb { return b.bytes(num, []byte(s)) }

func model(inits ...pb) []byte {
	var g pb
	for _, in := range inits {
		g = g.bytes(5, in)
	}
	return pb(nil).varint(1, 8).str(2, "test").bytes(7, g)
}

func f32(v ...float32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

func TestWireForms(t *testing.T) {
	neg := uint64(math.MaxUint64) // -1 as a varint
	// float_data unpacked (one fixed32 field per element), dims unpacked.
	unpacked := pb(nil).str(tpName, "unpacked").varint(tpDataType, typeFloat).varint(tpDims, 2)
	unpacked = binary.LittleEndian.AppendUint32(unpacked.tag(tpFloatData, wireFixed32), math.Float32bits(1.5))
	unpacked = binary.LittleEndian.AppendUint32(unpacked.tag(tpFloatData, wireFixed32), math.Float32bits(-2))
	i64 := pb(nil).str(tpName, "i64").varint(tpDataType, typeInt64).bytes(tpDims, binary.AppendUvarint(nil, 3)).
		varint(tpInt64Data, neg).bytes(tpInt64Data, binary.AppendUvarint(binary.AppendUvarint(nil, 5), 1<<40))
	i32 := pb(nil).str(tpName, "i8").varint(tpDataType, typeInt8).varint(tpDims, 2).
		varint(tpInt32Data, neg).varint(tpInt32Data, 127)
	boolT := pb(nil).str(tpName, "bool").varint(tpDataType, typeBool).varint(tpDims, 3).bytes(tpRawData, []byte{0, 1, 1})
	// raw_data wins over a typed field that is also present.
	both := pb(nil).str(tpName, "both").varint(tpDataType, typeFloat).varint(tpDims, 1).
		bytes(tpFloatData, f32(9)).bytes(tpRawData, f32(3))
	empty := pb(nil).str(tpName, "empty").varint(tpDataType, typeFloat).varint(tpDims, 0).varint(tpDims, 1<<30)
	str := pb(nil).str(tpName, "strings").varint(tpDataType, typeString).varint(tpDims, 1).bytes(6, []byte("x"))
	f, err := Parse(model(unpacked, i64, i32, boolT, both, empty, str), "mem.onnx")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]float32{
		"unpacked": {1.5, -2}, "i64": {-1, 5, 1 << 40}, "i8": {-1, 127}, "bool": {0, 1, 1}, "both": {3}, "empty": {},
	} {
		got, err := f.ReadFloat32(name)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %v %v, want %v", name, got, err, want)
		}
	}
	if raw, err := f.ReadRaw("i8"); err != nil || !reflect.DeepEqual(raw, []byte{0xff, 0x7f}) {
		t.Errorf("raw i8 %x %v", raw, err)
	}
	if _, err := f.ReadFloat32("strings"); err == nil || !strings.Contains(err.Error(), "STRING is not supported") {
		t.Errorf("strings: %v", err)
	}
	if got := f.Tensors()[6].DType; got != "ONNX:STRING" {
		t.Errorf("dtype %q", got)
	}
	if _, err := f.ReadFloat32("missing"); err == nil || !strings.Contains(err.Error(), `"missing"`) {
		t.Errorf("missing: %v", err)
	}
}

func TestMalformed(t *testing.T) {
	ok := func(name string) pb {
		return pb(nil).str(tpName, name).varint(tpDataType, typeFloat).varint(tpDims, 2).bytes(tpRawData, f32(1, 2))
	}
	base := pb(nil).varint(tpDataType, typeFloat).str(tpName, "t")
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "no graph"},
		{"garbage", []byte{0xff, 0xff, 0xff}, "not a valid ONNX model"},
		{"truncated", model(ok("a"))[:20], "not a valid ONNX model"},
		{"two graphs", append(model(ok("a")), model(ok("b"))...), "more than one graph"},
		{"duplicate", model(ok("a"), ok("a")), `"a" appears twice`},
		{"no name", model(pb(nil).varint(tpDataType, typeFloat).bytes(tpRawData, f32(1))), "without a name"},
		{"no type", model(pb(nil).str(tpName, "t").bytes(tpRawData, f32(1))), "undefined"},
		{"negative dim", model(base.varint(tpDims, math.MaxUint64).bytes(tpRawData, f32(1))), "negative"},
		{"too many dims", model(base.bytes(tpDims, make([]byte, 9)).bytes(tpRawData, f32(1))), "more than 8 dims"},
		{"huge dims", model(base.varint(tpDims, 1<<30).varint(tpDims, 1<<30).bytes(tpRawData, f32(1))), "more elements"},
		{"count", model(base.varint(tpDims, 3).bytes(tpRawData, f32(1, 2))), "holds 2 FLOAT values, its dims [3] call for 3"},
		{"ragged raw", model(base.varint(tpDims, 1).bytes(tpRawData, []byte{1, 2, 3, 4, 5})), "not a whole number"},
		{"ragged packed", model(base.varint(tpDims, 1).bytes(tpFloatData, []byte{1, 2, 3})), "not whole 4-byte"},
		{"segment", model(base.bytes(tpSegment, nil)), "segmented"},
		{"external", model(base.varint(tpDataLocation, 1)), "external data"},
		{"sparse", pb(nil).bytes(7, pb(nil).bytes(15, nil)), "sparse initializers"},
		{"bad wire", model(pb(nil).tag(tpName, 3)), "unsupported wire type"},
		{"name wire", model(pb(nil).varint(tpName, 1)), "name has wire type"},
		{"field zero", model(pb(nil).varint(0, 1)), "field number 0"},
		{"bad varint", model(base.bytes(tpInt64Data, []byte{0x80})), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.data, "bad.onnx")
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "bad.onnx") {
				t.Fatalf("error %q, want it to contain %q and the file name", err, tc.want)
			}
		})
	}
}

func fuzzSeeds(t testing.TB) map[string][]byte {
	seeds := map[string][]byte{}
	for _, n := range []string{"tiny.onnx", "tiny_folded.onnx", "external.onnx"} {
		b, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			t.Fatal(err)
		}
		seeds[strings.TrimSuffix(n, ".onnx")] = b
	}
	return seeds
}

// TestFuzzSeeds keeps testdata/fuzz/FuzzParse in step with the test files
// (-update rewrites it).
func TestFuzzSeeds(t *testing.T) {
	golden.CheckSeeds(t, "FuzzParse", fuzzSeeds(t), *update, "go test ./convert/onnxinit -run TestFuzzSeeds -update")
}

func FuzzParse(f *testing.F) {
	for _, b := range fuzzSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := Parse(b, "fuzz.onnx")
		if err != nil {
			return
		}
		file.Metadata()
		for _, tn := range file.Tensors() {
			if _, ok := elems[int64(0)]; ok {
				t.Fatal("type 0 readable")
			}
			v, err := file.ReadFloat32(tn.Name)
			if strings.HasPrefix(string(tn.DType), "ONNX:") {
				if err == nil {
					t.Fatalf("%s: read an unsupported type", tn.Name)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s: indexed but unreadable: %v", tn.Name, err)
			}
			if len(v) != tn.NumElements() {
				t.Fatalf("%s: %d values for shape %v", tn.Name, len(v), tn.Shape)
			}
			raw, err := file.ReadRaw(tn.Name)
			if err != nil || len(raw)%max(tn.NumElements(), 1) != 0 {
				t.Fatalf("%s: raw %d bytes: %v", tn.Name, len(raw), err)
			}
		}
	})
}
