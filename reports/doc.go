// Package reports records latencies in HDR histograms while a scenario runs
// and turns them into the run's report: result.json (the contract in
// docs/DESIGN.md), report.md, a self-contained report.html with gonum/plot plots
// (also written as PNG and SVG), HdrHistogram .hgrm percentile files and
// .hlog interval logs, and the summary table printed at the end of a run.
// It also compares two runs with a noise-aware verdict and samples the
// resource use of the process under test.
//
// The load generator records into a [Recorder] (cheap and safe for concurrent
// use); [Recorder.Snapshot] freezes it, [NewResult] summarises a snapshot, the
// runner fills in the rest of the [Result] (environment, floors, checker,
// SLOs, timeline, [Resources] from a [ResourceSampler]) and [Write] writes
// the chosen formats into the report folder; report.md and report.html are
// both rendered from one view model, by the templates in templates/.
// [Compare] compares two results metric by metric using their per-interval
// series, with exact Mann-Whitney p-values for short runs.
//
// The names runs are measured by are defined here once: the stages
// ([Stage]) and the SLO metric grammar ([ParseMetric], [Metric],
// [MetricName]). The scenario format uses them (a scenario's SLO becomes an
// [SLO] whose thresholds are parsed into a [Bound] each); this package
// imports nothing of it.
package reports
