//go:build !purego

#include "textflag.h"
#include "q8z_amd64.h"

// Tile kernels for MatMul: four weight rows (at w + i*stride bytes) against
// several token vectors (at x + t*xstride bytes), so that each weight vector
// loaded (and decoded) is used for every token of the tile and each
// activation vector for every row. Output (row i, token t) is stored at
// out + t*ostride + 4*i bytes.
//
// Every output has its own accumulator, updated in column order exactly as
// the row-dot kernels of simd_amd64.s update it (one FMA per vector of
// columns, or one scaled block sum per block), and is reduced by the same
// tree (FOLD16 for 16 lanes, then REDUCE4's pairwise tree). So each output
// has the bits the row-dot kernel gives for that row and token: MatMul
// stays equal to MatVec token by token.
//
// The float tiles take n, the number of columns (a multiple of the lane
// count); the block tiles nb, the number of 32-value blocks.

// SUM4(a, b, c, d, xa, xb) reduces the 8 lanes of a..d (Y0..Y15 only:
// VHADDPS has no EVEX form) by REDUCE4's tree into the four lanes of xa
// (a's sum first); it overwrites xb, c and the high half of a.
#define SUM4(a, b, c, d, xa, xb) \
	VHADDPS      b, a, a; \
	VHADDPS      d, c, c; \
	VHADDPS      c, a, a; \
	VEXTRACTF128 $1, a, xb; \
	VADDPS       xb, xa, xa

// RED4(a, b, c, d, xa, xb) stores SUM4's four sums at (R8), like REDUCE4.
#define RED4(a, b, c, d, xa, xb) \
	SUM4(a, b, c, d, xa, xb); \
	VMOVUPS      xa, (R8)

// FOLD(z, y) adds the high 256 bits of z to its low half y, like FOLD16.
#define FOLD(z, y) \
	VEXTRACTF64X4 $1, z, Y16; \
	VADDPS        Y16, y, y

#define FOLD4(z0, z1, z2, z3, y0, y1, y2, y3) \
	FOLD(z0, y0); \
	FOLD(z1, y1); \
	FOLD(z2, y2); \
	FOLD(z3, y3)

// TILEARGS loads the arguments: rows SI, R9, R10, R11; tokens DI, R12, R13,
// DX; CX = n; R8 = out; BX = ostride; AX = 0.
#define TILEARGS \
	MOVQ w+0(FP), SI; \
	MOVQ stride+8(FP), DX; \
	LEAQ (SI)(DX*1), R9; \
	LEAQ (SI)(DX*2), R10; \
	LEAQ (R10)(DX*1), R11; \
	MOVQ x+24(FP), DI; \
	MOVQ xstride+32(FP), DX; \
	LEAQ (DI)(DX*1), R12; \
	LEAQ (DI)(DX*2), R13; \
	LEAQ (R13)(DX*1), DX; \
	MOVQ n+16(FP), CX; \
	MOVQ out+40(FP), R8; \
	MOVQ ostride+48(FP), BX; \
	XORQ AX, AX

// ---- AVX-512: 4 rows x 4 tokens, accumulator Z(4t+i) for row i, token t.

#define ZERO16 \
	VPXORD Z0, Z0, Z0; \
	VPXORD Z1, Z1, Z1; \
	VPXORD Z2, Z2, Z2; \
	VPXORD Z3, Z3, Z3; \
	VPXORD Z4, Z4, Z4; \
	VPXORD Z5, Z5, Z5; \
	VPXORD Z6, Z6, Z6; \
	VPXORD Z7, Z7, Z7; \
	VPXORD Z8, Z8, Z8; \
	VPXORD Z9, Z9, Z9; \
	VPXORD Z10, Z10, Z10; \
	VPXORD Z11, Z11, Z11; \
	VPXORD Z12, Z12, Z12; \
	VPXORD Z13, Z13, Z13; \
	VPXORD Z14, Z14, Z14; \
	VPXORD Z15, Z15, Z15

// X4Z(sc): Z16..Z19 = the next 16 values of the four tokens (x offset
// AX*sc).
#define X4Z(sc) \
	VMOVUPS (DI)(AX*sc), Z16; \
	VMOVUPS (R12)(AX*sc), Z17; \
	VMOVUPS (R13)(AX*sc), Z18; \
	VMOVUPS (DX)(AX*sc), Z19

// FMA4Z(wz, i): accumulators of row i += wz * each token.
#define FMA4Z(wz, a0, a1, a2, a3) \
	VFMADD231PS wz, Z16, a0; \
	VFMADD231PS wz, Z17, a1; \
	VFMADD231PS wz, Z18, a2; \
	VFMADD231PS wz, Z19, a3

#define FMA16Z \
	FMA4Z(Z20, Z0, Z4, Z8, Z12); \
	FMA4Z(Z21, Z1, Z5, Z9, Z13); \
	FMA4Z(Z22, Z2, Z6, Z10, Z14); \
	FMA4Z(Z23, Z3, Z7, Z11, Z15)

// STORE16 reduces and stores the 16 sums of the 4x4 tile.
#define STORE16 \
	FOLD4(Z0, Z1, Z2, Z3, Y0, Y1, Y2, Y3); \
	FOLD4(Z4, Z5, Z6, Z7, Y4, Y5, Y6, Y7); \
	FOLD4(Z8, Z9, Z10, Z11, Y8, Y9, Y10, Y11); \
	FOLD4(Z12, Z13, Z14, Z15, Y12, Y13, Y14, Y15); \
	RED16

// RED16 reduces the 8 lanes of Y0..Y15 and stores the 16 sums, four a
// token, at R8, R8+BX, R8+2*BX, R8+3*BX.
#define RED16 \
	RED4(Y0, Y1, Y2, Y3, X0, X1); \
	ADDQ BX, R8; \
	RED4(Y4, Y5, Y6, Y7, X4, X5); \
	ADDQ BX, R8; \
	RED4(Y8, Y9, Y10, Y11, X8, X9); \
	ADDQ BX, R8; \
	RED4(Y12, Y13, Y14, Y15, X12, X13); \
	VZEROUPPER

// TQ8ARGS loads the int8 tile's arguments: rows SI, SI+DX, SI+2*DX, R9;
// token quants DI, DI+R10, DI+2*R10, R11; token scales R12, R12+R13,
// R12+2*R13, BX; CX = nb; zeroes the accumulators.
#define TQ8ARGS \
	MOVQ w+0(FP), SI; \
	MOVQ stride+8(FP), DX; \
	LEAQ (SI)(DX*2), R9; \
	ADDQ DX, R9; \
	MOVQ xq+24(FP), DI; \
	MOVQ xstride+32(FP), R10; \
	LEAQ (DI)(R10*2), R11; \
	ADDQ R10, R11; \
	MOVQ nb+16(FP), CX; \
	MOVQ xd+40(FP), R12; \
	MOVQ CX, R13; \
	SHLQ $2, R13; \
	LEAQ (R12)(R13*2), BX; \
	ADDQ R13, BX; \
	ZERO16

