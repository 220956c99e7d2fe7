package onnxgraph

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

const python = "/usr/bin/python3"

// checkerScript runs ONNX's checker on every model named on the command
// line and prints, per model, a summary of what protobuf decoded (the same
// shape as summary below), so the test compares field by field.
const checkerScript = `
import hashlib, json, sys
import onnx
from onnx import helper

def tensor(t):
    return {"name": t.name, "type": t.data_type, "dims": list(t.dims),
            "raw_len": len(t.raw_data), "raw_sha": hashlib.sha256(t.raw_data).hexdigest(),
            "external": {e.key: e.value for e in t.external_data},
            "location": t.data_location}

def attr(a):
    d = {"type": a.type}
    v = helper.get_attribute_value(a)
    if a.type == 1: d["f"] = v
    elif a.type == 2: d["i"] = v
    elif a.type == 3: d["s"] = v.decode()
    elif a.type == 4: d["t"] = tensor(v)
    elif a.type == 6: d["floats"] = list(v)
    elif a.type == 7: d["ints"] = list(v)
    elif a.type == 8: d["strings"] = [s.decode() for s in v]
    return d

def value(v):
    tt = v.type.tensor_type
    d = {"name": v.name, "type": tt.elem_type, "has_shape": tt.HasField("shape"), "dims": []}
    for dim in tt.shape.dim:
        w = dim.WhichOneof("value")
        d["dims"].append(str(dim.dim_value) if w == "dim_value" else dim.dim_param if w == "dim_param" else "?")
    return d

out = {}
for path in sys.argv[1:]:
    onnx.checker.check_model(path)
    m = onnx.load(path, load_external_data=False)
    g = m.graph
    out[path] = {
        "ir": m.ir_version, "producer": m.producer_name,
        "opsets": {o.domain: o.version for o in m.opset_import},
        "metadata": {p.key: p.value for p in m.metadata_props},
        "name": g.name,
        "nodes": [{"name": n.name, "op": n.op_type, "domain": n.domain, "inputs": list(n.input),
                   "outputs": list(n.output), "attrs": {a.name: attr(a) for a in n.attribute}} for n in g.node],
        "inits": [tensor(t) for t in g.initializer],
        "inputs": [value(v) for v in g.input],
        "outputs": [value(v) for v in g.output],
    }
json.dump(out, sys.stdout)
`

type sumTensor struct {
	Name     string            `json:"name"`
	Type     int               `json:"type"`
	Dims     []int64           `json:"dims"`
	RawLen   int               `json:"raw_len"`
	RawSHA   string            `json:"raw_sha"`
	External map[string]string `json:"external"`
	Location int               `json:"location"`
}

type sumAttr struct {
	Type    int        `json:"type"`
	F       *float64   `json:"f,omitempty"`
	I       *int64     `json:"i,omitempty"`
	S       *string    `json:"s,omitempty"`
	T       *sumTensor `json:"t,omitempty"`
	Floats  []float64  `json:"floats,omitempty"`
	Ints    []int64    `json:"ints,omitempty"`
	Strings []string   `json:"strings,omitempty"`
}

type sumNode struct {
	Name    string             `json:"name"`
	Op      string             `json:"op"`
	Domain  string             `json:"domain"`
	Inputs  []string           `json:"inputs"`
	Outputs []string           `json:"outputs"`
	Attrs   map[string]sumAttr `json:"attrs"`
}

type sumValue struct {
	Name     string   `json:"name"`
	Type     int      `json:"type"`
	HasShape bool     `json:"has_shape"`
	Dims     []string `json:"dims"`
}

type sumModel struct {
	IR       int64             `json:"ir"`
	Producer string            `json:"producer"`
	Opsets   map[string]int64  `json:"opsets"`
	Metadata map[string]string `json:"metadata"`
	Name     string            `json:"name"`
	Nodes    []sumNode         `json:"nodes"`
	Inits    []sumTensor       `json:"inits"`
	Inputs   []sumValue        `json:"inputs"`
	Outputs  []sumValue        `json:"outputs"`
}

func summariseTensor(t *Tensor) *sumTensor {
	h := sha256.Sum256(t.Raw)
	s := &sumTensor{Name: t.Name, Type: int(t.Type), Dims: append([]int64{}, t.Dims...),
		RawLen: len(t.Raw), RawSHA: hex.EncodeToString(h[:]), External: map[string]string{}}
	if t.External != nil {
		s.Location = 1
		for _, kv := range t.externalKVs() {
			s.External[kv.Key] = kv.Value
		}
	}
	return s
}

