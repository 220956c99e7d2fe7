package quant

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Encode stores the values of src into dst as type t. len(src) must be a
// multiple of t.BlockLen() and len(dst) must be exactly t.RowBytes(len(src)).
// It fails, naming the index, on NaN, Inf and values whose encoding would
// overflow (see the package doc); dst's content is unspecified then.
func Encode(t Type, dst []byte, src []float32) error {
	want, err := t.RowBytes(len(src))
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	if len(dst) != want {
		return fmt.Errorf("encode %d %s values: destination has %d bytes, want %d", len(src), t, len(dst), want)
	}
	switch t {
	case F32:
		for i, x := range src {
			if !finite(x) {
				return checkFinite(i, x)
			}
			binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(x))
		}
	case F16:
		for i, x := range src {
			if !finite(x) {
				return checkFinite(i, x)
			}
			h := F32ToF16(x)
			if h&0x7fff == 0x7c00 {
				return fmt.Errorf("value %d (%g) overflows f16 (largest finite is 65504)", i, x)
			}
			binary.LittleEndian.PutUint16(dst[2*i:], h)
		}
	case BF16:
		for i, x := range src {
			if !finite(x) {
				return checkFinite(i, x)
			}
			h := F32ToBF16(x)
			if h&0x7fff == 0x7f80 {
				return fmt.Errorf("value %d (%g) overflows bf16", i, x)
			}
			binary.LittleEndian.PutUint16(dst[2*i:], h)
		}
	case Q8_0:
		for b := 0; b < len(src)/BlockSize; b++ {
			x := (*[BlockSize]float32)(src[b*BlockSize:])
			if err := checkBlock(b*BlockSize, x, 127, "int8"); err != nil {
				return err
			}
			EncodeQ8_0Block((*[Q8_0BlockBytes]byte)(dst[b*Q8_0BlockBytes:]), x)
		}
	case Q4_0:
		for b := 0; b < len(src)/BlockSize; b++ {
			x := (*[BlockSize]float32)(src[b*BlockSize:])
			if err := checkBlock(b*BlockSize, x, 8, "int4"); err != nil {
				return err
			}
			EncodeQ4_0Block((*[Q4_0BlockBytes]byte)(dst[b*Q4_0BlockBytes:]), x)
		}
	}
	return nil
}

