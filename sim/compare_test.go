package sim

import (
	"strings"
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

// TestCompareVoidsANotQuietRealRun: when the real run's machine was not
// quiet, its latencies and knee are void — shown, not judged, with the
// reason in the table — while the throughput is still judged.
func TestCompareVoidsANotQuietRealRun(t *testing.T) {
	result := func(p50 int64, tps float64) *reports.Result {
		st := &reports.StageResult{ThroughputTPS: tps, Corrected: reports.Percentiles{P50: p50, P99: 3 * p50}}
		return &reports.Result{Scenario: "s", Workloads: map[string]*reports.WorkloadResult{
			"puts": {Stages: map[string]*reports.StageResult{"accepted": st, "committed": st}},
		}, MaxRate: &reports.MaxRate{KneeRate: 4000}}
	}
	real := result(10000, 1000)
	real.Resources = &reports.Resources{StealPercentMean: 76}
	sim := result(50000, 1000)
	sim.MaxRate.KneeRate = 8000
	rows := Compare(real, sim)
	for _, r := range rows {
		switch r.Metric {
		case "committed tx/s":
			if r.Void != "" || !r.OK() {
				t.Errorf("throughput: %+v, want judged (and ok)", r)
			}
		case "knee tx/s":
			if r.Void == "" || !r.OK() {
				t.Errorf("knee: %+v, want void", r)
			}
		}
	}
	var b strings.Builder
	if err := WriteTable(&b, rows); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "void") || !strings.Contains(b.String(), "stole 76% of a core") {
		t.Errorf("table does not say why rows are void:\n%s", b.String())
	}
	sim.Workloads["puts"].Stages["committed"] = &reports.StageResult{ThroughputTPS: 500}
	for _, r := range Compare(real, sim) {
		if r.Metric == "committed tx/s" && r.OK() {
			t.Errorf("a throughput 50%% off passes on a busy machine: %+v", r)
		}
	}
	quiet := result(10000, 1000)
	for _, r := range Compare(quiet, result(50000, 1000)) {
		if r.Void != "" {
			t.Errorf("a quiet real run's row is void: %+v", r)
		}
	}
}

// TestCompareShowsTheTimeline: a kill's fail-over, a restart's rejoin and
// catch-up measured by both results are shown side by side (in ms), not
// judged; an event one side did not measure has no row.
func TestCompareShowsTheTimeline(t *testing.T) {
	result := func(failover, rejoin int64, catchUp string) *reports.Result {
		return &reports.Result{Scenario: "s", Timeline: []reports.TimelineResult{
			{At: "1s", Event: "kill node-2, restart after 2s", Failover: &reports.Failover{MaxGapUs: failover}, Rejoin: &reports.Failover{MaxGapUs: rejoin}, CatchUp: catchUp},
			{At: "5s", Event: "pause node-1 for 1s"},
		}}
	}
	rows := Compare(result(95_000, 40_000, "1.2s"), result(110_000, 20_000, "not caught up"))
	got := map[string]Row{}
	for _, r := range rows {
		got[r.Metric] = r
	}
	if r := got["fail-over ms (1s)"]; r.Real != 95 || r.Simulated != 110 || r.Tolerance != 0 {
		t.Errorf("fail-over: %+v", r)
	}
	if r := got["rejoin ms (1s)"]; r.Real != 40 || r.Simulated != 20 {
		t.Errorf("rejoin: %+v", r)
	}
	if len(rows) != 2 {
		t.Errorf("%d rows, want fail-over and rejoin (no catch-up: the simulation's did not end): %+v", len(rows), rows)
	}
	rows = Compare(result(95_000, 40_000, "1.2s"), result(110_000, 20_000, "800ms"))
	for _, r := range rows {
		if r.Metric == "catch-up ms (1s)" && (r.Real != 1200 || r.Simulated != 800) {
			t.Errorf("catch-up: %+v", r)
		}
	}
	if len(rows) != 3 {
		t.Errorf("%d rows, want 3", len(rows))
	}
}