func summariseValue(v ValueInfo) sumValue {
	s := sumValue{Name: v.Name, Type: int(v.Type), HasShape: v.Shape != nil || v.Scalar, Dims: []string{}}
	for _, d := range v.Shape {
		switch {
		case d.Param != "":
			s.Dims = append(s.Dims, d.Param)
		case d.Value >= 0:
			s.Dims = append(s.Dims, strconv.FormatInt(d.Value, 10))
		default:
			s.Dims = append(s.Dims, "?")
		}
	}
	return s
}

// summarise is what the model should look like after decoding.
func summarise(m *Model) sumModel {
	s := sumModel{IR: m.IRVersion, Producer: m.ProducerName, Opsets: map[string]int64{},
		Metadata: map[string]string{}, Name: m.Graph.Name,
		Nodes: []sumNode{}, Inits: []sumTensor{}, Inputs: []sumValue{}, Outputs: []sumValue{}}
	for _, o := range m.Opsets {
		s.Opsets[o.Domain] = o.Version
	}
	for _, kv := range m.Metadata {
		s.Metadata[kv.Key] = kv.Value
	}
	for _, n := range m.Graph.Nodes {
		sn := sumNode{Name: n.Name, Op: n.OpType, Domain: n.Domain, Inputs: append([]string{}, n.Inputs...),
			Outputs: append([]string{}, n.Outputs...), Attrs: map[string]sumAttr{}}
		for _, a := range n.Attrs {
			sa := sumAttr{Type: int(a.Type)}
			switch a.Type {
			case AttrFloatType:
				f := float64(a.F)
				sa.F = &f
			case AttrIntType:
				sa.I = &a.I
			case AttrStringType:
				sa.S = &a.S
			case AttrTensorType:
				sa.T = summariseTensor(a.T)
			case AttrFloatsType:
				for _, f := range a.Floats {
					sa.Floats = append(sa.Floats, float64(f))
				}
			case AttrIntsType:
				sa.Ints = a.Ints
			case AttrStringsType:
				sa.Strings = a.Strings
			}
			sn.Attrs[a.Name] = sa
		}
		s.Nodes = append(s.Nodes, sn)
	}
	for _, t := range m.Graph.Initializers {
		s.Inits = append(s.Inits, *summariseTensor(t))
	}
	for _, v := range m.Graph.Inputs {
		s.Inputs = append(s.Inputs, summariseValue(v))
	}
	for _, v := range m.Graph.Outputs {
		s.Outputs = append(s.Outputs, summariseValue(v))
	}
	return s
}

func havePythonONNX(t *testing.T) {
	t.Helper()
	if err := exec.Command(python, "-c", "import onnx").Run(); err != nil {
		t.Skipf("python3-onnx is not installed (%v); `make deps` installs it", err)
	}
}

// TestONNXChecker writes every test graph, runs ONNX's own checker on it and
// compares protobuf's reading of every field with the built model.
func TestONNXChecker(t *testing.T) {
	havePythonONNX(t)
	v, err := exec.Command(python, "-c", "import onnx.defs; print(onnx.defs.onnx_opset_version())").Output()
	if err != nil {
		t.Fatal(err)
	}
	known, err := strconv.ParseInt(strings.TrimSpace(string(v)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	graphs := testGraphs()
	want := map[string]sumModel{}
	var paths []string
	for _, tg := range graphs {
		if tg.opset > known {
			t.Logf("%s: skipped, imports opset %d and this python3-onnx knows up to %d", tg.name, tg.opset, known)
			continue
		}
		model, files := tg.build(t)
		data, err := model.Marshal()
		if err != nil {
			t.Fatalf("%s: %v", tg.name, err)
		}
		sub := filepath.Join(dir, tg.name)
		if err := os.Mkdir(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(sub, "model.onnx")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		for name, content := range files {
			if err := os.WriteFile(filepath.Join(sub, name), content, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		paths = append(paths, p)
		want[p] = summarise(model)
	}
	cmd := exec.Command(python, append([]string{"-c", checkerScript}, paths...)...)
	cmd.Stderr = new(limitedBuffer)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("onnx checker: %v\n%s", err, cmd.Stderr)
	}
	var got map[string]sumModel
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("checker output: %v", err)
	}
	for _, p := range paths {
		w, g := want[p], got[p]
		if !reflect.DeepEqual(w, g) {
			wj, _ := json.MarshalIndent(w, "", " ")
			gj, _ := json.MarshalIndent(g, "", " ")
			t.Errorf("%s: python onnx read\n%s\nbuilt\n%s", p, gj, wj)
		}
	}
}

// limitedBuffer keeps the first 64 KiB of a subprocess's stderr.
type limitedBuffer struct{ b []byte }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := 64<<10 - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(len(p), room)]...)
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return string(l.b) }
