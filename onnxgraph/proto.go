// Package onnxgraph writes ONNX models (the protobuf of onnx.proto) from Go,
// with no protobuf library: the project builds the graphs for the dense
// segments that ONNX Runtime executes, and onnx-go's message types are
// internal to that module and cannot be imported.
//
// Only what the project emits is covered: ModelProto, OperatorSetIdProto,
// GraphProto, NodeProto, AttributeProto (float, int, string, tensor and
// their lists), TensorProto (dims, data_type, raw_data and external data),
// ValueInfoProto and TypeProto.Tensor with TensorShapeProto. The field
// numbers below are those of onnx/onnx.proto (proto2). Tensor contents are
// always written as raw_data (little-endian) or as external-data references,
// never as the typed repeated fields.
//
// A Model is a plain value; Builder (builder.go) is the convenient way to
// make one. Marshal validates the model (names defined before use, byte
// lengths that match dims and type, opsets for every domain) so mistakes are
// reported here with the tensor or node named, not later by the runtime.
package onnxgraph

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"path"
	"strconv"
	"strings"
)

// DataType is TensorProto.DataType.
type DataType int32

// The element types of TensorProto.DataType (onnx.proto).
const (
	Undefined DataType = 0
	Float     DataType = 1
	Uint8     DataType = 2
	Int8      DataType = 3
	Uint16    DataType = 4
	Int16     DataType = 5
	Int32     DataType = 6
	Int64     DataType = 7
	String    DataType = 8
	Bool      DataType = 9
	Float16   DataType = 10
	Double    DataType = 11
	Uint32    DataType = 12
	Uint64    DataType = 13
	BFloat16  DataType = 16
)

var dataTypeNames = map[DataType]string{
	Undefined: "undefined", Float: "float32", Uint8: "uint8", Int8: "int8",
	Uint16: "uint16", Int16: "int16", Int32: "int32", Int64: "int64",
	String: "string", Bool: "bool", Float16: "float16", Double: "float64",
	Uint32: "uint32", Uint64: "uint64", BFloat16: "bfloat16",
}

func (t DataType) String() string {
	if s, ok := dataTypeNames[t]; ok {
		return s
	}
	return "DataType(" + strconv.Itoa(int(t)) + ")"
}

// Size is the element size in bytes, 0 for types without a fixed size
// (string, undefined, unknown).
func (t DataType) Size() int {
	switch t {
	case Uint8, Int8, Bool:
		return 1
	case Uint16, Int16, Float16, BFloat16:
		return 2
	case Float, Int32, Uint32:
		return 4
	case Int64, Uint64, Double:
		return 8
	}
	return 0
}

// Model is ModelProto.
type Model struct {
	IRVersion       int64   // ir_version = 1
	Opsets          []Opset // opset_import = 8
	ProducerName    string  // producer_name = 2
	ProducerVersion string  // producer_version = 3
	DocString       string  // doc_string = 6
	Graph           Graph   // graph = 7
	Metadata        []KV    // metadata_props = 14
}

// Opset is OperatorSetIdProto: domain "" is the default ONNX domain.
type Opset struct {
	Domain  string // domain = 1
	Version int64  // version = 2
}

// KV is StringStringEntryProto.
type KV struct {
	Key, Value string // key = 1, value = 2
}

// Graph is GraphProto.
type Graph struct {
	Name         string      // name = 2
	Nodes        []Node      // node = 1, in topological order
	Initializers []*Tensor   // initializer = 5
	Inputs       []ValueInfo // input = 11
	Outputs      []ValueInfo // output = 12
	ValueInfo    []ValueInfo // value_info = 13
	DocString    string      // doc_string = 10
}

// Node is NodeProto. An empty input name stands for an omitted optional
// input, as in ONNX.
type Node struct {
	Name    string   // name = 3
	OpType  string   // op_type = 4
	Domain  string   // domain = 7
	Inputs  []string // input = 1
	Outputs []string // output = 2
	Attrs   []Attr   // attribute = 5
}

// AttrType is AttributeProto.AttributeType.
type AttrType int32

// The attribute types the writer supports.
const (
	AttrFloatType   AttrType = 1
	AttrIntType     AttrType = 2
	AttrStringType  AttrType = 3
	AttrTensorType  AttrType = 4
	AttrFloatsType  AttrType = 6
	AttrIntsType    AttrType = 7
	AttrStringsType AttrType = 8
)

