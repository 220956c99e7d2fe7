//go:build !purego

#include "textflag.h"

// Vector exp and the selective scan (AVX2 + FMA). See vexp in scan_simd.go
// for the algorithm and its error bound.

DATA expHi<>+0(SB)/4, $0x42b20000
DATA expHi<>+4(SB)/4, $0x42b20000
DATA expHi<>+8(SB)/4, $0x42b20000
DATA expHi<>+12(SB)/4, $0x42b20000
DATA expHi<>+16(SB)/4, $0x42b20000
DATA expHi<>+20(SB)/4, $0x42b20000
DATA expHi<>+24(SB)/4, $0x42b20000
DATA expHi<>+28(SB)/4, $0x42b20000
GLOBL expHi<>(SB), RODATA|NOPTR, $32

DATA expLo<>+0(SB)/4, $0xc2d00000
DATA expLo<>+4(SB)/4, $0xc2d00000
DATA expLo<>+8(SB)/4, $0xc2d00000
DATA expLo<>+12(SB)/4, $0xc2d00000
DATA expLo<>+16(SB)/4, $0xc2d00000
DATA expLo<>+20(SB)/4, $0xc2d00000
DATA expLo<>+24(SB)/4, $0xc2d00000
DATA expLo<>+28(SB)/4, $0xc2d00000
GLOBL expLo<>(SB), RODATA|NOPTR, $32

DATA expLog2e<>+0(SB)/4, $0x3fb8aa3b
DATA expLog2e<>+4(SB)/4, $0x3fb8aa3b
DATA expLog2e<>+8(SB)/4, $0x3fb8aa3b
DATA expLog2e<>+12(SB)/4, $0x3fb8aa3b
DATA expLog2e<>+16(SB)/4, $0x3fb8aa3b
DATA expLog2e<>+20(SB)/4, $0x3fb8aa3b
DATA expLog2e<>+24(SB)/4, $0x3fb8aa3b
DATA expLog2e<>+28(SB)/4, $0x3fb8aa3b
GLOBL expLog2e<>(SB), RODATA|NOPTR, $32

DATA expMLn2Hi<>+0(SB)/4, $0xbf318000
DATA expMLn2Hi<>+4(SB)/4, $0xbf318000
DATA expMLn2Hi<>+8(SB)/4, $0xbf318000
DATA expMLn2Hi<>+12(SB)/4, $0xbf318000
DATA expMLn2Hi<>+16(SB)/4, $0xbf318000
DATA expMLn2Hi<>+20(SB)/4, $0xbf318000
DATA expMLn2Hi<>+24(SB)/4, $0xbf318000
DATA expMLn2Hi<>+28(SB)/4, $0xbf318000
GLOBL expMLn2Hi<>(SB), RODATA|NOPTR, $32

DATA expMLn2Lo<>+0(SB)/4, $0x395e8083
DATA expMLn2Lo<>+4(SB)/4, $0x395e8083
DATA expMLn2Lo<>+8(SB)/4, $0x395e8083
DATA expMLn2Lo<>+12(SB)/4, $0x395e8083
DATA expMLn2Lo<>+16(SB)/4, $0x395e8083
DATA expMLn2Lo<>+20(SB)/4, $0x395e8083
DATA expMLn2Lo<>+24(SB)/4, $0x395e8083
DATA expMLn2Lo<>+28(SB)/4, $0x395e8083
GLOBL expMLn2Lo<>(SB), RODATA|NOPTR, $32

DATA expC7<>+0(SB)/4, $0x39500d01
DATA expC7<>+4(SB)/4, $0x39500d01
DATA expC7<>+8(SB)/4, $0x39500d01
DATA expC7<>+12(SB)/4, $0x39500d01
DATA expC7<>+16(SB)/4, $0x39500d01
DATA expC7<>+20(SB)/4, $0x39500d01
DATA expC7<>+24(SB)/4, $0x39500d01
DATA expC7<>+28(SB)/4, $0x39500d01
GLOBL expC7<>(SB), RODATA|NOPTR, $32

DATA expC6<>+0(SB)/4, $0x3ab60b61
DATA expC6<>+4(SB)/4, $0x3ab60b61
DATA expC6<>+8(SB)/4, $0x3ab60b61
DATA expC6<>+12(SB)/4, $0x3ab60b61
DATA expC6<>+16(SB)/4, $0x3ab60b61
DATA expC6<>+20(SB)/4, $0x3ab60b61
DATA expC6<>+24(SB)/4, $0x3ab60b61
DATA expC6<>+28(SB)/4, $0x3ab60b61
GLOBL expC6<>(SB), RODATA|NOPTR, $32

DATA expC5<>+0(SB)/4, $0x3c088889
DATA expC5<>+4(SB)/4, $0x3c088889
DATA expC5<>+8(SB)/4, $0x3c088889
DATA expC5<>+12(SB)/4, $0x3c088889
DATA expC5<>+16(SB)/4, $0x3c088889
DATA expC5<>+20(SB)/4, $0x3c088889
DATA expC5<>+24(SB)/4, $0x3c088889
DATA expC5<>+28(SB)/4, $0x3c088889
GLOBL expC5<>(SB), RODATA|NOPTR, $32

DATA expC4<>+0(SB)/4, $0x3d2aaaab
DATA expC4<>+4(SB)/4, $0x3d2aaaab
DATA expC4<>+8(SB)/4, $0x3d2aaaab
DATA expC4<>+12(SB)/4, $0x3d2aaaab
DATA expC4<>+16(SB)/4, $0x3d2aaaab
DATA expC4<>+20(SB)/4, $0x3d2aaaab
DATA expC4<>+24(SB)/4, $0x3d2aaaab
DATA expC4<>+28(SB)/4, $0x3d2aaaab
GLOBL expC4<>(SB), RODATA|NOPTR, $32

DATA expC3<>+0(SB)/4, $0x3e2aaaab
DATA expC3<>+4(SB)/4, $0x3e2aaaab
DATA expC3<>+8(SB)/4, $0x3e2aaaab
DATA expC3<>+12(SB)/4, $0x3e2aaaab
DATA expC3<>+16(SB)/4, $0x3e2aaaab
DATA expC3<>+20(SB)/4, $0x3e2aaaab
DATA expC3<>+24(SB)/4, $0x3e2aaaab
DATA expC3<>+28(SB)/4, $0x3e2aaaab
GLOBL expC3<>(SB), RODATA|NOPTR, $32

DATA expC2<>+0(SB)/4, $0x3f000000
DATA expC2<>+4(SB)/4, $0x3f000000
DATA expC2<>+8(SB)/4, $0x3f000000
DATA expC2<>+12(SB)/4, $0x3f000000
DATA expC2<>+16(SB)/4, $0x3f000000
DATA expC2<>+20(SB)/4, $0x3f000000
DATA expC2<>+24(SB)/4, $0x3f000000
DATA expC2<>+28(SB)/4, $0x3f000000
GLOBL expC2<>(SB), RODATA|NOPTR, $32

DATA expC1<>+0(SB)/4, $0x3f800000
DATA expC1<>+4(SB)/4, $0x3f800000
DATA expC1<>+8(SB)/4, $0x3f800000
DATA expC1<>+12(SB)/4, $0x3f800000
DATA expC1<>+16(SB)/4, $0x3f800000
DATA expC1<>+20(SB)/4, $0x3f800000
DATA expC1<>+24(SB)/4, $0x3f800000
DATA expC1<>+28(SB)/4, $0x3f800000
GLOBL expC1<>(SB), RODATA|NOPTR, $32

DATA exp127<>+0(SB)/4, $0x7f
DATA exp127<>+4(SB)/4, $0x7f
DATA exp127<>+8(SB)/4, $0x7f
DATA exp127<>+12(SB)/4, $0x7f
DATA exp127<>+16(SB)/4, $0x7f
DATA exp127<>+20(SB)/4, $0x7f
DATA exp127<>+24(SB)/4, $0x7f
DATA exp127<>+28(SB)/4, $0x7f
GLOBL exp127<>(SB), RODATA|NOPTR, $32

