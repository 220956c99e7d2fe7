// Package notetrace defines one entry of a Note Block decision trace: the
// form the runtime records (engine.TraceEntry), the fixtures' golden traces
// carry (golden.json's "trace", internal/fixtures.TraceEntry) and `mmrun
// logits --trace` writes. It is a package of its own so that both can name
// the one type: the fixtures are loaded by the runtime's tests, so neither
// package may import the other.
package notetrace

// Entry is one layer's Note Block decisions for one token.
type Entry struct {
	Pos        int     `json:"pos"`
	Importance float64 `json:"importance"`
	Trigger    float64 `json:"trigger"`
	// Retrieved: cross-token retrieval ran (G > tau2 and the pool was not
	// empty).
	Retrieved bool `json:"retrieved"`
	// Note is the runtime's NoteAction's String: "skip" (I <= tau1), "note"
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
