package reports

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// seriesRun builds a result of n one-second intervals of workload "puts"
// with accepted and committed stages whose interval p50/p99 come from the
// given functions (µs) and whose throughput is tps per second.
func seriesRun(n int, tps float64, accepted, committed func(i int) (p50, p99 int64)) *Result {
	r := &Result{Scenario: "s", IntervalS: 1, DurationS: float64(n), Workloads: map[string]*WorkloadResult{}}
	w := &WorkloadResult{Stages: map[string]*StageResult{}}
	var sumA, sumC [2]float64
	for i := range n {
		a50, a99 := accepted(i)
		c50, c99 := committed(i)
		sumA[0], sumA[1] = sumA[0]+float64(a50), sumA[1]+float64(a99)
		sumC[0], sumC[1] = sumC[0]+float64(c50), sumC[1]+float64(c99)
		w.Series = append(w.Series, IntervalResult{T: float64(i), Sent: int64(tps), Stages: map[string]IntervalStageResult{
			"accepted":  {Count: int64(tps), P50: a50, P99: a99},
			"committed": {Count: int64(tps), P50: c50, P99: c99},
		}})
	}
	// A partial interval past the measured window, which Compare ignores.
	w.Series = append(w.Series, IntervalResult{T: float64(n), Stages: map[string]IntervalStageResult{"committed": {Count: 3, P50: 1e6, P99: 1e7}}})
	fn := float64(n)
	w.Stages["accepted"] = &StageResult{Count: int64(tps * fn), ThroughputTPS: tps, Corrected: Percentiles{P50: int64(sumA[0] / fn), P99: int64(sumA[1] / fn)}}
	w.Stages["committed"] = &StageResult{Count: int64(tps * fn), ThroughputTPS: tps, Corrected: Percentiles{P50: int64(sumC[0] / fn), P99: int64(sumC[1] / fn)}}
	r.Workloads["puts"] = w
	return r
}

// noisy returns interval latencies drawn around the given medians with a
// log-normal spread sigma.
func noisy(seed uint64, p50, p99 float64, sigma float64) func(int) (int64, int64) {
	rng := rand.New(rand.NewPCG(seed, 11))
	return func(int) (int64, int64) {
		f := math.Exp(rng.NormFloat64() * sigma)
		g := math.Exp(rng.NormFloat64() * sigma)
		return int64(p50 * f), int64(p99 * g)
	}
}

func scaled(f func(int) (int64, int64), k float64) func(int) (int64, int64) {
	return func(i int) (int64, int64) {
		a, b := f(i)
		return int64(float64(a) * k), int64(float64(b) * k)
	}
}

func verdicts(c *Comparison) map[string]Verdict {
	m := map[string]Verdict{}
	for _, r := range c.Rows {
		m[r.Stage+"."+r.Metric] = r.Verdict
	}
	return m
}

func TestCompareIdenticalRuns(t *testing.T) {
	run := seriesRun(30, 1000, noisy(1, 2000, 5000, 0.2), noisy(2, 25000, 40000, 0.2))
	c := Compare(run, run, CompareOptions{})
	if c.Regressed() {
		t.Fatalf("identical runs regressed: %+v", c.Regressions())
	}
	if len(c.Rows) != 6 {
		t.Fatalf("%d rows", len(c.Rows))
	}
	for _, r := range c.Rows {
		if r.Verdict != VerdictSame || r.Change != 0 || r.Low > 0 || r.High < 0 || r.P != 1 || r.NBase != 30 {
			t.Errorf("%+v", r)
		}
	}
}

func TestCompareDoubledLatency(t *testing.T) {
	acc, com := noisy(1, 2000, 5000, 0.2), noisy(2, 25000, 40000, 0.2)
	base := seriesRun(30, 1000, acc, com)
	head := seriesRun(30, 1000, scaled(noisy(1, 2000, 5000, 0.2), 2), scaled(noisy(2, 25000, 40000, 0.2), 2))
	c := Compare(base, head, CompareOptions{})
	v := verdicts(c)
	for _, k := range []string{"accepted.p50", "accepted.p99", "committed.p50", "committed.p99"} {
		if v[k] != VerdictWorse {
			t.Errorf("%s: %s, want worse", k, v[k])
		}
	}
	for _, k := range []string{"accepted.throughput", "committed.throughput"} {
		if v[k] != VerdictSame {
			t.Errorf("%s: %s, want same", k, v[k])
		}
	}
	if !c.Regressed() || len(c.Regressions()) != 4 {
		t.Errorf("regressions %+v", c.Regressions())
	}
	for _, r := range c.Regressions() {
		if math.Abs(r.Change-1) > 0.01 || r.Low < 0.5 || r.High > 1.6 || r.PAdjusted > 1e-6 {
			t.Errorf("doubling measured as %+v", r)
		}
	}
	// And the other way round it is better.
	back := Compare(head, base, CompareOptions{})
	if back.Regressed() || verdicts(back)["committed.p99"] != VerdictBetter {
		t.Errorf("halved latency: %v", verdicts(back))
	}
}

