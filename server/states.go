package server

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/memmamba/memmamba/engine"
	"github.com/memmamba/memmamba/internal/safeio"
)

// Saved states let a conversation outlive the process: POST
// /v1/states/{id} with a prompt (text, token ids or chat messages) runs it
// (or takes it from the state cache) and writes the state after it to
// --state-dir/{id}.mmstate; a later completion or chat request with
// "state": "{id}" continues from there, its own prompt read as the
// continuation of the saved tokens. GET /v1/states/{id} describes a saved
// state, DELETE removes it.
//
// A file holds "MMSRVST1", the number of tokens (uint32, little-endian),
// the tokens (uint32 each), then the model's Session.Save blob, which
// names the model it came from: a state saved by another model is
// refused (400) when loaded.

// stateMagic starts a saved state file.
const stateMagic = "MMSRVST1"

// stateIDPattern is what a state id may be: a file name of letters,
// digits, '-', '_' and '.', not starting with '.'.
var stateIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$`)

// savedState is a state read back: the tokens it follows and the session.
type savedState struct {
	tokens []int
	sess   *engine.Session
}

// statePath returns the file of state id, or a 400/404 error.
func (s *Server) statePath(id string) (string, *apiError) {
	if s.cfg.StateDir == "" {
		return "", &apiError{Status: http.StatusNotFound, Type: "invalid_request_error",
			Message: "saved states are off: start the server with --state-dir"}
	}
	if !stateIDPattern.MatchString(id) {
		return "", badRequest("state", "state id %q: want 1 to 64 letters, digits, '-', '_' or '.', not starting with '.'", id)
	}
	return filepath.Join(s.cfg.StateDir, id+".mmstate"), nil
}

// encodeState is a state file's bytes.
func encodeState(tokens []int, blob []byte) []byte {
	b := make([]byte, 0, len(stateMagic)+4+4*len(tokens)+len(blob))
	b = append(b, stateMagic...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(tokens)))
	for _, t := range tokens {
		b = binary.LittleEndian.AppendUint32(b, uint32(t))
	}
	return append(b, blob...)
}

// loadState reads state id into a new session of the server's model.
func (s *Server) loadState(id string) (*savedState, *apiError) {
	path, e := s.statePath(id)
	if e != nil {
		return nil, e
	}
	limit := int64(len(stateMagic)+4+4*s.cfg.MaxPromptTokens) + int64(s.m.MaxStateBlobSize())
	b, err := safeio.ReadFile(path, limit)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, (&apiError{Status: http.StatusNotFound, Type: "invalid_request_error",
			Message: fmt.Sprintf("no saved state %q", id)}).withCode("state_not_found")
	}
	if err != nil {
		return nil, badRequest("state", "state %q: %v", id, err)
	}
	if len(b) < len(stateMagic)+4 || string(b[:len(stateMagic)]) != stateMagic {
		return nil, badRequest("state", "state %q: not a saved state of mmrun serve", id)
	}
	n := int(binary.LittleEndian.Uint32(b[len(stateMagic):]))
	off := len(stateMagic) + 4
	if n > s.cfg.MaxPromptTokens || len(b) < off+4*n {
		return nil, badRequest("state", "state %q: records %d tokens, above the bound of %d or past the file's %d bytes", id, n, s.cfg.MaxPromptTokens, len(b))
	}
	tokens := make([]int, n)
	V := s.m.Config.VocabSize
	for i := range tokens {
		tokens[i] = int(binary.LittleEndian.Uint32(b[off+4*i:]))
		if tokens[i] >= V {
			return nil, badRequest("state", "state %q: token %d (at %d) is outside the vocabulary of %d", id, tokens[i], i, V)
		}
	}
	sess := s.m.NewSession()
	if err := sess.Load(b[off+4*n:]); err != nil {
		return nil, badRequest("state", "state %q: %v", id, err)
	}
	if sess.Pos() != n {
		return nil, badRequest("state", "state %q: the state is at position %d but records %d tokens", id, sess.Pos(), n)
	}
	return &savedState{tokens: tokens, sess: sess}, nil
}

// stateRequest is POST /v1/states/{id}'s body: the prompt whose state to
// save, as a completion's prompt or a chat's messages (rendered without
// the final "Assistant:", so that a continuation starts a new message).
type stateRequest struct {
	Prompt   json.RawMessage `json:"prompt"`
	Messages []chatMessage   `json:"messages"`
	State    string          `json:"state"`
}

// states serves /v1/states/{id}: POST saves, GET describes, DELETE
// removes.
func (s *Server) states(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, "/v1/states/")
	path, e := s.statePath(id)
	if e != nil {
		writeError(w, e)
		return
	}
	switch r.Method {
	case http.MethodGet:
		st, e := s.loadState(id)
		if e != nil {
			writeError(w, e)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": id, "object": "state", "tokens": len(st.tokens), "model": s.cfg.ModelName})
	case http.MethodDelete:
		if err := os.Remove(path); err != nil {
			writeError(w, (&apiError{Status: http.StatusNotFound, Type: "invalid_request_error",
				Message: fmt.Sprintf("no saved state %q", id)}).withCode("state_not_found"))
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": id, "object": "state", "deleted": true})
	case http.MethodPost:
		s.saveState(w, r, id, path)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		writeError(w, &apiError{Status: http.StatusMethodNotAllowed, Type: "invalid_request_error",
			Message: fmt.Sprintf("%s takes GET, POST or DELETE, not %s", r.URL.Path, r.Method)})
	}
}

// saveState runs the body's prompt (from the state it names, if any) and
// writes the state after it.
func (s *Server) saveState(w http.ResponseWriter, r *http.Request, id, path string) {
	var req stateRequest
	if !s.readRequest(w, r, &req) {
		return
	}
	var ids []int
	switch {
	case req.Messages != nil && req.Prompt != nil:
		writeError(w, badRequest("prompt", "give prompt or messages, not both"))
		return
	case req.Messages != nil:
		text, _, e := s.renderMessages(req.Messages, false)
		if e != nil {
			writeError(w, e)
			return
		}
		if ids, e = s.encodeChat(text); e != nil {
			writeError(w, e)
			return
		}
	default:
		text, tids, isText, e := parsePrompt(req.Prompt)
		if e != nil {
			writeError(w, e)
			return
		}
		ids = tids
		if isText {
			var err error
			if ids, err = s.tok.Encode(text); err != nil {
				writeError(w, badRequest("prompt", "prompt: %v", err))
				return
			}
		}
	}
	var f samplingFields
	f.State = req.State
	zero := 0
	f.MaxTokens = &zero
	g, e := s.prepare(r, &f, ids, 0, nil)
	if e != nil {
		writeError(w, e)
		return
	}
	g.saveOnly = true
	ctx, cancel := s.withTimeout(r.Context())
	defer cancel()
	res, e := s.start(ctx, g)
	if e != nil {
		writeError(w, e)
		return
	}
	if err := s.wait(ctx, res, func(piece) error { return nil }); err != nil {
		if r.Context().Err() == nil {
			writeError(w, genError(err))
		}
		return
	}
	blob, err := res.state.Save()
	if err == nil {
		err = safeio.WriteFile(path, encodeState(g.ids, blob), true)
	}
	if err != nil {
		writeError(w, &apiError{Status: http.StatusInternalServerError, Type: "server_error", Message: fmt.Sprintf("saving state %q: %v", id, err)})
		return
	}
	u := s.usage(r, g, res)
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "object": "state", "tokens": len(g.ids), "bytes": len(blob), "usage": u})
}
