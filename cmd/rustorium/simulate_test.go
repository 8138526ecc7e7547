package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rustorium/rustorium/calib"
	"github.com/rustorium/rustorium/reports"
)

func execRoot(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func TestCalibrateQuickThenSimulate(t *testing.T) {
	dir := t.TempDir()
	cal := filepath.Join(dir, "calib", "here", "calib.json") // its directory made
	if out, err := execRoot(t, "calibrate", "--quick", "--out", cal); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if _, err := calib.Load(cal); err != nil {
		t.Fatal(err)
	}
	sc := filepath.Join(dir, "s.yaml")
	if err := os.WriteFile(sc, []byte("name: s\nwarmup: 200ms\nduration: 1s\ndrain: 1s\ncluster: {nodes: 3}\nworkload:\n  - {name: puts, kind: put, rate: 200/s}\nreport: {formats: [json, md]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := execRoot(t, "simulate", sc, "--calib", cal, "--out", filepath.Join(dir, "out"))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "bottleneck:") {
		t.Fatalf("no bottleneck line:\n%s", out)
	}
	res, err := reports.ReadJSON(filepath.Join(dir, "out", "result.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Simulated || res.Calibration == nil || res.Calibration.File != cal || res.Simulation == nil {
		t.Fatalf("result: simulated %v, calibration %+v", res.Simulated, res.Calibration)
	}
	md, err := os.ReadFile(filepath.Join(dir, "out", "report.md"))
	if err != nil || !bytes.Contains(md, []byte("## Simulation")) {
		t.Fatalf("report.md: %v", err)
	}
	// Against itself every figure is within its tolerance; against a run
	// with another throughput it is off (exit 3).
	if out, err := execRoot(t, "simulate", sc, "--calib", cal, "--out", filepath.Join(dir, "again"), "--against", filepath.Join(dir, "out")); err != nil {
		t.Fatalf("against itself: %v\n%s", err, out)
	}
	// Against two runs (the same one twice) the table shows their range.
	if out, err := execRoot(t, "simulate", sc, "--calib", cal, "--out", filepath.Join(dir, "twice"), "--against", filepath.Join(dir, "out"), "--against", filepath.Join(dir, "out", "result.json")); err != nil || !strings.Contains(out, "real range") {
		t.Fatalf("against two runs: %v\n%s", err, out)
	}
	res.Workloads["puts"].Stages["committed"].ThroughputTPS *= 3
	other := filepath.Join(dir, "other")
	if err := reports.WriteJSON(other, res); err != nil {
		t.Fatal(err)
	}
	_, err = execRoot(t, "simulate", sc, "--calib", cal, "--out", filepath.Join(dir, "third"), "--against", other)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 3 {
		t.Fatalf("against another run: %v", err)
	}
}

// TestSpansOfOlderRuns: a real result written before traces.spans gets
// them from the traces.json beside it; one whose traces.json is gone gets
// none, and no error; a broken one is an error.
func TestSpansOfOlderRuns(t *testing.T) {
	dir := t.TempDir()
	line := `{"resourceSpans":[{"resource":{},"scopeSpans":[{"scope":{},"spans":[` +
		`{"traceId":"0123456789abcdef0123456789abcdef","spanId":"0000000000000001","name":"tx","startTimeUnixNano":"1000000","endTimeUnixNano":"9000000"},` +
		`{"traceId":"0123456789abcdef0123456789abcdef","spanId":"0000000000000002","parentSpanId":"0000000000000001","name":"client.send","startTimeUnixNano":"1000000","endTimeUnixNano":"1700000"}]}]}]}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, "traces.json"), []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &reports.Result{Traces: &reports.Traces{File: "traces.json", Count: 1}}
	if err := spansOf(r, dir); err != nil {
		t.Fatal(err)
	}
	if got := r.Traces.Spans; len(got) != 2 || got[1] != (reports.SpanStat{Span: "client.send", Count: 1, P50Us: 700, P99Us: 700}) {
		t.Fatalf("spans %+v", got)
	}
	gone := &reports.Result{Traces: &reports.Traces{File: "traces.json"}}
	if err := spansOf(gone, t.TempDir()); err != nil || gone.Traces.Spans != nil {
		t.Fatalf("without traces.json: %v, %+v", err, gone.Traces.Spans)
	}
	if err := os.WriteFile(filepath.Join(dir, "traces.json"), []byte("{not json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := spansOf(&reports.Result{Traces: &reports.Traces{File: "traces.json"}}, dir); err == nil {
		t.Fatal("a broken traces.json: no error")
	}
}