// EXP(x, out): out = e^x on 8 lanes; x is clobbered (it ends holding r),
// Y7 and Y8 are scratch. The clamps take x second so that a NaN passes
// through (MINPS/MAXPS return their second operand when one is NaN).
#define EXP(x, out) \
	VMOVUPS     expHi<>(SB), Y7; \
	VMINPS      x, Y7, x; \
	VMOVUPS     expLo<>(SB), Y7; \
	VMAXPS      x, Y7, x; \
	VMULPS      expLog2e<>(SB), x, Y7; \
	VROUNDPS    $0, Y7, Y7; \
	VFMADD231PS expMLn2Hi<>(SB), Y7, x; \
	VFMADD231PS expMLn2Lo<>(SB), Y7, x; \
	VMOVUPS     expC7<>(SB), out; \
	VFMADD213PS expC6<>(SB), x, out; \
	VFMADD213PS expC5<>(SB), x, out; \
	VFMADD213PS expC4<>(SB), x, out; \
	VFMADD213PS expC3<>(SB), x, out; \
	VFMADD213PS expC2<>(SB), x, out; \
	VFMADD213PS expC1<>(SB), x, out; \
	VFMADD213PS expC1<>(SB), x, out; \
	VCVTPS2DQ   Y7, Y7; \
	VPSRAD      $1, Y7, Y8; \
	VPSUBD      Y8, Y7, Y7; \
	VPADDD      exp127<>(SB), Y8, Y8; \
	VPADDD      exp127<>(SB), Y7, Y7; \
	VPSLLD      $23, Y8, Y8; \
	VPSLLD      $23, Y7, Y7; \
	VMULPS      Y8, out, out; \
	VMULPS      Y7, out, out

// The attention kernels' bodies (their TEXTs are at the end of the
// file). They are defined before any TEXT because go vet, which does not
// expand macros, would check their argument names against the function
// above them.

// ATTSCORES(acc, tmp, STEP, FOLD): attendScores*'s body, acc and tmp the
// level's registers 0 and 1 (Z or Y), STEP their width in bytes, FOLD
// what adds the 16 lanes of acc to 8 in Y0 (AVX2: nothing). Each dot sums
// the lanes with FMA, then the 8 in the tree VEXTRACTF128/VADDPS and two
// VHADDPS make.
#define ATTSCORES(acc, tmp, STEP, FOLD) \
	MOVQ   s+0(FP), DI; \
	MOVQ   q+8(FP), SI; \
	MOVQ   K+16(FP), R8; \
	MOVQ   n+24(FP), R9; \
	MOVQ   A+32(FP), R10; \
	MOVQ   dh+40(FP), R11; \
	VMOVSS scale+48(FP), X15; \
	SHLQ   $2, R10; \
	SHLQ   $2, R11; \
	XORQ   R12, R12; \
ashead: \
	CMPQ R12, R10; \
	JGE  asdone; \
	MOVQ R8, R13; \
	MOVQ R9, CX; \
asentry: \
	VXORPS acc, acc, acc; \
	XORQ   AX, AX; \
aschunk: \
	LEAQ        (R12)(AX*1), BX; \
	VMOVUPS     (SI)(BX*1), tmp; \
	VFMADD231PS (R13)(BX*1), tmp, acc; \
	ADDQ        $STEP, AX; \
	CMPQ        AX, R11; \
	JLT         aschunk; \
	FOLD; \
	VEXTRACTF128 $1, Y0, X1; \
	VADDPS       X1, X0, X0; \
	VHADDPS      X0, X0, X0; \
	VHADDPS      X0, X0, X0; \
	VDIVSS       X15, X0, X0; \
	VMOVSS       X0, (DI); \
	ADDQ         $4, DI; \
	ADDQ         R10, R13; \
	DECQ         CX; \
	JNZ          asentry; \
	ADDQ         R11, R12; \
	JMP          ashead; \
asdone: \
	VZEROUPPER; \
	RET

// ATTFOLD16 adds Z0's 16 lanes to 8 in Y0 (FOLD16's order: lane l plus
// lane l+8).
#define ATTFOLD16 \
	VEXTRACTF64X4 $1, Z0, Y1; \
	VADDPS        Y1, Y0, Y0

// ATTNOFOLD stands for ATTFOLD16 at AVX2, whose accumulator has 8 lanes.
#define ATTNOFOLD

// ATTACCUM(acc, tmp, STEP): attendAccum*'s body: out_h = sum_j e[h*n+j] *
// V[j]_h for every head h, j in order (FMA), STEP bytes of a head at a
// time; V is n x A (n >= 1). out is overwritten.
#define ATTACCUM(acc, tmp, STEP) \
	MOVQ out+0(FP), DI; \
	MOVQ e+8(FP), SI; \
	MOVQ V+16(FP), R8; \
	MOVQ n+24(FP), R9; \
	MOVQ A+32(FP), R10; \
	MOVQ dh+40(FP), R11; \
	SHLQ $2, R10; \
	SHLQ $2, R11; \
	XORQ R12, R12; \
achead: \
	CMPQ R12, R10; \
	JGE  acdone; \
	XORQ AX, AX; \
acchunk: \
	CMPQ   AX, R11; \
	JGE    acnext; \
	VXORPS acc, acc, acc; \
	LEAQ   (R12)(AX*1), BX; \
	MOVQ   R8, R13; \
	MOVQ   SI, DX; \
	MOVQ   R9, CX; \
acentry: \
	VBROADCASTSS (DX), tmp; \
	VFMADD231PS  (R13)(BX*1), tmp, acc; \
	ADDQ         $4, DX; \
	ADDQ         R10, R13; \
	DECQ         CX; \
	JNZ          acentry; \
	VMOVUPS      acc, (DI)(BX*1); \
	ADDQ         $STEP, AX; \
	JMP          acchunk; \
acnext: \
	LEAQ (SI)(R9*4), SI; \
	ADDQ R11, R12; \
	JMP  achead; \
acdone: \
	VZEROUPPER; \
	RET

// func expAVX2(dst, src *float32, n int)
// n is a multiple of 8.
TEXT ·expAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHLQ $2, CX
	XORQ AX, AX
	TESTQ CX, CX
	JZ   expdone

exploop:
	VMOVUPS (SI)(AX*1), Y3
	EXP(Y3, Y4)
	VMOVUPS Y4, (DI)(AX*1)
	ADDQ    $32, AX
	CMPQ    AX, CX
	JLT     exploop

expdone:
	VZEROUPPER
	RET

// func scanChanAVX2(h, A, B, C, dt, a, y *float32, N, T, E int, D float32)
// One channel over T tokens: h and A are the channel's N-value rows, B and
// C the first token's rows (N apart), dt, a and y the channel's first
// token's values (E apart). N is a multiple of 8 and at least 8. For each
// token, per lane j:
//
//	h[j] = fma(exp(dt*A[j]), h[j], (dt*B[j])*a)
//	s    = fma(h[j], C[j], s)          // 8-lane accumulator, j in order
//	y    = hsum(s) + D*a               // fixed tree, then one add
TEXT ·scanChanAVX2(SB), NOSPLIT, $0-84
	MOVQ   h+0(FP), SI
	MOVQ   A+8(FP), R9
	MOVQ   B+16(FP), BX
	MOVQ   C+24(FP), R10
	MOVQ   dt+32(FP), R11
	MOVQ   a+40(FP), R12
	MOVQ   y+48(FP), R13
	MOVQ   N+56(FP), CX
	MOVQ   T+64(FP), DX
	MOVQ   E+72(FP), R8
	VMOVSS D+80(FP), X9
	SHLQ   $2, CX
	SHLQ   $2, R8
	TESTQ  DX, DX
	JZ     scandone

scantok:
	VBROADCASTSS (R11), Y0
	VBROADCASTSS (R12), Y1
	VXORPS       Y2, Y2, Y2
	XORQ         AX, AX

