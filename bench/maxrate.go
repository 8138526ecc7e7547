package bench

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/rustorium/rustorium/reports"
	"github.com/rustorium/rustorium/scenarios"
)

// maxRateWorkload returns the scenario's max-rate workload, if it has one
// (then it is the only workload; supported checks that).
func maxRateWorkload(sc *scenarios.Scenario) *scenarios.Workload {
	for i := range sc.Workload {
		if sc.Workload[i].Mode() == scenarios.ModeMaxRate {
			return &sc.Workload[i]
		}
	}
	return nil
}

// runMaxRate searches for the highest open-loop rate whose corrected p99 of
// the chosen stage stays within the bound with no errors: it doubles the
// rate from From until a probe fails (or To is reached), then bisects
// between the last passing and the first failing rate until the bracket is
// narrower than Precision. Each probe runs for Step on the same node, with
// transactions signed before it starts. The report's workload figures are
// those of the best passing probe; result.json's "maxrate" holds the knee
// and every probe.
func runMaxRate(ctx context.Context, c *cluster, w *scenarios.Workload, floors reports.Floors, opts Options, p *progress) (*reports.Result, error) {
	m := w.MaxRate
	stage := scenarios.DefaultMaxRateStage
	if m.Stage != nil {
		stage = *m.Stage
	}
	if _, err := stage.MarshalText(); err != nil { // a stage out of range
		return nil, err
	}
	bound, step := m.P99.Std(), m.Step.Std()
	from, to, precision := m.From.PerSecond(), m.To.PerSecond(), m.Precision.Fraction()
	out := &reports.MaxRate{Stage: stage.String(), BoundUs: bound.Microseconds()}

	if warm := c.sc.Warmup.Std(); warm > 0 {
		p.printf("max-rate: warming up at %v/s for %v", from, warm)
		if _, _, err := probe(ctx, c, w, from, warm, stage, p); err != nil {
			return nil, err
		}
	}
	var (
		best     *reports.Snapshot
		bestRate float64
		lo, hi   float64 // last passing, first failing (0: none yet)
	)
	try := func(rate float64) (bool, error) {
		snap, pt, err := probe(ctx, c, w, rate, step, stage, p)
		if err != nil {
			return false, err
		}
		pt.OK = pt.Errors == 0 && pt.P99Us > 0 && pt.P99Us <= out.BoundUs
		out.Points = append(out.Points, pt)
		p.printf("max-rate: %.0f/s → %.0f tx/s, %s p99 %s, %d errors%s: %s", rate, pt.ThroughputTPS, stage, reports.FormatMicros(pt.P99Us), pt.Errors, errorSummary(pt.ErrorsByKind), map[bool]string{true: "pass", false: "fail"}[pt.OK])
		if pt.OK && rate > bestRate {
			best, bestRate = snap, rate
			out.KneeRate, out.KneeTPS = rate, pt.ThroughputTPS
		}
		return pt.OK, nil
	}
	for rate := from; rate <= to; rate *= 2 {
		ok, err := try(rate)
		if err != nil {
			return nil, err
		}
		if !ok {
			hi = rate
			break
		}
		lo = rate
	}
	for lo > 0 && hi > 0 && (hi-lo)/hi > precision {
		mid := (lo + hi) / 2
		ok, err := try(mid)
		if err != nil {
			return nil, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	var res *reports.Result
	if best != nil {
		res = reports.NewResult(best, step)
	} else {
		res = &reports.Result{Workloads: map[string]*reports.WorkloadResult{}}
	}
	if wr := res.Workloads[w.Name]; wr != nil {
		wr.Kind, wr.Client = string(w.Kind), string(w.Client)
	}
	var notes []string
	if hi == 0 {
		notes = append(notes, fmt.Sprintf("max-rate: every probe up to %v/s passed; the knee is above the search range", to))
	}
	return c.finish(ctx, res, best, floors, notes, func(r *reports.Result) { r.MaxRate = out }, opts, p)
}

// probe offers rate for d and measures the stage over the whole probe.
func probe(ctx context.Context, c *cluster, w *scenarios.Workload, rate float64, d time.Duration, stage reports.Stage, p *progress) (*reports.Snapshot, reports.MaxRatePoint, error) {
	pw := *w
	pw.MaxRate, pw.Rate = nil, scenarios.Rate(rate)
	l, err := prepare(ctx, c.sc, &pw, 0, nil, d, p)
	if err != nil {
		return nil, reports.MaxRatePoint{}, err
	}
	start := time.Now().Add(50 * time.Millisecond)
	rec := reports.NewRecorder(reports.RecorderOptions{Start: start})
	runLoads(ctx, c, []*workloadRun{l}, rec, start, d)
	if ctx.Err() != nil {
		return nil, reports.MaxRatePoint{}, context.Cause(ctx)
	}
	snap := rec.Snapshot()
	pt := reports.MaxRatePoint{Rate: rate}
	if ws := snap.Workload(w.Name); ws != nil {
		pt.Errors, pt.ErrorsByKind = ws.Errors, ws.ErrorsByKind
		if h := ws.Stages[stage].Uncorrected; h != nil && h.TotalCount() > 0 {
			pt.ThroughputTPS = float64(h.TotalCount()) / d.Seconds()
		}
		if h := ws.Stages[stage].Corrected; h != nil && h.TotalCount() > 0 {
			pt.P50Us, pt.P99Us = h.ValueAtQuantile(50), h.ValueAtQuantile(99)
		}
	}
	return snap, pt, nil
}

// errorSummary lists error kinds and counts, most frequent first,
// " (kind: n, …)", or "" for none.
func errorSummary(kinds map[string]int64) string {
	if len(kinds) == 0 {
		return ""
	}
	names := reports.ErrorKinds(kinds)
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = fmt.Sprintf("%s: %d", k, kinds[k])
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
