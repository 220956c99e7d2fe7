// Package server is mmrun serve: an OpenAI-compatible HTTP API over one
// model, with continuous batching and a cache of recurrent states.
//
// One scheduler goroutine owns the model's engine.Batch: requests join the
// running batch at a step boundary (at most Config.Parallel sequences; a
// bounded queue beyond, then 429), each step holds one token of every
// decoding sequence and a chunk of the prompt of every prefilling one, and
// a client that goes away frees its slot at the next step. The state at
// the end of every prompt and completion, and every Config.CacheEvery
// tokens inside long prompts, is kept in an LRU cache keyed by its token
// prefix (cache.go), so a request that extends a prefix seen before (the
// next turn of a conversation) prefills only what is new. Results are bit
// for bit those of the same request run alone on a fresh session.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/memmamba/memmamba/engine"
	"github.com/memmamba/memmamba/tokenizer"
)

// Config configures a Server. Zero fields take the defaults below.
type Config struct {
	// ModelName is the id /v1/models lists and responses carry.
	ModelName string
	// Parallel bounds the sequences decoding together (default 4).
	Parallel int
	// QueueSize bounds the requests waiting for a slot (default 64);
	// beyond it a request gets 429 with Retry-After.
	QueueSize int
	// PrefillChunk is the most prompt tokens a sequence feeds in one step
	// (default 64), so that a long prompt does not stall the others'
	// decoding.
	PrefillChunk int
	// CacheEvery caches the state every this many tokens inside a prompt
	// (default 256; negative: only at the ends of prompts and completions).
	CacheEvery int
	// StateCacheBytes bounds the state cache (default 512 MiB; negative
	// turns the cache off).
	StateCacheBytes int64
	// APIKey, when set, is required as "Authorization: Bearer KEY" on
	// every endpoint but /health.
	APIKey string
	// MaxBodyBytes bounds a request body (default 8 MiB; above: 413).
	MaxBodyBytes int64
	// MaxPromptTokens bounds a prompt (default 65536; above: 400).
	MaxPromptTokens int
	// MaxTokens bounds max_tokens (default 8192; above: 400).
	MaxTokens int
	// RequestTimeout ends a generation that runs longer (default 10
	// minutes; negative: none).
	RequestTimeout time.Duration
	// StateDir, when set, is where POST /v1/states/{id} saves states
	// (states.go); empty turns saved states off.
	StateDir string
	// Log receives one line per request (nil: none).
	Log io.Writer
}

// Defaults of Config.
const (
	DefaultParallel        = 4
	DefaultQueueSize       = 64
	DefaultPrefillChunk    = 64
	DefaultCacheEvery      = 256
	DefaultStateCacheBytes = 512 << 20
	DefaultMaxBodyBytes    = 8 << 20
	DefaultMaxPromptTokens = 1 << 16
	DefaultMaxTokens       = 8192
	DefaultRequestTimeout  = 10 * time.Minute
	// Default max_tokens when a request gives none: OpenAI's 16 for
	// completions; for chat (no limit at OpenAI) a bounded 512.
	defaultCompletionTokens = 16
	defaultChatTokens       = 512
)

