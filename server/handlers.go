package server

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/memmamba/memmamba/sample"
)

// authorized checks "Authorization: Bearer KEY" in constant time (always
// true without Config.APIKey).
func (s *Server) authorized(r *http.Request) bool {
	if s.cfg.APIKey == "" {
		return true
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.APIKey)) == 1
}

// generation is a request ready for the scheduler.
type generation struct {
	ids       []int
	params    sample.Params
	maxTokens int
	stops     []string
	eos       int
	logprobs  int // -1: none
	start     *savedState
	saveOnly  bool
}

// prepare checks the prompt's ids and resolves the sampling fields.
func (s *Server) prepare(r *http.Request, f *samplingFields, ids []int, defMax int, extraStops []string) (*generation, *apiError) {
	p, n, e := f.options(defMax, s.cfg.MaxTokens, randomSeed)
	if e != nil {
		return nil, e
	}
	if len(ids) == 0 {
		return nil, badRequest("prompt", "the prompt is empty (no tokens)")
	}
	var start *savedState
	if f.State != "" {
		if start, e = s.loadState(f.State); e != nil {
			return nil, e
		}
		// The continuation is encoded on its own: a BOS the tokenizer
		// put at its start would land mid-sequence.
		if bos := s.tok.Specials().BOS; bos >= 0 && ids[0] == bos {
			ids = ids[1:]
			if len(ids) == 0 {
				return nil, badRequest("prompt", "the prompt is empty (no tokens after the saved state's)")
			}
		}
		ids = append(slices.Clip(start.tokens), ids...)
	}
	if len(ids) > s.cfg.MaxPromptTokens {
		return nil, badRequest("prompt", "the prompt has %d tokens, above the bound of %d", len(ids), s.cfg.MaxPromptTokens).withCode("context_length_exceeded")
	}
	V := s.m.Config.VocabSize
	for i, id := range ids {
		if id < 0 || id >= V {
			return nil, badRequest("prompt", "token %d (at %d) is outside the vocabulary of %d", id, i, V)
		}
	}
	g := &generation{ids: ids, params: p, maxTokens: n, stops: append(append([]string(nil), f.Stop...), extraStops...), eos: s.eos, logprobs: -1, start: start}
	if f.IgnoreEOS {
		g.eos = -1
	}
	info(r).prompt = len(ids)
	return g, nil
}

// start hands g to the scheduler (429 when the queue is full). max_tokens
// 0 needs no model run: it ends at once with "length".
func (s *Server) start(ctx context.Context, g *generation) (*result, *apiError) {
	res := newResult()
	if g.maxTokens == 0 && !g.saveOnly {
		res.end("length", 0, nil)
		return res, nil
	}
	req := &genRequest{ctx: ctx, prompt: g.ids, params: g.params, maxTokens: g.maxTokens, stops: g.stops, eos: g.eos, logprobs: g.logprobs, saveOnly: g.saveOnly, res: res, queued: time.Now()}
	if g.start != nil {
		req.start, req.startLen = g.start.sess, len(g.start.tokens)
	}
	if !s.sched.submit(req) {
		return nil, (&apiError{Status: http.StatusTooManyRequests, Type: "rate_limit_error",
			Message: fmt.Sprintf("the server is busy: %d requests are waiting; retry later", s.cfg.QueueSize)}).withCode("rate_limit_exceeded")
	}
	return res, nil
}

// wait calls emit with each piece of text as it arrives and returns once
// the generation ends: nil, its error, the context's error (the client
// went away, or the request timed out) or errShutdown.
func (s *Server) wait(ctx context.Context, res *result, emit func(piece) error) error {
	stopped := false // the scheduler has exited: what res holds is all it will get
	for {
		pieces, done := res.take()
		for _, p := range pieces {
			if err := emit(p); err != nil {
				return err
			}
		}
		if done {
			return res.err
		}
		if stopped {
			return errShutdown
		}
		select {
		case <-res.notify:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.sched.done:
			stopped = true
		}
	}
}

// genError turns a generation's error into the answer's error.
func genError(err error) *apiError {
	switch {
	case errors.Is(err, errShutdown):
		return &apiError{Status: http.StatusServiceUnavailable, Type: "server_error", Message: err.Error()}
	case errors.Is(err, context.DeadlineExceeded):
		return (&apiError{Status: http.StatusGatewayTimeout, Type: "server_error", Message: "the request ran past the server's time limit"}).withCode("timeout")
	default:
		return &apiError{Status: http.StatusInternalServerError, Type: "server_error", Message: err.Error()}
	}
}

// withTimeout bounds a generation by Config.RequestTimeout.
func (s *Server) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.cfg.RequestTimeout < 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, s.cfg.RequestTimeout)
}