// TQ8STEP is one block of the 4x4 tile in 256-bit registers (Y31: 0x80
// bytes); the pointers stay.
#define TQ8STEP \
	VPXORD       (DI), Y31, Y16; \
	VPXORD       (DI)(R10*1), Y31, Y17; \
	VPXORD       (DI)(R10*2), Y31, Y18; \
	VPXORD       (R11), Y31, Y19; \
	VBROADCASTSS (R12), Y20; \
	VBROADCASTSS (R12)(R13*1), Y21; \
	VBROADCASTSS (R12)(R13*2), Y22; \
	VBROADCASTSS (BX), Y23; \
	Q8ROW(2(SI), (SI), Y0, Y4, Y8, Y12); \
	Q8ROW(2(SI)(DX*1), (SI)(DX*1), Y1, Y5, Y9, Y13); \
	Q8ROW(2(SI)(DX*2), (SI)(DX*2), Y2, Y6, Y10, Y14); \
	Q8ROW(2(R9), (R9), Y3, Y7, Y11, Y15)

// TQ8STORE sums the tile's 16 accumulators and stores them, a token's four
// rows at out, ostride bytes apart, and returns.
#define TQ8STORE \
	MOVQ out+48(FP), R8; \
	MOVQ ostride+56(FP), BX; \
	RED16; \
	RET

// TILE2(shift, xsc, step, LOAD4): the body of an AVX2 float tile (the
// ZERO8 ... STORE8 macros below, for 4 rows x 2 tokens): n columns
// (shift: log2 of the bytes of a weight; xsc: 4 over them, X2Y's scale),
// LOAD4 putting the four rows' next 8 weights as float32 into Y10..Y13,
// the column offset advancing by step bytes. pf (the last argument) picks
// one of two loops: nonzero, each step prefetches PF ahead in each row
// (PF4); zero, none (the caller prefetches: groupPrefetch). Defined before
// the first TEXT so that vet reads pf+56(FP) as no function's argument.
#define TILE2(shift, xsc, step, LOAD4) \
	TILEARGS; \
	ZERO8; \
	SHLQ  $shift, CX; \
	JZ    t2done; \
	MOVQ  pf+56(FP), R14; \
	TESTQ R14, R14; \
	JZ    t2loop; \
t2pfloop: \
	X2Y(xsc); \
	PF4; \
	LOAD4; \
	FMA8Y; \
	ADDQ  $step, AX; \
	CMPQ  AX, CX; \
	JLT   t2pfloop; \
	JMP   t2done; \
t2loop: \
	X2Y(xsc); \
	LOAD4; \
	FMA8Y; \
	ADDQ  $step, AX; \
	CMPQ  AX, CX; \
	JLT   t2loop; \
t2done: \
	STORE8; \
	RET

// Q8DOT(wq, x, aw, ones, t, p, sel, prods, acc) is one row and token of
// a block in the AVX2 Q8_0 tiles: acc += float(sum |w|*(x with w's sign))
// * d_w*d_x, with the row's quants at wq and their |w| in aw, the token's
// quants in register x, sixteen int16 ones in ones, and d_w*d_x picked out
// of four scale products (prods, the same four in each 128-bit half) by
// VPERMILPS with sel ($0x00, $0x55, $0xaa, $0xff for the first to the
// fourth); t and p are temporaries (t may be x).
#define Q8DOT(wq, x, aw, ones, t, p, sel, prods, acc) \
	VPSIGNB      wq, x, t; \
	VPMADDUBSW   t, aw, t; \
	VPMADDWD     ones, t, t; \
	VCVTDQ2PS    t, t; \
	VPERMILPS    sel, prods, p; \
	VFMADD231PS  p, t, acc

// Q8A2TOK(wq, x, sel, prods, acc) is Q8DOT for the 4-row, 2-token tile:
// |w| in Y12, the ones in Y13, the row's d_w*d_x picked out of the
// token's four scale products (prods, each 128-bit half rows 0..3).
#define Q8A2TOK(wq, x, sel, prods, acc) \
	Q8DOT(wq, x, Y12, Y13, Y14, Y15, sel, prods, acc)

// Q8A2ROW(wq, p0, p1, a0, a1): one row's block (quants at wq) against the
// two tokens (x in Y8, Y9; the row's d_w*d_x for each at p0, p1).
#define Q8A2ROW(wq, s0, p0, s1, p1, a0, a1) \
	VPABSB wq, Y12; \
	Q8A2TOK(wq, Y8, s0, p0, a0); \
	Q8A2TOK(wq, Y9, s1, p1, a1)

// Q8A2SCALES puts the block's scale products d_w*d_x in Y10 (token 0)
// and Y11 (token 1), rows 0..3 in each 128-bit half: the four rows' f16
// d_w (at (SI), (SI)(DX*1), (R9), (R9)(DX*1)) gathered through general
// registers into one and converted together, times each token's d_x: two
// multiplies where one per row and token was. Uses AX, BX, R11, X13.
#define Q8A2SCALES \
	MOVWLZX      (SI), AX; \
	MOVWLZX      (SI)(DX*1), R11; \
	SHLL         $16, R11; \
	ORL          R11, AX; \
	MOVWLZX      (R9), R11; \
	MOVWLZX      (R9)(DX*1), BX; \
	SHLL         $16, BX; \
	ORL          BX, R11; \
	SHLQ         $32, R11; \
	ORQ          R11, AX; \
	VMOVQ        AX, X14; \
	VCVTPH2PS    X14, X14; \
	VBROADCASTSS (R12), X10; \
	VBROADCASTSS (R12)(R13*1), X11; \
	VMULPS       X10, X14, X10; \
	VMULPS       X11, X14, X11; \
	VINSERTF128  $1, X10, Y10, Y10; \
	VINSERTF128  $1, X11, Y11, Y11

