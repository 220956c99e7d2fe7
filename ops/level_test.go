package ops

import (
	"strings"
	"testing"
)

func TestChooseSIMD(t *testing.T) {
	for _, tc := range []struct {
		env      string
		detected simdLevel
		want     simdLevel
		err      string
	}{
		{"", simdAVX512, simdAVX512, ""},
		{"", simdAVX2, simdAVX2, ""},
		{"go", simdAVX512, simdGo, ""},
		{"AVX2", simdAVX512, simdAVX2, ""},
		{" avx512 ", simdAVX512, simdAVX512, ""},
		{"avx2", simdAVX2, simdAVX2, ""},
		{"avx512", simdAVX2, simdAVX2, "supports kernels up to avx2"},
		{"avx2", simdGo, simdGo, "supports kernels up to go"},
		{"sse", simdAVX2, simdAVX2, "want go, avx2 or avx512"},
	} {
		got, err := chooseSIMD(tc.env, tc.detected)
		if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("chooseSIMD(%q, %s) = %s, %v; want %s and an error containing %q", tc.env, tc.detected, got, err, tc.want, tc.err)
		}
	}
}

// TestLevelFor checks the level chosen for fake feature sets: every
// feature of a level is needed, none of a wider one.
func TestLevelFor(t *testing.T) {
	avx2 := cpuFeatures{AVX2: true, FMA: true, F16C: true}
	all := cpuFeatures{AVX2: true, FMA: true, F16C: true, AVX512F: true, AVX512BW: true, AVX512VL: true, AVX512VNNI: true}
	without := func(f cpuFeatures, drop func(*cpuFeatures)) cpuFeatures { drop(&f); return f }
	for _, tc := range []struct {
		name string
		f    cpuFeatures
		want simdLevel
	}{
		{"none", cpuFeatures{}, simdGo},
		{"avx2 fma f16c", avx2, simdAVX2},
		{"all", all, simdAVX512},
		{"no avx2", without(avx2, func(f *cpuFeatures) { f.AVX2 = false }), simdGo},
		{"no fma", without(avx2, func(f *cpuFeatures) { f.FMA = false }), simdGo},
		{"no f16c", without(avx2, func(f *cpuFeatures) { f.F16C = false }), simdGo},
		{"avx-512 without fma", without(all, func(f *cpuFeatures) { f.FMA = false }), simdGo},
		{"avx-512 without f16c", without(all, func(f *cpuFeatures) { f.F16C = false }), simdGo},
		{"no avx512f", without(all, func(f *cpuFeatures) { f.AVX512F = false }), simdAVX2},
		{"no avx512bw", without(all, func(f *cpuFeatures) { f.AVX512BW = false }), simdAVX2},
		{"no avx512vl", without(all, func(f *cpuFeatures) { f.AVX512VL = false }), simdAVX2},
		{"no vnni (Skylake-X)", without(all, func(f *cpuFeatures) { f.AVX512VNNI = false }), simdAVX2},
	} {
		if got := levelFor(tc.f); got != tc.want {
			t.Errorf("%s (%s): level %s, want %s", tc.name, tc.f.names(), got, tc.want)
		}
	}
	if got, want := all.names(), "avx2 fma f16c avx512f avx512bw avx512vl avx512vnni"; got != want {
		t.Errorf("names: %q, want %q", got, want)
	}
	if got := (cpuFeatures{}).names(); got != "" {
		t.Errorf("names of none: %q", got)
	}
}

// TestKernelTable checks the table's invariants that the products rely
// on: the Go level runs no kernel, a level with kernels has them for every
// type, a float row kernel has its lane count, a tile its token count, and
// a wider level keeps every capability of a narrower one.
func TestKernelTable(t *testing.T) {
	if levels[simdGo] != (kernelSet{}) {
		t.Errorf("go level runs kernels: %+v", levels[simdGo])
	}
	for l := simdAVX2; l <= simdAVX512; l++ {
		ks := levels[l]
		for _, tk := range []struct {
			name  string
			k     typeKernels
			block bool
		}{{"f32", ks.f32, false}, {"f16", ks.f16, false}, {"bf16", ks.bf16, false}, {"q8", ks.q8, true}, {"q4", ks.q4, true}} {
			k := tk.k
			if k.row == kNone || k.block != tk.block || (k.lanes == 0) == !tk.block || (k.tile != kNone) != (k.tileTokens > 0) {
				t.Errorf("%s %s: %+v", l, tk.name, k)
			}
		}
		prev := levels[l-1]
		if (prev.vec8 && !ks.vec8) || (prev.scan16 && !ks.scan16) || (prev.attend != kNone && ks.attend == kNone) || (prev.quantize != kNone && ks.quantize == kNone) {
			t.Errorf("%s lacks a capability of %s", l, l-1)
		}
	}
}
