package server

import (
	"fmt"
	"strings"

	"github.com/ardanlabs/jinja"
)

// A model file converted from a checkpoint whose tokenizer_config.json has
// a chat_template carries it in its header metadata (mmconvert, see
// convert/chattemplate.go), with the bos_token and eos_token texts it may
// name. The server then renders chat messages through it, as Hugging Face's
// apply_chat_template does: Jinja with trim_blocks and lstrip_blocks, the
// context
//
//	messages               [{"role": ..., "content": ...}] (developer as system)
//	add_generation_prompt  true (false when saving a state, POST /v1/states)
//	bos_token, eos_token   the header's texts, "" where absent
//	raise_exception(msg)   fails the request with msg
//
// The renderer is github.com/ardanlabs/jinja, a Jinja engine written for
// LLM chat templates (Hugging Face's whitespace defaults, raise_exception,
// namespace, the Python string methods templates call); TestChatGolden
// checks it byte for byte against @huggingface/jinja on real templates.
//
// A template that does not parse is reported once in the log when the
// model is loaded; every chat request then answers 400 naming the parse
// error (completions still work). A template that fails to render
// (raise_exception, a type error) answers 400 with its message. Without a
// template the plain one of chat.go is used.
const (
	metaChatTemplate = "chat_template" // convert.MetaChatTemplate
	metaBOSToken     = "bos_token"     // convert.MetaBOSToken
	metaEOSToken     = "eos_token"     // convert.MetaEOSToken
)

// chatTemplate is a model's own chat template, compiled once at load
// (jinja templates are safe for concurrent renders).
type chatTemplate struct {
	tmpl     *jinja.Template
	parseErr error // the template does not parse: every render fails with it
	bos, eos string
	size     int
}

// newChatTemplate compiles the template a model file's header metadata
// carries; nil when it carries none.
func newChatTemplate(meta map[string]string) *chatTemplate {
	src := meta[metaChatTemplate]
	if src == "" {
		return nil
	}
	c := &chatTemplate{bos: meta[metaBOSToken], eos: meta[metaEOSToken], size: len(src)}
	c.tmpl, c.parseErr = compileTemplate(src)
	return c
}

// compileTemplate compiles src, turning a panic of the library into an
// error: a model file's template must not take the server down.
func compileTemplate(src string) (t *jinja.Template, err error) {
	defer func() {
		if v := recover(); v != nil {
			t, err = nil, fmt.Errorf("jinja: %v", v)
		}
	}()
	return jinja.Compile(src)
}

// describe is the load log's line about the template.
func (c *chatTemplate) describe() string {
	if c == nil {
		return "chat template: none in the model file; /v1/chat/completions uses the plain template"
	}
	if c.parseErr != nil {
		return fmt.Sprintf("chat template: the model's (%d bytes) does not parse, /v1/chat/completions will answer 400: %v", c.size, c.parseErr)
	}
	return fmt.Sprintf("chat template: the model's own (%d bytes)", c.size)
}

// render renders msgs (already checked: roles and text) through the
// template.
func (c *chatTemplate) render(msgs []map[string]any, addGenerationPrompt bool) (out string, err error) {
	if c.parseErr != nil {
		return "", fmt.Errorf("the model's chat template does not parse: %w", c.parseErr)
	}
	defer func() {
		if v := recover(); v != nil {
			out, err = "", fmt.Errorf("the model's chat template failed: %v", v)
		}
	}()
	list := make([]any, len(msgs))
	for i, m := range msgs {
		list[i] = m
	}
	out, err = c.tmpl.Render(map[string]any{
		"messages":              list,
		"add_generation_prompt": addGenerationPrompt,
		"bos_token":             c.bos,
		"eos_token":             c.eos,
	})
	if err != nil {
		return "", fmt.Errorf("the model's chat template: %w", err)
	}
	return out, nil
}

// templateMessages checks msgs for a template: a role (developer is given
// as system, which templates know) and text content.
func templateMessages(msgs []chatMessage) ([]map[string]any, *apiError) {
	if len(msgs) == 0 {
		return nil, badRequest("messages", "messages: at least one message is required")
	}
	out := make([]map[string]any, len(msgs))
	for i, m := range msgs {
		role := m.Role
		switch {
		case role == "developer":
			role = "system"
		case strings.TrimSpace(role) == "":
			return nil, badRequest("messages", "messages[%d].role: required", i)
		}
		text, e := messageText(i, m.Content)
		if e != nil {
			return nil, e
		}
		out[i] = map[string]any{"role": role, "content": text}
	}
	return out, nil
}

// renderMessages renders a chat request's messages through the model's
// template, or the plain one without; it returns the prompt and the stop
// strings that end the assistant's turn (the plain template's, or the
// template's eos_token). addGenerationPrompt false leaves the assistant's
// turn unopened (saving a state).
func (s *Server) renderMessages(msgs []chatMessage, addGenerationPrompt bool) (string, []string, *apiError) {
	if s.tmpl == nil {
		text, e := renderChat(msgs)
		if e != nil {
			return "", nil, e
		}
		if !addGenerationPrompt {
			text = strings.TrimSuffix(text, chatOpen)
		}
		return text, chatStops, nil
	}
	list, e := templateMessages(msgs)
	if e != nil {
		return "", nil, e
	}
	text, err := s.tmpl.render(list, addGenerationPrompt)
	if err != nil {
		return "", nil, badRequest("messages", "messages: %v", err).withCode("chat_template_error")
	}
	var stops []string
	if s.tmpl.eos != "" {
		stops = []string{s.tmpl.eos}
	}
	return text, stops, nil
}

// encodeChat encodes a rendered chat. A template that writes bos_token
// itself, on a tokenizer that adds BOS too, would start with two: one is
// dropped (Hugging Face tokenizes a rendered chat without adding special
// tokens).
func (s *Server) encodeChat(text string) ([]int, *apiError) {
	ids, err := s.tok.Encode(text)
	if err != nil {
		return nil, badRequest("messages", "messages: %v", err)
	}
	if bos := s.tok.Specials().BOS; s.tmpl != nil && bos >= 0 && len(ids) >= 2 && ids[0] == bos && ids[1] == bos {
		ids = ids[1:]
	}
	return ids, nil
}