// Q8A2STEP(PFX): one block of the AVX2 Q8_0 tile: the two tokens'
// quants, the scale products, PFX (the prefetches, or nothing), the four
// rows.
#define Q8A2STEP(PFX) \
	VMOVDQU (DI), Y8; \
	VMOVDQU (DI)(R10*1), Y9; \
	Q8A2SCALES; \
	PFX; \
	Q8A2ROW(2(SI), $0x0, Y10, $0x0, Y11, Y0, Y4); \
	Q8A2ROW(2(SI)(DX*1), $0x55, Y10, $0x55, Y11, Y1, Y5); \
	Q8A2ROW(2(R9), $0xaa, Y10, $0xaa, Y11, Y2, Y6); \
	Q8A2ROW(2(R9)(DX*1), $0xff, Y10, $0xff, Y11, Y3, Y7); \
	ADDQ    $34, SI; \
	ADDQ    $34, R9; \
	ADDQ    $32, DI; \
	ADDQ    $4, R12; \
	DECQ    CX

// Q8A2PF prefetches PF ahead in each of the four rows.
#define Q8A2PF \
	PREFETCHT0 PF(SI); \
	PREFETCHT0 PF(SI)(DX*1); \
	PREFETCHT0 PF(R9); \
	PREFETCHT0 PF(R9)(DX*1)

#define NOPF

// Q8LOOPS(STEP, PFX, ones, r) is the body of an AVX2 Q8_0 tile over CX
// blocks: zeroed accumulators Y0..Y7, the int16 ones in register ones,
// then STEP(PFX) per block when pf (read into r) is nonzero, STEP(NOPF)
// otherwise; it leaves out in R8 and ostride in BX for the reduction.
// Defined before the first TEXT, like TILE2, so that vet reads pf+64(FP)
// as no function's argument.
#define Q8LOOPS(STEP, PFX, ones, r) \
	ZERO8; \
	TESTQ   CX, CX; \
	JZ      q8done; \
	VMOVDQU ones16<>(SB), ones; \
	MOVQ    pf+64(FP), r; \
	TESTQ   r, r; \
	JZ      q8loop; \
q8pfloop: \
	STEP(PFX); \
	JNZ     q8pfloop; \
	JMP     q8done; \
q8loop: \
	STEP(NOPF); \
	JNZ     q8loop; \
q8done: \
	MOVQ    out+48(FP), R8; \
	MOVQ    ostride+56(FP), BX

// Q8A2TILE(STEP) is the whole body of the 4-row x 2-token AVX2 Q8_0
// tiles (tileQ8AVX2, tileQ8DAVX2), STEP their block (which leaves AX
// alone: tileQ8DAVX2's dw). Defined before the first TEXT, like Q8LOOPS.
#define Q8A2TILE(STEP) \
	MOVQ   w+0(FP), SI; \
	MOVQ   stride+8(FP), DX; \
	LEAQ   (SI)(DX*2), R9; \
	MOVQ   nb+16(FP), CX; \
	MOVQ   xq+24(FP), DI; \
	MOVQ   xstride+32(FP), R10; \
	MOVQ   xd+40(FP), R12; \
	MOVQ   CX, R13; \
	SHLQ   $2, R13; \
	Q8LOOPS(STEP, Q8A2PF, Y13, R14); \
	RED4(Y0, Y1, Y2, Y3, X0, X1); \
	ADDQ BX, R8; \
	RED4(Y4, Y5, Y6, Y7, X4, X5); \
	VZEROUPPER; \
	RET

// The AVX-512 float tiles' steps: the next 16 columns of the four rows at
// SI, R9, R10, R11 (column byte offset AX) as float32 in Z20..Z23, times
// the four tokens into the 16 accumulators, AX advanced; the caller
// compares AX with CX.
#define TF32ZSTEP \
	X4Z(1); \
	VMOVUPS (SI)(AX*1), Z20; \
	VMOVUPS (R9)(AX*1), Z21; \
	VMOVUPS (R10)(AX*1), Z22; \
	VMOVUPS (R11)(AX*1), Z23; \
	FMA16Z; \
	ADDQ    $64, AX

#define TF16ZSTEP \
	X4Z(2); \
	VCVTPH2PS (SI)(AX*1), Z20; \
	VCVTPH2PS (R9)(AX*1), Z21; \
	VCVTPH2PS (R10)(AX*1), Z22; \
	VCVTPH2PS (R11)(AX*1), Z23; \
	FMA16Z; \
	ADDQ      $32, AX

#define TBF16ZSTEP \
	X4Z(2); \
	VPMOVZXWD (SI)(AX*1), Z20; \
	VPMOVZXWD (R9)(AX*1), Z21; \
	VPMOVZXWD (R10)(AX*1), Z22; \
	VPMOVZXWD (R11)(AX*1), Z23; \
	VPSLLD    $16, Z20, Z20; \
	VPSLLD    $16, Z21, Z21; \
	VPSLLD    $16, Z22, Z22; \
	VPSLLD    $16, Z23, Z23; \
	FMA16Z; \
	ADDQ      $32, AX

// TZPFLIN4 and TZPFLIN2 prefetch rows that lie back to back as one
// stream (R14, from PF after the group's start): the 4 or 2 lines of a
// step's 4 x 64 (f32) or 4 x 32 (f16, bf16) bytes.
#define TZPFLIN4 \
	PREFETCHT0 (R14); \
	PREFETCHT0 64(R14); \
	PREFETCHT0 128(R14); \
	PREFETCHT0 192(R14); \
	ADDQ       $256, R14

#define TZPFLIN2 \
	PREFETCHT0 (R14); \
	PREFETCHT0 64(R14); \
	ADDQ       $128, R14

// TZLOOPS(STEP, PFLIN, lin, rows, none, done): the steps, with R15 (the
// kernel's pf) picking the prefetch: 2 as one stream (PFLIN), 1 PF ahead
// in each row (PF4), 0 none (MatMul prefetches for it: groupPrefetch); CX
// is the row bytes, nonzero.
#define TZLOOPS(STEP, PFLIN, lin, rows, none, done) \
	TESTQ R15, R15; \
	JZ    none; \
	CMPQ  R15, $1; \
	JEQ   rows; \
	LEAQ  PF(SI), R14; \
lin: \
	PFLIN; \
	STEP; \
	CMPQ  AX, CX; \
	JLT   lin; \
	JMP   done; \
rows: \
	PF4; \
	STEP; \
	CMPQ  AX, CX; \
	JLT   rows; \
	JMP   done; \
none: \
	STEP; \
	CMPQ  AX, CX; \
	JLT   none

// func tileF32AVX512(w *byte, stride, n int, x *float32, xstride int, out *float32, ostride, pf int)
// n is a multiple of 16.
TEXT ·tileF32AVX512(SB), NOSPLIT, $0-64
	TILEARGS
	MOVQ pf+56(FP), R15
	ZERO16
	SHLQ $2, CX
	JZ   tf32a5done
	TZLOOPS(TF32ZSTEP, TZPFLIN4, tf32a5lin, tf32a5rows, tf32a5none, tf32a5done)