// withDefaults returns c with its zero fields set.
func (c Config) withDefaults() Config {
	set := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	set(&c.Parallel, DefaultParallel)
	set(&c.QueueSize, DefaultQueueSize)
	set(&c.PrefillChunk, DefaultPrefillChunk)
	set(&c.CacheEvery, DefaultCacheEvery)
	set(&c.MaxPromptTokens, DefaultMaxPromptTokens)
	set(&c.MaxTokens, DefaultMaxTokens)
	if c.StateCacheBytes == 0 {
		c.StateCacheBytes = DefaultStateCacheBytes
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.ModelName == "" {
		c.ModelName = "model"
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	return c
}

// check refuses settings out of range.
func (c Config) check() error {
	switch {
	case c.Parallel < 1 || c.Parallel > 1024:
		return fmt.Errorf("parallel sequences: want 1 to 1024, got %d", c.Parallel)
	case c.QueueSize < 1 || c.QueueSize > 1<<16:
		return fmt.Errorf("queue size: want 1 to 65536, got %d", c.QueueSize)
	case c.PrefillChunk < 1 || c.PrefillChunk > engine.BatchRows:
		return fmt.Errorf("prefill chunk: want 1 to %d tokens, got %d", engine.BatchRows, c.PrefillChunk)
	case c.MaxPromptTokens < 1 || c.MaxTokens < 1 || c.MaxBodyBytes < 1:
		return fmt.Errorf("limits must be positive (prompt tokens %d, max tokens %d, body bytes %d)", c.MaxPromptTokens, c.MaxTokens, c.MaxBodyBytes)
	}
	return nil
}

// Server is the HTTP API. It answers 503 on every endpoint until Start
// hands it the loaded model.
type Server struct {
	cfg     Config
	met     *metrics
	ready   atomic.Bool
	m       *engine.Model
	tok     tokenizer.Tokenizer
	eos     int
	tmpl    *chatTemplate // the model's chat template; nil: the plain one
	sched   *scheduler
	created int64
	stopMu  sync.Mutex
}

// New returns a server that is loading (health 503) until Start.
func New(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.check(); err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, met: newMetrics(), created: time.Now().Unix()}, nil
}

// Start serves m (which must stay open until Close has returned) and
// starts the scheduler.
func (s *Server) Start(m *engine.Model) error {
	tok, err := m.Tokenizer()
	if err != nil {
		return err
	}
	s.stopMu.Lock()
	defer s.stopMu.Unlock()
	if s.sched != nil {
		return errors.New("server: already started")
	}
	s.m, s.tok, s.eos = m, tok, tok.Specials().EOS
	s.tmpl = newChatTemplate(m.Header.Metadata)
	fmt.Fprintln(s.cfg.Log, s.tmpl.describe())
	s.sched = newScheduler(m, tok, s.cfg, s.met)
	s.ready.Store(true)
	return nil
}

// Close stops the scheduler: generations still queued or running end
// with a 503 (or an error event on a stream). Call it after the HTTP
// server's Shutdown has let the running requests finish.
func (s *Server) Close() {
	s.stopMu.Lock()
	defer s.stopMu.Unlock()
	s.ready.Store(false)
	if s.sched != nil {
		s.sched.close()
	}
}

// reqInfo collects what the log line reports of a request.
type reqInfo struct {
	prompt, cached, completion int
}

type infoKey struct{}

// info returns the request's log record.
func info(r *http.Request) *reqInfo {
	if i, ok := r.Context().Value(infoKey{}).(*reqInfo); ok {
		return i
	}
	return &reqInfo{}
}

// statusWriter records the status a handler answers, and passes Flush on.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// endpoints are the paths the metrics name (any other is "other").
var endpoints = map[string]bool{
	"/health": true, "/metrics": true, "/v1/models": true, "/v1/completions": true,
	"/v1/chat/completions": true, "/tokenize": true, "/detokenize": true, "/v1/states": true,
}

// ServeHTTP routes a request, recovers a panic into a 500 and logs one
// line: method, path, status, tokens, time.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	ri := &reqInfo{}
	r = r.WithContext(context.WithValue(r.Context(), infoKey{}, ri))
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			if !sw.wrote {
				writeError(sw, &apiError{Status: http.StatusInternalServerError, Type: "server_error",
					Message: fmt.Sprintf("internal error: %v", v)})
			}
		}
		status := sw.status
		if !sw.wrote && r.Context().Err() != nil {
			status = 499 // the client went away before an answer
		}
		ep := r.URL.Path
		if strings.HasPrefix(ep, "/v1/states/") {
			ep = "/v1/states"
		}
		if !endpoints[ep] {
			ep = "other"
		}
		s.met.requests.WithLabelValues(ep, fmt.Sprint(status)).Inc()
		fmt.Fprintf(s.cfg.Log, "%s %s %s %d prompt=%d cached=%d completion=%d %.3fs\n",
			r.RemoteAddr, r.Method, r.URL.Path, status, ri.prompt, ri.cached, ri.completion, time.Since(start).Seconds())
	}()
	s.route(sw, r)
}

