package sim

import (
	"testing"

	"github.com/rustorium/rustorium/reports"
)

// TestCompareJudgesTheKneeNotItsLatencies: a run's latencies are judged
// against the tolerances, a max-rate search's only shown (its knee and
// throughput judged); a figure outside its tolerance is not OK.
func TestCompareJudgesTheKneeNotItsLatencies(t *testing.T) {
	result := func(p50 int64, knee float64) *reports.Result {
		st := func(p50 int64) *reports.StageResult {
			return &reports.StageResult{ThroughputTPS: 1000, Corrected: reports.Percentiles{P50: p50, P99: 3 * p50}}
		}
		r := &reports.Result{Scenario: "s", Workloads: map[string]*reports.WorkloadResult{
			"puts": {Stages: map[string]*reports.StageResult{"accepted": st(p50 / 10), "committed": st(p50)}},
		}}
		if knee > 0 {
			r.MaxRate = &reports.MaxRate{KneeRate: knee}
		}
		return r
	}
	rows := func(real, sim *reports.Result) map[string]Row {
		m := map[string]Row{}
		for _, r := range Compare(real, sim) {
			m[r.Metric] = r
		}
		return m
	}
	plain := rows(result(10000, 0), result(20000, 0))
	if r := plain["committed p50 ms"]; r.Tolerance != TolMedian || r.OK() || r.Diff() != 1 {
		t.Errorf("a run's committed p50: %+v", r)
	}
	if r := plain["committed tx/s"]; r.Tolerance != TolRate || !r.OK() {
		t.Errorf("a run's throughput: %+v", r)
	}
	if _, ok := plain["knee tx/s"]; ok {
		t.Error("a knee row without a max-rate search")
	}
	search := rows(result(10000, 4000), result(20000, 4500))
	for _, m := range []string{"accepted p99 ms", "committed p50 ms", "committed p99 ms"} {
		if r := search[m]; r.Tolerance != 0 || !r.OK() {
			t.Errorf("a max-rate search's %s is judged: %+v", m, r)
		}
	}
	if r := search["knee tx/s"]; r.Tolerance != TolMedian || !r.OK() || r.Real != 4000 {
		t.Errorf("the knee: %+v", r)
	}
	if r := rows(result(10000, 4000), result(10000, 6000))["knee tx/s"]; r.OK() {
		t.Errorf("a knee 50%% off passes: %+v", r)
	}
}
