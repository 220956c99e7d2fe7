package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/memmamba/memmamba/engine"
	"github.com/memmamba/memmamba/memdecay"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./report -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output (%d bytes against %d); run go test ./report -update after checking the change", path, len(want), len(got))
	}
}

// sampleTrace is a hand-made runtime trace of two layers and ten tokens,
// pool size 3, with every kind of decision: notes, a drop, evictions,
// retrievals with and without a note in the pool, and cross-layer reads on
// layer 1.
func sampleTrace() (*engine.Trace, []int, []string) {
	ids := []int{84, 104, 101, 32, 107, 101, 121, 32, 105, 115}
	text := []string{"T", "h", "e", " ", "k", "e", "y", " ", "i", "s"}
	type d struct {
		imp, trig float64
		note      string
		ev        int
	}
	layers := [][]d{
		{{0.9, 0.1, "note", -1}, {0.2, 0.5, "skip", -1}, {0.7, 0.6, "note", -1}, {0.6, 0.2, "note", -1},
			{0.95, 0.9, "evict", 3}, {0.55, 0.4, "drop", -1}, {0.8, 0.1, "evict", 2}, {0.1, 0.35, "skip", -1},
			{0.3, 0.2, "skip", -1}, {0.99, 0.7, "evict", 6}},
		{{0.4, 0.5, "skip", -1}, {0.6, 0.6, "note", -1}, {0.2, 0.1, "skip", -1}, {0.51, 0.2, "note", -1},
			{0.49, 0.31, "skip", -1}, {0.7, 0.8, "note", -1}, {0.75, 0.2, "evict", 3}, {0.1, 0.2, "skip", -1},
			{0.2, 0.9, "skip", -1}, {0.65, 0.1, "drop", -1}},
	}
	tr := &engine.Trace{Layers: make([][]engine.TraceEntry, 2)}
	for l, ds := range layers {
		var pool []int
		for i, x := range ds {
			switch x.note {
			case "note":
				pool = append(pool, i)
			case "evict":
				for k, p := range pool {
					if p == x.ev {
						pool[k] = i
					}
				}
			}
			tr.Layers[l] = append(tr.Layers[l], engine.TraceEntry{Pos: i, Importance: x.imp, Trigger: x.trig,
				Retrieved: x.trig > 0.3 && i > 0 && len(tr.Layers[l][i-1].Pool) > 0, Note: x.note, Evicted: x.ev,
				CrossLayer: l == 1 && len(pool) > 0, Pool: append([]int(nil), pool...)})
		}
	}
	return tr, ids, text
}

