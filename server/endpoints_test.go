package server

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/memmamba/memmamba/engine"
	dto "github.com/prometheus/client_model/go"
)

// httptest503 serves s (started or not) on a test server.
func httptest503(t *testing.T, s *Server) *httptest.Server {
	t.Helper()
	return httptest.NewServer(s)
}

// gaugeValue reads a gauge.
func gaugeValue(g prometheus.Gauge) float64 {
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		return -1
	}
	return m.GetGauge().GetValue()
}

// TestHealthLoading: before Start, /health and the model endpoints answer
// 503 with Retry-After; after, 200.
func TestHealthLoading(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	hts := httptest503(t, s)
	defer hts.Close()
	ts := &testServer{url: hts.URL}
	if code, body := ts.get(t, "/health"); code != http.StatusServiceUnavailable || !strings.Contains(string(body), "loading") {
		t.Errorf("/health while loading: %d %s", code, body)
	}
	code, body, h := ts.post(t, "/v1/completions", map[string]any{"prompt": "x"})
	if code != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
		t.Errorf("/v1/completions while loading: %d %s", code, body)
	}
	checkErrorShape(t, body, "server_error")
	m := openModel(t, "mamba-tiny")
	if err := s.Start(m); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if code, body := ts.get(t, "/health"); code != http.StatusOK || !strings.Contains(string(body), `"ok"`) {
		t.Errorf("/health when ready: %d %s", code, body)
	}
	if err := s.Start(m); err == nil {
		t.Error("a second Start succeeded")
	}
}

