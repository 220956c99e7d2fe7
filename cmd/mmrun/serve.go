package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/memmamba/memmamba/internal/cli"
	"github.com/memmamba/memmamba/server"
)

const serveUsage = `Usage: mmrun serve -m MODEL [--host 127.0.0.1] [--port 8080] [--parallel N]
       [--state-cache-mb 512] [--cache-every 256] [--api-key KEY] [--threads N]

Serves the model over an OpenAI-compatible HTTP API: POST /v1/completions,
POST /v1/chat/completions (stream: true for server-sent events), GET
/v1/models, GET /health (503 while the model loads, then 200), POST
/tokenize, POST /detokenize, GET /metrics (Prometheus), and with
--state-dir POST/GET/DELETE /v1/states/ID (a conversation's state saved to
disk; "state": "ID" in a request continues it). Requests are
batched together (--parallel at a time, then a queue of --queue, then 429);
the recurrent state at the end of every prompt and completion is cached, so
a request that extends one seen before (the next turn of a chat) reads only
its new tokens. Logs one line per request to stderr. SIGTERM or SIGINT stops
accepting, lets running requests finish (--shutdown-timeout), exits 0.

Flags:
`

// serveFlags bound.
const (
	maxParallel     = 1024
	maxQueue        = 1 << 16
	maxStateCacheMB = 1 << 20
)

func serve(args []string) error {
	fs := pflag.NewFlagSet("mmrun serve", pflag.ContinueOnError)
	var mf modelFlags
	mf.register(fs)
	host := fs.String("host", "127.0.0.1", "address to listen on (loopback by default; 0.0.0.0 for every interface)")
	port := fs.Int("port", 8080, "port to listen on (0: any free port, printed at start)")
	parallel := fs.Int("parallel", server.DefaultParallel, fmt.Sprintf("sequences decoded together (1 to %d)", maxParallel))
	queue := fs.Int("queue", server.DefaultQueueSize, fmt.Sprintf("requests waiting beyond --parallel before 429 (1 to %d)", maxQueue))
	cacheMB := fs.Int("state-cache-mb", server.DefaultStateCacheBytes>>20, fmt.Sprintf("MiB of recurrent states kept for prefix reuse (0: off; at most %d)", maxStateCacheMB))
	cacheEvery := fs.Int("cache-every", server.DefaultCacheEvery, "also cache the state every this many tokens inside long prompts (0: only at prompt and completion ends)")
	apiKey := fs.String("api-key", "", "require Authorization: Bearer KEY on every endpoint but /health (default $MMRUN_API_KEY)")
	name := fs.String("alias", "", "model id in /v1/models and responses (default: the model file's name without extension)")
	maxPrompt := fs.Int("max-prompt-tokens", server.DefaultMaxPromptTokens, "longest prompt accepted, in tokens (longer: 400)")
	maxTok := fs.Int("max-tokens", server.DefaultMaxTokens, "largest max_tokens accepted (larger: 400)")
	maxBody := fs.Int64("max-body-bytes", server.DefaultMaxBodyBytes, "largest request body accepted (larger: 413)")
	reqTimeout := fs.Duration("request-timeout", server.DefaultRequestTimeout, "longest a generation may run (then 504)")
	shutdown := fs.Duration("shutdown-timeout", 30*time.Second, "how long SIGTERM waits for running requests")
	stateDir := fs.String("state-dir", "", "folder where POST /v1/states/ID saves conversation states (default: saved states off)")
	if err := parse(fs, args, serveUsage); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return cli.Usagef("unexpected argument %q", fs.Arg(0))
	}
	switch {
	case mf.model == "":
		return cli.Usagef("-m MODEL is required")
	case *port < 0 || *port > 65535:
		return cli.Usagef("--port must be 0 to 65535, got %d", *port)
	case *parallel < 1 || *parallel > maxParallel:
		return cli.Usagef("--parallel must be 1 to %d, got %d", maxParallel, *parallel)
	case *queue < 1 || *queue > maxQueue:
		return cli.Usagef("--queue must be 1 to %d, got %d", maxQueue, *queue)
	case *cacheMB < 0 || *cacheMB > maxStateCacheMB:
		return cli.Usagef("--state-cache-mb must be 0 to %d, got %d", maxStateCacheMB, *cacheMB)
	case *cacheEvery < 0 || *cacheEvery > maxTokens:
		return cli.Usagef("--cache-every must be 0 to %d, got %d", maxTokens, *cacheEvery)
	case *maxPrompt < 1 || *maxPrompt > maxTokens || *maxTok < 1 || *maxTok > maxTokens:
		return cli.Usagef("--max-prompt-tokens and --max-tokens must be 1 to %d, got %d and %d", maxTokens, *maxPrompt, *maxTok)
	case *maxBody < 1 || *maxBody > 1<<30:
		return cli.Usagef("--max-body-bytes must be 1 to %d, got %d", 1<<30, *maxBody)
	case *reqTimeout <= 0 || *shutdown <= 0:
		return cli.Usagef("--request-timeout and --shutdown-timeout must be positive")
	}
	if *stateDir != "" {
		if st, err := os.Stat(*stateDir); err != nil || !st.IsDir() {
			return cli.Usagef("--state-dir %s: not an existing folder", *stateDir)
		}
	}
	if *apiKey == "" {
		*apiKey = os.Getenv("MMRUN_API_KEY")
	}
	if *name == "" {
		*name = strings.TrimSuffix(filepath.Base(mf.model), filepath.Ext(mf.model))
	}
	cfg := server.Config{
		ModelName: *name, Parallel: *parallel, QueueSize: *queue, CacheEvery: *cacheEvery,
		StateCacheBytes: int64(*cacheMB) << 20, APIKey: *apiKey, MaxBodyBytes: *maxBody,
		MaxPromptTokens: *maxPrompt, MaxTokens: *maxTok, RequestTimeout: *reqTimeout, StateDir: *stateDir, Log: os.Stderr,
	}
	if *cacheMB == 0 {
		cfg.StateCacheBytes = -1
	}
	if *cacheEvery == 0 {
		cfg.CacheEvery = -1
	}
	if ip := net.ParseIP(*host); *apiKey == "" && (ip == nil || !ip.IsLoopback()) && *host != "localhost" {
		fmt.Fprintf(os.Stderr, "mmrun serve: warning: listening on %s without --api-key: anyone who can reach it can use the model\n", *host)
	}
	return runServer(cfg, &mf, net.JoinHostPort(*host, strconv.Itoa(*port)), *shutdown)
}

