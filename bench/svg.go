package bench

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// Charts are plain SVG text: grouped bars (linear or log scale, with dashed reference
// lines for the baselines) and 100% stacked bars. No dependencies, small files.

const (
	chartW   = 960
	panelH   = 340
	marginL  = 72
	marginR  = 150 // legend
	marginT  = 44
	marginB  = 70
	fontFace = `font-family="Helvetica,Arial,sans-serif"`
)

var palette = map[string]string{
	"sync": "#4e79a7", "async": "#f28e2b", "bucket": "#59a14f",
	"p50": "#a0cbe8", "p90": "#4e79a7", "p99": "#f28e2b", "p99.9": "#e15759",
	"admitted": "#59a14f", "cache": "#4e79a7", "rate_limit": "#edc948", "backend": "#f28e2b", "plugin": "#b07aa1",
	"input": "#9c755f", "auth": "#bab0ac", "no answer": "#e15759", "other": "#d3d3d3",
}

var spare = []string{"#76b7b2", "#ff9da7", "#9c755f", "#bab0ac", "#b07aa1", "#edc948"}

func colorOf(name string, i int) string {
	if c, ok := palette[name]; ok {
		return c
	}
	return spare[i%len(spare)]
}

type series struct {
	name   string
	values []float64 // one per group; NaN or <= 0 on a log scale: no bar
}

type refLine struct {
	label string
	value float64
}

// panel is one chart drawn at a vertical offset.
type panel struct {
	body   string
	height int
}

