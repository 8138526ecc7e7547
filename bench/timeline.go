package bench

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/rustorium/rustorium/netem"
	"github.com/rustorium/rustorium/node"
	"github.com/rustorium/rustorium/reports"
	"github.com/rustorium/rustorium/scenarios"
)

// timelineRun carries out a scenario's timeline against the cluster, at its
// times from the start of measuring, and remembers when each action really
// happened.
type timelineRun struct {
	sc     *scenarios.Scenario
	nd     *node.Node
	nw     *netem.Network // nil without network emulation
	cancel context.CancelFunc
	done   chan struct{}

	mu   sync.Mutex
	when map[int]time.Duration // event index → when its last action ran, from the start of measuring
}

func runTimeline(ctx context.Context, sc *scenarios.Scenario, nd *node.Node, nw *netem.Network, measureStart time.Time, p *progress) *timelineRun {
	ctx, cancel := context.WithCancel(ctx)
	tr := &timelineRun{sc: sc, nd: nd, nw: nw, cancel: cancel, done: make(chan struct{}), when: map[int]time.Duration{}}
	actions := sc.Schedule()
	heals := map[int]func(){}
	go func() {
		defer close(tr.done)
		for _, a := range actions {
			at := measureStart.Add(a.At.Std())
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(at)):
			}
			switch a.Op {
			case scenarios.OpPause:
				nd.Pause()
			case scenarios.OpResume:
				nd.Resume()
			case scenarios.OpNetwork:
				if err := nw.SetScenario(sc.NetworkAt(a.At), endpoints); err != nil {
					p.printf("timeline %v: %v", a.At, err)
				}
			case scenarios.OpPartition:
				heals[a.Event] = nw.Partition(a.Groups...)
			case scenarios.OpHeal:
				if heal := heals[a.Event]; heal != nil {
					heal()
				}
			}
			p.printf("timeline %v: %s", a.At, a)
			tr.mu.Lock()
			tr.when[a.Event] = time.Since(measureStart)
			tr.mu.Unlock()
		}
	}()
	return tr
}

// stop ends the timeline (actions not yet due do not run) and undoes a pause
// still in force, so the drain can finish.
func (tr *timelineRun) stop() {
	tr.cancel()
	<-tr.done
	tr.nd.Resume()
	if tr.nw != nil {
		tr.nw.Heal()
	}
}

// results lists each timeline event with its recovery time: from the end of
// the event (its last action) to the end of the first one-second interval
// whose committed (else accepted) p99 is back within twice the median p99 of
// the intervals before the event.
func (tr *timelineRun) results(res *reports.Result) []reports.TimelineResult {
	var out []reports.TimelineResult
	for i, e := range tr.sc.Timeline {
		r := reports.TimelineResult{At: e.At.String(), Event: e.String()}
		tr.mu.Lock()
		end, ran := tr.when[i]
		tr.mu.Unlock()
		if !ran {
			r.Recovery = "not run"
		} else {
			r.Recovery = recovery(res, e.At.Std(), end)
		}
		out = append(out, r)
	}
	return out
}

func recovery(res *reports.Result, start, end time.Duration) string {
	worst := "n/a"
	var worstD time.Duration = -1
	for _, w := range res.Workloads {
		stage := reports.StageCommitted.String()
		if !hasStage(w, stage) {
			stage = reports.StageAccepted.String()
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

func hasStage(w *reports.WorkloadResult, stage string) bool {
	_, ok := w.Stages[stage]
	return ok
}
