package server

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/memmamba/memmamba/convert"
	"github.com/memmamba/memmamba/internal/fixtures"
	"github.com/memmamba/memmamba/quant"
)

// chatGolden is testdata/tokenizers/golden-chat.json, written by
// chat-golden.mjs with @huggingface/jinja.
type chatGolden struct {
	Templates []struct {
		Name     string `json:"name"`
		Template string `json:"template"`
		BOS      string `json:"bos_token"`
		EOS      string `json:"eos_token"`
	} `json:"templates"`
	Conversations []struct {
		Name     string        `json:"name"`
		Messages []chatMessage `json:"messages"`
	} `json:"conversations"`
	Renders []struct {
		Template            string  `json:"template"`
		Conversation        string  `json:"conversation"`
		AddGenerationPrompt bool    `json:"add_generation_prompt"`
		Text                *string `json:"text"`
		Error               string  `json:"error"`
	} `json:"renders"`
}

// TestChatGolden: the Go renderer gives, byte for byte, what Hugging
// Face's own Jinja (@huggingface/jinja) gives for real chat templates
// (Llama 3's and Qwen 3's tokenizer_config.json, from the npm packages of
// the tokenizer goldens) and two written for what those lack
// (raise_exception, loop.first/last, .strip(), multi-line whitespace
// control), on system+user, multi-turn, assistant-last and odd-whitespace
// conversations, with and without add_generation_prompt; a template that
// raises fails here too, with its message.
func TestChatGolden(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "tokenizers", "golden-chat.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g chatGolden
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	tmpls := map[string]*chatTemplate{}
	for _, tp := range g.Templates {
		c := newChatTemplate(map[string]string{metaChatTemplate: tp.Template, metaBOSToken: tp.BOS, metaEOSToken: tp.EOS})
		if c.parseErr != nil {
			t.Fatalf("template %s: %v", tp.Name, c.parseErr)
		}
		tmpls[tp.Name] = c
	}
	convs := map[string][]map[string]any{}
	for _, c := range g.Conversations {
		msgs, e := templateMessages(c.Messages)
		if e != nil {
			t.Fatalf("conversation %s: %v", c.Name, e)
		}
		convs[c.Name] = msgs
	}
	if len(g.Renders) < 40 {
		t.Fatalf("only %d renderings in the golden file", len(g.Renders))
	}
	for _, r := range g.Renders {
		got, err := tmpls[r.Template].render(convs[r.Conversation], r.AddGenerationPrompt)
		what := r.Template + "/" + r.Conversation
		if !r.AddGenerationPrompt {
			what += "/no-generation-prompt"
		}
		switch {
		case r.Text == nil:
			if err == nil || !strings.Contains(err.Error(), r.Error) {
				t.Errorf("%s: error %v, @huggingface/jinja raises %q", what, err, r.Error)
			}
		case err != nil:
			t.Errorf("%s: %v", what, err)
		case got != *r.Text:
			t.Errorf("%s:\n got  %q\n want %q", what, got, *r.Text)
		}
	}
}

// chatmlTemplate is the ChatML-style template the serving tests convert
// into a model file.
const chatmlTemplate = "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'].strip() + '<|im_end|>\\n' }}{% endfor %}" +
	"{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

