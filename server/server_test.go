package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memmamba/memmamba/engine"
	"github.com/memmamba/memmamba/sample"
)

// reference generates as mmrun generate does, on a fresh session of m with
// no batching and no cache: the output every server answer must equal.
func reference(t *testing.T, m *engine.Model, prompt string, p sample.Params, n int, stops []string) (string, string, int) {
	t.Helper()
	tok, err := m.Tokenizer()
	if err != nil {
		t.Fatal(err)
	}
	ids, err := tok.Encode(prompt)
	if err != nil {
		t.Fatal(err)
	}
	smp, err := sample.New(p, m.Config.VocabSize)
	if err != nil {
		t.Fatal(err)
	}
	s := m.NewSession()
	logits, err := s.Prefill(ids)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		smp.Accept(id)
	}
	dec, stop := tok.NewStreamDecoder(), sample.NewStopMatcher(stops)
	var out strings.Builder
	eos := tok.Specials().EOS
	finish := "length"
	for i := 0; i < n; i++ {
		id := smp.Sample(logits)
		if id == eos {
			finish = "stop"
			n = i
			break
		}
		smp.Accept(id)
		text, stopped := stop.Push(dec.Next(id))
		out.WriteString(text)
		if stopped {
			return out.String(), "stop", i + 1
		}
		if logits, err = s.Step(id); err != nil {
			t.Fatal(err)
		}
	}
	text, _ := stop.Push(dec.Flush())
	out.WriteString(text + stop.Flush())
	return out.String(), finish, n
}

// greedy and seeded are the sampling settings the exactness tests use.
func samplings() map[string]sample.Params {
	g := sample.DefaultParams()
	g.Temperature = 0
	s := sample.DefaultParams()
	s.Seed = 7
	s.Temperature = 1.1
	s.RepetitionPenalty = 1.2
	return map[string]sample.Params{"greedy": g, "seeded": s}
}

// request is the completion request for prompt under p.
func request(prompt string, p sample.Params, n int) map[string]any {
	return map[string]any{"prompt": prompt, "max_tokens": n, "temperature": p.Temperature, "top_k": p.TopK,
		"top_p": p.TopP, "min_p": p.MinP, "repeat_penalty": p.RepetitionPenalty, "seed": p.Seed}
}

// TestCompletionMatchesReference: a completion, alone and among
// concurrent ones of other prompts (batched, joining and leaving at
// different steps), equals mmrun generate's output, on a Mamba and a
// MemMamba model, greedy and seeded, byte-level and BPE.
func TestCompletionMatchesReference(t *testing.T) {
	prompts := []string{"Hello", "The quick brown fox jumps over the lazy dog. " + strings.Repeat("abc ", 40), "x", "In the beginning"}
	for _, model := range []string{"mamba-tiny", "memmamba-priority", "mamba-bias-untied"} { // the last has a BPE tokenizer and an EOS
		t.Run(model, func(t *testing.T) {
			ts := newTestServer(t, model, Config{Parallel: 3, PrefillChunk: 16, CacheEvery: 32})
			for name, p := range samplings() {
				var wg sync.WaitGroup
				for i, pr := range prompts {
					n := 10 + 7*i
					want, finish, _ := reference(t, ts.m, pr, p, n, nil)
					wg.Add(1)
					go func() {
						defer wg.Done()
						c := ts.complete(t, request(pr, p, n))
						if got := c.Choices[0].Text; got != want {
							t.Errorf("%s prompt %d: got %q, want %q", name, i, got, want)
						}
						if *c.Choices[0].FinishReason != finish {
							t.Errorf("%s prompt %d: finish %s, want %s", name, i, *c.Choices[0].FinishReason, finish)
						}
					}()
				}
				wg.Wait()
			}
		})
	}
}

