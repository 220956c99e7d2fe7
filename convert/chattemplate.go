package convert

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/memmamba/memmamba/convert/gguf"
	"github.com/memmamba/memmamba/format"
	"github.com/memmamba/memmamba/internal/safeio"
)

// A checkpoint's chat template (the Jinja text of tokenizer_config.json's
// chat_template) travels in a model file's header metadata under
// MetaChatTemplate, with the special tokens it may name (bos_token,
// eos_token) beside it as text, so that mmrun serve can render chat
// messages the way the model was trained on. GGUF holds the template under
// llama.cpp's key tokenizer.chat_template.
const (
	MetaChatTemplate = "chat_template"
	MetaBOSToken     = "bos_token"
	MetaEOSToken     = "eos_token"
	// ggufChatTemplate is llama.cpp's GGUF key for the template.
	ggufChatTemplate = "tokenizer.chat_template"
	// tokenizerConfigName is the file the template comes from.
	tokenizerConfigName = "tokenizer_config.json"
)

// chatMetaKeys are the header keys of a chat template.
var chatMetaKeys = []string{MetaChatTemplate, MetaBOSToken, MetaEOSToken}

// readChatMeta reads dir/tokenizer_config.json (bounded, through safeio)
// and returns its chat template and special tokens as header metadata:
// nil, and no path, when the file is absent or names no template. A file
// that is not JSON, or whose chat_template, bos_token or eos_token has
// another shape than Hugging Face's, is an error naming the file.
func readChatMeta(dir string) (map[string]string, string, error) {
	path := filepath.Join(dir, tokenizerConfigName)
	raw, err := safeio.ReadFile(path, safeio.MaxConfigBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err // there, but not a regular file or too large
	}
	m, err := parseChatMeta(raw)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	if m == nil {
		return nil, "", nil
	}
	return m, path, nil
}

// parseChatMeta picks the chat template and the special tokens out of a
// tokenizer_config.json; nil when it carries no template.
func parseChatMeta(raw []byte) (map[string]string, error) {
	var doc struct {
		ChatTemplate json.RawMessage `json:"chat_template"`
		BOS          json.RawMessage `json:"bos_token"`
		EOS          json.RawMessage `json:"eos_token"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	tmpl, err := chatTemplateOf(doc.ChatTemplate)
	if err != nil {
		return nil, err
	}
	if tmpl == "" {
		return nil, nil
	}
	if err := checkTemplateLen(MetaChatTemplate, tmpl); err != nil {
		return nil, err
	}
	m := map[string]string{MetaChatTemplate: tmpl}
	for _, st := range []struct {
		key string
		raw json.RawMessage
	}{{MetaBOSToken, doc.BOS}, {MetaEOSToken, doc.EOS}} {
		tok, err := specialTokenOf(st.raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", st.key, err)
		}
		if tok != "" {
			m[st.key] = tok
		}
	}
	return m, nil
}

// chatTemplateOf reads chat_template as Hugging Face writes it: a string,
// or a list of {"name", "template"} of which "default" is taken, else the
// first. Absent or null is "".
func chatTemplateOf(raw json.RawMessage) (string, error) {
	if isNull(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var named []struct {
		Name     string  `json:"name"`
		Template *string `json:"template"`
	}
	if err := json.Unmarshal(raw, &named); err != nil {
		return "", errors.New(`chat_template: want a string or a list of {"name", "template"} objects`)
	}
	for i, n := range named {
		if n.Template == nil {
			return "", fmt.Errorf("chat_template[%d] (%q): no template string", i, n.Name)
		}
	}
	for _, n := range named {
		if n.Name == "default" {
			return *n.Template, nil
		}
	}
	if len(named) == 0 {
		return "", nil
	}
	return *named[0].Template, nil
}

// checkTemplateLen refuses a template longer than a model file's header
// can hold as one string (format.MaxStringLen), which the reader would
// refuse later.
func checkTemplateLen(key, tmpl string) error {
	if len(tmpl) > format.MaxStringLen {
		return fmt.Errorf("%s is %d bytes, above the model file's limit of %d", key, len(tmpl), format.MaxStringLen)
	}
	return nil
}

// specialTokenOf reads a special token of tokenizer_config.json: a string,
// an {"content": ...} object (AddedToken's form), or null/absent ("").
func specialTokenOf(raw json.RawMessage) (string, error) {
	if isNull(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var obj struct {
		Content *string `json:"content"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil || obj.Content == nil {
		return "", errors.New(`want a string or an object with a "content" string`)
	}
	return *obj.Content, nil
}

// isNull reports whether a JSON value is absent or null.
func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}

// chatMetaFromGGUF reads tokenizer.chat_template from GGUF metadata, with
// the BOS and EOS tokens' text from tok's vocabulary (nil tok: none); nil
// when there is no template. A template that is not a string is an error.
func chatMetaFromGGUF(kv map[string]any, tok *gguf.Tokenizer) (map[string]string, error) {
	v, ok := kv[ggufChatTemplate]
	if !ok {
		return nil, nil
	}
	tmpl, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("%s: want a string, got %T", ggufChatTemplate, v)
	}
	if tmpl == "" {
		return nil, nil
	}
	if err := checkTemplateLen(ggufChatTemplate, tmpl); err != nil {
		return nil, err
	}
	m := map[string]string{MetaChatTemplate: tmpl}
	if tok != nil {
		for _, s := range []struct {
			key string
			id  int
		}{{MetaBOSToken, tok.BOS}, {MetaEOSToken, tok.EOS}} {
			if s.id >= 0 && s.id < len(tok.Tokens) {
				m[s.key] = tok.Tokens[s.id]
			}
		}
	}
	return m, nil
}

// chatMetaFromHeader picks the chat template keys out of a model file's
// header metadata; nil when it carries no template.
func chatMetaFromHeader(h map[string]string) map[string]string {
	if h[MetaChatTemplate] == "" {
		return nil
	}
	m := map[string]string{}
	for _, k := range chatMetaKeys {
		if v, ok := h[k]; ok {
			m[k] = v
		}
	}
	return m
}

// chatTemplateKV is the GGUF key/value of in's chat template, if any.
func chatTemplateKV(in *Input) []gguf.KV {
	if t := in.ChatMeta[MetaChatTemplate]; t != "" {
		return []gguf.KV{{Key: ggufChatTemplate, Value: t}}
	}
	return nil
}
