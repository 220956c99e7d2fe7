package report

import (
	"bytes"
	_ "embed"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
)

//go:embed trace.html.tmpl
var traceTemplate string

//go:embed memory.html.tmpl
var memoryTemplate string

// PageTokens is the number of tokens the trace report's text view shows at
// a time (the page's spans are made when it is shown).
const PageTokens = 2000

var funcs = template.FuncMap{
	"pct": func(v float64) string { return fmt.Sprintf("%.1f%%", 100*v) },
	"f3":  func(v float64) string { return fmt.Sprintf("%.3f", v) },
	"f4":  func(v float64) string { return fmt.Sprintf("%.4f", v) },
	"g3":  func(v float64) string { return fmt.Sprintf("%.3g", v) },
}

var (
	traceTmpl  = template.Must(template.New("trace").Funcs(funcs).Parse(traceTemplate))
	memoryTmpl = template.Must(template.New("memory").Funcs(funcs).Parse(memoryTemplate))
)

// compact is the inline data the trace report's script reads: the token
// texts and, per layer, base64 of little-endian arrays (importance and
// trigger as uint16 of v*65535, the flags as bytes, the evicted positions
// as int32).
type compact struct {
	N        int      `json:"n"`
	Page     int      `json:"page"`
	Tau1     float64  `json:"tau1"`
	Tau2     float64  `json:"tau2"`
	PoolSize int      `json:"pool"`
	Text     []string `json:"text"`
	Imp      []string `json:"imp"`
	Trig     []string `json:"trig"`
	Flags    []string `json:"flags"`
	Evicted  []string `json:"evicted"`
}

func u16(v []float32) string {
	b := make([]byte, 2*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(math.Round(clamp01(float64(x))*65535)))
	}
	return base64.StdEncoding.EncodeToString(b)
}

func i32(v []int) string {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(int32(x)))
	}
	return base64.StdEncoding.EncodeToString(b)
}

type layerView struct {
	*Layer
	ImpPlot, TrigPlot, PoolPlot template.HTML
}

// WriteTraceHTML writes the trace report of t as one HTML file.
func WriteTraceHTML(w io.Writer, t *Trace) error {
	c := compact{N: t.Tokens, Page: PageTokens, Tau1: t.TauNote, Tau2: t.TauRetrieve, PoolSize: t.PoolSize, Text: t.Text}
	views := make([]layerView, len(t.Layer))
	for l, L := range t.Layer {
		c.Imp = append(c.Imp, u16(L.Importance))
		c.Trig = append(c.Trig, u16(L.Trigger))
		c.Flags = append(c.Flags, base64.StdEncoding.EncodeToString(L.Flags))
		c.Evicted = append(c.Evicted, i32(L.Evicted))
		flag := func(bit uint8) func(int) bool { return func(i int) bool { return L.Flags[i]&bit != 0 } }
		act := func(a uint8) func(int) bool { return func(i int) bool { return L.Flags[i]&3 == a } }
		evictedAt := make([]bool, t.Tokens)
		pos, until := L.Intervals()
		for k := range pos {
			if until[k] >= 0 {
				evictedAt[pos[k]] = true
			}
		}
		noteRows := []tickRow{
			{"noted", "t-note", func(i int) bool { a := L.Flags[i] & 3; return a == ActNote || a == ActEvict }},
			{"evicts", "t-evict", act(ActEvict)},
			{"dropped", "t-drop", act(ActDrop)},
		}
		trigRows := []tickRow{
			{"trig.", "t-trig", flag(FlagTriggered)},
			{"retr.", "t-retr", flag(FlagRetrieved)},
		}
		if L.CrossLayer {
			trigRows = append(trigRows, tickRow{"x-layer", "t-cross", flag(FlagCrossLayer)})
		}
		views[l] = layerView{
			Layer:    L,
			ImpPlot:  seriesPlot(fmt.Sprintf("imp-%d", l), fmt.Sprintf("layer %d importance", l), L.Importance, t.TauNote, noteRows),
			TrigPlot: seriesPlot(fmt.Sprintf("trig-%d", l), fmt.Sprintf("layer %d trigger", l), L.Trigger, t.TauRetrieve, trigRows),
			PoolPlot: poolPlot(fmt.Sprintf("pool-%d", l), t.Tokens, pos, until),
		}
	}
	data, err := json.Marshal(c) // escapes <, > and &: safe inside <script>
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := traceTmpl.Execute(&buf, map[string]any{
		"T": t, "Layers": views, "Data": template.JS(data), "Page": PageTokens, "Margin": marginL, "Width": plotW,
	}); err != nil {
		return err
	}
	_, err = w.Write(buf.Bytes())
	return err
}
