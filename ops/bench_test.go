package ops

import (
	"fmt"
	"github.com/memmamba/memmamba/quant"
	"testing"
)

// Mamba-130m sizes: d = 768, E = 1536, N = 16.
const benchRows, benchCols = 768, 1536

func BenchmarkMatVec(b *testing.B) {
	rng := newRNG(20)
	for _, typ := range allTypes() {
		m, _ := testMatrix(b, rng, typ, benchRows, benchCols, 0)
		x := randVec(rng, benchCols)
		dst := make([]float32, benchRows)
		b.Run(typ.String(), func(b *testing.B) {
			b.SetBytes(int64(len(m.Data)))
			b.ReportAllocs()
			for b.Loop() {
				MatVec(dst, m, x)
			}
		})
	}
}

func BenchmarkPoolMatVec(b *testing.B) {
	rng := newRNG(21)
	p := NewPool(0)
	defer p.Close()
	for _, typ := range allTypes() {
		m, _ := testMatrix(b, rng, typ, benchRows, benchCols, 0)
		x := randVec(rng, benchCols)
		dst := make([]float32, benchRows)
		b.Run(fmt.Sprintf("%s/threads=%d", typ, p.Threads()), func(b *testing.B) {
			b.SetBytes(int64(len(m.Data)))
			b.ReportAllocs()
			for b.Loop() {
				p.MatVec(dst, m, x)
			}
		})
	}
}

// BenchmarkMatMul reports the weight bytes per token processed (SetBytes is
// n times the matrix) so its GB/s compares with MatVec's.
func BenchmarkMatMul(b *testing.B) {
	rng := newRNG(22)
	const n = 32
	for _, typ := range allTypes() {
		m, _ := testMatrix(b, rng, typ, benchRows, benchCols, 0)
		x := randVec(rng, n*benchCols)
		dst := make([]float32, n*benchRows)
		b.Run(fmt.Sprintf("%s/n=%d", typ, n), func(b *testing.B) {
			b.SetBytes(int64(n * len(m.Data)))
			b.ReportAllocs()
			for b.Loop() {
				MatMul(dst, m, x, n)
			}
		})
	}
}

func BenchmarkScan(b *testing.B) {
	const E, N = 1536, 16
	for _, T := range []int{1, 32, 128} {
		c := newScanCase(23, E, N, T, true)
		h := append([]float32(nil), c.h0...)
		y := make([]float32, T*E)
		b.Run(fmt.Sprintf("T=%d", T), func(b *testing.B) {
			b.SetBytes(int64(4 * E * N * T))
			b.ReportAllocs()
			for b.Loop() {
				Scan(y, h, c.dt, c.A, c.B, c.C, c.a, c.D, c.z, E, N, T)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*T), "ns/token")
		})
	}
	// One token over many sequences' states in turn, 48 MiB of them, as a
	// batched decode step runs it: the states come from memory.
	c := newScanCase(23, E, N, 1, true)
	hs := make([][]float32, 512)
	for i := range hs {
		hs[i] = append([]float32(nil), c.h0...)
	}
	y := make([]float32, E)
	b.Run("T=1/states=512", func(b *testing.B) {
		b.SetBytes(int64(4 * E * N))
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			Scan(y, hs[i%len(hs)], c.dt, c.A, c.B, c.C, c.a, c.D, c.z, E, N, 1)
			i++
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/token")
	})
}

// BenchmarkConv runs the width-4 conv over one token (decode) and a
// 128-token chunk (prefill); MB/s counts the inputs read.
func BenchmarkConv(b *testing.B) {
	const E, K = 1536, 4
	for _, T := range []int{1, 128} {
		rng := newRNG(24)
		x, w, bias := randVec(rng, T*E), randVec(rng, E*K), randVec(rng, E)
		win, out := make([]float32, E*(K-1)), make([]float32, T*E)
		b.Run(fmt.Sprintf("T=%d", T), func(b *testing.B) {
			b.SetBytes(int64(4 * T * E))
			b.ReportAllocs()
			for b.Loop() {
				Conv(out, win, x, w, bias, E, K, T)
			}
		})
	}
}

