package server

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The load test and the multi-turn benchmark run only when asked:
//
//	go test ./server -run TestLoad -serve.load [-serve.load.n 320] -v
//	go test ./server -run TestMultiTurn -serve.multiturn -v
var (
	loadFlag      = flag.Bool("serve.load", false, "run the load test (TestLoad)")
	loadN         = flag.Int("serve.load.n", 320, "requests of the load test")
	loadClients   = flag.Int("serve.load.clients", 32, "concurrent clients of the load test")
	multiTurnFlag = flag.Bool("serve.multiturn", false, "run the multi-turn benchmark (TestMultiTurn)")
	benchModel    = flag.String("serve.model", "trained/memmamba-kjv", "fixture or trained model of the load test and the benchmark")
)

// heldout returns the KJV held-out text (prompts for the load tests).
func heldout(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "trained", "kjv", "heldout.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// streamTimes posts a streaming completion and returns its text, the time
// to its first text chunk and the gaps between text chunks; cancelAfter > 0
// drops the connection after that many chunks.
func streamTimes(ctx context.Context, url string, req map[string]any, cancelAfter int) (string, time.Duration, []time.Duration, error) {
	req["stream"] = true
	js, _ := json.Marshal(req)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hr, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/completions", strings.NewReader(string(js)))
	start := time.Now()
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		return "", 0, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", 0, nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	var text strings.Builder
	var ttft time.Duration
	var gaps []time.Duration
	last := start
	chunks := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if line == "[DONE]" {
			return text.String(), ttft, gaps, nil
		}
		var c completion
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			return "", 0, nil, fmt.Errorf("chunk %q: %v", line, err)
		}
		if len(c.Choices) == 0 || c.Choices[0].Text == "" {
			continue
		}
		now := time.Now()
		if chunks == 0 {
			ttft = now.Sub(start)
		} else {
			gaps = append(gaps, now.Sub(last))
		}
		last = now
		text.WriteString(c.Choices[0].Text)
		chunks++
		if cancelAfter > 0 && chunks == cancelAfter {
			return text.String(), ttft, gaps, context.Canceled
		}
	}
	return "", 0, nil, fmt.Errorf("the stream ended without [DONE]: %v", sc.Err())
}

// quantile returns the q-quantile of d (sorted in place).
func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[min(len(d)-1, int(q*float64(len(d))))]
}

