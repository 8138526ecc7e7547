package reports

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"regexp"
	"sort"
	"strings"
	"time"
)

// HTMLFile is the name of the HTML report in the report folder.
const HTMLFile = "report.html"

// renderedFigure is a figure drawn: its files and its inline SVG.
type renderedFigure struct {
	ID, Title, Caption string
	Workload           string        // "" for run-wide plots
	PNG, SVG           string        // file names in the report folder
	Inline             template.HTML // the SVG, ready to inline
}

// plotSet is what writePlots drew, for the HTML page.
type plotSet struct {
	figs  []renderedFigure
	notes []string
}

// writePlots draws every figure of the report as PNG and SVG into dir and
// returns the names of the files written. A figure that cannot be drawn is
// skipped, named in the notes and in the error; the others are written.
func writePlots(dir string, r *Result, snap *Snapshot) (*plotSet, []string, error) {
	figs, notes := figures(r, snap)
	set := &plotSet{notes: notes}
	var files []string
	var errs []error
	for _, f := range figs {
		png, err := f.render("png")
		if err != nil {
			errs = append(errs, err)
			set.notes = append(set.notes, err.Error())
			continue
		}
		svg, err := f.render("svg")
		if err != nil {
			errs = append(errs, err)
			set.notes = append(set.notes, err.Error())
			continue
		}
		pngName, svgName := f.ID+".png", f.ID+".svg"
		if err := writeFile(dir, pngName, png); err != nil {
			return set, files, err
		}
		if err := writeFile(dir, svgName, svg); err != nil {
			return set, files, err
		}
		files = append(files, pngName, svgName)
		set.figs = append(set.figs, renderedFigure{
			ID: f.ID, Title: f.Title, Caption: f.Caption, Workload: f.Workload, PNG: pngName, SVG: svgName,
			Inline: inlineSVG(svg, f.ID, f.Title),
		})
	}
	return set, files, errors.Join(errs...)
}

var svgOpenTag = regexp.MustCompile(`<svg\s+width="[^"]*"\s+height="[^"]*"`)

// inlineSVG turns a standalone SVG document into an element for the HTML
// page: no XML prologue, an id, and a width that follows the page (the
// viewBox keeps the aspect ratio).
func inlineSVG(svg []byte, id, title string) template.HTML {
	s := string(svg)
	if i := strings.Index(s, "<svg"); i >= 0 {
		s = s[i:]
	}
	attrs := fmt.Sprintf(`<svg id="%s" class="plot-svg" role="img" aria-label="%s" width="100%%"`,
		template.HTMLEscapeString(id), template.HTMLEscapeString(title))
	s = svgOpenTag.ReplaceAllLiteralString(s, attrs)
	// The SVG comes from gonum/plot, which escapes all text it draws.
	return template.HTML(s)
}

// WriteHTML draws the plots (PNG and SVG files) into dir and writes
// dir/report.html, a self-contained page with the plots inlined as SVG and
// the report's tables. snap may be nil; the percentile spectrum is then
// drawn from the summary percentiles. It returns the names of the files
// written. A plot that cannot be drawn is left out (and named in the page
// and the error); everything else is still written.
func WriteHTML(dir string, r *Result, snap *Snapshot) ([]string, error) {
	set, files, perr := writePlots(dir, r, snap)
	out := *r
	out.Files = append(append(append([]string(nil), r.Files...), files...), HTMLFile)
	if err := writeHTMLPage(dir, &out, set); err != nil {
		return files, errors.Join(perr, err)
	}
	return append(files, HTMLFile), perr
}

// writeHTMLPage writes report.html with the plots of set.
func writeHTMLPage(dir string, r *Result, set *plotSet) error {
	var buf bytes.Buffer
	if err := htmlPage(&buf, r, set); err != nil {
		return err
	}
	return writeFile(dir, HTMLFile, buf.Bytes())
}

// View model of the page: everything formatted for people.
type (
	htmlView struct {
		Title, Scenario, Description, Verdict string
		OK, CheckerOK                         bool
		SLOsMet, SLOs                         int
		Run, Env                              [][2]string
		Workloads                             []htmlWorkload
		Floors                                [][]string
		Ratios                                [][2]string
		Checker                               [][2]string
		Notes                                 []string
		SLO                                   []SLOResult
		Timeline                              []TimelineResult
		Resources                             [][2]string
		ResourceNotes                         []string
		Figures                               []renderedFigure
		PlotNotes                             []string
		Files                                 []string
		Generated                             string
	}
	htmlWorkload struct {
		Name, Summary string
		Stages        [][]string
		Hides         string
		Errors        [][2]string
		Figures       []renderedFigure
	}
)

