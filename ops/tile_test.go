package ops

import (
	"fmt"
	"math"
	"testing"

	"github.com/memmamba/memmamba/quant"
)

// TestMatMulTiles checks MatMul against MatVec token by token, bit for bit,
// on the shapes that exercise the tile kernels and their edges: row counts
// around multiples of 4, token counts around multiples of the tile's 2 or 4
// tokens, float columns with and without a partial vector at the end,
// aligned and unaligned data, and the extreme int8 weights; guard values
// around the output catch stray stores.
func TestMatMulTiles(t *testing.T) {
	forLevels(t, testMatMulTiles)
}

func testMatMulTiles(t *testing.T) {
	rng := newRNG(60)
	for _, typ := range allTypes() {
		cols := []int{16, 17, 31, 40, 70, 256, 1031}
		if typ.BlockLen() != 1 {
			cols = []int{32, 64, 96, 768, 32 * (tileScaleBlocks + 1)}
		}
		for _, c := range cols {
			for _, rows := range []int{4, 5, 8, 11, 12, 17} {
				for _, off := range []int{0, 1} {
					m, _ := testMatrix(t, rng, typ, rows, c, off)
					if typ == quant.Q8_0 {
						m.Data[2], m.Data[3] = 0x80, 0x7f // -128 and 127
						m.Data[len(m.Data)-1] = 0x80
					}
					for _, n := range []int{2, 3, 4, 5, 7, 8, 9, 12, 13, 16, 23, 24} {
						what := fmt.Sprintf("%s %dx%d off %d n=%d", typ, rows, c, off, n)
						x := offsetCopy(randVec(rng, n*c), off)
						dst, check := guarded(n*rows, off)
						MatMul(dst, m, x, n)
						check(t)
						want := make([]float32, rows)
						for tok := 0; tok < n; tok++ {
							MatVec(want, m, x[tok*c:(tok+1)*c])
							for r := range want {
								if g := dst[tok*rows+r]; math.Float32bits(g) != math.Float32bits(want[r]) {
									t.Fatalf("%s token %d row %d: MatMul %v, MatVec %v", what, tok, r, g, want[r])
								}
							}
						}
					}
				}
			}
		}
	}
}

// BenchmarkMatMulPrefill is the prefill shape: a chunk of 128 tokens
// through mamba-130m's in_proj (3072x768) and out_proj (768x1536). SetBytes
// counts the weights once per token, so MB/s compares with MatVec's.
func BenchmarkMatMulPrefill(b *testing.B) {
	rng := newRNG(61)
	const n = 128
	for _, typ := range []quant.Type{quant.F32, quant.F16, quant.Q8_0} {
		for _, shape := range [][2]int{{3072, 768}, {768, 1536}} {
			m, _ := testMatrix(b, rng, typ, shape[0], shape[1], 0)
			x := randVec(rng, n*shape[1])
			dst := make([]float32, n*shape[0])
			b.Run(fmt.Sprintf("%s/%dx%d/n=%d", typ, shape[0], shape[1], n), func(b *testing.B) {
				b.SetBytes(int64(n * len(m.Data)))
				b.ReportAllocs()
				for b.Loop() {
					MatMul(dst, m, x, n)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/token")
				b.ReportMetric(2*float64(shape[0]*shape[1])*float64(b.N*n)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// TestQuantizeQ8Kernel checks that QuantizeQ8 gives its Go loop's bits on
// every level, on random blocks and blocks with zeros, signed zeros,
// subnormals, infinities, NaN, huge values and ties.
func TestQuantizeQ8Kernel(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		rng := newRNG(63)
		specials := []float32{0, float32(math.Copysign(0, -1)), 1e-45, -1e-40, 1e-38, float32(math.Inf(1)), float32(math.Inf(-1)),
			float32(math.NaN()), 3e38, -3e38, 0.5, -0.5, 127, 63.5, -63.5}
		for _, nb := range []int{0, 1, 2, 3, 7, 48} {
			x := randVec(rng, nb*32)
			for b := 0; b < nb; b++ {
				switch b % 4 {
				case 1:
					for i := 0; i < 32; i++ {
						x[b*32+i] = specials[rng.IntN(len(specials))]
					}
				case 2:
					for i := 0; i < 32; i++ {
						x[b*32+i] *= 1e-39
					}
				case 3:
					x[b*32+rng.IntN(32)] = float32(math.NaN())
				}
			}
			wq, wd := make([]int8, len(x)), make([]float32, nb)
			quantizeQ8Go(wq, wd, x)
			// Every offset of the outputs and the input within a cache
			// line's worth of bytes, guard values on both sides.
			const guard = 7
			for off := range 5 {
				xs := make([]float32, off+len(x)+guard)
				copy(xs[off:], x)
				qs, ds := make([]int8, off+len(x)+guard), make([]float32, off+nb+guard)
				for i := range qs {
					qs[i] = 0x5a
				}
				for i := range ds {
					ds[i] = -12345
				}
				q, d := qs[off:off+len(x)], ds[off:off+nb]
				QuantizeQ8(q, d, xs[off:off+len(x)])
				for b := range d {
					if math.Float32bits(d[b]) != math.Float32bits(wd[b]) {
						t.Fatalf("nb=%d off=%d block %d: d = %v, want %v", nb, off, b, d[b], wd[b])
					}
				}
				for i := range q {
					if q[i] != wq[i] {
						t.Fatalf("nb=%d off=%d [%d] x = %v: q = %d, want %d", nb, off, i, x[i], q[i], wq[i])
					}
				}
				for i := range off {
					if qs[i] != 0x5a || ds[i] != -12345 {
						t.Fatalf("nb=%d off=%d: a guard before the output changed", nb, off)
					}
				}
				for i := range guard {
					if qs[off+len(x)+i] != 0x5a || ds[off+nb+i] != -12345 {
						t.Fatalf("nb=%d off=%d: a guard after the output changed", nb, off)
					}
				}
			}
		}
	})
}
