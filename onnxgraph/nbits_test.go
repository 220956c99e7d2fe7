package onnxgraph

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/memmamba/memmamba/quant"
)

// TestNBitsFromBlocks: the MatMulNBits form of Q8_0 and Q4_0 blocks
// dequantises to exactly the values the blocks decode to.
func TestNBitsFromBlocks(t *testing.T) {
	const rows, cols = 3, 96
	rng := rand.New(rand.NewPCG(1, 2))
	w := make([]float32, rows*cols)
	for i := range w {
		w[i] = float32(rng.NormFloat64())
	}
	for _, typ := range []quant.Type{quant.Q8_0, quant.Q4_0} {
		data, err := quant.Quantize(typ, w)
		if err != nil {
			t.Fatal(err)
		}
		want := make([]float32, rows*cols)
		if err := quant.Decode(typ, want, data); err != nil {
			t.Fatal(err)
		}
		q, err := NBitsFromBlocks(typ, rows, cols, data)
		if err != nil {
			t.Fatal(err)
		}
		got, err := q.Dequantize()
		if err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%s: element %d: %v, the blocks decode to %v", typ, i, got[i], want[i])
			}
		}
	}
	if _, err := NBitsFromBlocks(quant.F16, 1, 32, make([]byte, 64)); err == nil {
		t.Error("f16 accepted as a block type")
	}
}
