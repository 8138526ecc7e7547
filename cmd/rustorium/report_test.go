package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rustorium/rustorium/reports"
)

// runReport runs `report args...` in process.
func runReport(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newReportCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

// writeRun writes a 30-interval result whose committed latencies are noisy
// around 25ms/40ms times scale, and returns its report folder.
func writeRun(t *testing.T, seed uint64, scale float64) string {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	r := &reports.Result{Scenario: "default", Seed: 42, IntervalS: 1, DurationS: 30, Workloads: map[string]*reports.WorkloadResult{}}
	w := &reports.WorkloadResult{Sent: 30000, ThroughputTPS: 1000}
	for i := range 30 {
		f := math.Exp(rng.NormFloat64()*0.2) * scale
		w.Series = append(w.Series, reports.IntervalResult{T: float64(i), Sent: 1000, Stages: map[string]reports.IntervalStageResult{
			"committed": {Count: 1000, P50: int64(25000 * f), P99: int64(40000 * f)},
		}})
	}
	w.Stages = map[string]*reports.StageResult{"committed": {Count: 30000, ThroughputTPS: 1000,
		Corrected: reports.Percentiles{P50: int64(25000 * scale), P99: int64(40000 * scale)}}}
	r.Workloads["puts"] = w
	dir := t.TempDir()
	if err := reports.WriteJSON(dir, r); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestReportCompare(t *testing.T) {
	base := writeRun(t, 1, 1)
	same := filepath.Join(writeRun(t, 1, 1), reports.ResultFile)
	doubled := writeRun(t, 1, 2)

	out, err := runReport(t, "compare", base, same)
	if err != nil {
		t.Fatalf("identical runs: %v\n%s", err, out)
	}
	if !strings.Contains(out, "no confident regression") || !strings.Contains(out, "committed  p99") {
		t.Errorf("output:\n%s", out)
	}

	out, err = runReport(t, "compare", base, doubled)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitRegression {
		t.Fatalf("doubled latency: err %v, want exit status 3\n%s", err, out)
	}
	if !strings.Contains(out, "REGRESSION in 2 metric(s): puts.committed.p50, puts.committed.p99") {
		t.Errorf("output:\n%s", out)
	}

	out, err = runReport(t, "compare", "--format", "md", base, doubled)
	if !errors.As(err, &ee) || !strings.Contains(out, "| puts | committed | p99 |") {
		t.Errorf("md: %v\n%s", err, out)
	}

	out, err = runReport(t, "compare", "--format", "json", doubled, base)
	if err != nil {
		t.Fatalf("halved latency: %v", err)
	}
	var c reports.Comparison
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if len(c.Rows) != 3 || c.Rows[1].Verdict != reports.VerdictBetter || c.Rows[1].Metric != "p99" {
		t.Errorf("rows %+v", c.Rows)
	}
}

func TestReportCompareBadInput(t *testing.T) {
	base := writeRun(t, 1, 1)
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"workloads": {"w": null}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"compare", base, bad},
		{"compare", base, filepath.Join(t.TempDir(), "missing.json")},
		{"compare", "--format", "xml", base, base},
		{"compare", "--confidence", "1.5", base, base},
		{"compare", "--min-effect", "-1", base, base},
		{"compare", base},
	} {
		_, err := runReport(t, args...)
		var ee *exitError
		if err == nil || errors.As(err, &ee) {
			t.Errorf("%v: err %v, want a plain error", args, err)
		}
	}
	if _, err := runReport(t, "compare", base, bad); !errors.Is(err, reports.ErrFormat) {
		t.Errorf("bad file: %v, want ErrFormat", err)
	}
}
