package torchzip

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/memmamba/memmamba/convert/source"
)

// expectedTensor is one tensor of testdata/expected.json, written by
// testdata/gen.py from the tensors torch saved.
type expectedTensor struct {
	DType  string    `json:"dtype"`
	Shape  []int     `json:"shape"`
	Values []float64 `json:"values"`
}

var torchDType = map[string]source.DType{
	"float32": source.F32, "float16": source.F16, "bfloat16": source.BF16, "float64": source.F64,
	"int64": source.I64, "int32": source.I32, "int8": source.I8, "uint8": source.U8, "bool": source.Bool,
}

func loadExpected(t *testing.T) map[string]map[string]expectedTensor {
	t.Helper()
	b, err := os.ReadFile("testdata/expected.json")
	if err != nil {
		t.Fatal(err)
	}
	var exp map[string]map[string]expectedTensor
	if err := json.Unmarshal(b, &exp); err != nil {
		t.Fatal(err)
	}
	return exp
}

// decodeInts decodes raw little-endian integers (or bools) as float64.
func decodeInts(dt source.DType, raw []byte) []float64 {
	var out []float64
	switch dt {
	case source.I64:
		for i := 0; i+8 <= len(raw); i += 8 {
			out = append(out, float64(int64(binary.LittleEndian.Uint64(raw[i:]))))
		}
	case source.I32:
		for i := 0; i+4 <= len(raw); i += 4 {
			out = append(out, float64(int32(binary.LittleEndian.Uint32(raw[i:]))))
		}
	case source.I8:
		for _, b := range raw {
			out = append(out, float64(int8(b)))
		}
	case source.U8, source.Bool:
		for _, b := range raw {
			out = append(out, float64(b))
		}
	}
	return out
}

// TestRealFiles reads every file torch wrote and compares each tensor with
// the values torch reported.
func TestRealFiles(t *testing.T) {
	for file, tensors := range loadExpected(t) {
		t.Run(file, func(t *testing.T) {
			path := filepath.Join("testdata", file)
			f, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var got, want []string
			for _, ti := range f.Tensors() {
				got = append(got, ti.Name)
			}
			for name := range tensors {
				want = append(want, name)
			}
			sort.Strings(got)
			sort.Strings(want)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("tensors %v, want %v", got, want)
			}
			for _, ti := range f.Tensors() {
				exp := tensors[ti.Name]
				if ti.DType != torchDType[exp.DType] || !reflect.DeepEqual(append([]int{}, ti.Shape...), append([]int{}, exp.Shape...)) {
					t.Errorf("%s: %v, want %s %v", ti.Name, ti, exp.DType, exp.Shape)
					continue
				}
				raw, err := f.ReadRaw(ti.Name)
				if err != nil {
					t.Fatal(err)
				}
				var vals []float64
				switch ti.DType {
				case source.F32, source.F16, source.BF16, source.F64:
					v, err := f.ReadFloat32(ti.Name)
					if err != nil {
						t.Fatal(err)
					}
					for _, x := range v {
						vals = append(vals, float64(x))
					}
					for i := range exp.Values {
						exp.Values[i] = float64(float32(exp.Values[i]))
					}
				default:
					vals = decodeInts(ti.DType, raw)
					if _, err := f.ReadFloat32(ti.Name); err == nil || !strings.Contains(err.Error(), ti.Name) {
						t.Errorf("%s: ReadFloat32 of %s gave %v, want a refusal naming it", ti.Name, ti.DType, err)
					}
				}
				if len(vals) != len(exp.Values) {
					t.Errorf("%s: %d values, want %d", ti.Name, len(vals), len(exp.Values))
					continue
				}
				for i := range vals {
					if vals[i] != exp.Values[i] {
						t.Errorf("%s[%d] = %v, want %v", ti.Name, i, vals[i], exp.Values[i])
						break
					}
				}
			}
		})
	}
}

func TestMetadata(t *testing.T) {
	f, err := Open("testdata/wrapped.pt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := f.Metadata()
	want := map[string]any{"epoch": int64(3), "name": "run1", "lr": 0.5, "optimizer.state.0.step": int64(1)}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("metadata[%q] = %v (%T), want %v", k, m[k], m[k], v)
		}
	}
}

