// Command mmconvert imports Mamba and MemMamba checkpoints into the
// project's model file, inspects and verifies model files, and exports
// them to GGUF. Its commands (`mmconvert --help` gives the flags):
//
//	mmconvert [flags] INPUT -o OUTPUT     convert (INPUT: folder or weights file)
//	mmconvert [flags] --to gguf INPUT -o OUTPUT.gguf
//	                                      export to GGUF for llama.cpp
//	mmconvert --synthetic SHAPE -o OUTPUT write a random-weight model
//	mmconvert inspect [--json] FILE       show a model file
//	mmconvert verify FILE                 check every checksum
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/memmamba/memmamba/convert"
	"github.com/memmamba/memmamba/format"
	"github.com/memmamba/memmamba/internal/cli"
	"github.com/memmamba/memmamba/internal/safeio"
	"github.com/memmamba/memmamba/quant"
)

const name = "mmconvert"

func main() {
	cli.Main(name, run)
}

func run(args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "inspect":
			return inspect(args[1:])
		case "verify":
			return verify(args[1:])
		}
	}
	return withFlags(convertCmd(args))
}

// withFlags words the library errors that one of mmconvert's flags answers
// with that flag: an output file that exists (safeio.ErrOutputExists:
// --force), a non-finite weight (convert.NonFiniteError:
// --allow-nonfinite). Other errors, and nil, pass as they are.
func withFlags(err error) error {
	var nf *convert.NonFiniteError
	switch {
	case errors.Is(err, safeio.ErrOutputExists):
		return fmt.Errorf("%w (overwriting needs --force)", err)
	case errors.As(err, &nf):
		return fmt.Errorf("%w (--allow-nonfinite converts it anyway)", err)
	}
	return err
}

const convertUsage = `Usage: mmconvert [flags] INPUT -o OUTPUT
       mmconvert inspect [--json] FILE
       mmconvert verify FILE

Converts a checkpoint (a Hugging Face style folder with config.json, or one
weights file: .safetensors, model.safetensors.index.json, pytorch_model.bin,
.pt, .pth, .gguf, .onnx) into a model file for mmrun (--to mmq, the default)
or into GGUF (--to gguf).

Every file it reads must be a regular file (a FIFO or device is refused);
config.json may hold 16 MiB, tokenizer.json 64 MiB. The tokenizer is loaded
as mmrun loads it, and a NaN or infinite weight is refused by tensor and
index (--allow-nonfinite keeps it where the type can hold it: f32, or a
copy of the checkpoint's own type). The output may not be one of the files
read; its folder must exist and be writable. The file is written to a
temporary ".NAME.*.tmp" beside it, verified, then renamed; SIGINT and
SIGTERM remove the temporary file.

Exit codes: 0 ok; 1 bad input, or an internal error; 2 bad usage (an output
that is an input included); 130 after SIGINT, 143 after SIGTERM.

Flags:
`

