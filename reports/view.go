package reports

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"
)

// reportView is a report as people read it, every value already formatted:
// the one model that report.md (text/template) and report.html
// (html/template) render. Each template escapes for its own format.
type reportView struct {
	Title, Scenario, Description string
	Verdict, CheckerVerdict      string // PASS or FAIL
	SLOsMet, SLOCount            int
	Seed, Measured, Warmup       string
	Start                        string // "" when unknown
	Env                          []field
	Workloads                    []workloadView
	Floors                       []floorRow // none: not measured
	Ratios                       []field
	Checker                      []field
	CheckerNotes                 []string
	SLOs                         []sloRow
	MaxRate                      *maxRateView
	Profiles                     []profileView
	Timeline                     []timelineRow
	Stalls                       []stallLine // the fail-overs and rejoins of the timeline, shard by shard
	Resources                    []field     // none: not sampled
	ResourceNotes                []string
	Traces                       *tracesView // nil: no traces
	Files                        []string
	LinksHTML                    bool     // report.html is among the files
	Plots                        []mdPlot // the PNG plots among the files
	Figures                      []renderedFigure
	PlotNotes                    []string
	Generated                    string
}

// field is a labelled value, a row of a two-column table or a column of a
// one-row one.
type field struct{ Name, Value string }

type workloadView struct {
	Name, Summary      string
	Stages             []stageRow
	Hides              string // how much the uncorrected view hides, or ""
	Errors             []field
	Discarded, Clamped int64
	Figures            []renderedFigure
}

// stageRow is one stage: its counts and its corrected and uncorrected
// p50, p90, p99, p99.9 and max.
type stageRow struct {
	Stage, Count, TPS      string
	Corrected, Uncorrected []string
}

type floorRow struct{ Name, P50, P99, Ceiling string }

type sloRow struct{ Metric, Bound, Value, Error, Verdict string }

type maxRateView struct {
	Knee, KneeTPS, Stage, Bound string
	Points                      []maxRateRow
}

type maxRateRow struct{ Rate, TPS, P50, P99, CPU, Errors, Verdict string }

type profileView struct {
	Kind, File, Unit, Total string
	Tool                    string // what opens the file: go tool pprof, go tool trace
	Caveat                  string
	Covered                 string         // a CPU profile's CoveredPct, or empty
	Components              []componentRow // a CPU profile's parts of the system
	Parts                   []profilePart
}

type componentRow struct{ Name, Pct, PerTx string }

type profilePart struct {
	Title string
	Funcs []profileRow
}

type profileRow struct{ Func, Flat, FlatPct, Cum, CumPct string }

type timelineRow struct{ At, Event, Recovery, Failover, Rejoin, CatchUp string }

type stallLine struct {
	Event, At, What, Baseline string
	Shards                    []field // shard number, its longest gap
}