scanstate:
	VMULPS      (R9)(AX*1), Y0, Y3
	EXP(Y3, Y4)
	VMULPS      (BX)(AX*1), Y0, Y5
	VMULPS      Y1, Y5, Y5
	VMOVUPS     (SI)(AX*1), Y6
	VFMADD231PS Y6, Y4, Y5
	VMOVUPS     Y5, (SI)(AX*1)
	VFMADD231PS (R10)(AX*1), Y5, Y2
	ADDQ        $32, AX
	CMPQ        AX, CX
	JLT         scanstate

	VEXTRACTF128 $1, Y2, X7
	VADDPS       X7, X2, X2
	VHADDPS      X2, X2, X2
	VHADDPS      X2, X2, X2
	VMULSS       X9, X1, X7
	VADDSS       X7, X2, X2
	VMOVSS       X2, (R13)
	ADDQ         R8, R11
	ADDQ         R8, R12
	ADDQ         R8, R13
	ADDQ         CX, BX
	ADDQ         CX, R10
	DECQ         DX
	JNZ          scantok

scandone:
	VZEROUPPER
	RET

// EXP4 is EXP on the four vectors Y0..Y3 at once (out in Y8..Y11, Y4..Y7
// and the inputs clobbered), each step issued on all four before the
// next: the same operations per lane as EXP, so the same bits, with four
// independent chains side by side instead of one. EXP's Horner chain is
// about 60 cycles long, so one chain at a time leaves the FMA pipes idle
// (the scheduler holds too few of them to overlap); four keep them
// busy. The clamps are in Y14 (expHi) and Y15 (expLo).
#define EXP4 \
	VMINPS      Y0, Y14, Y0; \
	VMINPS      Y1, Y14, Y1; \
	VMINPS      Y2, Y14, Y2; \
	VMINPS      Y3, Y14, Y3; \
	VMAXPS      Y0, Y15, Y0; \
	VMAXPS      Y1, Y15, Y1; \
	VMAXPS      Y2, Y15, Y2; \
	VMAXPS      Y3, Y15, Y3; \
	VMULPS      expLog2e<>(SB), Y0, Y4; \
	VMULPS      expLog2e<>(SB), Y1, Y5; \
	VMULPS      expLog2e<>(SB), Y2, Y6; \
	VMULPS      expLog2e<>(SB), Y3, Y7; \
	VROUNDPS    $0, Y4, Y4; \
	VROUNDPS    $0, Y5, Y5; \
	VROUNDPS    $0, Y6, Y6; \
	VROUNDPS    $0, Y7, Y7; \
	VFMADD231PS expMLn2Hi<>(SB), Y4, Y0; \
	VFMADD231PS expMLn2Hi<>(SB), Y5, Y1; \
	VFMADD231PS expMLn2Hi<>(SB), Y6, Y2; \
	VFMADD231PS expMLn2Hi<>(SB), Y7, Y3; \
	VFMADD231PS expMLn2Lo<>(SB), Y4, Y0; \
	VFMADD231PS expMLn2Lo<>(SB), Y5, Y1; \
	VFMADD231PS expMLn2Lo<>(SB), Y6, Y2; \
	VFMADD231PS expMLn2Lo<>(SB), Y7, Y3; \
	VMOVUPS     expC7<>(SB), Y8; \
	VMOVUPS     Y8, Y9; \
	VMOVUPS     Y8, Y10; \
	VMOVUPS     Y8, Y11; \
	HORNER4(expC6<>(SB)); \
	HORNER4(expC5<>(SB)); \
	HORNER4(expC4<>(SB)); \
	HORNER4(expC3<>(SB)); \
	HORNER4(expC2<>(SB)); \
	HORNER4(expC1<>(SB)); \
	HORNER4(expC1<>(SB)); \
	SCALE2K(Y4, Y0, Y8); \
	SCALE2K(Y5, Y1, Y9); \
	SCALE2K(Y6, Y2, Y10); \
	SCALE2K(Y7, Y3, Y11)

// HORNER4(c): one Horner step, o = o*r + c, on the four chains of EXP4.
#define HORNER4(c) \
	VFMADD213PS c, Y0, Y8; \
	VFMADD213PS c, Y1, Y9; \
	VFMADD213PS c, Y2, Y10; \
	VFMADD213PS c, Y3, Y11

// SCALE2K(k, t, out): out *= 2^(k>>1) * 2^(k-k>>1), EXP's last steps, k
// the rounded exponent (as float), t scratch.
#define SCALE2K(k, t, out) \
	VCVTPS2DQ k, k; \
	VPSRAD    $1, k, t; \
	VPSUBD    t, k, k; \
	VPADDD    exp127<>(SB), t, t; \
	VPADDD    exp127<>(SB), k, k; \
	VPSLLD    $23, t, t; \
	VPSLLD    $23, k, k; \
	VMULPS    t, out, out; \
	VMULPS    k, out, out

// func scanChan2AVX2(h, A, B, C, dt, a, y, D *float32, N, T, E int)
// scanChanAVX2 on two adjacent channels at once (h and A point at the
// first one's rows, the second's N further on; dt, a and y at the first
// one's values, the second's next to them, D at the first one's D), N a
// positive multiple of 16:
// the four 8-lane vectors of a 16-state step (2 channels x 2 halves) go
// through EXP4 side by side. Per channel, lane and token the operations
// are scanChanAVX2's, in its order, and the output tree is its tree: the
// two channels share its two VHADDPS (lanes 0 and 1 of the second are
// channel e's and e+1's sums) and the D*a terms are added as a pair.
TEXT ·scanChan2AVX2(SB), NOSPLIT, $0-88
	MOVQ    h+0(FP), SI
	MOVQ    A+8(FP), R9
	MOVQ    B+16(FP), BX
	MOVQ    C+24(FP), R10
	MOVQ    dt+32(FP), R11
	MOVQ    a+40(FP), R12
	MOVQ    y+48(FP), R13
	MOVQ    N+64(FP), CX
	MOVQ    T+72(FP), DX
	MOVQ    E+80(FP), R8
	SHLQ    $2, CX
	SHLQ    $2, R8
	LEAQ    (SI)(CX*1), DI
	LEAQ    (R9)(CX*1), R14
	VMOVUPS expHi<>(SB), Y14
	VMOVUPS expLo<>(SB), Y15
	TESTQ   DX, DX
	JZ      scan2done

scan2tok:
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13
	XORQ   AX, AX

scan2state:
	VBROADCASTSS (R11), Y4
	VBROADCASTSS 4(R11), Y5
	VMULPS       (R9)(AX*1), Y4, Y0
	VMULPS       32(R9)(AX*1), Y4, Y1
	VMULPS       (R14)(AX*1), Y5, Y2
	VMULPS       32(R14)(AX*1), Y5, Y3
	EXP4
	VBROADCASTSS (R11), Y4
	VBROADCASTSS 4(R11), Y5
	VBROADCASTSS (R12), Y6
	VBROADCASTSS 4(R12), Y7
	VMULPS       (BX)(AX*1), Y4, Y0
	VMULPS       32(BX)(AX*1), Y4, Y1
	VMULPS       (BX)(AX*1), Y5, Y2
	VMULPS       32(BX)(AX*1), Y5, Y3
	VMULPS       Y6, Y0, Y0
	VMULPS       Y6, Y1, Y1
	VMULPS       Y7, Y2, Y2
	VMULPS       Y7, Y3, Y3
	VFMADD231PS  (SI)(AX*1), Y8, Y0
	VFMADD231PS  32(SI)(AX*1), Y9, Y1
	VFMADD231PS  (DI)(AX*1), Y10, Y2
	VFMADD231PS  32(DI)(AX*1), Y11, Y3
	VMOVUPS      Y0, (SI)(AX*1)
	VMOVUPS      Y1, 32(SI)(AX*1)
	VMOVUPS      Y2, (DI)(AX*1)
	VMOVUPS      Y3, 32(DI)(AX*1)
	VFMADD231PS  (R10)(AX*1), Y0, Y12
	VFMADD231PS  32(R10)(AX*1), Y1, Y12
	VFMADD231PS  (R10)(AX*1), Y2, Y13
	VFMADD231PS  32(R10)(AX*1), Y3, Y13
	ADDQ         $64, AX
	CMPQ         AX, CX
	JLT          scan2state

	VEXTRACTF128 $1, Y12, X0
	VADDPS       X0, X12, X12
	VEXTRACTF128 $1, Y13, X1
	VADDPS       X1, X13, X13
	VHADDPS      X13, X12, X12
	VHADDPS      X12, X12, X12
	VMOVSD       (R12), X6
	MOVQ         D+56(FP), AX
	VMOVSD       (AX), X7
	VMULPS       X7, X6, X6
	VADDPS       X6, X12, X12
	VMOVSD       X12, (R13)
	ADDQ         R8, R11
	ADDQ         R8, R12
	ADDQ         R8, R13
	ADDQ         CX, BX
	ADDQ         CX, R10
	DECQ         DX
	JNZ          scan2tok