// Attr is AttributeProto; Type says which value field is meant.
type Attr struct {
	Name    string    // name = 1
	Type    AttrType  // type = 20
	F       float32   // f = 2
	I       int64     // i = 3
	S       string    // s = 4
	T       *Tensor   // t = 5
	Floats  []float32 // floats = 7
	Ints    []int64   // ints = 8
	Strings []string  // strings = 9
}

// AttrInt makes an INT attribute.
func AttrInt(name string, v int64) Attr { return Attr{Name: name, Type: AttrIntType, I: v} }

// AttrFloat makes a FLOAT attribute.
func AttrFloat(name string, v float32) Attr { return Attr{Name: name, Type: AttrFloatType, F: v} }

// AttrString makes a STRING attribute.
func AttrString(name, v string) Attr { return Attr{Name: name, Type: AttrStringType, S: v} }

// AttrTensor makes a TENSOR attribute (for Constant's value, for example).
func AttrTensor(name string, t *Tensor) Attr { return Attr{Name: name, Type: AttrTensorType, T: t} }

// AttrInts makes an INTS attribute.
func AttrInts(name string, v ...int64) Attr { return Attr{Name: name, Type: AttrIntsType, Ints: v} }

// AttrFloats makes a FLOATS attribute.
func AttrFloats(name string, v ...float32) Attr {
	return Attr{Name: name, Type: AttrFloatsType, Floats: v}
}

// AttrStrings makes a STRINGS attribute.
func AttrStrings(name string, v ...string) Attr {
	return Attr{Name: name, Type: AttrStringsType, Strings: v}
}

// ValueInfo is ValueInfoProto with a tensor type. Shape nil leaves the shape
// out (rank unknown; ONNX's checker refuses that on graph inputs and
// outputs); Scalar with an empty Shape declares rank 0.
type ValueInfo struct {
	Name   string   // name = 1
	Type   DataType // type = 2 -> tensor_type = 1 -> elem_type = 1
	Shape  []Dim    // tensor_type.shape = 2 -> dim = 1
	Scalar bool
}

// Dim is TensorShapeProto.Dimension: a fixed size, a named symbolic size, or
// neither (unknown).
type Dim struct {
	Value int64  // dim_value = 1, used when Param is empty and Value >= 0
	Param string // dim_param = 2
}

// D is a fixed dimension; a negative size means unknown.
func D(v int64) Dim { return Dim{Value: v} }

// Sym is a named symbolic dimension ("batch", "seq").
func Sym(name string) Dim { return Dim{Param: name} }

// Tensor is TensorProto. Exactly one of Raw and External holds the data
// (both empty is valid only for a tensor with no elements). Raw is
// referenced, not copied, until Marshal.
type Tensor struct {
	Name     string        // name = 8
	Type     DataType      // data_type = 2
	Dims     []int64       // dims = 1
	Raw      []byte        // raw_data = 9, little-endian
	External *ExternalData // external_data = 13, data_location = 14 (EXTERNAL)
}

// ExternalData places a tensor's bytes in another file: Location is a path
// relative to the model's folder (or to the folder a session is told about),
// Offset and Length in bytes. Offsets that are multiples of the page size let
// ONNX Runtime map the file instead of reading it.
type ExternalData struct {
	Location string
	Offset   int64
	Length   int64
}

// Elements is the number of elements of dims, with overflow checked.
func Elements(dims []int64) (int64, error) {
	n := int64(1)
	for i, d := range dims {
		if d < 0 {
			return 0, fmt.Errorf("dimension %d is negative (%d)", i, d)
		}
		hi, lo := bits.Mul64(uint64(n), uint64(d))
		if hi != 0 || lo > math.MaxInt64 {
			return 0, fmt.Errorf("dims %v: element count overflows", dims)
		}
		n = int64(lo)
	}
	return n, nil
}

// ByteLen is the byte length of the tensor's data as its dims and type say.
func (t *Tensor) ByteLen() (int64, error) {
	size := t.Type.Size()
	if size == 0 {
		return 0, fmt.Errorf("data type %v has no fixed size", t.Type)
	}
	n, err := Elements(t.Dims)
	if err != nil {
		return 0, err
	}
	if n > math.MaxInt64/int64(size) {
		return 0, fmt.Errorf("dims %v: byte length overflows", t.Dims)
	}
	return n * int64(size), nil
}

// Limits on what the writer accepts; they keep sizes computable in int.
const (
	maxRank = 16
)

