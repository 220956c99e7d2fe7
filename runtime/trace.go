package runtime

// Trace records a session's Note Block decisions, indexed [layer][token]:
// the same form as the fixtures' golden traces (golden.json's "trace") and
// `mmrun logits --trace`.
type Trace struct {
	Layers [][]TraceEntry `json:"trace"`
}

// TraceEntry is one layer's Note Block decisions for one token.
type TraceEntry struct {
	Pos        int     `json:"pos"`
	Importance float64 `json:"importance"`
	Trigger    float64 `json:"trigger"`
	// Retrieved: cross-token retrieval ran (G > tau2 and the pool was not
	// empty).
	Retrieved bool `json:"retrieved"`
	// Note is the NoteAction's String: "skip" (I <= tau1), "note"
	// (appended), "evict" (replaced the note of position Evicted) or
	// "drop" (a full priority pool of better notes). It stays a string,
	// the golden traces' and `mmrun logits --trace`'s JSON form.
	Note    string `json:"note"`
	Evicted int    `json:"evicted"`
	// CrossLayer: cross-layer retrieval ran over a non-empty union of pools.
	CrossLayer bool `json:"cross_layer"`
	// Pool is the positions of the pool's notes after this token, in slot
	// order.
	Pool []int `json:"pool"`
}
