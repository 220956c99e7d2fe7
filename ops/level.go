package ops

import (
	"fmt"
	"os"
	"strings"
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
