package convert

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/memmamba/memmamba/convert/gguf"
	"github.com/memmamba/memmamba/format"
	"github.com/memmamba/memmamba/quant"
)

// chatml is a small ChatML template for the tests.
const chatml = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"

// TestParseChatMeta: the shapes of tokenizer_config.json that Hugging Face
// writes give the template and the special tokens; other shapes are
// refused with the key named.
func TestParseChatMeta(t *testing.T) {
	cases := []struct {
		name, json string
		want       map[string]string
		err        string
	}{
		{"string", `{"chat_template": "T", "bos_token": "<s>", "eos_token": "</s>"}`,
			map[string]string{MetaChatTemplate: "T", MetaBOSToken: "<s>", MetaEOSToken: "</s>"}, ""},
		{"added-token objects", `{"chat_template": "T", "bos_token": {"content": "<s>", "lstrip": false}, "eos_token": {"__type": "AddedToken", "content": "</s>"}}`,
			map[string]string{MetaChatTemplate: "T", MetaBOSToken: "<s>", MetaEOSToken: "</s>"}, ""},
		{"null tokens", `{"chat_template": "T", "bos_token": null}`, map[string]string{MetaChatTemplate: "T"}, ""},
		{"named, default", `{"chat_template": [{"name": "tool_use", "template": "A"}, {"name": "default", "template": "B"}]}`,
			map[string]string{MetaChatTemplate: "B"}, ""},
		{"named, first", `{"chat_template": [{"name": "rag", "template": "A"}, {"name": "tool_use", "template": "B"}]}`,
			map[string]string{MetaChatTemplate: "A"}, ""},
		{"named, empty list", `{"chat_template": []}`, nil, ""},
		{"no template", `{"bos_token": "<s>", "model_max_length": 2048}`, nil, ""},
		{"null template", `{"chat_template": null}`, nil, ""},
		{"empty template", `{"chat_template": ""}`, nil, ""},
		{"not JSON", `{"chat_template": "T"`, nil, "not a JSON object"},
		{"not an object", `[1, 2]`, nil, "not a JSON object"},
		{"template a number", `{"chat_template": 3}`, nil, "chat_template: want a string or a list"},
		{"named without template", `{"chat_template": [{"name": "default"}]}`, nil, `chat_template[0] ("default"): no template string`},
		{"bos a number", `{"chat_template": "T", "bos_token": 1}`, nil, `bos_token: want a string or an object with a "content" string`},
		{"eos object without content", `{"chat_template": "T", "eos_token": {"lstrip": true}}`, nil, "eos_token: want a string"},
		{"template too long", `{"chat_template": "` + strings.Repeat("x", format.MaxStringLen+1) + `"}`, nil, "above the model file's limit"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseChatMeta([]byte(c.json))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
			for k, v := range c.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

// withTokenizerConfig copies fixture name and writes tokenizer_config.json
// into it.
func withTokenizerConfig(t *testing.T, name, js string) string {
	t.Helper()
	dir := copyFixture(t, name)
	if err := os.WriteFile(filepath.Join(dir, tokenizerConfigName), []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// headerMeta opens a model file and returns its header metadata.
func headerMeta(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := format.Open(path, format.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return f.Header.Metadata
}

// TestChatTemplateCarried: a checkpoint's tokenizer_config.json template
// and special tokens go into the model file's header (tokenizer_config.json
// listed among the sources), out to GGUF as tokenizer.chat_template, and
// back from that GGUF into a model file; a model file converted again keeps
// them. Without tokenizer_config.json nothing is carried.
func TestChatTemplateCarried(t *testing.T) {
	out := t.TempDir()
	src := withTokenizerConfig(t, "mamba-bias-untied", `{"chat_template": `+jsonString(chatml)+`, "bos_token": {"content": "<|endoftext|>"}, "eos_token": "<|endoftext|>", "added_tokens_decoder": {}}`)
	mmq := filepath.Join(out, "a.mmq")
	convertTo(t, src, mmq, quant.F32)
	want := map[string]string{MetaChatTemplate: chatml, MetaBOSToken: "<|endoftext|>", MetaEOSToken: "<|endoftext|>"}
	checkChatMeta(t, "model file", headerMeta(t, mmq), want)
	f, err := format.Open(mmq, format.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	listed := false
	for _, s := range f.Header.Provenance.Sources {
		listed = listed || s.Path == tokenizerConfigName
	}
	f.Close()
	if !listed {
		t.Errorf("%s is not among the sources", tokenizerConfigName)
	}

	again := filepath.Join(out, "again.mmq")
	convertTo(t, mmq, again, quant.Q8_0)
	checkChatMeta(t, "model file from a model file", headerMeta(t, again), want)

	g := exportGGUF(t, mmq, filepath.Join(out, "a.gguf"), quant.F32)
	if v, ok := g.Metadata()[ggufChatTemplate]; !ok || v != chatml {
		t.Fatalf("GGUF %s = %v, want the template", ggufChatTemplate, v)
	}
	back := filepath.Join(out, "back.mmq")
	convertTo(t, filepath.Join(out, "a.gguf"), back, quant.F32)
	// The GGUF's special tokens are its BOS and EOS ids' text.
	tok, err := gguf.TokenizerFromKV(g.Metadata())
	if err != nil {
		t.Fatal(err)
	}
	checkChatMeta(t, "model file from GGUF", headerMeta(t, back), map[string]string{
		MetaChatTemplate: chatml, MetaBOSToken: tok.Tokens[tok.BOS], MetaEOSToken: tok.Tokens[tok.EOS]})

	plain := filepath.Join(out, "plain.mmq")
	convertTo(t, copyFixture(t, "mamba-bias-untied"), plain, quant.F32)
	if m := headerMeta(t, plain); m[MetaChatTemplate] != "" || m[MetaBOSToken] != "" {
		t.Errorf("no tokenizer_config.json, yet the header carries %v", m)
	}
	g2 := exportGGUF(t, plain, filepath.Join(out, "plain.gguf"), quant.F32)
	if _, ok := g2.Metadata()[ggufChatTemplate]; ok {
		t.Errorf("GGUF of a model without a template has %s", ggufChatTemplate)
	}
}

// TestChatTemplateRefused: a malformed tokenizer_config.json fails the
// conversion with the file named; so does a GGUF template of another type.
func TestChatTemplateRefused(t *testing.T) {
	out := t.TempDir()
	for _, c := range []struct{ name, json, err string }{
		{"truncated", `{"chat_template": "x`, "not a JSON object"},
		{"bad template", `{"chat_template": {"a": 1}}`, "chat_template: want a string"},
		{"bad eos", `{"chat_template": "x", "eos_token": []}`, "eos_token: want a string"},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := withTokenizerConfig(t, "mamba-tiny", c.json)
			_, err := Convert(src, filepath.Join(out, c.name+".mmq"), Options{Policy: Policy{Type: quant.F32}, Created: fixedTime})
			if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), tokenizerConfigName) {
				t.Fatalf("error %v, want one naming %s and containing %q", err, tokenizerConfigName, c.err)
			}
		})
	}
	t.Run("gguf template not a string", func(t *testing.T) {
		base := filepath.Join(out, "base.gguf")
		exportGGUF(t, copyFixture(t, "mamba-tiny"), base, quant.F32)
		bad := filepath.Join(out, "bad.gguf")
		rewriteGGUF(t, base, bad, func(kvs []gguf.KV) []gguf.KV { return setKV(kvs, ggufChatTemplate, uint32(7)) })
		_, err := Convert(bad, filepath.Join(out, "bad.mmq"), Options{Policy: Policy{Type: quant.F32}, Created: fixedTime})
		if err == nil || !strings.Contains(err.Error(), ggufChatTemplate+": want a string") {
			t.Fatalf("error %v, want one about %s", err, ggufChatTemplate)
		}
	})
}

// checkChatMeta compares the chat keys of a header's metadata with want.
func checkChatMeta(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	for _, k := range chatMetaKeys {
		if got[k] != want[k] {
			t.Errorf("%s: %s = %q, want %q", what, k, got[k], want[k])
		}
	}
}

// jsonString quotes s as a JSON string.
func jsonString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}
