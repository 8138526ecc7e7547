package reports

import (
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"

	"github.com/rustorium/rustorium/internal/editdist"
)

// MetricKind is what a metric measures, which sets how its threshold is
// written and in what unit values are compared.
type MetricKind int

// Metric kinds.
const (
	MetricLatency MetricKind = iota + 1 // a duration; values in microseconds
	MetricCount                         // a whole number
	MetricRate                          // N/s; values per second
)

// MetricName is the name of an SLO metric that is not a stage's latency
// (those are named by their Stage).
type MetricName string

// Metric names besides the stages.
const (
	MetricLost         MetricName = "lost"          // Checker.Lost
	MetricDuplicated   MetricName = "duplicated"    // Checker.Duplicated
	MetricProofsFailed MetricName = "proofs_failed" // Checker.ProofsFailed
	MetricErrors       MetricName = "errors"        // a workload's errors, summed over workloads
	MetricThroughput   MetricName = "throughput"    // a workload's throughput, summed over workloads
	MetricLag          MetricName = "lag"           // a workload's send lag, worst over workloads
)

// checkerMetrics are the metrics of the whole run, never of a workload.
var checkerMetrics = []MetricName{MetricLost, MetricDuplicated, MetricProofsFailed}

// metricNames are the names besides the stages, in the order the grammar
// lists them.
var metricNames = append(checkerMetrics[:len(checkerMetrics):len(checkerMetrics)], MetricErrors, MetricThroughput, MetricLag)

// latencyStats are the statistics a latency metric may take.
var latencyStats = []string{"p50", "p90", "p99", "p999", "max"}

// Metric is a parsed SLO metric name.
type Metric struct {
	Workload    string     // "" for all workloads (or the checker)
	Name        MetricName // a stage's name, or one of the Metric names
	Stat        string     // p50, p90, p99, p999 or max, for latencies
	Uncorrected bool       // the uncorrected view of a stage latency
	Kind        MetricKind
}

var workloadNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// IsWorkloadName reports whether s may name a workload: a letter or digit,
// then at most 63 letters, digits, '_' or '-'.
func IsWorkloadName(s string) bool { return workloadNameRE.MatchString(s) }

// IsReservedName reports whether s is a word of SLO metric names (a metric
// name or a stage), which a workload may not be called.
func IsReservedName(s string) bool { return isStage(s) || isMetricName(s) }

func isMetricName(s string) bool {
	for _, n := range metricNames {
		if string(n) == s {
			return true
		}
	}
	return false
}

func has(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// metricError is ParseMetric's error for s, with a hint when a part of s
// is a near miss of a known word.
func metricError(s string) error {
	hint := ""
	words := append(names(metricNames), StageNames()...)
	for _, p := range strings.Split(s, ".") {
		for _, w := range words {
			if d := editdist.Distance(p, w); d > 0 && d < 3 {
				hint = fmt.Sprintf("; did you mean %s?", w)
			}
		}
	}
	return fmt.Errorf("%q is not a metric (want lost, duplicated, proofs_failed, [WORKLOAD.]errors, [WORKLOAD.]throughput, [WORKLOAD.]lag.p99 or [WORKLOAD.]STAGE.p99[.uncorrected] with STAGE one of %s)%s", s, strings.Join(StageNames(), ", "), hint)
}

// ParseMetric parses an SLO metric name: "lost", "duplicated",
// "proofs_failed", "errors", "throughput", "lag.STAT" or "STAGE.STAT" with
// STAT one of p50, p90, p99, p999, max and an optional ".uncorrected"; all
// but the checker's may be prefixed with "WORKLOAD." to look at one
// workload.
func ParseMetric(s string) (Metric, error) {
	parts := strings.Split(s, ".")
	if len(parts) == 1 && has(names(checkerMetrics), parts[0]) {
		return Metric{Name: MetricName(parts[0]), Kind: MetricCount}, nil
	}
	var m Metric
	if len(parts) > 1 && !isStage(parts[0]) && parts[0] != string(MetricLag) && parts[0] != string(MetricErrors) && parts[0] != string(MetricThroughput) {
		m.Workload, parts = parts[0], parts[1:]
		if !IsWorkloadName(m.Workload) {
			return Metric{}, metricError(s)
		}
	}
	switch {
	case len(parts) == 1 && parts[0] == string(MetricErrors):
		m.Name, m.Kind = MetricErrors, MetricCount
	case len(parts) == 1 && parts[0] == string(MetricThroughput):
		m.Name, m.Kind = MetricThroughput, MetricRate
	case len(parts) == 2 && parts[0] == string(MetricLag) && has(latencyStats, parts[1]):
		m.Name, m.Stat, m.Kind = MetricLag, parts[1], MetricLatency
	case (len(parts) == 2 || len(parts) == 3 && parts[2] == "uncorrected") && isStage(parts[0]) && has(latencyStats, parts[1]):
		m.Name, m.Stat, m.Kind = MetricName(parts[0]), parts[1], MetricLatency
		m.Uncorrected = len(parts) == 3
	default:
		return Metric{}, metricError(s)
	}
	return m, nil
}

func names(ns []MetricName) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = string(n)
	}
	return out
}

// formatMetric writes a metric value of the given kind the way SLO
// thresholds are written: a duration for latencies (v in microseconds), a
// rate with one decimal, a whole number for counts.
func formatMetric(kind MetricKind, v float64) string {
	switch kind {
	case MetricLatency:
		return (time.Duration(v) * time.Microsecond).String()
	case MetricRate:
		return fmt.Sprintf("%.1f/s", v)
	}
	return fmt.Sprintf("%d", int64(v))
}

// Bound is one side of an SLO: the threshold as written (for the report)
// and its value in the metric's unit (microseconds for latencies, a count,
// or per second). The zero Bound is unset.
type Bound struct {
	Text  string
	Value float64
}

// IsZero reports whether b is unset.
func (b Bound) IsZero() bool { return b.Text == "" }

// SLO is an assertion on a metric of a Result: the metric's name (see
// ParseMetric) and its bounds, at least one of them set. The scenario
// format writes and parses the thresholds; reports evaluates them.
type SLO struct {
	Metric string
	Max    Bound // the highest passing value
	Min    Bound // the lowest passing value
}

// bounds returns the SLO's bounds; an unset one is +Inf (max) or -Inf (min).
func (slo SLO) bounds() (lo, hi float64) {
	lo, hi = math.Inf(-1), math.Inf(1)
	if !slo.Max.IsZero() {
		hi = slo.Max.Value
	}
	if !slo.Min.IsZero() {
		lo = slo.Min.Value
	}
	return lo, hi
}