// heapInUse is the live heap after a GC.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestLoad: 32 concurrent clients, several hundred requests of mixed
// prompt lengths, half streaming, a tenth cancelled mid-way: no server
// error, every finished output equal to the same request run alone, the
// heap back within the state cache's budget after the run. Prints
// requests/s, tokens/s and p50/p99 time to first token and inter-token
// latency.
func TestLoad(t *testing.T) {
	if !*loadFlag {
		t.Skip("the load test runs with -serve.load")
	}
	text := heldout(t)
	const cacheBudget = 16 << 20 // small enough to fill in the first half
	ts := newTestServer(t, *benchModel, Config{Parallel: 16, QueueSize: 1024, StateCacheBytes: cacheBudget})
	type job struct {
		prompt string
		p      map[string]any
		n      int
		stream bool
		cancel int
		want   string
	}
	rng := rand.New(rand.NewPCG(1, 2))
	jobs := make([]job, *loadN)
	for i := range jobs {
		at := rng.IntN(len(text) - 5000)
		plen := []int{8, 64, 300, 1500, 4000}[rng.IntN(5)]
		j := job{prompt: text[at : at+plen], n: 8 + rng.IntN(56), stream: rng.IntN(2) == 0}
		p := samplings()[[]string{"greedy", "seeded"}[rng.IntN(2)]]
		p.Seed = uint64(i)
		j.p = request(j.prompt, p, j.n)
		if j.stream && rng.IntN(5) == 0 {
			j.cancel = 1 + rng.IntN(4)
		}
		if j.cancel == 0 {
			j.want, _, _ = reference(t, ts.m, j.prompt, p, j.n, nil)
		}
		jobs[i] = j
	}
	var mu sync.Mutex
	var ttfts, itls []time.Duration
	var tokens, cancelled int
	// run sends jobs[from:to] from the clients and waits for them all.
	run := func(from, to int) {
		var wg sync.WaitGroup
		next := make(chan int)
		for range *loadClients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					j := jobs[i]
					if !j.stream {
						c := ts.complete(t, j.p)
						if c.Choices[0].Text != j.want {
							t.Errorf("request %d: %q, alone %q", i, c.Choices[0].Text, j.want)
						}
						mu.Lock()
						tokens += c.Usage.CompletionTokens
						mu.Unlock()
						continue
					}
					got, ttft, gaps, err := streamTimes(context.Background(), ts.url, j.p, j.cancel)
					mu.Lock()
					switch {
					case j.cancel > 0 && err == context.Canceled:
						cancelled++
					case err != nil:
						t.Errorf("request %d: %v", i, err)
					case got != j.want:
						t.Errorf("request %d (streamed): %q, alone %q", i, got, j.want)
					default:
						tokens += j.n
					}
					if err == nil || j.cancel > 0 {
						ttfts = append(ttfts, ttft)
						itls = append(itls, gaps...)
					}
					mu.Unlock()
				}
			}()
		}
		for i := from; i < to; i++ {
			next <- i
		}
		close(next)
		wg.Wait()
		waitFor(t, "every sequence to leave", func() bool { return gaugeValue(ts.met.active) == 0 })
	}
	// Two halves: the heap after the second must be where the first left
	// it (the cache fills up to its budget in the first).
	before := heapInUse()
	start := time.Now()
	run(0, len(jobs)/2)
	mid := heapInUse()
	run(len(jobs)/2, len(jobs))
	elapsed := time.Since(start)
	if strings.Contains(ts.log.String(), " 500 ") || strings.Contains(ts.log.String(), " 503 ") {
		t.Errorf("server errors:\n%s", ts.log.String())
	}
	after := heapInUse()
	t.Logf("%d requests (%d cancelled) from %d clients in %.2fs: %.1f requests/s, %.0f generated tok/s; time to first token p50 %v p99 %v; inter-token p50 %v p99 %v; heap in use %.1f MiB before, %.1f MiB after half the requests, %.1f MiB after all (state cache %.1f MiB of its %d MiB)",
		len(jobs), cancelled, *loadClients, elapsed.Seconds(), float64(len(jobs))/elapsed.Seconds(), float64(tokens)/elapsed.Seconds(),
		quantile(ttfts, 0.5).Round(time.Microsecond), quantile(ttfts, 0.99).Round(time.Microsecond),
		quantile(itls, 0.5).Round(time.Microsecond), quantile(itls, 0.99).Round(time.Microsecond),
		float64(before)/(1<<20), float64(mid)/(1<<20), float64(after)/(1<<20), gaugeValue(ts.met.cacheBytes)/(1<<20), cacheBudget>>20)
	if after > mid+mid/10+8<<20 {
		t.Errorf("the heap grew from %d bytes after half the requests to %d after all", mid, after)
	}
}

// TestMultiTurn: a 20-turn conversation growing to about 16k tokens; the
// time to first token of each turn with the state cache on (flat: only the
// new turn is read) and off (grows with the context).
func TestMultiTurn(t *testing.T) {
	if !*multiTurnFlag {
		t.Skip("the multi-turn benchmark runs with -serve.multiturn")
	}
	text := heldout(t)
	on := newTestServer(t, *benchModel, Config{Parallel: 1})
	off := newTestServer(t, *benchModel, Config{Parallel: 1, StateCacheBytes: -1})
	p := samplings()["greedy"]
	const turns, perTurn = 20, 800
	convOn, convOff := "", ""
	t.Logf("turn  context  ttft-cache-on  ttft-cache-off  cached-tokens")
	var first, last [2]time.Duration
	for turn := range turns {
		user := "User: " + text[turn*perTurn:(turn+1)*perTurn] + "\n\nAssistant:"
		convOn += user
		convOff += user
		var ttft [2]time.Duration
		var cached int
		for k, ts := range []*testServer{on, off} {
			conv := []*string{&convOn, &convOff}[k]
			got, tt, _, err := streamTimes(context.Background(), ts.url, request(*conv, p, 16), 0)
			if err != nil {
				t.Fatal(err)
			}
			ttft[k] = tt
			*conv += got + "\n\n"
			if k == 0 {
				// The cached tokens of this turn, from the log line.
				lines := strings.Split(strings.TrimSpace(ts.log.String()), "\n")
				fmt.Sscanf(lines[len(lines)-1][strings.Index(lines[len(lines)-1], "cached="):], "cached=%d", &cached)
			}
		}
		if convOn != convOff {
			t.Fatalf("turn %d: the conversations differ with the cache on and off", turn)
		}
		if turn == 0 {
			first = ttft
		}
		last = ttft
		t.Logf("%4d  %7d  %13v  %14v  %13d", turn+1, len(convOn), ttft[0].Round(time.Microsecond), ttft[1].Round(time.Microsecond), cached)
	}
	t.Logf("first turn: on %v off %v; last turn: on %v off %v", first[0], first[1], last[0], last[1])
	if last[0] > 3*first[0]+20*time.Millisecond {
		t.Errorf("with the cache, the last turn's time to first token %v is not flat (first %v)", last[0], first[0])
	}
}
