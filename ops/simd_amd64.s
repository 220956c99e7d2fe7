//go:build !purego

#include "textflag.h"
#include "q8z_amd64.h"

// Row-dot kernels: four weight rows (at w, w+stride, w+2*stride,
// w+3*stride bytes) against one vector. Each row has its own vector
// accumulator, updated in column order (lane = column mod lanes), and is
// reduced by the same fixed tree (REDUCE4), so a row's bits do not depend on
// which of the four slots it occupies: stride 0 computes one row.
//
// The f32 sum of lanes a0..a7 is ((a0+a1)+(a2+a3)) + ((a4+a5)+(a6+a7));
// with 16 lanes, lane i and i+8 are added first.

// REDUCE4 sums the 8 lanes of Y0..Y3 and stores the four sums at (R8).
#define REDUCE4 \
	VHADDPS      Y1, Y0, Y0; \
	VHADDPS      Y3, Y2, Y2; \
	VHADDPS      Y2, Y0, Y0; \
	VEXTRACTF128 $1, Y0, X1; \
	VADDPS       X1, X0, X0; \
	VMOVUPS      X0, (R8); \
	VZEROUPPER

// FOLD16 adds the high 256 bits of Z0..Z3 to their low halves.
#define FOLD16 \
	VEXTRACTF64X4 $1, Z0, Y4; \
	VADDPS        Y4, Y0, Y0; \
	VEXTRACTF64X4 $1, Z1, Y4; \
	VADDPS        Y4, Y1, Y1; \
	VEXTRACTF64X4 $1, Z2, Y4; \
	VADDPS        Y4, Y2, Y2; \
	VEXTRACTF64X4 $1, Z3, Y4; \
	VADDPS        Y4, Y3, Y3

// ROWS sets SI, R9, R10, R11 to the four row pointers and zeroes Y0..Y3.
#define ROWS \
	MOVQ   w+0(FP), SI; \
	MOVQ   stride+8(FP), DX; \
	MOVQ   n+16(FP), CX; \
	MOVQ   x+24(FP), DI; \
	MOVQ   out+32(FP), R8; \
	LEAQ   (SI)(DX*1), R9; \
	LEAQ   (SI)(DX*2), R10; \
	LEAQ   (R10)(DX*1), R11; \
	VXORPS Y0, Y0, Y0; \
	VXORPS Y1, Y1, Y1; \
	VXORPS Y2, Y2, Y2; \
	VXORPS Y3, Y3, Y3; \
	XORQ   AX, AX

// PFLIN4, PFLIN2: the next 4 or 2 lines of the linear prefetch stream at
// R12, advanced.
#define PFLIN4 \
	PREFETCHT0 (R12); \
	PREFETCHT0 64(R12); \
	PREFETCHT0 128(R12); \
	PREFETCHT0 192(R12); \
	ADDQ       $256, R12

#define PFLIN1 \
	PREFETCHT0 (R12); \
	ADDQ       $64, R12

#define PFLIN2 \
	PREFETCHT0 (R12); \
	PREFETCHT0 64(R12); \
	ADDQ       $128, R12

// MANYROWS(shift, STEP, PFLINES, FOLD): the body of a many-row float kernel:
// groups of four rows, each through the four-row kernel's steps (STEP
// without its prefetches; n << shift bytes of a row), reduced and stored as
// it does. The rows are back to back (stride = n << shift), so instead of
// one prefetch per row and step it prefetches the bytes PF after the
// group's start as one linear stream (R12), PFLINES lines a step (the
// step's 4 x 64 or 4 x 32 bytes), as dotQ8RowsAVX512 does: a single stream
// is what the hardware prefetcher and the memory controller serve best.
// FOLD is FOLD16 for the 512-bit kernels, NOFOLD for the 256-bit ones.
#define MANYROWS(shift, STEP, PFLINES, FOLD) \
	MOVQ   w+0(FP), SI; \
	MOVQ   stride+8(FP), DX; \
	MOVQ   n+16(FP), CX; \
	MOVQ   rows+24(FP), BX; \
	MOVQ   x+32(FP), DI; \
	MOVQ   out+40(FP), R8; \
	SHLQ   $shift, CX; \
	SHRQ   $2, BX; \
	JZ     mrdone; \
