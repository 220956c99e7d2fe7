// Package memdecay measures how long a model remembers a token: for a
// token at position t, how much the next-token distributions at t+k change
// when that token is replaced, as a curve over k. It works the same for
// Mamba and MemMamba (it only reads the model's outputs), so the curves of
// the two can be drawn in one plot (`mmrun memory`).
//
// Definition (the README's "Memory decay" section is the user's copy):
// take the first N tokens x_0..x_{N-1} of a text. Draw S distinct positions
// t uniformly from 0..N-1-K, and for each one R replacement tokens x',
// each drawn uniformly from the text's N tokens until it differs from x_t
// (so replacements follow the text's own token frequencies). Run the model
// from an empty state over x_0..x_{t-1}, then on the clean continuation
// x_t, x_{t+1}, ..., x_{t+K} and, from a copy of the same state, on the
// perturbed one x', x_{t+1}, ..., x_{t+K}. With p_k and q_k the clean and
// perturbed next-token distributions after position t+k,
//
//	D(k) = mean over the S*R pairs (t, x') of KL(p_k || q_k)
//
// for k = 1, 2, 4, ..., K (powers of two, and K itself). The draws use
// math/rand/v2's PCG seeded with (Seed, 0), so a seed and the same text and
// model give the same numbers on every machine up to the runtime's float
// rounding (the runtime is deterministic for a given thread count).
//
// Cost: each sampled t costs one clean and R perturbed runs of K+1 tokens
// from a copy of the state (Session.Clone), plus one pass over the prefix
// shared by all samples: O(S*(R+1)*K + N) tokens, never O(N^2).
package memdecay

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/memmamba/memmamba/engine"
)

// Options sizes a measurement.
type Options struct {
	MaxK         int    // K, the largest distance (default 1024)
	Samples      int    // S, the positions t (default 32)
	Replacements int    // R, replacement tokens per position (default 2)
	Seed         uint64 // the PCG seed of the draws (default 0 is a seed like any other)
	// Context is N, the tokens of the text used (0: 4*MaxK, capped at the
	// text's length).
	Context int
	// Progress, when set, is called after each sampled position.
	Progress func(done, total int)
}

// Defaults of Options.
const (
	DefaultMaxK         = 1024
	DefaultSamples      = 32
	DefaultReplacements = 2
	DefaultSeed         = 1
)

// Curve is one model's measurement.
type Curve struct {
	Model        string `json:"model"`
	ModelType    string `json:"model_type"`
	Source       string `json:"source"`
	Context      int    `json:"context"` // N
	MaxK         int    `json:"max_k"`
	Samples      int    `json:"samples"`
	Replacements int    `json:"replacements"`
	Seed         uint64 `json:"seed"`
	K            []int  `json:"k"`
	// MeanKL[i] is D(K[i]) in nats; StdErr[i] its standard error over the
	// S*R pairs; Top1Changed[i] the share of pairs whose most likely next
	// token differs.
	MeanKL      []float64 `json:"mean_kl"`
	StdErr      []float64 `json:"stderr"`
	Top1Changed []float64 `json:"top1_changed"`
	// Draws are the S*R pairs: each position t (ascending), the token there
	// and its replacement.
	Draws     []Draw  `json:"draws"`
	TokensRun int     `json:"tokens_run"`
	Seconds   float64 `json:"seconds"`
}

// Draw is one (t, x') pair of a measurement.
type Draw struct {
	T           int `json:"t"`
	Token       int `json:"token"`
	Replacement int `json:"replacement"`
}

// Grid returns the distances 1, 2, 4, ... up to maxK, and maxK.
func Grid(maxK int) []int {
	var k []int
	for v := 1; v < maxK; v *= 2 {
		k = append(k, v)
	}
	return append(k, maxK)
}

