package reports

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func us(n int64) time.Duration { return time.Duration(n) * time.Microsecond }

// within checks v is within HDR's 3-significant-digit precision of want.
func within(v, want int64) bool {
	return math.Abs(float64(v-want)) <= float64(want)*0.001+1
}

func TestRecorderPercentilesKnownInput(t *testing.T) {
	r := NewRecorder(RecorderOptions{Start: t0, Shards: 4})
	w := r.Workload("puts")
	// 10000 transactions sent on time, one per 100µs, reaching accepted
	// after 1..10000µs.
	for i := int64(1); i <= 10000; i++ {
		intended := t0.Add(us(i * 100))
		w.Sent(intended, intended)
		w.Record(StageAccepted, intended, intended, intended.Add(us(i)))
	}
	snap := r.Snapshot()
	res := NewResult(snap, time.Second)
	a := res.Workloads["puts"].Stages["accepted"]
	if a == nil {
		t.Fatal("no accepted stage")
	}
	if a.Count != 10000 || res.Workloads["puts"].Sent != 10000 {
		t.Errorf("count %d sent %d", a.Count, res.Workloads["puts"].Sent)
	}
	for _, c := range []struct {
		name      string
		got, want int64
	}{
		{"p50", a.Corrected.P50, 5000}, {"p90", a.Corrected.P90, 9000}, {"p99", a.Corrected.P99, 9900},
		{"p999", a.Corrected.P999, 9990}, {"max", a.Corrected.Max, 10000}, {"min", a.Corrected.Min, 1},
	} {
		if !within(c.got, c.want) {
			t.Errorf("%s = %d, want %d ± 0.1%%", c.name, c.got, c.want)
		}
	}
	if a.Uncorrected != a.Corrected {
		t.Errorf("on-time sends: uncorrected %+v differs from corrected %+v", a.Uncorrected, a.Corrected)
	}
	if math.Abs(a.Corrected.Mean-5000.5) > 5 {
		t.Errorf("mean %v", a.Corrected.Mean)
	}
	if res.Workloads["puts"].ThroughputTPS != 10000 {
		t.Errorf("throughput %v", res.Workloads["puts"].ThroughputTPS)
	}
	if res.Workloads["puts"].LagP99Us != 0 {
		t.Errorf("lag %d", res.Workloads["puts"].LagP99Us)
	}
}

func TestCorrectedNotBelowUncorrected(t *testing.T) {
	r := NewRecorder(RecorderOptions{Start: t0})
	w := r.Workload("w")
	// A 1s stall: sends intended during it go out late, all at once.
	for i := int64(0); i < 2000; i++ {
		intended := t0.Add(time.Duration(i) * time.Millisecond)
		sent := intended
		if i >= 500 && i < 1500 {
			sent = t0.Add(1500 * time.Millisecond)
		}
		w.Sent(intended, sent)
		w.Record(StageCommitted, intended, sent, sent.Add(2*time.Millisecond))
	}
	res := NewResult(r.Snapshot(), 2*time.Second)
	c := res.Workloads["w"].Stages["committed"]
	pc, pu := c.Corrected, c.Uncorrected
	for _, pair := range [][2]int64{{pc.P50, pu.P50}, {pc.P90, pu.P90}, {pc.P99, pu.P99}, {pc.P999, pu.P999}, {pc.Max, pu.Max}} {
		if pair[0] < pair[1] {
			t.Errorf("corrected %d < uncorrected %d", pair[0], pair[1])
		}
	}
	if !within(pu.P99, 2000) {
		t.Errorf("uncorrected p99 %d, want 2ms: the stall is hidden there", pu.P99)
	}
	if pc.P99 < 900_000 {
		t.Errorf("corrected p99 %d, want the ~1s stall to show", pc.P99)
	}
	if lag := res.Workloads["w"].LagP99Us; lag < 900_000 {
		t.Errorf("schedule lag p99 %d, want ~1s", lag)
	}
}

