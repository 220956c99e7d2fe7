package report

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"

	"github.com/memmamba/memmamba/memdecay"
)

// curveColours are the memory plot's line colours, in the order of the
// models.
var curveColours = []string{"#d95f02", "#1b9e77", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"}

// klFloor is the lowest KL the memory plot's log axis shows; smaller means
// (0 included) are drawn on it.
const klFloor = 1e-9

// memoryPlot draws the curves on log-log axes: k (log 2) across, the mean
// KL (log 10) up, with each point's standard error as a bar.
func memoryPlot(curves []*memdecay.Curve) template.HTML {
	const W, H, mL, mR, mT, mB = 760, 360, 64, 16, 12, 44
	maxK, lo, hi := 1, math.Inf(1), math.Inf(-1)
	for _, c := range curves {
		maxK = max(maxK, c.MaxK)
		for i, v := range c.MeanKL {
			if v > klFloor {
				lo = min(lo, v)
			}
			hi = max(hi, v+c.StdErr[i])
		}
	}
	if math.IsInf(lo, 1) {
		lo, hi = klFloor, 1
	}
	ylo, yhi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(max(hi, lo*10)))
	xhi := math.Max(1, math.Log2(float64(maxK)))
	px := func(k int) float64 { return mL + math.Log2(float64(k))/xhi*(W-mL-mR) }
	py := func(v float64) float64 {
		e := math.Log10(math.Max(v, math.Pow(10, ylo)))
		return mT + (yhi-e)/(yhi-ylo)*(H-mT-mB)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="memory-plot" viewBox="0 0 %d %d" width="100%%" role="img"><title>memory decay: mean KL at distance k</title>`, W, H)
	fmt.Fprintf(&b, `<rect class="frame" x="%d" y="%d" width="%d" height="%d"/>`, mL, mT, W-mL-mR, H-mT-mB)
	for e := ylo; e <= yhi; e++ {
		y := py(math.Pow(10, e))
		fmt.Fprintf(&b, `<line class="grid" x1="%d" x2="%d" y1="%s" y2="%s"/><text class="ylab" x="%d" y="%s">1e%d</text>`,
			mL, W-mR, f1(y), f1(y), mL-4, f1(y+3), int(e))
	}
	for k := 1; k <= maxK; k *= 2 {
		x := px(k)
		fmt.Fprintf(&b, `<line class="grid" x1="%s" x2="%s" y1="%d" y2="%d"/><text class="xlab" x="%s" y="%d">%s</text>`,
			f1(x), f1(x), mT, H-mB, f1(x), H-mB+14, kLabel(k))
	}
	fmt.Fprintf(&b, `<text class="axis" x="%d" y="%d">distance k (tokens after the replaced one)</text>`, (W+mL)/2, H-8)
	fmt.Fprintf(&b, `<text class="axis" transform="translate(14 %d) rotate(-90)">mean KL (nats)</text>`, (H-mB+mT)/2)
	for ci, c := range curves {
		col := curveColours[ci%len(curveColours)]
		var p strings.Builder
		for i, k := range c.K {
			sep := "L"
			if i == 0 {
				sep = "M"
			}
			fmt.Fprintf(&p, "%s%s %s", sep, f1(px(k)), f1(py(c.MeanKL[i])))
		}
		fmt.Fprintf(&b, `<g class="curve" data-model="%s" data-points="%d"><path d="%s" stroke="%s"/>`,
			template.HTMLEscapeString(c.Model), len(c.K), p.String(), col)
		for i, k := range c.K {
			x, v, s := px(k), c.MeanKL[i], c.StdErr[i]
			fmt.Fprintf(&b, `<line class="err" x1="%s" x2="%s" y1="%s" y2="%s" stroke="%s"/><circle cx="%s" cy="%s" r="2.5" fill="%s"><title>%s k=%d: %.3g ± %.2g nats</title></circle>`,
				f1(x), f1(x), f1(py(v-s)), f1(py(v+s)), col, f1(x), f1(py(v)), col, template.HTMLEscapeString(c.Model), k, v, s)
		}
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="14" height="3" fill="%s"/><text class="legend" x="%d" y="%d">%s</text></g>`,
			W-mR-230, mT+10+16*ci, col, W-mR-212, mT+14+16*ci, template.HTMLEscapeString(c.Model))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// kLabel writes 1024 as 1k and 65536 as 64k.
func kLabel(k int) string {
	if k >= 1024 && k%1024 == 0 {
		return fmt.Sprintf("%dk", k/1024)
	}
	return fmt.Sprint(k)
}

// WriteMemoryHTML writes the memory-decay report of one or more models'
// curves as one HTML file: the plot, the numbers and the parameters.
func WriteMemoryHTML(w io.Writer, curves []*memdecay.Curve) error {
	var grid []int
	for _, c := range curves {
		if len(c.K) > len(grid) {
			grid = c.K
		}
	}
	type cell struct {
		Has           bool
		KL, Err, Top1 float64
	}
	type row struct {
		K     int
		Cells []cell
	}
	var rows []row
	for i, k := range grid {
		r := row{K: k}
		for _, c := range curves {
			if i < len(c.K) && c.K[i] == k {
				r.Cells = append(r.Cells, cell{true, c.MeanKL[i], c.StdErr[i], c.Top1Changed[i]})
			} else {
				r.Cells = append(r.Cells, cell{})
			}
		}
		rows = append(rows, r)
	}
	type legend struct {
		*memdecay.Curve
		Colour string
	}
	var ls []legend
	for i, c := range curves {
		ls = append(ls, legend{c, curveColours[i%len(curveColours)]})
	}
	var buf bytes.Buffer
	if err := memoryTmpl.Execute(&buf, map[string]any{"Curves": ls, "Rows": rows, "Plot": memoryPlot(curves)}); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}