// svgDoc stacks panels into one SVG document.
func svgDoc(panels ...panel) string {
	h := 0
	for _, p := range panels {
		h += p.height
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" %s font-size="12">`+"\n", chartW, h, chartW, h, fontFace)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", chartW, h)
	y := 0
	for _, p := range panels {
		fmt.Fprintf(&b, `<g transform="translate(0,%d)">`+"\n%s</g>\n", y, p.body)
		y += p.height
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func esc(s string) string { return html.EscapeString(s) }

// fmtNum writes a figure compactly: 12.3k, 456, 7.8, 0.42.
func fmtNum(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case a >= 1e4:
		return fmt.Sprintf("%.0fk", v/1e3)
	case a >= 1e3 && math.Mod(a, 1e3) == 0:
		return fmt.Sprintf("%.0fk", v/1e3)
	case a >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	case a >= 100 || (a >= 1 && a == math.Trunc(a)):
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	case a == 0:
		return "0"
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", v), "0"), ".")
}

// scale maps values to the plot's height.
type scale struct {
	log      bool
	lo, hi   float64 // linear: 0..hi; log: decades lo..hi (as values)
	plotH    float64
	ticks    []float64
	tickText func(float64) string
}

func newScale(vals []float64, log bool, plotH float64) scale {
	s := scale{log: log, plotH: plotH, tickText: fmtNum}
	vmax, vmin := 0.0, math.Inf(1)
	for _, v := range vals {
		if math.IsNaN(v) || v <= 0 {
			continue
		}
		vmax = max(vmax, v)
		vmin = min(vmin, v)
	}
	if vmax == 0 {
		vmax, vmin = 1, 1
	}
	if log {
		// From the decade under the smallest value to a little over the largest, so
		// the bars use the height; gridlines at each decade and its 2x and 5x.
		s.lo = math.Pow(10, math.Floor(math.Log10(vmin)))
		s.hi = max(vmax*1.6, s.lo*10)
		for d := s.lo; d <= s.hi; d *= 10 {
			for _, m := range []float64{1, 2, 5} {
				if t := d * m; t <= s.hi {
					s.ticks = append(s.ticks, t)
				}
			}
		}
		return s
	}
	step := niceStep(vmax * 1.1 / 5)
	s.hi = math.Ceil(vmax*1.1/step) * step
	for t := 0.0; t <= s.hi+step/2; t += step {
		s.ticks = append(s.ticks, t)
	}
	return s
}

func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if raw <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// y is the height above the axis of value v (clamped to the plot).
func (s scale) y(v float64) float64 {
	if s.log {
		if v <= 0 || math.IsNaN(v) {
			return 0
		}
		f := (math.Log10(v) - math.Log10(s.lo)) / (math.Log10(s.hi) - math.Log10(s.lo))
		return min(max(f, 0), 1) * s.plotH
	}
	if math.IsNaN(v) {
		return 0
	}
	return min(max(v/s.hi, 0), 1) * s.plotH
}

// barChart draws groups of bars, one bar per series in each group.
func barChart(title, yLabel string, groups []string, ss []series, logScale bool, refs []refLine) panel {
	plotW := float64(chartW - marginL - marginR)
	plotH := float64(panelH - marginT - marginB)
	var all []float64
	for _, s := range ss {
		all = append(all, s.values...)
	}
	for _, r := range refs {
		all = append(all, r.value)
	}
	sc := newScale(all, logScale, plotH)
	var b strings.Builder
	x0, yAxis := float64(marginL), float64(marginT)+plotH
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", marginL, esc(title))
	fmt.Fprintf(&b, `<text transform="translate(16,%.0f) rotate(-90)" text-anchor="middle" fill="#444">%s</text>`+"\n", float64(marginT)+plotH/2, esc(yLabel))
	for _, t := range sc.ticks {
		y := yAxis - sc.y(t)
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#e5e5e5"/>`+"\n", x0, y, x0+plotW, y)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" text-anchor="end" fill="#555">%s</text>`+"\n", x0-6, y+4, sc.tickText(t))
	}
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#333"/>`+"\n", x0, yAxis, x0+plotW, yAxis)
	if len(groups) > 0 && len(ss) > 0 {
		gw := plotW / float64(len(groups))
		bw := gw * 0.8 / float64(len(ss))
		for g, name := range groups {
			gx := x0 + float64(g)*gw
			for k, l := range strings.Split(name, "/") { // "scenario/strategy" on two lines
				fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", gx+gw/2, yAxis+18+float64(k)*14, esc(l))
			}
			for i, s := range ss {
				if g >= len(s.values) {
					continue
				}
				v := s.values[g]
				if math.IsNaN(v) || (logScale && v <= 0) {
					continue
				}
				h := sc.y(v)
				bx := gx + gw*0.1 + float64(i)*bw
				fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %s</title></rect>`+"\n",
					bx, yAxis-h, math.Max(bw-2, 1), h, colorOf(s.name, i), esc(name), esc(s.name), fmtNum(v))
				if bw >= 22 { // room for the figure; otherwise it is in the tooltip and the tables
					fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10" fill="#222">%s</text>`+"\n", bx+bw/2-1, yAxis-h-3, fmtNum(v))
				}
			}
		}
	}
	for _, r := range refs {
		if r.value <= 0 || math.IsNaN(r.value) {
			continue
		}
		y := yAxis - sc.y(r.value)
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#666" stroke-dasharray="6,4"/>`+"\n", x0, y, x0+plotW, y)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" font-size="10" fill="#444">%s %s</text>`+"\n", x0+plotW+4, y+3, esc(r.label), fmtNum(r.value))
	}
	lx, ly := x0+plotW+4, float64(marginT)
	if len(refs) > 0 {
		ly = float64(marginT) + plotH*0.55
	}
	for i, s := range ss {
		fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="12" height="12" fill="%s"/><text x="%.0f" y="%.0f">%s</text>`+"\n",
			lx, ly+float64(i)*18, colorOf(s.name, i), lx+17, ly+float64(i)*18+10, esc(s.name))
	}
	if logScale {
		fmt.Fprintf(&b, `<text x="%.0f" y="%d" font-size="10" fill="#777">log scale</text>`+"\n", x0+plotW-50, marginT-6)
	}
	return panel{body: b.String(), height: panelH}
}

// stackedChart draws one 100% bar per row, split into segments.
func stackedChart(title string, bars []string, segs []string, values [][]float64) panel {
	plotW := float64(chartW - marginL - marginR)
	plotH := float64(panelH - marginT - marginB)
	var b strings.Builder
	x0, yAxis := float64(marginL), float64(marginT)+plotH
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", marginL, esc(title))
	for _, t := range []float64{0, 25, 50, 75, 100} {
		y := yAxis - t/100*plotH
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#e5e5e5"/>`+"\n", x0, y, x0+plotW, y)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" text-anchor="end" fill="#555">%.0f%%</text>`+"\n", x0-6, y+4, t)
	}
	if len(bars) > 0 {
		gw := plotW / float64(len(bars))
		bw := gw * 0.7
		for i, name := range bars {
			bx := x0 + float64(i)*gw + gw*0.15
			var total float64
			for _, v := range values[i] {
				total += max(v, 0)
			}
			y := yAxis
			for s, v := range values[i] {
				if v <= 0 || total == 0 {
					continue
				}
				h := v / total * plotH
				y -= h
				fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %s (%.1f%%)</title></rect>`+"\n",
					bx, y, bw, h, colorOf(segs[s], s), esc(name), esc(segs[s]), fmtNum(v), v/total*100)
				if h >= 13 {
					fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10" fill="#111">%.0f%%</text>`+"\n", bx+bw/2, y+h/2+4, v/total*100)
				}
			}
			lines := strings.SplitN(name, "/", 2)
			for k, l := range lines {
				fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", bx+bw/2, yAxis+16+float64(k)*14, esc(l))
			}
		}
	}
	lx := x0 + plotW + 8
	for i, s := range segs {
		fmt.Fprintf(&b, `<rect x="%.0f" y="%d" width="12" height="12" fill="%s"/><text x="%.0f" y="%d">%s</text>`+"\n",
			lx, marginT+i*18, colorOf(s, i), lx+17, marginT+i*18+10, esc(s))
	}
	return panel{body: b.String(), height: panelH}
}
