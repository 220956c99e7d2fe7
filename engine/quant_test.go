package engine

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/memmamba/memmamba/internal/fixtures"
	"github.com/memmamba/memmamba/quant"
	"github.com/memmamba/memmamba/sample"
)

// quantBounds are the per-type bounds on the fixtures, against the f32 run
// of the same fixture: mean KL divergence of the next-token distributions
// (nats), the share of positions whose greedy token agrees, and the largest
// logit error. int4 on these random-weight models can flip a Note Block
// decision (a threshold is a discontinuity), so its bounds are loose; the
// trained models of testdata/ give the numbers that matter for quality.
//
// Greedy agreement is required at every position where the f32 run's top
// two logits are more than clearMargin apart; random weights produce a few
// near-ties (gaps of 0.005) that no rounding can be asked to preserve.
// The largest logit error (relative to the row's largest |logit|) and the
// number of Note Block decisions that differ from the f32 run are reported,
// not bounded: a quantised score that crosses a threshold changes the pool,
// and with it every logit after, while the distributions stay close.
var quantBounds = map[quant.Type]struct {
	meanKL, top1Clear float64
}{
	quant.F16:  {1e-5, 1},
	quant.BF16: {1e-3, 1},
	quant.Q8_0: {1e-3, 1},
	quant.Q4_0: {5e-2, 0.7},
}

const clearMargin = 0.05

func tracedLogits(t *testing.T, m *Model, tokens []int) ([][]float32, *Trace) {
	t.Helper()
	var out [][]float32
	s := m.NewSession()
	tr := &Trace{}
	s.SetTrace(tr)
	if err := s.PrefillAll(tokens, func(i int, l []float32) error {
		out = append(out, slices.Clone(l))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out, tr
}

// decisionFlips counts the tokens whose Note Block decisions differ.
func decisionFlips(a, b *Trace) int {
	n := 0
	for l := range a.Layers {
		for i, e := range a.Layers[l] {
			f := b.Layers[l][i]
			if e.Note != f.Note || e.Retrieved != f.Retrieved || e.CrossLayer != f.CrossLayer {
				n++
			}
		}
	}
	return n
}

// divergence compares two runs: mean KL(ref || got), top-1 agreement over
// all positions and over the clear ones, and the largest logit error
// relative to its row's largest |logit|.
func divergence(ref, got [][]float32) (d struct{ meanKL, top1, top1Clear, relErr float64 }) {
	agree, clearN, clearAgree := 0, 0, 0
	for i := range ref {
		p, q := sample.LogSoftmax(nil, ref[i]), sample.LogSoftmax(nil, got[i])
		var kl, scale, errMax float64
		for v := range p {
			kl += math.Exp(p[v]) * (p[v] - q[v])
			errMax = math.Max(errMax, math.Abs(float64(ref[i][v]-got[i][v])))
			scale = math.Max(scale, math.Abs(float64(ref[i][v])))
		}
		d.relErr = math.Max(d.relErr, errMax/scale)
		d.meanKL += kl
		same := argmax(ref[i]) == argmax(got[i])
		if same {
			agree++
		}
		if topGap(ref[i]) > clearMargin {
			clearN++
			if same {
				clearAgree++
			}
		}
	}
	d.meanKL /= float64(len(ref))
	d.top1 = float64(agree) / float64(len(ref))
	d.top1Clear = float64(clearAgree) / float64(max(clearN, 1))
	return d
}

// topGap is the gap between the two largest logits.
func topGap(l []float32) float64 {
	a, b := math.Inf(-1), math.Inf(-1)
	for _, v := range l {
		switch x := float64(v); {
		case x > a:
			a, b = x, a
		case x > b:
			b = x
		}
	}
	return a - b
}

// TestQuantisedTypes runs every fixture converted to each quantised type
// and reports, per type, the divergence from the f32 run.
func TestQuantisedTypes(t *testing.T) {
	names, err := fixtures.Names()
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []quant.Type{quant.F16, quant.BF16, quant.Q8_0, quant.Q4_0} {
		b := quantBounds[typ]
		t.Run(typ.String(), func(t *testing.T) {
			var worstKL, worstTop1, worstErr = 0.0, 1.0, 0.0
			for _, name := range names {
				ref, g := openFixture(t, name, quant.F32)
				q, _ := openFixture(t, name, typ)
				rl, rt := tracedLogits(t, ref, g.Tokens)
				ql, qt := tracedLogits(t, q, g.Tokens)
				d := divergence(rl, ql)
				worstKL, worstTop1, worstErr = math.Max(worstKL, d.meanKL), math.Min(worstTop1, d.top1), math.Max(worstErr, d.relErr)
				msg := fmt.Sprintf("%-18s %s: mean KL %.2e, top-1 agreement %.3f (%.3f where the gap > %g), max relative logit error %.2e, %d Note Block decisions differ",
					name, typ, d.meanKL, d.top1, d.top1Clear, clearMargin, d.relErr, decisionFlips(rt, qt))
				if d.meanKL > b.meanKL || d.top1Clear < b.top1Clear {
					t.Errorf("%s; bounds: KL <= %.0e, clear top-1 >= %.2f", msg, b.meanKL, b.top1Clear)
				} else {
					t.Log(msg)
				}
			}
			t.Logf("%s worst over fixtures: mean KL %.2e, top-1 %.3f, max relative logit error %.2e", typ, worstKL, worstTop1, worstErr)
		})
	}
}
