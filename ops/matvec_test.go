package ops

import (
	"fmt"
	"math"
	"testing"

	"github.com/memmamba/memmamba/quant"
)

func colsFor(typ quant.Type) []int {
	if typ.BlockLen() == 1 {
		c := make([]int, 0, 80)
		for i := 0; i <= 70; i++ {
			c = append(c, i)
		}
		return append(c, 255, 768, 1031)
	}
	return []int{0, 32, 64, 96, 128, 160, 224, 768, 1024}
}

// checkMatVecResult compares got (one output row of W x) with the oracle
// order (bit for bit where exactFloat) and with the float64 sum of the exact
// weights: |got - sum| <= (Cols+4) * 2^-24 * sum|w*x|, the bound of a
// recursive float32 summation of Cols products plus the block scaling.
//
// On a SIMD level the result must also be the bits of the kernels' Go
// twin (levelTwin, on amd64), the float types keep the bound (the lanes
// and the reduction tree only reorder the sum) and the block types are
// checked by checkQuantResult instead.
func checkMatVecResult(t *testing.T, what string, typ quant.Type, m Matrix, r int, w, x []float32, got float32) {
	t.Helper()
	if levelTwin != nil {
		if want, ok := levelTwin(m, r, x); ok && math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("%s row %d: got %v, the kernels' Go twin gives %v", what, r, got, want)
		}
	}
	if kernelsFor(typ).block {
		checkQuantResult(t, what, r, w, x, got)
		return
	}
	if exactFloat && simd == simdGo {
		if want := oracleRow(typ, m, r, w, x); math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("%s row %d: got %v, oracle order gives %v", what, r, got, want)
		}
	}
	sum, abs := ref64(w, x)
	if bound := float64(len(x)+4) * 0x1p-24 * abs; math.Abs(float64(got)-sum) > bound {
		t.Fatalf("%s row %d: got %v, float64 %v, error %g > bound %g", what, r, got, sum, math.Abs(float64(got)-sum), bound)
	}
}

func TestMatVec(t *testing.T) {
	forLevels(t, testMatVec)
}

func testMatVec(t *testing.T) {
	rng := newRNG(1)
	for _, typ := range allTypes() {
		for _, cols := range colsFor(typ) {
			for _, rows := range []int{0, 1, 3, 4, 5, 8, 9, 13} {
				for _, off := range []int{0, 1, 2, 3} {
					if off > 0 && cols > 70 && rows > 5 {
						continue
					}
					name := fmt.Sprintf("%s/%dx%d/off%d", typ, rows, cols, off)
					m, w := testMatrix(t, rng, typ, rows, cols, off)
					x := offsetCopy(randVec(rng, cols), off)
					dst, check := guarded(rows, off)
					MatVec(dst, m, x)
					check(t)
					for r := 0; r < rows; r++ {
						checkMatVecResult(t, name, typ, m, r, w[r*cols:(r+1)*cols], x, dst[r])
					}
				}
			}
		}
	}
}

// TestMatVecQuantVsF32 compares each type's product with the f32 product of
// its dequantised matrix (DequantRow), the plain float path: both are within
// (Cols+4)*2^-24*sum|w*x| of the exact sum, so they differ by at most twice
// that.
//
// On a SIMD level the block types quantise the activations, so their bound
// is checkQuantResult's plus the f32 product's.
func TestMatVecQuantVsF32(t *testing.T) {
	forLevels(t, testMatVecQuantVsF32)
}

func testMatVecQuantVsF32(t *testing.T) {
	rng := newRNG(2)
	const rows, cols = 19, 512
	for _, typ := range allTypes() {
		m, _ := testMatrix(t, rng, typ, rows, cols, 0)
		deq := make([]float32, rows*cols)
		for r := 0; r < rows; r++ {
			m.DequantRow(deq[r*cols:(r+1)*cols], r)
		}
		mf, err := NewMatrix(quant.F32, rows, cols, f32Bytes(deq))
		if err != nil {
			t.Fatal(err)
		}
		x := randVec(rng, cols)
		got, want := make([]float32, rows), make([]float32, rows)
		MatVec(got, m, x)
		MatVec(want, mf, x)
		for r := range got {
			_, abs := ref64(deq[r*cols:(r+1)*cols], x)
			bound := 2 * (cols + 4) * 0x1p-24 * abs
			if kernelsFor(typ).block {
				bound = quantBound(deq[r*cols:(r+1)*cols], x) + (cols+4)*0x1p-24*abs
			}
			if d := math.Abs(float64(got[r] - want[r])); d > bound {
				t.Errorf("%s row %d: %v vs f32 %v (diff %g)", typ, r, got[r], want[r], d)
			}
		}
	}
}

func f32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		u := math.Float32bits(f)
		b[4*i], b[4*i+1], b[4*i+2], b[4*i+3] = byte(u), byte(u>>8), byte(u>>16), byte(u>>24)
	}
	return b
}

func TestDequantRow(t *testing.T) {
	rng := newRNG(3)
	for _, typ := range allTypes() {
		for _, off := range []int{0, 1} {
			m, w := testMatrix(t, rng, typ, 5, 64, off)
			for r := 0; r < 5; r++ {
				got, check := guarded(64, off)
				m.DequantRow(got, r)
				check(t)
				for c, v := range got {
					if math.Float32bits(v) != math.Float32bits(w[r*64+c]) {
						t.Fatalf("%s row %d col %d: %v, want %v", typ, r, c, v, w[r*64+c])
					}
				}
			}
		}
	}
}