mrgroup: \
	LEAQ   (SI)(DX*1), R9; \
	LEAQ   (SI)(DX*2), R10; \
	LEAQ   (R10)(DX*1), R11; \
	VXORPS Y0, Y0, Y0; \
	VXORPS Y1, Y1, Y1; \
	VXORPS Y2, Y2, Y2; \
	VXORPS Y3, Y3, Y3; \
	XORQ   AX, AX; \
	LEAQ   PF(SI), R12; \
mrloop: \
	PFLINES; \
	STEP; \
	CMPQ   AX, CX; \
	JLT    mrloop; \
	FOLD; \
	REDUCE4; \
	ADDQ   $16, R8; \
	LEAQ   (SI)(DX*4), SI; \
	DECQ   BX; \
	JNZ    mrgroup; \
mrdone: \
	RET

// NOFOLD stands for FOLD16 in MANYROWS for the 256-bit kernels, whose
// accumulators are already 8 lanes wide.
#define NOFOLD

// Block kernels: four rows of Q8_0 or Q4_0 blocks against an activation
// vector quantised to int8 per block of 32 (xq, with scales xd). For each
// block, the 32 products w*x are summed exactly in int32 (8 lanes of 4),
// converted to float32 and multiply-added, scaled by d_w*d_x (one float32
// product), into the row's 8-lane accumulator; REDUCE4 then sums the lanes.
// The AVX2 path forms the int32 lanes with VPMADDUBSW+VPMADDWD, the VNNI
// path with VPDPBUSD; both give the same integers, so the same bits. Both
// multiply |w| (unsigned) by x carrying w's sign, which is exact for every
// int8 w (including -128) because |x| <= 127.

// QROWS loads the arguments and zeroes the accumulators.
#define QROWS \
	MOVQ   w+0(FP), SI; \
	MOVQ   stride+8(FP), DX; \
	MOVQ   nb+16(FP), CX; \
	MOVQ   xq+24(FP), DI; \
	MOVQ   xd+32(FP), R12; \
	MOVQ   out+40(FP), R8; \
	LEAQ   (SI)(DX*1), R9; \
	LEAQ   (SI)(DX*2), R10; \
	LEAQ   (R10)(DX*1), R11; \
	VXORPS Y0, Y0, Y0; \
	VXORPS Y1, Y1, Y1; \
	VXORPS Y2, Y2, Y2; \
	VXORPS Y3, Y3, Y3; \
	VPCMPEQW Y15, Y15, Y15; \
	VPSRLW   $15, Y15, Y15; \
	MOVL     $0x0f0f0f0f, AX; \
	VMOVD    AX, X14; \
	VPBROADCASTD X14, Y14; \
	MOVL     $0x08080808, AX; \
	VMOVD    AX, X13; \
	VPBROADCASTD X13, Y13

// Y6 = |w|, Y7 = x with w's sign, from the signed weights in Y6 and x in Y4.
#define SIGNS \
	VPSIGNB Y6, Y4, Y7; \
	VPABSB  Y6, Y6

// SUMI2 / SUMIV: Y6 = float32 of the 8 int32 lanes of sum |w|*(±x).
#define SUMI2 \
	VPMADDUBSW Y7, Y6, Y6; \
	VPMADDWD   Y15, Y6, Y6; \
	VCVTDQ2PS  Y6, Y6

#define SUMIV \
	VPXOR     Y9, Y9, Y9; \
	VPDPBUSD  Y7, Y6, Y9; \
	VCVTDQ2PS Y9, Y6

// SCALE(ptr, acc): acc += Y6 * (f16 scale at ptr * x's scale X5).
#define SCALE(ptr, acc) \
	MOVWLZX      (ptr), AX; \
	VMOVD        AX, X8; \
	VCVTPH2PS    X8, X8; \
	VMULSS       X5, X8, X8; \
	VBROADCASTSS X8, Y8; \
	VFMADD231PS  Y8, Y6, acc

// Q8W(ptr) / Q4W(ptr): Y6 = the 32 signed weights of the block at ptr.
#define Q8W(ptr) \
	VMOVDQU 2(ptr), Y6