func TestRecorderWarmupErrorsIntervals(t *testing.T) {
	r := NewRecorder(RecorderOptions{Start: t0, Interval: time.Second, MaxIntervals: 3})
	w := r.Workload("w")
	before := t0.Add(-time.Second)
	w.Sent(before, before)
	w.Record(StageAccepted, before, before, t0)
	w.Error("timeout", before, t0)
	for s := 0; s < 5; s++ { // 5 seconds, 10 per second, but only 3 intervals kept
		for i := 0; i < 10; i++ {
			intended := t0.Add(time.Duration(s)*time.Second + time.Duration(i)*time.Millisecond)
			w.Sent(intended, intended)
			w.Record(StageAccepted, intended, intended, intended.Add(time.Duration(s+1)*time.Millisecond))
		}
	}
	w.Error("timeout", t0, t0.Add(1500*time.Millisecond))
	w.Error("rejected", t0, t0.Add(1500*time.Millisecond))
	w.Error("timeout", t0, t0.Add(2500*time.Millisecond))
	w.Record(StageCommitted, t0, t0, t0.Add(2*time.Hour)) // clamped
	snap := r.Snapshot()
	ws := snap.Workload("w")
	if ws.Discarded != 3 || ws.Sent != 50 || ws.Errors != 3 || ws.Clamped != 1 {
		t.Errorf("discarded %d sent %d errors %d clamped %d", ws.Discarded, ws.Sent, ws.Errors, ws.Clamped)
	}
	if ws.ErrorsByKind["timeout"] != 2 || ws.ErrorsByKind["rejected"] != 1 {
		t.Errorf("errors by kind %v", ws.ErrorsByKind)
	}
	if ws.Stages[StageAccepted].Corrected.TotalCount() != 50 {
		t.Errorf("accepted total %d", ws.Stages[StageAccepted].Corrected.TotalCount())
	}
	if got := ws.Stages[StageCommitted].Corrected.Max(); !within(got, HighestMicros) {
		t.Errorf("clamped max %d", got)
	}
	if len(ws.Intervals) != 3 {
		t.Fatalf("intervals %d, want 3", len(ws.Intervals))
	}
	for i, iv := range ws.Intervals {
		p := iv.Stages[StageAccepted]
		if iv.Sent != 10 || p.Corrected.TotalCount() != 10 || !within(p.Corrected.Max(), int64(i+1)*1000) {
			t.Errorf("interval %d: sent %d count %d max %d", i, iv.Sent, p.Corrected.TotalCount(), p.Corrected.Max())
		}
		if iv.Start != time.Duration(i)*time.Second {
			t.Errorf("interval %d starts at %s", i, iv.Start)
		}
	}
	if ws.Intervals[1].Errors != 2 || ws.Intervals[2].Errors != 1 {
		t.Errorf("interval errors %d %d", ws.Intervals[1].Errors, ws.Intervals[2].Errors)
	}
	res := NewResult(snap, 5*time.Second)
	if s := res.Workloads["w"].Series; len(s) != 3 || s[2].Stages["accepted"].Count != 10 || s[1].T != 1 {
		t.Errorf("series %+v", s)
	}
	// The snapshot is a copy: later recordings do not change it.
	w.Record(StageAccepted, t0, t0, t0.Add(time.Millisecond))
	if ws.Stages[StageAccepted].Corrected.TotalCount() != 50 {
		t.Error("snapshot changed after recording")
	}
}

func TestRecorderConcurrent(t *testing.T) {
	r := NewRecorder(RecorderOptions{Start: t0, Shards: 8})
	var wg sync.WaitGroup
	const G, N = 8, 2000
	for g := 0; g < G; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			w := r.Workload(fmt.Sprintf("w%d", g%2))
			for i := 0; i < N; i++ {
				intended := t0.Add(time.Duration(g*N+i) * time.Microsecond)
				w.Sent(intended, intended)
				w.Record(StageAccepted, intended, intended, intended.Add(time.Millisecond))
				w.Record(StageCommitted, intended, intended, intended.Add(5*time.Millisecond))
				if i%1000 == 0 {
					_ = r.Snapshot()
				}
			}
		}(g)
	}
	wg.Wait()
	snap := r.Snapshot()
	for _, ws := range snap.Workloads {
		if ws.Sent != G/2*N || ws.Stages[StageCommitted].Corrected.TotalCount() != G/2*N {
			t.Errorf("%s: sent %d committed %d", ws.Name, ws.Sent, ws.Stages[StageCommitted].Corrected.TotalCount())
		}
	}
}

