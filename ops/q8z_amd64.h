// Shared by simd_amd64.s and tile_amd64.s: the prefetch distance, and the
// int8 kernels that hold two Q8_0 blocks in one 512-bit register.

// PF is how far ahead (bytes) the kernels prefetch: a matrix larger than
// the cache streams from DRAM several times faster with it.
// The row kernels and the AVX-512 tiles (for the few tokens of a batched
// decode step, which read each weight once) prefetch PF ahead in each of
// their four rows (the AVX2 tiles leave it to MatMul: groupPrefetch);
// dotQ8RowsAVX512, which runs only on rows stored back to back, prefetches
// the bytes PF after the start of its four-row group as one linear stream,
// five lines per step of 4 x 68 bytes, which asks for each line once where
// two prefetches per row and step asked for most lines twice.
// (Measurements: BENCHMARKS.md.)
#define PF 8192

// PF4 prefetches PF ahead in each of the four rows at SI, R9, R10, R11,
// at column byte AX (the float row kernels' and tiles' registers).
#define PF4 \
	PREFETCHT0 PF(SI)(AX*1); \
	PREFETCHT0 PF(R9)(AX*1); \
	PREFETCHT0 PF(R10)(AX*1); \
	PREFETCHT0 PF(R11)(AX*1)

// ADD2BLOCKS(zs, ys, zc, yc, acc): acc += the products of a pair's two
// blocks, in block order, the low 256 bits (block b) first: zs holds the
// 16 float sums (ys its low half), zc their 16 scales (yc its low half);
// zs and zc are overwritten. This keeps the 8-lane accumulators and the
// summation order of the 256-bit kernels, so the bits are theirs.
#define ADD2BLOCKS(zs, ys, zc, yc, acc) \
	VFMADD231PS   yc, ys, acc; \
	VEXTRACTF64X4 $1, zs, ys; \
	VEXTRACTF64X4 $1, zc, yc; \
	VFMADD231PS   yc, ys, acc
