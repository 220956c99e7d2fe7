package sample

import "math"

// LogSoftmax appends log softmax(l) to dst, in float64: the log
// probabilities of the logits l, the largest subtracted before
// exponentiating so that no term overflows. It measures (mmrun score's
// negative log-likelihood and KL divergence, the runtime's quantisation
// tests) and uses math.Exp; the sampler's own draws use expNeg.
func LogSoftmax(dst []float64, l []float32) []float64 {
	mx, sum := expSum(l)
	ls := mx + math.Log(sum)
	for _, v := range l {
		dst = append(dst, float64(v)-ls)
	}
	return dst
}

// LogProb is log softmax(l)[id], in float64, without forming the rest of
// the row.
func LogProb(l []float32, id int) float64 {
	mx, sum := expSum(l)
	return float64(l[id]) - mx - math.Log(sum)
}

// expSum returns the largest logit and the sum of exp(l[i] - largest).
func expSum(l []float32) (mx, sum float64) {
	mx = math.Inf(-1)
	for _, v := range l {
		mx = math.Max(mx, float64(v))
	}
	for _, v := range l {
		sum += math.Exp(float64(v) - mx)
	}
	return mx, sum
}
