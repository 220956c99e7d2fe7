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

	"github.com/memmamba/memmamba/engine"
	"github.com/memmamba/memmamba/format"
	"github.com/memmamba/memmamba/internal/cli"
	"github.com/memmamba/memmamba/sample"
	"github.com/memmamba/memmamba/tokenizer"
)

const scoreUsage = `Usage: mmrun score -m MODEL FILE

Reads a text file of any length in bounded memory and reports the mean
negative log-likelihood per token (nats), the perplexity and the bits per
byte of every token after the first. Byte-level models read the file as
bytes; BPE models tokenize it line by line. With --ref MODEL2 it also runs
MODEL2 on the same tokens and reports the mean KL divergence KL(MODEL2 ||
MODEL) of the next-token distributions, the top-1 agreement and the change
in bits per byte (as llama.cpp's perplexity --kl-divergence does).

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
	// Compare is set with --ref: the model against a reference model
	// (typically the f32 conversion of the same checkpoint).
	Compare *scoreCompare `json:"compare,omitempty"`
}

type scoreCompare struct {
	MeanKL    float64 `json:"mean_kl"`
	Top1      float64 `json:"top1_agreement"`
	RefNLL    float64 `json:"ref_nll_per_token"`
	RefBPB    float64 `json:"ref_bits_per_byte"`
	BPBChange float64 `json:"bits_per_byte_change"`
}

func score(args []string) error {
	fs := pflag.NewFlagSet("mmrun score", pflag.ContinueOnError)
	var mf modelFlags
	mf.register(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	limit := fs.Int64("limit", 0, "score at most this many bytes (0: all)")
	quiet := fs.BoolP("quiet", "q", false, "no progress bar")
	refPath := fs.String("ref", "", "compare with this model (e.g. the f32 file): mean KL divergence, top-1 agreement, bits-per-byte change")
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
	var ref *engine.Model
	if *refPath != "" {
		rf := mf
		rf.model = *refPath
		if ref, err = rf.open(); err != nil {
			return err
		}
		defer ref.Close()
	}
	res, err := scoreReader(m, ref, bufio.NewReaderSize(r, 1<<16), func(done int64) { bar.Update(done, total) })
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
	if c := res.Compare; c != nil {
		fmt.Printf("vs %s: bits/byte %.4f (%+.3f%%), mean KL %.3e nats, top-1 agreement %.2f%%\n", *refPath, c.RefBPB, 100*c.BPBChange, c.MeanKL, 100*c.Top1)
	}
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

// scorer accumulates the score of predictions: the model's logits (and the
// reference model's, when comparing) before a token of nb bytes.
type scorer struct {
	res         *scoreResult
	nll, refNLL float64
	kl          float64
	agree       int
	compare     bool
	lp, lq      []float64
}

func (sc *scorer) add(l, ref []float32, next, nb int) {
	sc.nll -= sample.LogProb(l, next)
	sc.res.Bytes += int64(nb)
	sc.res.Tokens++
	if !sc.compare {
		return
	}
	sc.refNLL -= sample.LogProb(ref, next)
	// KL(ref || model) of the next-token distributions.
	sc.lp = sample.LogSoftmax(sc.lp[:0], ref)
	sc.lq = sample.LogSoftmax(sc.lq[:0], l)
	var kl float64
	for v, p := range sc.lp {
		kl += math.Exp(p) * (p - sc.lq[v])
	}
	sc.kl += kl
	if argmax(ref) == argmax(l) {
		sc.agree++
	}
}

func scoreReader(m, ref *engine.Model, r *bufio.Reader, progress func(int64)) (*scoreResult, error) {
	tok, err := m.Tokenizer()
	if err != nil {
		return nil, err
	}
	ts := &tokenStream{r: r, tok: tok, bytes: m.Header.Tokenizer.Kind != format.TokenizerHFBPE}
	s := m.NewSession()
	res := &scoreResult{}
	sc := &scorer{res: res, compare: ref != nil}
	chunk := scoreChunk
	var rs *engine.Session
	var refLogits []float32
	V := m.Config.VocabSize
	if ref != nil {
		if ref.Config.VocabSize != V {
			return nil, fmt.Errorf("--ref has a vocabulary of %d, the model %d", ref.Config.VocabSize, V)
		}
		rs = ref.NewSession()
		chunk = max(1, min(scoreChunk, (16<<20)/(4*V))) // the reference's logits of a chunk: at most 16 MiB
	}
	var prev, prevRef []float32
	start := time.Now()
	for {
		ids, nb, err := ts.next(chunk)
		if err != nil {
			return nil, err
		}
		if len(ids) == 0 {
			break
		}
		if rs != nil {
			refLogits = refLogits[:0]
			base := rs.Pos()
			if err := rs.PrefillAll(ids, func(i int, l []float32) error {
				if err := checkLogits(l, base+i); err != nil {
					return fmt.Errorf("--ref: %w", err)
				}
				refLogits = append(refLogits, l...)
				return nil
			}); err != nil {
				return nil, err
			}
		}
		if prev != nil {
			sc.add(prev, prevRef, ids[0], nb[0])
		}
		base := s.Pos()
		err = s.PrefillAll(ids, func(i int, l []float32) error {
			if err := checkLogits(l, base+i); err != nil {
				return err
			}
			var rl []float32
			if rs != nil {
				rl = refLogits[i*V : (i+1)*V]
			}
			if i+1 < len(ids) {
				sc.add(l, rl, ids[i+1], nb[i+1])
			} else {
				prev = append(prev[:0], l...)
				prevRef = append(prevRef[:0], rl...)
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
	res.NLL = sc.nll / float64(res.Tokens)
	res.Perplexity = math.Exp(res.NLL)
	if res.Bytes > 0 {
		res.BitsPerByte = sc.nll / math.Ln2 / float64(res.Bytes)
	}
	if ref != nil {
		c := &scoreCompare{
			MeanKL: sc.kl / float64(res.Tokens),
			Top1:   float64(sc.agree) / float64(res.Tokens),
			RefNLL: sc.refNLL / float64(res.Tokens),
			RefBPB: sc.refNLL / math.Ln2 / float64(res.Bytes),
		}
		c.BPBChange = res.BitsPerByte/c.RefBPB - 1
		res.Compare = c
	}
	return res, nil
}