scan2done:
	VZEROUPPER
	RET

// ---- softplus (AVX2) ----

DATA spSign<>+0(SB)/4, $0x80000000
DATA spSign<>+4(SB)/4, $0x80000000
DATA spSign<>+8(SB)/4, $0x80000000
DATA spSign<>+12(SB)/4, $0x80000000
DATA spSign<>+16(SB)/4, $0x80000000
DATA spSign<>+20(SB)/4, $0x80000000
DATA spSign<>+24(SB)/4, $0x80000000
DATA spSign<>+28(SB)/4, $0x80000000
GLOBL spSign<>(SB), RODATA|NOPTR, $32

DATA spTwo<>+0(SB)/4, $0x40000000
DATA spTwo<>+4(SB)/4, $0x40000000
DATA spTwo<>+8(SB)/4, $0x40000000
DATA spTwo<>+12(SB)/4, $0x40000000
DATA spTwo<>+16(SB)/4, $0x40000000
DATA spTwo<>+20(SB)/4, $0x40000000
DATA spTwo<>+24(SB)/4, $0x40000000
DATA spTwo<>+28(SB)/4, $0x40000000
GLOBL spTwo<>(SB), RODATA|NOPTR, $32

DATA spC3<>+0(SB)/4, $0x3eaaaaab
DATA spC3<>+4(SB)/4, $0x3eaaaaab
DATA spC3<>+8(SB)/4, $0x3eaaaaab
DATA spC3<>+12(SB)/4, $0x3eaaaaab
DATA spC3<>+16(SB)/4, $0x3eaaaaab
DATA spC3<>+20(SB)/4, $0x3eaaaaab
DATA spC3<>+24(SB)/4, $0x3eaaaaab
DATA spC3<>+28(SB)/4, $0x3eaaaaab
GLOBL spC3<>(SB), RODATA|NOPTR, $32

DATA spC5<>+0(SB)/4, $0x3e4ccccd
DATA spC5<>+4(SB)/4, $0x3e4ccccd
DATA spC5<>+8(SB)/4, $0x3e4ccccd
DATA spC5<>+12(SB)/4, $0x3e4ccccd
DATA spC5<>+16(SB)/4, $0x3e4ccccd
DATA spC5<>+20(SB)/4, $0x3e4ccccd
DATA spC5<>+24(SB)/4, $0x3e4ccccd
DATA spC5<>+28(SB)/4, $0x3e4ccccd
GLOBL spC5<>(SB), RODATA|NOPTR, $32

DATA spC7<>+0(SB)/4, $0x3e124925
DATA spC7<>+4(SB)/4, $0x3e124925
DATA spC7<>+8(SB)/4, $0x3e124925
DATA spC7<>+12(SB)/4, $0x3e124925
DATA spC7<>+16(SB)/4, $0x3e124925
DATA spC7<>+20(SB)/4, $0x3e124925
DATA spC7<>+24(SB)/4, $0x3e124925
DATA spC7<>+28(SB)/4, $0x3e124925
GLOBL spC7<>(SB), RODATA|NOPTR, $32

DATA spC9<>+0(SB)/4, $0x3de38e39
DATA spC9<>+4(SB)/4, $0x3de38e39
DATA spC9<>+8(SB)/4, $0x3de38e39
DATA spC9<>+12(SB)/4, $0x3de38e39
DATA spC9<>+16(SB)/4, $0x3de38e39
DATA spC9<>+20(SB)/4, $0x3de38e39
DATA spC9<>+24(SB)/4, $0x3de38e39
DATA spC9<>+28(SB)/4, $0x3de38e39
GLOBL spC9<>(SB), RODATA|NOPTR, $32

DATA spC11<>+0(SB)/4, $0x3dba2e8c
DATA spC11<>+4(SB)/4, $0x3dba2e8c
DATA spC11<>+8(SB)/4, $0x3dba2e8c
DATA spC11<>+12(SB)/4, $0x3dba2e8c
DATA spC11<>+16(SB)/4, $0x3dba2e8c
DATA spC11<>+20(SB)/4, $0x3dba2e8c
DATA spC11<>+24(SB)/4, $0x3dba2e8c
DATA spC11<>+28(SB)/4, $0x3dba2e8c
GLOBL spC11<>(SB), RODATA|NOPTR, $32

DATA spC13<>+0(SB)/4, $0x3d9d89d9
DATA spC13<>+4(SB)/4, $0x3d9d89d9
DATA spC13<>+8(SB)/4, $0x3d9d89d9
DATA spC13<>+12(SB)/4, $0x3d9d89d9
DATA spC13<>+16(SB)/4, $0x3d9d89d9
DATA spC13<>+20(SB)/4, $0x3d9d89d9
DATA spC13<>+24(SB)/4, $0x3d9d89d9
DATA spC13<>+28(SB)/4, $0x3d9d89d9
GLOBL spC13<>(SB), RODATA|NOPTR, $32


// func softplusAVX2(dst, src *float32, n int)
// n is a multiple of 8. Per lane, with t = e^-|v| (EXP) and s = t/(2+t):
//
//	softplus(v) = max(v, 0) + log1p(t),  log1p(t) = 2*atanh(s) = 2s*(1 + z/3 + z^2/5 + ... + z^6/13), z = s*s
//
// s <= 1/3, so the series' first omitted term is below 1.5e-8 relative.
TEXT ·softplusAVX2(SB), NOSPLIT, $0-24
	MOVQ  dst+0(FP), DI
	MOVQ  src+8(FP), SI
	MOVQ  n+16(FP), CX
	SHLQ  $2, CX
	XORQ  AX, AX
	TESTQ CX, CX
	JZ    spdone

sploop:
	VMOVUPS     (SI)(AX*1), Y0
	VORPS       spSign<>(SB), Y0, Y3
	EXP(Y3, Y4)
	VADDPS      spTwo<>(SB), Y4, Y5
	VDIVPS      Y5, Y4, Y5
	VMULPS      Y5, Y5, Y6
	VMOVUPS     spC13<>(SB), Y10
	VFMADD213PS spC11<>(SB), Y6, Y10
	VFMADD213PS spC9<>(SB), Y6, Y10
	VFMADD213PS spC7<>(SB), Y6, Y10
	VFMADD213PS spC5<>(SB), Y6, Y10
	VFMADD213PS spC3<>(SB), Y6, Y10
	VFMADD213PS expC1<>(SB), Y6, Y10
	VADDPS      Y5, Y5, Y5
	VMULPS      Y10, Y5, Y10
	VXORPS      Y9, Y9, Y9
	VMAXPS      Y0, Y9, Y0
	VADDPS      Y10, Y0, Y0
	VMOVUPS     Y0, (DI)(AX*1)
	ADDQ        $32, AX
	CMPQ        AX, CX
	JLT         sploop

spdone:
	VZEROUPPER
	RET

// ---- the selective scan (AVX-512) ----

// EXP512(x, out) is EXP on 16 lanes, with its constants held in Z16-Z28 by
// LOADEXP512; the same operations in the same order, so the same bits.
#define LOADEXP512 \
	VBROADCASTSS expHi<>(SB), Z16; \
	VBROADCASTSS expLo<>(SB), Z17; \
	VBROADCASTSS expLog2e<>(SB), Z18; \
	VBROADCASTSS expMLn2Hi<>(SB), Z19; \
	VBROADCASTSS expMLn2Lo<>(SB), Z20; \
	VBROADCASTSS expC7<>(SB), Z21; \
	VBROADCASTSS expC6<>(SB), Z22; \
	VBROADCASTSS expC5<>(SB), Z23; \
	VBROADCASTSS expC4<>(SB), Z24; \
	VBROADCASTSS expC3<>(SB), Z25; \
	VBROADCASTSS expC2<>(SB), Z26; \
	VBROADCASTSS expC1<>(SB), Z27; \
	VPBROADCASTD exp127<>(SB), Z28