func (t *Tensor) validate() error {
	if len(t.Dims) > maxRank {
		return fmt.Errorf("rank %d is over %d", len(t.Dims), maxRank)
	}
	want, err := t.ByteLen()
	if err != nil {
		return err
	}
	if t.External != nil {
		e := t.External
		if len(t.Raw) != 0 {
			return errors.New("has both raw data and external data")
		}
		if e.Location == "" || path.IsAbs(e.Location) || strings.HasPrefix(e.Location, "/") ||
			strings.Contains(e.Location, "..") || strings.ContainsRune(e.Location, 0) {
			return fmt.Errorf("external location %q must be a plain relative path", e.Location)
		}
		if e.Offset < 0 {
			return fmt.Errorf("external offset %d is negative", e.Offset)
		}
		if e.Length != want {
			return fmt.Errorf("external length %d, dims %v of %v need %d bytes", e.Length, t.Dims, t.Type, want)
		}
		if e.Offset > math.MaxInt64-e.Length {
			return fmt.Errorf("external offset %d + length %d overflows", e.Offset, e.Length)
		}
		return nil
	}
	if int64(len(t.Raw)) != want {
		return fmt.Errorf("raw data is %d bytes, dims %v of %v need %d", len(t.Raw), t.Dims, t.Type, want)
	}
	return nil
}

// Validate checks the model: IR version and opsets set, one opset per
// domain, every node's domain imported, names unique and defined before use,
// initializer sizes consistent, graph outputs produced.
func (m *Model) Validate() error {
	if m.IRVersion <= 0 {
		return fmt.Errorf("model: IR version %d", m.IRVersion)
	}
	domains := map[string]bool{}
	for _, o := range m.Opsets {
		if domains[o.Domain] {
			return fmt.Errorf("model: opset for domain %q imported twice", o.Domain)
		}
		if o.Version <= 0 {
			return fmt.Errorf("model: opset %q version %d", o.Domain, o.Version)
		}
		domains[o.Domain] = true
	}
	g := &m.Graph
	if len(g.Nodes) == 0 {
		return fmt.Errorf("graph %q: no nodes", g.Name)
	}
	if len(g.Outputs) == 0 {
		return fmt.Errorf("graph %q: no outputs", g.Name)
	}
	defined := map[string]bool{}
	define := func(kind, name string) error {
		if name == "" {
			return fmt.Errorf("graph %q: %s with an empty name", g.Name, kind)
		}
		if defined[name] {
			return fmt.Errorf("graph %q: %s %q defined twice", g.Name, kind, name)
		}
		defined[name] = true
		return nil
	}
	for _, v := range g.Inputs {
		if err := define("input", v.Name); err != nil {
			return err
		}
		if err := v.validate(); err != nil {
			return fmt.Errorf("graph %q: input %q: %w", g.Name, v.Name, err)
		}
	}
	for _, t := range g.Initializers {
		if t == nil {
			return fmt.Errorf("graph %q: nil initializer", g.Name)
		}
		if err := define("initializer", t.Name); err != nil {
			return err
		}
		if err := t.validate(); err != nil {
			return fmt.Errorf("graph %q: initializer %q: %w", g.Name, t.Name, err)
		}
	}
	for i := range g.Nodes {
		n := &g.Nodes[i]
		label := n.Name
		if label == "" {
			label = fmt.Sprintf("#%d", i)
		}
		if n.OpType == "" {
			return fmt.Errorf("graph %q: node %s has no op type", g.Name, label)
		}
		if !domains[n.Domain] {
			return fmt.Errorf("graph %q: node %s (%s): domain %q has no opset import", g.Name, label, n.OpType, n.Domain)
		}
		for _, in := range n.Inputs {
			if in != "" && !defined[in] {
				return fmt.Errorf("graph %q: node %s (%s): input %q is not defined before it", g.Name, label, n.OpType, in)
			}
		}
		seen := map[string]bool{}
		for _, a := range n.Attrs {
			if a.Name == "" || seen[a.Name] {
				return fmt.Errorf("graph %q: node %s (%s): attribute name %q empty or repeated", g.Name, label, n.OpType, a.Name)
			}
			seen[a.Name] = true
			if err := a.validate(); err != nil {
				return fmt.Errorf("graph %q: node %s (%s): attribute %q: %w", g.Name, label, n.OpType, a.Name, err)
			}
		}
		for _, out := range n.Outputs {
			if out == "" {
				continue // an omitted optional output
			}
			if err := define("node output", out); err != nil {
				return err
			}
		}
	}
	for _, v := range g.Outputs {
		if !defined[v.Name] {
			return fmt.Errorf("graph %q: output %q is not produced", g.Name, v.Name)
		}
		if err := v.validate(); err != nil {
			return fmt.Errorf("graph %q: output %q: %w", g.Name, v.Name, err)
		}
	}
	for _, v := range g.ValueInfo {
		if err := v.validate(); err != nil {
			return fmt.Errorf("graph %q: value info %q: %w", g.Name, v.Name, err)
		}
	}
	return nil
}

