package ops

import (
	"fmt"
	"os"
	"strings"

	"github.com/memmamba/memmamba/quant"
)

// SIMDEnv is the environment variable that chooses the kernel level for
// measurement (or to work around a CPU's bug): "go", "avx2" or "avx512".
// Unset or empty, the widest level the CPU supports runs. A level the CPU
// lacks is an error (SIMDError), never a silent fallback.
const SIMDEnv = "MMRUN_SIMD"

// simdChoice is the level chosen at start-up and why it could not be, if
// the environment asked for one the CPU lacks.
var (
	simdDetected        = detectSIMD()
	simd, simdChoiceErr = chooseSIMD(os.Getenv(SIMDEnv), simdDetected)
)

// chooseSIMD returns the level that env asks for, given the widest level
// the CPU supports; on a bad or unsupported request it returns the
// detected level and an error that says why.
func chooseSIMD(env string, detected simdLevel) (simdLevel, error) {
	env = strings.ToLower(strings.TrimSpace(env))
	if env == "" {
		return detected, nil
	}
	for l := simdGo; l <= simdAVX512; l++ {
		if env != l.String() {
			continue
		}
		if l > detected {
			return detected, fmt.Errorf("%s=%s: this CPU (or build) supports kernels up to %s (CPU features: %s)",
				SIMDEnv, env, detected, CPUFeatures())
		}
		return l, nil
	}
	return detected, fmt.Errorf("%s=%q: want go, avx2 or avx512", SIMDEnv, env)
}

// SIMDLevel names the kernel level every product of this process uses:
// "go", "avx2" or "avx512".
func SIMDLevel() string { return simd.String() }

// SIMDDetected names the widest level this CPU and build support.
func SIMDDetected() string { return simdDetected.String() }

// SIMDError reports a MMRUN_SIMD that asked for a level the CPU lacks (or
// one that does not exist); nil otherwise. Loading a model refuses to run
// with it set, so that a measurement never runs other kernels than it says.
func SIMDError() error { return simdChoiceErr }

// cpuFeatures are the CPU features the levels depend on (on amd64, read
// from golang.org/x/sys/cpu by detectSIMD).
type cpuFeatures struct {
	AVX2, FMA, F16C                         bool
	AVX512F, AVX512BW, AVX512VL, AVX512VNNI bool
}

// levelFor is the widest level a CPU with features f runs: avx512 needs
// AVX-512 F, BW, VL and VNNI as well as avx2's AVX2, FMA and F16C (every
// AVX-512 kernel set also runs 256-bit kernels of the avx2 set, such as
// the vector exp).
func levelFor(f cpuFeatures) simdLevel {
	if !f.AVX2 || !f.FMA || !f.F16C {
		return simdGo
	}
	if f.AVX512F && f.AVX512BW && f.AVX512VL && f.AVX512VNNI {
		return simdAVX512
	}
	return simdAVX2
}

// names lists the features f has, in a fixed order ("" for none).
func (f cpuFeatures) names() string {
	var s []string
	for _, c := range []struct {
		name string
		has  bool
	}{{"avx2", f.AVX2}, {"fma", f.FMA}, {"f16c", f.F16C}, {"avx512f", f.AVX512F},
		{"avx512bw", f.AVX512BW}, {"avx512vl", f.AVX512VL}, {"avx512vnni", f.AVX512VNNI}} {
		if c.has {
			s = append(s, c.name)
		}
	}
	return strings.Join(s, " ")
}

// kernelSet is what one level runs. Every choice of a kernel by CPU level
// is made in the table levels below; the products and functions ask
// cur() what the current level has instead of comparing levels.
type kernelSet struct {
	f32, f16, bf16, q8, q4 typeKernels // the products, by weight type

	vec8     bool   // 8-lane exp, SiLU, sigmoid, softplus, the K=4 conv and the scan (scan_amd64.s)
	scan16   bool   // the scan's 16-lane kernel over many channels (scanChansAVX512), for N%16 == 0
	step16   bool   // the K=4 conv of one token and the N=16 scan sixteen channels at a time (convStep16AVX512, scan16x16AVX512)
	attend   kernel // the Note Block's attention kernels (kAttendAVX2, kAttendAVX512: attendScores* and attendAccum*), or kNone
	quantize kernel // QuantizeQ8's vector kernel (kQuantQ8AVX2, kQuantQ8AVX512), or kNone
}