#define EXP512(x, out) \
	VMINPS      x, Z16, x; \
	VMAXPS      x, Z17, x; \
	VMULPS      Z18, x, Z7; \
	VRNDSCALEPS $0, Z7, Z7; \
	VFMADD231PS Z19, Z7, x; \
	VFMADD231PS Z20, Z7, x; \
	VMOVAPS     Z21, out; \
	VFMADD213PS Z22, x, out; \
	VFMADD213PS Z23, x, out; \
	VFMADD213PS Z24, x, out; \
	VFMADD213PS Z25, x, out; \
	VFMADD213PS Z26, x, out; \
	VFMADD213PS Z27, x, out; \
	VFMADD213PS Z27, x, out; \
	VCVTPS2DQ   Z7, Z7; \
	VPSRAD      $1, Z7, Z8; \
	VPSUBD      Z8, Z7, Z7; \
	VPADDD      Z28, Z8, Z8; \
	VPADDD      Z28, Z7, Z7; \
	VPSLLD      $23, Z8, Z8; \
	VPSLLD      $23, Z7, Z7; \
	VMULPS      Z8, out, out; \
	VMULPS      Z7, out, out

// func scanChansAVX512(h, A, B, C, dt, a, y, D *float32, N, T, E, count int)
// count consecutive channels over T tokens: h and A point at the first
// channel's N-value rows, B and C at the first token's rows, dt, a and y at
// the first channel's first-token value (E apart across tokens), D at the
// first channel's D. N is a positive multiple of 16. Per channel and token,
// per lane j:
//
//	h[j] = fma(exp(dt*A[j]), h[j], (dt*B[j])*a)
//	s    = fma(h[j], C[j], s)          // 16-lane accumulator, j in order
//	y    = hsum(s) + D*a               // fixed tree, then one add
// SPF is how far ahead (bytes) scanChansAVX512 prefetches the state and A:
// in decode both come from memory (the weights streamed since the last
// token have pushed them out of the caches), one line of each per channel.
#define SPF 1024

TEXT ·scanChansAVX512(SB), NOSPLIT, $0-96
	MOVQ  h+0(FP), SI
	MOVQ  A+8(FP), R9
	MOVQ  D+56(FP), DI
	MOVQ  N+64(FP), CX
	MOVQ  E+80(FP), R8
	SHLQ  $2, CX
	SHLQ  $2, R8
	MOVQ  T+72(FP), DX
	TESTQ DX, DX
	JZ    s5done
	MOVQ  count+88(FP), DX
	TESTQ DX, DX
	JZ    s5done
	LOADEXP512

s5chan:
	MOVQ         dt+32(FP), R11
	MOVQ         a+40(FP), R12
	MOVQ         y+48(FP), R13
	MOVQ         B+16(FP), BX
	MOVQ         C+24(FP), R10
	VMOVSS       (DI), X9
	MOVQ         T+72(FP), DX
	PREFETCHT0   SPF(SI)
	PREFETCHT0   SPF(R9)

s5tok:
	VBROADCASTSS (R11), Z0
	VBROADCASTSS (R12), Z1
	VXORPS       Z2, Z2, Z2
	XORQ         AX, AX

s5state:
	VMULPS      (R9)(AX*1), Z0, Z3
	EXP512(Z3, Z4)
	VMULPS      (BX)(AX*1), Z0, Z5
	VMULPS      Z1, Z5, Z5
	VMOVUPS     (SI)(AX*1), Z6
	VFMADD231PS Z6, Z4, Z5
	VMOVUPS     Z5, (SI)(AX*1)
	VFMADD231PS (R10)(AX*1), Z5, Z2
	ADDQ        $64, AX
	CMPQ        AX, CX
	JLT         s5state

	VEXTRACTF64X4 $1, Z2, Y7
	VADDPS        Y7, Y2, Y2
	VEXTRACTF128  $1, Y2, X7
	VADDPS        X7, X2, X2
	VHADDPS       X2, X2, X2
	VHADDPS       X2, X2, X2
	VMULSS        X9, X1, X7
	VADDSS        X7, X2, X2
	VMOVSS        X2, (R13)
	ADDQ          R8, R11
	ADDQ          R8, R12
	ADDQ          R8, R13
	ADDQ          CX, BX
	ADDQ          CX, R10
	DECQ          DX
	JNZ           s5tok

	ADDQ CX, SI
	ADDQ CX, R9
	ADDQ $4, DI
	ADDQ $4, dt+32(FP)
	ADDQ $4, a+40(FP)
	ADDQ $4, y+48(FP)
	DECQ count+88(FP)
	JNZ  s5chan

s5done:
	VZEROUPPER
	RET

// ---- exp-based activations (AVX2), the same operations as the Go loops
// around expAVX2 that they replace, so the same bits ----

// func siluAVX2(dst, src *float32, n int)
// n is a multiple of 8: dst = x / (1 + e^-x).
TEXT ·siluAVX2(SB), NOSPLIT, $0-24
	MOVQ  dst+0(FP), DI
	MOVQ  src+8(FP), SI
	MOVQ  n+16(FP), CX
	SHLQ  $2, CX
	XORQ  AX, AX
	TESTQ CX, CX
	JZ    sidone

siloop:
	VMOVUPS (SI)(AX*1), Y0
	VXORPS  spSign<>(SB), Y0, Y3
	EXP(Y3, Y4)
	VADDPS  expC1<>(SB), Y4, Y4
	VDIVPS  Y4, Y0, Y5
	VMOVUPS Y5, (DI)(AX*1)
	ADDQ    $32, AX
	CMPQ    AX, CX
	JLT     siloop

sidone:
	VZEROUPPER
	RET

// func sigmoidAVX2(dst, src *float32, n int)
// n is a multiple of 8: dst = 1 / (1 + e^-x).
TEXT ·sigmoidAVX2(SB), NOSPLIT, $0-24
	MOVQ  dst+0(FP), DI
	MOVQ  src+8(FP), SI
	MOVQ  n+16(FP), CX
	SHLQ  $2, CX
	XORQ  AX, AX
	TESTQ CX, CX
	JZ    sgdone

sgloop:
	VMOVUPS (SI)(AX*1), Y0
	VXORPS  spSign<>(SB), Y0, Y3
	EXP(Y3, Y4)
	VADDPS  expC1<>(SB), Y4, Y4
	VMOVUPS expC1<>(SB), Y5
	VDIVPS  Y4, Y5, Y5
	VMOVUPS Y5, (DI)(AX*1)
	ADDQ    $32, AX
	CMPQ    AX, CX
	JLT     sgloop

sgdone:
	VZEROUPPER
	RET

// func mulSiLUAVX2(y, z *float32, n int)
// n is a multiple of 8: y *= z / (1 + e^-z).
TEXT ·mulSiLUAVX2(SB), NOSPLIT, $0-24
	MOVQ  y+0(FP), DI
	MOVQ  z+8(FP), SI
	MOVQ  n+16(FP), CX
	SHLQ  $2, CX
	XORQ  AX, AX
	TESTQ CX, CX
	JZ    msdone

msloop:
	VMOVUPS (SI)(AX*1), Y0
	VXORPS  spSign<>(SB), Y0, Y3
	EXP(Y3, Y4)
	VADDPS  expC1<>(SB), Y4, Y4
	VDIVPS  Y4, Y0, Y5
	VMULPS  (DI)(AX*1), Y5, Y5
	VMOVUPS Y5, (DI)(AX*1)
	ADDQ    $32, AX
	CMPQ    AX, CX
	JLT     msloop

msdone:
	VZEROUPPER
	RET

