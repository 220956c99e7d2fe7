package onnxgraph

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
)

// Default versions: IR 8 and opset 17 are what ONNX 1.12 (Debian's
// python3-onnx, used to check our graphs) knows, and ONNX Runtime 1.24+
// runs them. MicrosoftDomain's opset 1 carries MatMulNBits.
const (
	DefaultIRVersion = 8
	DefaultOpset     = 17
	MicrosoftDomain  = "com.microsoft"
)

// Builder assembles a Model step by step. Methods that add a value return
// its name so calls can be chained; the first error (an undefined input, a
// bad size) is kept and returned by Model or Marshal, so call sites need not
// check every step.
type Builder struct {
	m       Model
	defined map[string]bool
	seq     int
	err     error
}

// NewBuilder starts a model whose graph is called name, importing the ONNX
// domain at DefaultOpset.
func NewBuilder(name string) *Builder {
	return &Builder{
		m: Model{
			IRVersion:    DefaultIRVersion,
			ProducerName: "memmamba",
			Opsets:       []Opset{{Domain: "", Version: DefaultOpset}},
			Graph:        Graph{Name: name},
		},
		defined: map[string]bool{},
	}
}

// SetOpset imports domain at version, replacing an earlier version.
func (b *Builder) SetOpset(domain string, version int64) *Builder {
	for i := range b.m.Opsets {
		if b.m.Opsets[i].Domain == domain {
			b.m.Opsets[i].Version = version
			return b
		}
	}
	b.m.Opsets = append(b.m.Opsets, Opset{Domain: domain, Version: version})
	return b
}

// SetIRVersion overrides DefaultIRVersion.
func (b *Builder) SetIRVersion(v int64) *Builder { b.m.IRVersion = v; return b }

// Opset is the imported version of domain, 0 when not imported.
func (b *Builder) Opset(domain string) int64 {
	for _, o := range b.m.Opsets {
		if o.Domain == domain {
			return o.Version
		}
	}
	return 0
}

// Metadata adds a metadata_props entry to the model.
func (b *Builder) Metadata(key, value string) *Builder {
	b.m.Metadata = append(b.m.Metadata, KV{key, value})
	return b
}

// Err is the first error met so far.
func (b *Builder) Err() error { return b.err }

func (b *Builder) fail(format string, args ...any) {
	if b.err == nil {
		b.err = fmt.Errorf("graph %q: "+format, append([]any{b.m.Graph.Name}, args...)...)
	}
}

func (b *Builder) define(kind, name string) bool {
	if name == "" {
		b.fail("%s with an empty name", kind)
		return false
	}
	if b.defined[name] {
		b.fail("%s %q defined twice", kind, name)
		return false
	}
	b.defined[name] = true
	return true
}

// Fresh returns a name not used yet, made from prefix.
func (b *Builder) Fresh(prefix string) string {
	for {
		b.seq++
		name := prefix + "_" + strconv.Itoa(b.seq)
		if !b.defined[name] {
			return name
		}
	}
}

// Input declares a graph input. Dims: D(n) fixed, Sym("name") symbolic;
// no dims declares a scalar.
func (b *Builder) Input(name string, t DataType, dims ...Dim) string {
	if b.define("input", name) {
		b.m.Graph.Inputs = append(b.m.Graph.Inputs, ValueInfo{Name: name, Type: t, Shape: dims, Scalar: len(dims) == 0})
	}
	return name
}

// Output declares a graph output; name must be produced by a node (checked
// by Model).
func (b *Builder) Output(name string, t DataType, dims ...Dim) {
	b.m.Graph.Outputs = append(b.m.Graph.Outputs, ValueInfo{Name: name, Type: t, Shape: dims, Scalar: len(dims) == 0})
}

// Initializer adds a constant tensor whose little-endian bytes are raw; raw
// is referenced, not copied, until Marshal.
func (b *Builder) Initializer(name string, t DataType, dims []int64, raw []byte) string {
	return b.addTensor(&Tensor{Name: name, Type: t, Dims: dims, Raw: raw})
}

// InitExternal adds a constant tensor whose bytes live in another file (see
// ExternalData).
func (b *Builder) InitExternal(name string, t DataType, dims []int64, ext ExternalData) string {
	return b.addTensor(&Tensor{Name: name, Type: t, Dims: dims, External: &ext})
}

func (b *Builder) addTensor(t *Tensor) string {
	if !b.define("initializer", t.Name) {
		return t.Name
	}
	if err := t.validate(); err != nil {
		b.fail("initializer %q: %w", t.Name, err)
		return t.Name
	}
	b.m.Graph.Initializers = append(b.m.Graph.Initializers, t)
	return t.Name
}

// InitFloat32 adds a float32 constant (copied into little-endian bytes).
func (b *Builder) InitFloat32(name string, dims []int64, data []float32) string {
	return b.Initializer(name, Float, dims, Float32Bytes(data))
}