// typeKernels is what a level runs for the products of one weight type.
type typeKernels struct {
	row        kernel // four rows against one vector; kNone: the Go loops (matMulRows)
	block      bool   // row works on the activations quantised to int8 (QuantizeQ8)
	lanes      int    // float row kernels: the accumulator's width; they take a multiple of it of columns
	rows       kernel // the many-row kernel (row in a loop over groups of four rows, same bits), or kNone
	tile       kernel // MatMul's tile of 4 rows x tileTokens tokens, or kNone; Q4_0 runs the Q8_0 tile on rows widened to Q8_0
	tileTokens int
	// tilePrefetch: the tile kernel prefetches only when its pf argument
	// asks, so that MatMul can prefetch for it (tilePrefetching). At
	// AVX-512 only the int8 tile takes it: there it made int8 prefill
	// 1.19x faster (Zen 4), while the float tiles' batch-16 steps were as
	// fast or slower with it.
	tilePrefetch bool
}

// levels is the kernel table, by level.
var levels = [...]kernelSet{
	simdGo: {},
	simdAVX2: {
		f32:  typeKernels{row: kDotF32x4AVX2, lanes: 8, rows: kDotF32RowsAVX2, tile: kTileF32AVX2, tileTokens: 2, tilePrefetch: true},
		f16:  typeKernels{row: kDotF16x4AVX2, lanes: 8, rows: kDotF16RowsAVX2, tile: kTileF16AVX2, tileTokens: 2, tilePrefetch: true},
		bf16: typeKernels{row: kDotBF16x4AVX2, lanes: 8, rows: kDotBF16RowsAVX2, tile: kTileBF16AVX2, tileTokens: 2, tilePrefetch: true},
		q8:   typeKernels{row: kDotQ8x4AVX2, block: true, rows: kDotQ8RowsAVX2, tile: kTileQ8AVX2, tileTokens: 2, tilePrefetch: true},
		q4:   typeKernels{row: kDotQ4x4AVX2, block: true, tile: kTileQ8AVX2, tileTokens: 2},
		vec8: true, attend: kAttendAVX2, quantize: kQuantQ8AVX2,
	},
	simdAVX512: {
		f32:  typeKernels{row: kDotF32x4AVX512, lanes: 16, rows: kDotF32RowsAVX512, tile: kTileF32AVX512, tileTokens: 4},
		f16:  typeKernels{row: kDotF16x4AVX512, lanes: 16, rows: kDotF16RowsAVX512, tile: kTileF16AVX512, tileTokens: 4},
		bf16: typeKernels{row: kDotBF16x4AVX512, lanes: 16, rows: kDotBF16RowsAVX512, tile: kTileBF16AVX512, tileTokens: 4},
		q8:   typeKernels{row: kDotQ8x4AVX512, block: true, rows: kDotQ8RowsAVX512, tile: kTileQ8AVX512, tileTokens: 4, tilePrefetch: true},
		q4:   typeKernels{row: kDotQ4x4AVX512, block: true, tile: kTileQ8AVX512, tileTokens: 4},
		vec8: true, scan16: true, step16: true, attend: kAttendAVX512, quantize: kQuantQ8AVX512,
	},
}

// cur is the kernel set of the current level.
func cur() *kernelSet { return &levels[simd] }

// kernelsFor returns what the current level runs for products of type t
// (the zero typeKernels, the Go loops, for a type without kernels).
func kernelsFor(t quant.Type) typeKernels {
	ks := cur()
	switch t {
	case quant.F32:
		return ks.f32
	case quant.F16:
		return ks.f16
	case quant.BF16:
		return ks.bf16
	case quant.Q8_0:
		return ks.q8
	case quant.Q4_0:
		return ks.q4
	}
	return typeKernels{}
}
