package engine

import (
	"math"
	"slices"
	"testing"

	"github.com/memmamba/memmamba/convert"
	"github.com/memmamba/memmamba/quant"
)

func init() {
	// test-split's Falcon-Mamba twin: products that split across the
	// pool's threads, with the norms on delta, B and C (eps 1e-6).
	convert.SyntheticShapes["test-split-falcon"] = `{"model_type":"falcon_mamba","vocab_size":256,"hidden_size":256,` +
		`"num_hidden_layers":2,"state_size":16,"mixer_rms_eps":1e-6}`
}

// TestNormDBC: each of delta, B and C comes out with a mean square of 1
// (to the eps), independently of the others' scale.
func TestNormDBC(t *testing.T) {
	const R, N, T = 3, 4, 2
	dbc := []float32{
		1, 2, 3, 10, 20, 30, 40, -0.1, 0.2, -0.3, 0.4,
		0, 0, 5, 1, 1, 1, 1, 7, 0, 0, 0,
	}
	var ones []float32
	normDBC(dbc, T, R, N, 1e-6, onesOf(&ones, N))
	for tok := range T {
		row := dbc[tok*(R+2*N) : (tok+1)*(R+2*N)]
		for _, part := range [][]float32{row[:R], row[R : R+N], row[R+N:]} {
			ms := 0.0
			for _, v := range part {
				ms += float64(v) * float64(v)
			}
			if ms /= float64(len(part)); math.Abs(ms-1) > 1e-4 {
				t.Errorf("row %d part %v: mean square %v, want 1", tok, part, ms)
			}
		}
	}
}

// TestFalconPrefillEqualsSteps: on the Falcon-Mamba fixture and on a shape
// whose products split across threads (f32 and int8), one prefill, uneven
// prefills and fused one-token steps give the same logits and state, bit
// for bit; and the norms change the output (the flag is not ignored).
func TestFalconPrefillEqualsSteps(t *testing.T) {
	cases := []struct {
		name string
		open func(t *testing.T) *Model
	}{
		{"falcon-mamba-tiny", func(t *testing.T) *Model { m, _ := openFixture(t, "falcon-mamba-tiny", quant.F32); return m }},
		{"split-f32", func(t *testing.T) *Model { return syntheticModel(t, "test-split-falcon", quant.F32) }},
		{"split-q8_0", func(t *testing.T) *Model { return syntheticModel(t, "test-split-falcon", quant.Q8_0) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.open(t)
			if !m.Config.DtBCRMS {
				t.Fatalf("config %+v has no dt/B/C norms", m.Config)
			}
			if _, ok := m.newPass().dense.(stepFuser); !ok {
				t.Fatal("the native backend does not fuse the step")
			}
			toks := longTokens(300, m.Config.VocabSize, 7)
			checkPrefillModes(t, m, toks)
			// The same weights without the norms give other logits.
			m.Config.DtBCRMS = false
			plain := m.NewSession()
			lo, err := plain.Prefill(toks[:8])
			m.Config.DtBCRMS = true
			if err != nil {
				t.Fatal(err)
			}
			lo = slices.Clone(lo)
			ln, err := m.NewSession().Prefill(toks[:8])
			if err != nil {
				t.Fatal(err)
			}
			if slices.Equal(lo, ln) {
				t.Errorf("the dt/B/C norms do not change the logits")
			}
		})
	}
}

// TestFalconBatch: batched schedules on the split shape (the fixture is in
// TestBatchExact's list of every fixture) equal each session alone.
func TestFalconBatch(t *testing.T) {
	for _, typ := range []quant.Type{quant.F32, quant.Q8_0} {
		t.Run(typ.String(), func(t *testing.T) {
			runSchedule(t, syntheticModel(t, "test-split-falcon", typ), 13, 10)
		})
	}
}