// route dispatches by path and method, after the API key and readiness
// checks.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	type route struct {
		method string
		h      func(http.ResponseWriter, *http.Request)
		model  bool // needs the model loaded
	}
	routes := map[string]route{
		"/health":              {http.MethodGet, s.health, false},
		"/metrics":             {http.MethodGet, s.metricsHandler, false},
		"/v1/models":           {http.MethodGet, s.models, false},
		"/v1/completions":      {http.MethodPost, s.completions, true},
		"/v1/chat/completions": {http.MethodPost, s.chat, true},
		"/tokenize":            {http.MethodPost, s.tokenize, true},
		"/detokenize":          {http.MethodPost, s.detokenize, true},
	}
	if r.URL.Path != "/health" && !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="mmrun"`)
		writeError(w, (&apiError{Status: http.StatusUnauthorized, Type: "invalid_request_error",
			Message: "a valid API key is required: send Authorization: Bearer KEY"}).withCode("invalid_api_key"))
		return
	}
	if strings.HasPrefix(r.URL.Path, "/v1/states/") {
		routes[r.URL.Path] = route{r.Method, s.states, true} // states checks the method
	}
	rt, ok := routes[r.URL.Path]
	if !ok {
		writeError(w, &apiError{Status: http.StatusNotFound, Type: "invalid_request_error",
			Message: fmt.Sprintf("no endpoint %s %s", r.Method, r.URL.Path)})
		return
	}
	if r.Method != rt.method && !(rt.method == http.MethodGet && r.Method == http.MethodHead) {
		w.Header().Set("Allow", rt.method)
		writeError(w, &apiError{Status: http.StatusMethodNotAllowed, Type: "invalid_request_error",
			Message: fmt.Sprintf("%s takes %s, not %s", r.URL.Path, rt.method, r.Method)})
		return
	}
	if rt.model && !s.ready.Load() {
		writeUnavailable(w, "the model is loading")
		return
	}
	rt.h(w, r)
}

// writeUnavailable answers 503 with Retry-After.
func writeUnavailable(w http.ResponseWriter, why string) {
	w.Header().Set("Retry-After", "1")
	writeError(w, &apiError{Status: http.StatusServiceUnavailable, Type: "server_error", Message: why})
}

// health answers 200 when the model is loaded, 503 while it loads.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	if !s.ready.Load() {
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "loading"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// metricsHandler serves the Prometheus metrics.
func (s *Server) metricsHandler(w http.ResponseWriter, r *http.Request) {
	s.met.handler().ServeHTTP(w, r)
}

// models lists the one model served.
func (s *Server) models(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"object": "list",
		"data":   []map[string]any{{"id": s.cfg.ModelName, "object": "model", "created": s.created, "owned_by": "mmrun"}},
	})
}

// readRequest reads the request's body (readBody) and decodes its JSON
// into v (decodeBody); on failure it writes the error response and
// returns false.
func (s *Server) readRequest(w http.ResponseWriter, r *http.Request, v any) bool {
	body, e := s.readBody(w, r)
	if e == nil {
		e = decodeBody(body, v)
	}
	if e != nil {
		writeError(w, e)
		return false
	}
	return true
}

// readBody reads the request body within Config.MaxBodyBytes (413 above).
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *apiError) {
	// A client that sends its body slowly gets bodyReadTimeout for all of
	// it (http.Server.ReadTimeout would also cut a long stream's
	// connection), then the connection goes back to no deadline.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(bodyReadTimeout))
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err == nil {
		rc.SetReadDeadline(time.Time{})
	} else {
		// The rest of the body is not worth waiting for: answer, then close.
		w.Header().Set("Connection", "close")
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return nil, (&apiError{Status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error",
				Message: fmt.Sprintf("the request body is over the bound of %d bytes", mb.Limit)}).withCode("request_too_large")
		}
		return nil, badRequest("", "reading the request body: %v", err)
	}
	return b, nil
}

// bodyReadTimeout bounds the reading of a request body.
var bodyReadTimeout = time.Minute // a variable for the tests

// randomSeed seeds a request that gives none.
func randomSeed() uint64 { return rand.Uint64() }

// newID returns a response id with prefix.
func newID(prefix string) string {
	return fmt.Sprintf("%s-%016x%08x", prefix, rand.Uint64(), rand.Uint32())
}
