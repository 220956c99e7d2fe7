package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/memmamba/memmamba/internal/cli"
	"github.com/memmamba/memmamba/internal/safeio"
	"github.com/memmamba/memmamba/tokenizer"
)

const tokenizeUsage = `Usage: mmrun tokenize (-m MODEL | --tokenizer tokenizer.json) [--text T | FILE] [--json]

Prints the token ids of a text (from --text, FILE, or stdin: at most 256
MiB), as the model sees them. --json prints each token's id, piece and byte
offsets. --tokenizer must be a regular file of at most 64 MiB.

Flags:
`

const detokenizeUsage = `Usage: mmrun detokenize (-m MODEL | --tokenizer tokenizer.json) [--ids "1 2 3" | FILE]

Prints the text of token ids (from --ids, FILE, or stdin).

Flags:
`

// loadTokenizer returns the tokenizer of -m MODEL or of --tokenizer FILE.
func loadTokenizer(mf *modelFlags, path string) (tokenizer.Tokenizer, func(), error) {
	switch {
	case mf.model != "" && path != "":
		return nil, nil, cli.Usagef("give -m MODEL or --tokenizer FILE, not both")
	case path != "":
		// A regular file of at most 64 MiB: /dev/zero or a FIFO is refused
		// before anything is read.
		b, err := safeio.ReadFile(path, safeio.MaxTokenizerBytes)
		if err != nil {
			return nil, nil, err
		}
		t, err := tokenizer.FromJSON(b)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		return t, func() {}, nil
	case mf.model != "":
		m, err := mf.open()
		if err != nil {
			return nil, nil, err
		}
		t, err := m.Tokenizer()
		if err != nil {
			m.Close()
			return nil, nil, err
		}
		return t, func() { m.Close() }, nil
	}
	return nil, nil, cli.Usagef("give -m MODEL or --tokenizer tokenizer.json")
}

// input returns --text, the FILE argument, or stdin, reading at most
// maxInputBytes (FILE may be a pipe: <(...) is a text like any other).
func input(fs *pflag.FlagSet, text string) (string, error) {
	switch {
	case text != "" && fs.NArg() > 0:
		return "", cli.Usagef("give --text or FILE, not both")
	case text != "":
		return text, nil
	case fs.NArg() == 1:
		f, err := os.Open(fs.Arg(0))
		if err != nil {
			return "", err
		}
		defer f.Close()
		return readBounded(f, fs.Arg(0))
	case fs.NArg() > 1:
		return "", cli.Usagef("too many arguments")
	}
	return readBounded(os.Stdin, "stdin")
}

// readBounded reads r whole, refusing more than maxInputBytes.
func readBounded(r io.Reader, name string) (string, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxInputBytes+1))
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	if len(b) > maxInputBytes {
		return "", fmt.Errorf("%s: more than %d bytes of input (the limit)", name, maxInputBytes)
	}
	return string(b), nil
}

func tokenize(args []string) error {
	fs := pflag.NewFlagSet("mmrun tokenize", pflag.ContinueOnError)
	var mf modelFlags
	mf.register(fs)
	tokPath := fs.String("tokenizer", "", "a Hugging Face tokenizer.json")
	text := fs.String("text", "", "the text")
	asJSON := fs.Bool("json", false, "print ids, pieces and offsets as JSON")
	if err := parse(fs, args, tokenizeUsage); err != nil {
		return err
	}
	tok, done, err := loadTokenizer(&mf, *tokPath)
	if err != nil {
		return err
	}
	defer done()
	s, err := input(fs, *text)
	if err != nil {
		return err
	}
	toks, err := tok.EncodeWithOffsets(s)
	if err != nil {
		return err
	}
	if *asJSON {
		type item struct {
			ID    int    `json:"id"`
			Piece string `json:"piece"`
			Start int    `json:"start"`
			End   int    `json:"end"`
		}
		out := make([]item, len(toks))
		for i, t := range toks {
			out[i] = item{t.ID, t.Piece, t.Start, t.End}
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetEscapeHTML(false)
		return enc.Encode(out)
	}
	ids := make([]string, len(toks))
	for i, t := range toks {
		ids[i] = fmt.Sprint(t.ID)
	}
	fmt.Println(strings.Join(ids, " "))
	return nil
}

func detokenize(args []string) error {
	fs := pflag.NewFlagSet("mmrun detokenize", pflag.ContinueOnError)
	var mf modelFlags
	mf.register(fs)
	tokPath := fs.String("tokenizer", "", "a Hugging Face tokenizer.json")
	idsFlag := fs.String("ids", "", "token ids, separated by spaces or commas")
	if err := parse(fs, args, detokenizeUsage); err != nil {
		return err
	}
	tok, done, err := loadTokenizer(&mf, *tokPath)
	if err != nil {
		return err
	}
	defer done()
	s, err := input(fs, *idsFlag)
	if err != nil {
		return err
	}
	ids, err := parseIDs(s)
	if err != nil {
		return err
	}
	text, err := tok.Decode(ids)
	if err != nil {
		return err
	}
	fmt.Print(text)
	return nil
}
