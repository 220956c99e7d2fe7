package onnxgraph

import (
	"fmt"
	"math"

	"github.com/memmamba/memmamba/quant"
)

// NBits is a weight matrix w [N, K] (row n is output feature n, as in
// nn.Linear) in the layout of ONNX Runtime's com.microsoft MatMulNBits with
// the default zero point:
//
//	Blocks: uint8 [N, ceil(K/BlockSize), BlockSize*Bits/8]; within a block,
//	        codes are packed low bits first: for Bits 4, byte j holds element
//	        2j in its low nibble and 2j+1 in its high nibble; for Bits 8,
//	        one byte per element. Padding past K is the zero-point code.
//	Scales: float32 [N * ceil(K/BlockSize)], one per block.
//	w[n][k] = (code - 2^(Bits-1)) * Scales[n*blocks + k/BlockSize]
//
// (GGML's Q4_0 uses the same arithmetic but another nibble order, elements
// i and i+16 share a byte, and float16 scales; Q8_0 stores signed codes.
// Both need repacking into this layout.)
type NBits struct {
	N, K, Bits, BlockSize int
	Blocks                []byte
	Scales                []float32
}

// BlocksPerRow is ceil(K/BlockSize).
func (q *NBits) BlocksPerRow() int { return (q.K + q.BlockSize - 1) / q.BlockSize }

// BlobSize is the bytes of one block.
func (q *NBits) BlobSize() int { return q.BlockSize * q.Bits / 8 }

// BlockDims is the shape of Blocks as MatMulNBits wants it.
func (q *NBits) BlockDims() []int64 {
	return []int64{int64(q.N), int64(q.BlocksPerRow()), int64(q.BlobSize())}
}

// Validate checks the parameters MatMulNBits accepts (bits 4 or 8, a power
// of two block size of at least 16) and the slice lengths.
func (q *NBits) Validate() error {
	if err := q.checkParams(); err != nil {
		return err
	}
	nb := int64(q.N) * int64(q.BlocksPerRow())
	if int64(len(q.Scales)) != nb {
		return fmt.Errorf("nbits: %d scales, shape [%d, %d] with block size %d needs %d", len(q.Scales), q.N, q.K, q.BlockSize, nb)
	}
	if int64(len(q.Blocks)) != nb*int64(q.BlobSize()) {
		return fmt.Errorf("nbits: %d block bytes, need %d", len(q.Blocks), nb*int64(q.BlobSize()))
	}
	return nil
}

func (q *NBits) checkParams() error {
	if q.Bits != 4 && q.Bits != 8 {
		return fmt.Errorf("nbits: bits %d, want 4 or 8", q.Bits)
	}
	if q.BlockSize < 16 || q.BlockSize&(q.BlockSize-1) != 0 || q.BlockSize > 1<<16 {
		return fmt.Errorf("nbits: block size %d, want a power of two from 16 to 65536", q.BlockSize)
	}
	if q.N <= 0 || q.K <= 0 || q.N > math.MaxInt32 || q.K > math.MaxInt32 {
		return fmt.Errorf("nbits: shape [%d, %d]", q.N, q.K)
	}
	return nil
}

