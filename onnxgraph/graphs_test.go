package onnxgraph

import (
	"math"
	"math/rand/v2"
	"testing"
)

// testGraph is one model every decoder test runs over. files are extra
// files (external data) to write next to the model.
type testGraph struct {
	name  string
	build func(t *testing.T) (*Model, map[string][]byte)
	// carriesData: onnx-go can decode its initializers' values (float32 and
	// int64 only; it has no uint8 tensors and no external data).
	carriesData bool
	// opset is the ONNX opset the graph imports when above DefaultOpset: a
	// checker that knows fewer skips it.
	opset int64
}

func randFloats(seed uint64, n int) []float32 {
	r := rand.New(rand.NewPCG(seed, 1))
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func mustModel(t *testing.T, b *Builder) *Model {
	t.Helper()
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func testGraphs() []testGraph {
	return []testGraph{
		{name: "mlp", carriesData: true, build: func(t *testing.T) (*Model, map[string][]byte) {
			b := NewBuilder("mlp")
			x := b.Input("x", Float, Sym("batch"), D(8))
			w := b.InitFloat32("w", []int64{8, 4}, randFloats(1, 32))
			bias := b.InitFloat32("bias", []int64{4}, randFloats(2, 4))
			y := b.Sigmoid(b.Add(b.MatMul(x, w), bias))
			b.Output(b.Rename(y, "y"), Float, Sym("batch"), D(4))
			return mustModel(t, b), nil
		}},
		{name: "gemm_softplus", carriesData: true, build: func(t *testing.T) (*Model, map[string][]byte) {
			b := NewBuilder("gemm_softplus")
			x := b.Input("x", Float, D(2), D(8))
			w := b.InitFloat32("w", []int64{4, 8}, randFloats(3, 32))
			c := b.InitFloat32("c", []int64{4}, randFloats(4, 4))
			y := b.Softplus(b.Gemm(x, w, c, true))
			b.Output(b.Rename(y, "y"), Float, D(2), D(4))
			return mustModel(t, b), nil
		}},
		{name: "split_slice_concat", carriesData: true, build: func(t *testing.T) (*Model, map[string][]byte) {
			b := NewBuilder("split_slice_concat")
			x := b.Input("x", Float, D(2), D(12))
			parts := b.Split(x, 1, 4, 8)
			s := b.Slice(parts[1], []int64{2}, []int64{6}, []int64{1})
			y := b.Mul(b.Concat(1, parts[0], s), b.Exp(b.Sub(parts[0], parts[0])))
			b.Output(b.Rename(y, "y"), Float, D(2), D(8))
			return mustModel(t, b), nil
		}},
		{name: "rmsnorm", carriesData: true, build: func(t *testing.T) (*Model, map[string][]byte) {
			b := NewBuilder("rmsnorm")
			x := b.Input("x", Float, D(3), D(16))
			w := b.InitFloat32("norm.weight", []int64{16}, randFloats(5, 16))
			y := b.RMSNorm(x, w, 1e-5)
			b.Output(b.Rename(y, "y"), Float, D(3), D(16))
			return mustModel(t, b), nil
		}},
		{name: "rmsnorm_opset18", carriesData: true, opset: 18, build: func(t *testing.T) (*Model, map[string][]byte) {
			b := NewBuilder("rmsnorm18").SetOpset("", 18)
			x := b.Input("x", Float, D(3), D(16))
			w := b.InitFloat32("norm.weight", []int64{16}, randFloats(5, 16))
			b.Output(b.Rename(b.RMSNorm(x, w, 1e-5), "y"), Float, D(3), D(16))
			return mustModel(t, b), nil
		}},
		{name: "matmulnbits4", build: func(t *testing.T) (*Model, map[string][]byte) {
			q, err := QuantizeNBits(randFloats(6, 16*64), 16, 64, 4, 32)
			if err != nil {
				t.Fatal(err)
			}
			b := NewBuilder("matmulnbits4")
			x := b.Input("x", Float, Sym("batch"), D(64))
			b.Output(b.Rename(b.MatMulNBits(x, "proj", q), "y"), Float, Sym("batch"), D(16))
			return mustModel(t, b), nil
		}},
		{name: "matmulnbits8", build: func(t *testing.T) (*Model, map[string][]byte) {
			q, err := QuantizeNBits(randFloats(7, 8*48), 8, 48, 8, 32)
			if err != nil {
				t.Fatal(err)
			}
			b := NewBuilder("matmulnbits8")
			x := b.Input("x", Float, D(2), D(48))
			b.Output(b.Rename(b.MatMulNBits(x, "proj", q), "y"), Float, D(2), D(8))
			return mustModel(t, b), nil
		}},
		{name: "external", build: func(t *testing.T) (*Model, map[string][]byte) {
			w := Float32Bytes(randFloats(8, 32))
			file := make([]byte, 4096+len(w)+7)
			copy(file[4096:], w)
			b := NewBuilder("external")
			x := b.Input("x", Float, D(2), D(8))
			wn := b.InitExternal("w", Float, []int64{8, 4}, ExternalData{Location: "weights.bin", Offset: 4096, Length: int64(len(w))})
			b.Output(b.Rename(b.MatMul(x, wn), "y"), Float, D(2), D(4))
			return mustModel(t, b), map[string][]byte{"weights.bin": file}
		}},
		{name: "attributes", carriesData: true, build: func(t *testing.T) (*Model, map[string][]byte) {
			b := NewBuilder("attributes").SetOpset("memmamba.test", 1)
			x := b.Input("x", Float, D(3))
			k := b.Fresh("const")
			b.Node("Constant", nil, []string{k}, AttrTensor("value",
				&Tensor{Type: Float, Dims: []int64{3}, Raw: Float32Bytes([]float32{1, -2, 0.5})}))
			y := b.Add(x, k)
			b.NodeDomain("memmamba.test", "Probe", []string{y}, []string{"probe"},
				AttrFloat("f", -1.25), AttrFloat("fzero", 0), AttrInt("i", -7), AttrInt("izero", 0),
				AttrString("s", "héllo"), AttrString("sempty", ""),
				AttrFloats("floats", 1.5, math.MaxFloat32, float32(math.Copysign(0, -1)), 1e-45),
				AttrInts("ints", 0, 1, -1, math.MaxInt64, math.MinInt64),
				AttrStrings("strings", "a", "", "c"))
			b.Output(b.Rename(y, "y"), Float, D(3))
			b.Output("probe", Float, D(-1))
			b.Metadata("memmamba.segment", "test")
			return mustModel(t, b), nil
		}},
	}
}