// BenchmarkElementwise measures the exp-based activations on a prefill
// chunk's worth of values (128 x 1536); MB/s counts the inputs read.
func BenchmarkElementwise(b *testing.B) {
	rng := newRNG(28)
	const n = 128 * 1536
	x, y := randVec(rng, n), make([]float32, n)
	for _, f := range []struct {
		name string
		fn   func(dst, x []float32)
	}{{"Softplus", Softplus}, {"SiLU", SiLU}, {"Sigmoid", Sigmoid}} {
		b.Run(f.name, func(b *testing.B) {
			b.SetBytes(4 * n)
			b.ReportAllocs()
			for b.Loop() {
				f.fn(y, x)
			}
		})
	}
}

// BenchmarkAttend is one query over a full token pool and a cross-layer
// union (the SPEC's default memory: A = 64, 4 heads); MB/s counts the keys
// and values read.
func BenchmarkAttend(b *testing.B) {
	const A, H = 64, 4
	for _, n := range []int{32, 64} {
		rng := newRNG(25)
		q, K, V, out := randVec(rng, A), randVec(rng, n*A), randVec(rng, n*A), make([]float32, A)
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			b.SetBytes(int64(8 * n * A))
			b.ReportAllocs()
			for b.Loop() {
				Attend(out, q, K, V, n, H)
			}
		})
	}
}

// BenchmarkMatVecShapes measures MatVec on the decode shapes of a
// mamba-130m model: a 1536x768 projection, the 50280x768 LM head, which
// dominates decode, and the short rows of dt_proj (1536x48, float types
// only: 48 columns do not fill the blocks) and of the Note Block's fused
// gate (768x64). SetBytes is the weight bytes, so MB/s is the rate at which
// weights are streamed.
func BenchmarkMatVecShapes(b *testing.B) {
	rng := newRNG(26)
	for _, shape := range [][2]int{{1536, 768}, {50280, 768}, {1536, 48}, {768, 64}} {
		rows, cols := shape[0], shape[1]
		for _, typ := range allTypes() {
			if cols%typ.BlockLen() != 0 {
				continue
			}
			m, _ := testMatrix(b, rng, typ, rows, cols, 0)
			x := randVec(rng, cols)
			dst := make([]float32, rows)
			b.Run(fmt.Sprintf("%dx%d/%s", rows, cols, typ), func(b *testing.B) {
				b.SetBytes(int64(len(m.Data)))
				b.ReportAllocs()
				for b.Loop() {
					MatVec(dst, m, x)
				}
			})
		}
	}
}

// BenchmarkPoolMatVecHead streams the 50280x768 LM head of mamba-130m (too
// big for any cache) through the pool with 1 and 2 threads: MB/s is the
// rate at which weights come from memory, to compare with the machine's
// bandwidth.
func BenchmarkPoolMatVecHead(b *testing.B) {
	rng := newRNG(27)
	for _, typ := range allTypes() {
		m, _ := testMatrix(b, rng, typ, 50280, 768, 0)
		x := randVec(rng, 768)
		dst := make([]float32, m.Rows)
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/threads=%d", typ, threads), func(b *testing.B) {
				p := NewPool(threads)
				defer p.Close()
				b.SetBytes(int64(len(m.Data)))
				b.ReportAllocs()
				for b.Loop() {
					p.MatVec(dst, m, x)
				}
			})
		}
	}
}

// BenchmarkPoolMatMulHead is a batched decode step's LM head: the
// 50280x768 matrix of mamba-130m times n rows on a 2-thread pool.
// ns/token is the time per row; at n=1 it is bound by the memory's read
// bandwidth, and at larger n it should fall towards the tile kernel's
// compute time per row, which it reaches only when the weights stream in
// while the tile computes (floatTiles' prefetch of the next group).
func BenchmarkPoolMatMulHead(b *testing.B) {
	rng := newRNG(28)
	for _, typ := range []quant.Type{quant.F32, quant.F16, quant.Q8_0} {
		m, _ := testMatrix(b, rng, typ, 50280, 768, 0)
		for _, n := range []int{1, 2, 4, 8, 16} {
			x := randVec(rng, n*m.Cols)
			dst := make([]float32, n*m.Rows)
			b.Run(fmt.Sprintf("%s/n=%d", typ, n), func(b *testing.B) {
				p := NewPool(2)
				defer p.Close()
				b.SetBytes(int64(len(m.Data)))
				b.ReportAllocs()
				for b.Loop() {
					p.MatMul(dst, m, x, n)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/token")
			})
		}
	}
}
