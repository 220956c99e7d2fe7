package server

import (
	"encoding/json"
	"math"
	"slices"

	"github.com/memmamba/memmamba/tokenizer"
)

// maxTopLogprobs bounds the alternatives reported per token.
const maxTopLogprobs = 20

// tokenLogprob is one generated token's log-probability under the model
// (the log-softmax of its raw logits, before temperature, penalty and
// truncation: what the model thinks, not what the sampler drew from), with
// the top alternatives when asked.
type tokenLogprob struct {
	id      int
	text    string
	logprob float64
	top     []topLogprob
}

type topLogprob struct {
	id      int
	text    string
	logprob float64
}

// logprobsOf returns the log-probability of id under logits and the n most
// probable tokens (ties by lower id), their texts decoded one by one.
func logprobsOf(logits []float32, id, n int, tok tokenizer.Tokenizer) tokenLogprob {
	clean := func(l float32) float64 {
		switch {
		case l != l:
			return math.Inf(-1)
		case l > math.MaxFloat32:
			return math.MaxFloat32
		}
		return float64(l)
	}
	m := math.Inf(-1)
	for _, l := range logits {
		m = max(m, clean(l))
	}
	var z float64
	for _, l := range logits {
		z += math.Exp(clean(l) - m)
	}
	lse := m + math.Log(z)
	out := tokenLogprob{id: id, text: tokenText(tok, id), logprob: clean(logits[id]) - lse}
	if n <= 0 {
		return out
	}
	// The n best, kept sorted best first.
	best := make([]int, 0, n+1)
	for i, l := range logits {
		v := clean(l)
		if len(best) == n && v <= clean(logits[best[n-1]]) {
			continue
		}
		at, _ := slices.BinarySearchFunc(best, v, func(j int, v float64) int {
			if clean(logits[j]) >= v {
				return -1
			}
			return 1
		})
		best = slices.Insert(best, at, i)
		if len(best) > n {
			best = best[:n]
		}
	}
	for _, j := range best {
		out.top = append(out.top, topLogprob{id: j, text: tokenText(tok, j), logprob: clean(logits[j]) - lse})
	}
	return out
}

// tokenText is one token's text (a byte that is part of a longer UTF-8
// sequence comes out as U+FFFD: the bytes fields carry the exact bytes
// only as far as Decode gives them).
func tokenText(tok tokenizer.Tokenizer, id int) string {
	s, err := tok.Decode([]int{id})
	if err != nil {
		return ""
	}
	return s
}

// finite keeps -Inf out of JSON (which has no infinities): the most
// negative float64 stands for it.
func finite(v float64) float64 {
	if math.IsInf(v, -1) {
		return -math.MaxFloat64
	}
	return v
}

// completionLogprobs is the legacy completions' logprobs object.
type completionLogprobs struct {
	Tokens        []string             `json:"tokens"`
	TokenLogprobs []float64            `json:"token_logprobs"`
	TopLogprobs   []map[string]float64 `json:"top_logprobs"`
	TextOffset    []int                `json:"text_offset"`
}

// completionLP renders lps, the first starting at text offset at.
func completionLP(lps []tokenLogprob, at int) *completionLogprobs {
	out := &completionLogprobs{Tokens: []string{}, TokenLogprobs: []float64{}, TopLogprobs: []map[string]float64{}, TextOffset: []int{}}
	for _, lp := range lps {
		out.Tokens = append(out.Tokens, lp.text)
		out.TokenLogprobs = append(out.TokenLogprobs, finite(lp.logprob))
		top := map[string]float64{}
		for _, t := range lp.top {
			if _, dup := top[t.text]; !dup { // two tokens may decode alike
				top[t.text] = finite(t.logprob)
			}
		}
		out.TopLogprobs = append(out.TopLogprobs, top)
		out.TextOffset = append(out.TextOffset, at)
		at += len(lp.text)
	}
	return out
}

// chatLogprobs is the chat completions' logprobs object.
type chatLogprobs struct {
	Content []chatTokenLP `json:"content"`
	Refusal []chatTokenLP `json:"refusal"`
}

type chatTokenLP struct {
	Token       string        `json:"token"`
	Logprob     float64       `json:"logprob"`
	Bytes       []int         `json:"bytes"`
	TopLogprobs []chatTokenLP `json:"top_logprobs"`
}

// chatLP renders lps for chat.
func chatLP(lps []tokenLogprob) *chatLogprobs {
	out := &chatLogprobs{Content: []chatTokenLP{}, Refusal: []chatTokenLP{}}
	bytesOf := func(s string) []int {
		b := make([]int, len(s))
		for i := range len(s) {
			b[i] = int(s[i])
		}
		return b
	}
	for _, lp := range lps {
		e := chatTokenLP{Token: lp.text, Logprob: finite(lp.logprob), Bytes: bytesOf(lp.text), TopLogprobs: []chatTokenLP{}}
		for _, t := range lp.top {
			e.TopLogprobs = append(e.TopLogprobs, chatTokenLP{Token: t.text, Logprob: finite(t.logprob), Bytes: bytesOf(t.text), TopLogprobs: nil})
		}
		out.Content = append(out.Content, e)
	}
	return out
}

// completionLogprobsParam reads the completions' logprobs: null or
// absent (off), or an integer 0 to maxTopLogprobs (the alternatives per
// token). It returns -1 for off.
func completionLogprobsParam(raw json.RawMessage) (int, *apiError) {
	if len(raw) == 0 || string(raw) == "null" {
		return -1, nil
	}
	var n int
	if err := json.Unmarshal(raw, &n); err != nil || n < 0 || n > maxTopLogprobs {
		return -1, badRequest("logprobs", "logprobs: want null or an integer 0 to %d, got %s", maxTopLogprobs, raw)
	}
	return n, nil
}

// chatLogprobsParam reads chat's logprobs (a boolean) and top_logprobs
// (0 to maxTopLogprobs, with logprobs true). It returns -1 for off.
func chatLogprobsParam(raw json.RawMessage, top *int) (int, *apiError) {
	on := false
	if len(raw) > 0 && string(raw) != "null" {
		if err := json.Unmarshal(raw, &on); err != nil {
			return -1, badRequest("logprobs", "logprobs: want a boolean, got %s", raw)
		}
	}
	if top != nil {
		if *top < 0 || *top > maxTopLogprobs {
			return -1, badRequest("top_logprobs", "top_logprobs: want 0 to %d, got %d", maxTopLogprobs, *top)
		}
		if !on {
			return -1, badRequest("top_logprobs", "top_logprobs needs logprobs: true")
		}
	}
	if !on {
		return -1, nil
	}
	if top == nil {
		return 0, nil
	}
	return *top, nil
}