#define Q4W(ptr) \
	VMOVDQU     2(ptr), X6; \
	VPSRLW      $4, X6, X10; \
	VPAND       X14, X6, X6; \
	VPAND       X14, X10, X10; \
	VINSERTI128 $1, X10, Y6, Y6; \
	VPSUBB      Y13, Y6, Y6

// BLOCK4(WEIGHTS, SUMI): one block of each of the four rows against the
// x block in Y4 (its scale in X5), into Y0..Y3.
#define BLOCK4(WEIGHTS, SUMI) \
	WEIGHTS(SI); \
	SIGNS; \
	SUMI; \
	SCALE(SI, Y0); \
	WEIGHTS(R9); \
	SIGNS; \
	SUMI; \
	SCALE(R9, Y1); \
	WEIGHTS(R10); \
	SIGNS; \
	SUMI; \
	SCALE(R10, Y2); \
	WEIGHTS(R11); \
	SIGNS; \
	SUMI; \
	SCALE(R11, Y3)

#define QLOOP(WEIGHTS, SUMI, bb) \
	TESTQ   CX, CX; \
	JZ      qdone; \
qloop: \
	VMOVDQU (DI), Y4; \
	VMOVSS  (R12), X5; \
	PREFETCHT0 PF(SI); \
	PREFETCHT0 PF(R9); \
	PREFETCHT0 PF(R10); \
	PREFETCHT0 PF(R11); \
	BLOCK4(WEIGHTS, SUMI); \
	ADDQ    $bb, SI; \
	ADDQ    $bb, R9; \
	ADDQ    $bb, R10; \
	ADDQ    $bb, R11; \
	ADDQ    $32, DI; \
	ADDQ    $4, R12; \
	DECQ    CX; \
	JNZ     qloop; \
qdone: \
	REDUCE4; \
	RET

// PAIRDOT(ptr, bb, acc): acc += the two blocks of one row whose unsigned
// weights are in Z6 against the x pair in Z4, the lanes starting at Z18;
// the blocks' f16 scales are at ptr and ptr+bb (bb: a block's bytes).
// Uses Z9, Z10, Z11.
#define PAIRDOT(ptr, bb, acc) \
	VMOVDQA64       Z18, Z9; \
	VPDPBUSD        Z4, Z6, Z9; \
	VCVTDQ2PS       Z9, Z9; \
	VPBROADCASTW    (ptr), Y10; \
	VPBROADCASTW    bb(ptr), Y11; \
	VPBLENDD        $0xF0, Y11, Y10, Y10; \
	VCVTPH2PS       Y10, Z10; \
	VMULPS          Z19, Z10, Z10; \
	ADD2BLOCKS(Z9, Z10, acc)

// Q8ZROW(ptr, acc): two Q8_0 blocks of one row at ptr against x in Z4
// (Z16: 0x80 bytes, Z18: the lanes' start, Z19: x's scales), added into
// the 16 lanes of acc (ADD2BLOCKS). Uses Z6, Z9, Z10, Z11.
#define Q8ZROW(ptr, acc) \
	VMOVDQU         2(ptr), Y6; \
	VINSERTI64X4    $1, 36(ptr), Z6, Z6; \
	VPXORD          Z16, Z6, Z6; \
	PAIRDOT(ptr, 34, acc)

// F32MUL2, F16MUL2, BF16MUL2: one step of the 256-bit float kernels, 8
// columns of the four rows at SI, R9, R10, R11 (column byte offset AX,
// advanced) against x at DI, into Y0..Y3: the loop body of dotF32x4AVX2,
// dotF16x4AVX2 and dotBF16x4AVX2 (which add PF4) and of their many-row
// kernels (which add the linear prefetch stream).
#define F32MUL2 \
	VMOVUPS     (DI)(AX*1), Y4; \
	VFMADD231PS (SI)(AX*1), Y4, Y0; \
	VFMADD231PS (R9)(AX*1), Y4, Y1; \
	VFMADD231PS (R10)(AX*1), Y4, Y2; \
	VFMADD231PS (R11)(AX*1), Y4, Y3; \
	ADDQ        $32, AX