tf32a5done:
	STORE16
	RET

// func tileF16AVX512(w *byte, stride, n int, x *float32, xstride int, out *float32, ostride, pf int)
// n is a multiple of 16. AX is the offset into the rows (2 bytes a value).
TEXT ·tileF16AVX512(SB), NOSPLIT, $0-64
	TILEARGS
	MOVQ pf+56(FP), R15
	ZERO16
	SHLQ $1, CX
	JZ   tf16a5done
	TZLOOPS(TF16ZSTEP, TZPFLIN2, tf16a5lin, tf16a5rows, tf16a5none, tf16a5done)

tf16a5done:
	STORE16
	RET

// func tileBF16AVX512(w *byte, stride, n int, x *float32, xstride int, out *float32, ostride, pf int)
// n is a multiple of 16.
TEXT ·tileBF16AVX512(SB), NOSPLIT, $0-64
	TILEARGS
	MOVQ pf+56(FP), R15
	ZERO16
	SHLQ $1, CX
	JZ   tbf16a5done
	TZLOOPS(TBF16ZSTEP, TZPFLIN2, tbf16a5lin, tbf16a5rows, tbf16a5none, tbf16a5done)

tbf16a5done:
	STORE16
	RET

// ---- AVX2: 4 rows x 2 tokens, accumulator Y(4t+i) for row i, token t.

#define ZERO8 \
	VXORPS Y0, Y0, Y0; \
	VXORPS Y1, Y1, Y1; \
	VXORPS Y2, Y2, Y2; \
	VXORPS Y3, Y3, Y3; \
	VXORPS Y4, Y4, Y4; \
	VXORPS Y5, Y5, Y5; \
	VXORPS Y6, Y6, Y6; \
	VXORPS Y7, Y7, Y7

#define X2Y(sc) \
	VMOVUPS (DI)(AX*sc), Y8; \
	VMOVUPS (R12)(AX*sc), Y9

#define FMA8Y \
	VFMADD231PS Y10, Y8, Y0; \
	VFMADD231PS Y10, Y9, Y4; \
	VFMADD231PS Y11, Y8, Y1; \
	VFMADD231PS Y11, Y9, Y5; \
	VFMADD231PS Y12, Y8, Y2; \
	VFMADD231PS Y12, Y9, Y6; \
	VFMADD231PS Y13, Y8, Y3; \
	VFMADD231PS Y13, Y9, Y7

#define STORE8 \
	RED4(Y0, Y1, Y2, Y3, X0, X1); \
	ADDQ BX, R8; \
	RED4(Y4, Y5, Y6, Y7, X4, X5); \
	VZEROUPPER

#define F32LOAD4 \
	VMOVUPS (SI)(AX*1), Y10; \
	VMOVUPS (R9)(AX*1), Y11; \
	VMOVUPS (R10)(AX*1), Y12; \
	VMOVUPS (R11)(AX*1), Y13

#define F16LOAD4 \
	VCVTPH2PS (SI)(AX*1), Y10; \
	VCVTPH2PS (R9)(AX*1), Y11; \
	VCVTPH2PS (R10)(AX*1), Y12; \
	VCVTPH2PS (R11)(AX*1), Y13

#define BF16LOAD4 \
	VPMOVZXWD (SI)(AX*1), Y10; \
	VPMOVZXWD (R9)(AX*1), Y11; \
	VPMOVZXWD (R10)(AX*1), Y12; \
	VPMOVZXWD (R11)(AX*1), Y13; \
	VPSLLD    $16, Y10, Y10; \
	VPSLLD    $16, Y11, Y11; \
	VPSLLD    $16, Y12, Y12; \
	VPSLLD    $16, Y13, Y13

// func tileF32AVX2(w *byte, stride, n int, x *float32, xstride int, out *float32, ostride int, pf int)
// n is a multiple of 8.
TEXT ·tileF32AVX2(SB), NOSPLIT, $0-64
	TILE2(2, 1, 32, F32LOAD4)

// func tileF16AVX2(w *byte, stride, n int, x *float32, xstride int, out *float32, ostride int, pf int)
// n is a multiple of 8.
TEXT ·tileF16AVX2(SB), NOSPLIT, $0-64
	TILE2(1, 2, 16, F16LOAD4)

// func tileBF16AVX2(w *byte, stride, n int, x *float32, xstride int, out *float32, ostride int, pf int)
// n is a multiple of 8.
TEXT ·tileBF16AVX2(SB), NOSPLIT, $0-64
	TILE2(1, 2, 16, BF16LOAD4)

// ---- Q8_0 with VNNI: 4 rows x 4 tokens of blocks, accumulator Y(4t+i).
//
// The row-dot kernel forms each block's 8 int32 lanes as sum |w|*(x with
// w's sign). Here the activations are offset instead, u = x+128 (x XOR
// 0x80, unsigned), so that one u serves all four rows: VPDPBUSD(u, w) -
// VPDPBUSD(128, w) is, lane by lane, the same exact integer sum of w*x.
// The scale is the float32 product d_w*d_x, as in the row-dot kernel, then
// one FMA into the accumulator: the same operations on the same values.

// Q8PAIR(dx, u, acc): acc += float(VPDPBUSD(u, w) - c) * (dw*dx), with w
// in Y24, c = VPDPBUSD(128, w) in Y25 and the broadcast d_w in Y26.
#define Q8PAIR(dx, u, acc) \
	VPXORD      Y27, Y27, Y27; \
	VPDPBUSD    Y24, u, Y27; \
	VPSUBD      Y25, Y27, Y27; \
	VCVTDQ2PS   Y27, Y27; \
	VMULPS      dx, Y26, Y28; \
	VFMADD231PS Y28, Y27, acc

// Q8ROW(wq, wd, a0, a1, a2, a3): one row's block (quants at wq, f16 scale
// at wd) against the four tokens.
#define Q8ROW(wq, wd, a0, a1, a2, a3) \
	VMOVDQU8     wq, Y24; \
	VPXORD       Y25, Y25, Y25; \
	VPDPBUSD     Y24, Y31, Y25; \
	MOVWLZX      wd, AX; \
	VMOVD        AX, X26; \
	VCVTPH2PS    X26, X26; \
	VBROADCASTSS X26, Y26; \
	Q8PAIR(Y20, Y16, a0); \
	Q8PAIR(Y21, Y17, a1); \
	Q8PAIR(Y22, Y18, a2); \
	Q8PAIR(Y23, Y19, a3)

