// Command mmrun runs a MemMamba or Mamba model file (written by mmconvert).
// Its commands (`mmrun COMMAND --help` gives each one's flags):
//
//	mmrun generate -m MODEL -p PROMPT [-n 128] [sampling flags] [-i]
//	mmrun logits   -m MODEL (--ids "1 2 3" | --text T) --out FILE.npy [--trace FILE.json]
//	mmrun score    -m MODEL FILE
//	mmrun tokenize (-m MODEL | --tokenizer tokenizer.json) [--text T | FILE] [--json]
//	mmrun detokenize (-m MODEL | --tokenizer tokenizer.json) [--ids "1 2 3" | FILE]
//	mmrun bench    -m MODEL [--prefill 512] [--decode 128] [--runs 5] [--batch 1,4,16,32] [--json]
//	mmrun passkey  -m MODEL [--lengths 1k,2k,4k,8k,16k,32k,64k] [--trials 20] [--json]
//	mmrun serve    -m MODEL [--host 127.0.0.1] [--port 8080] [--parallel N]
//	mmrun trace    -m MODEL (--text T | FILE) --html REPORT.html [--json TRACE.json]
//	mmrun memory   -m MODEL [-m MODEL2 ...] FILE [--html OUT.html] [--json OUT.json]
//
// generate streams text from a prompt; logits writes every position's
// logits (and the Note Block trace); score gives a text's negative
// log-likelihood, perplexity and bits per byte; tokenize and detokenize
// convert between text and token ids; bench measures prefill and decode
// speed, memory and bandwidth; passkey measures passkey-retrieval accuracy
// by prompt length; serve answers an OpenAI-compatible HTTP API; trace
// writes an HTML report of what the Note Blocks do with a text; memory
// draws memory-decay curves of one or more models.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/pflag"

	"github.com/memmamba/memmamba/engine"
	"github.com/memmamba/memmamba/engine/ortbackend" // registers --backend ort
	"github.com/memmamba/memmamba/internal/cli"
	"github.com/memmamba/memmamba/internal/safeio"
)

const name = "mmrun"

type command struct {
	run   func(args []string) error
	about string
}

var commands = map[string]command{
	"generate":   {generate, "generate text from a prompt (streams to stdout)"},
	"logits":     {logits, "write the logits of every position as a .npy file"},
	"score":      {score, "negative log-likelihood, perplexity and bits per byte of a text file"},
	"tokenize":   {tokenize, "print the token ids of a text"},
	"detokenize": {detokenize, "print the text of token ids"},
	"bench":      {bench, "measure prefill and decode speed, memory and bandwidth"},
	"passkey":    {passkeyCmd, "passkey retrieval accuracy by prompt length"},
	"serve":      {serve, "serve the model over an OpenAI-compatible HTTP API"},
	"trace":      {traceCmd, "an HTML report of what the Note Blocks do with a text"},
	"memory":     {memoryCmd, "memory-decay curves of one or more models (HTML and JSON)"},
}

func main() {
	cli.Main(name, run)
}

// Bounds of the flags that size work, so that a typo cannot ask for
// terabytes: each is a usage error (exit 2) past its bound, and the
// commands' usage texts and the README name them.
const (
	// maxTokens bounds bench's --prefill and --decode and generate's -n.
	maxTokens = 1 << 20
	// maxThreads bounds --threads and --ort-threads.
	maxThreads = 1024
	// maxRuns bounds bench's --runs.
	maxRuns = 1000
	// maxTrials bounds passkey's --trials.
	maxTrials = 10000
	// maxPasskeyLength bounds each of passkey's --lengths, in bytes
	// (16M = 16384k), and maxPasskeyLengths their number.
	maxPasskeyLength  = 16 << 20
	maxPasskeyLengths = 64
	// maxInputBytes bounds the text or ids tokenize and detokenize read
	// from FILE or stdin.
	maxInputBytes = 256 << 20
)

// maxLogitsBytes bounds the array mmrun logits holds and writes (tokens x
// vocabulary float32s).
const maxLogitsBytes = 4 << 30

// checkLogitsSize refuses, before the model runs, a logits array above
// maxLogitsBytes: 100k tokens of a 50k vocabulary would be 20 GB.
func checkLogitsSize(tokens, vocab int) error {
	if b := int64(tokens) * int64(vocab) * 4; b > maxLogitsBytes {
		return cli.Usagef("the logits of %d tokens x %d vocabulary entries take %.1f GiB, above the bound of %d GiB: give fewer tokens",
			tokens, vocab, float64(b)/(1<<30), maxLogitsBytes>>30)
	}
	return nil
}

// exitCodes is the end of every command's usage text.
const exitCodes = `
Exit codes: 0 ok; 1 bad input, or an internal error; 2 bad usage (a flag
out of its bounds, an output that is an input); 130 after SIGINT, 143 after
SIGTERM. Models, tokenizers and states must be regular files.
`