// completions is POST /v1/completions.
func (s *Server) completions(w http.ResponseWriter, r *http.Request) {
	var req completionRequest
	if !s.readRequest(w, r, &req) {
		return
	}
	if req.Suffix != nil && *req.Suffix != "" {
		writeError(w, badRequest("suffix", "suffix: not supported"))
		return
	}
	text, ids, isText, e := parsePrompt(req.Prompt)
	if e != nil {
		writeError(w, e)
		return
	}
	if isText {
		var err error
		if ids, err = s.tok.Encode(text); err != nil {
			writeError(w, badRequest("prompt", "prompt: %v", err))
			return
		}
	}
	g, e := s.prepare(r, &req.samplingFields, ids, defaultCompletionTokens, nil)
	if e != nil {
		writeError(w, e)
		return
	}
	if g.logprobs, e = completionLogprobsParam(req.Logprobs); e != nil {
		writeError(w, e)
		return
	}
	if req.Echo && g.logprobs >= 0 {
		writeError(w, badRequest("logprobs", "logprobs with echo (the prompt's log-probabilities) is not supported"))
		return
	}
	if req.Echo && !isText {
		text, _ = s.tok.Decode(ids)
	}
	ctx, cancel := s.withTimeout(r.Context())
	defer cancel()
	res, e := s.start(ctx, g)
	if e != nil {
		w.Header().Set("Retry-After", "1")
		writeError(w, e)
		return
	}
	id, created := newID("cmpl"), time.Now().Unix()
	resp := func(text string, finish *string, u *usage) completionResponse {
		return completionResponse{ID: id, Object: "text_completion", Created: created, Model: s.cfg.ModelName,
			Choices: []completionChoice{{Text: text, FinishReason: finish}}, Usage: u}
	}
	offset := 0 // of the next token in the completion's text
	withLP := func(c completionResponse, lps []tokenLogprob) completionResponse {
		if g.logprobs >= 0 {
			c.Choices[0].Logprobs = completionLP(lps, offset)
			for _, lp := range lps {
				offset += len(lp.text)
			}
		}
		return c
	}
	if req.Stream {
		sse := newSSE(w)
		if req.Echo {
			sse.send(resp(text, nil, nil))
		}
		err := s.wait(ctx, res, func(p piece) error { return sse.send(withLP(resp(p.text, nil, nil), p.lps)) })
		s.endStream(r, sse, res, err, func(finish string, u *usage) []any {
			out := []any{resp("", &finish, nil)}
			if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
				c := resp("", nil, u)
				c.Choices = []completionChoice{}
				out = append(out, c)
			}
			return out
		})
		return
	}
	var out strings.Builder
	if req.Echo {
		out.WriteString(text)
	}
	var lps []tokenLogprob
	err := s.wait(ctx, res, func(p piece) error { out.WriteString(p.text); lps = append(lps, p.lps...); return nil })
	if err != nil {
		if r.Context().Err() == nil {
			writeError(w, genError(err))
		}
		return
	}
	u := s.usage(r, g, res)
	writeJSON(w, http.StatusOK, withLP(resp(out.String(), &res.finish, u), lps))
}

// usage fills the request's usage (and its log line) from res.
func (s *Server) usage(r *http.Request, g *generation, res *result) *usage {
	res.mu.Lock()
	cached, completion := res.cached, res.completion
	res.mu.Unlock()
	ri := info(r)
	ri.cached, ri.completion = cached, completion
	return newUsage(len(g.ids), completion, cached)
}

// endStream finishes a stream: the final chunks that last builds (the
// finish reason, then usage if asked) and [DONE]; an error event instead
// if the generation failed; nothing if the client went away.
func (s *Server) endStream(r *http.Request, sse *sse, res *result, err error, last func(string, *usage) []any) {
	if r.Context().Err() != nil || sse.err != nil {
		return
	}
	if err != nil {
		sse.send(map[string]*apiError{"error": genError(err)})
		return
	}
	res.mu.Lock()
	cached, completion, finish := res.cached, res.completion, res.finish
	res.mu.Unlock()
	ri := info(r)
	ri.cached, ri.completion = cached, completion
	for _, c := range last(finish, newUsage(ri.prompt, completion, cached)) {
		sse.send(c)
	}
	sse.done()
}

