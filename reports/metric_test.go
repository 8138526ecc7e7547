package reports

import (
	"math"
	"strings"
	"testing"
)

func TestParseMetric(t *testing.T) {
	ok := map[string]Metric{
		"lost":                              {Name: MetricLost, Kind: MetricCount},
		"committed.p99":                     {Name: "committed", Stat: "p99", Kind: MetricLatency},
		"accepted.p999.uncorrected":         {Name: "accepted", Stat: "p999", Uncorrected: true, Kind: MetricLatency},
		"puts.committed.max":                {Workload: "puts", Name: "committed", Stat: "max", Kind: MetricLatency},
		"throughput":                        {Name: MetricThroughput, Kind: MetricRate},
		"puts.errors":                       {Workload: "puts", Name: MetricErrors, Kind: MetricCount},
		"lag.p99":                           {Name: MetricLag, Stat: "p99", Kind: MetricLatency},
		"proof_verify.p50":                  {Name: "proof_verify", Stat: "p50", Kind: MetricLatency},
		"puts.proof_verify.p50.uncorrected": {Workload: "puts", Name: "proof_verify", Stat: "p50", Uncorrected: true, Kind: MetricLatency},
	}
	for in, want := range ok {
		got, err := ParseMetric(in)
		if err != nil || got != want {
			t.Errorf("ParseMetric(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "committed", "committed.p98", "puts.lost", "a.b.c.d.e", "lag", "committed.p99.corrected", ".", "b@d.errors"} {
		if _, err := ParseMetric(in); err == nil {
			t.Errorf("ParseMetric(%q) accepted", in)
		}
	}
	_, err := ParseMetric("puts.comitted.p99")
	if err == nil || !strings.Contains(err.Error(), "did you mean committed?") || !strings.Contains(err.Error(), "STAGE one of ingress, accepted, committed, visible, proof_verify, read)") {
		t.Errorf("misspelt metric: %v", err)
	}
}

func TestReservedNames(t *testing.T) {
	for _, n := range []string{"lost", "duplicated", "proofs_failed", "errors", "throughput", "lag", "ingress", "read", "proof_verify"} {
		if !IsReservedName(n) {
			t.Errorf("%q not reserved", n)
		}
	}
	for _, n := range []string{"puts", "reads", "p99", "committed2"} {
		if IsReservedName(n) {
			t.Errorf("%q reserved", n)
		}
	}
	if !IsWorkloadName("a-b_9") || IsWorkloadName("-a") || IsWorkloadName("a.b") || IsWorkloadName(strings.Repeat("a", 65)) {
		t.Error("IsWorkloadName")
	}
}

func TestStageText(t *testing.T) {
	for _, st := range Stages() {
		b, err := st.MarshalText()
		if err != nil || string(b) != st.String() {
			t.Fatalf("MarshalText(%v) = %q, %v", st, b, err)
		}
		var back Stage
		if err := back.UnmarshalText(append([]byte(" "), b...)); err != nil || back != st {
			t.Fatalf("UnmarshalText(%q) = %v, %v", b, back, err)
		}
	}
	var st Stage
	err := st.UnmarshalText([]byte("comitted"))
	if err == nil || err.Error() != `"comitted" is not a stage (want ingress, accepted, committed, visible, proof_verify or read)` {
		t.Errorf("UnmarshalText(comitted): %v", err)
	}
	if _, err := Stage(NumStages).MarshalText(); err == nil {
		t.Error("MarshalText of an unknown stage")
	}
}

func TestSLOBounds(t *testing.T) {
	lo, hi := SLO{Metric: "committed.p99", Max: Bound{"250ms", 250_000}}.bounds()
	if hi != 250_000 || !math.IsInf(lo, -1) {
		t.Errorf("max only: %v %v", lo, hi)
	}
	lo, hi = SLO{Metric: "lost", Max: Bound{"0", 0}, Min: Bound{"0", 0}}.bounds()
	if lo != 0 || hi != 0 {
		t.Errorf("both zero: %v %v", lo, hi)
	}
	lo, hi = SLO{Metric: "throughput", Min: Bound{"1/s", 1}}.bounds()
	if lo != 1 || !math.IsInf(hi, 1) {
		t.Errorf("min only: %v %v", lo, hi)
	}
}