// sampleResult is a filled-in result as the runner would produce it.
func sampleResult(t *testing.T) (*Result, *Snapshot) {
	t.Helper()
	r := NewRecorder(RecorderOptions{Start: t0})
	w := r.Workload("puts")
	for i := int64(1); i <= 1000; i++ {
		intended := t0.Add(us(i * 1000))
		sent := intended.Add(us(i % 7))
		w.Sent(intended, sent)
		w.Record(StageAccepted, intended, sent, sent.Add(us(500+i)))
		w.Record(StageCommitted, intended, sent, sent.Add(us(20000+10*i)))
		if i%100 == 0 {
			w.Record(StageProofVerify, intended, sent, sent.Add(us(30000+10*i)))
		}
	}
	w.Error("timeout", t0, t0.Add(time.Millisecond))
	snap := r.Snapshot()
	res := NewResult(snap, time.Second)
	res.Scenario = "default"
	res.Description = "a test | with a pipe"
	res.Seed = 42
	res.WarmupS = 5
	res.Environment = Environment{Go: "go1.26.8", GOMAXPROCS: 2, CPU: "Test CPU", OS: "linux", Arch: "amd64", NumCPU: 2, Commit: "abc123", Broker: "kfake"}
	res.Workloads["puts"].Kind, res.Workloads["puts"].Client = "put", "quic"
	res.Floors = Floors{QuicEcho: &Percentiles{P50: 80, P99: 200}, ProduceAck: &Percentiles{P50: 300, P99: 900}, ProduceCeilingTPS: 50000, MerkleCeilingWPS: 20000, VerifyCeilingTPS: 30000, Ratios: map[string]float64{"accepted.p50/quic_echo.p50": 12.5}}
	res.Checker = Checker{Accepted: 1000, Committed: 1000, RootsEqual: true, ProofsChecked: 10}
	res.SLO = res.CheckSLOs([]SLO{{Metric: "committed.p99", Max: Bound{"250ms", 250_000}}, {Metric: "lost", Max: Bound{"0", 0}}})
	res.Timeline = []TimelineResult{{At: "15s", Event: "kill node-2", Recovery: "2.1s"}}
	res.Resolved = json.RawMessage(`{"name":"default"}`)
	return res, snap
}

func TestResultJSONFieldNames(t *testing.T) {
	res, snap := sampleResult(t)
	dir := t.TempDir()
	if _, err := Write(dir, res, snap, []string{"json", "md", "hgrm", "hlog"}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, ResultFile))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	has := func(obj any, path string, keys ...string) map[string]any {
		t.Helper()
		o, ok := obj.(map[string]any)
		if !ok {
			t.Fatalf("%s is %T, not an object", path, obj)
		}
		for _, k := range keys {
			if _, ok := o[k]; !ok {
				t.Errorf("%s has no %q", path, k)
			}
		}
		return o
	}
	has(m, "result", "scenario", "seed", "environment", "workloads", "floors", "checker", "slo", "timeline")
	has(m["environment"], "environment", "go", "gomaxprocs", "cpu", "os", "commit", "broker")
	wl := has(has(m["workloads"], "workloads", "puts")["puts"], "workloads.puts", "sent", "errors", "throughput_tps", "lag_p99_us", "stages")
	stages := has(wl["stages"], "stages", "accepted", "committed")
	for _, st := range []string{"accepted", "committed"} {
		s := has(stages[st], st, "count", "corrected", "uncorrected")
		has(s["corrected"], st+".corrected", "p50_us", "p90_us", "p99_us", "p999_us", "max_us")
		has(s["uncorrected"], st+".uncorrected", "p50_us", "p90_us", "p99_us", "p999_us", "max_us")
	}
	floors := has(m["floors"], "floors", "quic_echo", "produce_ack", "produce_ceiling_tps", "merkle_ceiling_wps", "verify_ceiling_tps")
	has(floors["quic_echo"], "floors.quic_echo", "p50_us", "p99_us")
	has(floors["produce_ack"], "floors.produce_ack", "p50_us")
	has(m["checker"], "checker", "accepted", "committed", "lost", "duplicated", "roots_equal", "proofs_checked", "proofs_failed")
	slo := m["slo"].([]any)
	has(slo[0], "slo[0]", "metric", "max", "value", "ok")
	has(m["timeline"].([]any)[0], "timeline[0]", "at", "event", "recovery")
	if m["seed"] != float64(42) || m["scenario"] != "default" || m["ok"] != true {
		t.Errorf("seed %v scenario %v ok %v", m["seed"], m["scenario"], m["ok"])
	}

	// Round trip.
	back, err := ReadJSON(filepath.Join(dir, ResultFile))
	if err != nil {
		t.Fatal(err)
	}
	want := res.normalized()
	want.Files = back.Files
	wantJSON, _ := json.Marshal(want)
	gotJSON, _ := json.Marshal(back)
	if !bytes.Equal(wantJSON, gotJSON) {
		t.Errorf("round trip differs:\n got %s\nwant %s", gotJSON, wantJSON)
	}
	if len(back.Files) == 0 || back.Files[len(back.Files)-1] != ResultFile {
		t.Errorf("files %v", back.Files)
	}
}

