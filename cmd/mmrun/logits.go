package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/memmamba/memmamba/engine"
	"github.com/memmamba/memmamba/internal/cli"
	"github.com/memmamba/memmamba/internal/npy"
	"github.com/memmamba/memmamba/internal/safeio"
)

const logitsUsage = `Usage: mmrun logits -m MODEL (--ids "1 2 3" | --text T) --out FILE.npy [--trace FILE.json]

Runs the tokens from an empty state and writes the logits after every
position as a NumPy float32 array of shape [tokens, vocab]. --trace writes
the Note Block's decisions per layer and token, in the form of the
fixtures' golden traces. --step runs one token at a time instead of one
prefill (the results are the same).

Flags:
`

func logits(args []string) error {
	fs := pflag.NewFlagSet("mmrun logits", pflag.ContinueOnError)
	var mf modelFlags
	mf.register(fs)
	idsFlag := fs.String("ids", "", "token ids, separated by spaces or commas")
	text := fs.String("text", "", "text to tokenize with the model's tokenizer")
	out := fs.StringP("out", "o", "", "output .npy file (required)")
	tracePath := fs.String("trace", "", "write the Note Block decisions to this JSON file")
	step := fs.Bool("step", false, "run one token at a time instead of one prefill")
	if err := parse(fs, args, logitsUsage); err != nil {
		return err
	}
	if *out == "" {
		return cli.Usagef("--out FILE.npy is required")
	}
	if (*idsFlag == "") == (*text == "") {
		return cli.Usagef("give exactly one of --ids and --text")
	}
	if err := checkOutputs([]string{mf.model}, *out, *tracePath); err != nil {
		return err
	}
	m, err := mf.open()
	if err != nil {
		return err
	}
	defer m.Close()
	var ids []int
	if *idsFlag != "" {
		if ids, err = parseIDs(*idsFlag); err != nil {
			return cli.Usagef("--ids: %v", err)
		}
	} else {
		tok, err := m.Tokenizer()
		if err != nil {
			return err
		}
		if ids, err = tok.Encode(*text); err != nil {
			return err
		}
	}
	if err := checkLogitsSize(len(ids), m.Config.VocabSize); err != nil {
		return err
	}
	s := m.NewSession()
	var tr *engine.Trace
	if *tracePath != "" {
		tr = &engine.Trace{}
		s.SetTrace(tr)
	}
	V := m.Config.VocabSize
	all := make([]float32, 0, len(ids)*V)
	if *step {
		if len(ids) == 0 {
			return fmt.Errorf("no tokens: the prompt is empty")
		}
		for i, id := range ids {
			l, err := s.Step(id)
			if err != nil {
				return err
			}
			if err := checkLogits(l, i); err != nil {
				return err
			}
			all = append(all, l...)
		}
	} else if err := s.PrefillAll(ids, func(i int, l []float32) error {
		if err := checkLogits(l, i); err != nil {
			return err
		}
		all = append(all, l...)
		return nil
	}); err != nil {
		return err
	}
	if err := writeNPY(*out, []int{len(ids), V}, all); err != nil {
		return err
	}
	if tr != nil {
		b, err := json.MarshalIndent(tr, "", " ")
		if err != nil {
			return err
		}
		if err := safeio.WriteFile(*tracePath, append(b, '\n'), true); err != nil {
			return err
		}
	}
	return nil
}

// writeNPY writes a .npy file atomically (safeio.Create), replacing what
// was at path.
func writeNPY(path string, shape []int, data []float32) error {
	f, err := safeio.Create(path, true)
	if err != nil {
		return err
	}
	defer f.Abort()
	if err := npy.Write(f, shape, data); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Commit()
}

// parseIDs parses "1 2 3" or "1,2,3".
func parseIDs(s string) ([]int, error) {
	f := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '[' || r == ']' })
	ids := make([]int, 0, len(f))
	for _, x := range f {
		v, err := strconv.Atoi(x)
		if err != nil {
			return nil, fmt.Errorf("%q is not a token id", x)
		}
		ids = append(ids, v)
	}
	return ids, nil
}