// InitInt64 adds an int64 constant (copied into little-endian bytes).
func (b *Builder) InitInt64(name string, dims []int64, data []int64) string {
	return b.Initializer(name, Int64, dims, Int64Bytes(data))
}

// Float32Bytes is v as little-endian bytes.
func Float32Bytes(v []float32) []byte {
	out := make([]byte, 0, 4*len(v))
	for _, f := range v {
		out = binary.LittleEndian.AppendUint32(out, math.Float32bits(f))
	}
	return out
}

// Int64Bytes is v as little-endian bytes.
func Int64Bytes(v []int64) []byte {
	out := make([]byte, 0, 8*len(v))
	for _, x := range v {
		out = binary.LittleEndian.AppendUint64(out, uint64(x))
	}
	return out
}

// Node adds a node of the ONNX domain with the given outputs.
func (b *Builder) Node(op string, inputs, outputs []string, attrs ...Attr) {
	b.NodeDomain("", op, inputs, outputs, attrs...)
}

// NodeDomain adds a node of domain (which must be imported with SetOpset).
func (b *Builder) NodeDomain(domain, op string, inputs, outputs []string, attrs ...Attr) {
	for _, in := range inputs {
		if in != "" && !b.defined[in] {
			b.fail("node %s: input %q is not defined before it", op, in)
			return
		}
	}
	for _, out := range outputs {
		if out != "" && !b.define("node output", out) {
			return
		}
	}
	b.m.Graph.Nodes = append(b.m.Graph.Nodes, Node{
		Name:    b.Fresh(op),
		OpType:  op,
		Domain:  domain,
		Inputs:  append([]string(nil), inputs...),
		Outputs: append([]string(nil), outputs...),
		Attrs:   attrs,
	})
}

// Op adds a one-output ONNX node and returns its fresh output name.
func (b *Builder) Op(op string, inputs []string, attrs ...Attr) string {
	out := b.Fresh(op)
	b.Node(op, inputs, []string{out}, attrs...)
	return out
}

// Rename makes value available under name (an Identity node), for graph
// outputs with fixed names.
func (b *Builder) Rename(value, name string) string {
	b.Node("Identity", []string{value}, []string{name})
	return name
}