// TestEndpoints: /v1/models, /tokenize, /detokenize, /metrics and the
// request log.
func TestEndpoints(t *testing.T) {
	ts := newTestServer(t, "mamba-tiny", Config{ModelName: "tiny"})
	code, body := ts.get(t, "/v1/models")
	var list struct {
		Object string `json:"object"`
		Data   []struct {
			ID, Object, OwnedBy string
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &list); code != http.StatusOK || err != nil || list.Object != "list" || len(list.Data) != 1 || list.Data[0].ID != "tiny" || list.Data[0].Object != "model" {
		t.Errorf("/v1/models: %d %s", code, body)
	}
	code, body, _ = ts.post(t, "/tokenize", map[string]any{"content": "héllo"})
	var tk struct{ Tokens []int }
	if err := json.Unmarshal(body, &tk); code != http.StatusOK || err != nil || len(tk.Tokens) != 6 || tk.Tokens[0] != 'h' {
		t.Errorf("/tokenize: %d %s", code, body)
	}
	code, body, _ = ts.post(t, "/detokenize", map[string]any{"tokens": tk.Tokens})
	var dt struct{ Content string }
	if err := json.Unmarshal(body, &dt); code != http.StatusOK || err != nil || dt.Content != "héllo" {
		t.Errorf("/detokenize: %d %s", code, body)
	}
	code, body, _ = ts.post(t, "/tokenize", map[string]any{"content": ""})
	if code != http.StatusOK || strings.TrimSpace(string(body)) != `{"tokens":[]}` {
		t.Errorf("/tokenize of nothing: %d %s", code, body)
	}
	c := ts.complete(t, map[string]any{"prompt": "count me", "max_tokens": 5, "temperature": 0})
	c = ts.complete(t, map[string]any{"prompt": "count me", "max_tokens": 5, "temperature": 0})
	if c.Usage.PromptTokensDetails.CachedTokens != 8 {
		t.Errorf("second identical prompt: %d cached", c.Usage.PromptTokensDetails.CachedTokens)
	}
	text := metricsText(t, ts)
	for _, want := range []string{
		`mmrun_requests_total{code="200",endpoint="/v1/completions"} 2`,
		"mmrun_prompt_tokens_total 8", "mmrun_prompt_tokens_cached_total 8", "mmrun_completion_tokens_total 10",
		"mmrun_queue_length 0", "mmrun_batch_size_bucket", "mmrun_time_to_first_token_seconds_count 2",
		"mmrun_inter_token_latency_seconds_count 8", "mmrun_state_cache_entries", "# TYPE mmrun_batch_size histogram",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	log := ts.log.String()
	if !strings.Contains(log, "POST /v1/completions 200 prompt=8 cached=8 completion=5 ") || !strings.Contains(log, "GET /v1/models 200") {
		t.Errorf("log:\n%s", log)
	}
}

// TestErrors: every malformed, mistyped, out-of-range or oversized
// request gets its status and an OpenAI error body, never a panic.
func TestErrors(t *testing.T) {
	ts := newTestServer(t, "mamba-tiny", Config{MaxBodyBytes: 4096, MaxPromptTokens: 100, MaxTokens: 50})
	long := strings.Repeat("a", 101)
	cases := []struct {
		name, method, path, body string
		status                   int
		param                    string
	}{
		{"malformed", "POST", "/v1/completions", `{"prompt": "x",`, 400, ""},
		{"not an object", "POST", "/v1/completions", `[1,2]`, 400, "body"},
		{"trailing data", "POST", "/v1/completions", `{"prompt":"x"} {}`, 400, ""},
		{"empty body", "POST", "/v1/completions", ``, 400, ""},
		{"no prompt", "POST", "/v1/completions", `{}`, 400, "prompt"},
		{"prompt number", "POST", "/v1/completions", `{"prompt": 5}`, 400, "prompt"},
		{"two prompts", "POST", "/v1/completions", `{"prompt": ["a","b"]}`, 400, "prompt"},
		{"empty prompt", "POST", "/v1/completions", `{"prompt": ""}`, 400, "prompt"},
		{"fractional token", "POST", "/v1/completions", `{"prompt": [1.5]}`, 400, "prompt"},
		{"token out of vocab", "POST", "/v1/completions", `{"prompt": [1, 256]}`, 400, "prompt"},
		{"negative token", "POST", "/v1/completions", `{"prompt": [-1]}`, 400, "prompt"},
		{"prompt too long", "POST", "/v1/completions", `{"prompt": "` + long + `"}`, 400, "prompt"},
		{"max_tokens string", "POST", "/v1/completions", `{"prompt": "x", "max_tokens": "5"}`, 400, "max_tokens"},
		{"max_tokens negative", "POST", "/v1/completions", `{"prompt": "x", "max_tokens": -1}`, 400, "max_tokens"},
		{"max_tokens over", "POST", "/v1/completions", `{"prompt": "x", "max_tokens": 51}`, 400, "max_tokens"},
		{"max_tokens fraction", "POST", "/v1/completions", `{"prompt": "x", "max_tokens": 2.5}`, 400, "max_tokens"},
		{"temperature negative", "POST", "/v1/completions", `{"prompt": "x", "temperature": -0.1}`, 400, "temperature"},
		{"temperature huge", "POST", "/v1/completions", `{"prompt": "x", "temperature": 1e300}`, 400, "temperature"},
		{"temperature bool", "POST", "/v1/completions", `{"prompt": "x", "temperature": true}`, 400, "temperature"},
		{"top_p zero", "POST", "/v1/completions", `{"prompt": "x", "top_p": 0}`, 400, "top_p"},
		{"top_p over", "POST", "/v1/completions", `{"prompt": "x", "top_p": 1.5}`, 400, "top_p"},
		{"top_k negative", "POST", "/v1/completions", `{"prompt": "x", "top_k": -3}`, 400, "top_k"},
		{"min_p one", "POST", "/v1/completions", `{"prompt": "x", "min_p": 1}`, 400, "min_p"},
		{"repeat_penalty zero", "POST", "/v1/completions", `{"prompt": "x", "repeat_penalty": 0}`, 400, "repeat_penalty"},
		{"seed string", "POST", "/v1/completions", `{"prompt": "x", "seed": "s"}`, 400, "seed"},
		{"stop number", "POST", "/v1/completions", `{"prompt": "x", "stop": 3}`, 400, "stop"},
		{"too many stops", "POST", "/v1/completions", `{"prompt": "x", "stop": ["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q"]}`, 400, "stop"},
		{"stream string", "POST", "/v1/completions", `{"prompt": "x", "stream": "yes"}`, 400, "stream"},
		{"n two", "POST", "/v1/completions", `{"prompt": "x", "n": 2}`, 400, "n"},
		{"logprobs over", "POST", "/v1/completions", `{"prompt": "x", "logprobs": 21}`, 400, "logprobs"},
		{"logprobs bool", "POST", "/v1/completions", `{"prompt": "x", "logprobs": true}`, 400, "logprobs"},
		{"logprobs echo", "POST", "/v1/completions", `{"prompt": "x", "logprobs": 2, "echo": true}`, 400, "logprobs"},
		{"chat logprobs int", "POST", "/v1/chat/completions", `{"messages": [{"role": "user", "content": "x"}], "logprobs": 3}`, 400, "logprobs"},
		{"chat top_logprobs alone", "POST", "/v1/chat/completions", `{"messages": [{"role": "user", "content": "x"}], "top_logprobs": 3}`, 400, "top_logprobs"},
		{"chat top_logprobs over", "POST", "/v1/chat/completions", `{"messages": [{"role": "user", "content": "x"}], "logprobs": true, "top_logprobs": 99}`, 400, "top_logprobs"},
		{"presence penalty", "POST", "/v1/completions", `{"prompt": "x", "presence_penalty": 0.5}`, 400, "presence_penalty"},
		{"body too large", "POST", "/v1/completions", `{"prompt": "` + strings.Repeat("a", 5000) + `"}`, 413, ""},
		{"chat no messages", "POST", "/v1/chat/completions", `{"messages": []}`, 400, "messages"},
		{"chat messages object", "POST", "/v1/chat/completions", `{"messages": {}}`, 400, "messages"},
		{"chat bad role", "POST", "/v1/chat/completions", `{"messages": [{"role": "robot", "content": "x"}]}`, 400, "messages"},
		{"chat image part", "POST", "/v1/chat/completions", `{"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}`, 400, "messages"},
		{"chat content number", "POST", "/v1/chat/completions", `{"messages": [{"role": "user", "content": 5}]}`, 400, "messages"},
		{"chat too long", "POST", "/v1/chat/completions", `{"messages": [{"role": "user", "content": "` + long + `"}]}`, 400, "messages"},
		{"chat top_p", "POST", "/v1/chat/completions", `{"messages": [{"role": "user", "content": "x"}], "top_p": -1}`, 400, "top_p"},
		{"tokenize no content", "POST", "/tokenize", `{}`, 400, "content"},
		{"tokenize number", "POST", "/tokenize", `{"content": 1}`, 400, "content"},
		{"detokenize no tokens", "POST", "/detokenize", `{}`, 400, "tokens"},
		{"detokenize out of vocab", "POST", "/detokenize", `{"tokens": [300]}`, 400, "tokens"},
		{"detokenize strings", "POST", "/detokenize", `{"tokens": ["a"]}`, 400, "tokens"},
		{"unknown path", "GET", "/v1/nothing", ``, 404, ""},
		{"wrong method", "GET", "/v1/completions", ``, 405, ""},
		{"wrong method models", "POST", "/v1/models", `{}`, 405, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, ts.url+c.path, strings.NewReader(c.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body strings.Builder
			if _, err := strings.NewReader("").WriteTo(&body); err != nil {
				t.Fatal(err)
			}
			b := readAll(t, resp)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, b)
			}
			e := checkErrorShape(t, b, "invalid_request_error")
			got, _ := e["param"].(string)
			if got != c.param {
				t.Errorf("param %q, want %q: %s", got, c.param, b)
			}
		})
	}
	if strings.Contains(ts.log.String(), " 500 ") {
		t.Errorf("a request got 500:\n%s", ts.log.String())
	}
	// Still serving.
	ts.complete(t, map[string]any{"prompt": "x", "max_tokens": 2})
}