// func convK4AVX2(out, x, w0, w1, w2, w3, b, s0, s1, s2 *float32, E, T, n int)
// The causal convolution with kernel width 4 for n channels (a multiple of
// 8) over T tokens, 8 channels a vector: w0..w3, b and the window s0..s2
// (oldest first) are planar, n values each; out and x point at the first
// channel of token 0, rows E apart. Per channel and token, with separate
// multiplies and adds in the Go loop's order (same bits):
//
//	c = ((((b + w0*s0) + w1*s1) + w2*s2) + w3*x);  s0, s1, s2 = s1, s2, x
//
// The window is written back at the end.
TEXT ·convK4AVX2(SB), NOSPLIT, $0-104
	MOVQ  out+0(FP), DI
	MOVQ  x+8(FP), SI
	MOVQ  w0+16(FP), R8
	MOVQ  w1+24(FP), R9
	MOVQ  w2+32(FP), R10
	MOVQ  w3+40(FP), R11
	MOVQ  b+48(FP), R12
	MOVQ  s0+56(FP), R13
	MOVQ  s1+64(FP), BX
	MOVQ  s2+72(FP), DX
	MOVQ  E+80(FP), CX
	SHLQ  $2, CX
	XORQ  AX, AX

cvgroup:
	CMPQ    AX, n+96(FP)
	JGE     cvdone
	VMOVUPS (R8)(AX*4), Y8
	VMOVUPS (R9)(AX*4), Y9
	VMOVUPS (R10)(AX*4), Y10
	VMOVUPS (R11)(AX*4), Y11
	VMOVUPS (R12)(AX*4), Y12
	VMOVUPS (R13)(AX*4), Y0
	VMOVUPS (BX)(AX*4), Y1
	VMOVUPS (DX)(AX*4), Y2
	LEAQ    (SI)(AX*4), R14
	LEAQ    (DI)(AX*4), R15
	MOVQ    T+88(FP), R8
	TESTQ   R8, R8
	JZ      cvstore

cvtok:
	VMOVUPS (R14), Y3
	VMULPS  Y0, Y8, Y4
	VADDPS  Y4, Y12, Y4
	VMULPS  Y1, Y9, Y5
	VADDPS  Y5, Y4, Y4
	VMULPS  Y2, Y10, Y5
	VADDPS  Y5, Y4, Y4
	VMULPS  Y3, Y11, Y5
	VADDPS  Y5, Y4, Y4
	VMOVUPS Y4, (R15)
	VMOVAPS Y1, Y0
	VMOVAPS Y2, Y1
	VMOVAPS Y3, Y2
	ADDQ    CX, R14
	ADDQ    CX, R15
	DECQ    R8
	JNZ     cvtok

cvstore:
	MOVQ    w0+16(FP), R8
	VMOVUPS Y0, (R13)(AX*4)
	VMOVUPS Y1, (BX)(AX*4)
	VMOVUPS Y2, (DX)(AX*4)
	ADDQ    $8, AX
	JMP     cvgroup

cvdone:
	VZEROUPPER
	RET

// ---- the Note Block's attention, heads dh wide: AVX-512 (dh a multiple
// of 16, 512-bit registers) and AVX2 (a multiple of 8, 256-bit); both
// levels run the bodies ATTSCORES and ATTACCUM (at the top of the file)
// with their own registers and step.

// func attendScoresAVX512(s, q, K *float32, n, A, dh int, scale float32)
// s[h*n+j] = (q_h . K[j]_h) / scale for every head h (A/dh of them) and
// key j < n (n >= 1); K is n x A; 16 lanes, folded to 8.
TEXT ·attendScoresAVX512(SB), NOSPLIT, $0-52
	ATTSCORES(Z0, Z1, 64, ATTFOLD16)

// func attendAccumAVX512(out, e, V *float32, n, A, dh int)
TEXT ·attendAccumAVX512(SB), NOSPLIT, $0-48
	ATTACCUM(Z0, Z1, 64)

// func attendScoresAVX2(s, q, K *float32, n, A, dh int, scale float32)
// attendScoresAVX512 in 8 lanes.
TEXT ·attendScoresAVX2(SB), NOSPLIT, $0-52
	ATTSCORES(Y0, Y1, 32, ATTNOFOLD)

// func attendAccumAVX2(out, e, V *float32, n, A, dh int)
// attendAccumAVX512 in 8 lanes.
TEXT ·attendAccumAVX2(SB), NOSPLIT, $0-48
	ATTACCUM(Y0, Y1, 32)

// ---- one token, sixteen channels at a time (AVX-512) ----

// scan1Idx is the lane order that puts channel c's sum, left by the
// reduction tree of scan16x16AVX512 at lane 4*(c%4) + c/4, at lane c.
DATA scan1Idx<>+0(SB)/4, $0
DATA scan1Idx<>+4(SB)/4, $4
DATA scan1Idx<>+8(SB)/4, $8
DATA scan1Idx<>+12(SB)/4, $12
DATA scan1Idx<>+16(SB)/4, $1
DATA scan1Idx<>+20(SB)/4, $5
DATA scan1Idx<>+24(SB)/4, $9
DATA scan1Idx<>+28(SB)/4, $13
DATA scan1Idx<>+32(SB)/4, $2
DATA scan1Idx<>+36(SB)/4, $6
DATA scan1Idx<>+40(SB)/4, $10
DATA scan1Idx<>+44(SB)/4, $14
DATA scan1Idx<>+48(SB)/4, $3
DATA scan1Idx<>+52(SB)/4, $7
DATA scan1Idx<>+56(SB)/4, $11
DATA scan1Idx<>+60(SB)/4, $15
GLOBL scan1Idx<>(SB), RODATA|NOPTR, $64

// SCAN1(c4, c64, s) updates channel c's state row (c4 = 4c, c64 = 64c
// bytes from the group's first channel) and leaves its 16-lane sum in s:
// the operations of scanChansAVX512's state loop, in its order. B is in
// Z29, C in Z30; Z0-Z8 are scratch.
#define SCAN1(c4, c64, s) \
	VBROADCASTSS c4(R11), Z0; \
	VBROADCASTSS c4(R12), Z1; \
	VMULPS       c64(R9), Z0, Z3; \
	EXP512(Z3, Z4); \
	VMULPS       Z29, Z0, Z5; \
	VMULPS       Z1, Z5, Z5; \
	VMOVUPS      c64(SI), Z6; \
	VFMADD231PS  Z6, Z4, Z5; \
	VMOVUPS      Z5, c64(SI); \
	VXORPS       s, s, s; \
	VFMADD231PS  Z30, Z5, s

// PAIR(c4, c64, w) runs channels c and c+1 and folds their sums into w:
// lanes 0-7 hold channel c's u[i] = s[i] + s[i+8], lanes 8-15 channel
// c+1's.
#define PAIR(c4, c64, c4b, c64b, w) \
	SCAN1(c4, c64, Z9); \
	SCAN1(c4b, c64b, Z10); \
	VSHUFF64X2 $0x44, Z10, Z9, w; \
	VSHUFF64X2 $0xEE, Z10, Z9, Z2; \
	VADDPS     Z2, w, w

// QUAD(w1, w2, x) folds two PAIRs into x, one channel per 128-bit lane:
// x[i] = u[i] + u[i+4], i < 4.
#define QUAD(w1, w2, x) \
	VSHUFF64X2 $0x88, w2, w1, x; \
	VSHUFF64X2 $0xDD, w2, w1, Z2; \
	VADDPS     Z2, x, x

// HALVES(x1, x2, v) folds two QUADs into v: lane k holds x[0]+x[1] and
// x[2]+x[3] of x1's channel k, then those of x2's.
#define HALVES(x1, x2, v) \
	VSHUFPS $0x88, x2, x1, Z2; \
	VSHUFPS $0xDD, x2, x1, v; \
	VADDPS  Z2, v, v




// The group loops of scan16x16AVX512 and scan8x16AVX2, whose registers
// they share: SI the group's state rows, R9 its A rows, DI its D values,
// AX the group's byte offset in dt, a and y, R8 E*4, CX the tokens left.

