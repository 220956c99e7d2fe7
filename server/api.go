package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"reflect"
	"strings"

	"github.com/memmamba/memmamba/sample"
)

// apiError is an error answered in OpenAI's shape:
// {"error":{"message":...,"type":...,"param":...,"code":...}}.
type apiError struct {
	Status  int     `json:"-"`
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func (e *apiError) Error() string { return e.Message }

// badRequest is a 400 invalid_request_error about param ("" for none).
func badRequest(param, format string, args ...any) *apiError {
	e := &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Message: fmt.Sprintf(format, args...)}
	if param != "" {
		e.Param = &param
	}
	return e
}

// withCode sets the error's code.
func (e *apiError) withCode(code string) *apiError {
	e.Code = &code
	return e
}

// writeError answers err in OpenAI's error shape.
func writeError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.Status, map[string]*apiError{"error": e})
}

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"message":"encoding the response failed","type":"server_error","param":null,"code":null}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// decodeBody parses a request body (already read, within the size bound)
// into v, turning JSON's errors into 400s that name the field.
func decodeBody(body []byte, v any) *apiError {
	err := json.Unmarshal(body, v)
	if err == nil {
		return nil
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &te):
		field := strings.TrimPrefix(te.Field, "samplingFields.")
		if field == "" {
			field = "body"
		}
		return badRequest(field, "%s: want %s, got JSON %s", field, jsonKind(te.Type.Kind().String()), te.Value)
	case errors.As(err, &se):
		return badRequest("", "malformed JSON at byte %d: %v", se.Offset, err)
	default:
		return badRequest("", "malformed JSON: %v", err)
	}
}

// jsonKind names a Go kind as the JSON type a client should send.
func jsonKind(k string) string {
	switch {
	case strings.HasPrefix(k, "int"), strings.HasPrefix(k, "uint"):
		return "an integer"
	case strings.HasPrefix(k, "float"):
		return "a number"
	case k == "bool":
		return "a boolean"
	case k == "string":
		return "a string"
	case k == "slice":
		return "an array"
	case k == "struct", k == "map":
		return "an object"
	}
	return k
}

// stringList is a JSON string or array of strings (OpenAI's stop).
type stringList []string

func (s *stringList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = stringList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return &json.UnmarshalTypeError{Value: "non-string", Type: stringListType}
	}
	*s = many
	return nil
}

// stringListType is the Go type a stop list decodes into.
var stringListType = reflect.TypeOf([]string(nil))

