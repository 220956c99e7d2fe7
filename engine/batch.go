package engine

import (
	"errors"
	"fmt"
	"sync/atomic"
)

// BatchRows is the most rows (tokens, over all of a step's sessions) that
// one pass of a Batch runs; a step with more runs several passes. It bounds
// the batch's scratch memory: the work buffers hold about
// 4*(d + 4E + N) + (2 + R + 2N + 3E) floats a row.
const BatchRows = 4 * ChunkSize

// BatchItem is one session's share of a Batch.Step: the tokens it advances
// by (one for a session that is decoding, a chunk of its prompt for one
// that is prefilling) and whether it wants the logits after the last of
// them.
type BatchItem struct {
	Session    *Session
	Tokens     []int
	WantLogits bool
	// Logits is set by Step when WantLogits is: the logits after the last
	// token, valid until the batch's next Step.
	Logits []float32
}

// Batch advances several sessions of one model together: each dense
// product of a layer runs once over the rows of every session in the
// step, so the weights are read once per step instead of once per session
// (decode is bound by reading them), and B matrix-vector products become
// one matrix-matrix product. The conv, the scan and the Note Block's pools
// stay per session and run in parallel over sessions and channels. Only
// the rows whose logits are asked for go through the LM head.
//
// Each session's logits and state after a step are bit for bit what its
// own Prefill (or Step) of the same tokens gives: a product's rows do not
// depend on the other rows, and a session's conv, scan and pools see only
// its own tokens. Sessions join and leave between steps simply by being in
// a step's items or not, at any position and pool fill.
//
// A Batch is not safe for concurrent use, and a session must not be used
// elsewhere while a step that holds it runs. On the ONNX Runtime backend,
// whose graphs take one sequence a call, a step runs its sessions one
// after another (same results, no sharing of the weight reads).
type Batch struct {
	m     *Model
	p     *pass
	stamp uint64
	seqs  []seqRun
	next  []int // tokens of each item already run
	// The LM head's input rows (the last row of each item that wants
	// logits, gathered) and the item each belongs to.
	heads  []int
	logits []float32
}

// NewBatch returns an empty batch for the model's sessions.
func (m *Model) NewBatch() *Batch {
	return &Batch{m: m}
}

// batchStamp numbers the steps of all batches, so that a step can mark
// its sessions to find one given twice.
var batchStamp atomic.Uint64

// Step advances every item's session by its tokens, in one pass over the
// weights (several when the items hold more than BatchRows tokens: each
// pass takes up to ChunkSize tokens of each item in order). Every item is
// checked before anything runs: an error leaves every session unchanged.
func (b *Batch) Step(items []BatchItem) error {
	if err := b.check(items); err != nil {
		return err
	}
	if b.m.backend != nil { // one sequence a pass (DenseBlocks)
		for i := range items {
			it := &items[i]
			l, err := it.Session.Prefill(it.Tokens)
			if err != nil {
				return err
			}
			it.Logits = nil
			if it.WantLogits {
				it.Logits = l
			}
		}
		return nil
	}
	if b.p == nil {
		b.p = b.m.newPass()
	}
	V := b.m.Config.VocabSize
	nWant := 0
	for i := range items {
		items[i].Logits = nil
		if items[i].WantLogits {
			nWant++
		}
	}
	b.logits = growFloat(&b.logits, nWant*V)
	b.next = b.next[:0]
	for range items {
		b.next = append(b.next, 0)
	}
	done := 0 // items whose logits are computed
	for {
		seqs, rows := b.seqs[:0], 0
		for i := range items {
			it := &items[i]
			take := min(len(it.Tokens)-b.next[i], ChunkSize, BatchRows-rows)
			if take <= 0 {
				continue
			}
			seqs = append(seqs, seqRun{s: it.Session, tokens: it.Tokens[b.next[i] : b.next[i]+take]})
			b.next[i] += take
			rows += take
		}
		b.seqs = seqs
		if len(seqs) == 0 {
			break
		}
		b.p.forward(seqs)
		done = b.headRows(items, seqs, done)
	}
	// Drop the sessions and tokens (the batch must not keep them alive).
	clear(b.seqs[:cap(b.seqs)])
	b.p.seqs = nil
	return nil
}

// headRows runs the LM head over the last row of each of the pass's
// sequences whose item is finished and wants logits, in one product, and
// hands each item its logits (done of them were handed out before).
func (b *Batch) headRows(items []BatchItem, seqs []seqRun, done int) int {
	c, sc := b.m.Config, &b.p.s
	d, V := c.HiddenSize, c.VocabSize
	b.heads = b.heads[:0]
	k := 0
	for i := range items {
		it := &items[i]
		if !it.WantLogits || it.Logits != nil || b.next[i] != len(it.Tokens) {
			continue
		}
		// The item's last chunk ran in this pass: find its rows.
		for k < len(seqs) && seqs[k].s != it.Session {
			k++
		}
		sr := seqs[k]
		b.heads = append(b.heads, sr.off+len(sr.tokens)-1, i)
	}
	n := len(b.heads) / 2
	if n == 0 {
		return done
	}
	g := sc.buf(&sc.gathered, n*d)
	for j := range n {
		r := b.heads[2*j]
		copy(g[j*d:(j+1)*d], sc.x[r*d:(r+1)*d])
	}
	out := b.logits[done*V : (done+n)*V]
	b.p.dense.Logits(out, g, n)
	for j := range n {
		items[b.heads[2*j+1]].Logits = out[j*V : (j+1)*V : (j+1)*V]
	}
	return done + n
}

// check refuses a step whose items are not sessions of the batch's model
// with valid tokens, each session at most once.
func (b *Batch) check(items []BatchItem) error {
	if len(items) == 0 {
		return errors.New("batch: no sessions to step")
	}
	b.stamp = batchStamp.Add(1)
	for i := range items {
		s := items[i].Session
		switch {
		case s == nil:
			return fmt.Errorf("batch: item %d has no session", i)
		case s.m != b.m:
			return fmt.Errorf("batch: item %d is a session of another model", i)
		case s.stamp == b.stamp:
			return fmt.Errorf("batch: item %d's session is already in this step", i)
		}
		s.stamp = b.stamp
		if err := s.checkTokens(items[i].Tokens); err != nil {
			return fmt.Errorf("batch: item %d: %w", i, err)
		}
	}
	return nil
}