// readAll reads a response body.
func readAll(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return []byte(b.String())
		}
	}
}

// TestAPIKey: with --api-key every endpoint but /health wants the key.
func TestAPIKey(t *testing.T) {
	ts := newTestServer(t, "mamba-tiny", Config{APIKey: "sekrit"})
	if code, _ := ts.get(t, "/health"); code != http.StatusOK {
		t.Errorf("/health without a key: %d", code)
	}
	for _, path := range []string{"/v1/models", "/metrics", "/v1/nothing"} {
		for _, hdr := range [][]string{nil, {"Authorization", "Bearer wrong"}, {"Authorization", "sekrit"}, {"Authorization", "Bearer sekrit2"}} {
			code, body := ts.get(t, path, hdr...)
			if code != http.StatusUnauthorized {
				t.Errorf("%s with %v: %d", path, hdr, code)
				continue
			}
			if e := checkErrorShape(t, body, "invalid_request_error"); e["code"] != "invalid_api_key" {
				t.Errorf("%s: code %v", path, e["code"])
			}
		}
	}
	code, body, _ := ts.post(t, "/v1/completions", map[string]any{"prompt": "x", "max_tokens": 1})
	if code != http.StatusUnauthorized {
		t.Errorf("completion without a key: %d %s", code, body)
	}
	code, body, _ = ts.post(t, "/v1/completions", map[string]any{"prompt": "x", "max_tokens": 1}, "Authorization", "Bearer sekrit")
	if code != http.StatusOK {
		t.Errorf("completion with the key: %d %s", code, body)
	}
	if code, _ := ts.get(t, "/v1/models", "Authorization", "Bearer sekrit"); code != http.StatusOK {
		t.Errorf("/v1/models with the key: %d", code)
	}
}

