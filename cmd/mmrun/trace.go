package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"

	"github.com/memmamba/memmamba/engine"
	"github.com/memmamba/memmamba/internal/cli"
	"github.com/memmamba/memmamba/internal/safeio"
	"github.com/memmamba/memmamba/report"
	"github.com/memmamba/memmamba/tokenizer"
)

const traceUsage = `Usage: mmrun trace -m MODEL (--text T | FILE) --html REPORT.html [--json TRACE.json]

Runs a MemMamba model over a text from an empty state and writes what its
Note Blocks did as one self-contained HTML file (no network: inline CSS,
JavaScript and SVG): the text coloured by each layer's importance or
trigger (a page of 2000 tokens at a time, a layer selector; hover a token
for its values, click one for the pool at that position), the notes taken,
dropped and evicted, the pool's contents over positions, the retrieval
trigger, plots of importance and trigger along the text, and a summary per
layer (note rate, pool turnover, retrieval rate). --json writes the same
data as JSON (per layer: importance, trigger, flags = action in bits 0-1
(0 skip, 1 note, 2 evict, 3 drop) | 4 retrieved | 8 cross-layer | 16
triggered, the evicted positions in order, the summary). A plain Mamba
model has no Note Blocks: trace says so and exits 1 (mmrun memory measures
any model's memory). At most 262144 tokens.

Flags:
`

// maxTraceTokens bounds the text mmrun trace runs (its report keeps about
// 10 bytes per token and layer, and the HTML a few MB per 64k tokens).
const maxTraceTokens = 1 << 18

// traceChunk is the number of tokens run between two reads of the trace
// recorder, which keeps every pool's positions per token: the report's
// compact form replaces them chunk by chunk.
const traceChunk = 4096

func traceCmd(args []string) error {
	fs := pflag.NewFlagSet("mmrun trace", pflag.ContinueOnError)
	var mf modelFlags
	mf.register(fs)
	text := fs.String("text", "", "the text to trace (instead of FILE)")
	htmlOut := fs.String("html", "", "write the HTML report to this file")
	jsonOut := fs.String("json", "", "write the trace report's data to this JSON file")
	quiet := fs.BoolP("quiet", "q", false, "print nothing but errors")
	if err := parse(fs, args, traceUsage); err != nil {
		return err
	}
	if (fs.NArg() == 1) == (*text != "") || fs.NArg() > 1 {
		return cli.Usagef("give exactly one of --text and FILE")
	}
	if *htmlOut == "" && *jsonOut == "" {
		return cli.Usagef("give --html REPORT.html (or --json TRACE.json)")
	}
	inputs := []string{mf.model}
	source := "--text"
	if fs.NArg() == 1 {
		source = fs.Arg(0)
		inputs = append(inputs, source)
	}
	if err := checkOutputs(inputs, *htmlOut, *jsonOut); err != nil {
		return err
	}
	m, err := mf.open()
	if err != nil {
		return err
	}
	defer m.Close()
	c := m.Config
	if !c.IsMemMamba() {
		return fmt.Errorf("%s is a plain %s model without Note Blocks: there is nothing to trace (mmrun memory measures its memory)", mf.model, c.ModelType)
	}
	if source != "--text" {
		b, err := safeio.ReadFile(source, maxInputBytes)
		if err != nil {
			return err
		}
		*text = string(b)
	}
	tok, err := m.Tokenizer()
	if err != nil {
		return err
	}
	ids, err := tok.Encode(*text)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return fmt.Errorf("no tokens: the text is empty")
	}
	if len(ids) > maxTraceTokens {
		return cli.Usagef("the text has %d tokens, above trace's bound of %d: give a shorter one", len(ids), maxTraceTokens)
	}
	start := time.Now()
	rep, err := buildTrace(m, tok, ids, filepath.Base(mf.model), filepath.Base(source))
	if err != nil {
		return err
	}
	ran := time.Since(start)
	if *jsonOut != "" {
		b, err := json.Marshal(rep)
		if err != nil {
			return err
		}
		if err := safeio.WriteFile(*jsonOut, append(b, '\n'), true); err != nil {
			return err
		}
	}
	if *htmlOut != "" {
		t0 := time.Now()
		var buf bytes.Buffer
		if err := report.WriteTraceHTML(&buf, rep); err != nil {
			return err
		}
		if err := safeio.WriteFile(*htmlOut, buf.Bytes(), true); err != nil {
			return err
		}
		if !*quiet {
			fmt.Printf("%s: %d tokens, %d layers; ran in %.1fs, rendered %.1f MB in %.2fs\n", *htmlOut, rep.Tokens, len(rep.Layer),
				ran.Seconds(), float64(buf.Len())/1e6, time.Since(t0).Seconds())
		}
	}
	if !*quiet {
		for _, L := range rep.Layer {
			s := L.Summary
			fmt.Printf("layer %d: noted %d (%.1f%%), evictions %d (turnover %.4f/token), dropped %d, retrieved %d (%.1f%%), pool at end %d\n",
				L.Index, s.Noted, 100*s.NoteRate, s.Evictions, s.Turnover, s.Dropped, s.Retrieved, 100*s.RetrievalRate, s.PoolAtEnd)
		}
	}
	return nil
}

// buildTrace runs ids through m from an empty state, traceChunk tokens at
// a time, and collects the report's data.
func buildTrace(m *engine.Model, tok tokenizer.Tokenizer, ids []int, model, source string) (*report.Trace, error) {
	c := m.Config
	mem := c.Memory
	cross := make([]bool, c.NumLayers)
	for l := range cross {
		cross[l] = c.HasCrossLayer(l)
	}
	rep := report.NewTrace(report.Meta{Model: model, ModelType: c.ModelType, Layers: c.NumLayers, PoolSize: mem.PoolSize,
		TauNote: mem.TauNote, TauRetrieve: mem.TauRetrieve, Eviction: mem.Eviction, CrossLayerEvery: mem.CrossLayerEvery,
		Source: source}, cross)
	texts := tokenTexts(tok, ids)
	s := m.NewSession()
	for i := 0; i < len(ids); i += traceChunk {
		chunk := ids[i:min(i+traceChunk, len(ids))]
		tr := &engine.Trace{}
		s.SetTrace(tr)
		if _, err := s.Prefill(chunk); err != nil {
			return nil, err
		}
		if err := rep.Add(chunk, texts[i:i+len(chunk)], tr); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// tokenTexts is each token's text: what a stream decoder prints when the
// token arrives (a character split over tokens goes with its last one; what
// is left at the end, with the last token).
func tokenTexts(tok tokenizer.Tokenizer, ids []int) []string {
	d := tok.NewStreamDecoder()
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = d.Next(id)
	}
	if len(out) > 0 {
		out[len(out)-1] += d.Flush()
	}
	return out
}