#define F16MUL2 \
	VMOVUPS     (DI)(AX*2), Y4; \
	VCVTPH2PS   (SI)(AX*1), Y5; \
	VCVTPH2PS   (R9)(AX*1), Y6; \
	VCVTPH2PS   (R10)(AX*1), Y7; \
	VCVTPH2PS   (R11)(AX*1), Y8; \
	VFMADD231PS Y5, Y4, Y0; \
	VFMADD231PS Y6, Y4, Y1; \
	VFMADD231PS Y7, Y4, Y2; \
	VFMADD231PS Y8, Y4, Y3; \
	ADDQ        $16, AX

#define BF16MUL2 \
	VMOVUPS     (DI)(AX*2), Y4; \
	VPMOVZXWD   (SI)(AX*1), Y5; \
	VPMOVZXWD   (R9)(AX*1), Y6; \
	VPMOVZXWD   (R10)(AX*1), Y7; \
	VPMOVZXWD   (R11)(AX*1), Y8; \
	VPSLLD      $16, Y5, Y5; \
	VPSLLD      $16, Y6, Y6; \
	VPSLLD      $16, Y7, Y7; \
	VPSLLD      $16, Y8, Y8; \
	VFMADD231PS Y5, Y4, Y0; \
	VFMADD231PS Y6, Y4, Y1; \
	VFMADD231PS Y7, Y4, Y2; \
	VFMADD231PS Y8, Y4, Y3; \
	ADDQ        $16, AX

// func dotF32x4AVX2(w *byte, stride, n int, x *float32, out *[4]float32)
// n is a multiple of 8.
TEXT ·dotF32x4AVX2(SB), NOSPLIT, $0-40
	ROWS
	SHLQ $2, CX
	JZ   f32a2done

f32a2loop:
	PF4
	F32MUL2
	CMPQ        AX, CX
	JLT         f32a2loop

f32a2done:
	REDUCE4
	RET

// FMA4Z adds the four rows' decoded weights Z5..Z8 times x (Z4) into Z0..Z3.
#define FMA4Z \
	VFMADD231PS Z5, Z4, Z0; \
	VFMADD231PS Z6, Z4, Z1; \
	VFMADD231PS Z7, Z4, Z2; \
	VFMADD231PS Z8, Z4, Z3

// F32STEP5, F16STEP5, BF16STEP5: one step of the 512-bit float kernels,
// 16 columns of the four rows at SI, R9, R10, R11 (column byte offset AX,
// advanced) against x at DI, into Z0..Z3.
#define F32MUL5 \
	VMOVUPS     (DI)(AX*1), Z4; \
	VFMADD231PS (SI)(AX*1), Z4, Z0; \
	VFMADD231PS (R9)(AX*1), Z4, Z1; \
	VFMADD231PS (R10)(AX*1), Z4, Z2; \
	VFMADD231PS (R11)(AX*1), Z4, Z3; \
	ADDQ        $64, AX

#define F32STEP5 \
	PF4; \
	F32MUL5

#define F16MUL5 \
	VMOVUPS     (DI)(AX*2), Z4; \
	VCVTPH2PS   (SI)(AX*1), Z5; \
	VCVTPH2PS   (R9)(AX*1), Z6; \
	VCVTPH2PS   (R10)(AX*1), Z7; \
	VCVTPH2PS   (R11)(AX*1), Z8; \
	FMA4Z; \
	ADDQ        $32, AX

#define F16STEP5 \
	PF4; \
	F16MUL5

#define BF16MUL5 \
	VMOVUPS     (DI)(AX*2), Z4; \
	VPMOVZXWD   (SI)(AX*1), Z5; \
	VPMOVZXWD   (R9)(AX*1), Z6; \
	VPMOVZXWD   (R10)(AX*1), Z7; \
	VPMOVZXWD   (R11)(AX*1), Z8; \
	VPSLLD      $16, Z5, Z5; \
	VPSLLD      $16, Z6, Z6; \
	VPSLLD      $16, Z7, Z7; \
	VPSLLD      $16, Z8, Z8; \
	FMA4Z; \
	ADDQ        $32, AX

#define BF16STEP5 \
	PF4; \
	BF16MUL5

// func dotF32x4AVX512(w *byte, stride, n int, x *float32, out *[4]float32)
// n is a multiple of 16.
TEXT ·dotF32x4AVX512(SB), NOSPLIT, $0-40
	ROWS
	SHLQ $2, CX
	JZ   f32a5done