func TestEmptyResultHasLists(t *testing.T) {
	dir := t.TempDir()
	if err := WriteJSON(dir, &Result{Scenario: "x"}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, ResultFile))
	for _, want := range []string{`"slo": []`, `"timeline": []`, `"workloads": {}`, `"ok": false`} {
		if !bytes.Contains(data, []byte(want)) {
			t.Errorf("result.json lacks %s:\n%s", want, data)
		}
	}
}

func TestSLOs(t *testing.T) {
	res, _ := sampleResult(t)
	c := res.Workloads["puts"].Stages["committed"]
	got := res.CheckSLOs([]SLO{
		{Metric: "committed.p99", Max: Bound{"250ms", 250_000}},
		{Metric: "committed.p99", Max: Bound{"1ms", 1000}},
		{Metric: "puts.accepted.max.uncorrected", Max: Bound{"2ms", 2000}},
		{Metric: "lost", Max: Bound{"0", 0}},
		{Metric: "errors", Max: Bound{"0", 0}},
		{Metric: "throughput", Min: Bound{"900/s", 900}},
		{Metric: "visible.p99", Max: Bound{"1s", 1e6}},
		{Metric: "lag.p99", Max: Bound{"1ms", 1000}},
		{Metric: "throughput", Min: Bound{"1M/s", 1e6}},
		{Metric: "commited.p99", Max: Bound{"1s", 1e6}},
	})
	wantOK := []bool{true, false, true, true, false, true, false, true, false, false}
	for i, s := range got {
		if s.OK != wantOK[i] {
			t.Errorf("slo %d %+v: ok %t, want %t", i, s, s.OK, wantOK[i])
		}
	}
	if got[0].Value != (time.Duration(c.Corrected.P99) * time.Microsecond).String() {
		t.Errorf("value %q for p99 %d", got[0].Value, c.Corrected.P99)
	}
	if got[6].Value != "n/a" || !strings.Contains(got[6].Error, "nothing reached stage visible") {
		t.Errorf("no-data SLO %+v", got[6])
	}
	if got[4].Value != "1" {
		t.Errorf("errors value %q", got[4].Value)
	}
	if got[9].Value != "n/a" || !strings.Contains(got[9].Error, "did you mean committed?") {
		t.Errorf("misspelt SLO %+v", got[9])
	}
	res.SLO = got
	if res.Passed() {
		t.Error("passed with failing SLOs")
	}
}

// Every metric ParseMetric accepts has a value here (or no data).
func TestEveryMetricHasAValue(t *testing.T) {
	res, _ := sampleResult(t)
	names := []string{"lost", "duplicated", "proofs_failed", "errors", "throughput", "puts.errors", "puts.throughput", "lag.p99", "puts.lag.max"}
	for _, st := range StageNames() {
		for _, stat := range []string{"p50", "p90", "p99", "p999", "max"} {
			names = append(names, st+"."+stat, "puts."+st+"."+stat+".uncorrected")
		}
	}
	for _, n := range names {
		m, err := ParseMetric(n)
		if err != nil {
			t.Errorf("ParseMetric rejects %q: %v", n, err)
			continue
		}
		if _, err := res.Metric(m); err != nil && !errors.Is(err, ErrNoData) {
			t.Errorf("Metric(%q): %v", n, err)
		}
	}
	for _, st := range Stages() {
		if _, err := ParseMetric(st.String() + ".p99"); err != nil {
			t.Errorf("stage %s unknown to ParseMetric", st)
		}
	}
}