func TestCompareThroughputDrop(t *testing.T) {
	lat := func(int) (int64, int64) { return 1000, 2000 }
	base := seriesRun(20, 1000, lat, lat)
	head := seriesRun(20, 700, lat, lat)
	// Make the throughput per interval vary a little.
	for i := range head.Workloads["puts"].Series[:20] {
		s := head.Workloads["puts"].Series[i].Stages["committed"]
		s.Count += int64(i % 5)
		head.Workloads["puts"].Series[i].Stages["committed"] = s
	}
	v := verdicts(Compare(base, head, CompareOptions{}))
	if v["committed.throughput"] != VerdictWorse || v["committed.p99"] != VerdictSame {
		t.Errorf("%v", v)
	}
}

// Two runs drawn from the same wide distribution are not a confident
// regression, and a real but small shift inside heavy noise is not one
// either.
func TestCompareNoisyOverlapping(t *testing.T) {
	worse, rows := 0, 0
	for seed := uint64(1); seed <= 40; seed++ {
		base := seriesRun(20, 1000, noisy(seed, 2000, 8000, 0.6), noisy(seed+100, 25000, 90000, 0.6))
		head := seriesRun(20, 1000, noisy(seed+200, 2000, 8000, 0.6), noisy(seed+300, 25000, 90000, 0.6))
		c := Compare(base, head, CompareOptions{})
		for _, r := range c.Rows {
			rows++
			if r.Verdict == VerdictWorse {
				worse++
			}
		}
		if seed == 1 && c.Regressed() {
			t.Errorf("seed 1: %+v", c.Regressions())
		}
	}
	if float64(worse) > 0.05*float64(rows) {
		t.Errorf("%d of %d rows of same-distribution runs called worse", worse, rows)
	}
	t.Logf("same distribution: %d of %d rows worse", worse, rows)

	base := seriesRun(15, 1000, noisy(7, 2000, 8000, 0.6), noisy(8, 25000, 90000, 0.6))
	head := seriesRun(15, 1000, scaled(noisy(9, 2000, 8000, 0.6), 1.08), scaled(noisy(10, 25000, 90000, 0.6), 1.08))
	c := Compare(base, head, CompareOptions{})
	if c.Regressed() {
		t.Errorf("8%% shift in 60%% noise called a regression: %+v", c.Regressions())
	}
	for _, r := range c.Rows {
		if r.Verdict == VerdictBetter || r.Verdict == VerdictWorse {
			t.Errorf("%s.%s: %s (%+v)", r.Stage, r.Metric, r.Verdict, r)
		}
	}
}

func TestCompareMissingData(t *testing.T) {
	lat := func(int) (int64, int64) { return 1000, 2000 }
	base := seriesRun(3, 1000, lat, lat) // too short
	head := seriesRun(30, 1000, lat, lat)
	head.Workloads["extra"] = &WorkloadResult{Stages: map[string]*StageResult{}}
	delete(head.Workloads["puts"].Stages, "accepted")
	c := Compare(base, head, CompareOptions{})
	if c.Regressed() {
		t.Error("regressed")
	}
	notes := map[string]string{}
	for _, r := range c.Rows {
		if r.Verdict != VerdictInconclusive {
			t.Errorf("%+v", r)
		}
		notes[r.Workload+"."+r.Stage+"."+r.Metric] = r.Note
	}
	if notes["extra.-.-"] != "only in head" || notes["puts.accepted.p50"] != "only in base" || !strings.HasPrefix(notes["puts.committed.p99"], "too few intervals (3, 30") {
		t.Errorf("notes %v", notes)
	}
	// Without series at all nothing can be said.
	for _, w := range base.Workloads {
		w.Series = nil
	}
	if c := Compare(base, base, CompareOptions{}); c.Regressed() || verdicts(c)["committed.p99"] != VerdictInconclusive {
		t.Errorf("no series: %v", verdicts(c))
	}
}

