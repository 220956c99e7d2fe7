package onnxgraph

import (
	"bytes"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// TestGolden pins the exact bytes of small graphs, so an encoding change is
// seen (and, after checking it with the decoders, accepted with -update).
func TestGolden(t *testing.T) {
	for _, tg := range testGraphs() {
		t.Run(tg.name, func(t *testing.T) {
			model, _ := tg.build(t)
			data, err := model.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tg.name+".onnx")
			if *update {
				if err := os.WriteFile(path, data, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(data, want) {
				t.Errorf("%s: %d bytes differ from the golden %d bytes; check with the decoder tests, then -update", tg.name, len(data), len(want))
			}
		})
	}
}

func TestValidateErrors(t *testing.T) {
	base := func() *Builder {
		b := NewBuilder("g")
		b.Input("x", Float, D(2))
		return b
	}
	tests := []struct {
		name  string
		build func(b *Builder)
		want  string
	}{
		{"undefined input", func(b *Builder) { b.Output(b.Sigmoid("nope"), Float, D(2)) }, `input "nope" is not defined`},
		{"duplicate name", func(b *Builder) { b.InitFloat32("x", []int64{1}, []float32{1}) }, `initializer "x" defined twice`},
		{"raw size", func(b *Builder) { b.Initializer("w", Float, []int64{3}, make([]byte, 8)) }, "raw data is 8 bytes, dims [3] of float32 need 12"},
		{"negative dim", func(b *Builder) { b.InitFloat32("w", []int64{-1}, nil) }, "dimension 0 is negative"},
		{"dims overflow", func(b *Builder) { b.Initializer("w", Float, []int64{1 << 62, 1 << 62}, nil) }, "overflows"},
		{"external length", func(b *Builder) {
			b.InitExternal("w", Float, []int64{4}, ExternalData{Location: "a.bin", Length: 15})
		}, "external length 15"},
		{"external absolute", func(b *Builder) {
			b.InitExternal("w", Float, []int64{4}, ExternalData{Location: "/etc/passwd", Length: 16})
		}, "plain relative path"},
		{"external dotdot", func(b *Builder) {
			b.InitExternal("w", Float, []int64{4}, ExternalData{Location: "../a.bin", Length: 16})
		}, "plain relative path"},
		{"external offset overflow", func(b *Builder) {
			b.InitExternal("w", Float, []int64{4}, ExternalData{Location: "a.bin", Offset: math.MaxInt64 - 4, Length: 16})
		}, "overflows"},
		{"no opset for domain", func(b *Builder) {
			b.NodeDomain("com.example", "Foo", []string{"x"}, []string{"y"})
			b.Output("y", Float, D(2))
		}, `domain "com.example" has no opset import`},
		{"output not produced", func(b *Builder) { b.Sigmoid("x"); b.Output("zzz", Float, D(2)) }, `output "zzz" is not produced`},
		{"no outputs", func(b *Builder) { b.Sigmoid("x") }, "no outputs"},
		{"repeated attribute", func(b *Builder) {
			b.Output(b.Op("Concat", []string{"x", "x"}, AttrInt("axis", 0), AttrInt("axis", 1)), Float, D(4))
		}, `attribute name "axis" empty or repeated`},
		{"nil tensor attribute", func(b *Builder) {
			b.Output(b.Op("Constant", nil, Attr{Name: "value", Type: AttrTensorType}), Float, D(4))
		}, "tensor attribute without a tensor"},
		{"bad nbits", func(b *Builder) {
			b.Output(b.MatMulNBits("x", "p", &NBits{N: 1, K: 2, Bits: 3, BlockSize: 16}), Float, D(1))
		}, "bits 3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := base()
			tc.build(b)
			_, err := b.Marshal()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Marshal error = %v, want one containing %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), `graph "g"`) {
				t.Errorf("error does not name the graph: %v", err)
			}
		})
	}
}

