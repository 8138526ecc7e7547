package reports

import (
	"bytes"
	"cmp"
	"fmt"
	"image/color"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Plot kinds, the first part of a plot's id and file name.
const (
	PlotLatency    = "latency"    // latency over time, per workload
	PlotThroughput = "throughput" // throughput over time, per workload
	PlotSpectrum   = "spectrum"   // percentile spectrum, per workload
	PlotStages     = "stages"     // per-stage p50/p99 against the floors, per workload
	PlotResources  = "resources"  // CPU, RSS, GC pauses, goroutines over time
	PlotMaxRate    = "maxrate"    // a max-rate search's latency–throughput curve
)

// PlotID returns the id of a plot, which is also its file name without the
// extension (.png, .svg) and the id of its element in report.html:
// "plot-latency-puts", "plot-resources".
func PlotID(kind, workload string) string {
	if workload == "" {
		return "plot-" + kind
	}
	return "plot-" + kind + "-" + fileSafe(workload)
}

// plotDPI is the resolution of the PNG plots.
const plotDPI = 144

// figure is one plot of the report.
type figure struct {
	ID       string // PlotID
	Workload string // "" for run-wide plots
	Title    string
	Caption  string
	W, H     vg.Length
	draw     func(draw.Canvas)
}

// workloadFigure is a full-width figure of one workload's plot p, with its
// legend on the side; its title is title and the workload's name.
func workloadFigure(kind, name, title, caption string, h vg.Length, p *plot.Plot) *figure {
	return &figure{ID: PlotID(kind, name), Workload: name, Title: title + ": " + name, Caption: caption, W: 9 * vg.Inch, H: h, draw: sideLegend(p)}
}

// render draws the figure as "png" or "svg". A panic inside the plotting
// library becomes ErrPlot.
func (f *figure) render(format string) (data []byte, err error) {
	defer func() {
		if v := recover(); v != nil {
			data, err = nil, fmt.Errorf("%w %s: %v", ErrPlot, f.ID, v)
		}
	}()
	var buf bytes.Buffer
	switch format {
	case "png":
		c := vgimg.NewWith(vgimg.UseWH(f.W, f.H), vgimg.UseDPI(plotDPI))
		f.draw(draw.New(c))
		_, err = vgimg.PngCanvas{Canvas: c}.WriteTo(&buf)
	case "svg":
		c := vgsvg.New(f.W, f.H)
		f.draw(draw.New(c))
		_, err = c.WriteTo(&buf)
	default:
		return nil, fmt.Errorf("%w %s: unknown image format %q", ErrPlot, f.ID, format)
	}
	if err != nil {
		return nil, fmt.Errorf("%w %s: %v", ErrPlot, f.ID, err)
	}
	return buf.Bytes(), nil
}

// Colours of the stages, and of everything else drawn.
var (
	stageColors = map[string]color.Color{
		"ingress":      color.RGBA{0x7f, 0x7f, 0x7f, 0xff},
		"accepted":     color.RGBA{0x1f, 0x77, 0xb4, 0xff},
		"committed":    color.RGBA{0xd6, 0x27, 0x28, 0xff},
		"visible":      color.RGBA{0x2c, 0xa0, 0x2c, 0xff},
		"proof_verify": color.RGBA{0x94, 0x67, 0xbd, 0xff},
		"read":         color.RGBA{0x17, 0x8f, 0x8f, 0xff},
	}
	otherColor  = color.RGBA{0x8c, 0x56, 0x4b, 0xff}
	sentColor   = color.RGBA{0x55, 0x55, 0x55, 0xff}
	errorColor  = color.RGBA{0xff, 0x7f, 0x0e, 0xff}
	eventColor  = color.RGBA{0xe3, 0x77, 0xc2, 0xff}
	quicColor   = color.RGBA{0x17, 0xbe, 0xcf, 0xff}
	brokerColor = color.RGBA{0xbc, 0xbd, 0x22, 0xff}
	p50Color    = color.RGBA{0x6b, 0xae, 0xd6, 0xff}
	p99Color    = color.RGBA{0x08, 0x45, 0x94, 0xff}
)

func stageColor(st string) color.Color {
	if c, ok := stageColors[st]; ok {
		return c
	}
	return otherColor
}

var (
	dashed = []vg.Length{vg.Points(5), vg.Points(3)}
	dotted = []vg.Length{vg.Points(1.5), vg.Points(2)}
)

// finite reports whether v is a usable number.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// newPlot returns a plot with the report's look.
func newPlot(title, xLabel, yLabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	p.Legend.Top = true
	p.Legend.Left = true
	p.Legend.TextStyle.Font.Size = vg.Points(8)
	p.Add(plotter.NewGrid())
	return p
}

// addLine adds a line (when it has points) with a legend entry.
func addLine(p *plot.Plot, pts plotter.XYs, label string, c color.Color, width vg.Length, dashes []vg.Length) *plotter.Line {
	if len(pts) == 0 {
		return nil
	}
	l, err := plotter.NewLine(pts)
	if err != nil {
		return nil // non-finite points: left out
	}
	l.Color = c
	l.Width = width
	l.Dashes = dashes
	p.Add(l)
	if label != "" {
		p.Legend.Add(label, l)
	}
	if len(pts) == 1 { // a lone point draws no line: mark it
		if s, err := plotter.NewScatter(pts); err == nil {
			s.GlyphStyle.Color = c
			s.GlyphStyle.Radius = vg.Points(2)
			s.GlyphStyle.Shape = draw.CircleGlyph{}
			p.Add(s)
		}
	}
	return l
}

// addIntervalLine adds a per-interval series (points at the middle of each
// interval) drawn as steps: each value holds across its interval.
func addIntervalLine(p *plot.Plot, pts plotter.XYs, label string, c color.Color, width vg.Length, dashes []vg.Length) {
	if l := addLine(p, pts, label, c, width, dashes); l != nil {
		l.StepStyle = plotter.MidStep
	}
}

// legendWidth is the room p's legend takes beside the plot; zero when it
// has no entries.
func legendWidth(p *plot.Plot, c draw.Canvas) vg.Length {
	rect := p.Legend.Rectangle(c)
	if rect.Size().Y <= 0 {
		return 0
	}
	return min(rect.Size().X+vg.Points(10), c.Size().X/3)
}

// drawWithSideLegend draws p with its legend in a column of width w to the
// right of the data rather than over it (w zero: as wide as the legend).
func drawWithSideLegend(p *plot.Plot, c draw.Canvas, w vg.Length) {
	l := p.Legend
	if w <= 0 {
		w = legendWidth(p, c)
	}
	if w <= 0 {
		p.Draw(c)
		return
	}
	p.Legend = plot.NewLegend()
	p.Draw(draw.Crop(c, 0, -w, 0, 0))
	p.Legend = l
	l.Top, l.Left = true, true
	l.XOffs, l.YOffs = 0, 0
	lc := draw.Crop(c, c.Size().X-w+vg.Points(6), 0, 0, 0)
	if p.Title.Text != "" {
		lc = draw.Crop(lc, 0, 0, 0, -p.Title.TextStyle.Rectangle(p.Title.Text).Size().Y-p.Title.Padding)
	}
	l.Draw(lc)
}

func sideLegend(p *plot.Plot) func(draw.Canvas) {
	return func(c draw.Canvas) { drawWithSideLegend(p, c, 0) }
}

// fmtTickMicros labels a latency axis tick: 1µs, 250µs, 2ms, 1.5s.
func fmtTickMicros(v float64) string {
	g := func(x float64) string { return strconv.FormatFloat(x, 'g', 3, 64) }
	switch {
	case v < 1000:
		return g(v) + "µs"
	case v < 1e6:
		return g(v/1e3) + "ms"
	default:
		return g(v/1e6) + "s"
	}
}

// latencyTicks marks a log axis of microseconds at every decade (1µs, 10µs,
// …), with 2 and 5 labelled too when the axis spans few decades.
type latencyTicks struct{}

func (latencyTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(lo > 0) || !(hi >= lo) || !finite(hi) {
		return nil
	}
	d0 := math.Floor(math.Log10(lo))
	d1 := math.Ceil(math.Log10(hi))
	few := d1-d0 <= 2
	var ticks []plot.Tick
	for d := d0; d <= d1 && d-d0 < 30; d++ {
		base := math.Pow(10, d)
		for m := 1.0; m <= 9; m++ {
			v := m * base
			if v < lo*0.9999 || v > hi*1.0001 {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || (few && (m == 2 || m == 5)) {
				t.Label = fmtTickMicros(v)
			}
			ticks = append(ticks, t)
		}
	}
	return ticks
}

// setLatencyAxis makes a a log axis of microseconds covering [lo, hi],
// widened to whole decades.
func setLatencyAxis(a *plot.Axis, lo, hi float64) {
	if !finite(lo) || lo < 1 {
		lo = 1
	}
	if !finite(hi) || hi < lo {
		hi = lo
	}
	a.Scale = plot.LogScale{}
	a.Tick.Marker = latencyTicks{}
	a.Min = math.Pow(10, math.Floor(math.Log10(lo)))
	a.Max = math.Pow(10, math.Ceil(math.Log10(hi)))
	if a.Max <= a.Min {
		a.Max = a.Min * 10
	}
}

// posMicros keeps a latency usable on a log axis: at least 1µs.
func posMicros(us int64) float64 { return math.Max(float64(us), 1) }

// timelineEvent is a timeline event placed on the time axis.
type timelineEvent struct {
	at    float64 // seconds from the start of measuring
	label string
}

// timelineEvents parses the events' times (Go durations such as "15s");
// events whose time does not parse are left out and named in the notes.
func timelineEvents(tl []TimelineResult) (evs []timelineEvent, notes []string) {
	for _, e := range tl {
		d, err := time.ParseDuration(strings.TrimSpace(e.At))
		if err != nil || d < 0 {
			notes = append(notes, fmt.Sprintf("timeline event %q at %q is not a duration; not marked", e.Event, e.At))
			continue
		}
		label := e.Event
		if e.Recovery != "" {
			label += " (recovered in " + e.Recovery + ")"
		}
		evs = append(evs, timelineEvent{at: d.Seconds(), label: label})
	}
	return evs, notes
}

// eventLines draws timeline events as vertical lines across the plot,
// labelled at the top.
type eventLines struct {
	events []timelineEvent
	labels bool
}

func (e *eventLines) Plot(c draw.Canvas, plt *plot.Plot) {
	trX, _ := plt.Transforms(&c)
	ls := draw.LineStyle{Color: eventColor, Width: vg.Points(1.2), Dashes: dotted}
	sty := plt.X.Tick.Label
	sty.Font.Size = vg.Points(7)
	sty.Color = eventColor
	sty.XAlign, sty.YAlign = text.XLeft, text.YTop
	for i, ev := range e.events {
		x := trX(ev.at)
		if x < c.Min.X-0.5 || x > c.Max.X+0.5 {
			continue
		}
		c.StrokeLine2(ls, x, c.Min.Y, x, c.Max.Y)
		if e.labels && ev.label != "" {
			y := c.Max.Y - vg.Points(2) - vg.Length(i%3)*vg.Points(9)
			c.FillText(sty, vg.Point{X: x + vg.Points(2), Y: y}, ev.label)
		}
	}
}

func (e *eventLines) DataRange() (xmin, xmax, ymin, ymax float64) {
	xmin, xmax = math.Inf(1), math.Inf(-1)
	for _, ev := range e.events {
		xmin, xmax = math.Min(xmin, ev.at), math.Max(xmax, ev.at)
	}
	return xmin, xmax, math.Inf(1), math.Inf(-1)
}

// addEvents marks the timeline on a time plot, with a legend entry.
func addEvents(p *plot.Plot, evs []timelineEvent, labels bool) {
	if len(evs) == 0 {
		return
	}
	el := &eventLines{events: evs, labels: labels}
	p.Add(el)
	if labels {
		p.Legend.Add("timeline event", lineThumb{draw.LineStyle{Color: eventColor, Width: vg.Points(1.2), Dashes: dotted}})
	}
}

// lineThumb is a legend entry for a line drawn by hand.
type lineThumb struct{ ls draw.LineStyle }

func (t lineThumb) Thumbnail(c *draw.Canvas) {
	y := c.Center().Y
	c.StrokeLine2(t.ls, c.Min.X, y, c.Max.X, y)
}

// barThumb is a legend entry for bars.
type barThumb struct{ c color.Color }

func (t barThumb) Thumbnail(c *draw.Canvas) {
	c.FillPolygon(t.c, []vg.Point{c.Min, {X: c.Min.X, Y: c.Max.Y}, c.Max, {X: c.Max.X, Y: c.Min.Y}})
}

// groupedBars draws bars grouped by category, from the bottom of the plot
// up, so that they work on a log axis; each bar is labelled with its value.
type groupedBars struct {
	values [][]float64 // [series][category], microseconds
	colors []color.Color
	width  float64 // of a group, in category units
}

func (b *groupedBars) Plot(c draw.Canvas, plt *plot.Plot) {
	trX, trY := plt.Transforms(&c)
	n := len(b.values)
	if n == 0 {
		return
	}
	bw := b.width / float64(n)
	sty := plt.X.Tick.Label
	sty.Font.Size = vg.Points(7)
	sty.XAlign, sty.YAlign = text.XCenter, text.YBottom
	for s, vals := range b.values {
		for i, v := range vals {
			if !(v > 0) || !finite(v) {
				continue
			}
			x0 := float64(i) - b.width/2 + float64(s)*bw
			left, right := trX(x0+bw*0.05), trX(x0+bw*0.95)
			top := min(trY(v), c.Max.Y)
			if top <= c.Min.Y {
				continue
			}
			c.FillPolygon(b.colors[s%len(b.colors)], []vg.Point{{X: left, Y: c.Min.Y}, {X: left, Y: top}, {X: right, Y: top}, {X: right, Y: c.Min.Y}})
			c.FillText(sty, vg.Point{X: (left + right) / 2, Y: top + vg.Points(1)}, fmtTickMicros(v))
		}
	}
}

func (b *groupedBars) DataRange() (xmin, xmax, ymin, ymax float64) {
	ymin, ymax = math.Inf(1), math.Inf(-1)
	ncat := 0
	for _, vals := range b.values {
		ncat = max(ncat, len(vals))
		for _, v := range vals {
			if v > 0 && finite(v) {
				ymin, ymax = math.Min(ymin, v), math.Max(ymax, v)
			}
		}
	}
	return -0.5, float64(ncat) - 0.5, ymin, ymax
}

// timeStages returns the stages drawn over time for a workload: accepted
// and committed when it has them, else the first stage it has.
func timeStages(w *WorkloadResult) []string {
	has := map[string]bool{}
	for _, iv := range w.Series {
		for st, s := range iv.Stages {
			if s.Count > 0 {
				has[st] = true
			}
		}
	}
	var out []string
	for _, st := range []string{"accepted", "committed"} {
		if has[st] {
			out = append(out, st)
		}
	}
	if len(out) == 0 {
		for _, st := range stageOrder(&WorkloadResult{Stages: stageSet(has)}) {
			return []string{st}
		}
	}
	return out
}

func stageSet(has map[string]bool) map[string]*StageResult {
	m := make(map[string]*StageResult, len(has))
	for st := range has {
		m[st] = &StageResult{}
	}
	return m
}

// intervalS is the result's series interval, 1s when unknown.
func intervalS(r *Result) float64 {
	if r.IntervalS > 0 && finite(r.IntervalS) {
		return r.IntervalS
	}
	return 1
}

// latencyFigure: corrected p50 and p99 and uncorrected p99 per interval of
// the accepted and committed stages, with the timeline.
func latencyFigure(r *Result, name string, w *WorkloadResult, evs []timelineEvent) *figure {
	stages := timeStages(w)
	if len(stages) == 0 {
		return nil
	}
	p := newPlot("Latency over time — "+name, "seconds since the start of measuring", "latency (log)")
	half := intervalS(r) / 2
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, st := range stages {
		var p50, p99, u99 plotter.XYs
		for _, iv := range w.Series {
			s, ok := iv.Stages[st]
			if !ok || s.Count == 0 || !finite(iv.T) {
				continue
			}
			x := iv.T + half
			p50 = append(p50, plotter.XY{X: x, Y: posMicros(s.P50)})
			p99 = append(p99, plotter.XY{X: x, Y: posMicros(s.P99)})
			u99 = append(u99, plotter.XY{X: x, Y: posMicros(s.P99Uncorrected)})
			for _, v := range []int64{s.P50, s.P99, s.P99Uncorrected} {
				lo, hi = math.Min(lo, posMicros(v)), math.Max(hi, posMicros(v))
			}
		}
		c := stageColor(st)
		addIntervalLine(p, p99, st+" p99", c, vg.Points(1.8), nil)
		addIntervalLine(p, p50, st+" p50", c, vg.Points(0.8), nil)
		addIntervalLine(p, u99, st+" p99 uncorrected", c, vg.Points(1), dashed)
	}
	addEvents(p, evs, true)
	setLatencyAxis(&p.Y, lo, hi)
	return workloadFigure(PlotLatency, name, "Latency over time", "Corrected p50 and p99 (from the intended send time) per interval; dashed: uncorrected p99 (from the actual send). Dotted verticals: timeline events.", 4*vg.Inch, p)
}

// throughputFigure: sends, completions per stage and errors per second.
func throughputFigure(r *Result, name string, w *WorkloadResult, evs []timelineEvent) *figure {
	if len(w.Series) == 0 {
		return nil
	}
	iv := intervalS(r)
	p := newPlot("Throughput over time — "+name, "seconds since the start of measuring", "per second")
	var sent, errs plotter.XYs
	per := map[string]plotter.XYs{}
	anyErr := false
	for _, s := range w.Series {
		if !finite(s.T) {
			continue
		}
		x := s.T + iv/2
		sent = append(sent, plotter.XY{X: x, Y: float64(s.Sent) / iv})
		errs = append(errs, plotter.XY{X: x, Y: float64(s.Errors) / iv})
		anyErr = anyErr || s.Errors > 0
		for _, st := range stageOrder(w) {
			per[st] = append(per[st], plotter.XY{X: x, Y: float64(s.Stages[st].Count) / iv})
		}
	}
	addIntervalLine(p, sent, "sent", sentColor, vg.Points(1), dashed)
	for _, st := range stageOrder(w) {
		addIntervalLine(p, per[st], st, stageColor(st), vg.Points(1.5), nil)
	}
	if anyErr {
		addIntervalLine(p, errs, "errors", errorColor, vg.Points(1.2), dotted)
	}
	addEvents(p, evs, true)
	p.Y.Min = 0
	return workloadFigure(PlotThroughput, name, "Throughput over time", "Transactions sent, completing each stage, and failing, per second of each interval (by completion time).", 3.5*vg.Inch, p)
}

// spectrumTicks labels the x axis 1/(1−q) of a percentile spectrum with
// the percentile.
type spectrumTicks struct{}

func (spectrumTicks) Ticks(lo, hi float64) []plot.Tick {
	marks := []struct {
		v     float64
		label string
	}{{1, "0%"}, {2, "50%"}, {10, "90%"}, {100, "99%"}, {1e3, "99.9%"}, {1e4, "99.99%"}, {1e5, "99.999%"}, {1e6, "99.9999%"}, {1e7, "99.99999%"}}
	var ticks []plot.Tick
	for _, m := range marks {
		if m.v >= lo*0.9999 && m.v <= hi*1.0001 {
			ticks = append(ticks, plot.Tick{Value: m.v, Label: m.label})
		}
	}
	return ticks
}

// maxSpectrumX caps the x axis of a spectrum (the 99.99999th percentile).
const maxSpectrumX = 1e7

// spectrumFromCDF returns the percentile spectrum of a histogram as
// (1/(1−q), µs) points from its cumulative distribution; the 100th
// percentile (the max) is placed at x = count.
func spectrumFromCDF(cdf []hdr.Bracket, count int64) plotter.XYs {
	var pts plotter.XYs
	lastX := 1.0
	for _, b := range cdf {
		q := b.Quantile / 100
		x := 1 / (1 - q)
		if q >= 1 || !finite(x) {
			x = math.Max(lastX, float64(count))
		}
		x = math.Min(math.Max(x, lastX), maxSpectrumX)
		lastX = x
		pts = append(pts, plotter.XY{X: x, Y: posMicros(b.ValueAt)})
	}
	return pts
}

// spectrumFromSummary approximates the spectrum from the summary
// percentiles, for results without histograms.
func spectrumFromSummary(s Percentiles, count int64) plotter.XYs {
	if count <= 0 {
		return nil
	}
	maxX := math.Min(math.Max(float64(count), 1e3), maxSpectrumX)
	var pts plotter.XYs
	for _, pt := range []struct {
		x float64
		v int64
	}{{1, s.Min}, {2, s.P50}, {10, s.P90}, {100, s.P99}, {1e3, s.P999}, {maxX, s.Max}} {
		pts = append(pts, plotter.XY{X: pt.x, Y: posMicros(pt.v)})
	}
	return pts
}

// spectrumFigure: the latency at every percentile of each stage, corrected
// and uncorrected, HdrHistogram style.
func spectrumFigure(name string, w *WorkloadResult, ws *WorkloadSnapshot) *figure {
	stages := stageOrder(w)
	if len(stages) == 0 {
		return nil
	}
	p := newPlot("Percentile spectrum — "+name, "percentile", "latency (log)")
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = spectrumTicks{}
	lo, hi, xmax := math.Inf(1), math.Inf(-1), 100.0
	for _, st := range stages {
		s := w.Stages[st]
		for _, view := range []struct {
			corrected bool
			p         Percentiles
		}{{true, s.Corrected}, {false, s.Uncorrected}} {
			var pts plotter.XYs
			if stage, err := ParseStage(st); err == nil && ws != nil {
				h := ws.Stages[stage].Uncorrected
				if view.corrected {
					h = ws.Stages[stage].Corrected
				}
				if h != nil && h.TotalCount() > 0 {
					pts = spectrumFromCDF(h.CumulativeDistributionWithTicks(hgrmTicks), h.TotalCount())
				}
			}
			if pts == nil {
				pts = spectrumFromSummary(view.p, s.Count)
			}
			for _, pt := range pts {
				lo, hi, xmax = math.Min(lo, pt.Y), math.Max(hi, pt.Y), math.Max(xmax, pt.X)
			}
			label, dash, width := st+" corrected", []vg.Length(nil), vg.Points(1.6)
			if !view.corrected {
				label, dash, width = st+" uncorrected", dashed, vg.Points(1)
			}
			addLine(p, pts, label, stageColor(st), width, dash)
		}
	}
	setLatencyAxis(&p.Y, lo, hi)
	p.X.Min = 1
	p.X.Max = math.Pow(10, math.Ceil(math.Log10(xmax)))
	caption := "Latency at each percentile (x = 1/(1−q), log scale), corrected solid, uncorrected dashed."
	if ws == nil {
		caption += " Drawn from the summary percentiles only (no histograms)."
	}
	return workloadFigure(PlotSpectrum, name, "Percentile spectrum", caption, 4*vg.Inch, p)
}

// stagesFigure: corrected p50 and p99 of each stage as bars, with the
// floors as horizontal lines.
func stagesFigure(r *Result, name string, w *WorkloadResult) *figure {
	stages := stageOrder(w)
	if len(stages) == 0 {
		return nil
	}
	p := newPlot("Stages against floors — "+name, "", "latency (log, corrected)")
	bars := &groupedBars{values: make([][]float64, 2), colors: []color.Color{p50Color, p99Color}, width: 0.7}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, st := range stages {
		s := w.Stages[st]
		bars.values[0] = append(bars.values[0], posMicros(s.Corrected.P50))
		bars.values[1] = append(bars.values[1], posMicros(s.Corrected.P99))
		lo = math.Min(lo, posMicros(s.Corrected.P50))
		hi = math.Max(hi, posMicros(s.Corrected.P99))
	}
	p.Add(bars)
	p.Legend.Add("p50", barThumb{p50Color})
	p.Legend.Add("p99", barThumb{p99Color})
	xs := [2]float64{-0.5, float64(len(stages)) - 0.5}
	floor := func(label string, v int64, c color.Color, dashes []vg.Length) {
		if v <= 0 {
			return
		}
		y := posMicros(v)
		lo, hi = math.Min(lo, y), math.Max(hi, y)
		addLine(p, plotter.XYs{{X: xs[0], Y: y}, {X: xs[1], Y: y}}, label, c, vg.Points(1.4), dashes)
	}
	if q := r.Floors.QuicEcho; q != nil {
		floor("floor: QUIC echo p50", q.P50, quicColor, dashed)
		floor("floor: QUIC echo p99", q.P99, quicColor, dotted)
	}
	if q := r.Floors.ProduceAck; q != nil {
		floor("floor: produce→ack p50", q.P50, brokerColor, dashed)
		floor("floor: produce→ack p99", q.P99, brokerColor, dotted)
	}
	p.NominalX(stages...)
	setLatencyAxis(&p.Y, lo, hi*1.5) // room for the value labels
	p.Legend.Left = false
	caption := "Corrected p50 and p99 per stage; horizontal lines: the floors measured in the same run."
	if r.Floors.QuicEcho == nil && r.Floors.ProduceAck == nil {
		caption += " (No floors were measured in this run.)"
	}
	return workloadFigure(PlotStages, name, "Stages against floors", caption, 4*vg.Inch, p)
}

// resourcesFigure: CPU, RSS, GC pauses and goroutines over time, one panel
// each.
func resourcesFigure(r *Result, evs []timelineEvent) *figure {
	res := r.Resources
	if res == nil || len(res.Samples) == 0 {
		return nil
	}
	var cpu, rss, heap, pause, pauseMax, gor plotter.XYs
	for _, s := range res.Samples {
		if !finite(s.T) {
			continue
		}
		cpu = append(cpu, plotter.XY{X: s.T, Y: clean(s.CPUPercent)})
		rss = append(rss, plotter.XY{X: s.T, Y: float64(s.RSSBytes) / (1 << 20)})
		heap = append(heap, plotter.XY{X: s.T, Y: float64(s.HeapBytes) / (1 << 20)})
		pause = append(pause, plotter.XY{X: s.T, Y: clean(s.GCPauseS) * 1e3})
		pauseMax = append(pauseMax, plotter.XY{X: s.T, Y: clean(s.GCPauseMax) * 1e3})
		gor = append(gor, plotter.XY{X: s.T, Y: float64(s.Goroutines)})
	}
	mk := func(title, y string) *plot.Plot {
		p := newPlot(title, "", y)
		p.Title.TextStyle.Font.Size = vg.Points(10)
		return p
	}
	pc := mk("Resources of the process under test — "+res.Source, "CPU %")
	addLine(pc, cpu, "CPU (user+system)", color.RGBA{0x1f, 0x77, 0xb4, 0xff}, vg.Points(1.5), nil)
	pm := mk("", "MiB")
	addLine(pm, rss, "RSS", color.RGBA{0xd6, 0x27, 0x28, 0xff}, vg.Points(1.5), nil)
	addLine(pm, heap, "Go heap objects", color.RGBA{0xff, 0x7f, 0x0e, 0xff}, vg.Points(1), dashed)
	pg := mk("", "GC pause ms")
	addLine(pg, pause, "total per interval", color.RGBA{0x94, 0x67, 0xbd, 0xff}, vg.Points(1.5), nil)
	addLine(pg, pauseMax, "longest", color.RGBA{0x94, 0x67, 0xbd, 0xff}, vg.Points(1), dashed)
	pr := mk("", "goroutines")
	pr.X.Label.Text = "seconds since the start of measuring"
	addLine(pr, gor, "goroutines", color.RGBA{0x2c, 0xa0, 0x2c, 0xff}, vg.Points(1.5), nil)
	plots := [][]*plot.Plot{{pc}, {pm}, {pg}, {pr}}
	for i, row := range plots {
		addEvents(row[0], evs, i == 0)
		row[0].Y.Min = 0
	}
	// One x range for all panels.
	xmin, xmax := math.Inf(1), math.Inf(-1)
	for _, row := range plots {
		xmin, xmax = math.Min(xmin, row[0].X.Min), math.Max(xmax, row[0].X.Max)
	}
	for _, row := range plots {
		row[0].X.Min, row[0].X.Max = xmin, xmax
	}
	return &figure{
		ID: PlotID(PlotResources, ""), Title: "Resource use",
		Caption: fmt.Sprintf("Sampled every %s: CPU time over wall time, resident set size and Go heap, GC stop-the-world pauses, live goroutines. In-process runs share the process between the node and the load generator.", fmtSeconds(res.IntervalS)),
		W:       9 * vg.Inch, H: 7 * vg.Inch,
		draw: func(dc draw.Canvas) {
			tiles := draw.Tiles{Rows: 4, Cols: 1, PadY: vg.Points(6), PadTop: vg.Points(4), PadBottom: vg.Points(4), PadLeft: vg.Points(4), PadRight: vg.Points(8)}
			cs := plot.Align(plots, tiles, dc)
			var w vg.Length // one legend width keeps the panels' x axes aligned
			for i := range plots {
				w = max(w, legendWidth(plots[i][0], cs[i][0]))
			}
			for i := range plots {
				drawWithSideLegend(plots[i][0], cs[i][0], w)
			}
		},
	}
}

func clean(v float64) float64 {
	if !finite(v) || v < 0 {
		return 0
	}
	return v
}

// figures builds every plot of the report: per workload latency and
// throughput over time, percentile spectrum and stages against floors, then
// resource use. snap may be nil. notes say what could not be drawn.
func figures(r *Result, snap *Snapshot) (figs []*figure, notes []string) {
	evs, notes := timelineEvents(r.Timeline)
	seen := map[string]int{}
	add := func(f *figure) {
		if f == nil {
			return
		}
		if n := seen[f.ID]; n > 0 { // workload names that differ only in unsafe characters
			seen[f.ID]++
			f.ID = fmt.Sprintf("%s-%d", f.ID, n+1)
		} else {
			seen[f.ID] = 1
		}
		figs = append(figs, f)
	}
	for _, name := range sortedWorkloads(r) {
		w := r.Workloads[name]
		var ws *WorkloadSnapshot
		if snap != nil {
			ws = snap.Workload(name)
		}
		add(latencyFigure(r, name, w, evs))
		add(throughputFigure(r, name, w, evs))
		add(spectrumFigure(name, w, ws))
		add(stagesFigure(r, name, w))
	}
	add(resourcesFigure(r, evs))
	add(maxRateFigure(r))
	return figs, notes
}

// maxRateFigure: a max-rate search's latency–throughput curve, p50 and p99
// of the searched stage against achieved throughput, with the bound.
func maxRateFigure(r *Result) *figure {
	m := r.MaxRate
	if m == nil || len(m.Points) == 0 {
		return nil
	}
	pts := append([]MaxRatePoint(nil), m.Points...)
	slices.SortFunc(pts, func(a, b MaxRatePoint) int { return cmp.Compare(a.Rate, b.Rate) })
	p := newPlot("Latency vs throughput — max-rate search", "achieved throughput (tx/s)", m.Stage+" latency")
	var p50, p99, bound plotter.XYs
	lo, hi := math.Inf(1), 0.0
	for _, pt := range pts {
		if !finite(pt.ThroughputTPS) || pt.P99Us <= 0 {
			continue
		}
		p50 = append(p50, plotter.XY{X: pt.ThroughputTPS, Y: posMicros(pt.P50Us)})
		p99 = append(p99, plotter.XY{X: pt.ThroughputTPS, Y: posMicros(pt.P99Us)})
		lo, hi = math.Min(lo, posMicros(pt.P50Us)), math.Max(hi, posMicros(pt.P99Us))
	}
	if len(p99) == 0 {
		return nil
	}
	addLine(p, p50, "p50", stageColor(m.Stage), vg.Points(1.5), dashed)
	addLine(p, p99, "p99", stageColor(m.Stage), vg.Points(2), nil)
	if m.BoundUs > 0 {
		bound = plotter.XYs{{X: p99[0].X, Y: float64(m.BoundUs)}, {X: p99[len(p99)-1].X, Y: float64(m.BoundUs)}}
		addLine(p, bound, "p99 bound", errorColor, vg.Points(1), dotted)
		lo, hi = math.Min(lo, float64(m.BoundUs)), math.Max(hi, float64(m.BoundUs))
	}
	setLatencyAxis(&p.Y, lo, hi)
	p.X.Min = 0
	return &figure{
		ID: PlotID(PlotMaxRate, ""), Title: "Max-rate search: latency vs throughput",
		Caption: fmt.Sprintf("Each probe's corrected %s p50 (dashed) and p99 against the throughput it achieved; the knee is %.0f/s offered.", m.Stage, m.KneeRate),
		W:       9 * vg.Inch, H: 4 * vg.Inch,
		draw: sideLegend(p),
	}
}
