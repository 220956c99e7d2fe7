package sample

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestLogSoftmax: the probabilities sum to 1, LogProb agrees with the row,
// and logits of 1e4 (whose exp overflows) stay finite.
func TestLogSoftmax(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, scale := range []float32{1, 30, 1e4} {
		l := randLogits(r, 257)
		for i := range l {
			l[i] *= scale
		}
		lp := LogSoftmax(nil, l)
		var sum float64
		for id, v := range lp {
			sum += math.Exp(v)
			if got := LogProb(l, id); math.Abs(got-v) > 1e-9*max(1, math.Abs(v)) {
				t.Fatalf("scale %v: LogProb(%d) = %v, LogSoftmax %v", scale, id, got, v)
			}
		}
		if math.Abs(sum-1) > 1e-12 {
			t.Errorf("scale %v: probabilities sum to %v", scale, sum)
		}
	}
	if got := LogSoftmax([]float64{7}, []float32{0, 0}); len(got) != 3 || got[0] != 7 || got[1] != -math.Ln2 {
		t.Errorf("appending to dst: %v", got)
	}
}
