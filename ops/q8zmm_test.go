//go:build !purego && amd64

package ops

import (
	"fmt"
	"math"
	"testing"

	"github.com/memmamba/memmamba/quant"
)

// TestQ8AVX512Bits checks the 512-bit int8 kernel against the 256-bit AVX2
// kernel, bit for bit: every block count from 0 to 9 (odd counts
// end in the 256-bit body), row strides with and without padding, the four
// row slots (stride 0 runs one row four times), weights at -128 and 127,
// activations at their extremes, and a guard word after out.
func TestQ8AVX512Bits(t *testing.T) {
	if simd < simdAVX512 {
		t.Skip("no AVX-512 VNNI on this machine")
	}
	rng := newRNG(77)
	const bb = 2 + quant.BlockSize // bytes per Q8_0 block
	for nb := 0; nb <= 9; nb++ {
		for _, pad := range []int{0, 3, 64} {
			stride := nb*bb + pad
			w := make([]byte, 4*stride+bb)
			for i := range w {
				w[i] = byte(rng.IntN(256))
			}
			for r := 0; r < 4; r++ { // sane f16 scales; extreme weights
				for b := 0; b < nb; b++ {
					o := r*stride + b*bb
					w[o], w[o+1] = 0x00, 0x2c+byte(rng.IntN(8)) // 2^-4 .. 2^-1
					if b == 0 {
						w[o+2], w[o+3] = 0x80, 0x7f
					}
				}
			}
			xq := make([]int8, nb*quant.BlockSize+1)
			xd := make([]float32, nb+1)
			for i := range xq {
				xq[i] = int8(rng.IntN(255) - 127)
			}
			if nb > 0 {
				xq[0], xq[1] = 127, -127
			}
			for i := range xd {
				xd[i] = rng.Float32() + 0.01
			}
			for _, st := range []int{stride, 0} {
				var want, got [5]float32
				got[4] = math.Float32frombits(0x7fc0dead)
				dotQ8x4AVX2(&w[0], st, nb, &xq[0], &xd[0], (*[4]float32)(want[:4]))
				dotQ8x4AVX512(&w[0], st, nb, &xq[0], &xd[0], (*[4]float32)(got[:4]))
				what := fmt.Sprintf("nb=%d pad=%d stride=%d", nb, pad, st)
				sameBits(t, what, got[:4], want[:4])
				if math.Float32bits(got[4]) != 0x7fc0dead {
					t.Fatalf("%s: wrote past out", what)
				}
			}
		}
	}
}
