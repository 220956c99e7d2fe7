package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/memmamba/memmamba/convert"
	"github.com/memmamba/memmamba/engine"
	"github.com/memmamba/memmamba/internal/fixtures"
	"github.com/memmamba/memmamba/quant"
)

// convDir holds the fixtures converted for this test binary.
var convDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "server-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	convDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	convMu    sync.Mutex
	converted = map[string]string{}
)

// modelFile converts fixture name (or "trained/NAME") once per binary and
// returns the model file.
func modelFile(t testing.TB, name string) string {
	t.Helper()
	convMu.Lock()
	defer convMu.Unlock()
	if p, ok := converted[name]; ok {
		return p
	}
	g, err := fixtures.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(convDir, strings.ReplaceAll(name, "/", "_")+".mmq")
	if _, err := convert.Convert(g.Source(), out, convert.Options{
		Policy: convert.Policy{Type: quant.F32}, Created: time.Unix(0, 0).UTC(),
	}); err != nil {
		t.Fatalf("convert %s: %v", name, err)
	}
	converted[name] = out
	return out
}

// openModel opens a fixture model, closed at the test's end.
func openModel(t testing.TB, name string) *engine.Model {
	t.Helper()
	m, err := engine.Open(modelFile(t, name), engine.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// testServer is a started Server behind an httptest.Server.
type testServer struct {
	*Server
	ts  *httptest.Server
	url string
	log *syncBuffer
}

// syncBuffer is a log the server writes and the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// newTestServer starts a server on model (a fixture name) with cfg, and
// checks at the test's end that no goroutine it started is left.
func newTestServer(t *testing.T, model string, cfg Config) *testServer {
	t.Helper()
	before := runtime.NumGoroutine()
	m := openModel(t, model)
	lb := &syncBuffer{}
	if cfg.Log == nil {
		cfg.Log = lb
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(m); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		ts.CloseClientConnections()
		ts.Close()
		s.Close()
		http.DefaultClient.CloseIdleConnections()
		checkGoroutines(t, before)
	})
	return &testServer{Server: s, ts: ts, url: ts.URL, log: lb}
}

// checkGoroutines waits up to 5 s for the goroutine count to fall back to
// before (the model's worker pool is closed by a later cleanup, so its
// goroutines are allowed for).
func checkGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= before+8 { // the model's worker pool (Threads: 2) and the runtime's own
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Errorf("%d goroutines left, %d before:\n%s", n, before, buf)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// post sends body (a value to marshal, or a string sent as is) and
// returns the status and the response body.
func (ts *testServer) post(t *testing.T, path string, body any, header ...string) (int, []byte, http.Header) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(http.MethodPost, ts.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out, resp.Header
}

// get fetches path.
func (ts *testServer) get(t *testing.T, path string, header ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, ts.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// completion is the part of a completion response the tests read.
type completion struct {
	Object  string `json:"object"`
	Choices []struct {
		Text         string  `json:"text"`
		FinishReason *string `json:"finish_reason"`
		Message      *struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"message"`
		Delta *struct {
			Role    string  `json:"role"`
			Content *string `json:"content"`
		} `json:"delta"`
	} `json:"choices"`
	Usage *usage `json:"usage"`
}

// complete runs a non-streaming completion and decodes it.
func (ts *testServer) complete(t *testing.T, req map[string]any) completion {
	t.Helper()
	code, body, _ := ts.post(t, "/v1/completions", req)
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	var c completion
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if len(c.Choices) != 1 || c.Choices[0].FinishReason == nil || c.Usage == nil {
		t.Fatalf("incomplete response: %s", body)
	}
	return c
}

// readSSE reads a stream of server-sent events: the JSON chunks, and
// whether it ended with [DONE]. Every event must be "data: ...\n\n".
func readSSE(t *testing.T, r io.Reader) ([]completion, bool) {
	t.Helper()
	br := bufio.NewReader(r)
	var out []completion
	for {
		line, err := br.ReadString('\n')
		if err == io.EOF && line == "" {
			return out, false
		}
		if err != nil {
			t.Fatalf("reading the stream: %v", err)
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("event line %q does not start with 'data: '", line)
		}
		if blank, _ := br.ReadString('\n'); blank != "\n" {
			t.Fatalf("event %q not followed by a blank line (got %q)", line, blank)
		}
		data = strings.TrimSuffix(data, "\n")
		if data == "[DONE]" {
			if rest, _ := io.ReadAll(br); len(rest) > 0 {
				t.Fatalf("data after [DONE]: %q", rest)
			}
			return out, true
		}
		var c completion
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			t.Fatalf("event %q: %v", data, err)
		}
		out = append(out, c)
	}
}
