// Package report renders what a MemMamba model does with a text as one
// self-contained HTML file (inline CSS, JavaScript and SVG; nothing from the
// network): the Note Blocks' trace (`mmrun trace`) and memory-decay curves
// (`mmrun memory`). The HTML templates are embedded in the binary.
//
// A trace report holds its per-token data as compact inline JSON (base64
// arrays) and its JavaScript renders the text a page at a time, so a
// 64k-token trace is a few MB and scrolls; the SVG plots are drawn here,
// downsampled to a fixed number of columns.
package report

import (
	"fmt"
	"math"
	"slices"

	"github.com/memmamba/memmamba/engine"
)

// Note actions, as a token's flags keep them (bits 0-1).
const (
	ActSkip  = 0 // I <= tau1: no note
	ActNote  = 1 // appended to a pool with room
	ActEvict = 2 // replaced the note of another position
	ActDrop  = 3 // a full priority pool of better notes: dropped
)

// Flag bits above the action.
const (
	FlagRetrieved  = 1 << 2 // cross-token retrieval ran
	FlagCrossLayer = 1 << 3 // cross-layer retrieval ran
	FlagTriggered  = 1 << 4 // G > tau2 (retrieval ran if the pool was not empty)
)

// Meta describes the model and the run a trace comes from.
type Meta struct {
	Model           string  `json:"model"`
	ModelType       string  `json:"model_type"`
	Layers          int     `json:"layers"`
	PoolSize        int     `json:"pool_size"`
	TauNote         float64 `json:"tau_note"`
	TauRetrieve     float64 `json:"tau_retrieve"`
	Eviction        string  `json:"eviction"`
	CrossLayerEvery int     `json:"cross_layer_every"`
	// Source names the text (a file name, or "--text").
	Source string `json:"source"`
}

// Trace is a trace report's data: the text's tokens and, per layer, every
// token's importance, trigger and Note Block decisions. The pool's contents
// at any position follow from the decisions (a note enters at its own
// position and leaves when an "evict" names it), which FromTrace checks
// against the runtime's pool lists.
type Trace struct {
	Meta
	Tokens int      `json:"tokens"`
	IDs    []int    `json:"ids"`
	Text   []string `json:"text"` // each token's text (a character split over tokens goes with its last byte)
	Layer  []*Layer `json:"layer"`
}

// Layer is one layer's part of a trace.
type Layer struct {
	Index      int       `json:"index"`
	CrossLayer bool      `json:"cross_layer"` // the layer reads the pools below (cross-layer attention)
	Importance []float32 `json:"importance"`
	Trigger    []float32 `json:"trigger"`
	// Flags per token: the action (bits 0-1) and the Flag bits.
	Flags []uint8 `json:"flags"`
	// Evicted is the position each "evict" replaced, in token order.
	Evicted []int   `json:"evicted"`
	Summary Summary `json:"summary"`

	slots []int // the pool's positions in slot order, as replayed
}

// Summary counts one layer's decisions over the trace.
type Summary struct {
	Tokens    int `json:"tokens"`
	Noted     int `json:"noted"`    // notes taken: appended + evicting
	Appended  int `json:"appended"` // notes taken into a pool with room
	Evictions int `json:"evictions"`
	Dropped   int `json:"dropped"`
	Triggered int `json:"triggered"` // G > tau2
	Retrieved int `json:"retrieved"` // cross-token retrieval ran (G > tau2, pool not empty)
	// CrossLayer: cross-layer retrieval ran (only on cross-layer layers).
	CrossLayer int `json:"cross_layer"`
	PoolAtEnd  int `json:"pool_at_end"`
	// NoteRate = Noted / Tokens; Turnover = Evictions / Tokens (pool
	// entries replaced per token); RetrievalRate = Retrieved / Tokens.
	NoteRate       float64 `json:"note_rate"`
	Turnover       float64 `json:"turnover"`
	RetrievalRate  float64 `json:"retrieval_rate"`
	MeanImportance float64 `json:"mean_importance"`
	MeanTrigger    float64 `json:"mean_trigger"`
}

// NewTrace starts an empty trace report of a model with layers layers;
// crossLayer[l] says whether layer l reads the pools below (may be nil).
func NewTrace(meta Meta, crossLayer []bool) *Trace {
	t := &Trace{Meta: meta, IDs: []int{}, Text: []string{}, Layer: make([]*Layer, meta.Layers)}
	for l := range t.Layer {
		t.Layer[l] = &Layer{Index: l, Importance: []float32{}, Trigger: []float32{}, Flags: []uint8{}, Evicted: []int{}}
		if l < len(crossLayer) {
			t.Layer[l].CrossLayer = crossLayer[l]
		}
	}
	return t
}

