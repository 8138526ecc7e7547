package reports

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"strings"

	"github.com/aclements/go-moremath/stats"
)

// Verdict is the outcome of comparing one metric of two runs.
type Verdict string

// Verdicts. Only VerdictWorse is a regression.
const (
	// VerdictBetter: head is better by at least the minimum effect, with
	// confidence.
	VerdictBetter Verdict = "better"
	// VerdictSame: with confidence, the change is smaller than the minimum
	// effect either way.
	VerdictSame Verdict = "same"
	// VerdictWorse: head is worse by at least the minimum effect, with
	// confidence: a regression.
	VerdictWorse Verdict = "worse"
	// VerdictInconclusive: the runs are too noisy, too short, or lack the
	// data to tell.
	VerdictInconclusive Verdict = "inconclusive"
)

// Compared metrics, besides MetricThroughput (completions of a stage per
// second, higher is better).
const (
	MetricP50 = "p50" // corrected p50 of a stage, lower is better
	MetricP99 = "p99" // corrected p99 of a stage, lower is better
)

// throughput is MetricThroughput as a compared metric's name.
const throughput = string(MetricThroughput)

// CompareOptions configures Compare.
type CompareOptions struct {
	// MinEffect is the smallest relative change that counts as better or
	// worse. Zero means 0.05 (5%).
	MinEffect float64 `json:"min_effect"`
	// Confidence is the confidence level of the interval and the
	// significance test (1 − α). Zero means 0.95.
	Confidence float64 `json:"confidence"`
	// MinIntervals is the fewest per-interval values each run needs for a
	// metric to get a verdict other than inconclusive. Zero means 5.
	MinIntervals int `json:"min_intervals"`
	// Resamples is the number of bootstrap resamples. Zero means 2000.
	Resamples int `json:"resamples"`
	// Seed seeds the bootstrap, so the same inputs give the same verdicts.
	// Zero means 1.
	Seed uint64 `json:"seed"`
}