func sloBoundOrNone(s SLOResult) string {
	if b := sloBound(s); b != "" {
		return b
	}
	return "—"
}

func htmlPage(w *bytes.Buffer, res *Result, set *plotSet) error {
	r := res.normalized()
	v := htmlView{
		Title: "Rustorium report: " + r.Scenario, Scenario: r.Scenario, Description: r.Description,
		Verdict: verdict(r.OK), OK: r.OK, CheckerOK: r.Checker.OK, SLOs: len(r.SLO),
		Generated: time.Now().UTC().Format(time.RFC3339),
	}
	for _, s := range r.SLO {
		if s.OK {
			v.SLOsMet++
		}
	}
	v.Run = [][2]string{{"scenario", r.Scenario}, {"seed", fmt.Sprint(r.Seed)}, {"measured", fmtSeconds(r.DurationS)}, {"warmup", fmtSeconds(r.WarmupS)}}
	if !r.Start.IsZero() {
		v.Run = append(v.Run, [2]string{"start", r.Start.UTC().Format(time.RFC3339)})
	}
	e := r.Environment
	commit := e.Commit
	if e.Dirty {
		commit += " (dirty)"
	}
	broker := strings.TrimSpace(e.Broker + " " + e.BrokerVersion)
	v.Env = [][2]string{{"go", e.Go}, {"GOMAXPROCS", fmt.Sprint(e.GOMAXPROCS)}, {"CPU", fmt.Sprintf("%s (%d threads)", e.CPU, e.NumCPU)},
		{"OS", strings.TrimSpace(e.OS + "/" + e.Arch + " " + e.Kernel)}, {"commit", commit}, {"broker", broker}}

	byWorkload := map[string][]renderedFigure{}
	for _, f := range set.figs {
		if _, ok := r.Workloads[f.Workload]; ok && f.Workload != "" {
			byWorkload[f.Workload] = append(byWorkload[f.Workload], f)
		} else {
			v.Figures = append(v.Figures, f)
		}
	}
	for _, name := range sortedWorkloads(r) {
		w := r.Workloads[name]
		hw := htmlWorkload{Name: name, Figures: byWorkload[name]}
		hw.Summary = fmt.Sprintf("Sent %d, errors %d, throughput %.1f tx/s. Schedule lag p50 %s, p99 %s, max %s.",
			w.Sent, w.Errors, w.ThroughputTPS, FormatMicros(w.Lag.P50), FormatMicros(w.LagP99Us), FormatMicros(w.Lag.Max))
		if w.Kind != "" || w.Client != "" {
			hw.Summary = fmt.Sprintf("%s over %s. ", w.Kind, w.Client) + hw.Summary
		}
		var hides []string
		for _, st := range stageOrder(w) {
			s := w.Stages[st]
			c, u := s.Corrected, s.Uncorrected
			hw.Stages = append(hw.Stages,
				[]string{st, fmt.Sprint(s.Count), fmt.Sprintf("%.1f", s.ThroughputTPS), "corrected", FormatMicros(c.P50), FormatMicros(c.P90), FormatMicros(c.P99), FormatMicros(c.P999), FormatMicros(c.Max)},
				[]string{"", "", "", "uncorrected", FormatMicros(u.P50), FormatMicros(u.P90), FormatMicros(u.P99), FormatMicros(u.P999), FormatMicros(u.Max)})
			if u.P99 > 0 && c.P99 > u.P99 {
				hides = append(hides, fmt.Sprintf("%s p99 %s vs %s (×%.1f)", st, FormatMicros(c.P99), FormatMicros(u.P99), float64(c.P99)/float64(u.P99)))
			}
		}
		if len(hides) > 0 {
			hw.Hides = "The uncorrected view hides: " + strings.Join(hides, "; ") + "."
		}
		for _, k := range ErrorKinds(w.ErrorsByKind) {
			hw.Errors = append(hw.Errors, [2]string{k, fmt.Sprint(w.ErrorsByKind[k])})
		}
		v.Workloads = append(v.Workloads, hw)
	}

	f := r.Floors
	if q := f.QuicEcho; q != nil {
		v.Floors = append(v.Floors, []string{"QUIC echo RTT", FormatMicros(q.P50), FormatMicros(q.P99), ""})
	}
	if q := f.ProduceAck; q != nil {
		v.Floors = append(v.Floors, []string{"produce → ack", FormatMicros(q.P50), FormatMicros(q.P99), ""})
	}
	if f.ProduceCeilingTPS > 0 {
		v.Floors = append(v.Floors, []string{"produce ceiling", "", "", fmt.Sprintf("%.0f tx/s", f.ProduceCeilingTPS)})
	}
	if f.MerkleCeilingWPS > 0 {
		v.Floors = append(v.Floors, []string{"Merkle update ceiling", "", "", fmt.Sprintf("%.0f writes/s", f.MerkleCeilingWPS)})
	}
	if f.StateCeilingWPS > 0 {
		v.Floors = append(v.Floors, []string{"State write ceiling", "", "", fmt.Sprintf("%.0f writes/s", f.StateCeilingWPS)})
	}
	if f.VerifyCeilingTPS > 0 {
		v.Floors = append(v.Floors, []string{"ed25519 verify ceiling", "", "", fmt.Sprintf("%.0f /s", f.VerifyCeilingTPS)})
	}
	keys := make([]string, 0, len(f.Ratios))
	for k := range f.Ratios {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v.Ratios = append(v.Ratios, [2]string{k, fmt.Sprintf("%.2f", f.Ratios[k])})
	}

	c := r.Checker
	v.Checker = [][2]string{{"accepted", fmt.Sprint(c.Accepted)}, {"committed", fmt.Sprint(c.Committed)}, {"lost", fmt.Sprint(c.Lost)},
		{"duplicated", fmt.Sprint(c.Duplicated)}, {"roots equal", c.RootsVerdict()}, {"divergent blocks", fmt.Sprint(c.Divergent)}, {"proofs checked", fmt.Sprint(c.ProofsChecked)}, {"proofs failed", fmt.Sprint(c.ProofsFailed)}}
	v.Notes = c.Notes
	v.SLO, v.Timeline = r.SLO, r.Timeline
	if rs := r.Resources; rs != nil {
		v.Resources = resourceRows(rs)
		v.ResourceNotes = rs.Notes
	}
	v.PlotNotes = set.notes
	v.Files = r.Files
	return pageTemplate.Execute(w, v)
}

