package ops

import (
	"fmt"
	"testing"
	"time"

	"github.com/memmamba/memmamba/quant"
)

// BenchmarkPoolDecode mimics decode's products on one pool: per layer of
// mamba-130m, in_proj (3072x768), x_proj (80x1536), dt_proj (1536x48) and
// out_proj (768x1536), back to back, over 4 layers' worth of distinct
// matrices (so the weights stream as in a real step rather than sit in the
// cache). It reports ns per layer, to compare threads=1 with threads=2: the
// hand-off per product is what separates them.
func BenchmarkPoolDecode(b *testing.B) {
	shapes := [][2]int{{3072, 768}, {80, 1536}, {1536, 48}, {768, 1536}}
	const layers = 4
	for _, typ := range []quant.Type{quant.F32, quant.Q8_0} {
		rng := newRNG(62)
		var ms []Matrix
		var bytes int64
		for l := 0; l < layers; l++ {
			for _, s := range shapes {
				if typ.BlockLen() != 1 && s[1]%32 != 0 {
					m, _ := testMatrix(b, rng, quant.F32, s[0], s[1], 0)
					ms = append(ms, m)
				} else {
					m, _ := testMatrix(b, rng, typ, s[0], s[1], 0)
					ms = append(ms, m)
				}
				bytes += int64(len(ms[len(ms)-1].Data))
			}
		}
		x := randVec(rng, 3072)
		dst := make([]float32, 3072)
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/threads=%d", typ, threads), func(b *testing.B) {
				p := NewPool(threads)
				defer p.Close()
				b.SetBytes(bytes)
				b.ReportAllocs()
				for b.Loop() {
					for _, m := range ms {
						p.MatVec(dst[:m.Rows], m, x[:m.Cols])
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*layers), "ns/layer")
			})
		}
	}
}

// BenchmarkPoolHandoff is the cost of one pool call with no work: a For
// over two items split in two, so one item goes to a worker; gap=5us puts
// 5 microseconds of work on the caller between calls, as the norms, the
// convolution and the scan do between decode's products.
func BenchmarkPoolHandoff(b *testing.B) {
	p := NewPool(2)
	defer p.Close()
	fn := func(lo, hi int) {}
	for _, gap := range []time.Duration{0, 5 * time.Microsecond} {
		b.Run(fmt.Sprintf("gap=%v", gap), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if gap > 0 {
					for t := time.Now(); time.Since(t) < gap; {
					}
				}
				p.For(2, 1, fn)
			}
		})
	}
}
