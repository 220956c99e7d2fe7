package ops

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/memmamba/memmamba/quant"
)

// exactFloat reports whether float32 results can be compared bit for bit
// with the tests' plain loops: on amd64 the Go compiler never fuses a
// multiply and an add, elsewhere (arm64) it may fuse them differently in
// the kernel and in the oracle, so only the error bound is checked there.
var exactFloat = runtime.GOARCH == "amd64"

// levelTwin, where the build has kernels (twins_amd64_test.go), returns
// the bits the current level's product gives for row r of m against x, from
// the Go twins of its kernels; ok is false on the Go level.
var levelTwin func(m Matrix, r int, x []float32) (want float32, ok bool)

// guard is the value written around outputs; it must survive every call.
const guard = float32(-1234.5678)

func newRNG(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)) }

// randVec returns n values in [-1, 1).
func randVec(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.Float64()*2 - 1)
	}
	return v
}

// guarded returns a slice of n values placed at offset off inside a larger
// buffer whose other values are the guard; check verifies the guards.
func guarded(n, off int) (s []float32, check func(t *testing.T)) {
	buf := make([]float32, off+n+5)
	for i := range buf {
		buf[i] = guard
	}
	s = buf[off : off+n : off+n]
	return s, func(t *testing.T) {
		t.Helper()
		for i, v := range buf {
			if (i < off || i >= off+n) && math.Float32bits(v) != math.Float32bits(guard) {
				t.Fatalf("guard at %d (slice %d..%d) overwritten: %v", i, off, off+n, v)
			}
		}
	}
}

// offsetCopy returns a copy of v starting at element offset off of a fresh
// buffer (to test unaligned sub-slices).
func offsetCopy(v []float32, off int) []float32 {
	buf := make([]float32, off+len(v))
	copy(buf[off:], v)
	return buf[off:]
}

// testMatrix builds a rows x cols matrix of type t with random contents,
// encoding the blocks by hand from the layouts in Matrix's doc. It returns
// the matrix (its Data starting at byte offset off of a larger buffer) and
// the exact value of every weight, row-major.
func testMatrix(t testing.TB, rng *rand.Rand, typ quant.Type, rows, cols, off int) (Matrix, []float32) {
	t.Helper()
	rb, err := typ.RowBytes(cols)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, off+rows*rb)
	data := buf[off:]
	vals := make([]float32, rows*cols)
	for r := 0; r < rows; r++ {
		row := data[r*rb : (r+1)*rb]
		v := vals[r*cols : (r+1)*cols]
		switch typ {
		case quant.F32:
			for c := range v {
				v[c] = float32(rng.NormFloat64())
				binary.LittleEndian.PutUint32(row[4*c:], math.Float32bits(v[c]))
			}
		case quant.F16:
			for c := range v {
				h := quant.F32ToF16(float32(rng.NormFloat64()))
				v[c] = quant.F16ToF32(h)
				binary.LittleEndian.PutUint16(row[2*c:], h)
			}
		case quant.BF16:
			for c := range v {
				h := quant.F32ToBF16(float32(rng.NormFloat64()))
				v[c] = quant.BF16ToF32(h)
				binary.LittleEndian.PutUint16(row[2*c:], h)
			}
		case quant.Q8_0, quant.Q4_0:
			bb := quant.Q8_0BlockBytes
			if typ == quant.Q4_0 {
				bb = quant.Q4_0BlockBytes
			}
			for b := 0; b < cols/32; b++ {
				blk := row[b*bb : (b+1)*bb]
				h := quant.F32ToF16(float32(rng.Float64()*0.05 + 0.001))
				d := quant.F16ToF32(h)
				binary.LittleEndian.PutUint16(blk, h)
				for i := 0; i < 32; i++ {
					if typ == quant.Q8_0 {
						q := int8(rng.IntN(255) - 127)
						blk[2+i] = byte(q)
						v[b*32+i] = d * float32(q)
					} else {
						nib := rng.IntN(16)
						j, shift := i, 0
						if i >= 16 {
							j, shift = i-16, 4
						}
						blk[2+j] |= byte(nib) << shift
						v[b*32+i] = d * float32(nib-8)
					}
				}
			}
		}
	}
	m, err := NewMatrix(typ, rows, cols, data)
	if err != nil {
		t.Fatal(err)
	}
	return m, vals
}

// oracleRow is the documented summation order of one row against x, on
// exact weight values: one chain for float types, two half-block chains per
// block for the block types (d is the block's scale, the weight is d*q).
func oracleRow(typ quant.Type, m Matrix, r int, w, x []float32) float32 {
	var s float32
	switch typ {
	case quant.Q8_0, quant.Q4_0:
		row := m.Row(r)
		bb := quant.Q8_0BlockBytes
		if typ == quant.Q4_0 {
			bb = quant.Q4_0BlockBytes
		}
		for b := 0; b < len(x)/32; b++ {
			d := quant.F16ToF32(binary.LittleEndian.Uint16(row[b*bb:]))
			var a, c float32
			for i := 0; i < 16; i++ {
				// w/d is the integer q exactly (d*q is exact in float32
				// for |q| <= 127 and an f16 d).
				a += w[b*32+i] / d * x[b*32+i]
				c += w[b*32+16+i] / d * x[b*32+16+i]
			}
			s += d * (a + c)
		}
	default:
		for c := range x {
			s += w[c] * x[c]
		}
	}
	return s
}

// ref64 returns sum w*x in float64 and the bound scale sum |w*x|.
func ref64(w, x []float32) (sum, abs float64) {
	for c := range x {
		p := float64(w[c]) * float64(x[c])
		sum += p
		abs += math.Abs(p)
	}
	return
}

func allTypes() []quant.Type {
	return []quant.Type{quant.F32, quant.F16, quant.BF16, quant.Q8_0, quant.Q4_0}
}