// func quantQ8AVX512(q *int8, d *float32, x *float32, nb int)
// QuantizeQ8 on nb blocks of 32, with QuantizeQ8's bits: the block maximum
// of |x| skips NaN as the Go loop's comparisons do (VMAXPS returns its
// second source when either is NaN), d = amax/127, id = 1/d or 0, q =
// (x*id + 0x1.8p23) - 0x1.8p23 truncated to int32 and then to its low byte
// (VPMOVDB truncates, as Go's int8 conversion does).
TEXT ·quantQ8AVX512(SB), NOSPLIT, $0-32
	MOVQ         q+0(FP), DI
	MOVQ         d+8(FP), R8
	MOVQ         x+16(FP), SI
	MOVQ         nb+24(FP), CX
	MOVL         $0x7fffffff, AX
	VPBROADCASTD AX, Z31
	MOVL         $0x4b400000, AX // 0x1.8p23
	VPBROADCASTD AX, Z30
	MOVL         $0x42fe0000, AX // 127
	VMOVD        AX, X29
	MOVL         $0x3f800000, AX // 1
	VMOVD        AX, X28
	TESTQ        CX, CX
	JZ           qzdone

qzloop:
	VMOVUPS       (SI), Z0
	VMOVUPS       64(SI), Z1
	VPANDD        Z31, Z0, Z2
	VPANDD        Z31, Z1, Z3
	VPXORD        Z4, Z4, Z4
	VMAXPS        Z4, Z2, Z4
	VMAXPS        Z4, Z3, Z4
	VEXTRACTF64X4 $1, Z4, Y5
	VMAXPS        Y5, Y4, Y4
	VEXTRACTF128  $1, Y4, X5
	VMAXPS        X5, X4, X4
	VPSHUFD       $0x4e, X4, X5
	VMAXPS        X5, X4, X4
	VPSHUFD       $0xb1, X4, X5
	VMAXPS        X5, X4, X4
	VDIVSS        X29, X4, X4 // d = amax/127
	VMOVSS        X4, (R8)
	VPXORD        X6, X6, X6
	VUCOMISS      X6, X4
	JEQ           qzzero
	VDIVSS        X4, X28, X6 // id = 1/d
qzzero:
	VBROADCASTSS  X6, Z6
	VMULPS        Z6, Z0, Z0
	VMULPS        Z6, Z1, Z1
	VADDPS        Z30, Z0, Z0
	VADDPS        Z30, Z1, Z1
	VSUBPS        Z30, Z0, Z0
	VSUBPS        Z30, Z1, Z1
	VCVTTPS2DQ    Z0, Z0
	VCVTTPS2DQ    Z1, Z1
	VPMOVDB       Z0, (DI)
	VPMOVDB       Z1, 16(DI)
	ADDQ          $128, SI
	ADDQ          $32, DI
	ADDQ          $4, R8
	DECQ          CX
	JNZ           qzloop

qzdone:
	VZEROUPPER
	RET

// quantPerm<> is the VPERMD order that puts quantQ8AVX2's packed bytes
// back in x's order (see there).
DATA quantPerm<>+0x00(SB)/8, $0x0000000400000000
DATA quantPerm<>+0x08(SB)/8, $0x0000000500000001
DATA quantPerm<>+0x10(SB)/8, $0x0000000600000002
DATA quantPerm<>+0x18(SB)/8, $0x0000000700000003
GLOBL quantPerm<>(SB), RODATA|NOPTR, $32

// func quantQ8AVX2(q *int8, d *float32, x *float32, nb int)
// quantQ8AVX512's operations in 256-bit registers, so QuantizeQ8's bits:
// the block maximum of |x| skipping NaN (VMAXPS returns its second source
// when either is NaN, and the running maximum is that source), d =
// amax/127, id = 1/d or 0, (x*id + 0x1.8p23) - 0x1.8p23 truncated to
// int32. AVX2 has no truncating VPMOVDB, so each int32 is masked to its
// low byte and the four registers are packed with VPACKUSDW and
// VPACKUSWB, which cannot saturate values in 0..255 (the same byte Go's
// int8 conversion keeps); the packs interleave 128-bit lanes, which
// VPERMD undoes.
TEXT ·quantQ8AVX2(SB), NOSPLIT, $0-32
	MOVQ         q+0(FP), DI
	MOVQ         d+8(FP), R8
	MOVQ         x+16(FP), SI
	MOVQ         nb+24(FP), CX
	MOVL         $0x7fffffff, AX
	VMOVD        AX, X15
	VPBROADCASTD X15, Y15
	MOVL         $0x4b400000, AX // 0x1.8p23
	VMOVD        AX, X14
	VPBROADCASTD X14, Y14
	MOVL         $0x000000ff, AX
	VMOVD        AX, X13
	VPBROADCASTD X13, Y13
	VMOVDQU      quantPerm<>(SB), Y12
	MOVL         $0x42fe0000, AX // 127
	VMOVD        AX, X11
	MOVL         $0x3f800000, AX // 1
	VMOVD        AX, X10
	TESTQ        CX, CX
	JZ           qadone

qaloop:
	VMOVUPS      (SI), Y0
	VMOVUPS      32(SI), Y1
	VMOVUPS      64(SI), Y2
	VMOVUPS      96(SI), Y3
	VANDPS       Y15, Y0, Y4
	VANDPS       Y15, Y1, Y5
	VANDPS       Y15, Y2, Y6
	VANDPS       Y15, Y3, Y7
	VXORPS       Y8, Y8, Y8
	VMAXPS       Y8, Y4, Y8
	VMAXPS       Y8, Y5, Y8
	VMAXPS       Y8, Y6, Y8
	VMAXPS       Y8, Y7, Y8
	VEXTRACTF128 $1, Y8, X9
	VMAXPS       X9, X8, X8
	VPSHUFD      $0x4e, X8, X9
	VMAXPS       X9, X8, X8
	VPSHUFD      $0xb1, X8, X9
	VMAXPS       X9, X8, X8
	VDIVSS       X11, X8, X8 // d = amax/127
	VMOVSS       X8, (R8)
	VXORPS       X9, X9, X9
	VUCOMISS     X9, X8
	JEQ          qazero
	VDIVSS       X8, X10, X9 // id = 1/d