// TestMatMul checks that MatMul equals n MatVecs bit for bit, for every type
// and token counts covering the 4-token kernels and their remainders.
func TestMatMul(t *testing.T) {
	forLevels(t, testMatMul)
}

func testMatMul(t *testing.T) {
	rng := newRNG(4)
	for _, typ := range allTypes() {
		for _, shape := range [][2]int{{0, 32}, {1, 32}, {7, 64}, {13, 96}, {33, 256}, {3, 0}, {9, 544}} {
			rows, cols := shape[0], shape[1]
			for _, off := range []int{0, 1} {
				m, _ := testMatrix(t, rng, typ, rows, cols, off)
				for n := 0; n <= 9; n++ {
					x := offsetCopy(randVec(rng, n*cols), off)
					dst, check := guarded(n*rows, off)
					MatMul(dst, m, x, n)
					check(t)
					want := make([]float32, rows)
					for tok := 0; tok < n; tok++ {
						MatVec(want, m, x[tok*cols:(tok+1)*cols])
						for r := range want {
							if g := dst[tok*rows+r]; math.Float32bits(g) != math.Float32bits(want[r]) {
								t.Fatalf("%s %dx%d off %d n=%d token %d row %d: MatMul %v, MatVec %v", typ, rows, cols, off, n, tok, r, g, want[r])
							}
						}
					}
				}
			}
		}
	}
}

func TestNewMatrix(t *testing.T) {
	tests := []struct {
		typ        quant.Type
		rows, cols int
		n          int
		ok         bool
	}{
		{quant.F32, 2, 3, 24, true},
		{quant.F32, 2, 3, 23, false},
		{quant.F16, 2, 3, 12, true},
		{quant.Q8_0, 2, 64, 136, true},
		{quant.Q8_0, 2, 48, 0, false},
		{quant.Q4_0, 3, 32, 54, true},
		{quant.Q4_0, 3, 32, 55, false},
		{quant.Type(99), 1, 1, 4, false},
		{quant.F32, -1, 1, 0, false},
		{quant.F32, 1 << 62, 1 << 20, 0, false},
	}
	for _, tt := range tests {
		_, err := NewMatrix(tt.typ, tt.rows, tt.cols, make([]byte, tt.n))
		if (err == nil) != tt.ok {
			t.Errorf("NewMatrix(%s, %d, %d, %d bytes): err = %v, want ok=%v", tt.typ, tt.rows, tt.cols, tt.n, err, tt.ok)
		}
	}
}

func TestMatVecPanicsOnShape(t *testing.T) {
	m, _ := NewMatrix(quant.F32, 2, 3, make([]byte, 24))
	defer func() {
		if recover() == nil {
			t.Fatal("no panic on wrong x length")
		}
	}()
	MatVec(make([]float32, 2), m, make([]float32, 4))
}

// TestColumns checks that a view of some columns (Matrix.Columns: the rows
// keep the wide matrix's stride) multiplies exactly like a contiguous copy
// of those columns, on every path (MatVec, MatMul with tiles, the pool) and
// every type, and that bad ranges are refused.
func TestColumns(t *testing.T) {
	forLevels(t, func(t *testing.T) {
		rng := newRNG(77)
		p := NewPool(3)
		defer p.Close()
		for _, typ := range allTypes() {
			for _, sh := range []struct{ rows, c0, c1, cols int }{
				{13, 0, 64, 128}, {13, 64, 128, 128}, {37, 32, 96, 160}, {8, 0, 32, 64}, {1, 32, 64, 64}, {200, 96, 288, 320},
			} {
				wide, _ := testMatrix(t, rng, typ, sh.rows, sh.cols, 0)
				view, err := wide.Columns(sh.c0, sh.c1)
				if err != nil {
					t.Fatal(err)
				}
				var dense []byte
				for r := 0; r < sh.rows; r++ {
					dense = append(dense, view.Row(r)...)
				}
				cp, err := NewMatrix(typ, sh.rows, sh.c1-sh.c0, dense)
				if err != nil {
					t.Fatal(err)
				}
				for _, n := range []int{1, 3, 4, 9} {
					x := randVec(rng, n*cp.Cols)
					want := make([]float32, n*cp.Rows)
					MatMul(want, cp, x, n)
					name := fmt.Sprintf("%s %dx%d cols %d..%d n=%d", typ, sh.rows, sh.cols, sh.c0, sh.c1, n)
					got, check := guarded(n*cp.Rows, 1)
					MatMul(got, view, x, n)
					check(t)
					sameBits(t, name, got, want)
					got, check = guarded(n*cp.Rows, 2)
					p.MatMul(got, view, x, n)
					check(t)
					sameBits(t, name+" pool", got, want)
				}
			}
		}
		w, _ := testMatrix(t, rng, quant.Q8_0, 4, 64, 0)
		for _, bad := range [][2]int{{-32, 0}, {0, 96}, {16, 48}, {32, 0}} {
			if _, err := w.Columns(bad[0], bad[1]); err == nil {
				t.Errorf("Columns(%d, %d) of a 4x64 Q8_0 matrix: no error", bad[0], bad[1])
			}
		}
	})
}
