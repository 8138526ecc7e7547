package reports_test

import (
	"fmt"
	"os"
	"time"

	"github.com/rustorium/rustorium/reports"
)

// The runner's use of the package: record while the load runs, snapshot,
// summarise, fill in the rest, write the folder, print the summary.
func Example() {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rec := reports.NewRecorder(reports.RecorderOptions{Start: start})
	w := rec.Workload("puts") // keep it; its methods are the hot path
	for i := range 1000 {
		intended := start.Add(time.Duration(i) * time.Millisecond) // 1000/s open loop
		sent := intended.Add(20 * time.Microsecond)
		w.Sent(intended, sent)
		w.Record(reports.StageAccepted, intended, sent, sent.Add(800*time.Microsecond))
		w.Record(reports.StageCommitted, intended, sent, sent.Add(25*time.Millisecond))
	}

	snap := rec.Snapshot()
	res := reports.NewResult(snap, time.Second)
	res.Scenario, res.Seed = "default", 42
	res.Checker = reports.Checker{Accepted: 1000, Committed: 1000, RootsEqual: true}
	res.SLO = res.CheckSLOs([]reports.SLO{{Metric: "committed.p99", Max: reports.Bound{Text: "250ms", Value: 250_000}}})

	dir, _ := os.MkdirTemp("", "report")
	defer os.RemoveAll(dir)
	files, err := reports.Write(dir, res, snap, []string{"json", "md", "hgrm", "hlog"})
	if err != nil {
		fmt.Println(err)
	}
	fmt.Println(len(files), "files")
	_ = reports.Summary(os.Stdout, res)
	// Output:
	// 8 files
	// default  seed 42  measured 1s  PASS
	// workload  stage      count    tx/s      p50      p90      p99    p99.9      max  p99 uncorr
	// puts      accepted    1000  1000.0    820µs    820µs    820µs    820µs    820µs       800µs
	// puts      committed   1000  1000.0  25.02ms  25.02ms  25.02ms  25.02ms  25.02ms     25.01ms
	// puts: sent 1000, errors 0, throughput 1000.0 tx/s, schedule lag p99 20µs
	// checker PASS: accepted 1000, committed 1000, lost 0, duplicated 0, roots equal true, proofs 0 checked / 0 failed
	// slo PASS: committed.p99 = 25.023ms (≤ 250ms)
}