// TestCacheExact: with the state cache, every answer equals the one
// without it, the next turn of a conversation reads only its new tokens
// (usage.prompt_tokens_details.cached_tokens), and a prompt sent again is
// all cached.
func TestCacheExact(t *testing.T) {
	for _, model := range []string{"mamba-tiny", "memmamba-priority"} {
		t.Run(model, func(t *testing.T) {
			on := newTestServer(t, model, Config{Parallel: 2, PrefillChunk: 16, CacheEvery: 32})
			off := newTestServer(t, model, Config{Parallel: 2, StateCacheBytes: -1})
			for name, p := range samplings() {
				conv := "System: be brief.\n" + strings.Repeat("The cat sat on the mat. ", 5) // 138 bytes: checkpoints at 32, 64, ...
				prevLen := 0
				for turn := range 4 {
					req := request(conv, p, 12)
					a, b := on.complete(t, req), off.complete(t, req)
					if a.Choices[0].Text != b.Choices[0].Text || *a.Choices[0].FinishReason != *b.Choices[0].FinishReason {
						t.Fatalf("%s turn %d: cached %q, uncached %q", name, turn, a.Choices[0].Text, b.Choices[0].Text)
					}
					if b.Usage.PromptTokensDetails.CachedTokens != 0 {
						t.Errorf("%s turn %d: the cache-less server reports %d cached tokens", name, turn, b.Usage.PromptTokensDetails.CachedTokens)
					}
					cached := a.Usage.PromptTokensDetails.CachedTokens
					if turn > 0 && cached < prevLen {
						t.Errorf("%s turn %d: %d tokens cached, want at least the previous turn's %d", name, turn, cached, prevLen)
					}
					if cached > a.Usage.PromptTokens {
						t.Errorf("%s turn %d: %d cached of %d", name, turn, cached, a.Usage.PromptTokens)
					}
					// The same prompt again: all of it from the cache, same text.
					again := on.complete(t, req)
					if again.Choices[0].Text != a.Choices[0].Text {
						t.Errorf("%s turn %d: repeated prompt %q, first %q", name, turn, again.Choices[0].Text, a.Choices[0].Text)
					}
					if got := again.Usage.PromptTokensDetails.CachedTokens; got != again.Usage.PromptTokens {
						t.Errorf("%s turn %d: repeated prompt has %d of %d tokens cached", name, turn, got, again.Usage.PromptTokens)
					}
					prevLen = a.Usage.PromptTokens + a.Usage.CompletionTokens - 1
					conv += a.Choices[0].Text + fmt.Sprintf("\nUser: turn %d.\n", turn)
				}
			}
			// A long prompt that shares only a checkpointed prefix.
			p := samplings()["greedy"]
			base := strings.Repeat("0123456789", 10)
			on.complete(t, request(base+"first", p, 4))
			a, b := on.complete(t, request(base+"second", p, 4)), off.complete(t, request(base+"second", p, 4))
			if a.Choices[0].Text != b.Choices[0].Text {
				t.Errorf("checkpoint: cached %q, uncached %q", a.Choices[0].Text, b.Choices[0].Text)
			}
			if got := a.Usage.PromptTokensDetails.CachedTokens; got != 96 {
				t.Errorf("checkpoint: %d tokens cached, want 96 (the last --cache-every 32 boundary of the shared 100)", got)
			}
		})
	}
}

// TestCacheEviction: the cache stays within its budget and still answers
// exactly when its entries are evicted.
func TestCacheEviction(t *testing.T) {
	m := openModel(t, "memmamba-priority")
	per := int64(m.NewSession().StateBytes())
	ts := newTestServer(t, "memmamba-priority", Config{Parallel: 1, StateCacheBytes: 3 * per, CacheEvery: 8})
	p := samplings()["greedy"]
	for i := range 6 {
		pr := fmt.Sprintf("prompt number %d, with some more text", i)
		want, _, _ := reference(t, m, pr, p, 6, nil)
		if got := ts.complete(t, request(pr, p, 6)).Choices[0].Text; got != want {
			t.Errorf("prompt %d: %q, want %q", i, got, want)
		}
	}
	ts.sched.close() // the cache belongs to the scheduler's goroutine
	if c := ts.sched.cache; c.size() > c.budget || c.len() > 3 {
		t.Errorf("cache holds %d entries, %d bytes, over its budget of %d", c.len(), c.size(), c.budget)
	}
}

