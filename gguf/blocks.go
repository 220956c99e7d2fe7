package gguf

import (
	"encoding/binary"
	"fmt"

	"github.com/memmamba/memmamba/quant"
)

// decodeBlocks dequantises Q8_0 or Q4_0 blocks (ggml's layouts) into dst.
//
// Q8_0: an f16 scale d and 32 int8 q; value i = d * q[i].
// Q4_0: an f16 scale d and 16 bytes; for j < 16, value j = d * (lo4(b[j]) - 8)
// and value j+16 = d * (hi4(b[j]) - 8).
//
// TODO: use quant.Decode once package quant has it (it is being written).
func decodeBlocks(t quant.Type, dst []float32, src []byte) error {
	bs := quant.Q8_0BlockBytes
	if t == quant.Q4_0 {
		bs = quant.Q4_0BlockBytes
	}
	if len(src)%bs != 0 || len(src)/bs*quant.BlockSize != len(dst) {
		return fmt.Errorf("%d bytes of %s do not decode to %d values", len(src), t, len(dst))
	}
	for b := 0; b < len(src)/bs; b++ {
		blk := src[b*bs : (b+1)*bs]
		d := quant.F16ToF32(binary.LittleEndian.Uint16(blk))
		out := dst[b*quant.BlockSize : (b+1)*quant.BlockSize]
		if t == quant.Q8_0 {
			for i := range out {
				out[i] = d * float32(int8(blk[2+i]))
			}
			continue
		}
		for j := 0; j < quant.BlockSize/2; j++ {
			q := blk[2+j]
			out[j] = d * float32(int(q&0xf)-8)
			out[j+quant.BlockSize/2] = d * float32(int(q>>4)-8)
		}
	}
	return nil
}
