package reports

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// WriteMarkdown writes dir/report.md.
func WriteMarkdown(dir string, r *Result) error {
	var buf bytes.Buffer
	if err := Markdown(&buf, r); err != nil {
		return err
	}
	return writeFile(dir, MarkdownFile, buf.Bytes())
}

// sortedWorkloads returns the workload names in a stable order.
func sortedWorkloads(r *Result) []string {
	names := make([]string, 0, len(r.Workloads))
	for n := range r.Workloads {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// stageNames returns the stages of w in pipeline order, then any unknown
// ones (from newer results) sorted.
func stageOrder(w *WorkloadResult) []string {
	var out []string
	known := map[string]bool{}
	for _, st := range Stages() {
		known[st.String()] = true
		if _, ok := w.Stages[st.String()]; ok {
			out = append(out, st.String())
		}
	}
	var extra []string
	for n := range w.Stages {
		if !known[n] {
			extra = append(extra, n)
		}
	}
	sort.Strings(extra)
	return append(out, extra...)
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

// mdEscape keeps user text from breaking a table or the markup.
func mdEscape(s string) string {
	r := strings.NewReplacer("|", `\|`, "\n", " ", "\r", " ", "`", "'", "<", "&lt;", ">", "&gt;")
	return r.Replace(s)
}

// Markdown writes the report in Markdown to w.
func Markdown(w io.Writer, res *Result) error {
	r := res.normalized()
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	p("# Rustorium report: %s\n\n", mdEscape(r.Scenario))
	if r.Description != "" {
		p("%s\n\n", mdEscape(r.Description))
	}
	nOK := 0
	for _, s := range r.SLO {
		if s.OK {
			nOK++
		}
	}
	p("**Verdict: %s** — checker %s, %d/%d SLOs met.\n\n", verdict(r.OK), verdict(r.Checker.OK), nOK, len(r.SLO))
	p("| run | |\n|---|---|\n")
	p("| scenario | %s |\n| seed | %d |\n", mdEscape(r.Scenario), r.Seed)
	if !r.Start.IsZero() {
		p("| measured | %s from %s |\n", fmtSeconds(r.DurationS), r.Start.UTC().Format(time.RFC3339))
	} else {
		p("| measured | %s |\n", fmtSeconds(r.DurationS))
	}
	p("| warmup | %s |\n\n", fmtSeconds(r.WarmupS))

	e := r.Environment
	p("## Environment\n\n")
	p("| go | GOMAXPROCS | CPU | OS | commit | broker |\n|---|---:|---|---|---|---|\n")
	commit := e.Commit
	if e.Dirty {
		commit += " (dirty)"
	}
	broker := e.Broker
	if e.BrokerVersion != "" {
		broker += " " + e.BrokerVersion
	}
	p("| %s | %d | %s (%d threads) | %s/%s %s | %s | %s |\n\n",
		mdEscape(e.Go), e.GOMAXPROCS, mdEscape(e.CPU), e.NumCPU, mdEscape(e.OS), mdEscape(e.Arch), mdEscape(e.Kernel), mdEscape(commit), mdEscape(broker))

	for _, name := range sortedWorkloads(r) {
		w := r.Workloads[name]
		p("## Workload `%s`\n\n", mdEscape(name))
		if w.Kind != "" || w.Client != "" {
			p("%s over %s. ", mdEscape(w.Kind), mdEscape(w.Client))
		}
		p("Sent %d, errors %d, throughput %.1f tx/s. Schedule lag p50 %s, p99 %s, max %s.\n\n",
			w.Sent, w.Errors, w.ThroughputTPS, FormatMicros(w.Lag.P50), FormatMicros(w.LagP99Us), FormatMicros(w.Lag.Max))
		if len(w.Stages) == 0 {
			p("Nothing was recorded.\n\n")
		} else {
			p("Latency per stage, **corrected** (from the intended send time) and uncorrected (from the actual send):\n\n")
			p("| stage | count | tx/s | view | p50 | p90 | p99 | p99.9 | max |\n|---|---:|---:|---|---:|---:|---:|---:|---:|\n")
			for _, st := range stageOrder(w) {
				s := w.Stages[st]
				c, u := s.Corrected, s.Uncorrected
				p("| %s | %d | %.1f | corrected | %s | %s | %s | %s | %s |\n", mdEscape(st), s.Count, s.ThroughputTPS,
					FormatMicros(c.P50), FormatMicros(c.P90), FormatMicros(c.P99), FormatMicros(c.P999), FormatMicros(c.Max))
				p("| | | | uncorrected | %s | %s | %s | %s | %s |\n",
					FormatMicros(u.P50), FormatMicros(u.P90), FormatMicros(u.P99), FormatMicros(u.P999), FormatMicros(u.Max))
			}
			p("\n")
			// How much the uncorrected view hides (coordinated omission).
			var hides []string
			for _, st := range stageOrder(w) {
				s := w.Stages[st]
				if s.Uncorrected.P99 > 0 && s.Corrected.P99 > s.Uncorrected.P99 {
					hides = append(hides, fmt.Sprintf("%s p99 %s vs %s (×%.1f)", mdEscape(st),
						FormatMicros(s.Corrected.P99), FormatMicros(s.Uncorrected.P99), float64(s.Corrected.P99)/float64(s.Uncorrected.P99)))
				}
			}
			if len(hides) > 0 {
				p("The uncorrected view hides: %s.\n\n", strings.Join(hides, "; "))
			}
		}
		if len(w.ErrorsByKind) > 0 {
			p("| error | count |\n|---|---:|\n")
			for _, k := range ErrorKinds(w.ErrorsByKind) {
				p("| %s | %d |\n", mdEscape(k), w.ErrorsByKind[k])
			}
			p("\n")
		}
		if w.Discarded > 0 || w.Clamped > 0 {
			p("Warmup records discarded: %d. Latencies clamped at 1h: %d.\n\n", w.Discarded, w.Clamped)
		}
	}

	f := r.Floors
	p("## Floors\n\nThe raw building blocks, measured in the same run on the same paths.\n\n")
	if f.QuicEcho == nil && f.ProduceAck == nil && f.ProduceCeilingTPS == 0 && f.MerkleCeilingWPS == 0 && f.StateCeilingWPS == 0 && f.VerifyCeilingTPS == 0 {
		p("Not measured in this run.\n\n")
	} else {
		p("| floor | p50 | p99 | ceiling |\n|---|---:|---:|---:|\n")
		if q := f.QuicEcho; q != nil {
			p("| QUIC echo RTT | %s | %s | |\n", FormatMicros(q.P50), FormatMicros(q.P99))
		}
		if q := f.ProduceAck; q != nil {
			p("| produce → ack | %s | %s | |\n", FormatMicros(q.P50), FormatMicros(q.P99))
		}
		if f.ProduceCeilingTPS > 0 {
			p("| produce ceiling | | | %.0f tx/s |\n", f.ProduceCeilingTPS)
		}
		if f.MerkleCeilingWPS > 0 {
			p("| Merkle update ceiling | | | %.0f writes/s |\n", f.MerkleCeilingWPS)
		}
		if f.StateCeilingWPS > 0 {
			p("| state write ceiling | | | %.0f writes/s |\n", f.StateCeilingWPS)
		}
		if f.VerifyCeilingTPS > 0 {
			p("| ed25519 verify ceiling | | | %.0f /s |\n", f.VerifyCeilingTPS)
		}
		p("\n")
		if len(f.Ratios) > 0 {
			keys := make([]string, 0, len(f.Ratios))
			for k := range f.Ratios {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			p("| ratio | value |\n|---|---:|\n")
			for _, k := range keys {
				p("| %s | %.2f |\n", mdEscape(k), f.Ratios[k])
			}
			p("\n")
		}
	}

	c := r.Checker
	p("## Checker: %s\n\n", verdict(c.OK))
	p("| accepted | committed | lost | duplicated | roots equal | divergent blocks | proofs checked | proofs failed |\n|---:|---:|---:|---:|---|---:|---:|---:|\n")
	p("| %d | %d | %d | %d | %s | %d | %d | %d |\n\n", c.Accepted, c.Committed, c.Lost, c.Duplicated, c.RootsVerdict(), c.Divergent, c.ProofsChecked, c.ProofsFailed)
	for _, n := range c.Notes {
		p("- %s\n", mdEscape(n))
	}
	if len(c.Notes) > 0 {
		p("\n")
	}

	p("## SLOs\n\n")
	if len(r.SLO) == 0 {
		p("None.\n\n")
	} else {
		p("| metric | bound | value | result |\n|---|---|---|---|\n")
		for _, s := range r.SLO {
			p("| %s | %s | %s | %s |\n", mdEscape(s.Metric), mdEscape(sloBound(s)), mdEscape(s.Value), verdict(s.OK))
		}
		p("\n")
	}

	if m := r.MaxRate; m != nil {
		p("## Max-rate search\n\n")
		p("Knee: **%.0f/s** offered, %.1f tx/s achieved, with %s p99 (corrected) ≤ %s and no errors.\n\n", m.KneeRate, m.KneeTPS, mdEscape(m.Stage), FormatMicros(m.BoundUs))
		p("| offered /s | achieved tx/s | p50 | p99 | errors | result |\n|---|---|---|---|---|---|\n")
		for _, pt := range m.Points {
			p("| %.0f | %.1f | %s | %s | %d | %s |\n", pt.Rate, pt.ThroughputTPS, FormatMicros(pt.P50Us), FormatMicros(pt.P99Us), pt.Errors, verdict(pt.OK))
		}
		p("\n")
	}

	for _, pr := range r.Profiles {
		p("## Profile: %s\n\n", mdEscape(pr.Kind))
		p("`profile/%s`, measured phase only, %s, total %d. Open it with `go tool pprof`.\n\n", mdEscape(pr.File), mdEscape(pr.Unit), pr.Total)
		for _, part := range []struct {
			title string
			fs    []ProfileFunc
		}{{"by flat (own) cost", pr.TopFlat}, {"by cumulative cost", pr.TopCum}} {
			p("Top functions %s:\n\n| function | flat | flat %% | cum | cum %% |\n|---|---|---|---|---|\n", part.title)
			for _, f := range part.fs {
				p("| `%s` | %d | %.1f | %d | %.1f |\n", mdEscape(f.Func), f.Flat, f.FlatPct, f.Cum, f.CumPct)
			}
			p("\n")
		}
	}

	p("## Timeline\n\n")
	if len(r.Timeline) == 0 {
		p("No events.\n\n")
	} else {
		p("| at | event | recovery | fail-over | rejoin | catch-up |\n|---|---|---|---|---|---|\n")
		for _, t := range r.Timeline {
			p("| %s | %s | %s | %s | %s | %s |\n", mdEscape(t.At), mdEscape(t.EventNode()), mdEscape(t.Recovery), failoverCell(t.Failover), failoverCell(t.Rejoin), mdEscape(t.CatchUp))
		}
		p("\n")
		for _, t := range r.Timeline {
			for _, f := range []struct {
				what string
				f    *Failover
			}{{"fail-over", t.Failover}, {"rejoin", t.Rejoin}} {
				if f.f == nil {
					continue
				}
				p("%s at %s, %s: longest gap between blocks per shard (median gap before: %s):", mdEscape(t.EventNode()), mdEscape(t.At), f.what, FormatMicros(f.f.BaselineGapUs))
				for _, s := range f.f.Shards {
					p(" shard %d %s;", s.Shard, FormatMicros(s.MaxGapUs))
				}
				p("\n\n")
			}
		}
	}

	if rs := r.Resources; rs != nil {
		p("## Resources\n\n")
		p("| resource | |\n|---|---|\n")
		for _, row := range resourceRows(rs) {
			p("| %s | %s |\n", row[0], mdEscape(row[1]))
		}
		p("\n")
		for _, n := range rs.Notes {
			p("- %s\n", mdEscape(n))
		}
		if len(rs.Notes) > 0 {
			p("\n")
		}
	}

	if plots := markdownPlots(r.Files); len(plots) > 0 {
		p("## Plots\n\n")
		for _, f := range r.Files {
			if f == HTMLFile {
				p("All plots with the tables: [%s](%s).\n\n", HTMLFile, HTMLFile)
			}
		}
		for _, pl := range plots {
			p("![%s](%s)\n", mdEscape(pl.title), pl.png)
			if pl.svg != "" {
				p("[SVG](%s)\n", pl.svg)
			}
			p("\n")
		}
	}

	if len(r.Files) > 0 {
		p("## Files\n\n")
		for _, f := range r.Files {
			p("- `%s`\n", mdEscape(f))
		}
		p("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// sloBound writes an SLO's bounds: "≤ 250ms", "≥ 900/s", or both.
func sloBound(s SLOResult) string {
	var parts []string
	if s.Min != "" {
		parts = append(parts, "≥ "+s.Min)
	}
	if s.Max != "" {
		parts = append(parts, "≤ "+s.Max)
	}
	return strings.Join(parts, ", ")
}

type mdPlot struct{ title, png, svg string }

// markdownPlots returns the PNG plots among the report's files (named by
// PlotID), each with its SVG when there is one, titled from the name.
func markdownPlots(files []string) []mdPlot {
	have := map[string]bool{}
	for _, f := range files {
		have[f] = true
	}
	titles := map[string]string{
		PlotLatency: "Latency over time", PlotThroughput: "Throughput over time",
		PlotSpectrum: "Percentile spectrum", PlotStages: "Stages against floors", PlotResources: "Resource use",
	}
	var out []mdPlot
	for _, f := range files {
		base, ok := strings.CutSuffix(f, ".png")
		if !ok || !strings.HasPrefix(base, "plot-") || strings.ContainsAny(f, "/\\") {
			continue
		}
		title := strings.TrimPrefix(base, "plot-")
		for kind, t := range titles {
			if rest, ok := strings.CutPrefix(title, kind); ok {
				title = t
				if w := strings.TrimPrefix(rest, "-"); w != "" {
					title += ": " + w
				}
				break
			}
		}
		pl := mdPlot{title: title, png: f}
		if have[base+".svg"] {
			pl.svg = base + ".svg"
		}
		out = append(out, pl)
	}
	return out
}

// failoverCell is a Failover's table cell: its longest gap, or empty.
func failoverCell(f *Failover) string {
	if f == nil {
		return ""
	}
	return mdEscape(f.MaxGap)
}