qazero:
	VBROADCASTSS X9, Y9
	VMULPS       Y9, Y0, Y0
	VMULPS       Y9, Y1, Y1
	VMULPS       Y9, Y2, Y2
	VMULPS       Y9, Y3, Y3
	VADDPS       Y14, Y0, Y0
	VADDPS       Y14, Y1, Y1
	VADDPS       Y14, Y2, Y2
	VADDPS       Y14, Y3, Y3
	VSUBPS       Y14, Y0, Y0
	VSUBPS       Y14, Y1, Y1
	VSUBPS       Y14, Y2, Y2
	VSUBPS       Y14, Y3, Y3
	VCVTTPS2DQ   Y0, Y0
	VCVTTPS2DQ   Y1, Y1
	VCVTTPS2DQ   Y2, Y2
	VCVTTPS2DQ   Y3, Y3
	VPAND        Y13, Y0, Y0
	VPAND        Y13, Y1, Y1
	VPAND        Y13, Y2, Y2
	VPAND        Y13, Y3, Y3
	VPACKUSDW    Y1, Y0, Y0 // lanes: x0-3 x8-11 | x4-7 x12-15 (words)
	VPACKUSDW    Y3, Y2, Y2 // x16-19 x24-27 | x20-23 x28-31
	VPACKUSWB    Y2, Y0, Y0 // x0-3 x8-11 x16-19 x24-27 | x4-7 x12-15 x20-23 x28-31 (bytes)
	VPERMD       Y0, Y12, Y0
	VMOVDQU      Y0, (DI)
	ADDQ         $128, SI
	ADDQ         $32, DI
	ADDQ         $4, R8
	DECQ         CX
	JNZ          qaloop

qadone:
	VZEROUPPER
	RET

// ---- Q8_0 in 512-bit registers: the 4x4 tile two blocks a step, with the
// bits of dotQ8x4AVX512 (its pairs, fold and odd last block) for each of
// its 16 outputs.
//
// Each row's two blocks (one 256-bit load and one 256-bit insert), each
// token's 64 quants and the pairs' int32 lanes fill a 512-bit register;
// the low half is block b, the high half block b+1. Lanes start at
// -VPDPBUSD(128, w), so one VPDPBUSD(u, w) gives the exact w*x sums; the
// float scales d_w*d_x of both blocks come from one multiply and one FMA
// adds both into the pair's 16 accumulator lanes (ADD2BLOCKS). Per pair and
// two blocks, 5 instructions where the one-block step takes 12 (and
// keeping the 8-lane block order took 8: an FMA per block and two
// extracts; 1.45x slower). After the last pair the lanes fold to 8
// (FOLD4), and an odd last block runs the one-block step.

// Q8ZPAIR(u, dx, acc): acc += the pair's two blocks; w in Z24, the lanes'
// start in Z25, d_w of both blocks in Z26.
#define Q8ZPAIR(u, dx, acc) \
	VMOVDQA32     Z25, Z27; \
	VPDPBUSD      Z24, u, Z27; \
	VCVTDQ2PS     Z27, Z27; \
	VMULPS        dx, Z26, Z28; \
	ADD2BLOCKS(Z27, Z28, acc)

// Q8ZROW(p, p2, p34, p36, a0, a1, a2, a3): the row whose block pair
// starts at p (f16 scale, 32 quants, f16 scale, 32 quants; p2, p34, p36
// are p plus those offsets) against the four tokens.
#define Q8ZROW(p, p2, p34, p36, a0, a1, a2, a3) \
	VMOVDQU32     p2, Y24; \
	VINSERTI64X4  $1, p36, Z24, Z24; \
	VPXORD        Z25, Z25, Z25; \
	VPDPBUSD      Z24, Z31, Z25; \
	VPSUBD        Z25, Z30, Z25; \
	VPBROADCASTW  p, Y26; \
	VPBROADCASTW  p34, Y29; \
	VINSERTI32X4  $1, X29, Y26, Y26; \
	VCVTPH2PS     Y26, Z26; \
	Q8ZPAIR(Z16, Z20, a0); \
	Q8ZPAIR(Z17, Z21, a1); \
	Q8ZPAIR(Z18, Z22, a2); \
	Q8ZPAIR(Z19, Z23, a3)

// Q8ZDX(lo, hi, dst): dst = the scales of a token's two blocks (at lo and
// hi), 8 lanes each.
#define Q8ZDX(lo, hi, dst) \
	VBROADCASTSS lo, dst; \
	VBROADCASTSS hi, Y29; \
	VINSERTF64X4 $1, Y29, dst, dst

// TQ8ZPFROWS prefetches PF ahead in each of the four rows, two lines a
// row and step (any stride: a column view's rows too).
#define TQ8ZPFROWS \
	PREFETCHT0 PF(SI); \
	PREFETCHT0 PF+64(SI); \
	PREFETCHT0 PF(SI)(DX*1); \
	PREFETCHT0 PF+64(SI)(DX*1); \
	PREFETCHT0 PF(SI)(DX*2); \
	PREFETCHT0 PF+64(SI)(DX*2); \
	PREFETCHT0 PF(R9); \
	PREFETCHT0 PF+64(R9)

// TQ8ZPFLIN prefetches the rows, back to back, as one stream from PF
// after the group's start (R15): five lines a step of 4 x 68 bytes, as
// dotQ8RowsAVX512 does.
#define TQ8ZPFLIN \
	PREFETCHT0 (R15); \
	PREFETCHT0 64(R15); \
	PREFETCHT0 128(R15); \
	PREFETCHT0 192(R15); \
	PREFETCHT0 256(R15); \
	ADDQ       $272, R15

// TQ8ZLOOP(PFX, loop): the block pairs (R14 of them, at least one), PFX
// prefetching in each step.
#define TQ8ZLOOP(PFX, loop) \
loop: \
	VPXORD (DI), Z31, Z16; \
	VPXORD (DI)(R10*1), Z31, Z17; \
	VPXORD (DI)(R10*2), Z31, Z18; \
	VPXORD (R11), Z31, Z19; \
	Q8ZDX((R12), 4(R12), Z20); \
	Q8ZDX((R12)(R13*1), 4(R12)(R13*1), Z21); \
	Q8ZDX((R12)(R13*2), 4(R12)(R13*2), Z22); \
	Q8ZDX((BX), 4(BX), Z23); \
	PFX; \
	Q8ZROW((SI), 2(SI), 34(SI), 36(SI), Z0, Z4, Z8, Z12); \
	Q8ZROW((SI)(DX*1), 2(SI)(DX*1), 34(SI)(DX*1), 36(SI)(DX*1), Z1, Z5, Z9, Z13); \
	Q8ZROW((SI)(DX*2), 2(SI)(DX*2), 34(SI)(DX*2), 36(SI)(DX*2), Z2, Z6, Z10, Z14); \
	Q8ZROW((R9), 2(R9), 34(R9), 36(R9), Z3, Z7, Z11, Z15); \
	ADDQ $68, SI; \
	ADDQ $68, R9; \
	ADDQ $64, DI; \
	ADDQ $64, R11; \
	ADDQ $8, R12; \
	ADDQ $8, BX; \
	DECQ R14; \
	JNZ  loop