func TestMarkdownContainsNumbers(t *testing.T) {
	res, snap := sampleResult(t)
	dir := t.TempDir()
	files, err := Write(dir, res, snap, []string{"md", "json"})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 {
		t.Errorf("files %v", files)
	}
	data, err := os.ReadFile(filepath.Join(dir, MarkdownFile))
	if err != nil {
		t.Fatal(err)
	}
	md := string(data)
	w := res.Workloads["puts"]
	var want []string
	for _, st := range []string{"accepted", "committed", "proof_verify"} {
		s := w.Stages[st]
		want = append(want, fmt.Sprintf("| %s | %d | %.1f | corrected | %s | %s | %s | %s | %s |", st, s.Count, s.ThroughputTPS,
			FormatMicros(s.Corrected.P50), FormatMicros(s.Corrected.P90), FormatMicros(s.Corrected.P99), FormatMicros(s.Corrected.P999), FormatMicros(s.Corrected.Max)))
		want = append(want, fmt.Sprintf("| | | | uncorrected | %s | %s | %s |", FormatMicros(s.Uncorrected.P50), FormatMicros(s.Uncorrected.P90), FormatMicros(s.Uncorrected.P99)))
	}
	want = append(want,
		"# Rustorium report: default", `a test \| with a pipe`, "**Verdict: PASS**",
		"| go1.26.8 | 2 | Test CPU (2 threads)", "abc123", "kfake",
		"| 1000 | 1000 | 0 | 0 | true | 0 | 10 | 0 |",
		"| committed.p99 | ≤ 250ms | "+res.SLO[0].Value+" | PASS |",
		"| QUIC echo RTT | 80µs | 200µs |", "| produce ceiling | | | 50000 tx/s |", "| accepted.p50/quic_echo.p50 | 12.50 |",
		"| 15s | kill node-2 | 2.1s |", "| timeout | 1 |", fmt.Sprintf("Sent %d, errors 1", w.Sent),
	)
	for _, s := range want {
		if !strings.Contains(md, s) {
			t.Errorf("report.md lacks %q", s)
		}
	}
	if t.Failed() {
		t.Log(md)
	}
}

func TestSummary(t *testing.T) {
	res, _ := sampleResult(t)
	var buf bytes.Buffer
	if err := Summary(&buf, res); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	c := res.Workloads["puts"].Stages["committed"].Corrected
	for _, s := range []string{"default  seed 42", "PASS", "committed", FormatMicros(c.P99), "checker PASS", "slo PASS: committed.p99"} {
		if !strings.Contains(out, s) {
			t.Errorf("summary lacks %q:\n%s", s, out)
		}
	}
	// Aligned: every table line has the same width.
	lines := strings.Split(out, "\n")
	defer func() {
		if t.Failed() {
			t.Log(out)
		}
	}()
	// A CPU profile's line names its largest parts first, with their µs
	// a transaction, how many it left out and what it saw; a heap
	// profile has none.
	res.Profiles = []ProfileSummary{{Kind: "heap"}, {Kind: "perf", CoveredPct: 74.2, Components: []ProfileComponent{
		{Name: "a", Value: 1, Pct: 1}, {Name: "b", Value: 6, Pct: 6, MicrosPerTx: 60}, {Name: "c", Value: 5, Pct: 5}, {Name: "d", Value: 4, Pct: 4},
		{Name: "e", Value: 3, Pct: 3}, {Name: "f", Value: 2, Pct: 2}, {Name: "g", Value: 79, Pct: 79, MicrosPerTx: 790}}}}
	buf.Reset()
	if err := Summary(&buf, res); err != nil {
		t.Fatal(err)
	}
	want := "profile perf: g 79.0% (790µs a tx), b 6.0% (60µs a tx), c 5.0%, d 4.0%, e 3.0%, 2 more parts — saw 74% of the CPU time (report.md: by part of the system)\n"
	if got := buf.String(); !strings.Contains(got, want) || strings.Contains(got, "profile heap") {
		t.Errorf("summary's profile lines, want %q:\n%s", want, got)
	}
	width := len([]rune(lines[1]))
	for _, l := range lines[2:4] {
		if len([]rune(l)) != width {
			t.Errorf("misaligned table:\n%s", out)
		}
	}
}

// writeSnapshot writes snap with write into a new temporary folder and
// returns the folder and the files written.
func writeSnapshot(t *testing.T, snap *Snapshot, write func(string, *Snapshot) ([]string, error)) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	files, err := write(dir, snap)
	if err != nil {
		t.Fatal(err)
	}
	return dir, files
}