func (v *ValueInfo) validate() error {
	if v.Type == Undefined {
		return errors.New("element type undefined")
	}
	if len(v.Shape) > maxRank {
		return fmt.Errorf("rank %d is over %d", len(v.Shape), maxRank)
	}
	return nil
}

func (a *Attr) validate() error {
	switch a.Type {
	case AttrFloatType, AttrIntType, AttrStringType, AttrFloatsType, AttrIntsType, AttrStringsType:
		return nil
	case AttrTensorType:
		if a.T == nil {
			return errors.New("tensor attribute without a tensor")
		}
		if a.T.External != nil {
			return errors.New("tensor attribute with external data (ONNX Runtime refuses it)")
		}
		return a.T.validate()
	}
	return fmt.Errorf("unsupported attribute type %d", a.Type)
}

// MaxModelBytes is protobuf's 2 GiB message limit, which ONNX Runtime
// enforces on models it parses: larger weights go to external data.
const MaxModelBytes = 1<<31 - 1

// Marshal validates the model and encodes it as ModelProto bytes.
func (m *Model) Marshal() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	size := m.size()
	if size > MaxModelBytes {
		return nil, fmt.Errorf("graph %q: encoded model would be %d bytes, over protobuf's 2 GiB limit; put initializers in external data", m.Graph.Name, size)
	}
	buf := make([]byte, 0, size)
	buf = m.appendTo(buf)
	if len(buf) != size {
		return nil, fmt.Errorf("graph %q: internal error: encoded %d bytes, sized %d", m.Graph.Name, len(buf), size)
	}
	return buf, nil
}

// Protobuf wire format: tag = field<<3 | wire type.
const (
	wireVarint  = 0
	wireFixed32 = 5
	wireBytes   = 2
)

func sizeVarint(v uint64) int { return (bits.Len64(v|1) + 6) / 7 }

func appendVarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

func sizeTag(field int) int { return sizeVarint(uint64(field) << 3) }

func appendTag(b []byte, field, wire int) []byte {
	return appendVarint(b, uint64(field)<<3|uint64(wire))
}

// int64 fields are written as their two's complement in a varint (proto
// int64, not sint64).
func sizeIntField(field int, v int64) int { return sizeTag(field) + sizeVarint(uint64(v)) }

func appendIntField(b []byte, field int, v int64) []byte {
	return appendVarint(appendTag(b, field, wireVarint), uint64(v))
}

func sizeLenField(field, n int) int { return sizeTag(field) + sizeVarint(uint64(n)) + n }

func appendLenPrefix(b []byte, field, n int) []byte {
	return appendVarint(appendTag(b, field, wireBytes), uint64(n))
}

func sizeStringField(field int, s string) int {
	if s == "" {
		return 0
	}
	return sizeLenField(field, len(s))
}

func appendStringField(b []byte, field int, s string) []byte {
	if s == "" {
		return b
	}
	return append(appendLenPrefix(b, field, len(s)), s...)
}

// message is one encodable message: size is its encoded length, appendTo
// writes it without a length prefix.
type message interface {
	size() int
	appendTo(b []byte) []byte
}

func sizeMsgField(field int, m message) int { return sizeLenField(field, m.size()) }

func appendMsgField(b []byte, field int, m message) []byte {
	return m.appendTo(appendLenPrefix(b, field, m.size()))
}

func (m *Model) size() int {
	n := sizeIntField(1, m.IRVersion)
	for i := range m.Opsets {
		n += sizeMsgField(8, &m.Opsets[i])
	}
	n += sizeStringField(2, m.ProducerName) + sizeStringField(3, m.ProducerVersion) +
		sizeStringField(6, m.DocString) + sizeMsgField(7, &m.Graph)
	for i := range m.Metadata {
		n += sizeMsgField(14, &m.Metadata[i])
	}
	return n
}

func (m *Model) appendTo(b []byte) []byte {
	b = appendIntField(b, 1, m.IRVersion)
	b = appendStringField(b, 2, m.ProducerName)
	b = appendStringField(b, 3, m.ProducerVersion)
	b = appendStringField(b, 6, m.DocString)
	b = appendMsgField(b, 7, &m.Graph)
	for i := range m.Opsets {
		b = appendMsgField(b, 8, &m.Opsets[i])
	}
	for i := range m.Metadata {
		b = appendMsgField(b, 14, &m.Metadata[i])
	}
	return b
}