// func tileQ8AVX512(w *byte, stride, nb int, xq *int8, xstride int, xd *float32, out *float32, ostride int, pf int)
TEXT ·tileQ8AVX512(SB), NOSPLIT, $0-72
	TQ8ARGS
	MOVL         $0x80808080, AX
	VPBROADCASTD AX, Z31
	VPXORD       Z30, Z30, Z30
	MOVQ         CX, R14
	SHRQ         $1, R14
	JZ           tq8zodd
	MOVQ         pf+64(FP), AX
	TESTQ        AX, AX
	JZ           tq8znone
	CMPQ         AX, $1
	JEQ          tq8zrows
	LEAQ         PF(SI), R15
	TQ8ZLOOP(TQ8ZPFLIN, tq8zlin)
	JMP          tq8zodd

tq8zrows:
	TQ8ZLOOP(TQ8ZPFROWS, tq8zrow)
	JMP          tq8zodd

tq8znone:
	TQ8ZLOOP(NOPF, tq8znp)

tq8zodd:
	FOLD4(Z0, Z1, Z2, Z3, Y0, Y1, Y2, Y3)
	FOLD4(Z4, Z5, Z6, Z7, Y4, Y5, Y6, Y7)
	FOLD4(Z8, Z9, Z10, Z11, Y8, Y9, Y10, Y11)
	FOLD4(Z12, Z13, Z14, Z15, Y12, Y13, Y14, Y15)
	TESTQ $1, CX
	JZ    tq8zdone
	TQ8STEP

tq8zdone:
	TQ8STORE

// ---- Q8_0 with AVX2: 4 rows x 2 tokens of blocks, accumulator Y(4t+i).
//
// The row kernel's (dotQ8x4AVX2's) operations on the same values, so the
// same bits: each block's 8 int32 lanes as sum |w|*(x with w's sign)
// (VPSIGNB, VPMADDUBSW on |w| unsigned, VPMADDWD with ones), converted to
// float, times the float32 product d_w*d_x, added by one FMA into the
// output's 8 lanes in block order; reduced by REDUCE4's tree (RED4). Each
// row's |w| is formed once for both tokens, each token's x once for the
// four rows, and the eight scale products of a block by two multiplies
// (the four rows' d_w converted in one register), each row's picked out by
// one VPERMILPS: 6 vector instructions per row, token and block, where
// the row kernel takes 13. The tile is bound by issuing those (timed on
// Zen 3: dropping VPMADDWD, with wrong sums, was 18% faster); replacing
// the per-row-and-token VMULPS of d_w*d_x it had before by the VPERMILPS
// made the int8 prefill tile 13-15% faster (62 to 71 GFLOP/s,
// BenchmarkMatMulPrefill/int8 at MMRUN_SIMD=avx2), where keeping the
// products on the stack for the FMA to broadcast was slower. The ones
// stay in Y13 for the whole call (loading them from memory in every
// VPMADDWD was 1-2% slower) and VPSIGNB reads w from memory, so that the
// 8 accumulators, both tokens' x, |w|, the products, the ones and the
// temporaries fit the 16 registers.

// ones16<> holds sixteen int16 ones (VPMADDWD's pair sum).
DATA ones16<>+0x00(SB)/8, $0x0001000100010001
DATA ones16<>+0x08(SB)/8, $0x0001000100010001
DATA ones16<>+0x10(SB)/8, $0x0001000100010001
DATA ones16<>+0x18(SB)/8, $0x0001000100010001
GLOBL ones16<>(SB), RODATA|NOPTR, $32

// func tileQ8AVX2(w *byte, stride, nb int, xq *int8, xstride int, xd *float32, out *float32, ostride int, pf int)
TEXT ·tileQ8AVX2(SB), NOSPLIT, $0-72
	Q8A2TILE(Q8A2STEP)

// Q8D2SCALES is Q8A2SCALES with the four rows' d_w already float32, four
// a block at (AX) (tileQ8DAVX2's dw): the same two multiplies, without
// the gather and the conversion.
#define Q8D2SCALES \
	VBROADCASTF128 (AX), Y14; \
	VBROADCASTSS   (R12), Y10; \
	VBROADCASTSS   (R12)(R13*1), Y11; \
	VMULPS         Y14, Y10, Y10; \
	VMULPS         Y14, Y11, Y11

// Q8D2STEP(PFX) is Q8A2STEP with Q8D2SCALES.
#define Q8D2STEP(PFX) \
	VMOVDQU (DI), Y8; \
	VMOVDQU (DI)(R10*1), Y9; \
	Q8D2SCALES; \
	PFX; \
	Q8A2ROW(2(SI), $0x0, Y10, $0x0, Y11, Y0, Y4); \
	Q8A2ROW(2(SI)(DX*1), $0x55, Y10, $0x55, Y11, Y1, Y5); \
	Q8A2ROW(2(R9), $0xaa, Y10, $0xaa, Y11, Y2, Y6); \
	Q8A2ROW(2(R9)(DX*1), $0xff, Y10, $0xff, Y11, Y3, Y7); \
	ADDQ    $34, SI; \
	ADDQ    $34, R9; \
	ADDQ    $32, DI; \
	ADDQ    $4, R12; \
	ADDQ    $16, AX; \
	DECQ    CX

// func tileQ8DAVX2(w *byte, stride, nb int, xq *int8, xstride int, xd *float32, out *float32, ostride int, pf int, dw *float32)
TEXT ·tileQ8DAVX2(SB), NOSPLIT, $0-80
	MOVQ dw+72(FP), AX
	Q8A2TILE(Q8D2STEP)

// ---- Q8_0 with AVX2: 2 rows x 4 tokens of blocks, accumulator Y(4i+t).
//
// tileQ8AVX2's operations on each row, token and block, so the same bits,
// in the other shape: a 4-token call reads each weight once, so that the
// stream of the weights from memory overlaps the whole of the arithmetic
// that uses them (where the 2-token tile, called twice per group, streams
// during the first call and computes the second from the cache). The
// first two tokens' quants are loaded once a block into the two registers
// the scales free, the other two's for each row (the registers hold the
// eight accumulators and the scale products instead); the ones stay in
// Y11.

