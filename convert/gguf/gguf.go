// Package gguf reads and writes GGUF files, the model format of ggml and
// llama.cpp (spec: ggml's docs/gguf.md).
//
// A GGUF file is a little-endian header (magic "GGUF", version, tensor
// count, key/value count), the key/value metadata, the tensor infos (name,
// dims, ggml type, offset into the data section), padding to the file's
// alignment, and the tensor data, each tensor aligned.
//
// The reader (Open, NewReader) parses the header eagerly with hard limits
// and reads tensor data on demand, one tensor at a time; *File implements
// source.Reader so the converter can take a GGUF file like any checkpoint.
// The writer (Create, NewWriter) takes the metadata and tensor infos up
// front, writes the header, then streams each tensor's bytes in order; its
// output is a pure function of its input.
//
// Dims: GGUF lists a tensor's dims innermost first (ne[0] is the length of a
// row), the reverse of PyTorch's shape. TensorInfo.Dims keeps GGUF's order;
// the source.Reader view (Tensors) reports PyTorch order.
//
// Metadata values are plain Go values: uint8, int8, uint16, int16, uint32,
// int32, uint64, int64, float32, float64, bool and string for scalars; a
// typed slice ([]uint8 ... []string, []bool) for an array; []any whose
// elements are themselves arrays for an array of arrays.
package gguf

import (
	"fmt"
	"math/bits"

	"github.com/memmamba/memmamba/quant"
)

// Magic is the first four bytes of every GGUF file.
const Magic = "GGUF"

// Version is the version this package writes. It reads 2 and 3.
const Version = 3

// DefaultAlignment is the data alignment when general.alignment is absent.
const DefaultAlignment = 32

// KeyAlignment is the metadata key that sets the data alignment (uint32).
const KeyAlignment = "general.alignment"

// MaxNameLen is ggml's limit on tensor name length (GGML_MAX_NAME - 1);
// the writer refuses longer names because llama.cpp cannot load them.
const MaxNameLen = 63

// Hard limits of the reader. They are far above any real model and keep a
// hostile file from making the parser allocate or loop without bound.
const (
	MaxTensors   = 1 << 16 // tensor infos
	MaxKVs       = 1 << 16 // key/value pairs
	MaxKeyLen    = 1 << 16 // bytes of a key or tensor name
	MaxStringLen = 1 << 26 // bytes of a string value (64 MiB)
	MaxArrayLen  = 1 << 26 // elements of one array
	MaxArrayNest = 4       // depth of arrays of arrays
	MaxDims      = 4       // ggml's GGML_MAX_DIMS
	MaxAlignment = 1 << 24 // general.alignment
)

// ValueType is the type tag of a metadata value (gguf_metadata_value_type).
type ValueType uint32

// Metadata value types.
const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

var valueTypeNames = [...]string{"UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32", "BOOL", "STRING", "ARRAY", "UINT64", "INT64", "FLOAT64"}