func usage() string {
	var b strings.Builder
	b.WriteString("Usage: mmrun COMMAND [flags]\n\nRuns a model file written by mmconvert, natively in Go.\n\nCommands:\n")
	var names []string
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "  %-11s %s\n", n, commands[n].about)
	}
	b.WriteString("\nRun 'mmrun COMMAND --help' for a command's flags.\n")
	b.WriteString(exitCodes)
	return b.String()
}

func run(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage())
		return cli.Usagef("no command given")
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(os.Stdout, usage())
		return nil
	}
	c, ok := commands[args[0]]
	if !ok {
		return cli.Usagef("unknown command %q (want generate, logits, score, tokenize, detokenize, bench, passkey, serve, trace or memory)", args[0])
	}
	return c.run(args[1:])
}

// modelFlags are the flags every model-running command takes.
type modelFlags struct {
	model      string
	threads    int
	backend    string
	verify     bool
	ortLib     string
	ortThreads int
	ortNoPack  bool
	maxMemMiB  int64
}

func (m *modelFlags) register(fs *pflag.FlagSet) {
	fs.StringVarP(&m.model, "model", "m", "", "model file (from mmconvert)")
	m.registerRest(fs)
}

// registerRest registers every model flag but -m (for commands that take
// several models).
func (m *modelFlags) registerRest(fs *pflag.FlagSet) {
	fs.IntVarP(&m.threads, "threads", "t", 0, fmt.Sprintf("worker threads (0: all cores; at most %d)", maxThreads))
	fs.StringVar(&m.backend, "backend", "native", "dense blocks on: native (Go) or ort (ONNX Runtime; install with make ort)")
	fs.BoolVar(&m.verify, "verify", false, "check every tensor's checksum at load")
	fs.StringVar(&m.ortLib, "ort-lib", "", "path of libonnxruntime.so.1 (default: $MMRUN_ORT_LIB, then the project's third_party/onnxruntime)")
	fs.IntVar(&m.ortThreads, "ort-threads", 0, "ONNX Runtime intra-op threads (0: --threads)")
	fs.BoolVar(&m.ortNoPack, "ort-disable-prepacking", false, "keep ONNX Runtime from copying weights into its own layouts")
	fs.Int64Var(&m.maxMemMiB, "max-memory", 0, "refuse a model that needs more than this many MiB with one session (0: the machine's memory)")
}

func (m *modelFlags) open() (*engine.Model, error) {
	if m.model == "" {
		return nil, cli.Usagef("-m MODEL is required")
	}
	if m.backend != "native" && m.backend != "ort" {
		return nil, cli.Usagef("--backend must be native or ort, got %q", m.backend)
	}
	if m.threads < 0 || m.ortThreads < 0 || m.threads > maxThreads || m.ortThreads > maxThreads {
		return nil, cli.Usagef("--threads and --ort-threads must be between 0 and %d, got %d and %d", maxThreads, m.threads, m.ortThreads)
	}
	if m.maxMemMiB < 0 || m.maxMemMiB > 1<<30 {
		return nil, cli.Usagef("--max-memory must be between 0 and %d MiB, got %d", 1<<30, m.maxMemMiB)
	}
	if m.ortLib != "" {
		// dlopen of a FIFO would block like any open.
		if err := safeio.CheckRegular(m.ortLib); err != nil {
			return nil, fmt.Errorf("--ort-lib: %w", err)
		}
	}
	return engine.Open(m.model, engine.Options{Threads: m.threads, VerifyChecksums: m.verify, Backend: m.backend,
		MaxMemory:      m.maxMemMiB << 20,
		BackendOptions: ortbackend.Options{Lib: m.ortLib, Threads: m.ortThreads, DisablePrepacking: m.ortNoPack}})
}

// checkOutputs checks, before the model runs, every output path given
// (empty ones are skipped): none is the same file as an input (the model,
// a state read back), no two are the same path, and each one's folder
// exists and is writable. The outputs are then written atomically
// (safeio.WriteFile), replacing what was there.
func checkOutputs(inputs []string, outputs ...string) error {
	seen := map[string]string{}
	for _, out := range outputs {
		if out == "" {
			continue
		}
		if err := safeio.NotInput(out, inputs...); err != nil {
			return err
		}
		abs, err := filepath.Abs(out)
		if err != nil {
			return err
		}
		if prev, ok := seen[abs]; ok {
			return cli.Usagef("two outputs name the same file: %s and %s", prev, out)
		}
		seen[abs] = out
		if err := safeio.CheckOutput(out, true); err != nil {
			return err
		}
	}
	return nil
}

// parse parses flags, mapping pflag's errors to usage errors.
func parse(fs *pflag.FlagSet, args []string, usage string) error {
	fs.SortFlags = false
	fs.Usage = func() {
		fmt.Fprint(os.Stderr, usage)
		fs.PrintDefaults()
		fmt.Fprint(os.Stderr, exitCodes)
	}
	if err := fs.Parse(args); err != nil {
		if err == pflag.ErrHelp {
			return err
		}
		return cli.Usagef("%v", err)
	}
	return nil
}