// Decode expands src, holding len(dst) values of type t, into dst.
// len(src) must be exactly t.RowBytes(len(dst)). Every byte pattern decodes;
// stored NaN and Inf come out as NaN and Inf.
func Decode(t Type, dst []float32, src []byte) error {
	want, err := t.RowBytes(len(dst))
	if err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	if len(src) != want {
		return fmt.Errorf("decode %d %s values: source has %d bytes, want %d", len(dst), t, len(src), want)
	}
	switch t {
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	case F16:
		for i := range dst {
			dst[i] = F16ToF32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case BF16:
		for i := range dst {
			dst[i] = BF16ToF32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case Q8_0:
		for b := 0; b < len(dst)/BlockSize; b++ {
			DecodeQ8_0Block((*[BlockSize]float32)(dst[b*BlockSize:]), (*[Q8_0BlockBytes]byte)(src[b*Q8_0BlockBytes:]))
		}
	case Q4_0:
		for b := 0; b < len(dst)/BlockSize; b++ {
			DecodeQ4_0Block((*[BlockSize]float32)(dst[b*BlockSize:]), (*[Q4_0BlockBytes]byte)(src[b*Q4_0BlockBytes:]))
		}
	}
	return nil
}

// Quantize returns src encoded as type t in a new slice (see Encode).
func Quantize(t Type, src []float32) ([]byte, error) {
	n, err := t.RowBytes(len(src))
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	dst := make([]byte, n)
	if err := Encode(t, dst, src); err != nil {
		return nil, err
	}
	return dst, nil
}

// Dequantize decodes src, a whole number of blocks of type t, into a new
// slice of t.RowLen(len(src)) values (see Decode).
func Dequantize(t Type, src []byte) ([]float32, error) {
	n, err := t.RowLen(len(src))
	if err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	dst := make([]float32, n)
	if err := Decode(t, dst, src); err != nil {
		return nil, err
	}
	return dst, nil
}

// RowLen returns the number of values that nbytes bytes of type t hold. It
// fails when t is unknown, nbytes is negative, or nbytes is not a whole
// number of t's blocks.
func (t Type) RowLen(nbytes int) (int, error) {
	if !t.Valid() {
		return 0, fmt.Errorf("unknown tensor type %d", uint32(t))
	}
	bb := t.blockBytes()
	if nbytes < 0 || nbytes%bb != 0 {
		return 0, fmt.Errorf("%d bytes are not whole %s blocks of %d bytes", nbytes, t, bb)
	}
	return nbytes / bb * t.BlockLen(), nil
}

// finite reports whether x is neither NaN nor ±Inf; it inlines, keeping
// the error formatting of checkFinite off the per-value path.
func finite(x float32) bool {
	return math.Float32bits(x)&0x7f800000 != 0x7f800000
}

// checkFinite reports NaN or ±Inf at index i.
func checkFinite(i int, x float32) error {
	switch {
	case x != x:
		return fmt.Errorf("value %d is NaN", i)
	case x > math.MaxFloat32:
		return fmt.Errorf("value %d is +Inf", i)
	case x < -math.MaxFloat32:
		return fmt.Errorf("value %d is -Inf", i)
	}
	return nil
}

// checkBlock refuses non-finite values in the block starting at index base,
// and a block whose scale max|x|/div would overflow f16.
func checkBlock(base int, x *[BlockSize]float32, div float32, name string) error {
	var amax float32
	arg := 0
	for j, v := range x {
		if !finite(v) {
			return checkFinite(base+j, v)
		}
		if a := abs32(v); a > amax {
			amax, arg = a, j
		}
	}
	if F32ToF16(amax/div)&0x7fff == 0x7c00 {
		return fmt.Errorf("value %d (%g): the %s block scale |x|/%g overflows f16 (|x| must stay below %g)",
			base+arg, x[arg], name, div, div*65520)
	}
	return nil
}

func abs32(x float32) float32 {
	return math.Float32frombits(math.Float32bits(x) &^ (1 << 31))
}

// EncodeQ8_0Block quantises 32 values into one Q8_0 block, exactly as ggml's
// quantize_row_q8_0_ref does (see the package doc). It does not validate:
// the values must be finite and max|x| below 127*65520, as Encode checks;
// otherwise the bytes are unspecified (it does not panic).
func EncodeQ8_0Block(dst *[Q8_0BlockBytes]byte, x *[BlockSize]float32) {
	var amax float32
	for _, v := range x {
		amax = max(amax, abs32(v))
	}
	d := amax / 127
	var id float32
	if d != 0 {
		id = 1 / d
	}
	binary.LittleEndian.PutUint16(dst[:], F32ToF16(d))
	if id > math.MaxFloat32 {
		// 1/d overflowed: ggml's result is undefined; f16(d) is 0 anyway.
		clear(dst[2:])
		return
	}
	for j, v := range x {
		// One float32 rounding of x*id, then roundf (half away from zero)
		// and C's conversion to int8. Via int the wrap is defined: q only
		// leaves [-127, 127] when d is a float32 subnormal, where f16(d)
		// is 0 and the block decodes to zeros anyway.
		p := v * id
		dst[2+j] = byte(int8(int(math.Round(float64(p)))))
	}
}

// EncodeQ4_0Block quantises 32 values into one Q4_0 block, exactly as ggml's
// quantize_row_q4_0_ref does (see the package doc). It does not validate:
// the values must be finite and max|x| below 8*65520, as Encode checks;
// otherwise the bytes are unspecified (it does not panic).
func EncodeQ4_0Block(dst *[Q4_0BlockBytes]byte, x *[BlockSize]float32) {
	var amax, m float32
	for _, v := range x {
		if a := abs32(v); amax < a {
			amax, m = a, v
		}
	}
	d := m / -8
	var id float32
	if d != 0 {
		id = 1 / d
	}
	binary.LittleEndian.PutUint16(dst[:], F32ToF16(d))
	if abs32(id) > math.MaxFloat32 {
		// 1/d overflowed: ggml's result is undefined; f16(d) is 0 anyway.
		clear(dst[2:])
		return
	}
	for j := range BlockSize / 2 {
		dst[2+j] = q4(x[j]*id) | q4(x[j+BlockSize/2]*id)<<4
	}
}

// q4 is min(15, (int8_t)(p + 8.5f)) for p = x*id. The explicit float32
// conversion stops the compiler fusing the multiply and add, which would
// round differently from ggml's C. For the finite inputs Encode passes,
// p+8.5 lies in about [0.5, 16.5], so the truncation is in range.
func q4(p float32) byte {
	v := float32(p) + 8.5
	if !(v >= 0 && v < 16) { // also catches NaN
		if v >= 16 {
			return 15
		}
		return 0
	}
	return byte(int8(v))
}

// DecodeQ8_0Block expands one Q8_0 block: dst[j] = d * q[j], computed in
// float32 as ggml's dequantize_row_q8_0 does.
func DecodeQ8_0Block(dst *[BlockSize]float32, b *[Q8_0BlockBytes]byte) {
	d := F16ToF32(binary.LittleEndian.Uint16(b[:]))
	for j := range dst {
		dst[j] = float32(int8(b[2+j])) * d
	}
}

// DecodeQ4_0Block expands one Q4_0 block: dst[j] = d * (q[j] - 8), where
// q[j] is the low nibble of byte 2+j for j < 16 and the high nibble of byte
// 2+j-16 otherwise, computed in float32 as ggml's dequantize_row_q4_0 does.
func DecodeQ4_0Block(dst *[BlockSize]float32, b *[Q4_0BlockBytes]byte) {
	d := F16ToF32(binary.LittleEndian.Uint16(b[:]))
	for j := range BlockSize / 2 {
		q := b[2+j]
		dst[j] = float32(int(q&0x0f)-8) * d
		dst[j+BlockSize/2] = float32(int(q>>4)-8) * d
	}
}