func (t ValueType) String() string {
	if int(t) < len(valueTypeNames) {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// size is the encoded size of a fixed-size scalar type, 0 for string and
// array (and unknown types).
func (t ValueType) size() int {
	switch t {
	case TypeUint8, TypeInt8, TypeBool:
		return 1
	case TypeUint16, TypeInt16:
		return 2
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4
	case TypeUint64, TypeInt64, TypeFloat64:
		return 8
	}
	return 0
}

// minSize is the fewest bytes one encoded value of type t takes: a string
// is at least its 8-byte length, an array its 4-byte type and 8-byte count.
func (t ValueType) minSize() int {
	switch t {
	case TypeString:
		return 8
	case TypeArray:
		return 12
	}
	return t.size()
}

// KV is one metadata key/value pair.
type KV struct {
	Key   string
	Value any
}

// GGMLType is a tensor's ggml_type id. The ids of the types this project
// computes with are those of quant.Type.
type GGMLType uint32

// ggml type ids that the reader knows the block layout of.
const (
	GGMLF32  GGMLType = 0
	GGMLF16  GGMLType = 1
	GGMLQ4_0 GGMLType = 2
	GGMLQ4_1 GGMLType = 3
	GGMLQ5_0 GGMLType = 6
	GGMLQ5_1 GGMLType = 7
	GGMLQ8_0 GGMLType = 8
	GGMLQ8_1 GGMLType = 9
	GGMLQ2_K GGMLType = 10
	GGMLQ3_K GGMLType = 11
	GGMLQ4_K GGMLType = 12
	GGMLQ5_K GGMLType = 13
	GGMLQ6_K GGMLType = 14
	GGMLQ8_K GGMLType = 15
	GGMLI8   GGMLType = 24
	GGMLI16  GGMLType = 25
	GGMLI32  GGMLType = 26
	GGMLI64  GGMLType = 27
	GGMLF64  GGMLType = 28
	GGMLBF16 GGMLType = 30
)

type typeTraits struct {
	name      string
	blockLen  int // values per block
	blockSize int // bytes per block
}

// traits lists the ggml types whose sizes the reader knows (ggml.c's
// type_traits). Files with other types are refused at Open, since the
// reader could not bound-check their data.
var traits = map[GGMLType]typeTraits{
	GGMLF32:  {"F32", 1, 4},
	GGMLF16:  {"F16", 1, 2},
	GGMLQ4_0: {"Q4_0", 32, 18},
	GGMLQ4_1: {"Q4_1", 32, 20},
	GGMLQ5_0: {"Q5_0", 32, 22},
	GGMLQ5_1: {"Q5_1", 32, 24},
	GGMLQ8_0: {"Q8_0", 32, 34},
	GGMLQ8_1: {"Q8_1", 32, 36},
	GGMLQ2_K: {"Q2_K", 256, 84},
	GGMLQ3_K: {"Q3_K", 256, 110},
	GGMLQ4_K: {"Q4_K", 256, 144},
	GGMLQ5_K: {"Q5_K", 256, 176},
	GGMLQ6_K: {"Q6_K", 256, 210},
	GGMLQ8_K: {"Q8_K", 256, 292},
	GGMLI8:   {"I8", 1, 1},
	GGMLI16:  {"I16", 1, 2},
	GGMLI32:  {"I32", 1, 4},
	GGMLI64:  {"I64", 1, 8},
	GGMLF64:  {"F64", 1, 8},
	GGMLBF16: {"BF16", 1, 2},
}

// String is ggml's name of the type.
func (t GGMLType) String() string {
	if tr, ok := traits[t]; ok {
		return tr.name
	}
	return fmt.Sprintf("ggml_type(%d)", uint32(t))
}

// Known reports whether the package knows the type's block layout.
func (t GGMLType) Known() bool { _, ok := traits[t]; return ok }

// Quant returns the project's quant.Type for t, if it is one of them.
func (t GGMLType) Quant() (quant.Type, bool) {
	q := quant.Type(t)
	return q, q.Valid()
}

// TensorInfo describes one tensor of a GGUF file.
type TensorInfo struct {
	Name string
	// Dims in GGUF order: Dims[0] (ne[0]) is the row length.
	Dims []uint64
	Type GGMLType
	// Offset of the data from the start of the data section (reader only;
	// the writer computes it).
	Offset uint64
	// Size is the data's size in bytes (reader only; the writer computes it).
	Size uint64
}

// Shape returns the dims in PyTorch order (outermost first).
func (t TensorInfo) Shape() []int {
	s := make([]int, len(t.Dims))
	for i, d := range t.Dims {
		s[len(t.Dims)-1-i] = int(d)
	}
	return s
}

// DimsFromShape converts a PyTorch shape to GGUF dims (innermost first).
func DimsFromShape(shape []int) []uint64 {
	d := make([]uint64, len(shape))
	for i, s := range shape {
		d[len(shape)-1-i] = uint64(s)
	}
	return d
}

// dataSize returns the bytes of a tensor of type t and dims, checking that
// each row fills whole blocks and that nothing overflows (the result is at
// most 1<<62).
func dataSize(t GGMLType, dims []uint64) (uint64, error) {
	tr, ok := traits[t]
	if !ok {
		return 0, fmt.Errorf("unsupported ggml type %d", uint32(t))
	}
	if len(dims) > MaxDims {
		return 0, fmt.Errorf("%d dims, at most %d allowed", len(dims), MaxDims)
	}
	n := uint64(1)
	for i, d := range dims {
		if d > 1<<62 {
			return 0, fmt.Errorf("dim %d is %d, too large", i, d)
		}
		hi, lo := bits.Mul64(n, d)
		if hi != 0 || lo > 1<<62 {
			return 0, fmt.Errorf("dims %v overflow", dims)
		}
		n = lo
	}
	row := uint64(1)
	if len(dims) > 0 {
		row = dims[0]
	}
	if row%uint64(tr.blockLen) != 0 {
		return 0, fmt.Errorf("row length %d is not a multiple of %s's block of %d", row, tr.name, tr.blockLen)
	}
	hi, lo := bits.Mul64(n/uint64(tr.blockLen), uint64(tr.blockSize))
	if hi != 0 || lo > 1<<62 {
		return 0, fmt.Errorf("dims %v of %s overflow", dims, tr.name)
	}
	return lo, nil
}

// alignUp rounds n up to a multiple of align (a power of two), reporting
// overflow.
func alignUp(n, align uint64) (uint64, bool) {
	r := (n + align - 1) &^ (align - 1)
	return r, r >= n
}

// validAlignment reports whether a is a usable alignment.
func validAlignment(a uint64) bool {
	return a != 0 && a&(a-1) == 0 && a <= MaxAlignment
}
