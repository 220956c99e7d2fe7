package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/memmamba/memmamba/engine"
	"github.com/memmamba/memmamba/sample"
	"github.com/memmamba/memmamba/tokenizer"
)

// genRequest is one generation handed to the scheduler: the prompt's
// tokens and how to sample after them. The handler that made it waits on
// res; ctx is the HTTP request's context, so a client that goes away
// cancels the generation.
type genRequest struct {
	ctx       context.Context
	prompt    []int
	params    sample.Params
	maxTokens int
	stops     []string
	eos       int // -1: none
	logprobs  int // alternatives per token to report; -1: no logprobs
	// start, when set, is the state after prompt[:startLen] (a saved
	// state), used unless the cache holds a longer prefix.
	start    *engine.Session
	startLen int
	// saveOnly ends the request after its prompt, handing the state to
	// res.state instead of generating.
	saveOnly bool
	res      *result
	queued   time.Time
}

// result is where the scheduler leaves a generation's text for its
// handler: pieces of text in order, then the end. The scheduler never
// blocks on it (a slow client cannot stall the batch); the handler is
// woken through notify, a channel of one slot that holds at most one
// pending wake-up.
type result struct {
	mu         sync.Mutex
	pieces     []piece
	done       bool
	finish     string // "stop" or "length"
	err        error
	cached     int             // prompt tokens taken from the state cache
	completion int             // tokens generated
	state      *engine.Session // a saveOnly request's state after its prompt
	notify     chan struct{}
}

// piece is generated text and, when asked, the log-probabilities of the
// tokens it completes (a token whose text is held back, as the possible
// start of a stop string, comes with the next piece).
type piece struct {
	text string
	lps  []tokenLogprob
}

func newResult() *result { return &result{notify: make(chan struct{}, 1)} }