func (o *Opset) size() int {
	return sizeLenField(1, len(o.Domain)) + sizeIntField(2, o.Version)
}

func (o *Opset) appendTo(b []byte) []byte {
	// domain is written even when empty: "" is the ONNX domain and some
	// readers want the field present.
	b = append(appendLenPrefix(b, 1, len(o.Domain)), o.Domain...)
	return appendIntField(b, 2, o.Version)
}

func (kv *KV) size() int {
	return sizeStringField(1, kv.Key) + sizeStringField(2, kv.Value)
}

func (kv *KV) appendTo(b []byte) []byte {
	b = appendStringField(b, 1, kv.Key)
	return appendStringField(b, 2, kv.Value)
}

func (g *Graph) size() int {
	n := sizeStringField(2, g.Name) + sizeStringField(10, g.DocString)
	for i := range g.Nodes {
		n += sizeMsgField(1, &g.Nodes[i])
	}
	for _, t := range g.Initializers {
		n += sizeMsgField(5, t)
	}
	for _, vs := range []struct {
		field int
		v     []ValueInfo
	}{{11, g.Inputs}, {12, g.Outputs}, {13, g.ValueInfo}} {
		for i := range vs.v {
			n += sizeMsgField(vs.field, &vs.v[i])
		}
	}
	return n
}

func (g *Graph) appendTo(b []byte) []byte {
	for i := range g.Nodes {
		b = appendMsgField(b, 1, &g.Nodes[i])
	}
	b = appendStringField(b, 2, g.Name)
	for _, t := range g.Initializers {
		b = appendMsgField(b, 5, t)
	}
	b = appendStringField(b, 10, g.DocString)
	for i := range g.Inputs {
		b = appendMsgField(b, 11, &g.Inputs[i])
	}
	for i := range g.Outputs {
		b = appendMsgField(b, 12, &g.Outputs[i])
	}
	for i := range g.ValueInfo {
		b = appendMsgField(b, 13, &g.ValueInfo[i])
	}
	return b
}

func (n *Node) size() int {
	s := 0
	for _, in := range n.Inputs {
		s += sizeLenField(1, len(in)) // empty names are kept: they hold a position
	}
	for _, out := range n.Outputs {
		s += sizeLenField(2, len(out))
	}
	s += sizeStringField(3, n.Name) + sizeStringField(4, n.OpType) + sizeStringField(7, n.Domain)
	for i := range n.Attrs {
		s += sizeMsgField(5, &n.Attrs[i])
	}
	return s
}

func (n *Node) appendTo(b []byte) []byte {
	for _, in := range n.Inputs {
		b = append(appendLenPrefix(b, 1, len(in)), in...)
	}
	for _, out := range n.Outputs {
		b = append(appendLenPrefix(b, 2, len(out)), out...)
	}
	b = appendStringField(b, 3, n.Name)
	b = appendStringField(b, 4, n.OpType)
	for i := range n.Attrs {
		b = appendMsgField(b, 5, &n.Attrs[i])
	}
	b = appendStringField(b, 7, n.Domain)
	return b
}

// The value field of a scalar attribute is always written, zero included:
// ONNX's checker asks that the field named by type be present.
func (a *Attr) size() int {
	n := sizeStringField(1, a.Name) + sizeIntField(20, int64(a.Type))
	switch a.Type {
	case AttrFloatType:
		n += sizeTag(2) + 4
	case AttrIntType:
		n += sizeIntField(3, a.I)
	case AttrStringType:
		n += sizeLenField(4, len(a.S))
	case AttrTensorType:
		n += sizeMsgField(5, a.T)
	case AttrFloatsType:
		n += len(a.Floats) * (sizeTag(7) + 4)
	case AttrIntsType:
		for _, v := range a.Ints {
			n += sizeIntField(8, v)
		}
	case AttrStringsType:
		for _, s := range a.Strings {
			n += sizeLenField(9, len(s))
		}
	}
	return n
}