// TestCompareReads: a read workload's rows are its read stage's: the rate
// judged, p50 and p99 shown; no committed or accepted rows.
func TestCompareReads(t *testing.T) {
	result := func(rate float64, p50 int64) *reports.Result {
		return &reports.Result{Scenario: "s", Workloads: map[string]*reports.WorkloadResult{
			"gets": {Stages: map[string]*reports.StageResult{"read": {ThroughputTPS: rate, Corrected: reports.Percentiles{P50: p50, P99: 4 * p50}}}},
		}}
	}
	rows := Compare(result(500, 1000), result(300, 600))
	got := map[string]Row{}
	for _, r := range rows {
		got[r.Metric] = r
	}
	if len(rows) != 3 {
		t.Fatalf("rows %+v, want the read stage's three", rows)
	}
	if r := got["read tx/s"]; r.Tolerance != TolRate || r.OK() {
		t.Errorf("read rate 40%% off: %+v", r)
	}
	if r := got["read p50 ms"]; r.Real != 1 || r.Simulated != 0.6 || r.Tolerance != 0 {
		t.Errorf("read p50: %+v", r)
	}
	if r := got["read p99 ms"]; r.Real != 4 || r.Tolerance != 0 {
		t.Errorf("read p99: %+v", r)
	}
}

// TestCompareShowsTheFloors: the real run's floors stand beside the
// calibration's, shown and not judged (the machine's drift between the
// calibration and the real run); a missing floor shows no row.
func TestCompareShowsTheFloors(t *testing.T) {
	result := func(echo, ack int64) *reports.Result {
		r := &reports.Result{Scenario: "s", Floors: reports.Floors{QuicEcho: &reports.Percentiles{P50: echo}}}
		if ack > 0 {
			r.Floors.ProduceAck = &reports.Percentiles{P50: ack}
		}
		return r
	}
	rows := Compare(result(155, 156), result(97, 87))
	got := map[string]Row{}
	for _, r := range rows {
		got[r.Metric] = r
	}
	if r := got["floor echo p50 µs"]; r.Real != 155 || r.Simulated != 97 || r.Tolerance != 0 || !r.OK() {
		t.Errorf("echo floor: %+v", r)
	}
	if r := got["floor p→ack p50 µs"]; r.Real != 156 || r.Simulated != 87 || r.Tolerance != 0 {
		t.Errorf("produce→ack floor: %+v", r)
	}
	if rows := Compare(result(155, 0), result(97, 87)); len(rows) != 1 {
		t.Errorf("without a real produce→ack floor: %+v, want the echo's row alone", rows)
	}
}