// Q8T4TOKR(wq, xr, sel, prods, acc) is Q8DOT for the 2-row, 4-token
// tile: |w| in Y8, the ones in Y11, the token's quants in register xr and
// its d_w*d_x picked out of the row's four products (prods, tokens 0..3
// in each 128-bit half).
#define Q8T4TOKR(wq, xr, sel, prods, acc) \
	Q8DOT(wq, xr, Y8, Y11, Y13, Y14, sel, prods, acc)

// Q8T4TOK is Q8T4TOKR with the token's quants at x in memory.
#define Q8T4TOK(wq, x, sel, prods, acc) \
	VMOVDQU x, Y13; \
	Q8T4TOKR(wq, Y13, sel, prods, acc)

// Q8T4ROW(wq, prods, a0, a1, a2, a3, x2, x3): one row's block (quants at
// wq) against the four tokens, the first two's quants in Y12 and Y15
// (loaded once a block for both rows, into the registers the scales
// free), the others' at x2 and x3.
#define Q8T4ROW(wq, prods, a0, a1, a2, a3, x2, x3) \
	VPABSB wq, Y8; \
	Q8T4TOKR(wq, Y12, $0x00, prods, a0); \
	Q8T4TOKR(wq, Y15, $0x55, prods, a1); \
	Q8T4TOK(wq, x2, $0xaa, prods, a2); \
	Q8T4TOK(wq, x3, $0xff, prods, a3)

// Q8T4SCALES(d0, d1, xs) puts the block's scale products d_w*d_x in Y9
// (row 0, its f16 d_w at d0) and Y10 (row 1, at d1), tokens 0..3 in each
// 128-bit half: the two rows' d_w converted together and broadcast, times
// the four tokens' d_x at xs, which the caller laid out four a block
// (xd4), loaded into both halves at once. Uses AX, Y12, X15.
#define Q8T4SCALES(d0, d1, xs) \
	MOVWLZX        d0, AX; \
	VMOVD          AX, X15; \
	VPINSRW        $1, d1, X15, X15; \
	VCVTPH2PS      X15, X15; \
	VBROADCASTF128 xs, Y12; \
	VBROADCASTSS X15, Y9; \
	VMOVSHDUP    X15, X15; \
	VBROADCASTSS X15, Y10; \
	VMULPS       Y12, Y9, Y9; \
	VMULPS       Y12, Y10, Y10

// Q8T4BLOCK(d0, d1, xs, q0, q1, x0, x1, x2, x3): one block of the tile:
// the rows' scales at d0 and d1 and quants at q0 and q1, the tokens' d_x
// four at xs and quants at x0..x3. It moves no pointer, so that the loop
// can take two blocks an iteration.
#define Q8T4BLOCK(d0, d1, xs, q0, q1, x0, x1, x2, x3) \
	Q8T4SCALES(d0, d1, xs); \
	VMOVDQU x0, Y12; \
	VMOVDQU x1, Y15; \
	Q8T4ROW(q0, Y9, Y0, Y1, Y2, Y3, x2, x3); \
	Q8T4ROW(q1, Y10, Y4, Y5, Y6, Y7, x2, x3)

// Q8T4FIRST and Q8T4SECOND are the first and second block of an
// iteration (34 bytes of each row and 32 of each token's quants apart).
#define Q8T4FIRST \
	Q8T4BLOCK((SI), (SI)(DX*1), (R12), 2(SI), 2(SI)(DX*1), (DI), (DI)(R10*1), (DI)(R10*2), (DI)(R11*1))
#define Q8T4SECOND \
	Q8T4BLOCK(34(SI), 34(SI)(DX*1), 16(R12), 36(SI), 36(SI)(DX*1), 32(DI), 32(DI)(R10*1), 32(DI)(R10*2), 32(DI)(R11*1))

// Q8T4PF prefetches PF ahead in each of the two rows, for both blocks.
#define Q8T4PF \
	PREFETCHT0 PF(SI); \
	PREFETCHT0 PF(SI)(DX*1); \
	PREFETCHT0 (PF+34)(SI); \
	PREFETCHT0 (PF+34)(SI)(DX*1)

// Q8T4LOOP(PFX, l2, l1): the blocks two an iteration (PFX before them),
// then an odd last one; CX counts them.
#define Q8T4LOOP(PFX, l2, l1) \
	SUBQ $2, CX; \
	JLT  l1; \
l2: \
	PFX; \
	Q8T4FIRST; \
	Q8T4SECOND; \
	ADDQ $68, SI; \
	ADDQ $64, DI; \
	ADDQ $32, R12; \
	SUBQ $2, CX; \
	JGE  l2; \
l1: \
	ADDQ $2, CX; \
	JZ   q8t4done; \
	PFX; \
	Q8T4FIRST

// RED2x2(a, b, c, d, xa, xb) stores SUM4's sums of a and b (rows 0 and 1
// of a token) at (R8) and those of c and d (of the next token) at
// (R8)(BX*1).
#define RED2x2(a, b, c, d, xa, xb) \
	SUM4(a, b, c, d, xa, xb); \
	VMOVLPS      xa, (R8); \
	VMOVHPS      xa, (R8)(BX*1)

// func tileQ8T4AVX2(w *byte, stride, nb int, xq *int8, xstride int, xd4 *float32, out *float32, ostride int, pf int)
TEXT ·tileQ8T4AVX2(SB), NOSPLIT, $0-72
	MOVQ   w+0(FP), SI
	MOVQ   stride+8(FP), DX
	MOVQ   nb+16(FP), CX
	MOVQ   xq+24(FP), DI
	MOVQ   xstride+32(FP), R10
	LEAQ   (R10)(R10*2), R11
	MOVQ   xd4+40(FP), R12
	ZERO8
	TESTQ   CX, CX
	JZ      q8t4done
	VMOVDQU ones16<>(SB), Y11
	MOVQ    pf+64(FP), AX
	TESTQ   AX, AX
	JZ      q8t4nopf
	Q8T4LOOP(Q8T4PF, q8t4pf2, q8t4pf1)
	JMP     q8t4done

q8t4nopf:
	Q8T4LOOP(NOPF, q8t4np2, q8t4np1)

q8t4done:
	MOVQ out+48(FP), R8
	MOVQ ostride+56(FP), BX
	RED2x2(Y0, Y4, Y1, Y5, X0, X4)
	LEAQ (R8)(BX*2), R8
	RED2x2(Y2, Y6, Y3, Y7, X2, X6)
	VZEROUPPER
	RET

// func prefetchLines(p *byte, n int)
TEXT ·prefetchLines(SB), NOSPLIT, $0-16
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX

pflloop:
	PREFETCHT0 (SI)
	ADDQ       $64, SI
	SUBQ       $64, CX
	JG         pflloop
	RET