func sampleReport(t *testing.T) *Trace {
	t.Helper()
	tr, ids, text := sampleTrace()
	r := NewTrace(Meta{Model: "sample.mmq", ModelType: "memmamba", Layers: 2, PoolSize: 3, TauNote: 0.5, TauRetrieve: 0.3,
		Eviction: "priority", CrossLayerEvery: 2, Source: "--text"}, []bool{false, true})
	// in two chunks, as mmrun trace adds them
	first := &engine.Trace{Layers: [][]engine.TraceEntry{tr.Layers[0][:4], tr.Layers[1][:4]}}
	rest := &engine.Trace{Layers: [][]engine.TraceEntry{tr.Layers[0][4:], tr.Layers[1][4:]}}
	if err := r.Add(ids[:4], text[:4], first); err != nil {
		t.Fatal(err)
	}
	if err := r.Add(ids[4:], text[4:], rest); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestTraceSummary(t *testing.T) {
	r := sampleReport(t)
	want := []Summary{
		{Tokens: 10, Noted: 6, Appended: 3, Evictions: 3, Dropped: 1, Triggered: 6, Retrieved: 6, PoolAtEnd: 3},
		{Tokens: 10, Noted: 4, Appended: 3, Evictions: 1, Dropped: 1, Triggered: 5, Retrieved: 3, CrossLayer: 9, PoolAtEnd: 3},
	}
	for l, w := range want {
		s := r.Layer[l].Summary
		s.NoteRate, s.Turnover, s.RetrievalRate, s.MeanImportance, s.MeanTrigger = 0, 0, 0, 0, 0
		if s != w {
			t.Errorf("layer %d: summary %+v, want %+v", l, s, w)
		}
	}
	if s := r.Layer[0].Summary; s.NoteRate != 0.6 || s.Turnover != 0.3 || s.RetrievalRate != 0.6 {
		t.Errorf("layer 0 rates %v %v %v, want 0.6 0.3 0.6", s.NoteRate, s.Turnover, s.RetrievalRate)
	}
	pos, until := r.Layer[0].Intervals()
	if want := []int{0, 2, 3, 4, 6, 9}; !equal(pos, want) {
		t.Errorf("layer 0 note positions %v, want %v", pos, want)
	}
	if want := []int{-1, 6, 4, -1, 9, -1}; !equal(until, want) {
		t.Errorf("layer 0 notes evicted at %v, want %v", until, want)
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestTraceChecksPools: a trace whose pool lists do not follow from its
// decisions is refused, as is one of another length.
func TestTraceChecksPools(t *testing.T) {
	tr, ids, text := sampleTrace()
	tr.Layers[0][5].Pool = []int{0, 2, 5}
	r := NewTrace(Meta{Layers: 2, TauRetrieve: 0.3}, nil)
	if err := r.Add(ids, text, tr); err == nil || !strings.Contains(err.Error(), "position 5") {
		t.Errorf("a wrong pool list: %v", err)
	}
	tr, ids, text = sampleTrace()
	tr.Layers[1] = tr.Layers[1][:9]
	if err := NewTrace(Meta{Layers: 2}, nil).Add(ids, text, tr); err == nil {
		t.Error("a short layer was accepted")
	}
}

func TestTraceGolden(t *testing.T) {
	r := sampleReport(t)
	var b bytes.Buffer
	if err := WriteTraceHTML(&b, r); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	checkSelfContained(t, html)
	if n := strings.Count(html, `<section class="layer"`); n != 2 {
		t.Errorf("%d layer sections, want 2", n)
	}
	golden(t, "trace.golden.html", b.Bytes())
	j, err := json.MarshalIndent(r, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "trace.golden.json", append(j, '\n'))
}

// checkSelfContained: nothing in the page is fetched (no src or href to
// another document, no url(), no @import).
func checkSelfContained(t *testing.T, html string) {
	t.Helper()
	for _, re := range []string{`\bsrc=`, `href="(https?:)?//`, `url\(`, `@import`, `<link`} {
		if m := regexp.MustCompile(re).FindString(html); m != "" {
			t.Errorf("the page refers outside itself: %q", m)
		}
	}
}

// TestTraceLong: a 64k-token trace renders in bounded size (its plots are
// downsampled and its text is data, not spans).
func TestTraceLong(t *testing.T) {
	const n, L, P = 1 << 16, 4, 32
	r := NewTrace(Meta{Model: "long", Layers: L, PoolSize: P, TauNote: 0.5, TauRetrieve: 0.3}, nil)
	tr := &engine.Trace{Layers: make([][]engine.TraceEntry, L)}
	ids, text := make([]int, n), make([]string, n)
	for l := range L {
		var pool []int
		for i := range n {
			e := engine.TraceEntry{Pos: i, Importance: float64((i*7+l)%100) / 100, Trigger: float64((i*13+l)%100) / 100, Note: "skip", Evicted: -1}
			if e.Importance > 0.5 {
				if len(pool) < P {
					e.Note = "note"
					pool = append(pool, i)
				} else {
					e.Note, e.Evicted = "evict", pool[i%P]
					pool[i%P] = i
				}
			}
			e.Pool = append([]int(nil), pool...)
			tr.Layers[l] = append(tr.Layers[l], e)
		}
	}
	for i := range n {
		ids[i], text[i] = 97+i%26, string(rune(97+i%26))
	}
	if err := r.Add(ids, text, tr); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	start := time.Now()
	if err := WriteTraceHTML(&b, r); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if b.Len() > 8<<20 {
		t.Errorf("a 64k-token trace of 4 layers takes %.1f MB of HTML, want at most 8", float64(b.Len())/(1<<20))
	}
	if c := len(regexp.MustCompile(`<span data-i="\d`).FindAllString(b.String(), -1)); c != 0 {
		t.Errorf("%d token spans written eagerly", c)
	}
	t.Logf("64k tokens x 4 layers: %.2f MB in %v", float64(b.Len())/(1<<20), took)
}

func sampleCurves() []*memdecay.Curve {
	return []*memdecay.Curve{
		{Model: "mamba.mmq", ModelType: "mamba", Source: "text.txt", Context: 64, MaxK: 8, Samples: 4, Replacements: 2, Seed: 1,
			K: []int{1, 2, 4, 8}, MeanKL: []float64{0.5, 0.1, 0.01, 0.001}, StdErr: []float64{0.05, 0.02, 0.002, 0.0001},
			Top1Changed: []float64{0.5, 0.25, 0.125, 0}, TokensRun: 150, Seconds: 0.5},
		{Model: "memmamba.mmq", ModelType: "memmamba", Source: "text.txt", Context: 64, MaxK: 8, Samples: 4, Replacements: 2, Seed: 1,
			K: []int{1, 2, 4, 8}, MeanKL: []float64{0.6, 0.2, 0.05, 0}, StdErr: []float64{0.05, 0.02, 0.01, 0},
			Top1Changed: []float64{0.625, 0.375, 0.125, 0}, TokensRun: 150, Seconds: 0.7},
	}
}

func TestMemoryGolden(t *testing.T) {
	var b bytes.Buffer
	if err := WriteMemoryHTML(&b, sampleCurves()); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	checkSelfContained(t, html)
	if n := strings.Count(html, `<g class="curve"`); n != 2 {
		t.Errorf("%d curves drawn, want 2", n)
	}
	golden(t, "memory.golden.html", b.Bytes())
}
