package loadgen

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Red stays out of the series colors: it marks runs with errors.
var palette = []string{"#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#bab0ac"}

// WriteSVG draws rep's summary as two grouped bar charts, written by hand so the tool needs
// nothing beyond the standard library: ops/s per workload and size (one bar per endpoint),
// then p50 and p99 latency. Sizes differ by orders of magnitude between groups (4 KiB against
// 1 MiB), so each group is scaled to its own tallest bar and every bar carries its value.
func WriteSVG(w io.Writer, rep Report) error {
	type group struct {
		title, size string
		rows        []Summary
	}
	var groups []group
	for _, s := range rep.Summary {
		if n := len(groups); n == 0 || groups[n-1].title != s.Workload || groups[n-1].size != s.SizeLabel {
			groups = append(groups, group{title: s.Workload, size: s.SizeLabel})
		}
		groups[len(groups)-1].rows = append(groups[len(groups)-1].rows, s)
	}
	var names []string
	for _, e := range rep.Endpoints {
		names = append(names, e.Name)
	}
	color := func(name string) string {
		for i, n := range names {
			if n == name {
				return palette[i%len(palette)]
			}
		}
		return "#888888"
	}
	const (
		left, right = 30, 30
		slot        = 36 // per endpoint within a group
		groupGap    = 30
		barsH       = 200 // tallest bar of a group
		chartH      = 400 // one chart: title, legend, labels above bars, bars, group labels
	)
	nSeries := len(names)
	if nSeries == 0 {
		nSeries = 1
	}
	groupW := nSeries*slot + groupGap
	width := left + right + len(groups)*groupW
	if width < 1000 { // room for the titles
		width = 1000
	}
	height := 2*chartH + 20

	var b bytes.Buffer
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif">
<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>
`, width, height, width, height, width, height)
	text := func(x, y float64, size int, anchor, fill, extra, s string) {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="%d" text-anchor="%s" fill="%s"%s>%s</text>`+"\n", x, y, size, anchor, fill, extra, esc(s))
	}
	rect := func(x, y, w, h float64, fill, extra, title string) {
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"%s><title>%s</title></rect>`+"\n", x, y, w, h, fill, extra, esc(title))
	}
	sub := fmt.Sprintf("%s · concurrency %d · %s per run · median of %d round(s) · bars scaled within each group · %s", rep.Time.Format("2006-01-02 15:04 UTC"), rep.Concurrency, rep.Duration, rep.Rounds, rep.Host)
	legend := func(y float64, extra func(x float64)) {
		x := float64(left)
		for _, n := range names {
			rect(x, y-11, 14, 14, color(n), "", n)
			text(x+19, y, 13, "start", "#222", "", n)
			x += 28 + 8*float64(len(n))
		}
		if extra != nil {
			extra(x + 10)
		}
	}

	for chart := 0; chart < 2; chart++ {
		top := float64(chart * chartH)
		base := top + 110 + barsH // bars grow up from here
		fmt.Fprintf(&b, `<g id="%s">`+"\n", []string{"ops", "latency"}[chart])
		if chart == 0 {
			text(left, top+28, 18, "start", "#111", ` font-weight="bold"`, "Throughput: operations per second (higher is better)")
			legend(top+76, func(x float64) {
				for _, s := range rep.Summary {
					if s.Errors > 0 {
						text(x, top+76, 13, "start", "#d00000", "", "red label: the run had errors (see the table)")
						break
					}
				}
			})
		} else {
			text(left, top+28, 18, "start", "#111", ` font-weight="bold"`, "Latency: p50 (solid) and p99 (light), milliseconds (lower is better)")
			legend(top+76, func(x float64) {
				rect(x, top+65, 14, 14, "#666", "", "p50")
				text(x+19, top+76, 13, "start", "#222", "", "p50")
				rect(x+52, top+65, 14, 14, "#666", ` fill-opacity="0.35"`, "p99")
				text(x+71, top+76, 13, "start", "#222", "", "p99")
			})
		}
		text(left, top+48, 12, "start", "#555", "", sub)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#333" stroke-width="1"/>`+"\n", left, base, width-right, base)
		for gi, g := range groups {
			gx := float64(left + gi*groupW + groupGap/2)
			max := 0.0
			for _, s := range g.rows {
				if chart == 0 && s.OpsPerSec > max {
					max = s.OpsPerSec
				}
				if chart == 1 && s.P99ms > max {
					max = s.P99ms
				}
			}
			if max == 0 {
				max = 1
			}
			if gi > 0 {
				fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd" stroke-width="1"/>`+"\n", gx-groupGap/2, top+100, gx-groupGap/2, base+40)
			}
			for si, s := range g.rows {
				x := gx + float64(si*slot)
				c := color(s.Endpoint)
				labelFill := "#222"
				errNote := ""
				if s.Errors > 0 {
					labelFill, errNote = "#d00000", fmt.Sprintf(" (%d errors)", s.Errors)
				}
				if chart == 0 {
					h := s.OpsPerSec / max * barsH
					rect(x+2, base-h, slot-4, h, c, "", fmt.Sprintf("%s %s %s: %s ops/s, %.1f MiB/s%s", s.Endpoint, g.title, g.size, thousands(s.OpsPerSec), s.MiBPerSec, errNote))
					lbl := thousands(s.OpsPerSec)
					if s.OpsPerSec == 0 && s.Errors > 0 {
						lbl = "failed"
					} else if s.Errors > 0 {
						lbl += "!"
					}
					text(x+slot/2, base-h-4, 10, "middle", labelFill, "", lbl)
					continue
				}
				bw := float64(slot-4) / 2
				h50, h99 := s.P50ms/max*barsH, s.P99ms/max*barsH
				rect(x+2, base-h50, bw, h50, c, "", fmt.Sprintf("%s %s %s: p50 %s%s", s.Endpoint, g.title, g.size, fmtMs(s.P50ms), errNote))
				rect(x+2+bw, base-h99, bw, h99, c, ` fill-opacity="0.35"`, fmt.Sprintf("%s %s %s: p99 %s%s", s.Endpoint, g.title, g.size, fmtMs(s.P99ms), errNote))
				for k, v := range []float64{s.P50ms, s.P99ms} {
					lx, ly := x+2+bw*float64(k)+bw/2+3, base-[]float64{h50, h99}[k]-4
					lbl := short(v)
					if s.OpsPerSec == 0 {
						if k == 1 {
							break
						}
						lbl = "failed"
					}
					text(lx, ly, 10, "start", labelFill, fmt.Sprintf(` transform="rotate(-90 %.1f %.1f)"`, lx, ly), lbl)
				}
			}
			cx := gx + float64(len(g.rows)*slot)/2
			text(cx, base+18, 13, "middle", "#111", ` font-weight="bold"`, g.title)
			text(cx, base+34, 12, "middle", "#444", "", g.size)
		}
		b.WriteString("</g>\n")
	}
	b.WriteString("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// thousands formats v rounded, with commas: 12,345.
func thousands(v float64) string {
	s := strconv.FormatInt(int64(v+0.5), 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// short formats a latency in ms with two significant-ish digits.
func short(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}
