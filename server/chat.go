package server

import (
	"encoding/json"
	"strings"
)

// The plain chat template, used for a model whose file carries no chat
// template of its own (template.go renders those). Each message is
// rendered as
//
//	<Role>: <content>\n\n
//
// with Role one of System, User, Assistant (OpenAI's "developer" is
// rendered as System), and the prompt ends with "Assistant:" for the
// model to continue. Generation stops, beside the request's own stop
// strings, at "\nUser:" and "\nSystem:" (chatStops), where the model
// would start the next turn itself. A conversation sent again with one
// more turn renders to the same text plus the new turn, so its state
// comes from the state cache.
var chatRoles = map[string]string{"system": "System", "developer": "System", "user": "User", "assistant": "Assistant"}

// chatOpen ends a rendered chat: the assistant's turn, for the model.
const chatOpen = "Assistant:"

// chatStops end an assistant turn.
var chatStops = []string{"\nUser:", "\nSystem:"}

// chatPart is one part of an array content.
type chatPart struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// renderChat renders messages through the plain template.
func renderChat(msgs []chatMessage) (string, *apiError) {
	if len(msgs) == 0 {
		return "", badRequest("messages", "messages: at least one message is required")
	}
	var b strings.Builder
	for i, m := range msgs {
		role, ok := chatRoles[m.Role]
		if !ok {
			return "", badRequest("messages", "messages[%d].role: want system, developer, user or assistant, got %q", i, m.Role)
		}
		text, e := messageText(i, m.Content)
		if e != nil {
			return "", e
		}
		b.WriteString(role)
		b.WriteString(": ")
		b.WriteString(strings.TrimSpace(text))
		b.WriteString("\n\n")
	}
	b.WriteString(chatOpen)
	return b.String(), nil
}

// messageText returns a message's content: a string, or the text of an
// array of parts (only "text" parts are supported).
func messageText(i int, raw json.RawMessage) (string, *apiError) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var parts []chatPart
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", badRequest("messages", "messages[%d].content: want a string or an array of text parts", i)
	}
	var b strings.Builder
	for j, p := range parts {
		if p.Type != "text" {
			return "", badRequest("messages", "messages[%d].content[%d]: only text parts are supported, got %q", i, j, p.Type)
		}
		b.WriteString(p.Text)
	}
	return b.String(), nil
}