// resourceRows summarises resource use for the tables.
func resourceRows(rs *Resources) [][2]string {
	return [][2]string{
		{"source", rs.Source},
		{"samples", fmt.Sprintf("%d every %s", len(rs.Samples), fmtSeconds(rs.IntervalS))},
		{"CPU mean / max", fmt.Sprintf("%.1f%% / %.1f%%", rs.CPUPercentMean, rs.CPUPercentMax)},
		{"RSS max", fmtBytes(rs.RSSMaxBytes)},
		{"GC pauses total", FormatMicros(int64(rs.GCPauseTotalS*1e6)) + fmt.Sprintf(" in %d cycles", rs.GCCycles)},
		{"goroutines max", fmt.Sprint(rs.GoroutinesMax)},
	}
}

// fmtBytes formats a size in binary units: 812 B, 12.3 MiB.
func fmtBytes(b uint64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := uint64(unit), 0
	for n := b / unit; n >= unit && exp < 5; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTPE"[exp])
}

var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
	"bound": sloBoundOrNone, "verdict": verdict,
}).Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1040px; padding: 1em 1.5em 3em; color: #222; }
h1 { font-size: 1.6em; margin-bottom: .2em; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .6em 0 1em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f5f5f5; }
td.l, th.l { text-align: left; }
.verdict { display: inline-block; padding: .1em .6em; border-radius: 4px; color: #fff; font-weight: 600; }
.PASS { background: #2a8a2a; } .FAIL { background: #c62828; }
figure.plot { margin: 1.2em 0 2em; }
figure.plot svg { display: block; max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: .92em; margin-top: .4em; }
.note { color: #8a5a00; }
code { font-size: .95em; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
{{with .Description}}<p>{{.}}</p>{{end}}
<p><span id="verdict" class="verdict {{.Verdict}}">{{.Verdict}}</span> checker {{verdict .CheckerOK}}, {{.SLOsMet}}/{{.SLOs}} SLOs met.</p>
<table id="run"><tbody>{{range .Run}}<tr><th class="l">{{index . 0}}</th><td class="l">{{index . 1}}</td></tr>{{end}}</tbody></table>

<h2 id="environment">Environment</h2>
<table><tbody>{{range .Env}}<tr><th class="l">{{index . 0}}</th><td class="l">{{index . 1}}</td></tr>{{end}}</tbody></table>

{{range .Workloads}}
<h2 id="workload-{{.Name}}">Workload <code>{{.Name}}</code></h2>
<p>{{.Summary}}</p>
{{if .Stages}}
<p>Latency per stage, <b>corrected</b> (from the intended send time) and uncorrected (from the actual send):</p>
<table class="stages">
<thead><tr><th class="l">stage</th><th>count</th><th>tx/s</th><th class="l">view</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr></thead>
<tbody>{{range .Stages}}<tr>{{range $i, $c := .}}<td{{if or (eq $i 0) (eq $i 3)}} class="l"{{end}}>{{$c}}</td>{{end}}</tr>
{{end}}</tbody></table>
{{with .Hides}}<p>{{.}}</p>{{end}}
{{else}}<p>Nothing was recorded.</p>{{end}}
{{if .Errors}}<table><thead><tr><th class="l">error</th><th>count</th></tr></thead><tbody>{{range .Errors}}<tr><td class="l">{{index . 0}}</td><td>{{index . 1}}</td></tr>{{end}}</tbody></table>{{end}}
{{range .Figures}}
<figure class="plot" id="fig-{{.ID}}">
{{.Inline}}
<figcaption><b>{{.Title}}.</b> {{.Caption}} <a href="{{.PNG}}">PNG</a> · <a href="{{.SVG}}">SVG</a></figcaption>
</figure>
{{end}}
{{end}}

<h2 id="floors">Floors</h2>
<p>The raw building blocks, measured in the same run on the same paths.</p>
{{if .Floors}}
<table><thead><tr><th class="l">floor</th><th>p50</th><th>p99</th><th>ceiling</th></tr></thead>
<tbody>{{range .Floors}}<tr>{{range $i, $c := .}}<td{{if eq $i 0}} class="l"{{end}}>{{$c}}</td>{{end}}</tr>{{end}}</tbody></table>
{{else}}<p>Not measured in this run.</p>{{end}}
{{if .Ratios}}<table><thead><tr><th class="l">ratio</th><th>value</th></tr></thead>
<tbody>{{range .Ratios}}<tr><td class="l">{{index . 0}}</td><td>{{index . 1}}</td></tr>{{end}}</tbody></table>{{end}}

<h2 id="checker">Checker: {{verdict .CheckerOK}}</h2>
<table><tbody>{{range .Checker}}<tr><th class="l">{{index . 0}}</th><td>{{index . 1}}</td></tr>{{end}}</tbody></table>
{{if .Notes}}<ul>{{range .Notes}}<li>{{.}}</li>{{end}}</ul>{{end}}

<h2 id="slo">SLOs</h2>
{{if .SLO}}<table><thead><tr><th class="l">metric</th><th class="l">bound</th><th class="l">value</th><th class="l">result</th></tr></thead>
<tbody>{{range .SLO}}<tr><td class="l">{{.Metric}}</td><td class="l">{{bound .}}</td><td class="l">{{.Value}}{{with .Error}} <span class="note">({{.}})</span>{{end}}</td><td class="l"><span class="verdict {{verdict .OK}}">{{verdict .OK}}</span></td></tr>{{end}}</tbody></table>
{{else}}<p>None.</p>{{end}}

<h2 id="timeline">Timeline</h2>
{{if .Timeline}}<table><thead><tr><th class="l">at</th><th class="l">event</th><th class="l">recovery</th><th class="l">fail-over</th><th class="l">rejoin</th><th class="l">catch-up</th></tr></thead>
<tbody>{{range .Timeline}}<tr><td class="l">{{.At}}</td><td class="l">{{.EventNode}}</td><td class="l">{{.Recovery}}</td><td class="l">{{with .Failover}}{{.MaxGap}}{{end}}</td><td class="l">{{with .Rejoin}}{{.MaxGap}}{{end}}</td><td class="l">{{.CatchUp}}</td></tr>{{end}}</tbody></table>
{{else}}<p>No events.</p>{{end}}

<h2 id="resources">Resources</h2>
{{if .Resources}}<table><tbody>{{range .Resources}}<tr><th class="l">{{index . 0}}</th><td class="l">{{index . 1}}</td></tr>{{end}}</tbody></table>
{{range .ResourceNotes}}<p class="note">{{.}}</p>{{end}}
{{else}}<p>Not sampled in this run.</p>{{end}}
{{range .Figures}}
<figure class="plot" id="fig-{{.ID}}">
{{.Inline}}
<figcaption><b>{{.Title}}.</b> {{.Caption}} <a href="{{.PNG}}">PNG</a> · <a href="{{.SVG}}">SVG</a></figcaption>
</figure>
{{end}}
{{range .PlotNotes}}<p class="note">{{.}}</p>{{end}}

{{if .Files}}<h2 id="files">Files</h2>
<ul>{{range .Files}}<li><a href="{{.}}"><code>{{.}}</code></a></li>{{end}}</ul>{{end}}
<p style="color:#888">Generated {{.Generated}} by rustorium.</p>
</body>
</html>
`))