f32a5loop:
	F32STEP5
	CMPQ        AX, CX
	JLT         f32a5loop

f32a5done:
	FOLD16
	REDUCE4
	RET

// func dotF16x4AVX2(w *byte, stride, n int, x *float32, out *[4]float32)
// n is a multiple of 8. AX is the offset into the rows (2 bytes a value).
TEXT ·dotF16x4AVX2(SB), NOSPLIT, $0-40
	ROWS
	SHLQ $1, CX
	JZ   f16a2done

f16a2loop:
	PF4
	F16MUL2
	CMPQ        AX, CX
	JLT         f16a2loop

f16a2done:
	REDUCE4
	RET

// func dotF16x4AVX512(w *byte, stride, n int, x *float32, out *[4]float32)
// n is a multiple of 16.
TEXT ·dotF16x4AVX512(SB), NOSPLIT, $0-40
	ROWS
	SHLQ $1, CX
	JZ   f16a5done

f16a5loop:
	F16STEP5
	CMPQ        AX, CX
	JLT         f16a5loop

f16a5done:
	FOLD16
	REDUCE4
	RET

// func dotBF16x4AVX2(w *byte, stride, n int, x *float32, out *[4]float32)
// n is a multiple of 8. A bfloat16 is the high half of a float32.
TEXT ·dotBF16x4AVX2(SB), NOSPLIT, $0-40
	ROWS
	SHLQ $1, CX
	JZ   bf16a2done

bf16a2loop:
	PF4
	BF16MUL2
	CMPQ        AX, CX
	JLT         bf16a2loop

bf16a2done:
	REDUCE4
	RET

// func dotBF16x4AVX512(w *byte, stride, n int, x *float32, out *[4]float32)
// n is a multiple of 16.
TEXT ·dotBF16x4AVX512(SB), NOSPLIT, $0-40
	ROWS
	SHLQ $1, CX
	JZ   bf16a5done

bf16a5loop:
	BF16STEP5
	CMPQ        AX, CX
	JLT         bf16a5loop

bf16a5done:
	FOLD16
	REDUCE4
	RET

// func dotQ8x4AVX2(w *byte, stride, nb int, xq *int8, xd *float32, out *[4]float32)
TEXT ·dotQ8x4AVX2(SB), NOSPLIT, $0-48
	QROWS
	QLOOP(Q8W, SUMI2, 34)

// func dotQ8RowsAVX2(w *byte, stride, nb, rows int, xq *int8, xd *float32, out *float32)
// nb is a positive number of blocks; the rows are back to back (stride =
// 34*nb). dotQ8x4AVX2's loop (BLOCK4 of Q8W, SUMI2) on each group of four
// rows, so its bits; the group's bytes PF ahead are prefetched as one
// linear stream, 3 lines a step of 4 x 34 bytes (R13), the way
// dotQ8RowsAVX512 does.
TEXT ·dotQ8RowsAVX2(SB), NOSPLIT, $0-56
	MOVQ w+0(FP), R14         // the group's first row
	MOVQ stride+8(FP), DX
	MOVQ rows+24(FP), BX
	MOVQ out+48(FP), R8
	SHRQ $2, BX
	JZ   q8r2done

q8r2group:
	MOVQ     R14, SI
	LEAQ     (SI)(DX*1), R9
	LEAQ     (SI)(DX*2), R10
	LEAQ     (R10)(DX*1), R11
	MOVQ     xq+32(FP), DI
	MOVQ     xd+40(FP), R12
	MOVQ     nb+16(FP), CX
	LEAQ     PF(SI), R13
	VXORPS   Y0, Y0, Y0
	VXORPS   Y1, Y1, Y1
	VXORPS   Y2, Y2, Y2
	VXORPS   Y3, Y3, Y3
	VPCMPEQW Y15, Y15, Y15    // sixteen int16 ones (REDUCE4's VZEROUPPER clears them)
	VPSRLW   $15, Y15, Y15