// newView builds the view of r with the plots of set (nil for none),
// generated at the given time.
func newView(res *Result, set *plotSet, generated time.Time) *reportView {
	r := res.normalized()
	if set == nil {
		set = &plotSet{}
	}
	v := &reportView{
		Title: "Rustorium report: " + r.Scenario, Scenario: r.Scenario, Description: r.Description,
		Verdict: verdict(r.OK), CheckerVerdict: verdict(r.Checker.OK), SLOCount: len(r.SLO),
		Seed: fmt.Sprint(r.Seed), Measured: fmtSeconds(r.DurationS), Warmup: fmtSeconds(r.WarmupS),
		Env:     envFields(r.Environment),
		Floors:  floorRows(r.Floors),
		Ratios:  ratioFields(r.Floors.Ratios),
		Checker: checkerFields(r.Checker), CheckerNotes: r.Checker.Notes,
		SLOs:     sloRows(r.SLO),
		MaxRate:  newMaxRateView(r.MaxRate),
		Profiles: profileViews(r.Profiles),
		Timeline: timelineRows(r.Timeline), Stalls: stallLines(r.Timeline),
		Files: r.Files, Plots: markdownPlots(r.Files),
		PlotNotes: set.notes,
		Traces:    newTracesView(r.Traces),
		Generated: generated.UTC().Format(time.RFC3339),
	}
	if !r.Start.IsZero() {
		v.Start = r.Start.UTC().Format(time.RFC3339)
	}
	for _, s := range r.SLO {
		if s.OK {
			v.SLOsMet++
		}
	}
	for _, f := range r.Files {
		v.LinksHTML = v.LinksHTML || f == HTMLFile
	}
	if rs := r.Resources; rs != nil {
		v.Resources, v.ResourceNotes = resourceFields(rs), rs.Notes
	}
	v.Resources = append(v.Resources, nodeResourceFields(r.NodeResources)...)
	if c := r.Cost; c != nil {
		v.Resources = append(v.Resources, field{"cost per committed tx", costText(c)})
	}
	if b := r.Blocks; b != nil {
		v.Resources = append(v.Resources, field{"blocks committed", blocksText(b)})
	}
	byWorkload := map[string][]renderedFigure{}
	for _, f := range set.figs {
		if _, ok := r.Workloads[f.Workload]; ok && f.Workload != "" {
			byWorkload[f.Workload] = append(byWorkload[f.Workload], f)
		} else {
			v.Figures = append(v.Figures, f)
		}
	}
	for _, name := range sortedWorkloads(r) {
		v.Workloads = append(v.Workloads, newWorkloadView(name, r.Workloads[name], byWorkload[name]))
	}
	return v
}

func envFields(e Environment) []field {
	commit := e.Commit
	if e.Dirty {
		commit += " (dirty)"
	}
	return []field{
		{"go", e.Go}, {"GOMAXPROCS", fmt.Sprint(e.GOMAXPROCS)}, {"CPU", fmt.Sprintf("%s (%d threads)", e.CPU, e.NumCPU)},
		{"OS", strings.TrimSpace(e.OS + "/" + e.Arch + " " + e.Kernel)}, {"commit", commit},
		{"broker", strings.TrimSpace(e.Broker + " " + e.BrokerVersion)},
	}
}

func newWorkloadView(name string, w *WorkloadResult, figs []renderedFigure) workloadView {
	wv := workloadView{Name: name, Discarded: w.Discarded, Clamped: w.Clamped, Figures: figs}
	wv.Summary = fmt.Sprintf("Sent %d, errors %d, throughput %.1f tx/s. Schedule lag p50 %s, p99 %s, max %s.",
		w.Sent, w.Errors, w.ThroughputTPS, FormatMicros(w.Lag.P50), FormatMicros(w.LagP99Us), FormatMicros(w.Lag.Max))
	if w.GeneratorLagged {
		wv.Summary += " THE LOAD GENERATOR LAGGED: this workload's figures are suspect (see the notes)."
	}
	if w.Kind != "" || w.Client != "" {
		wv.Summary = fmt.Sprintf("%s over %s. ", w.Kind, w.Client) + wv.Summary
	}
	var hides []string
	for _, st := range stageOrder(w) {
		s := w.Stages[st]
		c, u := s.Corrected, s.Uncorrected
		wv.Stages = append(wv.Stages, stageRow{Stage: st, Count: fmt.Sprint(s.Count), TPS: fmt.Sprintf("%.1f", s.ThroughputTPS),
			Corrected: latencyCells(c), Uncorrected: latencyCells(u)})
		if u.P99 > 0 && c.P99 > u.P99 {
			hides = append(hides, fmt.Sprintf("%s p99 %s vs %s (×%.1f)", st, FormatMicros(c.P99), FormatMicros(u.P99), float64(c.P99)/float64(u.P99)))
		}
	}
	if len(hides) > 0 {
		wv.Hides = "The uncorrected view hides: " + strings.Join(hides, "; ") + "."
	}
	for _, k := range ErrorKinds(w.ErrorsByKind) {
		wv.Errors = append(wv.Errors, field{k, fmt.Sprint(w.ErrorsByKind[k])})
	}
	return wv
}