// templateModel converts fixture with a tokenizer_config.json whose
// chat_template is tmpl, and registers the file as name for newTestServer.
func templateModel(t *testing.T, fixture, name, tmpl string) {
	t.Helper()
	src := t.TempDir()
	ents, err := os.ReadDir(filepath.Join(fixtures.Dir(), fixture))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(fixtures.Dir(), fixture, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := json.Marshal(map[string]any{"chat_template": tmpl, "eos_token": "<|im_end|>", "bos_token": nil})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "tokenizer_config.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), name+".mmq")
	if _, err := convert.Convert(src, out, convert.Options{Policy: convert.Policy{Type: quant.F32}, Created: time.Unix(0, 0).UTC()}); err != nil {
		t.Fatal(err)
	}
	convMu.Lock()
	converted[name] = out
	convMu.Unlock()
	t.Cleanup(func() {
		convMu.Lock()
		delete(converted, name)
		convMu.Unlock()
	})
}

// TestChatThroughModelTemplate: a model file whose header carries a chat
// template (mmconvert took it from tokenizer_config.json) has its chat
// messages rendered through it: the prompt's token count is that of the
// ChatML rendering, the greedy answer is mmrun generate's on that text
// (stopping at the template's eos_token), streaming agrees, and a state
// saved from messages is the rendering without the generation prompt.
func TestChatThroughModelTemplate(t *testing.T) {
	templateModel(t, "mamba-bias-untied", "chatml", chatmlTemplate)
	ts := newTestServer(t, "chatml", Config{StateDir: t.TempDir()})
	if !strings.Contains(ts.log.String(), "chat template: the model's own") {
		t.Errorf("the load log does not name the template:\n%s", ts.log.String())
	}
	msgs := []map[string]any{{"role": "developer", "content": "Be kind."}, {"role": "user", "content": []map[string]string{{"type": "text", "text": " Hi "}}}}
	rendered := "<|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
	tokens := func(text string) int {
		code, body, _ := ts.post(t, "/tokenize", map[string]string{"content": text})
		var r struct{ Tokens []int }
		if code != http.StatusOK || json.Unmarshal(body, &r) != nil {
			t.Fatalf("tokenize: %d %s", code, body)
		}
		return len(r.Tokens)
	}
	plain, e := renderChat([]chatMessage{{Role: "system", Content: json.RawMessage(`"Be kind."`)}, {Role: "user", Content: json.RawMessage(`"Hi"`)}})
	if e != nil {
		t.Fatal(e)
	}
	if tokens(plain) == tokens(rendered) {
		t.Fatalf("the plain and the ChatML renderings have the same token count: the test cannot tell them apart")
	}

	p := samplings()["greedy"]
	req := request("", p, 24)
	delete(req, "prompt")
	req["messages"] = msgs
	code, body, _ := ts.post(t, "/v1/chat/completions", req)
	if code != http.StatusOK {
		t.Fatalf("chat: %d %s", code, body)
	}
	var c completion
	if err := json.Unmarshal(body, &c); err != nil || c.Usage == nil || c.Choices[0].Message == nil {
		t.Fatalf("chat response %s (%v)", body, err)
	}
	if c.Usage.PromptTokens != tokens(rendered) {
		t.Errorf("prompt_tokens %d, the ChatML rendering has %d (the plain one %d)", c.Usage.PromptTokens, tokens(rendered), tokens(plain))
	}
	want, finish, _ := reference(t, ts.m, rendered, p, 24, []string{"<|im_end|>"})
	t.Logf("the answer: %q (%s); prompt %d tokens, %d with the plain template", want, finish, tokens(rendered), tokens(plain))
	if got := c.Choices[0].Message.Content; got != want || *c.Choices[0].FinishReason != finish {
		t.Errorf("chat answered %q (%s), mmrun generate on the rendering gives %q (%s)", got, *c.Choices[0].FinishReason, want, finish)
	}
	chunks, done := ts.stream(t, "/v1/chat/completions", req)
	var streamed strings.Builder
	for _, ch := range chunks {
		if len(ch.Choices) > 0 && ch.Choices[0].Delta != nil && ch.Choices[0].Delta.Content != nil {
			streamed.WriteString(*ch.Choices[0].Delta.Content)
		}
	}
	if !done || streamed.String() != want {
		t.Errorf("streamed %q (done %v), want %q", streamed.String(), done, want)
	}

	// A saved state holds the rendering without the assistant's turn.
	code, body, _ = ts.post(t, "/v1/states/conv", map[string]any{"messages": msgs})
	if code != http.StatusOK {
		t.Fatalf("save: %d %s", code, body)
	}
	code, body = ts.get(t, "/v1/states/conv")
	var st struct{ Tokens int }
	if code != http.StatusOK || json.Unmarshal(body, &st) != nil {
		t.Fatalf("state: %d %s", code, body)
	}
	if n := tokens(strings.TrimSuffix(rendered, "<|im_start|>assistant\n")); st.Tokens != n {
		t.Errorf("saved state has %d tokens, the rendering without the generation prompt %d", st.Tokens, n)
	}
}

// TestChatTemplateErrors: a template that raises answers 400 in OpenAI's
// shape with the template's message; one that does not parse is named in
// the load log and answers 400 on chat while completions still work.
func TestChatTemplateErrors(t *testing.T) {
	strict := "{% if messages[0]['role'] != 'system' %}{{ raise_exception('the first message must be the system prompt') }}{% endif %}" + chatmlTemplate
	broken := "{% for m in messages %}{{ m['content'] }}"
	templateModel(t, "mamba-bias-untied", "strict", strict)
	templateModel(t, "mamba-bias-untied", "broken", broken)
	user := map[string]any{"max_tokens": 2, "messages": []map[string]any{{"role": "user", "content": "Hi"}}}

	ts := newTestServer(t, "strict", Config{})
	code, body, _ := ts.post(t, "/v1/chat/completions", user)
	checkAPIError(t, code, body, "the first message must be the system prompt")
	ok := map[string]any{"max_tokens": 2, "messages": []map[string]any{{"role": "system", "content": "S"}, {"role": "user", "content": "Hi"}}}
	if code, body, _ := ts.post(t, "/v1/chat/completions", ok); code != http.StatusOK {
		t.Errorf("a conversation the template accepts: %d %s", code, body)
	}
	code, body, _ = ts.post(t, "/v1/chat/completions", map[string]any{"messages": []map[string]any{{"role": "", "content": "Hi"}}})
	checkAPIError(t, code, body, "messages[0].role: required")

	tb := newTestServer(t, "broken", Config{})
	if !strings.Contains(tb.log.String(), "does not parse") {
		t.Errorf("the load log does not report the broken template:\n%s", tb.log.String())
	}
	code, body, _ = tb.post(t, "/v1/chat/completions", user)
	checkAPIError(t, code, body, "the model's chat template does not parse")
	if code, body, _ := tb.post(t, "/v1/completions", map[string]any{"prompt": "Hi", "max_tokens": 2}); code != http.StatusOK {
		t.Errorf("completions on a model whose template does not parse: %d %s", code, body)
	}
}

// checkAPIError checks a 400 in OpenAI's error shape whose message
// contains want.
func checkAPIError(t *testing.T, code int, body []byte, want string) {
	t.Helper()
	var e struct {
		Error struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Param   *string `json:"param"`
		} `json:"error"`
	}
	if code != http.StatusBadRequest || json.Unmarshal(body, &e) != nil || e.Error.Type != "invalid_request_error" ||
		e.Error.Param == nil || *e.Error.Param != "messages" || !strings.Contains(e.Error.Message, want) {
		t.Errorf("got %d %s, want 400 invalid_request_error on messages containing %q", code, body, want)
	}
}

// FuzzChatTemplate: any template text, compiled and rendered on a small
// conversation, gives a rendering or an error, never a panic (the
// library's are recovered into errors).
func FuzzChatTemplate(f *testing.F) {
	for _, s := range []string{chatmlTemplate, "{{ raise_exception('x') }}", "{% for m in messages %}{{ loop.index }}{% endfor %}",
		"{{ messages[0]['content'].strip().split(' ')[-1] | upper }}", "{% set ns = namespace(a=1) %}{{ ns.a + 1 }}", "{%- if x -%}\n a {%- endif %}"} {
		f.Add(s)
	}
	msgs := []map[string]any{{"role": "system", "content": " S "}, {"role": "user", "content": "Hi there"}}
	f.Fuzz(func(t *testing.T, src string) {
		if len(src) > 4096 {
			return
		}
		c := newChatTemplate(map[string]string{metaChatTemplate: src, metaBOSToken: "<s>", metaEOSToken: "</s>"})
		if c == nil {
			return
		}
		c.render(msgs, true)
	})
}
