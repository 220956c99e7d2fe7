package engine

import (
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/memmamba/memmamba/quant"
)

// longTokens returns n seeded random tokens below vocab.
func longTokens(n, vocab int, seed uint64) []int {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([]int, n)
	for i := range out {
		out[i] = r.IntN(vocab)
	}
	return out
}

func stateBlob(t *testing.T, s *Session) []byte {
	t.Helper()
	b, err := s.Save()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// prefillAndSteps runs toks through one session as a single prefill and
// through another one token at a time, and returns both sessions and their
// last logits.
func prefillAndSteps(t *testing.T, m *Model, toks []int) (whole *Session, lw []float32, steps *Session, ls []float32) {
	t.Helper()
	whole = m.NewSession()
	lw, err := whole.Prefill(toks)
	if err != nil {
		t.Fatal(err)
	}
	lw = slices.Clone(lw)
	steps = m.NewSession()
	for _, tok := range toks {
		if ls, err = steps.Step(tok); err != nil {
			t.Fatal(err)
		}
	}
	return whole, lw, steps, ls
}

// TestPrefillEqualsSteps runs 300 tokens (more than two chunks) as one
// prefill, as uneven prefills, and one token at a time: the logits and
// the states must be identical, bit for bit.
func TestPrefillEqualsSteps(t *testing.T) {
	for _, name := range []string{"memmamba-priority", "memmamba-fifo", "mamba-bias-untied"} {
		t.Run(name, func(t *testing.T) {
			m, _ := openFixture(t, name, quant.F32)
			checkPrefillModes(t, m, longTokens(300, m.Config.VocabSize, 7))
		})
	}
}

// checkPrefillModes runs toks as one prefill, as uneven prefills and one
// token at a time: the last logits and the states must be identical, bit
// for bit.
func checkPrefillModes(t *testing.T, m *Model, toks []int) {
	t.Helper()
	whole, lw, steps, ls := prefillAndSteps(t, m, toks)
	parts := m.NewSession()
	var lp []float32
	var err error
	for i, cut := 0, 0; i < len(toks); i = cut {
		cut = min(len(toks), i+1+(i*37)%150)
		if lp, err = parts.Prefill(toks[i:cut]); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(lw, ls) || !slices.Equal(lw, lp) {
		t.Errorf("last logits differ between one prefill, steps and uneven prefills")
	}
	if b := stateBlob(t, whole); !slices.Equal(b, stateBlob(t, steps)) || !slices.Equal(b, stateBlob(t, parts)) {
		t.Errorf("states differ between one prefill, steps and uneven prefills")
	}
}

// TestFusedStep checks the fused one-token step (the conv inside
// in_proj's product, the scan inside dt_proj's: stepFuser) against the
// unfused path of a prefill, bit for bit, on a shape whose products split
// across two threads, at f32 and int8.
func TestFusedStep(t *testing.T) {
	for _, typ := range []quant.Type{quant.F32, quant.Q8_0} {
		t.Run(typ.String(), func(t *testing.T) {
			m := syntheticModel(t, "test-split", typ)
			if m.pool.Threads() < 2 {
				t.Skip("needs 2 threads (GOMAXPROCS)")
			}
			if _, ok := m.newPass().dense.(stepFuser); !ok {
				t.Fatal("the native backend does not fuse the step")
			}
			toks := longTokens(40, m.Config.VocabSize, 9)
			whole, lw, steps, ls := prefillAndSteps(t, m, toks)
			if !slices.Equal(lw, ls) {
				t.Errorf("last logits differ between a prefill and fused steps")
			}
			if !slices.Equal(stateBlob(t, whole), stateBlob(t, steps)) {
				t.Errorf("states differ between a prefill and fused steps")
			}
		})
	}
}

// TestSaveLoadClone stops a conversation mid-stream, saves it, loads it in
// a fresh session (as another process would) and checks that it goes on
// with identical logits; a Clone forks it the same way.
func TestSaveLoadClone(t *testing.T) {
	m, _ := openFixture(t, "memmamba-priority", quant.Q8_0)
	toks := longTokens(200, m.Config.VocabSize, 3)
	a := m.NewSession()
	if _, err := a.Prefill(toks[:120]); err != nil {
		t.Fatal(err)
	}
	blob := stateBlob(t, a)
	fork := a.Clone()
	b := m.NewSession()
	if err := b.Load(blob); err != nil {
		t.Fatal(err)
	}
	if b.Pos() != 120 {
		t.Fatalf("loaded position %d, want 120", b.Pos())
	}
	for _, tok := range toks[120:] {
		la, _ := a.Step(tok)
		lb, _ := b.Step(tok)
		lf, _ := fork.Step(tok)
		if !slices.Equal(la, lb) || !slices.Equal(la, lf) {
			t.Fatalf("at position %d the saved, loaded and cloned sessions disagree", a.Pos())
		}
	}
	a.Reset()
	if a.Pos() != 0 || !slices.Equal(stateBlob(t, a), stateBlob(t, m.NewSession())) {
		t.Error("Reset does not return to the empty state")
	}
}

func TestBadInput(t *testing.T) {
	m, _ := openFixture(t, "memmamba-priority", quant.F32)
	other, _ := openFixture(t, "memmamba-fifo", quant.F32)
	s := m.NewSession()
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"empty prompt", func() error { _, err := s.Prefill(nil); return err }(), "prompt is empty"},
		{"token too big", func() error { _, err := s.Step(m.Config.VocabSize); return err }(), "outside the vocabulary"},
		{"negative token", func() error { _, err := s.Prefill([]int{1, -1}); return err }(), "outside the vocabulary"},
		{"garbage state", s.Load([]byte("nonsense")), "not a saved session state"},
		{"other model's state", s.Load(stateBlob(t, other.NewSession())), "another model"},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, tc.err, tc.want)
		}
	}
	if s.Pos() != 0 {
		t.Errorf("failed calls moved the session to %d", s.Pos())
	}
}