// latencyCells are p50, p90, p99, p99.9 and max.
func latencyCells(p Percentiles) []string {
	return []string{FormatMicros(p.P50), FormatMicros(p.P90), FormatMicros(p.P99), FormatMicros(p.P999), FormatMicros(p.Max)}
}

// floorRows are the floors measured, latencies then ceilings.
func floorRows(f Floors) []floorRow {
	var rows []floorRow
	trees := ""
	if f.TreeKeys > 0 {
		trees = fmt.Sprintf(", trees of %d leaves", f.TreeKeys)
	}
	if q := f.QuicEcho; q != nil {
		rows = append(rows, floorRow{"QUIC echo RTT", FormatMicros(q.P50), FormatMicros(q.P99), ""})
	}
	if q := f.ProduceAck; q != nil {
		rows = append(rows, floorRow{"produce → ack", FormatMicros(q.P50), FormatMicros(q.P99), ""})
	}
	if q := f.QuicEchoLoaded; q != nil {
		rows = append(rows, floorRow{"QUIC echo RTT under the load", FormatMicros(q.P50), FormatMicros(q.P99), ""})
	}
	if q := f.ProduceAckLoaded; q != nil {
		rows = append(rows, floorRow{"produce → ack under the load", FormatMicros(q.P50), FormatMicros(q.P99), ""})
	}
	for _, c := range []struct {
		name, format string
		v            float64
	}{
		{"produce ceiling", "%.0f tx/s", f.ProduceCeilingTPS},
		{"Merkle update ceiling", "%.0f writes/s", f.MerkleCeilingWPS},
		{"state write ceiling", "%.0f writes/s" + trees, f.StateCeilingWPS},
		{"ed25519 verify ceiling", "%.0f /s", f.VerifyCeilingTPS},
		{"node bound (a put's mandatory work)", "%.0f tx/s" + trees, f.NodeBoundTPS},
		{"node bound's CPU a put", "%.0f µs", f.NodeBoundCPUMicrosPerTx},
		{"node bound's signature checks", "%.0f at a time, as the node's", float64(f.NodeBoundSigBatch)},
		{"node bound's puts to keys new to the store", "%.1f%%, as the node's", 100 * f.NodeBoundNewKeys},
		{"node bound's blocks prepared together", "%.2f", f.NodeBoundPrepareBlocks},
		{"QUIC echo's CPU, both ends", "%.0f µs", f.QuicEchoCPUMicros},
		{"ordering's CPU a leader's round", "%.0f µs", f.OrderingRoundCPUMicros},
		{"ordering's CPU a transaction adds", "%.0f µs", f.OrderingTxCPUMicros},
		{"transactions a round, in the run", "%.2f", f.PathTxsPerRound},
		{"a transaction's path (node bound + QUIC + ordering)", "%.0f µs of CPU", f.PathCPUMicrosPerTx},
	} {
		if c.v > 0 {
			rows = append(rows, floorRow{Name: c.name, Ceiling: fmt.Sprintf(c.format, c.v)})
		}
	}
	return rows
}

// blocksText is the report's account of the blocks committed while
// measuring: how many, their mean size, and each shard's.
func blocksText(b *Blocks) string {
	s := fmt.Sprintf("%d blocks of %.1f tx on average", b.Count, b.MeanTxs)
	parts := make([]string, 0, len(b.Shards))
	for _, sb := range b.Shards {
		parts = append(parts, fmt.Sprintf("shard %d: %d of %.1f", sb.Shard, sb.Count, sb.MeanTxs))
	}
	if len(parts) > 0 {
		s += " (" + strings.Join(parts, ", ") + ")"
	}
	return s
}