func (o CompareOptions) withDefaults() CompareOptions {
	if !(o.MinEffect > 0) {
		o.MinEffect = 0.05
	}
	if !(o.Confidence > 0 && o.Confidence < 1) {
		o.Confidence = 0.95
	}
	if o.MinIntervals <= 0 {
		o.MinIntervals = 5
	}
	o.MinIntervals = max(o.MinIntervals, 2)
	if o.Resamples <= 0 {
		o.Resamples = 2000
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	return o
}

// Comparison is the verdict of comparing two runs, metric by metric.
type Comparison struct {
	Base    string          `json:"base"` // scenario name and commit of each run
	Head    string          `json:"head"`
	Options CompareOptions  `json:"options"`
	Rows    []ComparisonRow `json:"rows"`
	// Notes say what makes the two runs' machines unlike: different CPUs,
	// or a machine busy with other work during a run (Resources.Busy).
	// A busy head also turns its worse latencies inconclusive (Compare).
	Notes []string `json:"notes,omitempty"`
}

// ComparisonRow is one workload × stage × metric.
type ComparisonRow struct {
	Workload string `json:"workload"`
	Stage    string `json:"stage"`
	Metric   string `json:"metric"`
	// Base and Head are the whole-run values (µs for latencies, per second
	// for throughput); HasBase/HasHead say whether the run has them.
	Base    float64 `json:"base"`
	Head    float64 `json:"head"`
	HasBase bool    `json:"has_base"`
	HasHead bool    `json:"has_head"`
	// Change is the relative change of the median interval value from base
	// to head; Low and High bound it at the confidence level (bootstrap).
	Change float64 `json:"change"`
	Low    float64 `json:"ci_low"`
	High   float64 `json:"ci_high"`
	// P is the two-sided Mann-Whitney U p-value of the interval values;
	// PAdjusted is P adjusted for the number of metrics tested
	// (Holm-Bonferroni), which the verdict uses.
	P         float64 `json:"p"`
	PAdjusted float64 `json:"p_adjusted"`
	// Tested: both runs had enough interval values for P, Low and High
	// (else they are 1, 0, 0).
	Tested bool `json:"tested"`
	// NBase and NHead are the interval values used.
	NBase   int     `json:"n_base"`
	NHead   int     `json:"n_head"`
	Verdict Verdict `json:"verdict"`
	Note    string  `json:"note,omitempty"` // why the verdict is inconclusive, when it is
	// Recordings is the number of recordings of a baseline set the row
	// joins (CompareSet), and WorseIn against how many of them head was
	// worse; both are zero against a single baseline run.
	Recordings int `json:"recordings,omitempty"`
	WorseIn    int `json:"worse_in,omitempty"`
	// BaseMin and BaseMax are the lowest and highest whole-run values of
	// the set's recordings (the machine's spread between the hours they
	// were made in); zero against a single baseline run.
	BaseMin float64 `json:"base_min,omitempty"`
	BaseMax float64 `json:"base_max,omitempty"`
}

// Regression reports whether the row is a confident regression.
func (r ComparisonRow) Regression() bool { return r.Verdict == VerdictWorse }

// Regressions returns the rows that are confident regressions.
func (c *Comparison) Regressions() []ComparisonRow {
	var out []ComparisonRow
	for _, r := range c.Rows {
		if r.Regression() {
			out = append(out, r)
		}
	}
	return out
}

// Regressed reports whether any metric confidently regressed.
func (c *Comparison) Regressed() bool { return len(c.Regressions()) > 0 }

// Compare compares head against base, per workload, stage and metric
// (corrected p50 and p99, and throughput). The noise comes from the runs'
// per-interval series: for each metric it takes the per-interval values of
// both runs (intervals inside the measured window; latencies only where the
// stage completed something), tests whether they differ with a two-sided
// Mann-Whitney U test (exact p-values for small samples), and bootstraps a
// confidence interval of the relative change of their medians. The p-values are adjusted for the number of
// metrics compared (Holm-Bonferroni), so a whole comparison on pure noise
// calls something worse with probability at most 1 − Confidence. A metric
// is worse (a regression) when the adjusted test is significant, the
// interval excludes no change, and the median change is at least MinEffect
// in the bad direction; better likewise; same when the interval lies within
// ±MinEffect, or the test finds no difference and the median change is
// under MinEffect; inconclusive otherwise, or when a run has fewer than
// MinIntervals values. Interval values are not independent (a stall spans
// several), so borderline verdicts deserve a repeat run. When head's
// machine was not quiet (Resources.Busy: other processes' CPU, or CPU the
// hypervisor stole), a latency that is worse is inconclusive, not a
// regression; throughput is still judged.
func Compare(base, head *Result, opts CompareOptions) *Comparison {
	opts = opts.withDefaults()
	c := &Comparison{Base: runLabel(base), Head: runLabel(head), Options: opts}
	rng := rand.New(rand.NewPCG(opts.Seed, 0x5eed))
	names := unionKeys(base.Workloads, head.Workloads)
	for _, name := range names {
		bw, hw := base.Workloads[name], head.Workloads[name]
		if bw == nil || hw == nil {
			note := "only in head"
			if hw == nil {
				note = "only in base"
			}
			c.Rows = append(c.Rows, ComparisonRow{Workload: name, Stage: "-", Metric: "-", P: 1, PAdjusted: 1, Verdict: VerdictInconclusive, Note: note, HasBase: bw != nil, HasHead: hw != nil})
			continue
		}
		for _, st := range unionStages(bw, hw) {
			for _, m := range []string{MetricP50, MetricP99, throughput} {
				c.Rows = append(c.Rows, compareMetric(base, head, bw, hw, name, st, m, opts, rng))
			}
		}
	}
	decide(c.Rows, opts)
	c.Notes = machineNotes(base, head)
	if why := head.Resources.Busy(); why != "" {
		// A latency measured while the machine served others is not the
		// system's: what looks worse is not called a regression.
		for i := range c.Rows {
			if r := &c.Rows[i]; r.Verdict == VerdictWorse && r.Metric != throughput {
				r.Verdict, r.Note = VerdictInconclusive, "worse, but head's machine was not quiet"
			}
		}
	}
	return c
}

// machineNotes says where the two runs' machines differ.
func machineNotes(base, head *Result) []string {
	var notes []string
	if b, h := base.Environment.CPU, head.Environment.CPU; b != "" && h != "" && b != h {
		notes = append(notes, fmt.Sprintf("base ran on %s, head on %s: absolute latencies differ with the machine", b, h))
	}
	for _, r := range []struct {
		name string
		res  *Resources
	}{{"base", base.Resources}, {"head", head.Resources}} {
		if why := r.res.Busy(); why != "" {
			notes = append(notes, fmt.Sprintf("%s's machine was not quiet (%s): its latencies are suspect", r.name, why))
		}
	}
	return notes
}

func runLabel(r *Result) string {
	s := r.Scenario
	if c := r.Environment.Commit; c != "" {
		if len(c) > 12 {
			c = c[:12]
		}
		s += "@" + c
	}
	return s
}

func unionKeys[V any](a, b map[string]V) []string {
	seen := map[string]bool{}
	for k := range a {
		seen[k] = true
	}
	for k := range b {
		seen[k] = true
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// unionStages returns the stages of either workload in pipeline order.
func unionStages(a, b *WorkloadResult) []string {
	m := map[string]*StageResult{}
	for k, v := range a.Stages {
		m[k] = v
	}
	for k, v := range b.Stages {
		m[k] = v
	}
	return stageOrder(&WorkloadResult{Stages: m})
}

// whole returns the whole-run value of a metric.
func whole(w *WorkloadResult, st, metric string) (float64, bool) {
	s, ok := w.Stages[st]
	if !ok || s == nil || s.Count == 0 {
		return 0, false
	}
	switch metric {
	case MetricP50:
		return float64(s.Corrected.P50), true
	case MetricP99:
		return float64(s.Corrected.P99), true
	default:
		return s.ThroughputTPS, true
	}
}

// intervalValues returns a metric's per-interval values: the intervals that
// lie inside the measured window (partial and late ones are left out),
// latencies only where the stage completed something.
func intervalValues(r *Result, w *WorkloadResult, st, metric string) []float64 {
	iv := intervalS(r)
	var out []float64
	for _, s := range w.Series {
		if !finite(s.T) || (r.DurationS > 0 && s.T+iv > r.DurationS+1e-9) {
			continue
		}
		x := s.Stages[st]
		switch metric {
		case throughput:
			out = append(out, float64(x.Count)/iv)
		case MetricP50:
			if x.Count > 0 {
				out = append(out, float64(x.P50))
			}
		case MetricP99:
			if x.Count > 0 {
				out = append(out, float64(x.P99))
			}
		}
	}
	return out
}

func compareMetric(base, head *Result, bw, hw *WorkloadResult, name, st, metric string, opts CompareOptions, rng *rand.Rand) ComparisonRow {
	row := ComparisonRow{Workload: name, Stage: st, Metric: metric, P: 1, PAdjusted: 1, Verdict: VerdictInconclusive}
	row.Base, row.HasBase = whole(bw, st, metric)
	row.Head, row.HasHead = whole(hw, st, metric)
	a := intervalValues(base, bw, st, metric)
	b := intervalValues(head, hw, st, metric)
	row.NBase, row.NHead = len(a), len(b)
	switch {
	case !row.HasBase && !row.HasHead:
		row.Note = "no data"
		return row
	case !row.HasBase:
		row.Note = "only in head"
		return row
	case !row.HasHead:
		row.Note = "only in base"
		return row
	}
	ma, mb := Median(a), Median(b)
	rel := func(ma, mb float64) float64 { return (mb - ma) / math.Max(math.Abs(ma), 1) }
	if len(a) > 0 && len(b) > 0 {
		row.Change = rel(ma, mb)
	}
	if len(a) < opts.MinIntervals || len(b) < opts.MinIntervals {
		row.Note = fmt.Sprintf("too few intervals (%d, %d; need %d)", len(a), len(b), opts.MinIntervals)
		return row
	}
	row.Tested = true
	row.P = mannWhitneyP(a, b)
	row.Low, row.High = bootstrapCI(a, b, rel, opts.Confidence, opts.Resamples, rng)
	return row
}

// decide adjusts the p-values of the tested rows for testing many metrics
// at once (Holm-Bonferroni) and gives every tested row its verdict.
func decide(rows []ComparisonRow, opts CompareOptions) {
	var tested []int
	for i := range rows {
		if rows[i].Tested {
			tested = append(tested, i)
		}
	}
	sort.SliceStable(tested, func(x, y int) bool { return rows[tested[x]].P < rows[tested[y]].P })
	m := float64(len(tested))
	adj := 0.0
	for k, i := range tested {
		adj = math.Max(adj, math.Min(1, (m-float64(k))*rows[i].P))
		rows[i].PAdjusted = adj
	}
	alpha := 1 - opts.Confidence
	for _, i := range tested {
		r := &rows[i]
		// Orient so that positive is worse.
		change, lo, hi := r.Change, r.Low, r.High
		if r.Metric == throughput {
			change, lo, hi = -change, -hi, -lo
		}
		significant := r.PAdjusted < alpha
		switch {
		case significant && lo > 0 && change >= opts.MinEffect:
			r.Verdict = VerdictWorse
		case significant && hi < 0 && change <= -opts.MinEffect:
			r.Verdict = VerdictBetter
		case lo > -opts.MinEffect && hi < opts.MinEffect:
			r.Verdict = VerdictSame // surely within the minimum effect
		case !significant && math.Abs(change) < opts.MinEffect:
			r.Verdict = VerdictSame // no detectable change, and a small one at most
		case significant:
			r.Verdict, r.Note = VerdictInconclusive, "changed, but not surely by the minimum effect"
		default:
			r.Verdict, r.Note = VerdictInconclusive, "noisy"
		}
	}
}

// Median returns the median of xs (0 for none): the middle value, or the
// mean of the two middle ones; xs is not modified.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// bootstrapCI returns the percentile bootstrap interval of stat(Median(a),
// Median(b)) at the given confidence level.
func bootstrapCI(a, b []float64, stat func(ma, mb float64) float64, confidence float64, resamples int, rng *rand.Rand) (lo, hi float64) {
	ra, rb := make([]float64, len(a)), make([]float64, len(b))
	vals := make([]float64, resamples)
	for i := range vals {
		for j := range ra {
			ra[j] = a[rng.IntN(len(a))]
		}
		for j := range rb {
			rb[j] = b[rng.IntN(len(b))]
		}
		vals[i] = stat(Median(ra), Median(rb))
	}
	sort.Float64s(vals)
	alpha := 1 - confidence
	at := func(q float64) float64 {
		i := int(math.Floor(q * float64(len(vals)-1)))
		return vals[min(max(i, 0), len(vals)-1)]
	}
	return at(alpha / 2), at(1 - alpha/2)
}

// mannWhitneyP returns the two-sided p-value of the Mann-Whitney U test of
// a against b, from go-moremath: exact (the U distribution, ties included)
// while both samples are small (at most stats.MannWhitneyExactLimit values,
// or stats.MannWhitneyTiesExactLimit with ties), else the normal
// approximation with tie and continuity corrections. Empty samples, or all
// values equal, give 1.
func mannWhitneyP(a, b []float64) float64 {
	r, err := stats.MannWhitneyUTest(a, b, stats.LocationDiffers)
	if err != nil { // stats.ErrSampleSize, stats.ErrSamplesEqual: nothing to tell apart
		return 1
	}
	return math.Min(r.P, 1)
}

// fmtMetric formats a metric value for the table.
func fmtMetric(metric string, v float64, ok bool) string {
	if !ok {
		return "—"
	}
	if metric == throughput {
		return fmt.Sprintf("%.1f/s", v)
	}
	return FormatMicros(int64(math.Round(v)))
}

func fmtPct(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+∞"
	case math.IsInf(v, -1):
		return "−∞"
	case math.IsNaN(v):
		return "?"
	}
	return fmt.Sprintf("%+.1f%%", v*100)
}

// tableRows returns the comparison as table rows with a header.
func (c *Comparison) tableRows() [][]string {
	rows := [][]string{{"workload", "stage", "metric", "base", "head", "Δ median", fmt.Sprintf("%.0f%% CI", c.Options.Confidence*100), "p (Holm)", "verdict"}}
	for _, r := range c.Rows {
		change, ci, p := "", "", ""
		if r.HasBase && r.HasHead && r.NBase > 0 && r.NHead > 0 {
			change = fmtPct(r.Change)
		}
		if r.Tested {
			ci = "[" + fmtPct(r.Low) + ", " + fmtPct(r.High) + "]"
			p = fmt.Sprintf("%.3g", r.PAdjusted)
		}
		v := string(r.Verdict)
		if r.Verdict == VerdictWorse {
			v = "WORSE"
		}
		if r.Note != "" {
			v += " (" + r.Note + ")"
		}
		base := fmtMetric(r.Metric, r.Base, r.HasBase)
		if r.Recordings > 1 && r.BaseMin < r.BaseMax {
			// a set: the recordings' range (the change is against the nearest)
			base = fmtMetric(r.Metric, r.BaseMin, true) + ".." + fmtMetric(r.Metric, r.BaseMax, true)
		}
		rows = append(rows, []string{r.Workload, r.Stage, r.Metric, base, fmtMetric(r.Metric, r.Head, r.HasHead), change, ci, p, v})
	}
	return rows
}

func (c *Comparison) verdictLine() string {
	reg := c.Regressions()
	if len(reg) == 0 {
		return fmt.Sprintf("no confident regression (minimum effect %.0f%%, confidence %.0f%%)", c.Options.MinEffect*100, c.Options.Confidence*100)
	}
	var names []string
	for _, r := range reg {
		names = append(names, r.Workload+"."+r.Stage+"."+r.Metric)
	}
	return fmt.Sprintf("REGRESSION in %d metric(s): %s", len(reg), strings.Join(names, ", "))
}

// Text writes the comparison as an aligned table for a terminal, then the
// overall verdict.
func (c *Comparison) Text(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "base %s  vs  head %s\n", c.Base, c.Head)
	writeTable(&b, c.tableRows(), 3)
	for _, n := range c.Notes {
		b.WriteString("note: " + n + "\n")
	}
	b.WriteString(c.verdictLine() + "\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// Markdown writes the comparison as a Markdown table, then the overall
// verdict.
func (c *Comparison) Markdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "## Comparison: `%s` → `%s`\n\n", mdEscape(c.Base), mdEscape(c.Head))
	rows := c.tableRows()
	for i, row := range rows {
		cells := make([]string, len(row))
		for j, cell := range row {
			cells[j] = mdEscape(cell)
			if i > 0 && j == len(row)-1 && c.Rows[i-1].Verdict == VerdictWorse {
				cells[j] = "**" + cells[j] + "**"
			}
		}
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
		if i == 0 {
			b.WriteString("|---|---|---|---:|---:|---:|---:|---:|---|\n")
		}
	}
	for i, n := range c.Notes {
		if i == 0 {
			b.WriteString("\n")
		}
		b.WriteString("- note: " + mdEscape(n) + "\n")
	}
	b.WriteString("\n**" + c.verdictLine() + "**\n")
	_, err := io.WriteString(w, b.String())
	return err
}
