package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/memmamba/memmamba/engine"
	"github.com/memmamba/memmamba/internal/cli"
	"github.com/memmamba/memmamba/internal/safeio"
	"github.com/memmamba/memmamba/sample"
	"github.com/memmamba/memmamba/tokenizer"
)

const generateUsage = `Usage: mmrun generate -m MODEL -p PROMPT [-n 128] [flags]

Generates text after PROMPT and streams it to stdout; prints the prefill and
generation speed to stderr at the end. With -i, reads one prompt per line
from stdin and keeps the conversation's state between turns. With
--state-in/--state-out, a conversation continues across runs.

Flags:
`

func generate(args []string) error {
	fs := pflag.NewFlagSet("mmrun generate", pflag.ContinueOnError)
	var mf modelFlags
	mf.register(fs)
	prompt := fs.StringP("prompt", "p", "", "prompt text")
	n := fs.IntP("n-predict", "n", 128, fmt.Sprintf("tokens to generate per prompt (0 to %d)", maxTokens))
	interactive := fs.BoolP("interactive", "i", false, "read prompts from stdin, one per line, keeping the state")
	stateIn := fs.String("state-in", "", "continue from a state saved with --state-out")
	stateOut := fs.String("state-out", "", "save the state at the end")
	stops := fs.StringArray("stop", nil, "stop when the output contains this string (repeatable)")
	ignoreEOS := fs.Bool("ignore-eos", false, "do not stop at the end-of-text token")
	p := sample.DefaultParams()
	fs.Float64Var(&p.Temperature, "temp", p.Temperature, "temperature (0: greedy)")
	fs.IntVar(&p.TopK, "top-k", p.TopK, "top-k (0: off)")
	fs.Float64Var(&p.TopP, "top-p", p.TopP, "top-p (1: off)")
	fs.Float64Var(&p.MinP, "min-p", p.MinP, "min-p (0: off)")
	fs.Float64Var(&p.RepetitionPenalty, "repeat-penalty", p.RepetitionPenalty, "repetition penalty (1: off)")
	fs.IntVar(&p.RepeatLastN, "repeat-last-n", p.RepeatLastN, "tokens the repetition penalty looks back at")
	fs.Uint64Var(&p.Seed, "seed", p.Seed, "random seed (the same seed gives the same text)")
	if err := parse(fs, args, generateUsage); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return cli.Usagef("unexpected argument %q (quote the prompt and pass it with -p)", fs.Arg(0))
	}
	if *n < 0 || *n > maxTokens {
		return cli.Usagef("-n must be 0 to %d, got %d", maxTokens, *n)
	}
	if *prompt == "" && !*interactive {
		return cli.Usagef("-p PROMPT is required (or -i for prompts from stdin)")
	}
	if err := p.Validate(); err != nil {
		return cli.Usagef("%v", err)
	}
	if err := checkOutputs([]string{mf.model, *stateIn}, *stateOut); err != nil {
		return err
	}
	m, err := mf.open()
	if err != nil {
		return err
	}
	defer m.Close()
	tok, err := m.Tokenizer()
	if err != nil {
		return err
	}
	smp, err := sample.New(p, m.Config.VocabSize)
	if err != nil {
		return cli.Usagef("%v", err)
	}
	s := m.NewSession()
	if *stateIn != "" {
		// At most what Save writes for this model, checked before reading.
		blob, err := safeio.ReadFile(*stateIn, int64(m.MaxStateBlobSize()))
		if err != nil {
			return err
		}
		if err := s.Load(blob); err != nil {
			return fmt.Errorf("%s: %w", *stateIn, err)
		}
	}
	g := &generator{s: s, tok: tok, smp: smp, n: *n, stops: *stops, eos: -1, out: bufio.NewWriter(os.Stdout)}
	if !*ignoreEOS {
		g.eos = tok.Specials().EOS
	}
	if *prompt != "" {
		if err := g.turn(*prompt); err != nil {
			return err
		}
	}
	if *interactive {
		in := bufio.NewScanner(os.Stdin)
		in.Buffer(make([]byte, 1<<20), 1<<20)
		for {
			fmt.Fprint(os.Stderr, "\n> ")
			if !in.Scan() {
				break
			}
			if err := g.turn(in.Text() + "\n"); err != nil {
				return err
			}
		}
		if err := in.Err(); err != nil {
			return err
		}
	}
	g.report(os.Stderr)
	if *stateOut != "" {
		blob, err := s.Save()
		if err != nil {
			return err
		}
		if err := safeio.WriteFile(*stateOut, blob, true); err != nil {
			return err
		}
	}
	return nil
}

// generator runs turns of a conversation on one session.
type generator struct {
	s     *engine.Session
	tok   tokenizer.Tokenizer
	smp   *sample.Sampler
	n     int
	stops []string
	eos   int
	out   *bufio.Writer
	// logits after the last token, when the last turn ended without
	// consuming its sampled token.
	pending []float32

	prefillTok, genTok int
	prefillDur, genDur time.Duration
}

// turn feeds prompt and generates up to n tokens.
func (g *generator) turn(prompt string) error {
	logits := g.pending
	if prompt != "" {
		ids, err := g.tok.Encode(prompt)
		if err != nil {
			return err
		}
		if len(ids) > 0 {
			start := time.Now()
			if logits, err = g.s.Prefill(ids); err != nil {
				return err
			}
			if err := checkLogits(logits, g.s.Pos()-1); err != nil {
				return err
			}
			g.prefillDur += time.Since(start)
			g.prefillTok += len(ids)
			for _, id := range ids {
				g.smp.Accept(id)
			}
		}
	}
	if logits == nil {
		return fmt.Errorf("nothing to continue from: give a prompt")
	}
	dec := g.tok.NewStreamDecoder()
	stop := sample.NewStopMatcher(g.stops)
	start := time.Now()
	defer func() { g.genDur += time.Since(start) }()
	for i := 0; i < g.n; i++ {
		id := g.smp.Sample(logits)
		if id == g.eos {
			break
		}
		g.smp.Accept(id)
		text, stopped := stop.Push(dec.Next(id))
		g.out.WriteString(text)
		g.out.Flush()
		var err error
		if logits, err = g.s.Step(id); err != nil {
			return err
		}
		if err := checkLogits(logits, g.s.Pos()-1); err != nil {
			return err
		}
		g.genTok++
		if stopped {
			g.pending = logits
			return nil
		}
	}
	text, _ := stop.Push(dec.Flush())
	g.out.WriteString(text + stop.Flush())
	g.out.Flush()
	g.pending = logits
	return nil
}

func (g *generator) report(w io.Writer) {
	rate := func(n int, d time.Duration) float64 {
		if d <= 0 {
			return 0
		}
		return float64(n) / d.Seconds()
	}
	fmt.Fprintf(w, "\nprefill: %d tokens in %.3fs (%.1f tok/s); generation: %d tokens in %.3fs (%.1f tok/s)\n",
		g.prefillTok, g.prefillDur.Seconds(), rate(g.prefillTok, g.prefillDur),
		g.genTok, g.genDur.Seconds(), rate(g.genTok, g.genDur))
}
