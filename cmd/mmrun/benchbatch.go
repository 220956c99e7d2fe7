package main

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/memmamba/memmamba/engine"
	"github.com/memmamba/memmamba/internal/cli"
	"github.com/memmamba/memmamba/internal/sysinfo"
)

// maxBatch bounds bench --batch: one pass of a Batch takes at most
// engine.BatchRows rows.
const maxBatch = engine.BatchRows

// batchPrompt is the prompt each sequence of a batch benchmark is
// prefilled with (in one batched step) before its decode is timed.
const batchPrompt = 32

// batchResult is bench's figures at one batch size.
type batchResult struct {
	Batch int `json:"batch"`
	// DecodeTokS is the aggregate decode speed (tokens of all sequences);
	// SeqTokS each sequence's (one token per batched step).
	DecodeTokS sysinfo.Stats `json:"decode_tok_per_s"`
	SeqTokS    sysinfo.Stats `json:"per_sequence_tok_per_s"`
	// StepMs is the median time of a batched step: each sequence's
	// latency per token.
	StepMs float64 `json:"step_ms"`
	// WeightBytes is the weight bytes read per generated token: a step
	// reads the weights once for the whole batch.
	WeightBytes int64   `json:"weight_bytes_per_token"`
	StateBytes  int     `json:"state_bytes_per_sequence"`
	PeakRSSMiB  float64 `json:"peak_rss_mib"`
}

// parseBatches reads --batch: a comma-separated list of batch sizes.
func parseBatches(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > maxBatch {
			return nil, cli.Usagef("--batch takes batch sizes from 1 to %d separated by commas (got %q)", maxBatch, f)
		}
		out = append(out, n)
	}
	return out, nil
}

// benchBatches measures batched decode at each size: B sessions, each
// prefilled with batchPrompt random tokens in one batched step, then
// decode greedy tokens each, one batched step per token; runs times from
// the empty state.
func benchBatches(m *engine.Model, sizes []int, decode, runs int, rng *rand.Rand) ([]batchResult, error) {
	var out []batchResult
	V := m.Config.VocabSize
	b := m.NewBatch()
	for _, B := range sizes {
		items := make([]engine.BatchItem, B)
		prompts := make([][]int, B)
		toks := make([][1]int, B)
		for i := range items {
			items[i] = engine.BatchItem{Session: m.NewSession(), WantLogits: true}
			prompts[i] = make([]int, batchPrompt)
		}
		var agg, seq, step []float64
		for range runs {
			for i := range items {
				items[i].Session.Reset()
				for j := range prompts[i] {
					prompts[i][j] = rng.IntN(V)
				}
				items[i].Tokens = prompts[i]
			}
			if err := b.Step(items); err != nil {
				return nil, err
			}
			if decode == 0 {
				continue
			}
			start := time.Now()
			for range decode {
				for i := range items {
					toks[i][0] = argmax(items[i].Logits)
					items[i].Tokens = toks[i][:]
				}
				if err := b.Step(items); err != nil {
					return nil, err
				}
			}
			sec := time.Since(start).Seconds()
			agg = append(agg, float64(B*decode)/sec)
			seq = append(seq, float64(decode)/sec)
			step = append(step, 1e3*sec/float64(decode))
		}
		out = append(out, batchResult{
			Batch: B, DecodeTokS: sysinfo.Summarise(agg), SeqTokS: sysinfo.Summarise(seq),
			StepMs: sysinfo.Summarise(step).Median, WeightBytes: m.DecodeWeightBytes() / int64(B),
			StateBytes: items[0].Session.StateBytes(), PeakRSSMiB: float64(sysinfo.PeakRSS()) / (1 << 20),
		})
	}
	return out, nil
}

// batchCeiling is the share of prefill's tok/s that batched decode
// reaches at prefill's compute rate: each decode row runs the LM head,
// which a prefill runs once a prompt (Model.ProductMACs).
func batchCeiling(m *engine.Model) (ceiling, headShare float64) {
	layers, head := m.ProductMACs()
	if layers+head == 0 {
		return 0, 0
	}
	return float64(layers) / float64(layers+head), float64(head) / float64(layers+head)
}

// printBatches prints benchBatches' table; vs ceiling is vs prefill over
// the ceiling (batchCeiling).
func printBatches(rs []batchResult, prefillTokS, ceiling, headShare float64) {
	fmt.Printf("batched decode (%d-token prompt per sequence, then one token per sequence a step):\n", batchPrompt)
	fmt.Printf("  %5s  %12s  %12s  %8s  %10s  %10s  %9s  %11s  %9s\n", "batch", "total tok/s", "per-seq tok/s", "step ms", "vs prefill", "vs ceiling", "MB/token", "state/seq", "peak RSS")
	for _, r := range rs {
		share, vsCeiling := 0.0, 0.0
		if prefillTokS > 0 {
			share = 100 * r.DecodeTokS.Median / prefillTokS
		}
		if ceiling > 0 {
			vsCeiling = share / ceiling
		}
		fmt.Printf("  %5d  %12.1f  %13.1f  %8.2f  %9.0f%%  %9.0f%%  %9.2f  %8.2f MiB  %6.1f MiB\n", r.Batch, r.DecodeTokS.Median,
			r.SeqTokS.Median, r.StepMs, share, vsCeiling, float64(r.WeightBytes)/1e6, float64(r.StateBytes)/(1<<20), r.PeakRSSMiB)
	}
	fmt.Printf("  ceiling: each decode row runs the LM head (%.0f%% of a token's multiply-adds), prefill once a prompt:\n", 100*headShare)
	fmt.Printf("  at prefill's compute rate a batched step reaches %.0f%% of prefill's tok/s\n", 100*ceiling)
}
