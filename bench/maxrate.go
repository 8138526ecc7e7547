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
// (then it is the only workload; Check makes sure).
func maxRateWorkload(sc *scenarios.Scenario) *scenarios.Workload {
	for i := range sc.Workload {
		if sc.Workload[i].Mode() == scenarios.ModeMaxRate {
			return &sc.Workload[i]
		}
	}
	return nil
}

// maxRate is the plan of a max-rate search: it looks for the highest
// open-loop rate whose corrected p99 of the chosen stage stays within the
// bound with no errors. It doubles the rate from From until a probe fails
// (or To is reached), then bisects between the last passing and the first
// failing rate until the bracket is narrower than Precision. Each probe
// runs for Step on the same target, with transactions signed before it
// starts. The report's workload figures are those of the best passing
// probe; result.json's "maxrate" holds the knee and every probe.
func (r *pipeline) maxRate(ctx context.Context, w *scenarios.Workload) (*outcome, error) {
	s, err := r.newSearch(w)
	if err != nil {
		return nil, err
	}
	if warm := r.sc.Warmup.Std(); warm > 0 {
		r.p.printf("max-rate: warming up at %v/s for %v", s.from, warm)
		if _, _, _, err := r.probe(ctx, w, s.from, warm, s.stage); err != nil {
			return nil, err
		}
	}
	var lo, hi float64 // last passing, first failing (0: none yet)
	for rate := s.from; rate <= s.to; rate *= 2 {
		ok, err := s.try(ctx, rate)
		if err != nil {
			return nil, err
		}
		if !ok {
			hi = rate
			break
		}
		lo = rate
	}
	for lo > 0 && hi > 0 && (hi-lo)/hi > s.precision {
		mid := (lo + hi) / 2
		ok, err := s.try(ctx, mid)
		if err != nil {
			return nil, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	return s.outcome(hi == 0), nil
}

// search is the state of a max-rate search.
type search struct {
	r                   *pipeline
	w                   *scenarios.Workload
	stage               reports.Stage
	step                time.Duration
	from, to, precision float64
	out                 *reports.MaxRate
	best                *reports.Snapshot
	bestRate            float64
	bestFrom, bestTo    time.Time // the best probe's window
}

func (r *pipeline) newSearch(w *scenarios.Workload) (*search, error) {
	m := w.MaxRate
	stage := maxRateStage(m)
	return &search{
		r: r, w: w, stage: stage, step: m.Step.Std(),
		from: m.From.PerSecond(), to: m.To.PerSecond(), precision: m.Precision.Fraction(),
		out: &reports.MaxRate{Stage: stage.String(), BoundUs: m.P99.Std().Microseconds()},
	}, nil
}

// try probes rate and reports whether it passed.
func (s *search) try(ctx context.Context, rate float64) (bool, error) {
	snap, pt, from, err := s.r.probe(ctx, s.w, rate, s.step, s.stage)
	if err != nil {
		return false, err
	}
	pt.OK = pt.Errors == 0 && pt.P99Us > 0 && pt.P99Us <= s.out.BoundUs
	s.out.Points = append(s.out.Points, pt)
	s.r.p.printf("max-rate: %.0f/s → %.0f tx/s, %s p99 %s, %d errors%s: %s", rate, pt.ThroughputTPS, s.stage, reports.FormatMicros(pt.P99Us), pt.Errors, errorSummary(pt.ErrorsByKind), map[bool]string{true: "pass", false: "fail"}[pt.OK])
	if pt.OK && rate > s.bestRate {
		s.best, s.bestRate = snap, rate
		s.bestFrom, s.bestTo = from, from.Add(s.step)
		s.out.KneeRate, s.out.KneeTPS = rate, pt.ThroughputTPS
	}
	return pt.OK, nil
}

// outcome is the search's result: the best passing probe's figures.
func (s *search) outcome(aboveRange bool) *outcome {
	var res *reports.Result
	if s.best != nil {
		res = reports.NewResult(s.best, s.step)
	} else {
		res = &reports.Result{Workloads: map[string]*reports.WorkloadResult{}}
	}
	if wr := res.Workloads[s.w.Name]; wr != nil {
		wr.Kind, wr.Client = string(s.w.Kind), string(s.w.Client)
	}
	var notes []string
	if aboveRange {
		notes = append(notes, fmt.Sprintf("max-rate: every probe up to %v/s passed; the knee is above the search range", s.to))
	}
	return &outcome{res: res, snap: s.best, notes: notes, complete: func(r *reports.Result) { r.MaxRate = s.out }, from: s.bestFrom, to: s.bestTo}
}

// probe offers rate for d and measures the stage over the whole probe,
// which started at from.
func (r *pipeline) probe(ctx context.Context, w *scenarios.Workload, rate float64, d time.Duration, stage reports.Stage) (_ *reports.Snapshot, _ reports.MaxRatePoint, from time.Time, _ error) {
	pw := *w
	pw.MaxRate, pw.Rate = nil, scenarios.Rate(rate)
	// Every probe sends transactions of its own: the same salt would make
	// the same ids, which the node takes as resends of committed ones.
	r.probes++
	sh := r.share
	sh.salt += r.probes * 0x9e3779b9
	r.ingress.reset()
	l, err := prepare(ctx, r.sc, &pw, 0, nil, d, sh, r.signed, r.p.printf)
	if err != nil {
		return nil, reports.MaxRatePoint{}, time.Time{}, err
	}
	defer l.close()
	start := time.Now().Add(50 * time.Millisecond)
	rec := reports.NewRecorder(reports.RecorderOptions{Start: start})
	if err := r.runLoads(ctx, []*workloadRun{l}, rec, start, d); err != nil {
		return nil, reports.MaxRatePoint{}, time.Time{}, err
	}
	if ctx.Err() != nil {
		return nil, reports.MaxRatePoint{}, time.Time{}, context.Cause(ctx)
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
	return snap, pt, start, nil
}

// maxRateStage is the stage a search bounds (accepted by default).
func maxRateStage(m *scenarios.MaxRate) reports.Stage {
	if m.Stage == nil {
		return scenarios.DefaultMaxRateStage
	}
	return *m.Stage
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
