package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/memmamba/memmamba/internal/cli"
	"github.com/memmamba/memmamba/passkey"
)

const passkeyUsage = `Usage: mmrun passkey -m MODEL [--lengths 1k,2k,4k,8k,16k,32k,64k] [--trials 20] [--json]

Passkey retrieval: for each prompt length (bytes; k = 1024) and trial, hides
a five-digit key at a random depth in filler text, asks for it at the end,
and counts the trials whose greedy continuation is the key. The prompts are
those of testdata/reference/data.py (seed --seed, 7 for the published ones).

Flags:
`

// parseLengths parses --lengths ("1k,4k,100"): each a positive number of
// bytes, k = 1024, at most maxPasskeyLength, at most maxPasskeyLengths of
// them; anything else is a usage error.
func parseLengths(s string) ([]int, error) {
	fields := strings.Split(s, ",")
	if len(fields) > maxPasskeyLengths {
		return nil, cli.Usagef("--lengths: %d lengths, at most %d", len(fields), maxPasskeyLengths)
	}
	var lens []int
	for _, f := range fields {
		f = strings.TrimSpace(strings.ToLower(f))
		num, mul := f, 1
		if strings.HasSuffix(num, "k") {
			num, mul = num[:len(num)-1], 1024
		}
		v, err := strconv.Atoi(num)
		if err != nil || v <= 0 {
			return nil, cli.Usagef("--lengths: %q is not a length", f)
		}
		if v > maxPasskeyLength/mul {
			return nil, cli.Usagef("--lengths: %q is above the bound of %dk bytes", f, maxPasskeyLength>>10)
		}
		lens = append(lens, v*mul)
	}
	return lens, nil
}

type passkeyLength struct {
	Length   int     `json:"length"`
	Trials   int     `json:"trials"`
	Correct  int     `json:"correct"`
	Accuracy float64 `json:"accuracy"`
	Seconds  float64 `json:"seconds"`
}

func passkeyCmd(args []string) error {
	fs := pflag.NewFlagSet("mmrun passkey", pflag.ContinueOnError)
	var mf modelFlags
	mf.register(fs)
	lengths := fs.String("lengths", "1k,2k,4k,8k,16k,32k,64k", fmt.Sprintf("prompt lengths in bytes, comma-separated (k = 1024; each at most %dk, at most %d lengths)", maxPasskeyLength>>10, maxPasskeyLengths))
	trials := fs.Int("trials", 20, fmt.Sprintf("trials per length (1 to %d)", maxTrials))
	seed := fs.Uint64("seed", passkey.EvalSeed, "seed of the prompts")
	asJSON := fs.Bool("json", false, "print JSON")
	verbose := fs.BoolP("verbose", "v", false, "print every trial's answer")
	if err := parse(fs, args, passkeyUsage); err != nil {
		return err
	}
	lens, err := parseLengths(*lengths)
	if err != nil {
		return err
	}
	if *trials < 1 || *trials > maxTrials {
		return cli.Usagef("--trials must be 1 to %d, got %d", maxTrials, *trials)
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
	var res []passkeyLength
	for _, L := range lens {
		r := passkeyLength{Length: L, Trials: *trials}
		start := time.Now()
		for trial := range *trials {
			c, err := passkey.EvalCase(L, trial, *seed)
			if err != nil {
				return cli.Usagef("%v", err)
			}
			ids, err := tok.Encode(c.Prompt)
			if err != nil {
				return err
			}
			s := m.NewSession()
			logits, err := s.Prefill(ids)
			if err != nil {
				return err
			}
			if err := checkLogits(logits, s.Pos()-1); err != nil {
				return err
			}
			want, err := tok.Encode(c.Answer)
			if err != nil {
				return err
			}
			var got []int
			for range want {
				id := argmax(logits)
				got = append(got, id)
				if logits, err = s.Step(id); err != nil {
					return err
				}
				if err := checkLogits(logits, s.Pos()-1); err != nil {
					return err
				}
			}
			ok := fmt.Sprint(got) == fmt.Sprint(want)
			if ok {
				r.Correct++
			}
			if *verbose {
				text, _ := tok.Decode(got)
				fmt.Fprintf(os.Stderr, "length %d trial %d: key%s, got %q %v\n", L, trial, c.Answer, text, ok)
			}
		}
		r.Accuracy = float64(r.Correct) / float64(r.Trials)
		r.Seconds = time.Since(start).Seconds()
		res = append(res, r)
		if !*asJSON {
			fmt.Printf("%7d bytes: %3d/%d correct (%.0f%%) in %.1fs\n", L, r.Correct, r.Trials, 100*r.Accuracy, r.Seconds)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	return nil
}