// TestStopAndEcho: a stop string ends the text before it with finish
// "stop"; echo puts the prompt first; max_tokens 0 gives the prompt alone.
func TestStopAndEcho(t *testing.T) {
	ts := newTestServer(t, "mamba-tiny", Config{})
	p := samplings()["seeded"]
	full, _, _ := reference(t, ts.m, "Hello", p, 30, nil)
	if len(full) < 10 {
		t.Fatalf("reference too short: %q", full)
	}
	stop := full[5:8]
	want, _, _ := reference(t, ts.m, "Hello", p, 30, []string{stop})
	req := request("Hello", p, 30)
	req["stop"] = stop
	c := ts.complete(t, req)
	if c.Choices[0].Text != want || *c.Choices[0].FinishReason != "stop" || strings.Contains(c.Choices[0].Text, stop) {
		t.Errorf("stop %q: got %q (%s), want %q (stop)", stop, c.Choices[0].Text, *c.Choices[0].FinishReason, want)
	}
	req["stop"] = []string{"\x00never", stop}
	if c := ts.complete(t, req); c.Choices[0].Text != want {
		t.Errorf("stop list: got %q, want %q", c.Choices[0].Text, want)
	}
	delete(req, "stop")
	req["echo"] = true
	if c := ts.complete(t, req); c.Choices[0].Text != "Hello"+full {
		t.Errorf("echo: got %q, want %q", c.Choices[0].Text, "Hello"+full)
	}
	req["max_tokens"] = 0
	c = ts.complete(t, req)
	if c.Choices[0].Text != "Hello" || *c.Choices[0].FinishReason != "length" || c.Usage.CompletionTokens != 0 || c.Usage.PromptTokens != 5 {
		t.Errorf("max_tokens 0: %+v %+v", c.Choices[0], c.Usage)
	}
	// Token ids as the prompt: the same text as the string.
	req = request("", p, 30)
	req["prompt"] = []int{'H', 'e', 'l', 'l', 'o'}
	if c := ts.complete(t, req); c.Choices[0].Text != full {
		t.Errorf("token prompt: got %q, want %q", c.Choices[0].Text, full)
	}
	req["prompt"] = [][]int{{'H', 'e', 'l', 'l', 'o'}}
	if c := ts.complete(t, req); c.Choices[0].Text != full {
		t.Errorf("nested token prompt: got %q, want %q", c.Choices[0].Text, full)
	}
}

