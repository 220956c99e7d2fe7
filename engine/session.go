package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/memmamba/memmamba/format"
)

// ChunkSize is the most tokens a prefill sends through the layers at once;
// longer prompts go in chunks of this size (the state carries over, so the
// result does not depend on it). It bounds a session's scratch memory.
const ChunkSize = 128

// Session is one sequence's recurrent state (SPEC.md: per layer the conv
// window, the SSM state, the previous mixer output and the Note Block pool,
// and the position).
//
// Concurrency: a Session is not safe for concurrent use, and any number of
// sessions may be used concurrently on one Model, but the model's dense
// products run on the model's one worker pool, which takes one product at a
// time: sessions stepped from several goroutines interleave their
// products, they do not run them in parallel, and each reads all of the
// weights for its own token. Only the conv, the scan and the pool
// bookkeeping of different sessions overlap. To serve many conversations,
// step them together with a Batch: one pass over the weights advances all
// of them, each product running once over every session's rows.
type Session struct {
	m      *Model
	pos    int
	layers []layerState
	trace  *Trace
	seq    seqScratch // the session's own part of a pass: the Note Block's pool histories
	solo   *pass      // the buffers of the session's own calls, made on first use
	run    [1]seqRun
	tok    [1]int
	stamp  uint64 // the Batch.Step call that last took the session (duplicate check)
}

// layerState is SPEC.md's state of one layer.
type layerState struct {
	conv  []float32 // E x (K-1), oldest input first
	ssm   []float32 // E x N
	prevM []float32 // d: the mixer's output for the previous token
	pool  *notePool // nil for plain Mamba
}

// NewSession returns a session at position 0 (the empty state).
func (m *Model) NewSession() *Session {
	c := m.Config
	s := &Session{m: m, layers: make([]layerState, c.NumLayers)}
	for l := range s.layers {
		ls := &s.layers[l]
		ls.conv = make([]float32, c.Intermediate*(c.ConvKernel-1))
		ls.ssm = make([]float32, c.Intermediate*c.StateSize)
		ls.prevM = make([]float32, c.HiddenSize)
		if c.IsMemMamba() {
			ls.pool = newNotePool(c.Memory.PoolSize, c.Memory.SummaryDim, c.Memory.AttnDim, m.reader[l] >= 0)
		}
	}
	return s
}

// Model returns the session's model.
func (s *Session) Model() *Model { return s.m }

// Pos is the number of tokens the session has consumed.
func (s *Session) Pos() int { return s.pos }

// Reset returns the session to the empty state.
func (s *Session) Reset() {
	s.pos = 0
	for l := range s.layers {
		ls := &s.layers[l]
		clear(ls.conv)
		clear(ls.ssm)
		clear(ls.prevM)
		if ls.pool != nil {
			ls.pool.reset()
		}
	}
}

// Clone returns an independent copy of the session's state (to fork a
// conversation). The trace recorder is not copied.
func (s *Session) Clone() *Session {
	n := &Session{m: s.m, pos: s.pos, layers: make([]layerState, len(s.layers))}
	for l, ls := range s.layers {
		n.layers[l] = layerState{
			conv:  append([]float32(nil), ls.conv...),
			ssm:   append([]float32(nil), ls.ssm...),
			prevM: append([]float32(nil), ls.prevM...),
		}
		if ls.pool != nil {
			n.layers[l].pool = ls.pool.clone()
		}
	}
	return n
}

// SetTrace makes the session record its Note Block decisions into t (nil
// stops recording).
func (s *Session) SetTrace(t *Trace) {
	s.trace = t
	if t != nil && t.Layers == nil {
		t.Layers = make([][]TraceEntry, len(s.layers))
	}
}

func (s *Session) checkTokens(tokens []int) error {
	if len(tokens) == 0 {
		return fmt.Errorf("no tokens: the prompt is empty")
	}
	for i, t := range tokens {
		if t < 0 || t >= s.m.Config.VocabSize {
			return fmt.Errorf("token %d (at %d) is outside the vocabulary of %d", t, i, s.m.Config.VocabSize)
		}
	}
	return nil
}

// Step runs one token and returns the logits of the next (valid until the
// session's next call).
func (s *Session) Step(token int) ([]float32, error) {
	s.tok[0] = token // the pass keeps the tokens it runs: a literal would escape
	return s.Prefill(s.tok[:])
}

// Prefill runs tokens through the model and returns the logits after the
// last one (valid until the session's next call). Only the last position's
// logits are computed.
func (s *Session) Prefill(tokens []int) ([]float32, error) {
	if err := s.checkTokens(tokens); err != nil {
		return nil, err
	}
	p := s.pass()
	var last []float32
	for i := 0; i < len(tokens); i += ChunkSize {
		chunk := tokens[i:min(i+ChunkSize, len(tokens))]
		s.forward(p, chunk)
		if i+len(chunk) == len(tokens) {
			last = p.logits(len(chunk)-1, 1)
		}
	}
	return last, nil
}

// PrefillAll runs tokens through the model and calls fn with the logits
// after each one, in order (the slice is reused after fn returns).
func (s *Session) PrefillAll(tokens []int, fn func(i int, logits []float32) error) error {
	if err := s.checkTokens(tokens); err != nil {
		return err
	}
	V := s.m.Config.VocabSize
	p := s.pass()
	for i := 0; i < len(tokens); i += ChunkSize {
		chunk := tokens[i:min(i+ChunkSize, len(tokens))]
		s.forward(p, chunk)
		all := p.logits(0, len(chunk))
		for t := range chunk {
			if err := fn(i+t, all[t*V:(t+1)*V]); err != nil {
				return err
			}
		}
	}
	return nil
}

// pass returns the session's own pass, made on first use (a session that
// only ever runs in a Batch never needs one).
func (s *Session) pass() *pass {
	if s.solo == nil {
		s.solo = s.m.newPass()
	}
	return s.solo
}

// forward runs one chunk of tokens through the model in p.
func (s *Session) forward(p *pass, tokens []int) {
	s.run[0] = seqRun{s: s, tokens: tokens}
	p.forward(s.run[:])
	s.run[0] = seqRun{}
}

// modelID digests the configuration and every tensor's name, type, shape
// and checksum.
func modelID(f *format.File) string {
	h := sha256.New()
	h.Write(f.Header.Config.JSON())
	for _, t := range f.Tensors() {
		fmt.Fprintf(h, "\n%s %d %v %08x", t.Name, t.Type, t.Shape, t.Checksum)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// StateBytes is the memory of the session's recurrent state: per layer
// the conv window, the SSM state, the previous mixer output and the Note
// Block pool (summaries, scores, positions, and the attention keys and
// values computed once from each note). It is fixed by the model's shape:
// it does not grow with the sequence. The work memory of a pass (the
// session's own Prefill and Step, or its Batch's) comes on top.
func (s *Session) StateBytes() int {
	n := 0
	for _, ls := range s.layers {
		n += 4 * (len(ls.conv) + len(ls.ssm) + len(ls.prevM))
		if p := ls.pool; p != nil {
			n += 8*len(p.pos) + 4*(len(p.score)+len(p.summ)+len(p.tokK)+len(p.tokV)+len(p.layK)+len(p.layV))
		}
	}
	return n
}