// TestConcurrentSessions decodes 8 sessions at once on one model (run with
// -race) and checks each against a session run alone.
func TestConcurrentSessions(t *testing.T) {
	m, _ := openFixture(t, "memmamba-fifo", quant.Q4_0)
	const n = 8
	want := make([][]float32, n)
	toks := make([][]int, n)
	for i := range n {
		toks[i] = longTokens(40, m.Config.VocabSize, uint64(i))
		s := m.NewSession()
		l, err := s.Prefill(toks[i])
		if err != nil {
			t.Fatal(err)
		}
		want[i] = slices.Clone(l)
	}
	var wg sync.WaitGroup
	got := make([][]float32, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := m.NewSession()
			var l []float32
			for _, tok := range toks[i] {
				l, _ = s.Step(tok)
			}
			got[i] = slices.Clone(l)
		}()
	}
	wg.Wait()
	for i := range n {
		if !slices.Equal(got[i], want[i]) {
			t.Errorf("session %d: concurrent decoding differs from a lone prefill", i)
		}
	}
}

// TestDecodeAllocs checks that a decode step allocates nothing once the
// session's buffers have grown (issue: no allocation per token).
func TestDecodeAllocs(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation counts are measured without -short and -race")
	}
	for _, name := range []string{"memmamba-priority", "memmamba-fifo", "mamba-tiny"} {
		m, _ := openFixture(t, name, quant.Q8_0)
		s := m.NewSession()
		toks := longTokens(300, m.Config.VocabSize, 5)
		for _, tok := range toks[:200] {
			s.Step(tok)
		}
		i := 200
		if a := testing.AllocsPerRun(90, func() { s.Step(toks[i]); i++ }); a != 0 {
			t.Errorf("%s: %v allocations per decode step", name, a)
		}
	}
}

// TestProductMACs checks the multiply-adds a token's products take against
// the mixer's shapes (SPEC step 2) for a plain Mamba model, and that a
// MemMamba model's Note Blocks add to the layers' count only.
func TestProductMACs(t *testing.T) {
	m := syntheticModel(t, "mamba-tiny", quant.F32)
	c := m.Config
	d, E, N, R := int64(c.HiddenSize), int64(c.Intermediate), int64(c.StateSize), int64(c.TimeStepRank)
	wantLayers := int64(c.NumLayers) * (d*2*E + E*(R+2*N) + R*E + E*d)
	layers, head := m.ProductMACs()
	if layers != wantLayers || head != int64(c.VocabSize)*d {
		t.Fatalf("mamba-tiny: ProductMACs = %d, %d; want %d, %d", layers, head, wantLayers, int64(c.VocabSize)*d)
	}
	mm := syntheticModel(t, "memmamba-tiny", quant.F32)
	ml, mh := mm.ProductMACs()
	if mc := mm.Config; mh != int64(mc.VocabSize)*int64(mc.HiddenSize) || ml <= int64(mc.NumLayers)*(int64(mc.HiddenSize)*2*int64(mc.Intermediate)) {
		t.Fatalf("memmamba-tiny: ProductMACs = %d, %d", ml, mh)
	}
}