// exactP is the exact two-sided Mann-Whitney p-value by enumeration: twice
// the share of the C(n1+n2, n1) ways to draw a's ranks (midranks for ties)
// whose U is at most the smaller of the observed U and its mirror, capped
// at 1.
func exactP(a, b []float64) float64 {
	all := append(append([]float64(nil), a...), b...)
	rank := make([]float64, len(all))
	for i, x := range all {
		for _, y := range all {
			if y < x {
				rank[i]++
			} else if y == x {
				rank[i] += 0.5
			}
		}
		rank[i] += 0.5 // midrank, counting from 1
	}
	n1, n2 := len(a), len(b)
	u := func(r1 float64) float64 { return r1 - float64(n1*(n1+1))/2 }
	var r1 float64
	for i := range a {
		r1 += rank[i]
	}
	obs := math.Min(u(r1), float64(n1*n2)-u(r1))
	var total, below int
	var walk func(from, left int, sum float64)
	walk = func(from, left int, sum float64) {
		if left == 0 {
			total++
			if u(sum) <= obs+1e-9 {
				below++
			}
			return
		}
		for i := from; i <= len(all)-left; i++ {
			walk(i+1, left-1, sum+rank[i])
		}
	}
	walk(0, n1, 0)
	return math.Min(1, 2*float64(below)/float64(total))
}

