package ops

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"

	"github.com/memmamba/memmamba/quant"
)

// Matrix is a row-major Rows x Cols weight matrix stored as raw bytes of
// Type: row r is Data[r*RowBytes : (r+1)*RowBytes] with RowBytes =
// Type.RowBytes(Cols). The layouts are:
//
//   - F32: little-endian float32.
//   - F16, BF16: little-endian uint16 (IEEE half, bfloat16).
//   - Q8_0: blocks of 32 values: an f16 scale d (2 bytes LE) and 32 int8 q;
//     value = d*q.
//   - Q4_0: blocks of 32 values: an f16 scale d and 16 bytes; byte j holds
//     element j in its low nibble and element j+16 in its high nibble;
//     value = d*(nibble-8).
//
// Data is read, never written, so it may alias a read-only mapping. Build a
// Matrix with NewMatrix, which checks that Data has the right length.
type Matrix struct {
	Type       quant.Type
	Rows, Cols int
	Data       []byte
	// Stride is the bytes from the start of one row to the next; 0 means
	// RowBytes (rows back to back). A larger stride makes the matrix a view
	// of some columns of a wider one (Columns).
	Stride int
}

// NewMatrix wraps data as a rows x cols matrix of type t. It fails when the
// type is unknown, cols does not fill whole blocks of t, the size overflows
// or len(data) is not exactly the size the shape needs.
func NewMatrix(t quant.Type, rows, cols int, data []byte) (Matrix, error) {
	if rows < 0 || cols < 0 {
		return Matrix{}, fmt.Errorf("matrix %dx%d %s: negative dimension", rows, cols, t)
	}
	rb, err := t.RowBytes(cols)
	if err != nil {
		return Matrix{}, fmt.Errorf("matrix %dx%d: %w", rows, cols, err)
	}
	if rb != 0 && rows > math.MaxInt/rb {
		return Matrix{}, fmt.Errorf("matrix %dx%d %s: size overflows", rows, cols, t)
	}
	if need := rows * rb; len(data) != need {
		return Matrix{}, fmt.Errorf("matrix %dx%d %s: needs %d bytes, have %d", rows, cols, t, need, len(data))
	}
	return Matrix{Type: t, Rows: rows, Cols: cols, Data: data}, nil
}

// RowBytes returns the bytes one row takes. It panics when the matrix is
// not well-formed (a Matrix from NewMatrix always is).
func (m Matrix) RowBytes() int {
	rb, err := m.Type.RowBytes(m.Cols)
	if err != nil {
		panic("ops: " + err.Error())
	}
	return rb
}

// stride returns the bytes from one row to the next.
func (m Matrix) stride() int {
	if m.Stride != 0 {
		return m.Stride
	}
	return m.RowBytes()
}

// span returns the bytes the rows cover: (Rows-1)*stride + RowBytes.
func (m Matrix) span() int {
	if m.Rows <= 0 {
		return 0
	}
	return (m.Rows-1)*m.stride() + m.RowBytes()
}

// check panics unless m is well-formed; it returns the row stride in bytes.
func (m Matrix) check() int {
	rb, st := m.RowBytes(), m.stride()
	if m.Rows < 0 || st < rb || len(m.Data) < m.span() || (m.Stride == 0 && len(m.Data) != m.Rows*rb) {
		panic(fmt.Sprintf("ops: matrix %dx%d %s (stride %d) has %d bytes, want %d", m.Rows, m.Cols, m.Type, st, len(m.Data), m.span()))
	}
	return st
}

// Row returns the raw bytes of row r.
func (m Matrix) Row(r int) []byte {
	rb, st := m.RowBytes(), m.stride()
	return m.Data[r*st : r*st+rb : r*st+rb]
}

// Columns returns the view of columns c0..c1-1 of m: no copy, the rows
// keep m's stride. For block types c0 and c1 must be multiples of the
// block length.
func (m Matrix) Columns(c0, c1 int) (Matrix, error) {
	bl := m.Type.BlockLen()
	if c0 < 0 || c1 < c0 || c1 > m.Cols || c0%bl != 0 || c1%bl != 0 {
		return Matrix{}, fmt.Errorf("matrix %dx%d %s: columns %d..%d are not a whole-block range", m.Rows, m.Cols, m.Type, c0, c1)
	}
	off, err := m.Type.RowBytes(c0)
	if err != nil {
		return Matrix{}, err
	}
	v := Matrix{Type: m.Type, Rows: m.Rows, Cols: c1 - c0, Stride: m.stride()}
	v.Data = m.Data[min(off, len(m.Data)):]
	v.Data = v.Data[:v.span()]
	return v, nil
}

// DequantRow decodes row r into dst (len Cols): the plain dequantisation,
// used for embedding lookups and as the tests' oracle.
//
//	for c := range dst { dst[c] = W[r, c] }
func (m Matrix) DequantRow(dst []float32, r int) {
	if len(dst) != m.Cols {
		panic(fmt.Sprintf("ops: DequantRow: dst has %d values, matrix has %d columns", len(dst), m.Cols))
	}
	row := m.Row(r)
	switch m.Type {
	case quant.F32:
		for c := range dst {
			dst[c] = math.Float32frombits(binary.LittleEndian.Uint32(row[4*c:]))
		}
	case quant.F16:
		for c := range dst {
			dst[c] = quant.F16ToF32(binary.LittleEndian.Uint16(row[2*c:]))
		}
	case quant.BF16:
		for c := range dst {
			dst[c] = quant.BF16ToF32(binary.LittleEndian.Uint16(row[2*c:]))
		}
	case quant.Q8_0:
		for b := 0; b < len(dst)/quant.BlockSize; b++ {
			blk := row[b*quant.Q8_0BlockBytes:]
			d := quant.F16ToF32(binary.LittleEndian.Uint16(blk))
			for i := 0; i < quant.BlockSize; i++ {
				dst[b*quant.BlockSize+i] = d * float32(int8(blk[2+i]))
			}
		}
	case quant.Q4_0:
		for b := 0; b < len(dst)/quant.BlockSize; b++ {
			blk := row[b*quant.Q4_0BlockBytes:]
			d := quant.F16ToF32(binary.LittleEndian.Uint16(blk))
			for j := 0; j < quant.BlockSize/2; j++ {
				v := blk[2+j]
				dst[b*quant.BlockSize+j] = d * float32(int(v&15)-8)
				dst[b*quant.BlockSize+j+16] = d * float32(int(v>>4)-8)
			}
		}
	default:
		panic(fmt.Sprintf("ops: unsupported matrix type %s", m.Type))
	}
}

// f16Table maps every f16 bit pattern to its float32 value (256 KiB, built
// from quant.F16ToF32 on first use). A table load is much cheaper than the
// branchy scalar conversion in the F16 dot product's inner loop.
var f16Table = sync.OnceValue(func() *[1 << 16]float32 {
	t := new([1 << 16]float32)
	for i := range t {
		t[i] = quant.F16ToF32(uint16(i))
	}
	return t
})