// Model validates and returns the model built so far.
func (b *Builder) Model() (*Model, error) {
	if b.err != nil {
		return nil, b.err
	}
	m := b.m
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Marshal validates and encodes the model.
func (b *Builder) Marshal() ([]byte, error) {
	m, err := b.Model()
	if err != nil {
		return nil, err
	}
	return m.Marshal()
}

// Elementwise and linear-algebra helpers; each returns its output's name.

// MatMul is a @ w (numpy matmul semantics, w is [K, N]).
func (b *Builder) MatMul(a, w string) string { return b.Op("MatMul", []string{a, w}) }

// Gemm is alpha*A'·B' + beta*C with B transposed when transB (so an
// nn.Linear weight [N, K] is used as stored). c may be "" (no bias).
func (b *Builder) Gemm(a, w, c string, transB bool) string {
	ins := []string{a, w}
	if c != "" {
		ins = append(ins, c)
	}
	var attrs []Attr
	if transB {
		attrs = append(attrs, AttrInt("transB", 1))
	}
	return b.Op("Gemm", ins, attrs...)
}

// Add is x + y with broadcasting.
func (b *Builder) Add(x, y string) string { return b.Op("Add", []string{x, y}) }

// Sub is x - y with broadcasting.
func (b *Builder) Sub(x, y string) string { return b.Op("Sub", []string{x, y}) }

// Mul is x * y with broadcasting.
func (b *Builder) Mul(x, y string) string { return b.Op("Mul", []string{x, y}) }

// Div is x / y with broadcasting.
func (b *Builder) Div(x, y string) string { return b.Op("Div", []string{x, y}) }

// Pow is x ** y.
func (b *Builder) Pow(x, y string) string { return b.Op("Pow", []string{x, y}) }

// Sqrt is the elementwise square root.
func (b *Builder) Sqrt(x string) string { return b.Op("Sqrt", []string{x}) }

// Exp is the elementwise exponential.
func (b *Builder) Exp(x string) string { return b.Op("Exp", []string{x}) }

// Sigmoid is 1/(1+exp(-x)).
func (b *Builder) Sigmoid(x string) string { return b.Op("Sigmoid", []string{x}) }

// Softplus is log(1+exp(x)).
func (b *Builder) Softplus(x string) string { return b.Op("Softplus", []string{x}) }

// SiLU is x*sigmoid(x), from primitives (ONNX has no SiLU operator at the
// default opset).
func (b *Builder) SiLU(x string) string { return b.Mul(x, b.Sigmoid(x)) }

// Concat joins inputs along axis.
func (b *Builder) Concat(axis int64, inputs ...string) string {
	return b.Op("Concat", inputs, AttrInt("axis", axis))
}

// Const adds an initializer of float32 scalars or vectors under a fresh
// name: dims nil makes a scalar.
func (b *Builder) Const(prefix string, dims []int64, v ...float32) string {
	return b.InitFloat32(b.Fresh(prefix), dims, v)
}

// ConstInt64 adds an int64 vector initializer under a fresh name.
func (b *Builder) ConstInt64(prefix string, v ...int64) string {
	return b.InitInt64(b.Fresh(prefix), []int64{int64(len(v))}, v)
}

// Split cuts x along axis into pieces of the given sizes (opset 13+: sizes
// are an input).
func (b *Builder) Split(x string, axis int64, sizes ...int64) []string {
	outs := make([]string, len(sizes))
	for i := range outs {
		outs[i] = b.Fresh("Split")
	}
	b.Node("Split", []string{x, b.ConstInt64("split_sizes", sizes...)}, outs, AttrInt("axis", axis))
	return outs
}

// Slice takes x[starts:ends] on axes (opset 10+: all inputs).
func (b *Builder) Slice(x string, starts, ends, axes []int64) string {
	return b.Op("Slice", []string{x, b.ConstInt64("starts", starts...),
		b.ConstInt64("ends", ends...), b.ConstInt64("axes", axes...)})
}

// ReduceMean averages x over axes, keeping them as size 1 when keepDims;
// axes are an attribute before opset 18 and an input from 18 on.
func (b *Builder) ReduceMean(x string, keepDims bool, axes ...int64) string {
	keep := AttrInt("keepdims", 0)
	if keepDims {
		keep = AttrInt("keepdims", 1)
	}
	if b.Opset("") >= 18 {
		return b.Op("ReduceMean", []string{x, b.ConstInt64("axes", axes...)}, keep)
	}
	return b.Op("ReduceMean", []string{x}, AttrInts("axes", axes...), keep)
}

// RMSNorm is x / sqrt(mean(x², last axis) + eps) * weight, from ONNX
// primitives (Pow, ReduceMean, Add, Sqrt, Div, Mul) so any runtime and
// ONNX's checker accept it; ONNX Runtime fuses this pattern into its
// SimplifiedLayerNormalization kernel at graph optimisation.
func (b *Builder) RMSNorm(x, weight string, eps float32) string {
	sq := b.Pow(x, b.Const("two", nil, 2))
	mean := b.ReduceMean(sq, true, -1)
	rms := b.Sqrt(b.Add(mean, b.Const("eps", nil, eps)))
	return b.Mul(b.Div(x, rms), weight)
}

// SimplifiedLayerNorm is ONNX Runtime's fused RMSNorm kernel
// (SimplifiedLayerNormalization, registered in the ONNX domain by ONNX
// Runtime only: ONNX's own checker rejects it). Normalises over the last
// axis.
func (b *Builder) SimplifiedLayerNorm(x, weight string, eps float32) string {
	return b.Op("SimplifiedLayerNormalization", []string{x, weight},
		AttrInt("axis", -1), AttrFloat("epsilon", eps))
}

// MatMulNBitsNode adds com.microsoft MatMulNBits: y = a · dequant(w)ᵀ with
// w [n, k] stored as bit-packed blocks (see NBits for the layout). wName is
// uint8 [n, ceil(k/blockSize), blockSize*bits/8], scalesName float32
// [n*ceil(k/blockSize)], zeroPoints "" for the default 2^(bits-1).
// accuracyLevel 0 leaves the choice to ONNX Runtime (fp32 compute); 4 lets
// it quantise a to int8 on the fly.
func (b *Builder) MatMulNBitsNode(a, wName, scalesName, zeroPoints string, k, n, bits, blockSize, accuracyLevel int64) string {
	if b.Opset(MicrosoftDomain) == 0 {
		b.SetOpset(MicrosoftDomain, 1)
	}
	ins := []string{a, wName, scalesName}
	if zeroPoints != "" {
		ins = append(ins, zeroPoints)
	}
	out := b.Fresh("MatMulNBits")
	attrs := []Attr{AttrInt("K", k), AttrInt("N", n), AttrInt("bits", bits), AttrInt("block_size", blockSize)}
	if accuracyLevel != 0 {
		attrs = append(attrs, AttrInt("accuracy_level", accuracyLevel))
	}
	b.NodeDomain(MicrosoftDomain, "MatMulNBits", ins, []string{out}, attrs...)
	return out
}

// MatMulNBits adds q's blocks and scales as initializers named prefix+".qweight"
// and prefix+".scales" and a MatMulNBits node on a.
func (b *Builder) MatMulNBits(a, prefix string, q *NBits) string {
	if err := q.Validate(); err != nil {
		b.fail("%s: %w", prefix, err)
		return ""
	}
	w := b.Initializer(prefix+".qweight", Uint8, q.BlockDims(), q.Blocks)
	s := b.InitFloat32(prefix+".scales", []int64{int64(len(q.Scales))}, q.Scales)
	return b.MatMulNBitsNode(a, w, s, "", int64(q.K), int64(q.N), int64(q.Bits), int64(q.BlockSize), 0)
}