// Add appends the tokens of one chunk and the runtime trace recorded while
// they ran (tr.Layers[l] holds exactly one entry per token, at positions
// t.Tokens, t.Tokens+1, ...). It checks that the recorded pool lists are
// what the decisions give, so that the report's pools are the runtime's.
func (t *Trace) Add(ids []int, text []string, tr *engine.Trace) error {
	if len(text) != len(ids) {
		return fmt.Errorf("report: %d token texts for %d tokens", len(text), len(ids))
	}
	if len(tr.Layers) != len(t.Layer) {
		return fmt.Errorf("report: the trace has %d layers, the model %d", len(tr.Layers), len(t.Layer))
	}
	for l, es := range tr.Layers {
		if len(es) != len(ids) {
			return fmt.Errorf("report: layer %d traced %d tokens of %d", l, len(es), len(ids))
		}
		L := t.Layer[l]
		for i, e := range es {
			pos := t.Tokens + i
			if e.Pos != pos {
				return fmt.Errorf("report: layer %d entry %d is at position %d, want %d", l, i, e.Pos, pos)
			}
			if err := L.add(pos, e, t.TauRetrieve); err != nil {
				return fmt.Errorf("report: layer %d position %d: %w", l, pos, err)
			}
		}
	}
	t.IDs = append(t.IDs, ids...)
	t.Text = append(t.Text, text...)
	t.Tokens += len(ids)
	for _, L := range t.Layer {
		L.summarise(t.Tokens)
	}
	return nil
}

func (L *Layer) add(pos int, e engine.TraceEntry, tau2 float64) error {
	var f uint8
	switch e.Note {
	case "skip":
		f = ActSkip
	case "note":
		f = ActNote
		L.slots = append(L.slots, pos)
	case "evict":
		f = ActEvict
		k := slices.Index(L.slots, e.Evicted)
		if k < 0 {
			return fmt.Errorf("evicts position %d, which is not in the pool", e.Evicted)
		}
		L.slots[k] = pos
		L.Evicted = append(L.Evicted, e.Evicted)
	case "drop":
		f = ActDrop
	default:
		return fmt.Errorf("unknown note action %q", e.Note)
	}
	if e.Retrieved {
		f |= FlagRetrieved
	}
	if e.CrossLayer {
		f |= FlagCrossLayer
	}
	if e.Trigger > tau2 {
		f |= FlagTriggered
	}
	if !slices.Equal(L.slots, e.Pool) {
		return fmt.Errorf("the pool is %v, the decisions give %v", e.Pool, L.slots)
	}
	L.Importance = append(L.Importance, float32(e.Importance))
	L.Trigger = append(L.Trigger, float32(e.Trigger))
	L.Flags = append(L.Flags, f)
	return nil
}

func (L *Layer) summarise(n int) {
	s := Summary{Tokens: n, PoolAtEnd: len(L.slots)}
	var si, sg float64
	for i, f := range L.Flags {
		switch f & 3 {
		case ActNote:
			s.Appended++
		case ActEvict:
			s.Evictions++
		case ActDrop:
			s.Dropped++
		}
		if f&FlagRetrieved != 0 {
			s.Retrieved++
		}
		if f&FlagCrossLayer != 0 {
			s.CrossLayer++
		}
		if f&FlagTriggered != 0 {
			s.Triggered++
		}
		si += float64(L.Importance[i])
		sg += float64(L.Trigger[i])
	}
	s.Noted = s.Appended + s.Evictions
	if n > 0 {
		s.NoteRate = float64(s.Noted) / float64(n)
		s.Turnover = float64(s.Evictions) / float64(n)
		s.RetrievalRate = float64(s.Retrieved) / float64(n)
		s.MeanImportance = si / float64(n)
		s.MeanTrigger = sg / float64(n)
	}
	L.Summary = s
}

// Intervals returns, for every note the layer took, its position and the
// position of the token that evicted it (-1: still in the pool at the end),
// in the order the notes were taken.
func (L *Layer) Intervals() (pos, until []int) {
	idx := map[int]int{} // position -> index of its note
	ev := 0
	for i, f := range L.Flags {
		switch f & 3 {
		case ActNote:
			idx[i] = len(pos)
			pos, until = append(pos, i), append(until, -1)
		case ActEvict:
			if k, ok := idx[L.Evicted[ev]]; ok {
				until[k] = i
			}
			ev++
			idx[i] = len(pos)
			pos, until = append(pos, i), append(until, -1)
		}
	}
	return pos, until
}

// clamp01 maps NaN to 0 and clamps to [0, 1].
func clamp01(v float64) float64 {
	if math.IsNaN(v) || v < 0 {
		return 0
	}
	return min(v, 1)
}