// The p-values are exact at small n: two fully separated samples of 5 can
// be drawn 2 ways out of C(10, 5) = 252 (two-sided), which the normal
// approximation put at 0.0122.
func TestMannWhitneyP(t *testing.T) {
	for _, c := range []struct {
		a, b []float64
		want float64
	}{
		{[]float64{1, 2, 3, 4, 5}, []float64{6, 7, 8, 9, 10}, 2.0 / 252},
		{[]float64{6, 7, 8, 9, 10}, []float64{1, 2, 3, 4, 5}, 2.0 / 252},
		{[]float64{1, 2, 3, 4, 5}, []float64{1, 2, 3, 4, 5}, 1},
		{[]float64{1, 1, 1}, []float64{1, 1}, 1},
		{nil, []float64{1, 2}, 1},
		// One swap: U = 1, P(U ≤ 1) = 2/252.
		{[]float64{1, 2, 3, 4, 6}, []float64{5, 7, 8, 9, 10}, 4.0 / 252},
		// With ties.
		{[]float64{1, 2, 2, 3}, []float64{3, 4, 5}, exactP([]float64{1, 2, 2, 3}, []float64{3, 4, 5})},
		{[]float64{10, 20, 20, 30, 30}, []float64{20, 30, 40, 40, 50, 60}, exactP([]float64{10, 20, 20, 30, 30}, []float64{20, 30, 40, 40, 50, 60})},
	} {
		if got := mannWhitneyP(c.a, c.b); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("p(%v, %v) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
	if got := exactP([]float64{1, 2, 3, 4, 5}, []float64{6, 7, 8, 9, 10}); math.Abs(got-2.0/252) > 1e-12 {
		t.Fatalf("exactP = %v, the enumeration is wrong", got)
	}
}

// Five intervals per run are enough for a verdict now that p is exact:
// accepted.p50 doubled in every interval gives p = 2/252, 6 metrics × 2/252
// = 0.048 after Holm, under α = 0.05.
func TestCompareFiveIntervals(t *testing.T) {
	acc, com := noisy(1, 2000, 5000, 0.05), noisy(2, 25000, 40000, 0.05)
	base := seriesRun(5, 1000, acc, com)
	head := seriesRun(5, 1000, scaled(noisy(1, 2000, 5000, 0.05), 2), noisy(2, 25000, 40000, 0.05))
	c := Compare(base, head, CompareOptions{})
	for _, r := range c.Rows {
		if r.Stage == "accepted" && r.Metric == MetricP50 {
			if math.Abs(r.P-2.0/252) > 1e-12 || math.Abs(r.PAdjusted-6*2.0/252) > 1e-12 || r.Verdict != VerdictWorse {
				t.Errorf("accepted.p50: %+v", r)
			}
		}
	}
}

func TestComparisonTables(t *testing.T) {
	base := seriesRun(30, 1000, noisy(1, 2000, 5000, 0.2), noisy(2, 25000, 40000, 0.2))
	head := seriesRun(30, 1000, scaled(noisy(1, 2000, 5000, 0.2), 2), noisy(2, 25000, 40000, 0.2))
	base.Environment.Commit, head.Environment.Commit = "aaaaaaaaaaaaaaaaaa", "bbbb"
	c := Compare(base, head, CompareOptions{})
	var txt, md bytes.Buffer
	if err := c.Text(&txt); err != nil {
		t.Fatal(err)
	}
	if err := c.Markdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"base s@aaaaaaaaaaaa  vs  head s@bbbb", "95% CI", "WORSE", "REGRESSION in 2 metric(s): puts.accepted.p50, puts.accepted.p99", "same"} {
		if !strings.Contains(txt.String(), s) {
			t.Errorf("text lacks %q:\n%s", s, txt.String())
		}
	}
	for _, s := range []string{"| workload | stage | metric |", "|---|", "**WORSE**", "**REGRESSION in 2 metric(s)"} {
		if !strings.Contains(md.String(), s) {
			t.Errorf("markdown lacks %q:\n%s", s, md.String())
		}
	}
	// The same inputs give the same table (seeded bootstrap).
	var again bytes.Buffer
	_ = Compare(base, head, CompareOptions{}).Text(&again)
	if again.String() != txt.String() {
		t.Error("comparison not deterministic")
	}
}

func BenchmarkCompare(b *testing.B) {
	base := seriesRun(60, 1000, noisy(1, 2000, 5000, 0.3), noisy(2, 25000, 40000, 0.3))
	head := seriesRun(60, 1000, noisy(3, 2000, 5000, 0.3), noisy(4, 25000, 40000, 0.3))
	for b.Loop() {
		_ = Compare(base, head, CompareOptions{})
	}
}

// The comparison says when the runs' machines differ or one was busy, and
// the notes reach the text; they do not change the verdicts.
func TestCompareMachineNotes(t *testing.T) {
	base := seriesRun(20, 1000, noisy(1, 2000, 5000, 0.2), noisy(2, 25000, 40000, 0.2))
	head := seriesRun(20, 1000, noisy(3, 2000, 5000, 0.2), noisy(4, 25000, 40000, 0.2))
	if c := Compare(base, head, CompareOptions{}); len(c.Notes) != 0 {
		t.Fatalf("notes for like machines: %q", c.Notes)
	}
	base.Environment.CPU, head.Environment.CPU = "AMD EPYC", "Intel(R) Xeon(R) Processor"
	head.Resources = &Resources{OtherCPUPercentMean: 60, StealPercentMean: 1}
	c := Compare(base, head, CompareOptions{})
	if len(c.Notes) != 2 || !strings.Contains(c.Notes[0], "base ran on AMD EPYC, head on Intel") ||
		!strings.Contains(c.Notes[1], "head's machine was not quiet (other processes used 60% of a core, the hypervisor stole 1% of a core)") {
		t.Fatalf("notes %q", c.Notes)
	}
	if c.Regressed() {
		t.Errorf("like runs regressed: %+v", c.Regressions())
	}
	var text, md strings.Builder
	if err := c.Text(&text); err != nil || !strings.Contains(text.String(), "note: head's machine was not quiet") {
		t.Errorf("text %q, %v", text.String(), err)
	}
	if err := c.Markdown(&md); err != nil || !strings.Contains(md.String(), "- note: base ran on AMD EPYC") {
		t.Errorf("markdown %q, %v", md.String(), err)
	}
}

// TestCompareBusyHeadIsNotARegression: doubled latencies measured on a
// machine that was not quiet are inconclusive, not a regression (the same
// runs on a quiet machine are); a throughput drop on such a machine is
// still one.
func TestCompareBusyHeadIsNotARegression(t *testing.T) {
	base := seriesRun(30, 1000, noisy(1, 2000, 5000, 0.2), noisy(2, 25000, 40000, 0.2))
	head := seriesRun(30, 1000, scaled(noisy(1, 2000, 5000, 0.2), 2), scaled(noisy(2, 25000, 40000, 0.2), 2))
	if !Compare(base, head, CompareOptions{}).Regressed() {
		t.Fatal("doubled latencies on a quiet machine: no regression")
	}
	head.Resources = &Resources{StealPercentMean: 60}
	c := Compare(base, head, CompareOptions{})
	if c.Regressed() {
		t.Fatalf("doubled latencies with 60%% of a core stolen regressed: %+v", c.Regressions())
	}
	for _, k := range []string{"accepted.p50", "accepted.p99", "committed.p50", "committed.p99"} {
		if r := row(c, k); r.Verdict != VerdictInconclusive || r.Note != "worse, but head's machine was not quiet" {
			t.Errorf("%s: %+v", k, r)
		}
	}
	lat := func(int) (int64, int64) { return 1000, 2000 }
	slow := seriesRun(20, 700, lat, lat)
	for i := range slow.Workloads["puts"].Series[:20] {
		s := slow.Workloads["puts"].Series[i].Stages["committed"]
		s.Count += int64(i % 5)
		slow.Workloads["puts"].Series[i].Stages["committed"] = s
	}
	slow.Resources = &Resources{OtherCPUPercentMean: 80}
	if v := verdicts(Compare(seriesRun(20, 1000, lat, lat), slow, CompareOptions{})); v["committed.throughput"] != VerdictWorse {
		t.Errorf("a throughput drop on a busy machine: %v", v)
	}
}

func row(c *Comparison, key string) ComparisonRow {
	for _, r := range c.Rows {
		if r.Stage+"."+r.Metric == key {
			return r
		}
	}
	return ComparisonRow{}
}