// wake signals the handler without blocking.
func (r *result) wake() {
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

// push adds generated text and its tokens' log-probabilities.
func (r *result) push(text string, lps []tokenLogprob) {
	if text == "" && len(lps) == 0 {
		return
	}
	r.mu.Lock()
	r.pieces = append(r.pieces, piece{text, lps})
	r.mu.Unlock()
	r.wake()
}

// end marks the generation finished with reason (or failed with err).
func (r *result) end(reason string, completion int, err error) {
	r.mu.Lock()
	if !r.done {
		r.done, r.finish, r.completion, r.err = true, reason, completion, err
	}
	r.mu.Unlock()
	r.wake()
}

// setCached records the prompt tokens the cache supplied.
func (r *result) setCached(n int) {
	r.mu.Lock()
	r.cached = n
	r.mu.Unlock()
}

// take returns the text pieces arrived since the last take and whether
// the generation has ended.
func (r *result) take() ([]piece, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.pieces
	r.pieces = nil
	return p, r.done
}

// errShutdown ends the generations still running when the server closes.
var errShutdown = errors.New("the server is shutting down")

// seq is one sequence of the running batch.
type seq struct {
	req        *genRequest
	sess       *engine.Session
	smp        *sample.Sampler
	dec        *tokenizer.StreamDecoder
	stop       *sample.StopMatcher
	fed        []int // tokens the session has consumed: the prompt, then the generated ones
	prefilling bool  // the prompt is not all fed yet
	next       [1]int
	generated  int
	logits     []float32      // the last logits (owned by the batch until the next step)
	lps        []tokenLogprob // log-probabilities not yet pushed with their text
	finished   bool
	lastToken  time.Time
}

// scheduler owns the model's Batch and the state cache, and runs every
// generation: at each step boundary it admits queued requests (up to
// parallel sequences), then runs one Batch.Step holding one token of each
// decoding sequence and a chunk of the prompt of each prefilling one, and
// samples the next token of every sequence whose logits came back.
type scheduler struct {
	m          *engine.Model
	batch      *engine.Batch
	cache      *stateCache
	met        *metrics
	parallel   int
	chunk      int
	cacheEvery int
	queue      chan *genRequest
	quit       chan struct{}
	done       chan struct{}
	closeOnce  sync.Once
	active     []*seq
	items      []engine.BatchItem
	stepped    []*seq // the sequence of each item
	turn       int    // rotates which prefilling sequence goes first
	tok        tokenizer.Tokenizer
}

// newScheduler starts the scheduler's goroutine; close stops it.
func newScheduler(m *engine.Model, tok tokenizer.Tokenizer, cfg Config, met *metrics) *scheduler {
	s := &scheduler{
		m: m, batch: m.NewBatch(), tok: tok, met: met,
		cache:    newStateCache(cfg.StateCacheBytes),
		parallel: cfg.Parallel, chunk: cfg.PrefillChunk, cacheEvery: cfg.CacheEvery,
		queue: make(chan *genRequest, cfg.QueueSize),
		quit:  make(chan struct{}), done: make(chan struct{}),
	}
	go s.run()
	return s
}

// submit queues r, or reports false when the queue is full.
func (s *scheduler) submit(r *genRequest) bool {
	select {
	case <-s.quit:
		return false
	default:
	}
	select {
	case s.queue <- r:
		s.met.queue.Set(float64(len(s.queue)))
		return true
	default:
		return false
	}
}

// close stops the scheduler: every generation still queued or running
// ends with errShutdown. It returns once the goroutine has exited.
func (s *scheduler) close() {
	s.closeOnce.Do(func() { close(s.quit) })
	<-s.done
}

// run is the scheduler's loop.
func (s *scheduler) run() {
	defer close(s.done)
	for {
		if len(s.active) == 0 {
			select {
			case r := <-s.queue:
				s.admit(r)
			case <-s.quit:
				s.shutdown()
				return
			}
		}
	fill:
		for len(s.active) < s.parallel {
			select {
			case r := <-s.queue:
				s.admit(r)
			default:
				break fill
			}
		}
		s.met.queue.Set(float64(len(s.queue)))
		select {
		case <-s.quit:
			s.shutdown()
			return
		default:
		}
		s.dropCancelled()
		if len(s.active) > 0 {
			s.step()
		}
	}
}

// shutdown ends every queued and running generation.
func (s *scheduler) shutdown() {
	for _, q := range s.active {
		q.req.res.end("", q.generated, errShutdown)
	}
	s.active = nil
	for {
		select {
		case r := <-s.queue:
			r.res.end("", 0, errShutdown)
		default:
			s.met.queue.Set(0)
			s.met.active.Set(0)
			return
		}
	}
}

// admit starts r: from the longest cached prefix of its prompt when there
// is one, else from the empty state.
func (s *scheduler) admit(r *genRequest) {
	if err := r.ctx.Err(); err != nil {
		r.res.end("", 0, err)
		return
	}
	smp, err := sample.New(r.params, s.m.Config.VocabSize)
	if err != nil {
		r.res.end("", 0, err)
		return
	}
	for _, id := range r.prompt {
		smp.Accept(id) // as mmrun generate: the prompt counts for the repetition penalty
	}
	sess, cached, logits := s.cache.lookup(r.prompt)
	if r.start != nil && cached < r.startLen {
		sess, cached, logits = r.start, r.startLen, nil
	}
	if sess == nil {
		sess = s.m.NewSession()
	}
	r.res.setCached(cached)
	s.met.cachedTokens.Add(float64(cached))
	q := &seq{
		req: r, sess: sess, smp: smp, dec: s.tok.NewStreamDecoder(), stop: sample.NewStopMatcher(r.stops),
		fed: slices.Clone(r.prompt[:cached]), prefilling: cached < len(r.prompt),
	}
	s.active = append(s.active, q)
	if !q.prefilling {
		s.sampleNext(q, logits)
		s.retire()
	}
}

// finishSave ends a saveOnly request at the end of its prompt: its
// handler gets a copy of the state.
func (s *scheduler) finishSave(q *seq, logits []float32) {
	q.logits = logits
	q.finished = true
	r := q.req
	r.res.mu.Lock()
	r.res.state = q.sess.Clone()
	r.res.mu.Unlock()
	r.res.end("length", 0, nil)
}

// dropCancelled removes the sequences whose client has gone (their slot
// is free for the next step).
func (s *scheduler) dropCancelled() {
	kept := s.active[:0]
	for _, q := range s.active {
		if err := q.req.ctx.Err(); err != nil {
			q.req.res.end("", q.generated, err)
			s.met.cancelled.Inc()
			continue
		}
		kept = append(kept, q)
	}
	clear(s.active[len(kept):])
	s.active = kept
	s.met.active.Set(float64(len(s.active)))
}

// chunkOf returns the prompt tokens q feeds in this step: at most chunk
// (and limit) of them, ending at the next --cache-every boundary so that the state there
// can be cached, and whether the step needs the logits after them (the
// prompt's end, or a boundary to cache).
func (s *scheduler) chunkOf(q *seq, limit int) ([]int, bool) {
	prompt, at := q.req.prompt, len(q.fed)
	end := min(at+min(s.chunk, limit), len(prompt))
	every := s.cacheEvery
	if s.cache.budget <= 0 {
		every = 0
	}
	if every > 0 {
		if b := (at/every + 1) * every; b < end {
			end = b
		}
	}
	want := end == len(prompt) || (every > 0 && end%every == 0)
	return prompt[at:end], want
}

// step runs one Batch.Step and moves each sequence in it on: every
// decoding sequence gives its one token; the prefilling ones give chunks of
// their prompts, up to a step of engine.BatchRows tokens in all (at least
// one chunk), taken in turn from step to step, so that long prompts
// arriving together do not stretch the decoders' step to several passes.
func (s *scheduler) step() {
	items, stepped := s.items[:0], s.stepped[:0]
	rows := 0
	var pre []*seq
	for _, q := range s.active {
		if q.prefilling {
			pre = append(pre, q)
			continue
		}
		items = append(items, engine.BatchItem{Session: q.sess, Tokens: q.next[:], WantLogits: true})
		stepped = append(stepped, q)
		rows++
	}
	budget := max(engine.BatchRows-rows, s.chunk)
	for k := range pre {
		if budget <= 0 {
			break
		}
		q := pre[(s.turn+k)%len(pre)]
		it := engine.BatchItem{Session: q.sess}
		it.Tokens, it.WantLogits = s.chunkOf(q, budget)
		budget -= len(it.Tokens)
		rows += len(it.Tokens)
		items = append(items, it)
		stepped = append(stepped, q)
	}
	s.turn++
	s.items, s.stepped = items, stepped
	start := time.Now()
	err := s.batch.Step(items)
	s.met.stepSeconds.Observe(time.Since(start).Seconds())
	s.met.batchSize.Observe(float64(len(items)))
	s.met.batchRows.Observe(float64(rows))
	if err != nil {
		// Every item is checked before anything runs; this is a bug.
		for _, q := range s.active {
			q.req.res.end("", q.generated, fmt.Errorf("batch step: %w", err))
		}
		s.active = s.active[:0]
		return
	}
	for i, q := range stepped {
		it := &items[i]
		q.fed = append(q.fed, it.Tokens...)
		if q.prefilling {
			s.met.promptTokens.Add(float64(len(it.Tokens)))
			if it.Logits == nil {
				continue
			}
			s.cache.put(q.fed, q.sess.Clone(), it.Logits)
			if len(q.fed) < len(q.req.prompt) {
				continue // a --cache-every checkpoint inside the prompt
			}
			q.prefilling = false
		}
		s.sampleNext(q, it.Logits)
	}
	clear(items)
	clear(stepped)
	s.retire()
	s.met.cacheEntries.Set(float64(s.cache.len()))
	s.met.cacheBytes.Set(float64(s.cache.size()))
}

// sampleNext samples q's next token from logits and streams its text, or
// finishes q (end of text, a stop string, max_tokens): the same steps as
// mmrun generate's loop.
func (s *scheduler) sampleNext(q *seq, logits []float32) {
	if q.req.saveOnly {
		s.finishSave(q, logits)
		return
	}
	q.logits = logits
	r := q.req
	finish := func(reason string) {
		if reason != "stop" || !q.stop.Stopped() {
			text, _ := q.stop.Push(q.dec.Flush())
			text += q.stop.Flush()
			r.res.push(text, q.lps)
		} else {
			r.res.push("", q.lps)
		}
		q.lps = nil
		q.finished = true
		r.res.end(reason, q.generated, nil)
	}
	if q.generated >= r.maxTokens {
		finish("length")
		return
	}
	id := q.smp.Sample(logits)
	if id == r.eos {
		finish("stop")
		return
	}
	q.smp.Accept(id)
	q.generated++
	if r.logprobs >= 0 {
		q.lps = append(q.lps, logprobsOf(logits, id, r.logprobs, s.tok))
	}
	s.met.completionTokens.Inc()
	now := time.Now()
	if q.generated == 1 {
		s.met.ttft.Observe(now.Sub(r.queued).Seconds())
	} else {
		s.met.itl.Observe(now.Sub(q.lastToken).Seconds())
	}
	q.lastToken = now
	text, stopped := q.stop.Push(q.dec.Next(id))
	if text != "" {
		r.res.push(text, q.lps)
		q.lps = nil
	}
	if stopped {
		finish("stop")
		return
	}
	if q.generated >= r.maxTokens {
		finish("length")
		return
	}
	q.next[0] = id
}

// retire removes the finished sequences, caching the state each ends in
// (the prompt and the generated tokens it consumed) under those tokens.
func (s *scheduler) retire() {
	kept := s.active[:0]
	for _, q := range s.active {
		if !q.finished {
			kept = append(kept, q)
			continue
		}
		// A clone, not the session itself: a session that has run holds
		// work buffers (the Note Block's pool histories) beside its state,
		// which the cache's budget does not count.
		s.cache.put(q.fed, q.sess.Clone(), q.logits)
		q.logits = nil
	}
	clear(s.active[len(kept):])
	s.active = kept
	s.met.active.Set(float64(len(s.active)))
}
