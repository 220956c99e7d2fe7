package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/memmamba/memmamba/internal/cli"
	"github.com/memmamba/memmamba/internal/safeio"
	"github.com/memmamba/memmamba/memdecay"
	"github.com/memmamba/memmamba/report"
)

const memoryUsage = `Usage: mmrun memory -m MODEL [-m MODEL2 ...] FILE [--html OUT.html] [--json OUT.json]

Measures how long each model remembers a token (Mamba and MemMamba alike):
for sampled positions t of the first N tokens of FILE (--context, default
4 x --max-k) and, per position, --replacements tokens drawn from FILE's
own tokens that differ from the one at t, the mean KL(clean || perturbed)
of the next-token distributions at t+k, for k = 1, 2, 4, ... up to
--max-k. Each position costs one clean and one perturbed run of max-k+1
tokens per replacement from a copy of the state at t. The draws are
seeded (--seed; math/rand/v2 PCG), so the same models, text and flags give
the same curves. --html draws every model's curve in one plot (log-log),
--json writes the numbers; the table goes to stdout. The README's "Memory
decay" section defines the measure.

Flags:
`

// Bounds of memory's flags.
const (
	maxMemoryK       = 1 << 16
	maxMemorySamples = 10000
	maxMemoryRepl    = 100
	maxMemoryContext = 1 << 22
)

func memoryCmd(args []string) error {
	fs := pflag.NewFlagSet("mmrun memory", pflag.ContinueOnError)
	var mf modelFlags
	models := fs.StringArrayP("model", "m", nil, "model file (from mmconvert); repeat for more models in one plot")
	mf.registerRest(fs)
	maxK := fs.Int("max-k", memdecay.DefaultMaxK, fmt.Sprintf("the largest distance k (at most %d)", maxMemoryK))
	samples := fs.Int("samples", memdecay.DefaultSamples, fmt.Sprintf("positions t sampled (at most %d)", maxMemorySamples))
	repl := fs.Int("replacements", memdecay.DefaultReplacements, fmt.Sprintf("replacement tokens per position (at most %d)", maxMemoryRepl))
	seed := fs.Uint64("seed", memdecay.DefaultSeed, "seed of the draws")
	ctx := fs.Int("context", 0, fmt.Sprintf("tokens of FILE to draw from (0: 4 x --max-k; at most %d)", maxMemoryContext))
	htmlOut := fs.String("html", "", "write the plot and the numbers to this HTML file")
	jsonOut := fs.String("json", "", "write the curves to this JSON file")
	quiet := fs.BoolP("quiet", "q", false, "no progress and no table")
	if err := parse(fs, args, memoryUsage); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return cli.Usagef("memory takes one FILE")
	}
	if len(*models) == 0 {
		return cli.Usagef("-m MODEL is required")
	}
	if *maxK < 1 || *maxK > maxMemoryK || *samples < 1 || *samples > maxMemorySamples ||
		*repl < 1 || *repl > maxMemoryRepl || *ctx < 0 || *ctx > maxMemoryContext {
		return cli.Usagef("--max-k must be 1..%d, --samples 1..%d, --replacements 1..%d and --context 0..%d",
			maxMemoryK, maxMemorySamples, maxMemoryRepl, maxMemoryContext)
	}
	file := fs.Arg(0)
	if err := checkOutputs(append(append([]string{}, *models...), file), *htmlOut, *jsonOut); err != nil {
		return err
	}
	text, err := safeio.ReadFile(file, maxInputBytes)
	if err != nil {
		return err
	}
	var curves []*memdecay.Curve
	for _, path := range *models {
		one := mf
		one.model = path
		c, err := measureOne(one, string(text), memdecay.Options{MaxK: *maxK, Samples: *samples, Replacements: *repl,
			Seed: *seed, Context: *ctx}, *quiet)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		c.Source = filepath.Base(file)
		curves = append(curves, c)
	}
	if *jsonOut != "" {
		b, err := json.MarshalIndent(map[string]any{"curves": curves}, "", " ")
		if err != nil {
			return err
		}
		if err := safeio.WriteFile(*jsonOut, append(b, '\n'), true); err != nil {
			return err
		}
	}
	if *htmlOut != "" {
		var buf bytes.Buffer
		if err := report.WriteMemoryHTML(&buf, curves); err != nil {
			return err
		}
		if err := safeio.WriteFile(*htmlOut, buf.Bytes(), true); err != nil {
			return err
		}
	}
	if !*quiet {
		fmt.Printf("mean KL (nats) at distance k; seed %d, %d positions x %d replacements\n%8s", *seed, *samples, *repl, "k")
		for _, c := range curves {
			fmt.Printf(" %22s", c.Model)
		}
		fmt.Println()
		for i, k := range curves[0].K {
			fmt.Printf("%8d", k)
			for _, c := range curves {
				fmt.Printf(" %12.4g ± %7.2g", c.MeanKL[i], c.StdErr[i])
			}
			fmt.Println()
		}
		for _, c := range curves {
			fmt.Printf("%s: %d tokens run in %.1fs\n", c.Model, c.TokensRun, c.Seconds)
		}
	}
	return nil
}

func measureOne(mf modelFlags, text string, o memdecay.Options, quiet bool) (*memdecay.Curve, error) {
	m, err := mf.open()
	if err != nil {
		return nil, err
	}
	defer m.Close()
	tok, err := m.Tokenizer()
	if err != nil {
		return nil, err
	}
	ids, err := tok.Encode(text)
	if err != nil {
		return nil, err
	}
	name := filepath.Base(mf.model)
	bar := cli.NewProgress(name, quiet)
	o.Progress = func(done, total int) { bar.Update(int64(done), int64(total)) }
	c, err := memdecay.Measure(m, ids, o)
	bar.Done()
	if err != nil {
		return nil, err
	}
	c.Model = name
	return c, nil
}
