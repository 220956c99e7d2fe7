package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServe runs mmrun serve as a user would: it listens on loopback
// (port 0 picks a free one, printed), answers a completion, logs one line
// per request, and exits 0 on SIGTERM.
func TestServe(t *testing.T) {
	model := convertFixture(t, "mamba-tiny", "f32")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, filepath.Join(binDir, "mmrun"), "serve", "-m", model, "--port", "0", "--threads", "1", "--parallel", "2")
	stderr, err := c.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var url string
	addr := regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`)
	for url == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("mmrun serve ended before listening")
			}
			if m := addr.FindStringSubmatch(l); m != nil {
				url = m[1]
			}
		case <-ctx.Done():
			t.Fatal("mmrun serve did not say where it listens")
		}
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(url + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/health not 200 within 10 s (%v)", err)
		}
	}
	resp, err := http.Post(url+"/v1/completions", "application/json", strings.NewReader(`{"prompt":"Hello","max_tokens":4,"temperature":0}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var out struct {
		Model   string `json:"model"`
		Choices []struct {
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(body, &out); err != nil || resp.StatusCode != 200 || len(out.Choices) != 1 || out.Choices[0].FinishReason != "length" {
		t.Fatalf("completion: %d %s", resp.StatusCode, body)
	}
	if out.Model != "mamba-tiny.f32" {
		t.Errorf("model id %q, want the file's name", out.Model)
	}
	if err := c.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var log []string
	for l := range lines {
		log = append(log, l)
	}
	err = c.Wait()
	all := strings.Join(log, "\n")
	if err != nil {
		t.Fatalf("after SIGTERM: %v\n%s", err, all)
	}
	if !strings.Contains(all, "POST /v1/completions 200 prompt=5 cached=0 completion=4") {
		t.Errorf("no request line in the log:\n%s", all)
	}
}

// TestServeUsage: flags out of their bounds exit 2 before anything loads.
func TestServeUsage(t *testing.T) {
	for _, args := range [][]string{
		{"serve"},
		{"serve", "-m", "x.mmq", "--port", "70000"},
		{"serve", "-m", "x.mmq", "--parallel", "0"},
		{"serve", "-m", "x.mmq", "--state-cache-mb", "-1"},
		{"serve", "-m", "x.mmq", "--cache-every", "-5"},
		{"serve", "-m", "x.mmq", "--queue", "0"},
		{"serve", "-m", "x.mmq", "extra"},
	} {
		_, errOut, code := cmd(t, "", "mmrun", args...)
		if code != 2 {
			t.Errorf("mmrun %s: exit %d, want 2: %s", strings.Join(args, " "), code, errOut)
		}
	}
	_, errOut, code := cmd(t, "", "mmrun", "serve", "--help")
	if code != 0 {
		t.Errorf("serve --help: exit %d", code)
	}
	for _, flag := range []string{"--host", "--port", "--parallel", "--state-cache-mb", "--cache-every", "--api-key", "--threads"} {
		if !strings.Contains(errOut, flag) {
			t.Errorf("serve --help does not document %s", flag)
		}
	}
}