func TestRefused(t *testing.T) {
	cases := map[string]string{
		"legacy.pt":               "legacy torch.save format (saved with _use_new_zipfile_serialization=False",
		"bigendian.pt":            "big-endian",
		"evil_os_system.pt":       `pickle asks for global "os.system", which a state_dict never needs; refusing`,
		"evil_eval.pt":            `pickle asks for global "builtins.eval"`,
		"evil_popen.pt":           `pickle asks for global "subprocess.Popen"`,
		"evil_load_from_bytes.pt": `pickle asks for global "torch.storage._load_from_bytes"`,
		"deep_marks.pt":           "MARKs nested deeper than 256",
		"deep_tuples.pt":          "nested deeper than 100",
	}
	for file, want := range cases {
		path := filepath.Join("testdata", file)
		_, err := Open(path)
		if err == nil {
			t.Errorf("%s: accepted", file)
			continue
		}
		if !strings.HasPrefix(err.Error(), path+": ") || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %q, want it to name the file and contain %q", file, err, want)
		}
	}
}

// zipWith builds a torch.save-shaped zip from entries (name -> data),
// storing every entry uncompressed unless its name is in deflate.
func zipWith(t testing.TB, entries map[string][]byte, deflate ...string) []byte {
	var buf bytes.Buffer
	z := zip.NewWriter(&buf)
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		method := zip.Store
		for _, d := range deflate {
			if d == n {
				method = zip.Deflate
			}
		}
		w, err := z.CreateHeader(&zip.FileHeader{Name: n, Method: method})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(entries[n])
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// tensorPickle is the pickle of {"x": tensor} for a FloatStorage "0" of
// numel elements viewed with the given offset, size and stride.
func tensorPickle(numel, offset int, size, stride []int) []byte {
	var p bytes.Buffer
	p.WriteString("\x80\x02}X\x01\x00\x00\x00x")
	p.WriteString("ctorch._utils\n_rebuild_tensor_v2\n(")
	p.WriteString("(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpu")
	p.Write(binInt(numel))
	p.WriteString("tQ")
	p.Write(binInt(offset))
	for _, v := range [][]int{size, stride} {
		p.WriteByte('(')
		for _, d := range v {
			p.Write(binInt(d))
		}
		p.WriteByte('t')
	}
	p.WriteString("\x89ccollections\nOrderedDict\n)RtRs.")
	return p.Bytes()
}

func binInt(n int) []byte {
	b := []byte{'J', 0, 0, 0, 0}
	binary.LittleEndian.PutUint32(b[1:], uint32(int32(n)))
	return b
}

func f32bytes(v ...float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func TestSynthetic(t *testing.T) {
	six := f32bytes(0, 1, 2, 3, 4, 5)
	cases := []struct {
		name    string
		entries map[string][]byte
		deflate []string
		want    string    // error substring, or "" for success
		values  []float32 // x's values on success
	}{
		{"ok", map[string][]byte{"a/data.pkl": tensorPickle(6, 0, []int{2, 3}, []int{3, 1}), "a/data/0": six}, nil, "", []float32{0, 1, 2, 3, 4, 5}},
		{"transposed", map[string][]byte{"a/data.pkl": tensorPickle(6, 0, []int{3, 2}, []int{1, 3}), "a/data/0": six}, nil, "", []float32{0, 3, 1, 4, 2, 5}},
		{"offset", map[string][]byte{"a/data.pkl": tensorPickle(6, 4, []int{2}, []int{1}), "a/data/0": six}, nil, "", []float32{4, 5}},
		{"broadcast", map[string][]byte{"a/data.pkl": tensorPickle(6, 1, []int{2, 2}, []int{0, 1}), "a/data/0": six}, nil, "", []float32{1, 2, 1, 2}},
		{"deflated pickle", map[string][]byte{"a/data.pkl": tensorPickle(6, 0, []int{6}, []int{1}), "a/data/0": six}, []string{"a/data.pkl"}, "", []float32{0, 1, 2, 3, 4, 5}},
		{"past storage", map[string][]byte{"a/data.pkl": tensorPickle(6, 4, []int{3}, []int{1}), "a/data/0": six}, nil, "reaches element 6 of a 6-element storage", nil},
		{"stride past storage", map[string][]byte{"a/data.pkl": tensorPickle(6, 0, []int{2, 2}, []int{5, 1}), "a/data/0": six}, nil, "reaches element", nil},
		{"negative stride", map[string][]byte{"a/data.pkl": tensorPickle(6, 5, []int{2}, []int{-1}), "a/data/0": six}, nil, "negative", nil},
		{"rank mismatch", map[string][]byte{"a/data.pkl": tensorPickle(6, 0, []int{2, 3}, []int{1}), "a/data/0": six}, nil, "differ in rank", nil},
		{"storage too small", map[string][]byte{"a/data.pkl": tensorPickle(7, 0, []int{2}, []int{1}), "a/data/0": six}, nil, "do not fit in its 24-byte entry", nil},
		{"missing storage", map[string][]byte{"a/data.pkl": tensorPickle(6, 0, []int{2}, []int{1})}, nil, "no zip entry a/data/0", nil},
		{"compressed storage", map[string][]byte{"a/data.pkl": tensorPickle(6, 0, []int{2}, []int{1}), "a/data/0": six}, []string{"a/data/0"}, "compressed", nil},
		{"no pickle", map[string][]byte{"a/version": []byte("3")}, nil, "no <archive>/data.pkl", nil},
		{"torchscript", map[string][]byte{"a/constants.pkl": []byte("x")}, nil, "TorchScript", nil},
		{"bad version", map[string][]byte{"a/data.pkl": tensorPickle(6, 0, []int{2}, []int{1}), "a/data/0": six, "a/version": []byte("x")}, nil, "not a format version", nil},
		{"odd byteorder", map[string][]byte{"a/data.pkl": tensorPickle(6, 0, []int{2}, []int{1}), "a/data/0": six, "a/byteorder": []byte("middle")}, nil, `want "little"`, nil},
		{"little byteorder", map[string][]byte{"a/data.pkl": tensorPickle(6, 0, []int{1}, []int{1}), "a/data/0": six, "a/byteorder": []byte("little")}, nil, "", []float32{0}},
		{"no tensors", map[string][]byte{"a/data.pkl": []byte("\x80\x02}.")}, nil, "holds no tensors", nil},
		{"stack bomb", map[string][]byte{"a/data.pkl": append([]byte("\x80\x02"), bytes.Repeat([]byte("]"), MaxStack+1)...)}, nil, "stack deeper than", nil},
		{"long name", map[string][]byte{"a/data.pkl": longNamePickle()}, nil, "longer than 4096 bytes", nil},
		{"cycle", map[string][]byte{"a/data.pkl": []byte("\x80\x02]q\x00h\x00a.")}, nil, "holds no tensors", nil},
	}
	for _, c := range cases {
		data := zipWith(t, c.entries, c.deflate...)
		f, err := NewReader(bytes.NewReader(data), int64(len(data)), "syn.pt")
		if c.want != "" {
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "syn.pt: ") {
				t.Errorf("%s: error %v, want one naming the file and containing %q", c.name, err, c.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		v, err := f.ReadFloat32("x")
		if err != nil || !reflect.DeepEqual(v, c.values) {
			t.Errorf("%s: x = %v, %v; want %v", c.name, v, err, c.values)
		}
	}
}

func TestNotZip(t *testing.T) {
	cases := map[string]string{
		"pickle": "\x80\x02}.",
		"text":   "hello",
		"empty":  "",
		"tar":    string(append(make([]byte, 257), "ustar"...)),
	}
	want := map[string]string{"pickle": "bare pickle", "text": "not a torch.save zip", "empty": "not a torch.save zip", "tar": "legacy tar"}
	for name, data := range cases {
		_, err := NewReader(strings.NewReader(data), int64(len(data)), "x.pt")
		if err == nil || !strings.Contains(err.Error(), want[name]) {
			t.Errorf("%s: error %v, want %q", name, err, want[name])
		}
	}
}

// TestPickleOpcodes runs small pickles through the unpickler.
func TestPickleOpcodes(t *testing.T) {
	cases := []struct {
		name, pkl string
		want      any // a Go rendering of the result, or an error substring
	}{
		{"ints", "\x80\x02(K\x07M\x00\x01J\xff\xff\xff\xff\x8a\x00\x8a\x02\x00\x80\x8a\x01\xfft.", "(7, 256, -1, 0, -32768, -1)"},
		{"long4", "\x80\x02\x8b\x02\x00\x00\x00\x01\x02.", "513"},
		{"long too big", "\x80\x02\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01.", "does not fit in 64 bits"},
		{"float", "\x80\x02G\x3f\xf8\x00\x00\x00\x00\x00\x00.", "1.5"},
		{"consts", "\x80\x02(\x88\x89N)]}t.", "(true, false, None, (), [], {})"},
		{"strings", "\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00(\x8c\x01a\x8d\x01\x00\x00\x00\x00\x00\x00\x00bC\x01cB\x01\x00\x00\x00d\x94t.", `("a", "b", b"c", b"d")`},
		{"tuples", "\x80\x02K\x01\x85K\x01K\x02\x86K\x01K\x02K\x03\x87\x87.", "((1), (1, 2), (1, 2, 3))"},
		{"list dict", "\x80\x02(K\x01K\x02l(X\x01\x00\x00\x00aK\x01d\x86.", `([1, 2], {"a": 1})`},
		{"appends setitems", "\x80\x02]q\x00(K\x01K\x02eK\x03a}r\x01\x00\x00\x00(K\x01K\x02u\x86.", "([1, 2, 3], {1: 2})"},
		{"setitem overwrite", "\x80\x02}(K\x01K\x02K\x01K\x03u.", "{1: 3}"},
		{"memo", "\x80\x02K\x05q\x07\x940h\x07h\x01\x86.", "(5, 5)"},
		{"dup pop_mark", "\x80\x02K\x012(K\x091\x86.", "(1, 1)"},
		{"ordereddict", "\x80\x02ccollections\nOrderedDict\n]K\x01K\x02\x86a\x85R.", "{1: 2}"},
		{"newobj", "\x80\x02ccollections\nOrderedDict\n)\x81.", "{}"},
		{"build ignored", "\x80\x02}}b.", "{}"},
		{"tuple key", "\x80\x02}K\x01K\x02\x86K\x03s.", "{(1, 2): 3}"},
		{"list key", "\x80\x02}]K\x03s.", "unhashable dict key of type list"},
		{"proto 1", "\x80\x01.", "protocol 1"},
		{"no stop", "\x80\x02K\x01", "without STOP"},
		{"truncated", "\x80\x02X\x05\x00\x00\x00ab", "ends early"},
		{"huge string", "\x80\x02X\xff\xff\xff\x7fab", "exceeds"},
		{"bad utf8", "\x80\x02X\x01\x00\x00\x00\xff.", "UTF-8"},
		{"underflow", "\x80\x02\x85.", "underflow"},
		{"mark underflow", "\x80\x02K\x01(a.", "underflow"},
		{"no mark", "\x80\x02t.", "no MARK"},
		{"memo miss", "\x80\x02h\x01.", "memo entry 1 is not set"},
		{"inst", "\x80\x02i os\nsystem\n.", "opcode INST is not needed"},
		{"persid text", "\x80\x02P1\n.", "opcode PERSID"},
		{"unknown op", "\x80\x02\xff.", "unknown opcode 0xff"},
		{"global line", "\x80\x02cos", "GLOBAL operand"},
		{"stack global types", "\x80\x04K\x01K\x02\x93.", "not strings"},
		{"call non-global", "\x80\x02K\x01)R.", "cannot call a int"},
		{"append to int", "\x80\x02K\x01K\x01a.", "cannot append to a int"},
		{"build on list", "\x80\x02]}b.", "cannot set the state of a list"},
		{"call dtype", "\x80\x02ctorch\nfloat32\n)R.", "not callable"},
		{"tensor without storage", "\x80\x02ctorch._utils\n_rebuild_tensor\n(K\x01K\x00))tR.", "storage is a int"},
		{"refused builtins", "\x80\x02c__builtin__\ngetattr\n.", `global "__builtin__.getattr"`},
		{"refused torch", "\x80\x02ctorch\nload\n.", `global "torch.load"`},
	}
	for _, c := range cases {
		v, err := unpickle([]byte(c.pkl), nil)
		want := c.want.(string)
		if err != nil {
			if want == "" || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %v, want %q", c.name, err, want)
			}
			continue
		}
		if got := render(v); got != want {
			t.Errorf("%s: got %s, want %s", c.name, got, want)
		}
	}
}

// render prints an unpickled value in a Python-like form.
func render(v any) string {
	var b strings.Builder
	var r func(v any)
	r = func(v any) {
		switch v := v.(type) {
		case nil:
			b.WriteString("None")
		case string:
			b.WriteString(`"` + v + `"`)
		case []byte:
			b.WriteString(`b"` + string(v) + `"`)
		case *pyTuple:
			b.WriteByte('(')
			for i, it := range v.items {
				if i > 0 {
					b.WriteString(", ")
				}
				r(it)
			}
			b.WriteByte(')')
		case *pyList:
			b.WriteByte('[')
			for i, it := range v.items {
				if i > 0 {
					b.WriteString(", ")
				}
				r(it)
			}
			b.WriteByte(']')
		case *pyDict:
			b.WriteByte('{')
			for i, k := range v.keys {
				if i > 0 {
					b.WriteString(", ")
				}
				r(k)
				b.WriteString(": ")
				r(v.vals[i])
			}
			b.WriteByte('}')
		default:
			b.WriteString(strings.TrimSpace(strings.ReplaceAll(fmtAny(v), "\n", " ")))
		}
	}
	r(v)
	return b.String()
}

func fmtAny(v any) string {
	bs, _ := json.Marshal(v)
	return string(bs)
}

// longNamePickle is {"k"*5000: {"x": 1}}.
func longNamePickle() []byte {
	var p bytes.Buffer
	p.WriteString("\x80\x02}X")
	binary.Write(&p, binary.LittleEndian, uint32(5000))
	p.WriteString(strings.Repeat("k", 5000))
	p.WriteString("}X\x01\x00\x00\x00xK\x01ss.")
	return p.Bytes()
}