q8r2loop:
	VMOVDQU    (DI), Y4
	VMOVSS     (R12), X5
	PREFETCHT0 (R13)
	PREFETCHT0 64(R13)
	PREFETCHT0 128(R13)
	ADDQ       $136, R13
	BLOCK4(Q8W, SUMI2)
	ADDQ       $34, SI
	ADDQ       $34, R9
	ADDQ       $34, R10
	ADDQ       $34, R11
	ADDQ       $32, DI
	ADDQ       $4, R12
	DECQ       CX
	JNZ        q8r2loop

	REDUCE4
	ADDQ $16, R8
	LEAQ (R14)(DX*4), R14
	DECQ BX
	JNZ  q8r2group

q8r2done:
	RET

// func dotQ4x4AVX2(w *byte, stride, nb int, xq *int8, xd *float32, out *[4]float32)
TEXT ·dotQ4x4AVX2(SB), NOSPLIT, $0-48
	QROWS
	QLOOP(Q4W, SUMI2, 18)

// The 512-bit block kernels' shared steps. They keep the x pair in Z4,
// its two scales in Z19 (8 lanes each) and, in Z18, each lane's offset
// -m * (its four x) for the weight offset m whose bytes Z16 holds (128 for
// int8, 8 for int4); Z17 is zero.

// XPAIR loads the next x pair (DI, scales at R12) and its lane offsets.
#define XPAIR \
	VMOVDQU64     (DI), Z4; \
	VBROADCASTSS  (R12), Y19; \
	VBROADCASTSS  4(R12), Y20; \
	VINSERTF64X4  $1, Y20, Z19, Z19; \
	VPXORD        Z18, Z18, Z18; \
	VPDPBUSD      Z4, Z16, Z18; \
	VPSUBD        Z18, Z17, Z18

// PAIRNEXT(bb) moves the four rows (SI, R9, R10, R11) on by bb bytes (two
// blocks) and x and its scales by two blocks.
#define PAIRNEXT(bb) \
	ADDQ $bb, SI; \
	ADDQ $bb, R9; \
	ADDQ $bb, R10; \
	ADDQ $bb, R11; \
	ADDQ $64, DI; \
	ADDQ $8, R12

// ODDBLOCK(WEIGHTS) runs the one block left after the pairs through the
// 256-bit VNNI body, for the four rows.
#define ODDBLOCK(WEIGHTS) \
	VMOVDQU (DI), Y4; \
	VMOVSS  (R12), X5; \
	BLOCK4(WEIGHTS, SUMIV)

// Q4ZROW(ptr, acc): acc += the products of the two Q4_0 blocks at ptr (18
// bytes each) with the activation pair in Z4, the lanes starting from Z18
// (-8 * their four x): the nibbles enter VPDPBUSD as they are (unsigned
// 0..15), so a lane sums (q-8)*x = q*x - 8*x exactly, the integers of the
// AVX2 kernel. Each block's 16 bytes go into two 128-bit lanes, shifted
// right by 0 and 4 bits per lane (Z21) and masked to nibbles (Z22): block
// 0's 32 weights in order (low nibbles are elements 0-15, high ones
// 16-31), then block 1's, as the activations are in Z4.
#define Q4ZROW(ptr, acc) \
	VBROADCASTI32X4 2(ptr), Z6; \
	VINSERTI32X4    $2, 20(ptr), Z6, Z6; \
	VINSERTI32X4    $3, 20(ptr), Z6, Z6; \
	VPSRLVW         Z21, Z6, Z6; \
	VPANDD          Z22, Z6, Z6; \
	PAIRDOT(ptr, 18, acc)

// q4shift holds per-word right shifts 0, 4, 0, 4 for the four 128-bit lanes
// of a register that holds block 0's 16 bytes twice, then block 1's twice:
// low nibbles (elements 0-15), high nibbles (16-31), for each block.
DATA q4shift<>+0x00(SB)/8, $0
DATA q4shift<>+0x08(SB)/8, $0
DATA q4shift<>+0x10(SB)/8, $0x0004000400040004
DATA q4shift<>+0x18(SB)/8, $0x0004000400040004
DATA q4shift<>+0x20(SB)/8, $0
DATA q4shift<>+0x28(SB)/8, $0
DATA q4shift<>+0x30(SB)/8, $0x0004000400040004
DATA q4shift<>+0x38(SB)/8, $0x0004000400040004
GLOBL q4shift<>(SB), RODATA|NOPTR, $64