// TestCompareRunsJudgesTheMedianAndShowsTheSpread: against several real
// runs a row's real figure is their median (of the quiet runs, for
// latencies) with their range; a simulated figure off the median's
// tolerance but within it of the range is noise (passes), one beyond the
// range's is OFF; the table shows the range and the verdicts.
func TestCompareRunsJudgesTheMedianAndShowsTheSpread(t *testing.T) {
	result := func(p50 int64) *reports.Result {
		st := &reports.StageResult{ThroughputTPS: 1000, Corrected: reports.Percentiles{P50: p50, P99: 3 * p50}}
		return &reports.Result{Scenario: "s", Workloads: map[string]*reports.WorkloadResult{
			"puts": {Stages: map[string]*reports.StageResult{"committed": st}},
		}}
	}
	busy := result(1000)
	busy.Resources = &reports.Resources{StealPercentMean: 76}
	reals := []*reports.Result{result(10000), result(30000), busy, result(12000)}
	row := func(sim int64, reals []*reports.Result) Row {
		for _, r := range CompareRuns(reals, result(sim)) {
			if r.Metric == "committed p50 ms" {
				return r
			}
		}
		t.Fatal("no committed p50 row")
		return Row{}
	}
	r := row(20000, reals)
	if r.Runs != 3 || r.Real != 12 || r.RealMin != 10 || r.RealMax != 30 || r.Void != "" {
		t.Fatalf("median of the quiet runs: %+v", r)
	}
	if r.OK() || !r.Noise() || !r.Pass() {
		t.Errorf("20 ms against 10, 12, 30: %+v, want noise", r)
	}
	if r := row(38000, reals); r.Noise() || r.Pass() {
		t.Errorf("38 ms against 10, 12, 30 (the range's tolerance ends at 37.5): %+v, want OFF", r)
	}
	if r := row(12500, reals); !r.OK() || r.Noise() {
		t.Errorf("12.5 ms against a median of 12: %+v, want ok", r)
	}
	if r := row(11000, reals[:2]); r.Real != 20 || r.Runs != 2 {
		t.Errorf("the median of two runs is their mean: %+v", r)
	}
	if r := row(11000, []*reports.Result{busy, busy}); r.Void == "" || !r.Pass() {
		t.Errorf("only busy runs: %+v, want void", r)
	}
	if r := row(20000, reals[:1]); r.Runs != 0 || r.Noise() || r.Pass() {
		t.Errorf("one run has no spread to be noise in: %+v", r)
	}

	var b strings.Builder
	if err := WriteTable(&b, CompareRuns(reals, result(20000))); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"real range", "10.00..30.00", "noise"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

// TestCompareShowsSpans: a span both results have is a row of its p50s,
// shown and not judged, whatever the difference; a span only one has is
// not.
func TestCompareShowsSpans(t *testing.T) {
	real := &reports.Result{Scenario: "s", Traces: &reports.Traces{Spans: []reports.SpanStat{
		{Span: "client.send", Count: 10, P50Us: 800, P99Us: 9000},
		{Span: "replica.merkle", Count: 10, P50Us: 300, P99Us: 900},
	}}}
	sim := &reports.Result{Scenario: "s", Simulated: true, Simulation: &reports.Simulation{Spans: []reports.SpanStat{
		{Span: "client.send", Count: 1000, P50Us: 2400, P99Us: 5000},
		{Span: "leader.publish", Count: 1000, P50Us: 400, P99Us: 900},
	}}}
	var spans []Row
	for _, r := range Compare(real, sim) {
		if strings.HasSuffix(r.Metric, " p50 ms") && r.Workload == "-" {
			spans = append(spans, r)
		}
	}
	if len(spans) != 1 || spans[0].Metric != "client.send p50 ms" || spans[0].Real != 0.8 || spans[0].Simulated != 2.4 || spans[0].Tolerance != 0 || !spans[0].Pass() {
		t.Fatalf("span rows %+v", spans)
	}
}

// TestCompareVoidsARunOnAnotherMachine: a quiet real run that measured
// both floors more than FloorDrift times slower (or quicker) than the
// simulation's calibration is void, with the floors in the reason; one
// floor off, or both within FloorDrift, is judged.
func TestCompareVoidsARunOnAnotherMachine(t *testing.T) {
	result := func(echo, ack int64) *reports.Result {
		st := &reports.StageResult{ThroughputTPS: 1000, Corrected: reports.Percentiles{P50: 2000, P99: 6000}}
		return &reports.Result{Scenario: "s", Workloads: map[string]*reports.WorkloadResult{
			"puts": {Stages: map[string]*reports.StageResult{"accepted": st, "committed": st}},
		}, Floors: reports.Floors{QuicEcho: &reports.Percentiles{P50: echo}, ProduceAck: &reports.Percentiles{P50: ack}}}
	}
	sim := result(50, 60)
	sim.Workloads["puts"].Stages["committed"] = &reports.StageResult{ThroughputTPS: 1000, Corrected: reports.Percentiles{P50: 1000, P99: 3000}}
	void := func(real *reports.Result) string {
		t.Helper()
		var why string
		for _, r := range Compare(real, sim) {
			switch r.Metric {
			case "committed tx/s":
				if r.Void != "" {
					t.Errorf("throughput void: %+v", r)
				}
			case "committed p50 ms":
				why = r.Void
				if r.OK() != (why != "") { // half the real p50: OFF unless void
					t.Errorf("committed p50: %+v", r)
				}
			}
		}
		return why
	}
	for _, c := range []struct {
		echo, ack int64
		want      string
	}{
		{113, 98, "1.6–2.3 times slower"},
		{20, 30, "2.0–2.5 times quicker"},
		{113, 60, ""}, // one floor off: the node's path may be, not the machine
		{74, 89, ""},  // both within 1.5
		{113, 35, ""}, // one slower, one quicker
		{0, 200, ""},  // a floor not measured
	} {
		why := void(result(c.echo, c.ack))
		if c.want == "" && why != "" || !strings.Contains(why, c.want) {
			t.Errorf("floors %d, %d µs against 50, 60: void %q, want %q", c.echo, c.ack, why, c.want)
		}
	}
	real := result(113, 98)
	rows := CompareRuns([]*reports.Result{real, result(60, 70)}, sim)
	for _, r := range rows {
		if r.Metric == "committed p50 ms" && (r.Void != "" || r.Runs != 1) {
			t.Errorf("the drifted run of two is not left out of the median: %+v", r)
		}
	}
	var b strings.Builder
	if err := WriteTable(&b, Compare(real, sim)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "echo p50 113 µs against 50, produce→ack 98 µs against 60") {
		t.Errorf("the table does not say why:\n%s", b.String())
	}
	busy := result(113, 98)
	busy.Resources = &reports.Resources{StealPercentMean: 76}
	if why := void(busy); !strings.Contains(why, "not quiet (the hypervisor stole 76% of a core)") {
		t.Errorf("a busy run's reason: %q", why)
	}
}
