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