func ratioFields(ratios map[string]float64) []field {
	keys := make([]string, 0, len(ratios))
	for k := range ratios {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]field, 0, len(keys))
	for _, k := range keys {
		out = append(out, field{k, fmt.Sprintf("%.2f", ratios[k])})
	}
	return out
}

func checkerFields(c Checker) []field {
	return []field{
		{"accepted", fmt.Sprint(c.Accepted)}, {"committed", fmt.Sprint(c.Committed)}, {"lost", fmt.Sprint(c.Lost)},
		{"duplicated", fmt.Sprint(c.Duplicated)}, {"roots equal", c.RootsVerdict()}, {"divergent blocks", fmt.Sprint(c.Divergent)},
		{"proofs checked", fmt.Sprint(c.ProofsChecked)}, {"proofs failed", fmt.Sprint(c.ProofsFailed)},
	}
}

func sloRows(slos []SLOResult) []sloRow {
	out := make([]sloRow, 0, len(slos))
	for _, s := range slos {
		out = append(out, sloRow{Metric: s.Metric, Bound: sloBound(s), Value: s.Value, Error: s.Error, Verdict: verdict(s.OK)})
	}
	return out
}

func newMaxRateView(m *MaxRate) *maxRateView {
	if m == nil {
		return nil
	}
	v := &maxRateView{Knee: fmt.Sprintf("%.0f", m.KneeRate), KneeTPS: fmt.Sprintf("%.1f", m.KneeTPS), Stage: m.Stage, Bound: FormatMicros(m.BoundUs)}
	for _, pt := range m.Points {
		v.Points = append(v.Points, maxRateRow{fmt.Sprintf("%.0f", pt.Rate), fmt.Sprintf("%.1f", pt.ThroughputTPS),
			FormatMicros(pt.P50Us), FormatMicros(pt.P99Us), cpuPerTxCell(pt.CPUMicrosPerTx), fmt.Sprint(pt.Errors), verdict(pt.OK)})
	}
	return v
}

// cpuPerTxCell shows a CPU time a transaction in µs, "—" when unknown.
func cpuPerTxCell(us float64) string {
	if us <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f µs", us)
}

func profileViews(profiles []ProfileSummary) []profileView {
	var out []profileView
	rows := func(fs []ProfileFunc) []profileRow {
		var rs []profileRow
		for _, f := range fs {
			rs = append(rs, profileRow{f.Func, fmt.Sprint(f.Flat), fmt.Sprintf("%.1f", f.FlatPct), fmt.Sprint(f.Cum), fmt.Sprintf("%.1f", f.CumPct)})
		}
		return rs
	}
	for _, pr := range profiles {
		v := profileView{Kind: pr.Kind, File: pr.File, Unit: pr.Unit, Total: fmt.Sprint(pr.Total), Tool: "go tool pprof", Caveat: pr.Caveat, Parts: []profilePart{
			{"by flat (own) cost", rows(pr.TopFlat)}, {"by cumulative cost", rows(pr.TopCum)},
		}}
		if pr.CoveredPct > 0 {
			v.Covered = fmt.Sprintf("%.1f", pr.CoveredPct)
		}
		for _, c := range pr.Components {
			perTx := "–"
			if c.MicrosPerTx > 0 {
				perTx = fmt.Sprintf("%.1f", c.MicrosPerTx)
			}
			v.Components = append(v.Components, componentRow{c.Name, fmt.Sprintf("%.1f", c.Pct), perTx})
		}
		if pr.Kind == "perf" { // perf record's samples as a pprof profile (internal/perfprof)
			v.Tool = "go tool pprof (perf's own file, perf.data beside it: perf report -i)"
		}
		if pr.Kind == "trace" { // goroutine wake-ups (bench.summarizeTrace)
			v.Tool = "go tool trace"
			v.Parts[0].Title, v.Parts[1].Title = "by the woken goroutine's start function", "by the package of that function"
		}
		out = append(out, v)
	}
	return out
}

