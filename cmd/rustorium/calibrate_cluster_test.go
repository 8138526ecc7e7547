package main

import (
	"errors"
	"math"
	"testing"

	"github.com/rustorium/rustorium/node/tracing"
	"github.com/rustorium/rustorium/reports"
)

// fakeCluster is a model whose quorum median grows with the hand-off as
// a stretched hop does, with a floor the hand-off does not touch; it
// counts its simulations.
type fakeCluster struct {
	floor, stretch float64
	calls          int
	failAt         int // the call that fails (0: none)
}

func (f *fakeCluster) model(handoff float64) (clusterPoint, error) {
	f.calls++
	if f.calls == f.failAt {
		return clusterPoint{}, errors.New("simulation failed")
	}
	return clusterPoint{quorumP50: f.floor + f.stretch*handoff, busy: 0.5}, nil
}

// TestFitHandoff: the hand-off whose simulated quorum median is the real
// one, within the fit's precision, also when it is many times half the
// QUIC echo (the upper end doubles); none when the model is already
// slower without one; the largest tried when even that is too fast.
func TestFitHandoff(t *testing.T) {
	const quicRT = 140e3 // ns: half is 70 µs
	f := &fakeCluster{floor: 200e3, stretch: 2}
	// Real 1.3 ms: (1.3 − 0.2)/2 = 550 µs, about eight times half the echo.
	h, p, err := fitHandoff(clusterPoint{quorumP50: 1.3e6}, quicRT, f.model)
	if err != nil || math.Abs(h-550e3) > handoffPrecision || math.Abs(p.quorumP50-1.3e6) > 2*handoffPrecision {
		t.Fatalf("hand-off %v µs with quorum %v µs (%v), want 550 and 1300", h/1e3, p.quorumP50/1e3, err)
	}
	if f.calls > 20 {
		t.Fatalf("%d simulations, want a bisection's few", f.calls)
	}
	if h, _, err := fitHandoff(clusterPoint{quorumP50: 150e3}, quicRT, f.model); err != nil || h != 0 {
		t.Fatalf("a real quorum below the model's floor: hand-off %v (%v), want 0", h, err)
	}
	h, p, err = fitHandoff(clusterPoint{quorumP50: 1e9}, quicRT, f.model)
	if err != nil || h < 50*quicRT/2 || p.quorumP50 >= 1e9 {
		t.Fatalf("an unreachable quorum: hand-off %v µs, quorum %v (%v), want the largest tried, at least 50 half-echoes", h/1e3, p.quorumP50, err)
	}
	bad := &fakeCluster{floor: 200e3, stretch: 2, failAt: 4}
	if _, _, err := fitHandoff(clusterPoint{quorumP50: 1.3e6}, quicRT, bad.model); err == nil {
		t.Fatal("a failed simulation gave no error")
	}
}

// TestClusterReal: the real run's point is its replica.quorum median and
// its share of the cores; a run that traced too few quorums, committed
// nothing or measured no CPU is refused, not fitted to.
func TestClusterReal(t *testing.T) {
	run := func(quorums int) *reports.Result {
		return &reports.Result{
			Workloads: map[string]*reports.WorkloadResult{"puts": {ThroughputTPS: 300}},
			Resources: &reports.Resources{CPUPercentMean: 116},
			Traces: &reports.Traces{Spans: []reports.SpanStat{
				{Span: string(tracing.SpanCommit), Count: 450, P50Us: 400, P99Us: 900},
				{Span: string(tracing.SpanQuorum), Count: quorums, P50Us: 536, P99Us: 2100},
			}},
		}
	}
	p, err := clusterReal(run(450), 2)
	if err != nil || p.quorumP50 != 536e3 || math.Abs(p.busy-0.58) > 1e-9 {
		t.Fatalf("point %+v (%v), want quorum 536 µs at 0.58 busy", p, err)
	}
	if _, err := clusterReal(run(clusterMinQuorums-1), 2); err == nil {
		t.Fatalf("%d traced quorums: fitted to", clusterMinQuorums-1)
	}
	idle := run(450)
	idle.Workloads["puts"].ThroughputTPS = 0
	if _, err := clusterReal(idle, 2); err == nil {
		t.Fatal("a run that committed nothing: fitted to")
	}
	blind := run(450)
	blind.Resources = nil
	if _, err := clusterReal(blind, 2); err == nil {
		t.Fatal("a run without resources: fitted to")
	}
}