// QuantizeNBits quantises w [n, k] (row-major) symmetrically per block: the
// scale is the block's largest-magnitude value over -2^(bits-1) (so that
// value maps to the most negative code, as GGML's Q4_0 does) for 4 bits, and
// max|x|/127 for 8 bits.
func QuantizeNBits(w []float32, n, k, bits, blockSize int) (*NBits, error) {
	q := &NBits{N: n, K: k, Bits: bits, BlockSize: blockSize}
	if err := q.checkParams(); err != nil {
		return nil, err
	}
	if int64(len(w)) != int64(n)*int64(k) {
		return nil, fmt.Errorf("nbits: %d values for shape [%d, %d]", len(w), n, k)
	}
	nb := q.BlocksPerRow()
	blob := q.BlobSize()
	zero := 1 << (bits - 1)
	q.Scales = make([]float32, n*nb)
	q.Blocks = make([]byte, n*nb*blob)
	codes := make([]int, blockSize)
	for r := 0; r < n; r++ {
		row := w[r*k : (r+1)*k]
		for blk := 0; blk < nb; blk++ {
			lo := blk * blockSize
			hi := min(lo+blockSize, k)
			var amax, signed float32
			for _, v := range row[lo:hi] {
				if a := float32(math.Abs(float64(v))); a > amax {
					amax, signed = a, v
				}
			}
			var d float32
			if bits == 4 {
				d = signed / -8
			} else {
				d = amax / 127
			}
			var inv float32
			if d != 0 {
				inv = 1 / d
			}
			for i := range codes {
				c := zero
				if lo+i < hi {
					c = int(math.Round(float64(row[lo+i]*inv))) + zero
					c = max(0, min(c, 2*zero-1))
				}
				codes[i] = c
			}
			q.Scales[r*nb+blk] = d
			out := q.Blocks[(r*nb+blk)*blob : (r*nb+blk+1)*blob]
			if bits == 4 {
				for j := range out {
					out[j] = byte(codes[2*j]) | byte(codes[2*j+1])<<4
				}
			} else {
				for j := range out {
					out[j] = byte(codes[j])
				}
			}
		}
	}
	return q, nil
}

// Dequantize expands q into w [N, K] row-major: the reference the runtime's
// results are checked against.
func (q *NBits) Dequantize() ([]float32, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	nb, blob := q.BlocksPerRow(), q.BlobSize()
	zero := 1 << (q.Bits - 1)
	w := make([]float32, q.N*q.K)
	for r := 0; r < q.N; r++ {
		for k := 0; k < q.K; k++ {
			blk, i := k/q.BlockSize, k%q.BlockSize
			block := q.Blocks[(r*nb+blk)*blob:]
			var c int
			if q.Bits == 4 {
				c = int(block[i/2]>>(4*(i%2))) & 0xF
			} else {
				c = int(block[i])
			}
			w[r*q.K+k] = float32(c-zero) * q.Scales[r*nb+blk]
		}
	}
	return w, nil
}

// NBitsFromBlocks re-lays a rows x cols matrix of GGUF Q8_0 / Q4_0 blocks
// (the model file's int8 and int4 types) out as MatMulNBits blocks: the
// same codes (int8 q + 128, or the Q4_0 nibble) with the default zero point
// 2^(bits-1), packed low bits first, and the f16 scales as float32. So the
// result dequantises to the very values the blocks do.
func NBitsFromBlocks(t quant.Type, rows, cols int, data []byte) (*NBits, error) {
	nb := cols / quant.BlockSize
	q := &NBits{N: rows, K: cols, BlockSize: quant.BlockSize, Scales: make([]float32, rows*nb)}
	switch t {
	case quant.Q8_0:
		q.Bits = 8
		q.Blocks = make([]byte, rows*nb*quant.BlockSize)
		for i := range rows * nb {
			blk := data[i*quant.Q8_0BlockBytes : (i+1)*quant.Q8_0BlockBytes]
			q.Scales[i] = quant.F16ToF32(uint16(blk[0]) | uint16(blk[1])<<8)
			for j := range quant.BlockSize {
				q.Blocks[i*quant.BlockSize+j] = byte(int8(blk[2+j])) + 128
			}
		}
	case quant.Q4_0:
		q.Bits = 4
		q.Blocks = make([]byte, rows*nb*quant.BlockSize/2)
		for i := range rows * nb {
			blk := data[i*quant.Q4_0BlockBytes : (i+1)*quant.Q4_0BlockBytes]
			q.Scales[i] = quant.F16ToF32(uint16(blk[0]) | uint16(blk[1])<<8)
			code := func(j int) byte {
				if j < 16 {
					return blk[2+j] & 0x0f
				}
				return blk[2+j-16] >> 4
			}
			for k := range quant.BlockSize / 2 {
				q.Blocks[i*quant.BlockSize/2+k] = code(2*k) | code(2*k+1)<<4
			}
		}
	default:
		return nil, fmt.Errorf("type %s is not a block type", t)
	}
	return q, q.Validate()
}