// GROUPARGS(shift, done) loads the arguments (h, A, D, E, count, T) of
// a grouped scan of 1<<shift channels a group into the registers above,
// DX the groups, AX zero, and jumps to done when there is no group or no
// token.
#define GROUPARGS(shift, done) \
	MOVQ  h+0(FP), SI; \
	MOVQ  A+8(FP), R9; \
	MOVQ  D+56(FP), DI; \
	MOVQ  E+72(FP), R8; \
	SHLQ  $2, R8; \
	MOVQ  count+80(FP), DX; \
	SHRQ  shift, DX; \
	JZ    done; \
	MOVQ  T+64(FP), CX; \
	TESTQ CX, CX; \
	JZ    done; \
	XORQ  AX, AX

// PF512(off) prefetches 512 bytes of the next group's state rows, SPF
// ahead of SI plus off.
#define PF512(off) \
	PREFETCHT0 SPF+off(SI); \
	PREFETCHT0 SPF+off+64(SI); \
	PREFETCHT0 SPF+off+128(SI); \
	PREFETCHT0 SPF+off+192(SI); \
	PREFETCHT0 SPF+off+256(SI); \
	PREFETCHT0 SPF+off+320(SI); \
	PREFETCHT0 SPF+off+384(SI); \
	PREFETCHT0 SPF+off+448(SI)

// GROUPTOKENS points BX and R10 at the first token's B and C, R11-R13 at
// its dt, a and y of the group's first channel, and sets CX to T.
#define GROUPTOKENS \
	MOVQ B+16(FP), BX; \
	MOVQ C+24(FP), R10; \
	MOVQ dt+32(FP), R11; \
	MOVQ a+40(FP), R12; \
	MOVQ y+48(FP), R13; \
	ADDQ AX, R11; \
	ADDQ AX, R12; \
	ADDQ AX, R13; \
	MOVQ T+64(FP), CX

// NEXTTOKEN moves those pointers on by a token and counts it.
#define NEXTTOKEN \
	ADDQ $64, BX; \
	ADDQ $64, R10; \
	ADDQ R8, R11; \
	ADDQ R8, R12; \
	ADDQ R8, R13; \
	DECQ CX

// func scan16x16AVX512(h, A, B, C, dt, a, y, D *float32, T, E, count int)
// T tokens through count consecutive channels with N = 16, count a
// positive multiple of 16, sixteen channels at a time: the bits of
// scanChansAVX512, the channels' horizontal sums done together by a
// transposing tree of the same pairs, so a group's independent channels
// overlap. A group's state rows (1 KiB) stay in L1 across the tokens.
TEXT ·scan16x16AVX512(SB), NOSPLIT, $0-88
	GROUPARGS($4, s1done)
	LOADEXP512
	VMOVUPS scan1Idx<>(SB), Z31

s1group:
	PF512(0)
	PF512(512)
	GROUPTOKENS

s1tok:
	VMOVUPS (BX), Z29
	VMOVUPS (R10), Z30
	PAIR(0, 0, 4, 64, Z11)
	PAIR(8, 128, 12, 192, Z12)
	QUAD(Z11, Z12, Z13)
	PAIR(16, 256, 20, 320, Z11)
	PAIR(24, 384, 28, 448, Z12)
	QUAD(Z11, Z12, Z14)
	HALVES(Z13, Z14, Z15)
	PAIR(32, 512, 36, 576, Z11)
	PAIR(40, 640, 44, 704, Z12)
	QUAD(Z11, Z12, Z13)
	PAIR(48, 768, 52, 832, Z11)
	PAIR(56, 896, 60, 960, Z12)
	QUAD(Z11, Z12, Z14)
	HALVES(Z13, Z14, Z3)

	// (x0+x1) + (x2+x3) of each channel, put in channel order; + D*a.
	VSHUFPS $0x88, Z3, Z15, Z2
	VSHUFPS $0xDD, Z3, Z15, Z4
	VADDPS  Z2, Z4, Z4
	VPERMPS Z4, Z31, Z5
	VMOVUPS (R12), Z6
	VMULPS  (DI), Z6, Z6
	VADDPS  Z6, Z5, Z5
	VMOVUPS Z5, (R13)

	NEXTTOKEN
	JNZ  s1tok

	ADDQ $1024, SI
	ADDQ $1024, R9
	ADDQ $64, DI
	ADDQ $64, AX
	DECQ DX
	JNZ  s1group

s1done:
	VZEROUPPER
	RET

// ---- one token's conv of width 4, sixteen channels at a time (AVX-512) ----

// convStepV interleaves a window's 12 values (3 per channel, oldest
// first) with the token's 4 inputs: [s0 s1 s2 x] per channel.
DATA convStepV<>+0(SB)/4, $0
DATA convStepV<>+4(SB)/4, $1
DATA convStepV<>+8(SB)/4, $2
DATA convStepV<>+12(SB)/4, $16
DATA convStepV<>+16(SB)/4, $3
DATA convStepV<>+20(SB)/4, $4
DATA convStepV<>+24(SB)/4, $5
DATA convStepV<>+28(SB)/4, $17
DATA convStepV<>+32(SB)/4, $6
DATA convStepV<>+36(SB)/4, $7
DATA convStepV<>+40(SB)/4, $8
DATA convStepV<>+44(SB)/4, $18
DATA convStepV<>+48(SB)/4, $9
DATA convStepV<>+52(SB)/4, $10
DATA convStepV<>+56(SB)/4, $11
DATA convStepV<>+60(SB)/4, $19
GLOBL convStepV<>(SB), RODATA|NOPTR, $64

// convStepW drops the oldest value of each channel's [s0 s1 s2 x]: the
// window after the token, in its first 12 lanes.
DATA convStepW<>+0(SB)/4, $1
DATA convStepW<>+4(SB)/4, $2
DATA convStepW<>+8(SB)/4, $3
DATA convStepW<>+12(SB)/4, $5
DATA convStepW<>+16(SB)/4, $6
DATA convStepW<>+20(SB)/4, $7
DATA convStepW<>+24(SB)/4, $9
DATA convStepW<>+28(SB)/4, $10
DATA convStepW<>+32(SB)/4, $11
DATA convStepW<>+36(SB)/4, $13
DATA convStepW<>+40(SB)/4, $14
DATA convStepW<>+44(SB)/4, $15
DATA convStepW<>+48(SB)/4, $0
DATA convStepW<>+52(SB)/4, $0
DATA convStepW<>+56(SB)/4, $0
DATA convStepW<>+60(SB)/4, $0
GLOBL convStepW<>(SB), RODATA|NOPTR, $64

// CONVQ(w12, x4, w16, v, t, p) takes channels 4q..4q+3 of a group:
// their [s0 s1 s2 x] in v (window bytes w12 = 48q, inputs x4 = 16q), the
// window after the token in t's first 12 lanes, and p = w*v, weights
// (bytes w16 = 64q) times values lane for lane. The window is loaded
// whole (the 4 values past a quad's 12 are the next quad's, unused) and
// the group's windows are stored after all four loads: a load that
// overlapped an earlier store's bytes would wait for that store.
#define CONVQ(w12, x4, w16, v, t, p) \
	VMOVUPS         w12(SI), v; \
	CONVV(x4, w16, v, t, p)

// CONVQLAST is CONVQ for the group's last quad, whose load stops at the
// group's end (K1 masks 12 values): past it may lie the end of the window.
#define CONVQLAST(w12, x4, w16, v, t, p) \
	VMOVUPS.Z       w12(SI), K1, v; \
	CONVV(x4, w16, v, t, p)

#define CONVV(x4, w16, v, t, p) \
	VBROADCASTF32X4 x4(BX), t; \
	VPERMT2PS       t, Z30, v; \
	VPERMPS         v, Z29, t; \
	VMOVUPS         w16(R9), p; \
	VMULPS          v, p, p

// func convStep16AVX512(out, window, x, w, b *float32, count int)
// One token through the conv of width 4 for count consecutive channels,
// count a positive multiple of 16: convRange's K = 4 loop with T = 1, its
// products and sums in its order, sixteen channels at a time.
TEXT ·convStep16AVX512(SB), NOSPLIT, $0-48
	MOVQ    out+0(FP), DI
	MOVQ    window+8(FP), SI
	MOVQ    x+16(FP), BX
	MOVQ    w+24(FP), R9
	MOVQ    b+32(FP), R12
	MOVQ    count+40(FP), DX
	SHRQ    $4, DX
	JZ      c16done
	MOVL    $0x0fff, AX
	KMOVW   AX, K1
	VMOVUPS convStepV<>(SB), Z30
	VMOVUPS convStepW<>(SB), Z29
	VMOVUPS scan1Idx<>(SB), Z31