// samplingFields are the request fields shared by completions and chat.
type samplingFields struct {
	Model            string          `json:"model"`
	MaxTokens        *int            `json:"max_tokens"`
	MaxCompletion    *int            `json:"max_completion_tokens"`
	Temperature      *float64        `json:"temperature"`
	TopP             *float64        `json:"top_p"`
	TopK             *int            `json:"top_k"`
	MinP             *float64        `json:"min_p"`
	RepeatPenalty    *float64        `json:"repeat_penalty"`
	RepeatLastN      *int            `json:"repeat_last_n"`
	Seed             *int64          `json:"seed"`
	Stop             stringList      `json:"stop"`
	Stream           bool            `json:"stream"`
	StreamOptions    *streamOptions  `json:"stream_options"`
	N                *int            `json:"n"`
	Logprobs         json.RawMessage `json:"logprobs"`
	TopLogprobs      *int            `json:"top_logprobs"`
	FrequencyPenalty *float64        `json:"frequency_penalty"`
	PresencePenalty  *float64        `json:"presence_penalty"`
	IgnoreEOS        bool            `json:"ignore_eos"`
	// State names a saved state (POST /v1/states/{id}) to continue: the
	// prompt follows its tokens.
	State string `json:"state"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// Bounds on the sampling fields (beyond those sample.Params.Validate
// enforces).
const (
	maxTemperature   = 100
	maxStops         = 16
	maxStopBytes     = 256
	maxRepeatLastN   = 1 << 16
	maxRepeatPenalty = 100
)

// options resolves the sampling fields: unset ones take llama.cpp's
// defaults (sample.DefaultParams: temperature 0.8, top_k 40, top_p 0.95,
// min_p 0.05, no repetition penalty), an unset seed a random one, an unset
// max_tokens defMax. Every out-of-range value is a 400 naming the field.
func (f *samplingFields) options(defMax, limit int, randomSeed func() uint64) (sample.Params, int, *apiError) {
	p := sample.DefaultParams()
	if f.N != nil && *f.N != 1 {
		return p, 0, badRequest("n", "n: only 1 choice per request is supported, got %d", *f.N)
	}
	for name, v := range map[string]*float64{"frequency_penalty": f.FrequencyPenalty, "presence_penalty": f.PresencePenalty} {
		if v != nil && *v != 0 {
			return p, 0, badRequest(name, "%s: not supported (use repeat_penalty)", name)
		}
	}
	n := min(defMax, limit)
	if f.MaxCompletion != nil {
		n = *f.MaxCompletion
	}
	if f.MaxTokens != nil {
		n = *f.MaxTokens
	}
	if n < 0 || n > limit {
		return p, 0, badRequest("max_tokens", "max_tokens: want 0 to %d, got %d", limit, n)
	}
	if v := f.Temperature; v != nil {
		if !(*v >= 0 && *v <= maxTemperature) {
			return p, 0, badRequest("temperature", "temperature: want 0 to %d (0 = greedy), got %v", maxTemperature, *v)
		}
		p.Temperature = *v
	}
	if v := f.TopP; v != nil {
		if !(*v > 0 && *v <= 1) {
			return p, 0, badRequest("top_p", "top_p: want a number in (0, 1], got %v", *v)
		}
		p.TopP = *v
	}
	if v := f.TopK; v != nil {
		if *v < 0 {
			return p, 0, badRequest("top_k", "top_k: want >= 0 (0 = off), got %d", *v)
		}
		p.TopK = *v
	}
	if v := f.MinP; v != nil {
		if !(*v >= 0 && *v < 1) {
			return p, 0, badRequest("min_p", "min_p: want a number in [0, 1), got %v", *v)
		}
		p.MinP = *v
	}
	if v := f.RepeatPenalty; v != nil {
		if !(*v > 0 && *v <= maxRepeatPenalty) {
			return p, 0, badRequest("repeat_penalty", "repeat_penalty: want a number in (0, %d] (1 = off), got %v", maxRepeatPenalty, *v)
		}
		p.RepetitionPenalty = *v
	}
	if v := f.RepeatLastN; v != nil {
		if *v < 0 || *v > maxRepeatLastN {
			return p, 0, badRequest("repeat_last_n", "repeat_last_n: want 0 to %d, got %d", maxRepeatLastN, *v)
		}
		p.RepeatLastN = *v
	}
	if f.Seed != nil {
		p.Seed = uint64(*f.Seed)
	} else {
		p.Seed = randomSeed()
	}
	if len(f.Stop) > maxStops {
		return p, 0, badRequest("stop", "stop: at most %d stop strings, got %d", maxStops, len(f.Stop))
	}
	for _, s := range f.Stop {
		if len(s) > maxStopBytes {
			return p, 0, badRequest("stop", "stop: a stop string of %d bytes, above the bound of %d", len(s), maxStopBytes)
		}
	}
	if err := p.Validate(); err != nil {
		return p, 0, badRequest("", "%v", err)
	}
	return p, n, nil
}

// usage is OpenAI's usage object.
type usage struct {
	PromptTokens        int           `json:"prompt_tokens"`
	CompletionTokens    int           `json:"completion_tokens"`
	TotalTokens         int           `json:"total_tokens"`
	PromptTokensDetails promptDetails `json:"prompt_tokens_details"`
}

type promptDetails struct {
	CachedTokens int `json:"cached_tokens"`
}

func newUsage(prompt, completion, cached int) *usage {
	return &usage{PromptTokens: prompt, CompletionTokens: completion, TotalTokens: prompt + completion,
		PromptTokensDetails: promptDetails{CachedTokens: cached}}
}

// completionRequest is POST /v1/completions's body.
type completionRequest struct {
	samplingFields
	Prompt json.RawMessage `json:"prompt"`
	Echo   bool            `json:"echo"`
	Suffix *string         `json:"suffix"`
}

// completionChoice is one choice of a completion (or of a stream chunk).
type completionChoice struct {
	Text         string  `json:"text"`
	Index        int     `json:"index"`
	Logprobs     any     `json:"logprobs"`
	FinishReason *string `json:"finish_reason"`
}

type completionResponse struct {
	ID                string             `json:"id"`
	Object            string             `json:"object"`
	Created           int64              `json:"created"`
	Model             string             `json:"model"`
	SystemFingerprint string             `json:"system_fingerprint,omitempty"`
	Choices           []completionChoice `json:"choices"`
	Usage             *usage             `json:"usage,omitempty"`
}

// chatMessage is one message of a chat request. Content is a string or
// an array of parts, of which the "text" ones are kept.
type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
	Name    string          `json:"name,omitempty"`
}

type chatRequest struct {
	samplingFields
	Messages []chatMessage `json:"messages"`
}

type chatOutMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type chatChoice struct {
	Index        int             `json:"index"`
	Message      *chatOutMessage `json:"message,omitempty"`
	Delta        *chatDelta      `json:"delta,omitempty"`
	Logprobs     any             `json:"logprobs"`
	FinishReason *string         `json:"finish_reason"`
}

type chatDelta struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

type chatResponse struct {
	ID                string       `json:"id"`
	Object            string       `json:"object"`
	Created           int64        `json:"created"`
	Model             string       `json:"model"`
	SystemFingerprint string       `json:"system_fingerprint,omitempty"`
	Choices           []chatChoice `json:"choices"`
	Usage             *usage       `json:"usage,omitempty"`
}

// parsePrompt reads OpenAI's prompt: a string, an array of one string,
// an array of token ids, or an array of one array of token ids. It
// returns the text (when given as text) or the ids.
func parsePrompt(raw json.RawMessage) (text string, ids []int, isText bool, e *apiError) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil, false, badRequest("prompt", "prompt: required")
	}
	if err := json.Unmarshal(raw, &text); err == nil {
		return text, nil, true, nil
	}
	var strs []string
	if err := json.Unmarshal(raw, &strs); err == nil {
		if len(strs) != 1 {
			return "", nil, false, badRequest("prompt", "prompt: one prompt per request is supported, got %d", len(strs))
		}
		return strs[0], nil, true, nil
	}
	var nums []float64
	if err := json.Unmarshal(raw, &nums); err != nil {
		var nested [][]float64
		if err := json.Unmarshal(raw, &nested); err != nil {
			return "", nil, false, badRequest("prompt", "prompt: want a string, an array of strings or an array of token ids")
		}
		if len(nested) != 1 {
			return "", nil, false, badRequest("prompt", "prompt: one prompt per request is supported, got %d", len(nested))
		}
		nums = nested[0]
	}
	ids = make([]int, len(nums))
	for i, v := range nums {
		if v != math.Trunc(v) || v < 0 || v > math.MaxInt32 {
			return "", nil, false, badRequest("prompt", "prompt: token %d is %v, not a token id", i, v)
		}
		ids[i] = int(v)
	}
	return "", ids, false, nil
}
