// Package quant defines the tensor storage types of the project's model file
// and their codecs: f32, f16 (IEEE 754 half), bf16 (bfloat16), int8 in blocks
// of 32 (byte-compatible with GGUF Q8_0) and int4 in blocks of 32
// (byte-compatible with GGUF Q4_0).
//
// The numeric values of Type are GGML's type ids, so a GGUF tensor's type
// maps to a Type without a table. The block encoders reproduce ggml's
// reference quantisers (quantize_row_q8_0_ref, quantize_row_q4_0_ref) byte
// for byte, so a file we write quantises exactly as llama.cpp's own
// converter would, and the decoders match ggml's dequantize_row_*.
//
// # Layouts
//
// A row of n values is stored as consecutive blocks; all multi-byte fields
// are little-endian. The float types have blocks of one value.
//
// F32: 4 bytes per value, the IEEE 754 binary32 bits.
//
//	byte  0   1   2   3
//	     [ b0  b1  b2  b3 ]   uint32 LE = math.Float32bits(x)
//
// F16: 2 bytes per value, the IEEE 754 binary16 bits (see F32ToF16).
// BF16: 2 bytes per value, the top 16 bits of the binary32 (see F32ToBF16).
//
//	byte  0   1
//	     [ lo  hi ]           uint16 LE
//
// Q8_0 (user name int8): blocks of 32 values in 34 bytes.
//
//	byte  0   1   2    3    ...  33
//	     [ d (f16) ][ q0 ][ q1 ] ... [ q31 ]    q: int8 (two's complement)
//	value[j] = d * q[j]
//
// The encoder, per block: amax = max|x|, d = amax/127 (float32),
// id = 1/d (0 when d is 0), q[j] = roundf(x[j]*id) (half away from zero),
// and d is stored as f16(d) rounded to nearest even. The quants are
// computed from the unrounded d, as ggml does.
//
// Q4_0 (user name int4): blocks of 32 values in 18 bytes.
//
//	byte  0   1   2          3          ...  17
//	     [ d (f16) ][ q0|q16<<4 ][ q1|q17<<4 ] ... [ q15|q31<<4 ]
//	value[j] = d * (q[j] - 8),  q in 0..15
//
// Byte 2+j holds element j in its low nibble and element j+16 in its high
// nibble. The encoder, per block: m = the first element of largest |x|
// (with its sign), d = m / -8, id = 1/d (0 when d is 0),
// q[j] = min(15, trunc(x[j]*id + 8.5)). So m itself gets q = 0 (value
// -8*d, m up to the f16 rounding of d), and a value of the opposite sign and
// the same magnitude wants q = 16 and is clamped to 15 (value 7*d).
//
// # Errors and edge cases
//
// Encode refuses NaN and ±Inf, naming the value's index, and refuses
// finite values whose encoding would overflow: an f16 value of magnitude
// 65520 or more, a bf16 value that rounds to infinity, a Q8_0 block with
// max|x| >= 127*65520 (about 8.32e6) or a Q4_0 block with max|x| >= 8*65520
// (524160), where the block scale would become an f16 infinity; the error
// names the index of the value that sets the scale. Tiny values are not an
// error: they round towards zero (f16 subnormals, or a block scale that
// rounds to f16 zero, which decodes the whole block as zero). When 1/d
// overflows float32 (d below 2^-128, which ggml leaves undefined) the quants
// are 0, as ggml's code gives on x86; the scale is f16 zero then in any case.
//
// Decode accepts any bytes: stored NaN or Inf (in an f16 scale, say) decode
// to NaN or Inf; validating a file's values is the reader's job.
package quant