// runServer listens first (so /health answers 503 while the model loads),
// loads the model, serves until SIGTERM or SIGINT, then shuts down within
// grace: no new connections, running requests finish, then the scheduler
// stops.
func runServer(cfg server.Config, mf *modelFlags, addr string, grace time.Duration) error {
	srv, err := server.New(cfg)
	if err != nil {
		return cli.Usagef("%v", err)
	}
	// The server handles SIGTERM and SIGINT itself (a graceful stop, exit
	// 0) instead of cli's exit 143/130: it writes no temporary files.
	signal.Reset(os.Interrupt, syscall.SIGTERM)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	fmt.Fprintf(os.Stderr, "mmrun serve: listening on http://%s (loading %s)\n", ln.Addr(), mf.model)
	m, err := mf.open()
	if err != nil {
		hs.Close()
		return err
	}
	defer m.Close()
	if err := srv.Start(m); err != nil {
		hs.Close()
		return err
	}
	fmt.Fprintf(os.Stderr, "mmrun serve: ready: model %s, %d parallel sequences\n", cfg.ModelName, max(cfg.Parallel, 1))
	select {
	case err := <-served:
		srv.Close()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	stop()
	fmt.Fprintf(os.Stderr, "mmrun serve: shutting down (waiting up to %s for running requests)\n", grace)
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err = hs.Shutdown(sctx)
	srv.Close() // ends what is still running after the grace period
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err != nil {
		hs.Close()
		fmt.Fprintf(os.Stderr, "mmrun serve: requests still running after %s were ended\n", grace)
	}
	return nil
}
