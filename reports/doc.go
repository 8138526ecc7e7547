// Package reports records latencies in HDR histograms while a scenario runs
// and turns them into the run's report: result.json (the contract in
// DESIGN.md), report.md, HdrHistogram .hgrm percentile files and .hlog
// interval logs, and the summary table printed at the end of a run.
//
// The load generator records into a [Recorder] (cheap and safe for concurrent
// use); [Recorder.Snapshot] freezes it, [NewResult] summarises a snapshot, the
// runner fills in the rest of the [Result] (environment, floors, checker,
// SLOs, timeline) and [Write] writes the chosen formats into the report folder.
package reports