// func dotQ4x4AVX512(w *byte, stride, nb int, xq *int8, xd *float32, out *[4]float32)
//
// The int4 row kernel with VNNI, two blocks at a time in 512-bit registers,
// in dotQ8x4AVX512's order (the exact int32 lanes of dotQ4x4AVX2, each
// pair added by one 16-lane FMA, folded after the last pair; see Q4ZROW,
// ADD2BLOCKS). Per
// row and two blocks that is 17 instructions where the 256-bit VNNI kernel
// took 34. An odd last block runs the 256-bit body.
TEXT ·dotQ4x4AVX512(SB), NOSPLIT, $0-48
	QROWS
	MOVL         $0x08080808, AX
	VPBROADCASTD AX, Z16          // 8 in every byte
	VPXORD       Z17, Z17, Z17    // zero
	VMOVDQU64    q4shift<>(SB), Z21
	VPBROADCASTD X14, Z22         // 0x0f in every byte
	MOVQ         CX, BX
	SHRQ         $1, BX           // block pairs
	JZ           q4zodd

q4zloop:
	XPAIR
	PREFETCHT0    PF(SI)
	PREFETCHT0    PF(R9)
	PREFETCHT0    PF(R10)
	PREFETCHT0    PF(R11)
	Q4ZROW(SI, Z0)
	Q4ZROW(R9, Z1)
	Q4ZROW(R10, Z2)
	Q4ZROW(R11, Z3)
	PAIRNEXT(36)
	DECQ          BX
	JNZ           q4zloop

q4zodd:
	FOLD16
	TESTQ   $1, CX
	JZ      q4zdone
	ODDBLOCK(Q4W)

q4zdone:
	REDUCE4
	RET

// func dotQ8x4AVX512(w *byte, stride, nb int, xq *int8, xd *float32, out *[4]float32)
//
// The int8 row kernel with VNNI, two blocks at a time in 512-bit registers,
// the 8 int32 lanes of each block (4 products each) are dotQ8x4AVX2's
// exact integers; each pair of blocks is scaled and added by one FMA into
// the row's 16 float lanes (even blocks low, odd blocks high: ADD2BLOCKS),
// folded to 8 after the last pair (FOLD16). AVX-512 has no VPSIGNB,
// so instead of |w| and x with w's sign, the weights enter VPDPBUSD as
// unsigned bytes w+128 (w XOR 0x80) and each lane starts from
// -128*(its four x): sum (w+128)*x - 128*sum x = sum w*x. Per row and
// two blocks that is 15 instructions where a 256-bit VNNI kernel takes 24.
// Two blocks of a row (34 bytes each: f16 scale, 32 weights) come from one
// 256-bit load and one 256-bit insert; an odd last block runs the 256-bit
// body. It prefetches PF ahead in each row, which suits any stride (a
// column view included); dotQ8RowsAVX512 prefetches rows that are back to
// back as one stream.
TEXT ·dotQ8x4AVX512(SB), NOSPLIT, $0-48
	QROWS
	MOVL         $0x80808080, AX
	VPBROADCASTD AX, Z16          // 128 in every byte
	VPXORD       Z17, Z17, Z17    // zero
	MOVQ         CX, BX
	SHRQ         $1, BX           // block pairs
	JZ           q8zodd

q8zloop:
	XPAIR
	PREFETCHT0    PF(SI)
	PREFETCHT0    PF(R9)
	PREFETCHT0    PF(R10)
	PREFETCHT0    PF(R11)
	PREFETCHT0    PF+64(SI)
	PREFETCHT0    PF+64(R9)
	PREFETCHT0    PF+64(R10)
	PREFETCHT0    PF+64(R11)
	Q8ZROW(SI, Z0)
	Q8ZROW(R9, Z1)
	Q8ZROW(R10, Z2)
	Q8ZROW(R11, Z3)
	PAIRNEXT(68)
	DECQ          BX
	JNZ           q8zloop

q8zodd:
	FOLD16
	TESTQ   $1, CX
	JZ      q8zdone
	ODDBLOCK(Q8W)

q8zdone:
	REDUCE4
	RET

