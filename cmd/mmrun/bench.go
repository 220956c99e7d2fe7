package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/memmamba/memmamba/internal/cli"
	"github.com/memmamba/memmamba/internal/sysinfo"
	"github.com/memmamba/memmamba/ops"
	"github.com/memmamba/memmamba/quant"
)

const benchUsage = `Usage: mmrun bench -m MODEL [--prefill 512] [--decode 128] [--runs 5] [--batch 1,4,16,32] [--threads N] [--json]

Measures prefill and decode speed (median and range over --runs runs, each
from an empty state on random tokens), the peak resident memory, and the
machine's memory bandwidth in the same run, two ways: a copy (bytes read
plus written, STREAM's Copy) and a read-only stream of 256 MiB of float32
through the dense kernels (what decode does to its weights). It reports the
share of each that decode reaches (the weights read per token over the
time per token), and the decode speed the read bandwidth would allow.
With --batch, it also decodes B sequences at once through engine.Batch
(each prefilled with 32 random tokens, then one greedy token each per
batched step) and reports per batch size the aggregate and per-sequence
tok/s, the step time, the share of the prefill speed, the weight bytes
read per token, the state a sequence holds, and the peak RSS so far. The
kernel level (avx512, avx2 or go) is the widest this CPU has unless
MMRUN_SIMD names one; the first lines say which runs.

Make a model of a named shape with 'mmconvert --synthetic mamba-130m -o
model.mmq --type int8'.

Flags:
`

type benchResult struct {
	Model          string         `json:"model"`
	CPU            string         `json:"cpu"`
	Threads        int            `json:"threads"`
	PrefillTokens  int            `json:"prefill_tokens"`
	DecodeTokens   int            `json:"decode_tokens"`
	Runs           int            `json:"runs"`
	PrefillTokS    sysinfo.Stats  `json:"prefill_tok_per_s"`
	DecodeTokS     sysinfo.Stats  `json:"decode_tok_per_s"`
	WeightBytes    int64          `json:"weight_bytes_per_token"`
	BandwidthGBs   float64        `json:"memory_bandwidth_gb_per_s"`
	DecodeGBs      float64        `json:"decode_gb_per_s"`
	BandwidthShare float64        `json:"decode_bandwidth_share"`
	ReadGBs        float64        `json:"memory_read_bandwidth_gb_per_s"`
	ReadShare      float64        `json:"decode_read_bandwidth_share"`
	BoundTokS      float64        `json:"decode_read_bound_tok_per_s"`
	PeakRSSMiB     float64        `json:"peak_rss_mib"`
	MappedMiB      float64        `json:"mapped_weights_mib"`
	Types          map[string]int `json:"tensor_types"`
	StateBytes     int            `json:"state_bytes_per_sequence"`
	SIMD           string         `json:"simd_level"`
	SIMDDetected   string         `json:"simd_detected"`
	CPUFeatures    string         `json:"cpu_features"`
	Batches        []batchResult  `json:"batches,omitempty"`
	// BatchCeiling is batched decode's ceiling as a share of prefill's
	// tok/s, HeadShare the LM head's share of a decode token's
	// multiply-adds (batchCeiling); set with --batch.
	BatchCeiling float64 `json:"batch_ceiling_vs_prefill,omitempty"`
	HeadShare    float64 `json:"lm_head_mac_share,omitempty"`
}