func (a *Attr) appendTo(b []byte) []byte {
	b = appendStringField(b, 1, a.Name)
	switch a.Type {
	case AttrFloatType:
		b = binary.LittleEndian.AppendUint32(appendTag(b, 2, wireFixed32), math.Float32bits(a.F))
	case AttrIntType:
		b = appendIntField(b, 3, a.I)
	case AttrStringType:
		b = append(appendLenPrefix(b, 4, len(a.S)), a.S...)
	case AttrTensorType:
		b = appendMsgField(b, 5, a.T)
	case AttrFloatsType:
		for _, v := range a.Floats {
			b = binary.LittleEndian.AppendUint32(appendTag(b, 7, wireFixed32), math.Float32bits(v))
		}
	case AttrIntsType:
		for _, v := range a.Ints {
			b = appendIntField(b, 8, v)
		}
	case AttrStringsType:
		for _, s := range a.Strings {
			b = append(appendLenPrefix(b, 9, len(s)), s...)
		}
	}
	return appendIntField(b, 20, int64(a.Type))
}

// ValueInfoProto{name=1, type=2}; TypeProto{tensor_type=1};
// TypeProto.Tensor{elem_type=1, shape=2}; TensorShapeProto{dim=1};
// Dimension{dim_value=1, dim_param=2}.

func (d *Dim) size() int {
	if d.Param != "" {
		return sizeStringField(2, d.Param)
	}
	if d.Value >= 0 {
		return sizeIntField(1, d.Value)
	}
	return 0
}

func (d *Dim) appendTo(b []byte) []byte {
	if d.Param != "" {
		return appendStringField(b, 2, d.Param)
	}
	if d.Value >= 0 {
		return appendIntField(b, 1, d.Value)
	}
	return b
}

type shapeMsg []Dim

func (s shapeMsg) size() int {
	n := 0
	for i := range s {
		n += sizeMsgField(1, &s[i])
	}
	return n
}

func (s shapeMsg) appendTo(b []byte) []byte {
	for i := range s {
		b = appendMsgField(b, 1, &s[i])
	}
	return b
}

type tensorTypeMsg struct{ v *ValueInfo }

func (t tensorTypeMsg) hasShape() bool { return t.v.Shape != nil || t.v.Scalar }

func (t tensorTypeMsg) size() int {
	n := sizeIntField(1, int64(t.v.Type))
	if t.hasShape() {
		n += sizeMsgField(2, shapeMsg(t.v.Shape))
	}
	return n
}

func (t tensorTypeMsg) appendTo(b []byte) []byte {
	b = appendIntField(b, 1, int64(t.v.Type))
	if t.hasShape() {
		b = appendMsgField(b, 2, shapeMsg(t.v.Shape))
	}
	return b
}

type typeMsg struct{ v *ValueInfo }

func (t typeMsg) size() int                { return sizeMsgField(1, tensorTypeMsg(t)) }
func (t typeMsg) appendTo(b []byte) []byte { return appendMsgField(b, 1, tensorTypeMsg(t)) }

func (v *ValueInfo) size() int {
	return sizeStringField(1, v.Name) + sizeMsgField(2, typeMsg{v})
}

func (v *ValueInfo) appendTo(b []byte) []byte {
	b = appendStringField(b, 1, v.Name)
	return appendMsgField(b, 2, typeMsg{v})
}

// TensorProto{dims=1, data_type=2, name=8, raw_data=9, external_data=13,
// data_location=14}; external_data entries are StringStringEntryProto with
// the keys "location", "offset" and "length".

func (t *Tensor) externalKVs() []KV {
	e := t.External
	return []KV{
		{"location", e.Location},
		{"offset", strconv.FormatInt(e.Offset, 10)},
		{"length", strconv.FormatInt(e.Length, 10)},
	}
}

func (t *Tensor) size() int {
	n := 0
	for _, d := range t.Dims {
		n += sizeIntField(1, d)
	}
	n += sizeIntField(2, int64(t.Type)) + sizeStringField(8, t.Name)
	if t.External != nil {
		for _, kv := range t.externalKVs() {
			n += sizeMsgField(13, &kv)
		}
		n += sizeIntField(14, 1)
	} else {
		n += sizeLenField(9, len(t.Raw))
	}
	return n
}

func (t *Tensor) appendTo(b []byte) []byte {
	for _, d := range t.Dims {
		b = appendIntField(b, 1, d)
	}
	b = appendIntField(b, 2, int64(t.Type))
	b = appendStringField(b, 8, t.Name)
	if t.External != nil {
		for _, kv := range t.externalKVs() {
			b = appendMsgField(b, 13, &kv)
		}
		return appendIntField(b, 14, 1) // DataLocation EXTERNAL
	}
	return append(appendLenPrefix(b, 9, len(t.Raw)), t.Raw...)
}
