package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/memmamba/memmamba/format"
	"github.com/memmamba/memmamba/internal/cli"
	"github.com/memmamba/memmamba/runtime"
	"github.com/memmamba/memmamba/tokenizer"
)

const scoreUsage = `Usage: mmrun score -m MODEL FILE

Reads a text file of any length in bounded memory and reports the mean
negative log-likelihood per token (nats), the perplexity and the bits per
byte of every token after the first. Byte-level models read the file as
bytes; BPE models tokenize it line by line.

Flags:
`

// scoreChunk is the number of tokens scored per prefill call.
const scoreChunk = 512

type scoreResult struct {
	File        string  `json:"file"`
	Tokens      int     `json:"tokens"`
	Bytes       int64   `json:"bytes"`
	NLL         float64 `json:"nll_per_token"`
	Perplexity  float64 `json:"perplexity"`
	BitsPerByte float64 `json:"bits_per_byte"`
	Seconds     float64 `json:"seconds"`
	TokPerSec   float64 `json:"tokens_per_second"`
}

func score(args []string) error {
	fs := pflag.NewFlagSet("mmrun score", pflag.ContinueOnError)
	var mf modelFlags
	mf.register(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	limit := fs.Int64("limit", 0, "score at most this many bytes (0: all)")
	quiet := fs.BoolP("quiet", "q", false, "no progress bar")
	if err := parse(fs, args, scoreUsage); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return cli.Usagef("score takes one FILE")
	}
	m, err := mf.open()
	if err != nil {
		return err
	}
	defer m.Close()
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	defer f.Close()
	st, _ := f.Stat()
	var r io.Reader = f
	total := st.Size()
	if *limit > 0 {
		r = io.LimitReader(f, *limit)
		total = min(total, *limit)
	}
	bar := cli.NewProgress("scoring", *quiet)
	res, err := scoreReader(m, bufio.NewReaderSize(r, 1<<16), func(done int64) { bar.Update(done, total) })
	bar.Done()
	if err != nil {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	}
	res.File = fs.Arg(0)
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(res)
	}
	fmt.Printf("%s: %d tokens, %d bytes scored\n", res.File, res.Tokens, res.Bytes)
	fmt.Printf("nll/token %.4f nats, perplexity %.4g, bits/byte %.4f (%.1f tok/s)\n", res.NLL, res.Perplexity, res.BitsPerByte, res.TokPerSec)
	return nil
}

// tokenStream yields tokens with the number of text bytes each covers.
type tokenStream struct {
	r     *bufio.Reader
	tok   tokenizer.Tokenizer
	bytes bool
	read  int64
	buf   []int
	nb    []int
}

func (ts *tokenStream) next(maxN int) ([]int, []int, error) {
	ts.buf, ts.nb = ts.buf[:0], ts.nb[:0]
	for len(ts.buf) < maxN {
		if ts.bytes {
			c, err := ts.r.ReadByte()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, nil, err
			}
			ts.read++
			ts.buf, ts.nb = append(ts.buf, int(c)), append(ts.nb, 1)
			continue
		}
		line, err := ts.r.ReadString('\n')
		ts.read += int64(len(line))
		if len(line) > 0 {
			toks, terr := ts.tok.EncodeWithOffsets(line)
			if terr != nil {
				return nil, nil, terr
			}
			for _, t := range toks {
				ts.buf, ts.nb = append(ts.buf, t.ID), append(ts.nb, t.End-t.Start)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, err
		}
	}
	return ts.buf, ts.nb, nil
}

func scoreReader(m *runtime.Model, r *bufio.Reader, progress func(int64)) (*scoreResult, error) {
	tok, err := m.Tokenizer()
	if err != nil {
		return nil, err
	}
	ts := &tokenStream{r: r, tok: tok, bytes: m.Header.Tokenizer.Kind != format.TokenizerHFBPE}
	s := m.NewSession()
	res := &scoreResult{}
	var nll float64
	var prev []float32
	start := time.Now()
	for {
		ids, nb, err := ts.next(scoreChunk)
		if err != nil {
			return nil, err
		}
		if len(ids) == 0 {
			break
		}
		if prev != nil {
			nll -= logProb(prev, ids[0])
			res.Bytes += int64(nb[0])
			res.Tokens++
		}
		err = s.PrefillAll(ids, func(i int, l []float32) error {
			if i+1 < len(ids) {
				nll -= logProb(l, ids[i+1])
				res.Bytes += int64(nb[i+1])
				res.Tokens++
			} else {
				prev = append(prev[:0], l...)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		progress(ts.read)
	}
	if res.Tokens == 0 {
		return nil, fmt.Errorf("fewer than two tokens: nothing to score")
	}
	res.Seconds = time.Since(start).Seconds()
	res.TokPerSec = float64(res.Tokens+1) / res.Seconds
	res.NLL = nll / float64(res.Tokens)
	res.Perplexity = math.Exp(res.NLL)
	if res.Bytes > 0 {
		res.BitsPerByte = nll / math.Ln2 / float64(res.Bytes)
	}
	return res, nil
}

// logProb is log softmax(l)[id], in float64.
func logProb(l []float32, id int) float64 {
	mx := math.Inf(-1)
	for _, v := range l {
		mx = math.Max(mx, float64(v))
	}
	var sum float64
	for _, v := range l {
		sum += math.Exp(float64(v) - mx)
	}
	return float64(l[id]) - mx - math.Log(sum)
}