// openTest opens path, closed when the test ends.
func openTest(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestHGRMRoundTrip(t *testing.T) {
	res, snap := sampleResult(t)
	dir, files := writeSnapshot(t, snap, WriteHGRM)
	if len(files) != 6 { // accepted, committed, proof_verify × 2 views
		t.Errorf("files %v", files)
	}
	f := openTest(t, filepath.Join(dir, HGRMName("puts", StageCommitted, true)))
	h, err := ParseHGRM(f)
	if err != nil {
		t.Fatal(err)
	}
	c := res.Workloads["puts"].Stages["committed"]
	if h.TotalCount != c.Count {
		t.Errorf("total %d, want %d", h.TotalCount, c.Count)
	}
	if got := h.ValueAt(0.99) * HGRMScale; !within(int64(math.Round(got)), c.Corrected.P99) {
		t.Errorf("p99 from .hgrm %v µs, result %d µs", got, c.Corrected.P99)
	}
	if got := h.Max * HGRMScale; !within(int64(math.Round(got)), c.Corrected.Max) {
		t.Errorf("max %v vs %d", got, c.Corrected.Max)
	}
	if h.SubBuckets != 2048 {
		t.Errorf("sub-buckets %d", h.SubBuckets)
	}
}

func TestParseHGRMRejects(t *testing.T) {
	for _, in := range []string{
		"",
		"1.0 0.5 1 2.0\n",
		"Value\tPercentile\tTotalCount\t1/(1-Percentile)\n\n1.0 0.5 1\n",
		"Value\tPercentile\tTotalCount\t1/(1-Percentile)\n\n2.0 0.5 1 2\n1.0 0.9 2 10\n#[Mean = 1, StdDeviation = 0]\n#[Max = 2, Total count = 2]\n#[Buckets = 1, SubBuckets = 2]\n",
		"Value\tPercentile\tTotalCount\t1/(1-Percentile)\n\n1.0 0.5 1 2\n#[Mean = 1, StdDeviation = 0]\n",
		"Value\tPercentile\tTotalCount\t1/(1-Percentile)\n\n1.0 1.5 1 2\n#[Mean = 1, StdDeviation = 0]\n#[Max = 2, Total count = 1]\n#[Buckets = 1, SubBuckets = 2]\n",
	} {
		if _, err := ParseHGRM(strings.NewReader(in)); !errors.Is(err, ErrFormat) {
			t.Errorf("ParseHGRM(%q) = %v", in, err)
		}
	}
}

func TestHLogReadsBack(t *testing.T) {
	_, snap := sampleResult(t)
	dir, files := writeSnapshot(t, snap, WriteHLog)
	f := openTest(t, filepath.Join(dir, files[0]))
	lr := hdr.NewHistogramLogReader(f)
	counts := map[string]int64{}
	n := 0
	for {
		h, err := lr.NextIntervalHistogram()
		if err != nil {
			t.Fatal(err)
		}
		if h == nil {
			break
		}
		n++
		counts[h.Tag()] += h.TotalCount()
	}
	ws := snap.Workload("puts")
	for _, st := range []Stage{StageAccepted, StageCommitted, StageProofVerify} {
		want := ws.Stages[st].Corrected.TotalCount()
		if counts[HLogTag(st, true)] != want || counts[HLogTag(st, false)] != want {
			t.Errorf("%s: hlog counts %d/%d, want %d", st, counts[HLogTag(st, true)], counts[HLogTag(st, false)], want)
		}
	}
	if n == 0 {
		t.Error("no intervals")
	}
}

func TestWriteUnsupported(t *testing.T) {
	res, snap := sampleResult(t)
	dir := t.TempDir()
	files, err := Write(dir, res, snap, []string{"pdf", "json"})
	if !errors.Is(err, ErrUnsupportedFormat) {
		t.Errorf("err %v", err)
	}
	if len(files) != 1 || files[0] != ResultFile {
		t.Errorf("files %v", files)
	}
	if Supported("pdf") || !Supported("hgrm") || !Supported("html") {
		t.Error("Supported is wrong")
	}
}

func TestParseJSONRejects(t *testing.T) {
	for _, in := range []string{``, `null`, `[]`, `{"workloads": {"a": null}}`, `{"workloads": {"a": {"stages": {"x": null}}}}`, `{} {}`, `{"seed": "x"}`} {
		if _, err := ParseJSON([]byte(in)); !errors.Is(err, ErrFormat) {
			t.Errorf("ParseJSON(%q) = %v", in, err)
		}
	}
}

func TestCPUInfo(t *testing.T) {
	x86 := "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\n"
	if got := parseCPUInfo(strings.NewReader(x86)); got != "Intel(R) Xeon(R) CPU @ 2.20GHz" {
		t.Errorf("x86: %q", got)
	}
	arm := "processor\t: 0\nBogoMIPS\t: 50.00\n\nHardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n"
	if got := parseCPUInfo(strings.NewReader(arm)); got != "BCM2835" {
		t.Errorf("arm: %q", got)
	}
	if got := parseMemInfo(strings.NewReader("MemTotal:       16316412 kB\nMemFree: 1 kB\n")); got != 16316412*1024 {
		t.Errorf("mem %d", got)
	}
}

func TestCollectEnvironment(t *testing.T) {
	env := CollectEnvironment(t.Context(), EnvOptions{Dir: t.TempDir(), Broker: "kfake"})
	if env.Go == "" || env.GOMAXPROCS < 1 || env.OS == "" || env.CPU == "" || env.Commit == "" || env.Broker != "kfake" {
		t.Errorf("%+v", env)
	}
}

func FuzzReadJSON(f *testing.F) {
	res, _ := sampleResult(&testing.T{})
	data, _ := json.Marshal(res.normalized())
	f.Add(data)
	f.Add([]byte(`{"scenario":"x","workloads":{"w":{"stages":{"accepted":{"count":1}}}},"slo":[{"metric":"a"}]}`))
	f.Add([]byte(`{"workloads":{"w":{"stages":{"zz":{"count":-1,"corrected":{"p50_us":-5}}}}},"timeline":[{}]}`))
	f.Add([]byte(`{"floors":{"quic_echo":null,"ratios":{"a":1e308}}}`))
	f.Add([]byte(`{"start":"not a time"}`))
	f.Add([]byte(`{"interval_s":-1,"duration_s":1e308,"workloads":{"w":{"stages":{"accepted":{"count":2,"corrected":{"p50_us":-1,"p99_us":9e18}}},"series":[{"t_s":1e308,"stages":{"accepted":{"count":1,"p99_us":-7}}},{"t_s":-1}]}},"timeline":[{"at":"1s"},{"at":"x"}],"resources":{"samples":[{"t_s":-1e308,"cpu_pct":-1}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseJSON(data)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error not ErrFormat: %v", err)
			}
			return
		}
		// Whatever parses can be reported without panicking.
		_ = Summary(io.Discard, r)
		_ = Markdown(io.Discard, r)
		_ = htmlPage(&bytes.Buffer{}, r, &plotSet{}, time.Time{})
		_, _ = figures(r, nil)
		_ = Compare(r, r, CompareOptions{Resamples: 20}).Text(io.Discard)
		_ = r.CheckSLOs([]SLO{{Metric: "committed.p99", Max: Bound{"1s", 1e6}}, {Metric: "throughput", Min: Bound{"1/s", 1}}, {Metric: "lag.p99", Max: Bound{"1s", 1e6}}})
	})
}

func FuzzParseHGRM(f *testing.F) {
	h := NewHistogram()
	for i := int64(1); i < 1000; i++ {
		_ = h.RecordValue(i * i)
	}
	var buf bytes.Buffer
	_, _ = h.PercentilesPrint(&buf, 5, HGRMScale)
	f.Add(buf.Bytes())
	f.Add([]byte("Value\n#[Mean = NaN, StdDeviation = 0]\n"))
	f.Add([]byte("Value\n1 0.5 1 inf\n#[Mean = 1, StdDeviation = 0]\n#[Max = 1, Total count = 1]\n#[Buckets = 1, SubBuckets = 1]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseHGRM(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error not ErrFormat: %v", err)
			}
			return
		}
		_ = h.ValueAt(0.99)
	})
}

// benchRecorder runs op once an iteration on a new workload recorder, the
// intended send times a microsecond apart.
func benchRecorder(b *testing.B, op func(w *WorkloadRecorder, i int, intended time.Time)) {
	w := NewRecorder(RecorderOptions{Start: t0}).Workload("w")
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		op(w, i, t0.Add(time.Duration(i)*time.Microsecond))
	}
}

func BenchmarkRecord(b *testing.B) {
	benchRecorder(b, func(w *WorkloadRecorder, i int, intended time.Time) {
		w.Record(StageAccepted, intended, intended, intended.Add(us(int64(500+i%5000))))
	})
}

func BenchmarkRecordParallel(b *testing.B) {
	for _, shards := range []int{1, 0} {
		name := "shards=1"
		if shards == 0 {
			name = "shards=default"
		}
		b.Run(name, func(b *testing.B) {
			r := NewRecorder(RecorderOptions{Start: t0, Shards: shards})
			w := r.Workload("w")
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					i++
					intended := t0.Add(time.Duration(i) * 1013 * time.Nanosecond)
					w.Record(StageCommitted, intended, intended, intended.Add(us(int64(500+i%5000))))
				}
			})
		})
	}
}

func BenchmarkSent(b *testing.B) {
	benchRecorder(b, func(w *WorkloadRecorder, i int, intended time.Time) {
		w.Sent(intended, intended.Add(us(int64(i%50))))
	})
}

func BenchmarkSnapshot(b *testing.B) {
	r := NewRecorder(RecorderOptions{Start: t0})
	w := r.Workload("w")
	for i := 0; i < 60_000; i++ {
		intended := t0.Add(time.Duration(i) * time.Millisecond)
		w.Sent(intended, intended)
		w.Record(StageAccepted, intended, intended, intended.Add(us(int64(500+i%5000))))
		w.Record(StageCommitted, intended, intended, intended.Add(us(int64(20000+i%50000))))
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = r.Snapshot()
	}
}

func TestRecorderLateCompletion(t *testing.T) {
	r := NewRecorder(RecorderOptions{Start: t0, Shards: 1})
	w := r.Workload("w")
	w.Record(StageAccepted, t0, t0, t0.Add(500*time.Millisecond))                                    // interval 0
	w.Record(StageAccepted, t0, t0, t0.Add(2500*time.Millisecond))                                   // interval 2: rotates 0 out
	w.Record(StageAccepted, t0.Add(time.Second), t0.Add(time.Second), t0.Add(1500*time.Millisecond)) // late, interval 1
	w.Record(StageAccepted, t0, t0, t0.Add(400*time.Millisecond))                                    // late, interval 0
	ws := r.Snapshot().Workload("w")
	want := []int64{2, 1, 1}
	if len(ws.Intervals) != 3 {
		t.Fatalf("intervals %d", len(ws.Intervals))
	}
	for i, iv := range ws.Intervals {
		if got := iv.Stages[StageAccepted].Corrected.TotalCount(); got != want[i] {
			t.Errorf("interval %d: %d, want %d", i, got, want[i])
		}
	}
	if got := ws.Stages[StageAccepted].Corrected.TotalCount(); got != 4 {
		t.Errorf("total %d", got)
	}
}

// TestSummaryFloors: the summary's floors line gives each round trip's p50
// idle and under the load, and each workload's accepted p50 against the
// accepted path's floor, idle and under the load; none without floors.
func TestSummaryFloors(t *testing.T) {
	res, _ := sampleResult(t)
	res.Floors = Floors{
		QuicEcho: &Percentiles{P50: 80}, ProduceAck: &Percentiles{P50: 70},
		QuicEchoLoaded: &Percentiles{P50: 300}, ProduceAckLoaded: &Percentiles{P50: 110},
		NodeBoundTPS: 9876.4,
		Ratios:       map[string]float64{"puts.accepted.p50/accepted_floor": 2.4, "puts.accepted.p50/accepted_floor_loaded": 1.18, "puts.accepted.p50/quic_echo.p50": 7.5},
	}
	var buf bytes.Buffer
	if err := Summary(&buf, res); err != nil {
		t.Fatal(err)
	}
	want := "floors: QUIC echo p50 80µs (300µs under the load); produce→ack p50 70µs (110µs under the load); puts accepted p50 2.40× echo + produce→ack + 100µs (1.18× under the load); node bound 9876 tx/s\n"
	if !strings.Contains(buf.String(), want) {
		t.Errorf("summary lacks\n%s\n%s", want, buf.String())
	}
	res.Floors = Floors{}
	buf.Reset()
	if err := Summary(&buf, res); err != nil || strings.Contains(buf.String(), "floors:") {
		t.Errorf("a floors line without floors (%v):\n%s", err, buf.String())
	}
}
