package report

import (
	"fmt"
	"html/template"
	"math"
	"slices"
	"strings"
)

// The plots' geometry, in SVG user units: plotW columns at most (longer
// texts are downsampled into buckets of tokens), a left margin for the
// axis labels and a bottom one for the positions.
const (
	plotW    = 1000
	plotH    = 100
	marginL  = 44
	marginR  = 8
	marginT  = 8
	tickRows = 3 // rows of event ticks under a plot, 8 units each
	poolH    = 120
)

// columns is the number of plot columns for n tokens.
func columns(n int) int { return max(1, min(n, plotW)) }

// bucket returns the tokens [lo, hi) of column c of cols over n tokens.
func bucket(c, cols, n int) (lo, hi int) {
	return c * n / cols, max((c+1)*n/cols, c*n/cols+1)
}

// xOf maps column c (its left edge) to the plot's x.
func xOf(c, cols int) float64 { return marginL + float64(c)*plotW/float64(cols) }

func f1(v float64) string { return fmt.Sprintf("%.1f", v) }

// seriesPlot draws one series in [0,1] along the text: the min-max band of
// every column, the mean as a line, the threshold dashed, and under it
// rows of ticks where the events happen (each row's height grows with the
// events' share of its column's tokens).
func seriesPlot(id, title string, v []float32, tau float64, rows []tickRow) template.HTML {
	n := len(v)
	cols := columns(n)
	h := plotH + tickRows*8 + 24
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="plot" id="%s" data-tokens="%d" viewBox="0 0 %d %d" width="100%%" preserveAspectRatio="none" role="img"><title>%s</title>`,
		id, n, marginL+plotW+marginR, h, template.HTMLEscapeString(title))
	y := func(x float64) float64 { return marginT + (1-clamp01(x))*plotH }
	fmt.Fprintf(&b, `<rect class="frame" x="%d" y="%d" width="%d" height="%d"/>`, marginL, marginT, plotW, plotH)
	for _, g := range []float64{0, 0.5, 1} {
		fmt.Fprintf(&b, `<text class="ylab" x="%d" y="%s">%.1f</text>`, marginL-4, f1(y(g)+3), g)
	}
	if n > 0 {
		var top, bot []string
		var mean strings.Builder
		for c := range cols {
			lo, hi := bucket(c, cols, n)
			mn, mx, sum := math.Inf(1), math.Inf(-1), 0.0
			for _, x := range v[lo:hi] {
				mn, mx, sum = min(mn, float64(x)), max(mx, float64(x)), sum+float64(x)
			}
			x0, x1 := xOf(c, cols), xOf(c+1, cols)
			top = append(top, f1(x0)+","+f1(y(mx)), f1(x1)+","+f1(y(mx)))
			bot = append(bot, f1(x0)+","+f1(y(mn)), f1(x1)+","+f1(y(mn)))
			sep := " L"
			if c == 0 {
				sep = "M"
			}
			fmt.Fprintf(&mean, "%s%s %s", sep, f1((x0+x1)/2), f1(y(sum/float64(hi-lo))))
		}
		slices.Reverse(bot)
		fmt.Fprintf(&b, `<polygon class="band" points="%s"/>`, strings.Join(append(top, bot...), " "))
		fmt.Fprintf(&b, `<path class="mean" d="%s"/>`, mean.String())
	}
	fmt.Fprintf(&b, `<line class="tau" x1="%d" x2="%d" y1="%s" y2="%s"/>`, marginL, marginL+plotW, f1(y(tau)), f1(y(tau)))
	fmt.Fprintf(&b, `<text class="taulab" x="%d" y="%s">%.2f</text>`, marginL+plotW-2, f1(y(tau)-2), tau)
	base := float64(marginT + plotH + 2)
	for r, row := range rows {
		fmt.Fprintf(&b, `<text class="ylab" x="%d" y="%s">%s</text>`, marginL-4, f1(base+float64(r)*8+7), row.label)
		var p strings.Builder
		for c := range cols {
			lo, hi := bucket(c, cols, n)
			k := 0
			for i := lo; i < hi; i++ {
				if row.on(i) {
					k++
				}
			}
			if k > 0 {
				hgt := 2 + 5*float64(k)/float64(hi-lo)
				fmt.Fprintf(&p, "M%s %sv%sh%sv-%sz", f1(xOf(c, cols)), f1(base+float64(r)*8+7-hgt), f1(hgt),
					f1(math.Max(0.6, float64(plotW)/float64(cols))), f1(hgt))
			}
		}
		fmt.Fprintf(&b, `<path class="tick %s" d="%s"/>`, row.class, p.String())
	}
	axis(&b, n, base+tickRows*8+12)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// tickRow is one row of event ticks under a plot.
type tickRow struct {
	label, class string
	on           func(i int) bool
}

// axis writes the position labels at 0, 1/4, ..., n.
func axis(b *strings.Builder, n int, y float64) {
	for q := 0; q <= 4; q++ {
		anchor := "middle"
		switch q {
		case 0:
			anchor = "start"
		case 4:
			anchor = "end"
		}
		fmt.Fprintf(b, `<text class="xlab" text-anchor="%s" x="%s" y="%s">%d</text>`, anchor,
			f1(marginL+float64(q)*plotW/4), f1(y), n*q/4)
	}
}

// poolPlot draws the pool's contents over positions: x is the position in
// the text, y the position of a note, and every note is a line from where
// it was taken (the diagonal) to where it was evicted (or the end). Lines
// that fall on the same row of units are merged, so the drawing stays small
// however many notes there were.
func poolPlot(id string, n int, pos, until []int) template.HTML {
	cols := columns(n)
	h := poolH + 24
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="plot pool" id="%s" data-tokens="%d" viewBox="0 0 %d %d" width="100%%" preserveAspectRatio="none" role="img"><title>pool contents over positions</title>`,
		id, n, marginL+plotW+marginR, h)
	fmt.Fprintf(&b, `<rect class="frame" x="%d" y="%d" width="%d" height="%d"/>`, marginL, marginT, plotW, poolH)
	fmt.Fprintf(&b, `<text class="ylab" x="%d" y="%d">0</text><text class="ylab" x="%d" y="%d">%d</text>`,
		marginL-4, marginT+8, marginL-4, marginT+poolH, n)
	if n > 0 {
		rows := make([][][2]int, poolH) // per row: merged [c0, c1) column runs
		for k, p := range pos {
			end := n
			if until[k] >= 0 {
				end = until[k]
			}
			r := min(poolH-1, p*poolH/n)
			c0, c1 := p*cols/n, max(end*cols/n, p*cols/n+1)
			runs := rows[r]
			if m := len(runs); m > 0 && c0 <= runs[m-1][1] {
				runs[m-1][1] = max(runs[m-1][1], c1)
			} else {
				runs = append(runs, [2]int{c0, c1})
			}
			rows[r] = runs
		}
		var p strings.Builder
		for r, runs := range rows {
			for _, u := range runs {
				fmt.Fprintf(&p, "M%s %dh%s", f1(xOf(u[0], cols)), marginT+r, f1(xOf(u[1], cols)-xOf(u[0], cols)))
			}
		}
		fmt.Fprintf(&b, `<path class="notes" d="%s"/>`, p.String())
	}
	axis(&b, n, marginT+poolH+14)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