// TestRequestTimeout: a generation past Config.RequestTimeout ends with
// 504 (and frees its slot).
func TestRequestTimeout(t *testing.T) {
	ts := newTestServer(t, "memmamba-priority", Config{RequestTimeout: 30 * time.Millisecond, Parallel: 1})
	code, body, _ := ts.post(t, "/v1/completions", map[string]any{"prompt": "slow", "max_tokens": 8000, "temperature": 0})
	if code != http.StatusGatewayTimeout {
		t.Fatalf("status %d: %s", code, body)
	}
	if e := checkErrorShape(t, body, "server_error"); e["code"] != "timeout" {
		t.Errorf("code %v", e["code"])
	}
	waitFor(t, "the slot to free", func() bool { return gaugeValue(ts.met.active) == 0 })
}

// FuzzRequest posts arbitrary bodies to every POST endpoint: the answer
// is a 2xx or a 4xx with an OpenAI error body, never a 5xx or a panic.
func FuzzRequest(f *testing.F) {
	for _, s := range []string{
		`{"prompt":"hi","max_tokens":3}`, `{"prompt":[1,2,3],"max_tokens":2,"stream":true}`,
		`{"messages":[{"role":"user","content":"x"}],"max_tokens":2}`, `{"content":"abc"}`, `{"tokens":[1,2]}`,
		`{"prompt":"x","stop":["a"],"temperature":0.5,"top_k":3,"top_p":0.5,"min_p":0.1,"repeat_penalty":1.1,"seed":-1,"echo":true}`,
		`{"prompt":"x","max_tokens":1e3}`, `{"messages":[{"role":"user","content":[{"type":"text","text":"y"}]}]}`, `nul`, `{}`,
	} {
		f.Add(0, s)
		f.Add(1, s)
	}
	m, err := engine.Open(modelFile(f, "mamba-tiny"), engine.Options{Threads: 1})
	if err != nil {
		f.Fatal(err)
	}
	defer m.Close()
	s, err := New(Config{MaxTokens: 4, MaxPromptTokens: 64, MaxBodyBytes: 1024})
	if err != nil {
		f.Fatal(err)
	}
	if err := s.Start(m); err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	paths := []string{"/v1/completions", "/v1/chat/completions", "/tokenize", "/detokenize"}
	f.Fuzz(func(t *testing.T, which int, body string) {
		path := paths[uint(which)%uint(len(paths))]
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, strings.NewReader(body)))
		switch {
		case rec.Code >= 500:
			t.Fatalf("%s %q: %d %s", path, body, rec.Code, rec.Body)
		case rec.Code >= 400:
			var e struct {
				Error *apiError `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == nil || e.Error.Message == "" {
				t.Fatalf("%s %q: %d without an error body: %s", path, body, rec.Code, rec.Body)
			}
		}
	})
}

// TestLogprobs: completions' logprobs N and chat's logprobs/top_logprobs
// report each generated token's log-probability and the N best; greedy
// picks the best, streamed chunks carry the same numbers.
func TestLogprobs(t *testing.T) {
	ts := newTestServer(t, "memmamba-priority", Config{})
	type lpResp struct {
		Choices []struct {
			Text     string `json:"text"`
			Logprobs struct {
				Tokens        []string             `json:"tokens"`
				TokenLogprobs []float64            `json:"token_logprobs"`
				TopLogprobs   []map[string]float64 `json:"top_logprobs"`
				TextOffset    []int                `json:"text_offset"`
				Content       []struct {
					Token       string  `json:"token"`
					Logprob     float64 `json:"logprob"`
					Bytes       []int   `json:"bytes"`
					TopLogprobs []struct {
						Token   string  `json:"token"`
						Logprob float64 `json:"logprob"`
					} `json:"top_logprobs"`
				} `json:"content"`
			} `json:"logprobs"`
		} `json:"choices"`
		Usage usage `json:"usage"`
	}
	code, body, _ := ts.post(t, "/v1/completions", map[string]any{"prompt": "Hello", "max_tokens": 12, "temperature": 0, "logprobs": 3})
	var r lpResp
	if err := json.Unmarshal(body, &r); code != http.StatusOK || err != nil {
		t.Fatalf("%d %s", code, body)
	}
	lp := r.Choices[0].Logprobs
	if len(lp.Tokens) != r.Usage.CompletionTokens || len(lp.TokenLogprobs) != len(lp.Tokens) || len(lp.TopLogprobs) != len(lp.Tokens) || len(lp.TextOffset) != len(lp.Tokens) {
		t.Fatalf("logprobs of %d tokens for %d generated: %s", len(lp.Tokens), r.Usage.CompletionTokens, body)
	}
	at := 0
	for i, tok := range lp.Tokens {
		best := -1e300
		for _, v := range lp.TopLogprobs[i] {
			best = max(best, v)
		}
		if lp.TokenLogprobs[i] > 0 || len(lp.TopLogprobs[i]) == 0 || len(lp.TopLogprobs[i]) > 3 || lp.TokenLogprobs[i] != best {
			t.Errorf("token %d %q: logprob %v, top %v (greedy takes the best)", i, tok, lp.TokenLogprobs[i], lp.TopLogprobs[i])
		}
		if lp.TextOffset[i] != at {
			t.Errorf("token %d: offset %d, want %d", i, lp.TextOffset[i], at)
		}
		at += len(tok)
	}
	if strings.Join(lp.Tokens, "") != r.Choices[0].Text && !strings.ContainsRune(r.Choices[0].Text, 0xfffd) {
		t.Errorf("tokens %q do not spell the text %q", lp.Tokens, r.Choices[0].Text)
	}
	// Streamed: the same tokens and numbers, spread over the chunks.
	req, _ := json.Marshal(map[string]any{"prompt": "Hello", "max_tokens": 12, "temperature": 0, "logprobs": 3, "stream": true})
	resp, err := http.Post(ts.url+"/v1/completions", "application/json", strings.NewReader(string(req)))
	if err != nil {
		t.Fatal(err)
	}
	raw := readAll(t, resp)
	resp.Body.Close()
	var streamed []float64
	for _, ev := range strings.Split(string(raw), "\n\n") {
		data, ok := strings.CutPrefix(ev, "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		var c lpResp
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			t.Fatalf("%q: %v", data, err)
		}
		if len(c.Choices) > 0 {
			streamed = append(streamed, c.Choices[0].Logprobs.TokenLogprobs...)
		}
	}
	if len(streamed) != len(lp.TokenLogprobs) {
		t.Errorf("streamed %d logprobs, want %d", len(streamed), len(lp.TokenLogprobs))
	}
	for i := range min(len(streamed), len(lp.TokenLogprobs)) {
		if streamed[i] != lp.TokenLogprobs[i] {
			t.Errorf("streamed logprob %d: %v, want %v", i, streamed[i], lp.TokenLogprobs[i])
		}
	}
	// Chat.
	code, body, _ = ts.post(t, "/v1/chat/completions", map[string]any{"messages": []map[string]any{{"role": "user", "content": "Hi"}},
		"max_tokens": 6, "temperature": 0, "logprobs": true, "top_logprobs": 2})
	if err := json.Unmarshal(body, &r); code != http.StatusOK || err != nil {
		t.Fatalf("chat: %d %s", code, body)
	}
	content := r.Choices[0].Logprobs.Content
	if len(content) != r.Usage.CompletionTokens {
		t.Fatalf("chat: %d logprobs for %d tokens: %s", len(content), r.Usage.CompletionTokens, body)
	}
	for i, c := range content {
		if len(c.TopLogprobs) != 2 || c.TopLogprobs[0].Logprob != c.Logprob || c.TopLogprobs[1].Logprob > c.TopLogprobs[0].Logprob || len(c.Bytes) != len(c.Token) {
			t.Errorf("chat token %d: %+v", i, c)
		}
	}
	// Without logprobs, none.
	code, body, _ = ts.post(t, "/v1/completions", map[string]any{"prompt": "Hello", "max_tokens": 3})
	if code != http.StatusOK || !strings.Contains(string(body), `"logprobs":null`) {
		t.Errorf("no logprobs asked: %s", body)
	}
}

// TestStates: POST /v1/states/{id} saves a prompt's state to the state
// folder; a request naming it (on another server, as after a restart)
// continues it with the same output as the whole prompt run alone; GET
// describes it, DELETE removes it; a state of another model, a damaged
// file and a bad id are refused.
func TestStates(t *testing.T) {
	dir := t.TempDir()
	first := newTestServer(t, "memmamba-priority", Config{StateDir: dir})
	code, body, _ := first.post(t, "/v1/states/conv-1", map[string]any{"prompt": "The first part of a long conversation. "})
	if code != http.StatusOK || !strings.Contains(string(body), `"tokens":39`) {
		t.Fatalf("save: %d %s", code, body)
	}
	if code, body := first.get(t, "/v1/states/conv-1"); code != http.StatusOK || !strings.Contains(string(body), `"tokens":39`) {
		t.Errorf("describe: %d %s", code, body)
	}
	// A new server (a new process) on the same folder continues it.
	second := newTestServer(t, "memmamba-priority", Config{StateDir: dir, StateCacheBytes: -1})
	for name, p := range samplings() {
		want, finish, _ := reference(t, second.m, "The first part of a long conversation. And then", p, 12, nil)
		req := request("And then", p, 12)
		req["state"] = "conv-1"
		c := second.complete(t, req)
		if c.Choices[0].Text != want || *c.Choices[0].FinishReason != finish {
			t.Errorf("%s: continued %q, the whole prompt alone %q", name, c.Choices[0].Text, want)
		}
		if c.Usage.PromptTokens != 47 || c.Usage.PromptTokensDetails.CachedTokens != 39 {
			t.Errorf("%s: usage %+v, want 47 prompt tokens of which 39 from the state", name, c.Usage)
		}
	}
	// Saving from a saved state, and from chat messages.
	code, body, _ = second.post(t, "/v1/states/conv-2", map[string]any{"prompt": "More.", "state": "conv-1"})
	if code != http.StatusOK || !strings.Contains(string(body), `"tokens":44`) {
		t.Errorf("save from a state: %d %s", code, body)
	}
	code, body, _ = second.post(t, "/v1/states/chat", map[string]any{"messages": []map[string]any{{"role": "user", "content": "Hi"}}})
	if code != http.StatusOK || !strings.Contains(string(body), `"tokens":10`) { // "User: Hi\n\n"
		t.Errorf("save chat: %d %s", code, body)
	}
	// Refusals.
	other := newTestServer(t, "mamba-tiny", Config{StateDir: dir})
	req := map[string]any{"prompt": "x", "state": "conv-1", "max_tokens": 2}
	code, body, _ = other.post(t, "/v1/completions", req)
	if code != http.StatusBadRequest || !strings.Contains(string(body), "model") {
		t.Errorf("a state of another model: %d %s", code, body)
	}
	t.Logf("a state of another model: %s", body)
	if err := os.WriteFile(filepath.Join(dir, "bad.mmstate"), []byte("MMSRVST1\x02\x00\x00\x00garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		state  string
		status int
	}{{"bad", 400}, {"missing", 404}, {".hidden", 400}, {"a b", 400}} {
		req["state"] = c.state
		code, body, _ := second.post(t, "/v1/completions", req)
		if code != c.status {
			t.Errorf("state %q: %d, want %d: %s", c.state, code, c.status, body)
		}
		checkErrorShape(t, body, "invalid_request_error")
	}
	if code, body, _ := second.post(t, "/v1/states/x", map[string]any{"prompt": ""}); code != 400 {
		t.Errorf("saving an empty prompt: %d %s", code, body)
	}
	if code, body, _ := second.post(t, "/v1/states/x", `{"prompt": "a", "messages": []}`); code != 400 {
		t.Errorf("prompt and messages: %d %s", code, body)
	}
	del, _ := http.NewRequest(http.MethodDelete, second.url+"/v1/states/conv-1", nil)
	if resp, err := http.DefaultClient.Do(del); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("delete: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if code, _ := second.get(t, "/v1/states/conv-1"); code != http.StatusNotFound {
		t.Errorf("a deleted state: %d", code)
	}
	noDir := newTestServer(t, "mamba-tiny", Config{})
	if code, body, _ := noDir.post(t, "/v1/states/x", map[string]any{"prompt": "a"}); code != http.StatusNotFound {
		t.Errorf("without a state folder: %d %s", code, body)
	}
}

// TestSlowBody: a body sent too slowly gets 400 once bodyReadTimeout
// passes, and its handler goes.
func TestSlowBody(t *testing.T) {
	old := bodyReadTimeout
	bodyReadTimeout = 100 * time.Millisecond
	defer func() { bodyReadTimeout = old }()
	ts := newTestServer(t, "mamba-tiny", Config{})
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"prompt\":")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v\n%s", err, ts.log.String())
	}
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	checkErrorShape(t, body, "invalid_request_error")
}