// stream posts req with stream: true and reads the events.
func (ts *testServer) stream(t *testing.T, path string, req map[string]any) ([]completion, bool) {
	t.Helper()
	req["stream"] = true
	js, _ := json.Marshal(req)
	resp, err := http.Post(ts.url+path, "application/json", strings.NewReader(string(js)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return readSSE(t, resp.Body)
}

// TestStreaming: stream: true sends OpenAI's chunks (one per piece of
// text, then the finish reason, then usage when asked, then [DONE]) whose
// text is the non-streamed answer's.
func TestStreaming(t *testing.T) {
	ts := newTestServer(t, "memmamba-priority", Config{})
	p := samplings()["seeded"]
	want := ts.complete(t, request("Stream me", p, 20))
	req := request("Stream me", p, 20)
	req["stream_options"] = map[string]any{"include_usage": true}
	chunks, done := ts.stream(t, "/v1/completions", req)
	if !done {
		t.Fatal("no [DONE]")
	}
	var text strings.Builder
	for i, c := range chunks[:len(chunks)-2] {
		if c.Object != "text_completion" || len(c.Choices) != 1 || c.Choices[0].FinishReason != nil {
			t.Fatalf("chunk %d: %+v", i, c)
		}
		text.WriteString(c.Choices[0].Text)
	}
	fin, use := chunks[len(chunks)-2], chunks[len(chunks)-1]
	if len(fin.Choices) != 1 || fin.Choices[0].FinishReason == nil || *fin.Choices[0].FinishReason != "length" {
		t.Errorf("final chunk %+v", fin)
	}
	if len(use.Choices) != 0 || use.Usage == nil || use.Usage.CompletionTokens != 20 || use.Usage.PromptTokens != want.Usage.PromptTokens {
		t.Errorf("usage chunk %+v", use)
	}
	if text.String() != want.Choices[0].Text {
		t.Errorf("streamed %q, want %q", text.String(), want.Choices[0].Text)
	}
	if len(chunks) < 10 {
		t.Errorf("%d chunks for 20 tokens: not streamed per token", len(chunks))
	}

	// Chat: a role chunk, content deltas, the finish chunk; no usage unless asked.
	msgs := []map[string]any{{"role": "system", "content": "Be kind."}, {"role": "user", "content": []map[string]string{{"type": "text", "text": "Hi"}}}}
	creq := request("", p, 15)
	delete(creq, "prompt")
	creq["messages"] = msgs
	code, body, _ := ts.post(t, "/v1/chat/completions", creq)
	if code != http.StatusOK {
		t.Fatalf("chat: %d %s", code, body)
	}
	var cw completion
	if err := json.Unmarshal(body, &cw); err != nil || cw.Object != "chat.completion" || cw.Choices[0].Message == nil || cw.Choices[0].Message.Role != "assistant" {
		t.Fatalf("chat response %s (%v)", body, err)
	}
	chunks, done = ts.stream(t, "/v1/chat/completions", creq)
	if !done || len(chunks) < 2 {
		t.Fatalf("chat stream: %d chunks, done %v", len(chunks), done)
	}
	if d := chunks[0].Choices[0].Delta; d == nil || d.Role != "assistant" {
		t.Errorf("first chat chunk %+v", chunks[0])
	}
	text.Reset()
	for _, c := range chunks {
		if c.Object != "chat.completion.chunk" || c.Usage != nil {
			t.Errorf("chat chunk %+v", c)
		}
		if d := c.Choices[0].Delta; d != nil && d.Content != nil {
			text.WriteString(*d.Content)
		}
	}
	last := chunks[len(chunks)-1].Choices[0]
	if last.FinishReason == nil || *last.FinishReason != *cw.Choices[0].FinishReason {
		t.Errorf("last chat chunk %+v, want finish %s", last, *cw.Choices[0].FinishReason)
	}
	if text.String() != cw.Choices[0].Message.Content {
		t.Errorf("chat streamed %q, want %q", text.String(), cw.Choices[0].Message.Content)
	}
	wantPrompt := "System: Be kind.\n\nUser: Hi\n\nAssistant:"
	if cw.Usage.PromptTokens != len(wantPrompt) {
		t.Errorf("chat prompt of %d tokens, want the %d bytes of %q", cw.Usage.PromptTokens, len(wantPrompt), wantPrompt)
	}
}

// TestCancel: a client that goes away mid-stream frees its slot within a
// step: with one slot, the next request runs at once.
func TestCancel(t *testing.T) {
	ts := newTestServer(t, "memmamba-priority", Config{Parallel: 1, QueueSize: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := request("never ending", samplings()["greedy"], 8000)
	req["stream"] = true
	js, _ := json.Marshal(req)
	hr, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.url+"/v1/completions", strings.NewReader(string(js)))
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "data: ") {
		t.Fatalf("first event %q, %v", line, err)
	}
	cancel()
	resp.Body.Close()
	start := time.Now()
	c := ts.complete(t, request("next", samplings()["greedy"], 3))
	if c.Usage.CompletionTokens != 3 {
		t.Errorf("next request: %+v", c.Usage)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the next request waited %v for the cancelled one's slot", d)
	}
	waitFor(t, "the cancelled generation to be counted", func() bool {
		return strings.Contains(metricsText(t, ts), "mmrun_generations_cancelled_total 1")
	})
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// metricsText fetches /metrics.
func metricsText(t *testing.T, ts *testServer) string {
	t.Helper()
	code, body := ts.get(t, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	return string(body)
}

// TestQueueFull: beyond --parallel running and the queue's bound waiting,
// a request gets 429 with Retry-After in OpenAI's error shape.
func TestQueueFull(t *testing.T) {
	ts := newTestServer(t, "mamba-tiny", Config{Parallel: 1, QueueSize: 1})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	long := func() {
		defer wg.Done()
		js, _ := json.Marshal(request("busy", samplings()["greedy"], 8000))
		hr, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.url+"/v1/completions", strings.NewReader(string(js)))
		if resp, err := http.DefaultClient.Do(hr); err == nil {
			resp.Body.Close()
		}
	}
	wg.Add(1)
	go long()
	waitFor(t, "the first request to run", func() bool { return strings.Contains(metricsText(t, ts), "mmrun_active_sequences 1") })
	wg.Add(1)
	go long()
	waitFor(t, "the second request to queue", func() bool { return len(ts.sched.queue) == 1 })
	code, body, h := ts.post(t, "/v1/completions", request("third", samplings()["greedy"], 2))
	if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" {
		t.Fatalf("got %d (Retry-After %q): %s", code, h.Get("Retry-After"), body)
	}
	checkErrorShape(t, body, "rate_limit_error")
}

// checkErrorShape checks an OpenAI error body.
func checkErrorShape(t *testing.T, body []byte, typ string) map[string]any {
	t.Helper()
	var e struct {
		Error map[string]any `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error == nil {
		t.Fatalf("not an OpenAI error: %s", body)
	}
	for _, k := range []string{"message", "type", "param", "code"} {
		if _, ok := e.Error[k]; !ok {
			t.Errorf("error without %q: %s", k, body)
		}
	}
	if msg, _ := e.Error["message"].(string); msg == "" {
		t.Errorf("error without a message: %s", body)
	}
	if e.Error["type"] != typ {
		t.Errorf("error type %v, want %s: %s", e.Error["type"], typ, body)
	}
	return e.Error
}

// TestShutdown: http.Server.Shutdown lets a running stream finish (all
// its tokens, then [DONE]) while refusing new connections; Close then
// stops the scheduler, and a request still running gets 503.
func TestShutdown(t *testing.T) {
	m := openModel(t, "memmamba-priority")
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(m); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: s}
	go hs.Serve(ln)
	url := "http://" + ln.Addr().String()
	js, _ := json.Marshal(map[string]any{"prompt": "shutdown", "max_tokens": 300, "stream": true, "temperature": 0})
	resp, err := http.Post(url+"/v1/completions", "application/json", strings.NewReader(string(js)))
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	if line, _ := br.ReadString('\n'); !strings.HasPrefix(line, "data: ") {
		t.Fatalf("first event %q", line)
	}
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- hs.Shutdown(ctx)
	}()
	time.Sleep(20 * time.Millisecond)
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Error("a new connection was accepted during shutdown")
	}
	br.ReadString('\n') // the blank line after the first event
	chunks, done := readSSE(t, br)
	resp.Body.Close()
	if !done {
		t.Error("the running stream did not finish with [DONE]")
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if last := chunks[len(chunks)-1]; last.Choices[0].FinishReason == nil || *last.Choices[0].FinishReason != "length" {
		t.Errorf("last chunk %+v", last)
	}
	s.Close()

	// A request in flight when Close runs ends with 503.
	s2, _ := New(Config{})
	s2.Start(m)
	ts := httptest503(t, s2)
	defer ts.Close()
	errc := make(chan int, 1)
	go func() {
		js, _ := json.Marshal(map[string]any{"prompt": "x", "max_tokens": 8000, "temperature": 0})
		resp, err := http.Post(ts.URL+"/v1/completions", "application/json", strings.NewReader(string(js)))
		if err != nil {
			errc <- 0
			return
		}
		resp.Body.Close()
		errc <- resp.StatusCode
	}()
	waitFor(t, "the request to run", func() bool { return s2.met != nil && gaugeValue(s2.met.active) == 1 })
	s2.Close()
	if code := <-errc; code != http.StatusServiceUnavailable {
		t.Errorf("a request running at Close got %d, want 503", code)
	}
	code, _, _ := (&testServer{url: ts.URL}).post(t, "/v1/completions", map[string]any{"prompt": "x"})
	if code != http.StatusServiceUnavailable {
		t.Errorf("a request after Close got %d, want 503", code)
	}
}

// TestTrainedText: on the models trained on the King James Bible, greedy
// completions and chat answers are English text in the corpus's manner.
func TestTrainedText(t *testing.T) {
	for _, model := range []string{"trained/memmamba-kjv", "trained/mamba-kjv"} {
		t.Run(model, func(t *testing.T) {
			ts := newTestServer(t, model, Config{})
			c := ts.complete(t, map[string]any{"prompt": "And God said", "max_tokens": 60, "temperature": 0})
			text := c.Choices[0].Text
			letters := 0
			for _, r := range text {
				if r == ' ' || r == ',' || r == '.' || r == ':' || r == ';' || r == '\n' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') {
					letters++
				}
			}
			if letters < len(text)*9/10 || !strings.Contains(text, " ") {
				t.Errorf("not English text: %q", text)
			}
			words := 0
			for _, w := range []string{"the", "LORD", "and", "of", "unto", "God", "said"} {
				if strings.Contains(text, w) {
					words++
				}
			}
			if words < 2 {
				t.Errorf("none of the corpus's common words: %q", text)
			}
			t.Logf("%q", text)
		})
	}
}

// TestPrefillBudget: twelve long prompts arriving together (more prompt
// tokens than one step takes, so they take turns) and a decoder among
// them all give the outputs of each alone.
func TestPrefillBudget(t *testing.T) {
	ts := newTestServer(t, "memmamba-priority", Config{Parallel: 13, PrefillChunk: 64})
	p := samplings()["seeded"]
	var wg sync.WaitGroup
	for i := range 13 {
		pr := strings.Repeat(fmt.Sprintf("prompt %d says hello. ", i), 14)
		n := 4
		if i == 0 {
			pr, n = "a decoder", 60
		}
		want, _, _ := reference(t, ts.m, pr, p, n, nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if got := ts.complete(t, request(pr, p, n)).Choices[0].Text; got != want {
				t.Errorf("prompt %d: %q, alone %q", i, got, want)
			}
		}()
	}
	wg.Wait()
	if !strings.Contains(metricsText(t, ts), `mmrun_batch_tokens_bucket{le="512"}`) {
		t.Error("no batch_tokens histogram")
	}
}

// TestEOS: the end-of-text token ends a generation with finish "stop",
// uncounted and untexted, as in mmrun generate; ignore_eos goes on past it.
func TestEOS(t *testing.T) {
	ts := newTestServer(t, "mamba-bias-untied", Config{}) // EOS is id 0
	p := samplings()["seeded"]
	p.Seed, p.Temperature = 3, 2
	want, finish, _ := reference(t, ts.m, "hi", p, 300, nil)
	c := ts.complete(t, request("hi", p, 300))
	if finish != "stop" || *c.Choices[0].FinishReason != "stop" || c.Choices[0].Text != want || c.Usage.CompletionTokens >= 300 {
		t.Fatalf("finish %s (reference %s), %d tokens, %q, want %q", *c.Choices[0].FinishReason, finish, c.Usage.CompletionTokens, c.Choices[0].Text, want)
	}
	req := request("hi", p, 300)
	req["ignore_eos"] = true
	if c := ts.complete(t, req); *c.Choices[0].FinishReason != "length" || c.Usage.CompletionTokens != 300 {
		t.Errorf("ignore_eos: finish %s after %d tokens", *c.Choices[0].FinishReason, c.Usage.CompletionTokens)
	}
}
