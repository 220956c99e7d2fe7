// Package ops holds the numeric kernels of the native runtime: matrix-vector
// and matrix-matrix products over weights stored in any quant.Type, the
// normalisation and activation functions, the depthwise causal convolution,
// the selective scan and the small multi-head softmax attention of the Note
// Block (see SPEC.md, "Forward pass").
//
// Weights are used in place: a Matrix wraps the raw bytes of a tensor (for
// example a slice of a memory-mapped model file) and every product decodes
// them block by block inside the dot product, so no float copy of a matrix
// is ever made.
//
// Every kernel is written to be allocation-free and documents the plain loop
// it computes; that loop is also the oracle its tests compare against. Shape
// mismatches are programming errors, not user input, so the kernels panic on
// them (like slice indexing does); user-supplied data is validated where it
// enters, in NewMatrix.
//
// Floating-point results are deterministic for a given build and machine:
// the same call with the same inputs gives the same bits, MatMul gives the
// bits of MatVec row by row, and the Pool variants give the same bits as
// the single-threaded ones (rows are split, never the sums). The runtime
// relies on this for prefill == one-token steps.
//
// # SIMD kernels
//
// On amd64 the products and the selective scan run assembly kernels
// (simd_amd64.s, scan_amd64.s), chosen once at start-up by CPU feature
// (golang.org/x/sys/cpu): AVX-512 F/BW/VL/VNNI, else AVX2+FMA+F16C, else
// the pure-Go loops, which stay as the fallback and as the tests' oracle.
// The purego build tag forces the Go loops. Every kernel set is tested on
// every machine that has it (forLevels), and every product kernel bit for
// bit against a Go twin of the loop its declaration documents, in the
// kernel's lane and reduction order (twins_amd64_test.go). Different sets may differ in the
// last bits; within one process every path uses the same set.
//
//   - F32, F16, BF16: four rows against one vector, one 8- or 16-lane
//     accumulator per row (f16 through VCVTPH2PS, bf16 by a 16-bit shift),
//     a fixed reduction tree, the columns past the last whole vector added
//     in order in Go. Error: within (Cols+4)*2^-24*sum|w*x|, as the loop.
//   - Q8_0, Q4_0: the activations are quantised once per call to int8 per
//     block of 32 (QuantizeQ8: d = max|x|/127, as llama.cpp's Q8_0 x Q8_0),
//     the block sums are exact int32 (VPMADDUBSW+VPMADDWD, or VPDPBUSD with
//     VNNI; both give the same bits), scaled by d_w*d_x into a float32
//     accumulator. With AVX-512, Q8_0 rows and tiles and Q4_0 rows take
//     two blocks per 512-bit register (Q8_0's weights as unsigned w+128
//     against lanes that start at -128*sum x, Q4_0's nibbles as they are
//     against lanes that start at -8*sum x) and add each pair by one
//     16-lane FMA: the even blocks sum in the low 8 lanes and the odd ones
//     in the high 8, each in block order, folded (low + high) after the
//     last pair, an odd last block added to the folded lanes, then the
//     8-lane tree. That order is one FMA a pair where keeping the AVX2
//     kernels' (every block into 8 lanes in block order) took two and two
//     extracts, and makes the int8 tile 1.45x faster; the two levels'
//     int8 sums may differ in the last bits (dotBlockTwin holds each
//     level's order; TestBlockExtremes, TestBlockKernelsTwin). This adds an
//     activation quantisation error of at most sum_b (max|x_b|/254) *
//     sum_i |w_i| over blocks b (each |x - d*q| <= d/2), on top of float
//     rounding ((Cols/32+8)*2^-24*sum|w*x^|); the tests check both against
//     float64 (checkQuantResult). The pure-Go path keeps float activations
//     (no quantisation error).
//   - MatMul runs tile kernels (tile_amd64.s) of 4 rows x 4 tokens
//     (AVX-512: f32/f16/bf16, and Q8_0 with VNNI, where the activations are
//     offset to unsigned once per token instead of sign-flipped per row) or
//     4 rows x 2 tokens (AVX2: f32/f16/bf16 and Q8_0), so each weight
//     vector loaded and decoded serves several tokens and each activation
//     vector several rows. Each output keeps its own accumulator with the row kernel's
//     operations in the row kernel's order and the same reduction tree, so
//     each of MatMul's outputs is MatVec's exactly. Q4_0 widens a tile of
//     rows to Q8_0 (exact) and runs its level's Q8_0 tile. Which level
//     runs which kernels is one table, levels (level.go).
//   - The scan is vectorised over the state dimensions (N a multiple of 8)
//     with a float32 vector exp (at most 2 ulp for normal results, tested;
//     see scan_simd.go), the SiLU gate also through the vector exp.
//   - The K = 4 conv is vectorised over channels: eight at a time over a
//     chunk of 8 or more tokens (convK4AVX2).
//   - With N = 16 (Mamba's) the AVX-512 scan runs sixteen channels at a
//     time and folds their sums together with a transposing tree of the
//     same pairs (scan16x16AVX512), so the channels' exp chains overlap
//     and the bits are the one-channel kernel's. A decode step's one token
//     (T = 1, what every sequence of a batched step runs) has an AVX-512
//     conv of its own, sixteen channels at a time, that builds each
//     channel's window and input with one permute and sums in the plain
//     loop's order (convStep16AVX512). At batch 16 the scan runs at about
//     the speed of reading and writing the sequences' states (2.25 MiB
//     each for mamba-130m, out of the caches by the next step).
//
// The kernels prefetch 8 KiB ahead (PF in q8z_amd64.h), because a matrix
// larger than the cache streams from memory several times faster with it.
// The row kernels prefetch each row's stream; the many-row int8 kernel,
// which runs on rows stored back to back (not on column views such as the
// Note Block's W_gate[:, :d]), prefetches its four rows' bytes as one
// linear stream, one prefetch per cache line (a row of 24 blocks is 12.75
// lines, so per-row prefetches asked for most lines twice). The AVX-512
// tiles (the few tokens of a batched decode step, which read each weight
// once, stream through them) do the same when the rows lie back to back
// and prefetch PF ahead in each row otherwise. Where a group of four rows
// takes four or more tile calls (prefill, larger batches), the AVX2 tiles
// and the AVX-512 int8 tile prefetch nothing, and MatMul prefetches the
// next group of four rows a share per tile call instead (groupPrefetch),
// which keeps the memory busy through a whole group and frees the load
// ports of the AVX2 tiles, their bound in the cache. The measurements behind these choices are in
// BENCHMARKS.md.
//
// With AVX-512 the rows of a product go through a many-row kernel
// (dotF32RowsAVX512, dotF16RowsAVX512, dotBF16RowsAVX512, dotQ8RowsAVX512:
// the four-row kernel in a loop, same bits) instead of one call per four
// rows, which saves a call, its argument loads and a Go loop per four rows:
// for short rows such as dt_proj's 48 columns and the Note Block's 64 those
// cost as much as the products.
//
// Hand-written assembly rather than avo or GOEXPERIMENT=simd: the kernels
// are few and small (one loop each, shared through #define macros), hand
// assembly needs no generator module or experiment flag in the default
// build, and go vet's asmdecl checks every frame against its Go
// declaration. archsimd would be the choice once it is on by default.
//
// # Dimensions
//
// The kernels name sizes with the symbols of the model's definition,
// ../shared/SPEC.md (its "Notation and configuration" table and "Forward
// pass"), where an argument is one of them:
//
//	d  hidden size (the residual stream)
//	E  the mixer's inner size: channels of the conv and the scan
//	N  the scan's state size per channel
//	K  the conv's kernel width
//	R  the time-step rank (dt_proj's input)
//	A  the Note Block's attention width, split into H heads of dh = A/H
//	S  the width of a pool entry's summary
//	T  tokens in one call (a prefill chunk; 1 for a decode step); SPEC's
//	   "T tokens in one prefill call", not a config key
//	V  vocabulary size (the LM head's rows)
package ops
