package runtime

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

// Session is one sequence's recurrent state and the scratch memory to
// advance it. A Session is not safe for concurrent use; any number of
// sessions may run concurrently on one Model.
type Session struct {
	m      *Model
	pos    int
	layers []layerState
	trace  *Trace
	dense  dense
	s      scratch
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
	s.dense = m.newDense(s)
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
	n.dense = s.m.newDense(n)
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
	return s.Prefill([]int{token})
}

// Prefill runs tokens through the model and returns the logits after the
// last one (valid until the session's next call). Only the last position's
// logits are computed.
func (s *Session) Prefill(tokens []int) ([]float32, error) {
	if err := s.checkTokens(tokens); err != nil {
		return nil, err
	}
	var last []float32
	for i := 0; i < len(tokens); i += ChunkSize {
		chunk := tokens[i:min(i+ChunkSize, len(tokens))]
		s.forward(chunk)
		if i+len(chunk) == len(tokens) {
			last = s.logits(len(chunk)-1, 1)
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
	for i := 0; i < len(tokens); i += ChunkSize {
		chunk := tokens[i:min(i+ChunkSize, len(tokens))]
		s.forward(chunk)
		all := s.logits(0, len(chunk))
		for t := range chunk {
			if err := fn(i+t, all[t*V:(t+1)*V]); err != nil {
				return err
			}
		}
	}
	return nil
}

// logits computes the logits of n rows of the last chunk's output starting
// at row t0.
func (s *Session) logits(t0, n int) []float32 {
	c, sc := s.m.Config, &s.s
	d, V := c.HiddenSize, c.VocabSize
	out := sc.buf(&sc.logits, n*V)
	s.dense.logits(out, sc.x[t0*d:(t0+n)*d], n)
	return out
}

// scratch holds a session's work buffers, grown to the largest chunk seen.
type scratch struct {
	x, xz, a, z, c, dbc, B, C, dt, y, mix []float32
	logits                                []float32
	note                                  noteScratch
}

// buf returns *p resized to n values, growing it when needed.
func (sc *scratch) buf(p *[]float32, n int) []float32 {
	if cap(*p) < n {
		*p = make([]float32, n)
	}
	*p = (*p)[:n]
	return *p
}

// forward runs one chunk of tokens through every layer; afterwards sc.x
// holds the last layer's output for each token. The dense blocks run in
// s.dense (native Go or ONNX Runtime); the embedding lookup, the conv, the
// scan and the Note Block's pools run here.
func (s *Session) forward(tokens []int) {
	m, c, sc := s.m, s.m.Config, &s.s
	T := len(tokens)
	d, E, N, K, R := c.HiddenSize, c.Intermediate, c.StateSize, c.ConvKernel, c.TimeStepRank
	x := sc.buf(&sc.x, T*d)
	for t, tok := range tokens {
		m.emb.DequantRow(x[t*d:(t+1)*d], tok)
	}
	xz := sc.buf(&sc.xz, T*2*E)
	a := sc.buf(&sc.a, T*E)
	z := sc.buf(&sc.z, T*E)
	cv := sc.buf(&sc.c, T*E)
	dbc := sc.buf(&sc.dbc, T*(R+2*N))
	B := sc.buf(&sc.B, T*N)
	C := sc.buf(&sc.C, T*N)
	dt := sc.buf(&sc.dt, T*E)
	y := sc.buf(&sc.y, T*E)
	mix := sc.buf(&sc.mix, T*d)
	for l := range m.layers {
		lw, ls := &m.layers[l], &s.layers[l]
		w := &lw.mixer
		if f, ok := s.dense.(stepFuser); ok && T == 1 {
			// The same steps, the conv and the scan fused into the
			// products before them.
			f.mixerInStep(l, xz, x, cv, ls.conv)
			f.ssmStep(l, dbc, dt, y, cv, xz[E:], ls.ssm)
		} else {
			// 1-2. [a; z] = W_in RMSNorm(x) (+ b_in)
			s.dense.mixerIn(l, xz, x, T)
			for t := range T {
				row := xz[t*2*E : (t+1)*2*E]
				copy(a[t*E:(t+1)*E], row[:E])
				copy(z[t*E:(t+1)*E], row[E:])
			}
			// conv, a' = silu(c)
			m.pool.ConvSiLU(cv, ls.conv, a, w.convW, w.convB, E, K, T)
			// [delta; B; C] = W_x a', dt = softplus(W_dt delta + b_dt)
			s.dense.ssmIn(l, dbc, dt, cv, T)
			for t := range T {
				row := dbc[t*(R+2*N) : (t+1)*(R+2*N)]
				copy(B[t*N:(t+1)*N], row[R:R+N])
				copy(C[t*N:(t+1)*N], row[R+N:])
			}
			// scan, y = (sum_n h C + D a') * silu(z)
			m.pool.Scan(y, ls.ssm, dt, w.A, B, C, cv, w.D, z, E, N, T)
		}
		// 3. m = W_out y (+ b_out); x = r = x + m
		s.dense.mixerOut(l, mix, x, y, ls.prevM, T)
		// 4. Note Block: x = r + c_tok + c_lay
		if lw.note != nil {
			s.noteBlock(l, x, mix, T)
		}
		copy(ls.prevM, mix[(T-1)*d:T*d])
	}
	s.pos += T
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