c16group:
	CONVQ(0, 0, 0, Z0, Z4, Z12)
	CONVQ(48, 16, 64, Z1, Z5, Z13)
	CONVQ(96, 32, 128, Z2, Z6, Z14)
	CONVQLAST(144, 48, 192, Z3, Z7, Z15)

	// The windows after the token, in order: each whole store's last four
	// lanes land on the next quad's values, which its own store rewrites;
	// the last quad's 12 values go as 8 and 4, so nothing past the group
	// is written.
	VMOVUPS       Z4, (SI)
	VMOVUPS       Z5, 48(SI)
	VMOVUPS       Z6, 96(SI)
	VMOVUPS       Y7, 144(SI)
	VEXTRACTF32X4 $2, Z7, X7
	VMOVUPS       X7, 176(SI)

	// Transpose: Q_k's lane L, element m is w_k*s_k of channel 4m+L.
	VUNPCKLPS Z13, Z12, Z16
	VUNPCKHPS Z13, Z12, Z17
	VUNPCKLPS Z15, Z14, Z18
	VUNPCKHPS Z15, Z14, Z19
	VUNPCKLPD Z18, Z16, Z20
	VUNPCKHPD Z18, Z16, Z21
	VUNPCKLPD Z19, Z17, Z22
	VUNPCKHPD Z19, Z17, Z23

	// c = b (or 0) in the same lane order, then += each product in turn;
	// scan1Idx is its own inverse and puts the channels back in order.
	VXORPS  Z24, Z24, Z24
	TESTQ   R12, R12
	JZ      c16sum
	VPERMPS (R12), Z31, Z24
	ADDQ    $64, R12

c16sum:
	VADDPS  Z20, Z24, Z24
	VADDPS  Z21, Z24, Z24
	VADDPS  Z22, Z24, Z24
	VADDPS  Z23, Z24, Z24
	VPERMPS Z24, Z31, Z25
	VMOVUPS Z25, (DI)

	ADDQ $64, DI
	ADDQ $192, SI
	ADDQ $64, BX
	ADDQ $256, R9
	DECQ DX
	JNZ  c16group

c16done:
	VZEROUPPER
	RET

// ---- the scan with N = 16, eight channels at a time (AVX2) ----

// scan8Idx puts channel c's sum, left by scan8x16AVX2's tree at lane
// 4*(c%2) + c/2, at lane c.
DATA scan8Idx<>+0(SB)/4, $0
DATA scan8Idx<>+4(SB)/4, $4
DATA scan8Idx<>+8(SB)/4, $1
DATA scan8Idx<>+12(SB)/4, $5
DATA scan8Idx<>+16(SB)/4, $2
DATA scan8Idx<>+20(SB)/4, $6
DATA scan8Idx<>+24(SB)/4, $3
DATA scan8Idx<>+28(SB)/4, $7
GLOBL scan8Idx<>(SB), RODATA|NOPTR, $32

// SCAN8PAIR(d4, h128, slot) runs channels 2k and 2k+1 of the group for
// one token (d4 = 8k bytes into dt and a, h128 = 128k bytes into h and
// A) with scanChan2AVX2's operations in its order, and stores their sums
// folded once (s[i] + s[i+4]: channel 2k's in the low 128 bits, 2k+1's in
// the high) at slot(SP).
#define SCAN8PAIR(d4, d4b, h128, h32, h64, h96, slot) \
	VBROADCASTSS d4(R11), Y4; \
	VBROADCASTSS d4b(R11), Y5; \
	VMULPS       h128(R9), Y4, Y0; \
	VMULPS       h32(R9), Y4, Y1; \
	VMULPS       h64(R9), Y5, Y2; \
	VMULPS       h96(R9), Y5, Y3; \
	EXP4; \
	VBROADCASTSS d4(R11), Y4; \
	VBROADCASTSS d4b(R11), Y5; \
	VBROADCASTSS d4(R12), Y6; \
	VBROADCASTSS d4b(R12), Y7; \
	VMULPS       (BX), Y4, Y0; \
	VMULPS       32(BX), Y4, Y1; \
	VMULPS       (BX), Y5, Y2; \
	VMULPS       32(BX), Y5, Y3; \
	VMULPS       Y6, Y0, Y0; \
	VMULPS       Y6, Y1, Y1; \
	VMULPS       Y7, Y2, Y2; \
	VMULPS       Y7, Y3, Y3; \
	VFMADD231PS  h128(SI), Y8, Y0; \
	VFMADD231PS  h32(SI), Y9, Y1; \
	VFMADD231PS  h64(SI), Y10, Y2; \
	VFMADD231PS  h96(SI), Y11, Y3; \
	VMOVUPS      Y0, h128(SI); \
	VMOVUPS      Y1, h32(SI); \
	VMOVUPS      Y2, h64(SI); \
	VMOVUPS      Y3, h96(SI); \
	VXORPS       Y12, Y12, Y12; \
	VXORPS       Y13, Y13, Y13; \
	VFMADD231PS  (R10), Y0, Y12; \
	VFMADD231PS  32(R10), Y1, Y12; \
	VFMADD231PS  (R10), Y2, Y13; \
	VFMADD231PS  32(R10), Y3, Y13; \
	VPERM2F128   $0x20, Y13, Y12, Y0; \
	VPERM2F128   $0x31, Y13, Y12, Y1; \
	VADDPS       Y1, Y0, Y0; \
	VMOVUPS      Y0, slot(SP)

// SCAN8HALVES(s1, s2, v): lane k of v holds x[0]+x[1] and x[2]+x[3] of
// the channel in slot s1's lane k, then those of slot s2's.
#define SCAN8HALVES(s1, s2, v) \
	VMOVUPS s1(SP), Y0; \
	VMOVUPS s2(SP), Y1; \
	VSHUFPS $0x88, Y1, Y0, Y2; \
	VSHUFPS $0xDD, Y1, Y0, v; \
	VADDPS  Y2, v, v

// func scan8x16AVX2(h, A, B, C, dt, a, y, D *float32, T, E, count int)
// T tokens through count consecutive channels with N = 16, count a
// positive multiple of 8, eight at a time: the bits of scanChan2AVX2 (and
// scanChanAVX2), the eight channels' horizontal sums done together by a
// transposing tree of the same pairs. A group's state rows (512 bytes)
// stay in L1 across the tokens.
TEXT ·scan8x16AVX2(SB), NOSPLIT, $128-88
	GROUPARGS($3, s8done)
	VMOVUPS expHi<>(SB), Y14
	VMOVUPS expLo<>(SB), Y15

s8group:
	PF512(0)
	GROUPTOKENS

s8tok:
	SCAN8PAIR(0, 4, 0, 32, 64, 96, 0)
	SCAN8PAIR(8, 12, 128, 160, 192, 224, 32)
	SCAN8PAIR(16, 20, 256, 288, 320, 352, 64)
	SCAN8PAIR(24, 28, 384, 416, 448, 480, 96)
	SCAN8HALVES(0, 32, Y3)
	SCAN8HALVES(64, 96, Y5)

	// (x0+x1) + (x2+x3) of each channel, put in channel order; + a*D.
	VSHUFPS $0x88, Y5, Y3, Y6
	VSHUFPS $0xDD, Y5, Y3, Y7
	VADDPS  Y6, Y7, Y7
	VMOVDQU scan8Idx<>(SB), Y10
	VPERMPS Y7, Y10, Y8
	VMOVUPS (R12), Y9
	VMULPS  (DI), Y9, Y9
	VADDPS  Y9, Y8, Y8
	VMOVUPS Y8, (R13)

	NEXTTOKEN
	JNZ  s8tok

	ADDQ $512, SI
	ADDQ $512, R9
	ADDQ $32, DI
	ADDQ $32, AX
	DECQ DX
	JNZ  s8group

s8done:
	VZEROUPPER
	RET
