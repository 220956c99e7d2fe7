package engine

import "github.com/memmamba/memmamba/internal/notetrace"

// Trace records a session's Note Block decisions, indexed [layer][token]:
// the same form as the fixtures' golden traces (golden.json's "trace") and
// `mmrun logits --trace`.
type Trace struct {
	Layers [][]TraceEntry `json:"trace"`
}

// TraceEntry is one layer's Note Block decisions for one token; the type is
// shared with the fixtures' golden traces (internal/notetrace).
type TraceEntry = notetrace.Entry