// Measure runs the measurement of m on the tokens ids.
func Measure(m *engine.Model, ids []int, o Options) (*Curve, error) {
	if o.MaxK == 0 {
		o.MaxK = DefaultMaxK
	}
	if o.Samples == 0 {
		o.Samples = DefaultSamples
	}
	if o.Replacements == 0 {
		o.Replacements = DefaultReplacements
	}
	if o.MaxK < 1 || o.Samples < 1 || o.Replacements < 1 || o.Context < 0 {
		return nil, errors.New("memdecay: max k, samples and replacements must be positive")
	}
	N := o.Context
	if N == 0 {
		N = 4 * o.MaxK
	}
	N = min(N, len(ids))
	span := N - o.MaxK // t in 0..span-1
	if span < 1 {
		return nil, fmt.Errorf("memdecay: the text has %d tokens; a distance of %d needs at least %d", N, o.MaxK, o.MaxK+2)
	}
	if o.Samples > span {
		return nil, fmt.Errorf("memdecay: %d samples asked for, but only %d positions are at least %d tokens from the end of %d", o.Samples, span, o.MaxK, N)
	}
	ids = ids[:N]
	rng := rand.New(rand.NewPCG(o.Seed, 0))
	// S distinct positions, drawn in order, then sorted.
	seen := map[int]bool{}
	pos := make([]int, 0, o.Samples)
	for len(pos) < o.Samples {
		t := rng.IntN(span)
		if !seen[t] {
			seen[t] = true
			pos = append(pos, t)
		}
	}
	// The replacements of each position, drawn in the order of the draws.
	repl := make(map[int][]int, len(pos))
	for _, t := range pos {
		for range o.Replacements {
			x := -1
			for try := 0; try < 1000; try++ {
				if v := ids[rng.IntN(N)]; v != ids[t] {
					x = v
					break
				}
			}
			if x < 0 {
				return nil, fmt.Errorf("memdecay: no token of the text differs from the one at %d", t)
			}
			repl[t] = append(repl[t], x)
		}
	}
	slices.Sort(pos)

	grid := Grid(o.MaxK)
	V := m.Config.VocabSize
	c := &Curve{ModelType: string(m.Config.ModelType), Context: N, MaxK: o.MaxK, Samples: o.Samples,
		Replacements: o.Replacements, Seed: o.Seed, K: grid}
	sum := make([]float64, len(grid))
	sum2 := make([]float64, len(grid))
	top := make([]float64, len(grid))
	clean := make([][]float64, len(grid)) // the clean log-probabilities at t+k
	for i := range clean {
		clean[i] = make([]float64, V)
	}
	cleanTop := make([]int, len(grid))
	lq := make([]float64, V)
	start := time.Now()
	base := m.NewSession()
	at := 0 // tokens base has consumed
	branch := make([]int, o.MaxK+1)
	for si, t := range pos {
		if t > at {
			if _, err := base.Prefill(ids[at:t]); err != nil {
				return nil, err
			}
			c.TokensRun += t - at
			at = t
		}
		copy(branch, ids[t:t+o.MaxK+1])
		// the clean continuation
		gi := 0
		if err := base.Clone().PrefillAll(branch, func(k int, l []float32) error {
			if gi < len(grid) && grid[gi] == k {
				cleanTop[gi] = logSoftmax(clean[gi], l)
				gi++
			}
			return nil
		}); err != nil {
			return nil, err
		}
		c.TokensRun += len(branch)
		for _, x := range repl[t] {
			c.Draws = append(c.Draws, Draw{T: t, Token: ids[t], Replacement: x})
			branch[0] = x
			gi := 0
			if err := base.Clone().PrefillAll(branch, func(k int, l []float32) error {
				if gi < len(grid) && grid[gi] == k {
					qt := logSoftmax(lq, l)
					d := kl(clean[gi], lq)
					sum[gi] += d
					sum2[gi] += d * d
					if qt != cleanTop[gi] {
						top[gi]++
					}
					gi++
				}
				return nil
			}); err != nil {
				return nil, err
			}
			c.TokensRun += len(branch)
		}
		if o.Progress != nil {
			o.Progress(si+1, len(pos))
		}
	}
	c.Seconds = time.Since(start).Seconds()
	n := float64(o.Samples * o.Replacements)
	for i := range grid {
		mean := sum[i] / n
		v := 0.0
		if n > 1 {
			v = max(0, (sum2[i]-n*mean*mean)/(n-1))
		}
		c.MeanKL = append(c.MeanKL, mean)
		c.StdErr = append(c.StdErr, math.Sqrt(v/n))
		c.Top1Changed = append(c.Top1Changed, top[i]/n)
	}
	return c, nil
}

// logSoftmax writes the log-probabilities of logits l into dst (float64)
// and returns the most likely token (the first of ties).
func logSoftmax(dst []float64, l []float32) int {
	mx, arg := math.Inf(-1), 0
	for i, v := range l {
		if float64(v) > mx {
			mx, arg = float64(v), i
		}
	}
	s := 0.0
	for _, v := range l {
		s += math.Exp(float64(v) - mx)
	}
	ls := mx + math.Log(s)
	for i, v := range l {
		dst[i] = float64(v) - ls
	}
	return arg
}

// kl is KL(p || q) of two log-probability vectors, in nats.
func kl(lp, lq []float64) float64 {
	d := 0.0
	for i, a := range lp {
		if p := math.Exp(a); p > 0 {
			d += p * (a - lq[i])
		}
	}
	return max(0, d)
}