// Many-row kernels: the 512-bit four-row kernels over rows/4 groups of
// four consecutive rows (rows a positive multiple of 4), the sums of group
// g stored at out[4g..4g+3]. Each group runs the four-row kernel's
// instructions in the same order, so every sum has its bits; what goes is
// the call, the argument loads and the Go loop per group, which for short
// rows (dt_proj's 48 columns, the Note Block's 64) cost as much as the
// products.

// func dotF32RowsAVX2(w *byte, stride, n, rows int, x *float32, out *float32)
// n is a positive multiple of 8; the rows are back to back (stride = 4n).
TEXT ·dotF32RowsAVX2(SB), NOSPLIT, $0-48
	MANYROWS(2, F32MUL2, PFLIN2, NOFOLD)

// func dotF16RowsAVX2(w *byte, stride, n, rows int, x *float32, out *float32)
// n is a positive multiple of 8; the rows are back to back (stride = 2n).
TEXT ·dotF16RowsAVX2(SB), NOSPLIT, $0-48
	MANYROWS(1, F16MUL2, PFLIN1, NOFOLD)

// func dotBF16RowsAVX2(w *byte, stride, n, rows int, x *float32, out *float32)
// n is a positive multiple of 8; the rows are back to back (stride = 2n).
TEXT ·dotBF16RowsAVX2(SB), NOSPLIT, $0-48
	MANYROWS(1, BF16MUL2, PFLIN1, NOFOLD)

// func dotF32RowsAVX512(w *byte, stride, n, rows int, x *float32, out *float32)
// n is a positive multiple of 16; the rows are back to back (stride = 4n).
TEXT ·dotF32RowsAVX512(SB), NOSPLIT, $0-48
	MANYROWS(2, F32MUL5, PFLIN4, FOLD16)

// func dotF16RowsAVX512(w *byte, stride, n, rows int, x *float32, out *float32)
// n is a positive multiple of 16; the rows are back to back (stride = 2n).
TEXT ·dotF16RowsAVX512(SB), NOSPLIT, $0-48
	MANYROWS(1, F16MUL5, PFLIN2, FOLD16)

// func dotBF16RowsAVX512(w *byte, stride, n, rows int, x *float32, out *float32)
// n is a positive multiple of 16; the rows are back to back (stride = 2n).
TEXT ·dotBF16RowsAVX512(SB), NOSPLIT, $0-48
	MANYROWS(1, BF16MUL5, PFLIN2, FOLD16)

// func dotQ8RowsAVX512(w *byte, stride, nb, rows int, xq *int8, xd *float32, out *float32)
// nb is a positive even number of blocks.
TEXT ·dotQ8RowsAVX512(SB), NOSPLIT, $0-56
	MOVQ         w+0(FP), R14     // the group's first row
	MOVQ         stride+8(FP), DX
	MOVQ         nb+16(FP), CX
	MOVQ         rows+24(FP), R13
	MOVQ         out+48(FP), R8
	MOVL         $0x80808080, AX
	VPBROADCASTD AX, Z16          // 128 in every byte
	VPXORD       Z17, Z17, Z17    // zero
	SHRQ         $2, R13
	JZ           q8rdone

q8rgroup:
	MOVQ   R14, SI
	LEAQ   (SI)(DX*1), R9
	LEAQ   (SI)(DX*2), R10
	LEAQ   (R10)(DX*1), R11
	MOVQ   xq+32(FP), DI
	MOVQ   xd+40(FP), R12
	LEAQ   PF(SI), AX             // the group's bytes PF ahead
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	MOVQ   CX, BX
	SHRQ   $1, BX                 // block pairs

q8rloop:
	XPAIR
	PREFETCHT0    (AX)
	PREFETCHT0    64(AX)
	PREFETCHT0    128(AX)
	PREFETCHT0    192(AX)
	PREFETCHT0    256(AX)
	ADDQ          $272, AX
	Q8ZROW(SI, Z0)
	Q8ZROW(R9, Z1)
	Q8ZROW(R10, Z2)
	Q8ZROW(R11, Z3)
	PAIRNEXT(68)
	DECQ          BX
	JNZ           q8rloop

	FOLD16
	REDUCE4                       // VZEROUPPER keeps Z16 and Z17
	ADDQ $16, R8
	LEAQ (R14)(DX*4), R14
	DECQ R13
	JNZ  q8rgroup

q8rdone:
	RET
