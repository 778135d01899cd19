package main

import (
	"fmt"
	"math"
	"strings"
)

// chartSVG draws throughput (y, linear from 0) against the starter counts
// (x, evenly spaced: they are powers of 4) for each engine.
func chartSVG(xs []int, series map[string][]float64, title string) string {
	const w, h, left, right, top, bottom = 720, 420, 80, 170, 50, 60
	pw, ph := float64(w-left-right), float64(h-top-bottom)
	ymax := 0.0
	for _, s := range series {
		for _, v := range s {
			if !math.IsNaN(v) && v > ymax {
				ymax = v
			}
		}
	}
	step := niceStep(ymax / 5)
	ymax = math.Ceil(ymax/step) * step
	if ymax == 0 {
		ymax, step = 1, 1
	}
	xpos := func(i int) float64 {
		if len(xs) == 1 {
			return left + pw/2
		}
		return left + pw*float64(i)/float64(len(xs)-1)
	}
	ypos := func(v float64) float64 { return top + ph*(1-v/ymax) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", w, h)
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="14" font-weight="bold">%s</text>`+"\n", left-60, escape(title))
	for v := 0.0; v <= ymax+step/2; v += step {
		y := ypos(v)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", left, y, left+pw, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, y+4, fmt.Sprintf("%.0f", v))
	}
	for i, x := range xs {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%d</text>`+"\n", xpos(i), top+ph+18, x)
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">goroutines starting orchestrations</text>`+"\n", left+pw/2, h-14)
	fmt.Fprintf(&b, `<text transform="translate(18 %.1f) rotate(-90)" text-anchor="middle">orchestrations/s</text>`+"\n", top+ph/2)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%.1f" stroke="black"/>`+"\n", left, top, left, top+ph)
	fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>`+"\n", left, top+ph, left+pw, top+ph)
	colors := map[string]string{"durablewasm": "#1f77b4", "go-workflows": "#d62728"}
	ly := top + 10
	for _, name := range []string{"durablewasm", "go-workflows"} {
		s, ok := series[name]
		if !ok {
			continue
		}
		var pts []string
		for i, v := range s {
			if math.IsNaN(v) {
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", xpos(i), ypos(v)))
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="4" fill="%s"/>`+"\n", xpos(i), ypos(v), colors[name])
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="%s">%.0f</text>`+"\n", xpos(i), ypos(v)-8, colors[name], v)
		}
		if len(pts) == 0 {
			continue
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(pts, " "), colors[name])
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"/>`+"\n", w-right+15, ly, w-right+35, ly, colors[name])
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", w-right+40, ly+4, name)
		ly += 20
	}
	b.WriteString("</svg>\n")
	return b.String()
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

func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
