package gguf

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/memmamba/memmamba/quant"
)

// decodable reports whether ReadFloat32 can convert type t.
func decodable(t GGMLType) bool {
	switch t {
	case GGMLF32, GGMLF16, GGMLBF16, GGMLF64, GGMLQ8_0, GGMLQ4_0, GGMLI8, GGMLI16, GGMLI32, GGMLI64:
		return true
	}
	return false
}

// decodeF32 converts raw little-endian data of type t to float32. The length
// of raw was checked against the tensor's dims when the file was opened; it
// is checked again here so that the function is safe on its own.
func decodeF32(t GGMLType, raw []byte) ([]float32, error) {
	tr := traits[t]
	if tr.blockSize == 0 || len(raw)%tr.blockSize != 0 {
		return nil, fmt.Errorf("%d bytes are not whole %s blocks", len(raw), t)
	}
	n := len(raw) / tr.blockSize * tr.blockLen
	out := make([]float32, n)
	le := binary.LittleEndian
	switch t {
	case GGMLF32, GGMLF16, GGMLBF16, GGMLQ8_0, GGMLQ4_0:
		// GGML's ids are quant.Type's values.
		if err := quant.Decode(quant.Type(t), out, raw); err != nil {
			return nil, err
		}
	case GGMLF64:
		for i := range out {
			out[i] = float32(math.Float64frombits(le.Uint64(raw[8*i:])))
		}
	case GGMLI8:
		for i := range out {
			out[i] = float32(int8(raw[i]))
		}
	case GGMLI16:
		for i := range out {
			out[i] = float32(int16(le.Uint16(raw[2*i:])))
		}
	case GGMLI32:
		for i := range out {
			out[i] = float32(int32(le.Uint32(raw[4*i:])))
		}
	case GGMLI64:
		for i := range out {
			out[i] = float32(int64(le.Uint64(raw[8*i:])))
		}
	default:
		return nil, fmt.Errorf("type %s cannot be converted to float32", t)
	}
	return out, nil
}
