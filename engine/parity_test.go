package engine

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memmamba/memmamba/convert"
	"github.com/memmamba/memmamba/internal/fixtures"
	"github.com/memmamba/memmamba/quant"
)

// convertFixture converts a fixture to a model file of type t, once per
// test binary.
func convertFixture(t testing.TB, name string, typ quant.Type) string {
	t.Helper()
	key := fmt.Sprintf("%s/%s", name, typ)
	convMu.Lock()
	defer convMu.Unlock()
	if p, ok := converted[key]; ok {
		return p
	}
	if convDir == "" {
		dir, err := osMkdirTemp()
		if err != nil {
			t.Fatal(err)
		}
		convDir = dir
	}
	g, err := fixtures.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(convDir, strings.ReplaceAll(name, "/", "_")+"."+typ.String()+".mmq")
	if _, err := convert.Convert(g.Source(), out, convert.Options{
		Policy: convert.Policy{Type: typ}, Created: time.Unix(0, 0).UTC(),
	}); err != nil {
		t.Fatalf("convert %s to %s: %v", name, typ, err)
	}
	converted[key] = out
	return out
}

var (
	convMu    sync.Mutex
	convDir   string
	converted = map[string]string{}
)

func openFixture(t testing.TB, name string, typ quant.Type) (*Model, *fixtures.Golden) {
	t.Helper()
	g, err := fixtures.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Open(convertFixture(t, name, typ), Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, g
}

// within is SPEC.md's bound: |err| <= 1e-4 + 1e-4*|logit|.
func within(got, want float32) bool {
	return math.Abs(float64(got-want)) <= 1e-4+1e-4*math.Abs(float64(want))
}

func compareLogits(t *testing.T, what string, got [][]float32, g *fixtures.Golden) {
	t.Helper()
	worst := 0.0
	bad := 0
	for i := range g.Logits {
		for v, want := range g.Logits[i] {
			if !within(got[i][v], want) {
				if bad < 5 {
					t.Errorf("%s: position %d logit %d = %v, reference %v", what, i, v, got[i][v], want)
				}
				bad++
			}
			worst = max(worst, math.Abs(float64(got[i][v]-want)))
		}
		if a := argmax(got[i]); a != g.Greedy[i] {
			t.Errorf("%s: position %d greedy token %d, reference %d", what, i, a, g.Greedy[i])
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d logits outside the bound; max |error| %.3g", what, bad, worst)
	}
	t.Logf("%s: max |logit error| %.3g", what, worst)
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

func compareTrace(t *testing.T, what string, got *Trace, g *fixtures.Golden) {
	t.Helper()
	if g.Trace == nil {
		return
	}
	if len(got.Layers) != len(g.Trace) {
		t.Fatalf("%s: trace has %d layers, reference %d", what, len(got.Layers), len(g.Trace))
	}
	worst := 0.0
	defer func() { t.Logf("%s: max |importance or trigger error| %.3g", what, worst) }()
	for l := range g.Trace {
		if len(got.Layers[l]) != len(g.Trace[l]) {
			t.Fatalf("%s: layer %d trace has %d tokens, reference %d", what, l, len(got.Layers[l]), len(g.Trace[l]))
		}
		for i, want := range g.Trace[l] {
			e := got.Layers[l][i]
			if e.Note != want.Note || e.Evicted != want.Evicted || e.Retrieved != want.Retrieved ||
				e.CrossLayer != want.CrossLayer || !slices.Equal(e.Pool, want.Pool) || e.Pos != want.Pos {
				t.Errorf("%s: layer %d token %d: got %+v, reference %+v", what, l, i, e, want)
			}
			worst = max(worst, math.Abs(e.Importance-want.Importance), math.Abs(e.Trigger-want.Trigger))
			if math.Abs(e.Importance-want.Importance) > 1e-4 || math.Abs(e.Trigger-want.Trigger) > 1e-4 {
				t.Errorf("%s: layer %d token %d: importance %v trigger %v, reference %v %v", what, l, i,
					e.Importance, e.Trigger, want.Importance, want.Trigger)
			}
		}
	}
}

func compareState(t *testing.T, what string, s *Session, g *fixtures.Golden) {
	t.Helper()
	if s.Pos() != g.State.Pos {
		t.Errorf("%s: position %d, reference %d", what, s.Pos(), g.State.Pos)
	}
	for l, want := range g.State.Layers {
		ls := s.layers[l]
		for _, v := range []struct {
			name      string
			got, want []float32
		}{{"conv", ls.conv, want.Conv}, {"ssm", ls.ssm, want.SSM}, {"prev_m", ls.prevM, want.PrevM}} {
			for i := range v.want {
				if !within(v.got[i], v.want[i]) {
					t.Errorf("%s: layer %d %s[%d] = %v, reference %v", what, l, v.name, i, v.got[i], v.want[i])
					break
				}
			}
		}
		if ls.pool == nil {
			continue
		}
		if ls.pool.n != len(want.Pool) {
			t.Errorf("%s: layer %d pool has %d notes, reference %d", what, l, ls.pool.n, len(want.Pool))
			continue
		}
		for i, e := range want.Pool {
			if ls.pool.pos[i] != e.Pos {
				t.Errorf("%s: layer %d pool slot %d holds position %d, reference %d", what, l, i, ls.pool.pos[i], e.Pos)
			}
			for k, x := range e.Summary {
				if !within(ls.pool.summ[i*ls.pool.S+k], x) {
					t.Errorf("%s: layer %d pool slot %d summary[%d] = %v, reference %v", what, l, i, k, ls.pool.summ[i*ls.pool.S+k], x)
					break
				}
			}
		}
	}
}

// TestParityF32 runs every fixture and every trained model with golden
// outputs, converted to f32, in prefill and in step mode against the
// PyTorch reference's golden logits, decisions and final state (SPEC.md's
// bounds).
func TestParityF32(t *testing.T) {
	names, err := fixtures.Names()
	if err != nil {
		t.Fatal(err)
	}
	trained, err := fixtures.TrainedNames()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range append(names, trained...) {
		t.Run(name, func(t *testing.T) {
			m, g := openFixture(t, name, quant.F32)
			// Prefill: every position's logits in one call.
			s := m.NewSession()
			tr := &Trace{}
			s.SetTrace(tr)
			var got [][]float32
			if err := s.PrefillAll(g.Tokens, func(i int, l []float32) error {
				got = append(got, slices.Clone(l))
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			compareLogits(t, "prefill", got, g)
			compareTrace(t, "prefill", tr, g)
			compareState(t, "prefill", s, g)

			// Step mode: one token at a time.
			s = m.NewSession()
			tr = &Trace{}
			s.SetTrace(tr)
			got = got[:0]
			for _, tok := range g.Tokens {
				l, err := s.Step(tok)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, slices.Clone(l))
			}
			compareLogits(t, "step", got, g)
			compareTrace(t, "step", tr, g)
			compareState(t, "step", s, g)
		})
	}
}

// TestFixtureText checks that the tokenizer the model file carries turns
// each fixture's text into the reference's tokens, and back.
func TestFixtureText(t *testing.T) {
	names, err := fixtures.Names()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		m, g := openFixture(t, name, quant.F32)
		tok, err := m.Tokenizer()
		if err != nil {
			t.Fatal(err)
		}
		ids, err := tok.Encode(g.Text)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids, g.Tokens) {
			t.Errorf("%s (%s): %q encodes to %v, the reference used %v", name, g.Tokenizer, g.Text, ids, g.Tokens)
		}
		if s, err := tok.Decode(g.Tokens); err != nil || s != g.Text {
			t.Errorf("%s: decode gives %q, %v", name, s, err)
		}
	}
}
