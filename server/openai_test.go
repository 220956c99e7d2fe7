package server

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestOpenAIClient drives the server with the official openai npm package
// (testdata/openai/client.mjs: completions and chat, streamed and not, a
// stop string, a 400 and a 401), then checks the text it got against
// mmrun generate's. It needs Node.js and the package installed:
// cd server/testdata/openai && npm ci.
func TestOpenAIClient(t *testing.T) {
	dir := filepath.Join("testdata", "openai")
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openai", "package.json")); err != nil {
		t.Skip("the openai npm package is not installed: cd server/testdata/openai && npm ci")
	}
	ts := newTestServer(t, "trained/memmamba-kjv", Config{APIKey: "test-key", ModelName: "memmamba-kjv"})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, node, "client.mjs")
	c.Dir = dir
	c.Env = append(os.Environ(), "MMRUN_URL="+ts.url+"/v1", "MMRUN_API_KEY=test-key")
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		t.Fatalf("client.mjs: %v\n%s\nserver log:\n%s", err, stderr.String(), ts.log.String())
	}
	var out struct {
		Model      string `json:"model"`
		Completion struct {
			Text  string `json:"text"`
			Usage usage  `json:"usage"`
		} `json:"completion"`
		Chat struct {
			Content string `json:"content"`
		} `json:"chat"`
		NextTurnCached int `json:"nextTurnCached"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("client.mjs output %q: %v", stdout.String(), err)
	}
	p := samplings()["greedy"]
	want, _, _ := reference(t, ts.m, "And God said", p, 20, nil)
	if out.Completion.Text != want {
		t.Errorf("the client got %q, mmrun generate gives %q", out.Completion.Text, want)
	}
	chatPrompt := "System: You are the King James Bible.\n\nUser: In the beginning\n\nAssistant:"
	wantChat, _, _ := reference(t, ts.m, chatPrompt, p, 24, chatStops)
	if out.Chat.Content != wantChat {
		t.Errorf("the client's chat answer %q, mmrun generate gives %q", out.Chat.Content, wantChat)
	}
	if out.Model != "memmamba-kjv" || out.Completion.Usage.PromptTokens != len("And God said") {
		t.Errorf("model %q, usage %+v", out.Model, out.Completion.Usage)
	}
	t.Logf("client: %s", stdout.String())
}
