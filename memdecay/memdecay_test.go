package memdecay

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/memmamba/memmamba/convert"
	"github.com/memmamba/memmamba/engine"
	"github.com/memmamba/memmamba/internal/fixtures"
	"github.com/memmamba/memmamba/quant"
)

func openFixture(t *testing.T, name string) *engine.Model {
	t.Helper()
	g, err := fixtures.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "m.mmq")
	if _, err := convert.Convert(g.Source(), out, convert.Options{Policy: convert.Policy{Type: quant.F32}, Created: time.Unix(0, 0).UTC()}); err != nil {
		t.Fatal(err)
	}
	m, err := engine.Open(out, engine.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// text returns n token ids of the held-out King James text (bytes), taken
// modulo the vocabulary.
func text(t *testing.T, n, vocab int) []int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures.Dir(), "..", "trained", "kjv", "heldout.txt"))
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int, n)
	for i := range ids {
		ids[i] = int(b[i]) % vocab
	}
	return ids
}

func TestGrid(t *testing.T) {
	for _, c := range []struct {
		k    int
		want []int
	}{{1, []int{1}}, {2, []int{1, 2}}, {8, []int{1, 2, 4, 8}}, {10, []int{1, 2, 4, 8, 10}}} {
		if g := Grid(c.k); !slices.Equal(g, c.want) {
			t.Errorf("Grid(%d) = %v, want %v", c.k, g, c.want)
		}
	}
}

// TestMeasureIsTheDefinition: on the trained Mamba and MemMamba, the
// measurement (a shared prefix, cloned states) equals the definition
// computed the slow way, every pair run from an empty state, clean and
// perturbed; and the same seed gives the same curve.
func TestMeasureIsTheDefinition(t *testing.T) {
	for _, name := range []string{"trained/mamba-kjv", "trained/memmamba-kjv"} {
		t.Run(name, func(t *testing.T) {
			m := openFixture(t, name)
			ids := text(t, 200, m.Config.VocabSize)
			o := Options{MaxK: 20, Samples: 4, Replacements: 2, Seed: 9, Context: 150}
			c, err := Measure(m, ids, o)
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Draws) != 8 || c.Context != 150 || !slices.Equal(c.K, []int{1, 2, 4, 8, 16, 20}) {
				t.Fatalf("draws %d, context %d, k %v", len(c.Draws), c.Context, c.K)
			}
			sum := make([]float64, len(c.K))
			for _, d := range c.Draws {
				if d.T < 0 || d.T >= 150-20 || d.Token != ids[d.T] || d.Replacement == d.Token || !slices.Contains(ids[:150], d.Replacement) {
					t.Fatalf("draw %+v is outside the definition", d)
				}
				run := func(x int) [][]float64 {
					seq := slices.Clone(ids[:d.T+21])
					seq[d.T] = x
					var out [][]float64
					gi := 0
					if err := m.NewSession().PrefillAll(seq, func(i int, l []float32) error {
						if gi < len(c.K) && i == d.T+c.K[gi] {
							lp := make([]float64, len(l))
							logSoftmax(lp, l)
							out = append(out, lp)
							gi++
						}
						return nil
					}); err != nil {
						t.Fatal(err)
					}
					return out
				}
				p, q := run(d.Token), run(d.Replacement)
				for i := range c.K {
					sum[i] += kl(p[i], q[i])
				}
			}
			for i, k := range c.K {
				want := sum[i] / 8
				if math.Abs(c.MeanKL[i]-want) > 1e-8+1e-3*want {
					t.Errorf("k=%d: mean KL %.6g, the definition gives %.6g", k, c.MeanKL[i], want)
				}
			}
			again, err := Measure(m, ids, o)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(again.MeanKL, c.MeanKL) || !slices.Equal(again.Draws, c.Draws) {
				t.Error("the same seed gave another curve")
			}
			o.Seed = 10
			other, err := Measure(m, ids, o)
			if err != nil {
				t.Fatal(err)
			}
			if slices.Equal(other.Draws, c.Draws) {
				t.Error("another seed drew the same pairs")
			}
			t.Logf("%s: k %v mean KL %.3g", name, c.K, c.MeanKL)
		})
	}
}

func TestMeasureRefuses(t *testing.T) {
	m := openFixture(t, "mamba-tiny")
	ids := text(t, 40, m.Config.VocabSize)
	if _, err := Measure(m, ids, Options{MaxK: 40}); err == nil {
		t.Error("a text no longer than max k was accepted")
	}
	if _, err := Measure(m, ids, Options{MaxK: 30, Samples: 20}); err == nil {
		t.Error("more samples than positions were accepted")
	}
	same := make([]int, 40)
	if _, err := Measure(m, same, Options{MaxK: 4, Samples: 2}); err == nil {
		t.Error("a text of one token repeated was accepted")
	}
}