// chat is POST /v1/chat/completions.
func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	var req chatRequest
	if !s.readRequest(w, r, &req) {
		return
	}
	prompt, stops, e := s.renderMessages(req.Messages, true)
	if e != nil {
		writeError(w, e)
		return
	}
	ids, e := s.encodeChat(prompt)
	if e != nil {
		writeError(w, e)
		return
	}
	g, e := s.prepare(r, &req.samplingFields, ids, defaultChatTokens, stops)
	if e != nil {
		if e.Param != nil && *e.Param == "prompt" {
			p := "messages"
			e.Param = &p
		}
		writeError(w, e)
		return
	}
	if g.logprobs, e = chatLogprobsParam(req.Logprobs, req.TopLogprobs); e != nil {
		writeError(w, e)
		return
	}
	ctx, cancel := s.withTimeout(r.Context())
	defer cancel()
	res, e := s.start(ctx, g)
	if e != nil {
		w.Header().Set("Retry-After", "1")
		writeError(w, e)
		return
	}
	id, created := newID("chatcmpl"), time.Now().Unix()
	chunk := func(d *chatDelta, finish *string, u *usage) chatResponse {
		return chatResponse{ID: id, Object: "chat.completion.chunk", Created: created, Model: s.cfg.ModelName,
			Choices: []chatChoice{{Delta: d, FinishReason: finish}}, Usage: u}
	}
	if req.Stream {
		sse := newSSE(w)
		empty := ""
		sse.send(chunk(&chatDelta{Role: "assistant", Content: &empty}, nil, nil))
		err := s.wait(ctx, res, func(p piece) error {
			c := chunk(&chatDelta{Content: &p.text}, nil, nil)
			if g.logprobs >= 0 {
				c.Choices[0].Logprobs = chatLP(p.lps)
			}
			return sse.send(c)
		})
		s.endStream(r, sse, res, err, func(finish string, u *usage) []any {
			out := []any{chunk(&chatDelta{}, &finish, nil)}
			if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
				c := chunk(nil, nil, u)
				c.Choices = []chatChoice{}
				out = append(out, c)
			}
			return out
		})
		return
	}
	var out strings.Builder
	var lps []tokenLogprob
	err := s.wait(ctx, res, func(p piece) error { out.WriteString(p.text); lps = append(lps, p.lps...); return nil })
	if err != nil {
		if r.Context().Err() == nil {
			writeError(w, genError(err))
		}
		return
	}
	u := s.usage(r, g, res)
	choice := chatChoice{Message: &chatOutMessage{Role: "assistant", Content: out.String()}, FinishReason: &res.finish}
	if g.logprobs >= 0 {
		choice.Logprobs = chatLP(lps)
	}
	writeJSON(w, http.StatusOK, chatResponse{ID: id, Object: "chat.completion", Created: created, Model: s.cfg.ModelName,
		Choices: []chatChoice{choice}, Usage: u})
}

// tokenizeRequest is POST /tokenize's body (llama.cpp server's shape).
type tokenizeRequest struct {
	Content *string `json:"content"`
}

// tokenize is POST /tokenize: {"content": TEXT} -> {"tokens": [ids]},
// the ids Encode gives (with the tokenizer's special tokens).
func (s *Server) tokenize(w http.ResponseWriter, r *http.Request) {
	var req tokenizeRequest
	if !s.readRequest(w, r, &req) {
		return
	}
	if req.Content == nil {
		writeError(w, badRequest("content", "content: required"))
		return
	}
	ids, err := s.tok.Encode(*req.Content)
	if err != nil {
		writeError(w, badRequest("content", "content: %v", err))
		return
	}
	if ids == nil {
		ids = []int{}
	}
	writeJSON(w, http.StatusOK, map[string][]int{"tokens": ids})
}

// detokenizeRequest is POST /detokenize's body.
type detokenizeRequest struct {
	Tokens *[]int `json:"tokens"`
}

// detokenize is POST /detokenize: {"tokens": [ids]} -> {"content": TEXT}.
func (s *Server) detokenize(w http.ResponseWriter, r *http.Request) {
	var req detokenizeRequest
	if !s.readRequest(w, r, &req) {
		return
	}
	if req.Tokens == nil {
		writeError(w, badRequest("tokens", "tokens: required"))
		return
	}
	V := s.tok.VocabSize()
	for i, id := range *req.Tokens {
		if id < 0 || id >= V {
			writeError(w, badRequest("tokens", "token %d (at %d) is outside the vocabulary of %d", id, i, V))
			return
		}
	}
	text, err := s.tok.Decode(*req.Tokens)
	if err != nil {
		writeError(w, badRequest("tokens", "tokens: %v", err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"content": text})
}

// sseWriteTimeout bounds the write of one event: a client that reads
// nothing for this long loses its stream (and its generation).
const sseWriteTimeout = 30 * time.Second

// sse writes server-sent events as OpenAI does: "data: JSON\n\n" per
// chunk, flushed at once, and "data: [DONE]\n\n" at the end.
type sse struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	err error
}

func newSSE(w http.ResponseWriter) *sse {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	s := &sse{w: w, rc: http.NewResponseController(w)}
	s.rc.Flush()
	return s
}

// send writes v as one event; after a write error it does nothing.
func (s *sse) send(v any) error {
	if s.err != nil {
		return s.err
	}
	b, err := json.Marshal(v)
	if err != nil {
		s.err = err
		return err
	}
	// A client that stops reading must not hold the handler forever.
	s.rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
	if _, err := fmt.Fprintf(s.w, "data: %s\n\n", b); err != nil {
		s.err = err
		return err
	}
	s.err = s.rc.Flush()
	return s.err
}

// done writes the stream's end.
func (s *sse) done() {
	if s.err == nil {
		_, s.err = fmt.Fprint(s.w, "data: [DONE]\n\n")
		s.rc.Flush()
	}
}
