package engine

import "github.com/memmamba/memmamba/quant"

// The internal tests' helpers, for the external tests of the backends
// (ort_test.go), which import engine/ortbackend and so cannot be in
// package engine.
var (
	ConvertFixture = convertFixture
	CompareLogits  = compareLogits
	CompareTrace   = compareTrace
	Within         = within
	DecisionFlips  = decisionFlips
	RunSchedule    = runSchedule
)

// Divergence is divergence's statistics of got against ref.
func Divergence(ref, got [][]float32) (meanKL, top1, top1Clear float64) {
	d := divergence(ref, got)
	return d.meanKL, d.top1, d.top1Clear
}

// QuantBound is quantBounds' entry for typ.
func QuantBound(typ quant.Type) (meanKL, top1Clear float64) {
	b := quantBounds[typ]
	return b.meanKL, b.top1Clear
}
