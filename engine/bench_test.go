package engine

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/memmamba/memmamba/convert"
	"github.com/memmamba/memmamba/quant"
)

var (
	synthMu    sync.Mutex
	synthFiles = map[string]string{}
	synthDir   string
)

// syntheticModel writes (once per test binary) a random-weight model of a
// named shape (convert.SyntheticShapes) and type.
func syntheticModel(b testing.TB, shape string, typ quant.Type) *Model {
	b.Helper()
	synthMu.Lock()
	defer synthMu.Unlock()
	key := shape + "." + typ.String()
	path, ok := synthFiles[key]
	if !ok {
		if synthDir == "" {
			d, err := osMkdirTemp()
			if err != nil {
				b.Fatal(err)
			}
			synthDir = d
		}
		in, err := convert.SyntheticInput(shape, 1)
		if err != nil {
			b.Fatal(err)
		}
		path = filepath.Join(synthDir, key+".mmq")
		if _, err := convert.Write(in, path, convert.Options{Policy: convert.Policy{Type: typ}, Created: time.Unix(0, 0)}); err != nil {
			b.Fatal(err)
		}
		synthFiles[key] = path
	}
	m, err := Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	return m
}

// BenchmarkDecode measures one-token steps (tok/s; allocations per token).
//
//	go test -run '^$' -bench 'Decode/mamba-130m' ./runtime
func BenchmarkDecode(b *testing.B) {
	for _, shape := range []string{"mamba-tiny", "memmamba-tiny", "mamba-130m", "memmamba-130m"} {
		for _, typ := range []quant.Type{quant.F32, quant.F16, quant.Q8_0, quant.Q4_0} {
			b.Run(fmt.Sprintf("%s/%s", shape, typ), func(b *testing.B) {
				m := syntheticModel(b, shape, typ)
				s := m.NewSession()
				if _, err := s.Prefill([]int{1, 2, 3, 4}); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				tok := 5
				n := 0
				for b.Loop() {
					if _, err := s.Step(tok); err != nil {
						b.Fatal(err)
					}
					tok = (tok*7 + 3) % m.Config.VocabSize
					n++
				}
				b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "tok/s")
			})
		}
	}
}

// BenchmarkPrefill measures a 512-token prefill from an empty state.
//
//	go test -run '^$' -bench 'Prefill/mamba-130m' ./runtime
func BenchmarkPrefill(b *testing.B) {
	for _, shape := range []string{"mamba-tiny", "memmamba-tiny", "mamba-130m", "memmamba-130m"} {
		for _, typ := range []quant.Type{quant.F32, quant.Q8_0} {
			b.Run(fmt.Sprintf("%s/%s", shape, typ), func(b *testing.B) {
				m := syntheticModel(b, shape, typ)
				toks := longTokens(512, m.Config.VocabSize, 1)
				b.ReportAllocs()
				n := 0
				for b.Loop() {
					s := m.NewSession()
					if _, err := s.Prefill(toks); err != nil {
						b.Fatal(err)
					}
					n += len(toks)
				}
				b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "tok/s")
			})
		}
	}
}

// BenchmarkBatchDecode measures batched decode steps: B sessions, each
// prefilled with 32 tokens, advanced one token each per Batch.Step
// (aggregate tok/s over the batch, tok/s of each sequence, allocations per
// step).
//
//	go test -run '^$' -bench 'BatchDecode/mamba-130m/int8' ./runtime
func BenchmarkBatchDecode(b *testing.B) {
	for _, shape := range []string{"mamba-tiny", "memmamba-tiny", "mamba-130m", "memmamba-130m"} {
		for _, typ := range []quant.Type{quant.F32, quant.F16, quant.Q8_0} {
			for _, B := range []int{1, 4, 16} {
				b.Run(fmt.Sprintf("%s/%s/B=%d", shape, typ, B), func(b *testing.B) {
					m := syntheticModel(b, shape, typ)
					batch := m.NewBatch()
					items := make([]BatchItem, B)
					for i := range items {
						items[i] = BatchItem{Session: m.NewSession(), Tokens: longTokens(32, m.Config.VocabSize, uint64(i)), WantLogits: true}
					}
					if err := batch.Step(items); err != nil {
						b.Fatal(err)
					}
					toks := make([][1]int, B)
					for i := range items {
						items[i].Tokens = toks[i][:]
					}
					b.ReportAllocs()
					b.SetBytes(m.DecodeWeightBytes())
					steps := 0
					for b.Loop() {
						for i := range items {
							toks[i][0] = (steps*7 + i*13 + 3) % m.Config.VocabSize
						}
						if err := batch.Step(items); err != nil {
							b.Fatal(err)
						}
						steps++
					}
					sec := b.Elapsed().Seconds()
					b.ReportMetric(float64(steps*B)/sec, "tok/s")
					b.ReportMetric(float64(steps)/sec, "seq-tok/s")
				})
			}
		}
	}
}