func timelineRows(events []TimelineResult) []timelineRow {
	var out []timelineRow
	gap := func(f *Failover) string {
		if f == nil {
			return ""
		}
		return f.MaxGap
	}
	for _, t := range events {
		out = append(out, timelineRow{t.At, t.EventNode(), t.Recovery, gap(t.Failover), gap(t.Rejoin), t.CatchUp})
	}
	return out
}

func stallLines(events []TimelineResult) []stallLine {
	var out []stallLine
	for _, t := range events {
		for _, f := range []struct {
			what string
			f    *Failover
		}{{"fail-over", t.Failover}, {"rejoin", t.Rejoin}} {
			if f.f == nil {
				continue
			}
			l := stallLine{Event: t.EventNode(), At: t.At, What: f.what, Baseline: FormatMicros(f.f.BaselineGapUs)}
			for _, s := range f.f.Shards {
				l.Shards = append(l.Shards, field{fmt.Sprint(s.Shard), FormatMicros(s.MaxGapUs)})
			}
			out = append(out, l)
		}
	}
	return out
}

// resourceFields summarises resource use for the tables.
func resourceFields(rs *Resources) []field {
	return []field{
		{"source", rs.Source},
		{"samples", fmt.Sprintf("%d every %s", len(rs.Samples), fmtSeconds(rs.IntervalS))},
		{"CPU mean / max", fmt.Sprintf("%.1f%% / %.1f%%", rs.CPUPercentMean, rs.CPUPercentMax)},
		{"RSS max", fmtBytes(rs.RSSMaxBytes)},
		{"GC pauses total", FormatMicros(int64(rs.GCPauseTotalS*1e6)) + fmt.Sprintf(" in %d cycles", rs.GCCycles)},
		{"goroutines max", fmt.Sprint(rs.GoroutinesMax)},
	}
}

// nodeResourceFields summarises each node process's CPU and RSS, by name.
func nodeResourceFields(nodes map[string]*Resources) []field {
	var out []field
	for _, name := range slices.Sorted(maps.Keys(nodes)) {
		rs := nodes[name]
		out = append(out, field{name + " CPU mean / max, RSS max", fmt.Sprintf("%.1f%% / %.1f%%, %s", rs.CPUPercentMean, rs.CPUPercentMax, fmtBytes(rs.RSSMaxBytes))})
	}
	return out
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

// sortedWorkloads returns the workload names in a stable order.
func sortedWorkloads(r *Result) []string {
	names := make([]string, 0, len(r.Workloads))
	for n := range r.Workloads {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// stageOrder returns the stages of w in pipeline order, then any unknown
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

type mdPlot struct{ Title, PNG, SVG string }

// plotTitles name the plots by the PlotID kind their file names start with.
var plotTitles = map[string]string{
	PlotLatency: "Latency over time", PlotThroughput: "Throughput over time",
	PlotSpectrum: "Percentile spectrum", PlotStages: "Stages against floors", PlotResources: "Resource use",
}

// markdownPlots returns the PNG plots among the report's files (named by
// PlotID), each with its SVG when there is one, titled from the name.
func markdownPlots(files []string) []mdPlot {
	have := map[string]bool{}
	for _, f := range files {
		have[f] = true
	}
	var out []mdPlot
	for _, f := range files {
		base, ok := strings.CutSuffix(f, ".png")
		if !ok || !strings.HasPrefix(base, "plot-") || strings.ContainsAny(f, "/\\") {
			continue
		}
		title := strings.TrimPrefix(base, "plot-")
		for kind, t := range plotTitles {
			if rest, ok := strings.CutPrefix(title, kind); ok {
				title = t
				if w := strings.TrimPrefix(rest, "-"); w != "" {
					title += ": " + w
				}
				break
			}
		}
		pl := mdPlot{Title: title, PNG: f}
		if have[base+".svg"] {
			pl.SVG = base + ".svg"
		}
		out = append(out, pl)
	}
	return out
}
