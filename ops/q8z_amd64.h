// Shared by simd_amd64.s and tile_amd64.s: the int8 kernels that hold two
// Q8_0 blocks in one 512-bit register.

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
