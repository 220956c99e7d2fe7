package source

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/memmamba/memmamba/quant"
)

// floatSize is the element size of the float dtypes DecodeFloat32 reads, 0
// for any other dtype.
func floatSize(dt DType) int {
	switch dt {
	case F64:
		return 8
	case F32:
		return 4
	case F16, BF16:
		return 2
	}
	return 0
}

// DecodeFloat32 converts little-endian raw data of a float dtype (F64, F32,
// F16, BF16) to float32 (F64 rounds to nearest; the halves widen exactly).
// It is the conversion every reader whose files store plain little-endian
// arrays (safetensors, torch.save zips) shares.
func DecodeFloat32(dt DType, raw []byte) ([]float32, error) {
	size := floatSize(dt)
	if size == 0 {
		return nil, fmt.Errorf("dtype %s is not a float type", dt)
	}
	if len(raw)%size != 0 {
		return nil, fmt.Errorf("%d bytes is not a whole number of %s values", len(raw), dt)
	}
	out := make([]float32, len(raw)/size)
	switch dt {
	case F64:
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:])))
		}
	case F32:
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	case F16:
		for i := range out {
			out[i] = quant.F16ToF32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	case BF16:
		for i := range out {
			out[i] = quant.BF16ToF32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	}
	return out, nil
}
