package report

import (
	"fmt"
	"html"
	"math"
	"sort"
	"strings"
)

// series is one line of a chart or one group of bars.
type series struct {
	Name string
	X, Y []float64
}

// colors distinguish series (Tableau 10).
var colors = []string{"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"}

func sortStrings(s []string) { sort.Strings(s) }

const (
	chartW, chartH = 560, 260
	padL, padR     = 56, 16
	padT, padB     = 28, 40
)

// smooth is the trailing moving average over w points (loss curves of
// single batches are noisy).
func smooth(y []float64, w int) []float64 {
	if w <= 1 {
		return y
	}
	out := make([]float64, len(y))
	var sum float64
	for i, v := range y {
		sum += v
		if i >= w {
			sum -= y[i-w]
		}
		out[i] = sum / float64(min(i+1, w))
	}
	return out
}

// niceTicks returns about n round tick values covering [lo, hi].
func niceTicks(lo, hi float64, n int) []float64 {
	if !(hi > lo) {
		hi = lo + 1
	}
	step := math.Pow(10, math.Floor(math.Log10((hi-lo)/float64(n))))
	for _, m := range []float64{1, 2, 5, 10} {
		if (hi-lo)/(step*m) <= float64(n) {
			step *= m
			break
		}
	}
	var t []float64
	for v := math.Ceil(lo/step) * step; v <= hi+step*1e-9; v += step {
		t = append(t, v)
	}
	return t
}

func fmtTick(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e6 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

// lineChart draws series as polylines (smoothed when long) with axes, ticks
// and a legend.
func lineChart(title, xLabel string, ss []series) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="%d" height="%d" viewBox="0 0 %d %d">`, chartW, chartH, chartW, chartH)
	fmt.Fprintf(&b, `<text x="%d" y="18" class="title">%s</text>`, padL, html.EscapeString(title))
	xlo, xhi, ylo, yhi := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	sm := make([][]float64, len(ss))
	for i, s := range ss {
		sm[i] = smooth(s.Y, max(1, len(s.Y)/60))
		for j := range s.X {
			if v := sm[i][j]; !math.IsNaN(v) && !math.IsInf(v, 0) {
				xlo, xhi = math.Min(xlo, s.X[j]), math.Max(xhi, s.X[j])
				ylo, yhi = math.Min(ylo, v), math.Max(yhi, v)
			}
		}
	}
	if math.IsInf(xlo, 0) {
		b.WriteString(`<text x="200" y="130">no data</text></svg>`)
		return b.String()
	}
	ylo = math.Min(0, ylo)
	if yhi <= ylo {
		yhi = ylo + 1
	}
	if xhi <= xlo {
		xhi = xlo + 1
	}
	pw, ph := float64(chartW-padL-padR), float64(chartH-padT-padB)
	px := func(x float64) float64 { return float64(padL) + (x-xlo)/(xhi-xlo)*pw }
	py := func(y float64) float64 { return float64(padT) + (1-(y-ylo)/(yhi-ylo))*ph }
	axes(&b, niceTicks(xlo, xhi, 6), niceTicks(ylo, yhi, 5), px, py, xLabel)
	for i, s := range ss {
		var pts []string
		for j := range s.X {
			if v := sm[i][j]; !math.IsNaN(v) && !math.IsInf(v, 0) {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(s.X[j]), py(v)))
			}
		}
		c := colors[i%len(colors)]
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`, c, strings.Join(pts, " "))
		legend(&b, i, s.Name, c)
	}
	b.WriteString(`</svg>`)
	return b.String()
}

func axes(b *strings.Builder, xt, yt []float64, px, py func(float64) float64, xLabel string) {
	x0, x1 := float64(padL), float64(chartW-padR)
	y0, y1 := float64(chartH-padB), float64(padT)
	for _, t := range yt {
		fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" class="grid"/>`, x0, x1, py(t), py(t))
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" class="tick" text-anchor="end">%s</text>`, x0-4, py(t)+4, fmtTick(t))
	}
	for _, t := range xt {
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" class="tick" text-anchor="middle">%s</text>`, px(t), y0+14, fmtTick(t))
	}
	fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" class="axis"/>`, x0, x1, y0, y0)
	fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" class="axis"/>`, x0, x0, y0, y1)
	if xLabel != "" {
		fmt.Fprintf(b, `<text x="%.1f" y="%d" class="tick" text-anchor="middle">%s</text>`, (x0+x1)/2, chartH-6, html.EscapeString(xLabel))
	}
}

func legend(b *strings.Builder, i int, name, color string) {
	x := chartW - padR - 150
	y := padT + 6 + 14*i
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d" class="tick">%s</text>`,
		x, y-9, color, x+14, y, html.EscapeString(name))
}

// barChart draws grouped bars in [0, 1] (IoU): one group per category, one
// bar per series; NaN values are left out.
func barChart(title string, categories []string, ss []series) string {
	w := max(chartW, padL+padR+len(categories)*(12*len(ss)+14)+160)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="%d" height="%d" viewBox="0 0 %d %d">`, w, chartH, w, chartH)
	fmt.Fprintf(&b, `<text x="%d" y="18" class="title">%s</text>`, padL, html.EscapeString(title))
	if len(categories) == 0 || len(ss) == 0 {
		b.WriteString(`<text x="200" y="130">no data</text></svg>`)
		return b.String()
	}
	ph := float64(chartH - padT - padB)
	py := func(y float64) float64 { return float64(padT) + (1-y)*ph }
	plotW := float64(w - padL - padR - 160)
	gw := plotW / float64(len(categories))
	bw := (gw - 8) / float64(len(ss))
	x0, x1 := float64(padL), float64(padL)+plotW
	for _, t := range []float64{0, 0.25, 0.5, 0.75, 1} {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" class="grid"/>`, x0, x1, py(t), py(t))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="tick" text-anchor="end">%.2f</text>`, x0-4, py(t)+4, t)
	}
	for ci, cat := range categories {
		gx := x0 + float64(ci)*gw + 4
		for si, s := range ss {
			if ci >= len(s.Y) || math.IsNaN(s.Y[ci]) {
				continue
			}
			v := math.Max(0, math.Min(1, s.Y[ci]))
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %.3f</title></rect>`,
				gx+float64(si)*bw, py(v), math.Max(bw-1, 1), py(0)-py(v), colors[si%len(colors)],
				html.EscapeString(s.Name), html.EscapeString(cat), s.Y[ci])
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="tick" text-anchor="middle">%s</text>`, gx+gw/2-4, py(0)+14, html.EscapeString(cat))
	}
	fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" class="axis"/>`, x0, x1, py(0), py(0))
	for si, s := range ss {
		x := int(x1) + 12
		y := padT + 6 + 14*si
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d" class="tick">%s</text>`,
			x, y-9, colors[si%len(colors)], x+14, y, html.EscapeString(s.Name))
	}
	b.WriteString(`</svg>`)
	return b.String()
}