func bench(args []string) error {
	fs := pflag.NewFlagSet("mmrun bench", pflag.ContinueOnError)
	var mf modelFlags
	mf.register(fs)
	prefill := fs.Int("prefill", 512, fmt.Sprintf("prompt tokens per run (1 to %d)", maxTokens))
	decode := fs.Int("decode", 128, fmt.Sprintf("generated tokens per run (0 to %d)", maxTokens))
	runs := fs.Int("runs", 5, fmt.Sprintf("runs (1 to %d)", maxRuns))
	asJSON := fs.Bool("json", false, "print JSON")
	batchFlag := fs.String("batch", "", fmt.Sprintf("also measure batched decode at these batch sizes, e.g. 1,4,16,32 (1 to %d each)", maxBatch))
	if err := parse(fs, args, benchUsage); err != nil {
		return err
	}
	batches, err := parseBatches(*batchFlag)
	if err != nil {
		return err
	}
	if *prefill < 1 || *prefill > maxTokens || *decode < 0 || *decode > maxTokens || *runs < 1 || *runs > maxRuns {
		return cli.Usagef("--prefill must be 1 to %d, --decode 0 to %d, --runs 1 to %d (got %d, %d, %d)",
			maxTokens, maxTokens, maxRuns, *prefill, *decode, *runs)
	}
	m, err := mf.open()
	if err != nil {
		return err
	}
	defer m.Close()
	c := m.Config
	res := benchResult{Model: mf.model, CPU: sysinfo.CPUModel(), Threads: m.Threads(), PrefillTokens: *prefill,
		DecodeTokens: *decode, Runs: *runs, Types: map[string]int{},
		SIMD: ops.SIMDLevel(), SIMDDetected: ops.SIMDDetected(), CPUFeatures: ops.CPUFeatures()}
	for _, t := range m.Header.Tensors {
		res.MappedMiB += float64(t.Size) / (1 << 20)
		res.Types[t.Type.String()]++
	}
	res.WeightBytes = m.DecodeWeightBytes()
	rng := rand.New(rand.NewPCG(1, 2))
	toks := make([]int, *prefill)
	for i := range toks {
		toks[i] = rng.IntN(c.VocabSize)
	}
	var pre, dec []float64
	// One session, reset before each run, as a server reuses a
	// conversation's slot: a new session per run would leave the last
	// one's buffers to the garbage collector and count them in the peak.
	s := m.NewSession()
	res.StateBytes = s.StateBytes()
	for range *runs {
		s.Reset()
		start := time.Now()
		logits, err := s.Prefill(toks)
		if err != nil {
			return err
		}
		pre = append(pre, float64(*prefill)/time.Since(start).Seconds())
		if *decode == 0 {
			continue
		}
		start = time.Now()
		for range *decode {
			if logits, err = s.Step(argmax(logits)); err != nil {
				return err
			}
		}
		dec = append(dec, float64(*decode)/time.Since(start).Seconds())
	}
	res.PeakRSSMiB = float64(sysinfo.PeakRSS()) / (1 << 20)
	if res.Batches, err = benchBatches(m, batches, *decode, *runs, rng); err != nil {
		return err
	}
	if len(res.Batches) > 0 {
		res.BatchCeiling, res.HeadShare = batchCeiling(m)
	}
	res.PrefillTokS = sysinfo.Summarise(pre)
	res.DecodeTokS = sysinfo.Summarise(dec)
	res.BandwidthGBs = sysinfo.MemoryBandwidth(m.Threads()) / 1e9
	res.DecodeGBs = res.DecodeTokS.Median * float64(res.WeightBytes) / 1e9
	if res.BandwidthGBs > 0 {
		res.BandwidthShare = res.DecodeGBs / res.BandwidthGBs
	}
	res.ReadGBs = readBandwidth(m.Threads()) / 1e9
	if res.ReadGBs > 0 && res.WeightBytes > 0 {
		res.ReadShare = res.DecodeGBs / res.ReadGBs
		res.BoundTokS = res.ReadGBs * 1e9 / float64(res.WeightBytes)
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	fmt.Printf("model:     %s (%s, %d layers, d=%d, vocab %d; %.1f MiB mapped; types %v)\n", mf.model, c.ModelType, c.NumLayers, c.HiddenSize, c.VocabSize, res.MappedMiB, res.Types)
	fmt.Printf("cpu:       %s, %d threads; kernels %s (widest supported %s; %s chooses; features: %s)\n",
		res.CPU, res.Threads, res.SIMD, res.SIMDDetected, ops.SIMDEnv, res.CPUFeatures)
	fmt.Printf("prefill:   %d tokens: %.1f tok/s (median of %d; %.1f-%.1f)\n", *prefill, res.PrefillTokS.Median, *runs, res.PrefillTokS.Min, res.PrefillTokS.Max)
	if *decode > 0 {
		fmt.Printf("decode:    %d tokens: %.1f tok/s (median of %d; %.1f-%.1f)\n", *decode, res.DecodeTokS.Median, *runs, res.DecodeTokS.Min, res.DecodeTokS.Max)
		fmt.Printf("bandwidth: decode reads %.1f MB/token = %.1f GB/s; the machine's copy bandwidth %.1f GB/s (share %.0f%%), read bandwidth %.1f GB/s (share %.0f%%; bound %.0f tok/s)\n",
			float64(res.WeightBytes)/1e6, res.DecodeGBs, res.BandwidthGBs, 100*res.BandwidthShare,
			res.ReadGBs, 100*res.ReadShare, res.BoundTokS)
	}
	fmt.Printf("peak RSS:  %.1f MiB (mapped weights %.1f MiB; state %.2f MiB a sequence)\n", res.PeakRSSMiB, res.MappedMiB, float64(res.StateBytes)/(1<<20))
	if len(res.Batches) > 0 {
		printBatches(res.Batches, res.PrefillTokS.Median, res.BatchCeiling, res.HeadShare)
	}
	return nil
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

// readBandwidth measures how fast threads stream 256 MiB of float32 weights
// from memory through the pool's matrix-vector product (the f32 SIMD
// kernel: one multiply-add per value read, far below its compute rate), the
// best of five passes, in bytes per second.
func readBandwidth(threads int) float64 {
	const rows, cols = 65536, 1024 // 256 MiB
	data := make([]byte, rows*cols*4)
	for i := 0; i < len(data); i += 4096 {
		data[i] = 1 // fault the pages in
	}
	w, err := ops.NewMatrix(quant.F32, rows, cols, data)
	if err != nil {
		return 0
	}
	p := ops.NewPool(threads)
	defer p.Close()
	x, dst := make([]float32, cols), make([]float32, rows)
	best := 0.0
	for range 5 {
		start := time.Now()
		p.MatVec(dst, w, x)
		if bw := float64(len(data)) / time.Since(start).Seconds(); bw > best {
			best = bw
		}
	}
	return best
}