// TestModelValidateDirect covers checks a Builder cannot reach (it refuses
// earlier) on hand-made Models.
func TestModelValidateDirect(t *testing.T) {
	ok := func() Model {
		return Model{IRVersion: 8, Opsets: []Opset{{"", 17}}, Graph: Graph{Name: "g",
			Inputs:  []ValueInfo{{Name: "x", Type: Float, Shape: []Dim{D(1)}}},
			Nodes:   []Node{{OpType: "Sigmoid", Inputs: []string{"x"}, Outputs: []string{"y"}}},
			Outputs: []ValueInfo{{Name: "y", Type: Float, Shape: []Dim{D(1)}}}}}
	}
	m := ok()
	if _, err := m.Marshal(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		mutate func(m *Model)
		want   string
	}{
		{"ir", func(m *Model) { m.IRVersion = 0 }, "IR version"},
		{"opset twice", func(m *Model) { m.Opsets = append(m.Opsets, Opset{"", 18}) }, "imported twice"},
		{"no nodes", func(m *Model) { m.Graph.Nodes = nil }, "no nodes"},
		{"no op type", func(m *Model) { m.Graph.Nodes[0].OpType = "" }, "no op type"},
		{"undefined elem type", func(m *Model) { m.Graph.Inputs[0].Type = Undefined }, "element type undefined"},
		{"nil initializer", func(m *Model) { m.Graph.Initializers = []*Tensor{nil} }, "nil initializer"},
		{"string tensor", func(m *Model) { m.Graph.Initializers = []*Tensor{{Name: "s", Type: String}} }, "no fixed size"},
		{"rank", func(m *Model) { m.Graph.Inputs[0].Shape = make([]Dim, 17) }, "rank 17"},
	}
	for _, tc := range tests {
		m := ok()
		tc.mutate(&m)
		if _, err := m.Marshal(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}

// TestNBitsLayout checks the packing against hand-worked blocks.
func TestNBitsLayout(t *testing.T) {
	// One row, K=16, block 16, 4 bits. Values -8..7 times 0.5: the largest
	// magnitude is -4 (element 0), so scale = -4/-8 = 0.5 and codes are
	// value/0.5 + 8 = 0..15.
	w := make([]float32, 16)
	for i := range w {
		w[i] = float32(i-8) * 0.5
	}
	q, err := QuantizeNBits(w, 1, 16, 4, 16)
	if err != nil {
		t.Fatal(err)
	}
	wantBlocks := []byte{0x10, 0x32, 0x54, 0x76, 0x98, 0xBA, 0xDC, 0xFE}
	if !bytes.Equal(q.Blocks, wantBlocks) || len(q.Scales) != 1 || q.Scales[0] != 0.5 {
		t.Fatalf("int4 blocks % x scales %v, want % x [0.5]", q.Blocks, q.Scales, wantBlocks)
	}
	// 8 bits, K=20 in blocks of 16: the second block holds 4 values and 12
	// padding codes of 128.
	w = make([]float32, 20)
	for i := range w {
		w[i] = float32(i) - 10
	}
	q, err = QuantizeNBits(w, 1, 20, 8, 16)
	if err != nil {
		t.Fatal(err)
	}
	if got := q.BlockDims(); got[0] != 1 || got[1] != 2 || got[2] != 16 {
		t.Fatalf("block dims %v", got)
	}
	for i := 4; i < 16; i++ {
		if q.Blocks[16+i] != 128 {
			t.Fatalf("padding code %d at %d, want 128", q.Blocks[16+i], 16+i)
		}
	}
	if q.Blocks[0] != 1 || q.Scales[0] != 10.0/127 { // -10 / (10/127) = -127 -> code 1
		t.Fatalf("int8 first code %d scale %v", q.Blocks[0], q.Scales[0])
	}
}

// TestNBitsRoundTrip bounds the dequantisation error by half a step of each
// block (one step for 4 bits, where, as in GGML's Q4_0, the block's extreme
// maps to code 0 and a value of the opposite sign and equal size clips at
// code 15), over shapes with K a multiple of the block and not.
func TestNBitsRoundTrip(t *testing.T) {
	for _, tc := range []struct{ n, k, bits, block int }{
		{3, 64, 4, 32}, {2, 40, 4, 16}, {5, 96, 8, 32}, {1, 7, 8, 16}, {2, 300, 4, 128},
	} {
		w := randFloats(uint64(tc.k), tc.n*tc.k)
		w[0] = 0 // zero blocks and exact zeros must survive
		q, err := QuantizeNBits(w, tc.n, tc.k, tc.bits, tc.block)
		if err != nil {
			t.Fatal(err)
		}
		back, err := q.Dequantize()
		if err != nil {
			t.Fatal(err)
		}
		nb := q.BlocksPerRow()
		for r := 0; r < tc.n; r++ {
			for k := 0; k < tc.k; k++ {
				step := math.Abs(float64(q.Scales[r*nb+k/tc.block]))
				bound := step / 2
				if tc.bits == 4 {
					bound = step
				}
				if d := math.Abs(float64(back[r*tc.k+k] - w[r*tc.k+k])); d > bound+1e-6 {
					t.Fatalf("%+v: w[%d][%d] = %v back %v (step %v)", tc, r, k, w[r*tc.k+k], back[r*tc.k+k], step)
				}
			}
		}
	}
	zero, err := QuantizeNBits(make([]float32, 32), 1, 32, 4, 32)
	if err != nil {
		t.Fatal(err)
	}
	if back, _ := zero.Dequantize(); back[0] != 0 || zero.Scales[0] != 0 {
		t.Errorf("all-zero block: scale %v value %v", zero.Scales[0], back[0])
	}
	if _, err := QuantizeNBits(make([]float32, 5), 2, 3, 4, 32); err == nil {
		t.Error("wrong length accepted")
	}
	if _, err := QuantizeNBits(make([]float32, 6), 2, 3, 4, 24); err == nil {
		t.Error("block size 24 accepted")
	}
	if err := (&NBits{N: 1, K: 32, Bits: 4, BlockSize: 32, Scales: []float32{1}, Blocks: make([]byte, 15)}).Validate(); err == nil {
		t.Error("short blocks accepted")
	}
}

// TestVarintSizes checks the size function against the encoder at the
// varint length boundaries.
func TestVarintSizes(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 16383, 16384, 1<<35 - 1, 1 << 35, 1<<63 - 1, 1 << 63, math.MaxUint64} {
		if got, want := sizeVarint(v), len(appendVarint(nil, v)); got != want {
			t.Errorf("sizeVarint(%d) = %d, encoded %d", v, got, want)
		}
	}
}
