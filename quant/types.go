package quant

import (
	"fmt"
	"strings"
)

// Type is the storage type of a tensor.
type Type uint32

// Storage types. The values are GGML's ggml_type ids.
const (
	F32  Type = 0
	F16  Type = 1
	Q4_0 Type = 2
	Q8_0 Type = 8
	BF16 Type = 30
)

// BlockSize is the number of values in one block of Q8_0 and Q4_0.
const BlockSize = 32

// Bytes per block of the block types: an f16 scale and the quants.
const (
	Q8_0BlockBytes = 2 + BlockSize   // 34
	Q4_0BlockBytes = 2 + BlockSize/2 // 18
)

// Types lists every supported type, in the order the CLI documents them.
var Types = []Type{F32, F16, BF16, Q8_0, Q4_0}

// String returns the user-facing name: f32, f16, bf16, int8 or int4.
func (t Type) String() string {
	switch t {
	case F32:
		return "f32"
	case F16:
		return "f16"
	case BF16:
		return "bf16"
	case Q8_0:
		return "int8"
	case Q4_0:
		return "int4"
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// GGMLName returns GGML's name of the type (F32, F16, BF16, Q8_0, Q4_0).
func (t Type) GGMLName() string {
	switch t {
	case F32:
		return "F32"
	case F16:
		return "F16"
	case BF16:
		return "BF16"
	case Q8_0:
		return "Q8_0"
	case Q4_0:
		return "Q4_0"
	}
	return t.String()
}

// Valid reports whether t is one of the supported types.
func (t Type) Valid() bool {
	switch t {
	case F32, F16, BF16, Q8_0, Q4_0:
		return true
	}
	return false
}

// ParseType accepts the user-facing names (f32, f16, bf16, int8, int4) and
// GGML's (q8_0, q4_0), case-insensitively.
func ParseType(s string) (Type, error) {
	switch strings.ToLower(s) {
	case "f32", "float32", "fp32":
		return F32, nil
	case "f16", "float16", "fp16":
		return F16, nil
	case "bf16", "bfloat16":
		return BF16, nil
	case "int8", "q8_0", "q8":
		return Q8_0, nil
	case "int4", "q4_0", "q4":
		return Q4_0, nil
	}
	return 0, fmt.Errorf("unknown type %q (want f32, f16, bf16, int8 or int4)", s)
}

// BlockLen is the number of values a block of t holds: 32 for the block
// types, 1 for the float types. A row's length must be a multiple of it.
func (t Type) BlockLen() int {
	if t == Q8_0 || t == Q4_0 {
		return BlockSize
	}
	return 1
}

// blockBytes is the size in bytes of one block of t.
func (t Type) blockBytes() int {
	switch t {
	case F32:
		return 4
	case F16, BF16:
		return 2
	case Q8_0:
		return Q8_0BlockBytes
	case Q4_0:
		return Q4_0BlockBytes
	}
	return 0
}

// RowBytes returns the bytes that n values of type t take. It fails when t
// is unknown, n is negative, or n is not a multiple of t's block length.
func (t Type) RowBytes(n int) (int, error) {
	if !t.Valid() {
		return 0, fmt.Errorf("unknown tensor type %d", uint32(t))
	}
	if n < 0 || n%t.BlockLen() != 0 {
		return 0, fmt.Errorf("%d values do not fill whole %s blocks of %d", n, t, t.BlockLen())
	}
	nb := int64(n / t.BlockLen())
	b := nb * int64(t.blockBytes())
	if b/int64(t.blockBytes()) != nb || b > 1<<48 {
		return 0, fmt.Errorf("%d values of %s overflow", n, t)
	}
	return int(b), nil
}
