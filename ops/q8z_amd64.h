// Shared by simd_amd64.s and tile_amd64.s: the prefetch distance, and the
// int8 kernels that hold two Q8_0 blocks in one 512-bit register.

// PF is how far ahead (bytes) the kernels prefetch: a matrix larger than
// the cache streams from DRAM several times faster with it.
// The row kernels prefetch PF ahead in each of their four rows (the AVX2
// tiles leave it to MatMul: groupPrefetch); dotQ8RowsAVX512, which runs
// only on rows stored back to back, prefetches the bytes PF after the
// start of its four-row group as one linear stream, five lines per step of
// 4 x 68 bytes, which asks for each line once where two prefetches per row
// and step asked for most lines twice. The AVX-512 tiles (the few tokens
// of a batched decode step, which read each weight once) take that stream
// too when their rows lie back to back (their pf argument 2), and per-row
// prefetches otherwise (1).
// (Measurements: BENCHMARKS.md.)
#define PF 8192

// PF4 prefetches PF ahead in each of the four rows at SI, R9, R10, R11,
// at column byte AX (the float row kernels' and tiles' registers).
#define PF4 \
	PREFETCHT0 PF(SI)(AX*1); \
	PREFETCHT0 PF(R9)(AX*1); \
	PREFETCHT0 PF(R10)(AX*1); \
	PREFETCHT0 PF(R11)(AX*1)

// ADD2BLOCKS(zs, zc, acc): acc += the products of a pair's two blocks:
// zs holds the 16 float sums (block b in the low 256 bits, block b+1 in
// the high), zc their 16 scales, acc 16 lanes, one FMA. So the low half
// of acc sums the even blocks and the high half the odd ones, each in
// block order; the kernels fold the halves (low + high, FOLD16, FOLD4)
// after the last pair, then add an odd last block into the low half with
// the 256-bit body. Every AVX-512 int8 and int4 kernel (row, many-row,
// tile) keeps this order, so MatMul's outputs are MatVec's bit for bit;
// the AVX2 kernels sum all blocks into 8 lanes in block order, which can
// differ in the last bits (dotBlockTwin holds both orders).
#define ADD2BLOCKS(zs, zc, acc) \
	VFMADD231PS zc, zs, acc
