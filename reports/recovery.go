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

// Stall measures block production around a change at from (a node killed,
// or restarted), in the window until the next change, from the blocks'
// first commits on any node: shards[s] are shard s's, in commit order. Per
// shard: the longest gap between consecutive first commits that ends after
// from and starts before until (a shard still stalled at until counts
// until then; one with no block before until, the whole window), and the
// time from from to its first block after it. A run (its checker) and a
// simulation measure their kills and restarts with it.
func Stall(shards [][]time.Time, from, until time.Time) *Failover {
	f := &Failover{}
	var before []int64
	var worst time.Duration
	for shard, ts := range shards {
		st := ShardStall{Shard: uint32(shard), FirstBlockUs: -1}
		var maxGap time.Duration
		for j := 1; j < len(ts); j++ {
			switch {
			case !ts[j].After(from):
				before = append(before, ts[j].Sub(ts[j-1]).Microseconds())
			case ts[j-1].Before(until):
				maxGap = max(maxGap, ts[j].Sub(ts[j-1]))
			}
		}
		for _, t := range ts {
			if t.After(from) {
				st.FirstBlockUs = t.Sub(from).Microseconds()
				break
			}
		}
		switch {
		case len(ts) == 0 || !ts[0].Before(until):
			maxGap = until.Sub(from)
		case ts[len(ts)-1].Before(until):
			maxGap = max(maxGap, until.Sub(ts[len(ts)-1]))
		}
		st.MaxGapUs = maxGap.Microseconds()
		worst = max(worst, maxGap)
		f.Shards = append(f.Shards, st)
	}
	if len(before) > 0 {
		slices.Sort(before)
		f.BaselineGapUs = before[len(before)/2]
	}
	f.MaxGapUs = worst.Microseconds()
	f.MaxGap = worst.Round(time.Millisecond).String()
	return f
}

// CatchUp formats how long a restarted node took to commit, on every
// shard, the height the cluster had reached when it restarted: the time,
// or "not caught up" (ok false).
func CatchUp(took time.Duration, ok bool) string {
	if !ok {
		return "not caught up"
	}
	return took.Round(time.Millisecond).String()
}