func convertCmd(args []string) error {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SortFlags = false
	out := fs.StringP("output", "o", "", "output file (required)")
	typ := fs.StringP("type", "t", "f32", "type of the matrices: f32, f16, bf16, int8, int4")
	keep := fs.StringArray("keep", nil, "keep tensors matching this name glob in f32 (repeatable)")
	to := fs.String("to", "mmq", "output format: mmq (mmrun's model file) or gguf")
	force := fs.BoolP("force", "f", false, "overwrite an existing output file")
	quiet := fs.BoolP("quiet", "q", false, "print nothing but errors; no progress bar")
	synthetic := fs.String("synthetic", "", "write a random-weight model of this shape instead of converting ("+strings.Join(convert.SyntheticShapeNames(), ", ")+")")
	seed := fs.Uint64("seed", 1, "seed of --synthetic's weights")
	allowNonFinite := fs.Bool("allow-nonfinite", false, "convert weights holding NaN or infinite values instead of refusing them")
	fs.Usage = func() {
		fmt.Fprint(os.Stderr, convertUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == pflag.ErrHelp {
			return err
		}
		return cli.Usagef("%v", err)
	}
	if *synthetic == "" && fs.NArg() != 1 {
		return cli.Usagef("want one INPUT, got %d arguments", fs.NArg())
	}
	if *synthetic != "" && fs.NArg() != 0 {
		return cli.Usagef("--synthetic takes no INPUT")
	}
	if *out == "" {
		return cli.Usagef("-o OUTPUT is required")
	}
	t, err := quant.ParseType(*typ)
	if err != nil {
		return cli.Usagef("--type: %v", err)
	}
	pol := convert.Policy{Type: t, Keep: *keep, AllowNonFinite: *allowNonFinite}
	if err := pol.Validate(); err != nil {
		var kg *convert.KeepGlobError
		if errors.As(err, &kg) {
			return cli.Usagef("--keep %q: %v", kg.Glob, kg.Err)
		}
		return cli.Usagef("%v", err)
	}
	if *to != "mmq" && *to != "gguf" {
		return cli.Usagef("--to must be mmq or gguf, got %q", *to)
	}
	// Before anything is read: the output is not the input, and it can be
	// written (its folder exists and is writable; no file there without
	// --force). convert.Write checks it against every file read, too.
	if *synthetic == "" {
		if err := safeio.NotInput(*out, fs.Arg(0)); err != nil {
			return err
		}
	}
	if err := safeio.CheckOutput(*out, *force); err != nil {
		return err
	}
	bar := cli.NewProgress("converting", *quiet)
	opts := convert.Options{Policy: pol, Force: *force, Progress: bar.Update}
	start := time.Now()
	var in *convert.Input
	if *synthetic != "" {
		if in, err = convert.SyntheticInput(*synthetic, *seed); err != nil {
			return cli.Usagef("%v", err)
		}
	} else if in, err = convert.OpenInput(fs.Arg(0)); err != nil {
		return err
	}
	defer in.Close()
	var rep *convert.Report
	if *to == "gguf" {
		rep, err = convert.WriteGGUF(in, *out, opts)
	} else {
		rep, err = convert.Write(in, *out, opts)
	}
	bar.Done()
	if err != nil {
		return err
	}
	if !*quiet {
		printReport(rep, time.Since(start))
	}
	return nil
}

func printReport(r *convert.Report, took time.Duration) {
	c := r.Config
	fmt.Printf("%s: %s model, %d layers, d=%d, vocab %d (from %s)\n", r.Output, c.ModelType, c.NumLayers, c.HiddenSize, c.VocabSize, r.Form)
	byType := map[quant.Type][]string{}
	for _, t := range r.Tensors {
		byType[t.To] = append(byType[t.To], t.Name)
	}
	reasons := map[string]int{}
	for _, t := range r.Tensors {
		if t.To != quant.F32 {
			continue
		}
		reason := t.Reason
		if t.KeptBy != "" {
			reason = "kept by --keep " + t.KeptBy
		}
		reasons[reason]++
	}
	for _, t := range quant.Types {
		if n := len(byType[t]); n > 0 {
			fmt.Printf("  %-5s %4d tensors\n", t, n)
		}
	}
	if len(byType) > 1 || (len(byType) == 1 && byType[quant.F32] == nil) {
		var parts []string
		for reason, n := range reasons {
			parts = append(parts, fmt.Sprintf("%d %s", n, reason))
		}
		sort.Strings(parts)
		fmt.Printf("  kept in f32: %s\n", strings.Join(parts, ", "))
	}
	if r.DroppedTiedHead {
		fmt.Println("  lm_head.weight equals the tied embeddings: not stored twice")
	}
	if len(r.Unknown) > 0 {
		fmt.Printf("  ignored %d tensors that are not part of the model: %s\n", len(r.Unknown), strings.Join(r.Unknown, ", "))
	}
	mb := func(b int64) float64 { return float64(b) / (1 << 20) }
	fmt.Printf("  %.1f MiB -> %.1f MiB in %.2fs (%.0f MB/s)\n", mb(r.SourceBytes), mb(r.OutputBytes), took.Seconds(),
		float64(r.SourceBytes)/1e6/max(took.Seconds(), 1e-9))
}

func inspect(args []string) error {
	fs := pflag.NewFlagSet(name+" inspect", pflag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		if err == pflag.ErrHelp {
			return err
		}
		return cli.Usagef("%v", err)
	}
	if fs.NArg() != 1 {
		return cli.Usagef("inspect takes one FILE")
	}
	f, err := format.Open(fs.Arg(0), format.OpenOptions{})
	if err != nil {
		return err
	}
	defer f.Close()
	h := f.Header
	if *asJSON {
		type tensor struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Shape []int  `json:"shape"`
			Bytes uint64 `json:"bytes"`
		}
		doc := struct {
			File      string              `json:"file"`
			Version   string              `json:"version"`
			Config    any                 `json:"config"`
			Tokenizer map[string]any      `json:"tokenizer"`
			Sources   []format.SourceFile `json:"sources"`
			Converter string              `json:"converter"`
			Created   time.Time           `json:"created"`
			Synthetic bool                `json:"synthetic"`
			Metadata  map[string]string   `json:"metadata"`
			Tensors   []tensor            `json:"tensors"`
		}{File: f.Name, Version: fmt.Sprintf("%d.%d", f.Major, f.Minor), Config: h.Config,
			Tokenizer: map[string]any{"kind": h.Tokenizer.Kind, "json_bytes": len(h.Tokenizer.JSON)},
			Sources:   h.Provenance.Sources, Converter: h.Provenance.Converter, Created: h.Provenance.Created,
			Synthetic: h.Provenance.Synthetic, Metadata: h.Metadata}
		for _, t := range h.Tensors {
			doc.Tensors = append(doc.Tensors, tensor{t.Name, t.Type.String(), t.Shape, t.Size})
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(doc)
	}
	c := h.Config
	fmt.Printf("file:       %s (format %d.%d)\n", f.Name, f.Major, f.Minor)
	fmt.Printf("model:      %s, %d layers, hidden %d, inner %d, state %d, conv %d, dt rank %d, vocab %d, tied %v\n",
		c.ModelType, c.NumLayers, c.HiddenSize, c.Intermediate, c.StateSize, c.ConvKernel, c.TimeStepRank, c.VocabSize, c.TieEmbeddings)
	if m := c.Memory; m != nil {
		fmt.Printf("memory:     pool %d (%s), summary %d, score %d, attn %d x %d heads, tau %.3g/%.3g, cross-layer every %d\n",
			m.PoolSize, m.Eviction, m.SummaryDim, m.ScoreDim, m.AttnDim, m.NumHeads, m.TauNote, m.TauRetrieve, m.CrossLayerEvery)
	}
	tok := h.Tokenizer.Kind
	if len(h.Tokenizer.JSON) > 0 {
		tok += fmt.Sprintf(" (tokenizer.json, %d bytes)", len(h.Tokenizer.JSON))
	}
	fmt.Printf("tokenizer:  %s\n", tok)
	fmt.Printf("chat:       %s\n", chatTemplateLine(h.Metadata))
	fmt.Printf("converter:  %s, %s", h.Provenance.Converter, h.Provenance.Created.UTC().Format(time.RFC3339))
	if h.Provenance.Synthetic {
		fmt.Print(", SYNTHETIC (random weights)")
	}
	fmt.Println()
	for _, s := range h.Provenance.Sources {
		fmt.Printf("source:     %s sha256:%s\n", s.Path, s.SHA256)
	}
	var total uint64
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nTENSOR\tTYPE\tSHAPE\tBYTES")
	for _, t := range h.Tensors {
		fmt.Fprintf(tw, "%s\t%s\t%v\t%d\n", t.Name, t.Type, t.Shape, t.Size)
		total += t.Size
	}
	tw.Flush()
	fmt.Printf("%d tensors, %.2f MiB\n", len(h.Tensors), float64(total)/(1<<20))
	return nil
}

// chatTemplateLine says whether a model file carries a chat template (the
// one mmrun serve renders chat messages with) and which special tokens it
// names, or that serve falls back to its plain template.
func chatTemplateLine(meta map[string]string) string {
	t := meta[convert.MetaChatTemplate]
	if t == "" {
		return "no chat template (mmrun serve uses its plain template)"
	}
	line := fmt.Sprintf("chat template carried (%d bytes", len(t))
	for _, k := range []string{convert.MetaBOSToken, convert.MetaEOSToken} {
		if v, ok := meta[k]; ok {
			line += fmt.Sprintf(", %s %q", k, v)
		}
	}
	return line + ")"
}

func verify(args []string) error {
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(os.Stderr, "Usage: mmconvert verify FILE\n\nChecks the header and every tensor's checksum.")
			return pflag.ErrHelp
		}
		return cli.Usagef("verify takes one FILE")
	}
	if err := format.VerifyModel(args[0]); err != nil {
		return err
	}
	fmt.Printf("%s: OK\n", filepath.Clean(args[0]))
	return nil
}
