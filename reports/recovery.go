package reports

import (
	"slices"
	"time"
)

// Recovery is how long after end (from the start of measuring) a timeline
// event's effect lasted: the time until every workload's per-interval p99
// of its committed stage (accepted without commits) is back within twice
// its median before start — a duration, "not recovered", or "n/a" without
// a series before the event.
func Recovery(res *Result, start, end time.Duration) string {
	worst := "n/a"
	var worstD time.Duration = -1
	for _, w := range res.Workloads {
		stage := StageCommitted.String()
		if !hasStage(w, stage) {
			stage = StageAccepted.String()
		}
		var before []int64
		for _, iv := range w.Series {
			if s, ok := iv.Stages[stage]; ok && time.Duration((iv.T+res.IntervalS)*float64(time.Second)) <= start {
				before = append(before, s.P99)
			}
		}
		if len(before) == 0 {
			continue
		}
		slices.Sort(before)
		bound := 2 * before[len(before)/2]
		d := time.Duration(-1)
		for _, iv := range w.Series {
			ivEnd := time.Duration((iv.T + res.IntervalS) * float64(time.Second))
			if s, ok := iv.Stages[stage]; ok && ivEnd > end && s.P99 <= bound {
				d = ivEnd - end
				break
			}
		}
		if d < 0 {
			return "not recovered"
		}
		if d > worstD {
			worstD, worst = d, d.Round(10*time.Millisecond).String()
		}
	}
	return worst
}

func hasStage(w *WorkloadResult, stage string) bool {
	_, ok := w.Stages[stage]
	return ok
}
