package onnxgraph

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"testing"

	onnx "github.com/owulveryck/onnx-go"
	"gonum.org/v1/gonum/graph"
	"gonum.org/v1/gonum/graph/simple"
	"gorgonia.org/tensor"
)

// recorder is an onnx-go backend that records what the decoder saw: named
// nodes, their tensors (when carry), input edges and operations.
type recorder struct {
	*simple.WeightedDirectedGraph
	carry bool
	ops   []recordedOp
}

type recordedOp struct {
	name    string
	attrs   map[string]any
	outputs []string
}

type namedNode struct {
	id   int64
	name string
}

func (n *namedNode) ID() int64               { return n.id }
func (n *namedNode) SetName(s string)        { n.name = s }
func (n *namedNode) GetName() string         { return n.name }
func (n *namedNode) String() string          { return n.name }
func (n *namedNode) nodeName() string        { return n.name }
func (n *dataNode) GetTensor() tensor.Tensor { return n.t }

type dataNode struct {
	namedNode
	t tensor.Tensor
}

func (n *dataNode) SetTensor(t tensor.Tensor) error { n.t = t; return nil }

func newRecorder(carry bool) *recorder {
	return &recorder{WeightedDirectedGraph: simple.NewWeightedDirectedGraph(math.MaxFloat64, -1), carry: carry}
}

func (r *recorder) NewNode() graph.Node {
	id := r.WeightedDirectedGraph.NewNode().ID()
	if r.carry {
		return &dataNode{namedNode: namedNode{id: id}}
	}
	return &namedNode{id: id}
}

func (r *recorder) ApplyOperation(op onnx.Operation, outs ...graph.Node) error {
	rec := recordedOp{name: op.Name, attrs: op.Attributes}
	for _, o := range outs {
		rec.outputs = append(rec.outputs, o.(interface{ GetName() string }).GetName())
	}
	r.ops = append(r.ops, rec)
	return nil
}

// inputsOf lists the names of the nodes an output node has edges to, in
// edge-weight (input index) order.
func (r *recorder) inputsOf(m *onnx.Model, out string) []string {
	n, ok := m.GetNodeByName(out)
	if !ok {
		return nil
	}
	type in struct {
		w    float64
		name string
	}
	var ins []in
	it := r.From(n.ID())
	for it.Next() {
		to := it.Node()
		e := r.WeightedEdge(n.ID(), to.ID())
		ins = append(ins, in{e.Weight(), to.(interface{ GetName() string }).GetName()})
	}
	sort.Slice(ins, func(i, j int) bool { return ins[i].w < ins[j].w })
	var names []string
	for _, x := range ins {
		names = append(names, x.name)
	}
	return names
}

func attrGoValue(a Attr) any {
	switch a.Type {
	case AttrFloatType:
		return a.F
	case AttrIntType:
		return a.I
	case AttrStringType:
		return a.S
	case AttrFloatsType:
		return a.Floats
	case AttrIntsType:
		return a.Ints
	case AttrStringsType:
		return a.Strings
	}
	return nil
}

// TestOnnxGoDecodes decodes every test graph with onnx-go, an independent
// protobuf reader, and compares what it saw with what was built.
func TestOnnxGoDecodes(t *testing.T) {
	for _, tg := range testGraphs() {
		t.Run(tg.name, func(t *testing.T) {
			model, _ := tg.build(t)
			data, err := model.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			for _, carry := range []bool{false, true} {
				if carry && !tg.carriesData {
					continue
				}
				rec := newRecorder(carry)
				m := onnx.NewModel(rec)
				if err := m.UnmarshalBinary(data); err != nil {
					t.Fatalf("onnx-go (carry=%v): %v", carry, err)
				}
				if len(rec.ops) != len(model.Graph.Nodes) {
					t.Fatalf("onnx-go saw %d operations, built %d", len(rec.ops), len(model.Graph.Nodes))
				}
				for i, n := range model.Graph.Nodes {
					op := rec.ops[i]
					if op.name != n.OpType {
						t.Errorf("node %d: op %q, built %q", i, op.name, n.OpType)
					}
					if !reflect.DeepEqual(op.outputs, n.Outputs) {
						t.Errorf("node %d (%s): outputs %q, built %q", i, n.OpType, op.outputs, n.Outputs)
					}
					// gonum graphs hold one edge per node pair, so an input
					// used twice (Sub(x, x)) is seen once.
					if got := rec.inputsOf(m, n.Outputs[0]); !reflect.DeepEqual(got, dedupe(n.Inputs)) && len(n.Inputs) > 0 {
						t.Errorf("node %d (%s): inputs %q, built %q", i, n.OpType, got, n.Inputs)
					}
					if len(op.attrs) != len(n.Attrs) {
						t.Errorf("node %d (%s): %d attributes, built %d", i, n.OpType, len(op.attrs), len(n.Attrs))
					}
					for _, a := range n.Attrs {
						got, ok := op.attrs[a.Name]
						if !ok {
							t.Errorf("node %d (%s): attribute %q missing", i, n.OpType, a.Name)
							continue
						}
						if a.Type == AttrTensorType {
							tt, ok := got.(tensor.Tensor)
							if !ok || flat(tt.Data()) != fmt.Sprint(decodeFloats(a.T.Raw)) {
								t.Errorf("node %d (%s): tensor attribute %q = %v", i, n.OpType, a.Name, got)
							}
							continue
						}
						want := attrGoValue(a)
						if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", want) {
							t.Errorf("node %d (%s): attribute %q = %#v, built %#v", i, n.OpType, a.Name, got, want)
						}
					}
				}
				if !carry {
					continue
				}
				for _, init := range model.Graph.Initializers {
					n, ok := m.GetNodeByName(init.Name)
					if !ok {
						t.Errorf("initializer %q not decoded", init.Name)
						continue
					}
					tt := n.(*dataNode).t
					if tt == nil {
						t.Errorf("initializer %q has no tensor", init.Name)
						continue
					}
					var want any
					switch init.Type {
					case Float:
						want = decodeFloats(init.Raw)
					case Int64:
						want = decodeInt64s(init.Raw)
					}
					if flat(tt.Data()) != fmt.Sprint(want) {
						t.Errorf("initializer %q: onnx-go read %v, built %v", init.Name, tt.Data(), want)
					}
					shape := tt.Shape()
					if len(init.Dims) > 0 && fmt.Sprint([]int(shape)) != fmt.Sprint(toInts(init.Dims)) {
						t.Errorf("initializer %q: shape %v, built %v", init.Name, shape, init.Dims)
					}
				}
			}
		})
	}
}

func toInts(v []int64) []int {
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x)
	}
	return out
}

func decodeFloats(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(uint32(b[4*i]) | uint32(b[4*i+1])<<8 | uint32(b[4*i+2])<<16 | uint32(b[4*i+3])<<24)
	}
	return out
}

func decodeInt64s(b []byte) []int64 {
	out := make([]int64, len(b)/8)
	for i := range out {
		var v uint64
		for j := 7; j >= 0; j-- {
			v = v<<8 | uint64(b[8*i+j])
		}
		out[i] = int64(v)
	}
	return out
}

// flat prints tensor data as a slice: onnx-go returns one-element tensors
// as bare scalars.
func flat(v any) string {
	switch x := v.(type) {
	case float32:
		return fmt.Sprint([]float32{x})
	case int64:
		return fmt.Sprint([]int64{x})
	}
	return fmt.Sprint(v)
}

func dedupe(names []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}
