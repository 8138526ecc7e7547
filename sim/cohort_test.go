package sim

import (
	"bytes"
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/rustorium/rustorium/calib"
	"github.com/rustorium/rustorium/loadgen"
	"github.com/rustorium/rustorium/reports"
	"github.com/rustorium/rustorium/scenarios"
	"github.com/rustorium/rustorium/sim/des"
)

// agreement is a small cluster over 5 ms links, well under saturation:
// simulated in tx mode and in cohort mode (2 ms windows), the two must
// agree.
const agreement = `
name: agree
seed: 3
warmup: 1s
duration: 4s
drain: 3s
cluster: {nodes: 4, shards: 8, cores_per_node: 4}
network:
  default: {delay: 5ms, jitter: 1ms}
workload:
  - {name: puts, kind: put, accounts: 100000, rate: 4000/s}
`

// Cohort tolerances against tx mode on the agreement scenario: committed
// throughput ±5%, committed p50 ±15%, p99 ±25%.
const (
	cohortTolRate = 0.05
	cohortTolP50  = 0.15
	cohortTolP99  = 0.25
)

func withMode(t *testing.T, mode scenarios.SimMode, window scenarios.Duration) *scenarios.Scenario {
	sc := load(t, agreement)
	sc.Simulation = &scenarios.Simulation{Mode: mode, Window: window}
	return sc
}

// TestCohortAgreesWithTx: the cohort model moves the same load through
// the same resources as the per-transaction one, so throughput and the
// committed latency percentiles agree within the stated tolerances, and
// every transaction is counted once. A cohort model that skipped a cost
// (the round trips, the quorum's wait) or counted a cohort as one
// transaction fails.
func TestCohortAgreesWithTx(t *testing.T) {
	tx := simulate(t, withMode(t, scenarios.SimTx, 0), Dedicated).Result
	co := simulate(t, withMode(t, scenarios.SimCohort, scenarios.Duration(2*des.Millisecond)), Dedicated).Result
	if tx.Simulation.Mode != "tx" || co.Simulation.Mode != "cohort" || co.Simulation.CohortWindowMS != 2 {
		t.Fatalf("modes: tx %q, cohort %q (window %v ms)", tx.Simulation.Mode, co.Simulation.Mode, co.Simulation.CohortWindowMS)
	}
	tw, cw := tx.Workloads["puts"], co.Workloads["puts"]
	if cw.Sent != tw.Sent || cw.Errors != 0 || co.Checker.Lost != 0 || co.Checker.Accepted != tx.Checker.Accepted {
		t.Fatalf("cohort: sent %d (tx %d), errors %d, checker %+v (tx %+v)", cw.Sent, tw.Sent, cw.Errors, co.Checker, tx.Checker)
	}
	tc, cc := tw.Stages["committed"], cw.Stages["committed"]
	if cc.Count != tc.Count {
		t.Fatalf("committed count: cohort %d, tx %d", cc.Count, tc.Count)
	}
	for _, c := range []struct {
		what     string
		tx, co   float64
		tolerate float64
	}{
		{"committed tx/s", tc.ThroughputTPS, cc.ThroughputTPS, cohortTolRate},
		{"committed p50", float64(tc.Corrected.P50), float64(cc.Corrected.P50), cohortTolP50},
		{"committed p99", float64(tc.Corrected.P99), float64(cc.Corrected.P99), cohortTolP99},
	} {
		if d := math.Abs(c.co-c.tx) / c.tx; d > c.tolerate {
			t.Errorf("%s: cohort %.0f, tx %.0f (%.0f%% off, tolerance %.0f%%)", c.what, c.co, c.tx, d*100, c.tolerate*100)
		}
	}
}

// TestCohortReadsAgreeWithTx: gets beside the agreement scenario's puts
// are read at their offered rate in both modes, every one once, their
// read latencies within the committed stage's tolerances of each other
// (the p99 within half a window more); a cohort model that skipped the
// node's read (300 µs here), the answer's trip or the client's proof check
// would be faster by that much.
func TestCohortReadsAgreeWithTx(t *testing.T) {
	const window = des.Millisecond
	mk := func(mode scenarios.SimMode) *scenarios.Scenario {
		// on links without delay, where a read's own costs are most of
		// its latency, and with fewer puts: blocks commit sooner there,
		// so they are smaller and more, and at 4000 puts/s their
		// per-block overhead (the reference calibration's, on every
		// replica) would saturate the nodes, whose reads then take what
		// the queue makes them in either mode
		noDelay := strings.Replace(agreement, "default: {delay: 5ms, jitter: 1ms}", "default: {}", 1)
		sc := load(t, strings.Replace(noDelay, "rate: 4000/s", "rate: 2500/s", 1)+"  - {name: gets, kind: get, accounts: 100000, rate: 3000/s}\n")
		sc.Simulation = &scenarios.Simulation{Mode: mode, Window: scenarios.Duration(window)}
		return sc
	}
	// reads of 300 µs at the node: half of a read's latency
	c := *reference(t)
	c.Ops.StateRead = []calib.SizeCost{{Size: 0, CostNs: 3e5}, {Size: 100000, CostNs: 3e5}}
	gets := func(mode scenarios.SimMode) *reports.WorkloadResult {
		o, err := Run(context.Background(), mk(mode), Options{Calib: &c})
		if err != nil {
			t.Fatal(err)
		}
		return o.Result.Workloads["gets"]
	}
	tx, co := gets(scenarios.SimTx), gets(scenarios.SimCohort)
	tr, cr := tx.Stages["read"], co.Stages["read"]
	if tr == nil || cr == nil || cr.Count != tr.Count || cr.Count != co.Sent || co.Errors != 0 || cr.ThroughputTPS < 2900 {
		t.Fatalf("reads: tx %+v, cohort %+v (sent %d, errors %d)", tr, cr, co.Sent, co.Errors)
	}
	t.Logf("read p50 tx %d µs, cohort %d µs; p99 tx %d µs, cohort %d µs", tr.Corrected.P50, cr.Corrected.P50, tr.Corrected.P99, cr.Corrected.P99)
	// A cohort's sends leave at their mean intended time: each read's
	// latency is off by up to half a window, which these sub-millisecond
	// reads' tails show.
	half := float64(window/2) / 1e3
	for _, c := range []struct {
		what     string
		tx, co   float64
		tolerate float64
	}{
		{"read p50", float64(tr.Corrected.P50), float64(cr.Corrected.P50), cohortTolP50 * float64(tr.Corrected.P50)},
		{"read p99", float64(tr.Corrected.P99), float64(cr.Corrected.P99), cohortTolP99*float64(tr.Corrected.P99) + half},
	} {
		if d := math.Abs(c.co - c.tx); d > c.tolerate {
			t.Errorf("%s: cohort %.0f µs, tx %.0f µs (%.0f µs off, tolerance %.0f µs)", c.what, c.co, c.tx, d, c.tolerate)
		}
	}
}

// TestCohortDeterministic: the same inputs give the same cohort result;
// another seed another one.
func TestCohortDeterministic(t *testing.T) {
	mk := func(seed int64) *scenarios.Scenario {
		sc := withMode(t, scenarios.SimCohort, 0)
		sc.Seed = seed
		sc.Duration = scenarios.Duration(2 * des.Second)
		return sc
	}
	a := canonical(t, simulate(t, mk(3), Dedicated))
	b := canonical(t, simulate(t, mk(3), Dedicated))
	if !bytes.Equal(a, b) {
		t.Fatalf("two cohort runs of one scenario differ:\n%s\n%s", a, b)
	}
	if c := canonical(t, simulate(t, mk(4), Dedicated)); bytes.Equal(a, c) {
		t.Fatal("another seed gave the same cohort result")
	}
}

// TestCohortModeChoice: auto picks cohorts at CohortAutoRate offered and
// above (kills included, since session 23), tx below and for what cohorts
// do not model (closed loops, reads); an explicit cohort mode with a
// closed loop is refused.
func TestCohortModeChoice(t *testing.T) {
	sc := load(t, agreement)
	if on, _ := cohortMode(sc); on {
		t.Fatal("auto at 4000/s chose cohorts")
	}
	sc.Workload[0].Rate = scenarios.Rate(scenarios.CohortAutoRate)
	on, w := cohortMode(sc)
	if !on || w < minWindow || w > maxWindow {
		t.Fatalf("auto at %d/s: cohort %v, window %v", scenarios.CohortAutoRate, on, w)
	}
	sc.Timeline = []scenarios.Event{{At: scenarios.Duration(des.Second), Kill: "node-1"}}
	if on, _ := cohortMode(sc); !on {
		t.Fatal("auto did not choose cohorts for a scenario with a kill")
	}
	sc.Workload = append(sc.Workload, scenarios.Workload{Name: "closed", Kind: scenarios.KindPut, Clients: 10, Accounts: 10})
	if on, _ := cohortMode(sc); on {
		t.Fatal("auto chose cohorts for a scenario with a closed loop")
	}
	sc.Simulation = &scenarios.Simulation{Mode: scenarios.SimCohort}
	if err := Check(sc); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("cohort mode with a closed loop: %v", err)
	}
}

// TestCohortOpenLoopBound: offered far above what the cluster commits,
// the open loop's in-flight bound drops sends, and the drops are counted
// as sent and as "dropped" errors (added to the snapshot, not recorded one
// by one).
func TestCohortOpenLoopBound(t *testing.T) {
	sc := load(t, `
name: flood
warmup: 500ms
duration: 1s
drain: 1s
cluster: {nodes: 2, shards: 2, cores_per_node: 2, storage: {sync: false}}
network:
  default: {delay: 20ms}
simulation: {mode: cohort}
workload:
  - {name: puts, kind: put, accounts: 100000, rate: 200k/s}
`)
	o := simulate(t, sc, Dedicated)
	w := o.Result.Workloads["puts"]
	if w.Sent != 200_000 || w.ErrorsByKind["dropped"] == 0 || w.Errors != w.ErrorsByKind["dropped"] {
		t.Fatalf("sent %d errors %d by kind %v", w.Sent, w.Errors, w.ErrorsByKind)
	}
	if b := o.Result.Simulation.Bottleneck; b == nil {
		t.Fatal("no bottleneck named")
	}
}

// TestKeyNamesAreLoadgens: the simulator routes by the same key bytes as
// the load generator's transactions.
func TestKeyNamesAreLoadgens(t *testing.T) {
	for _, k := range []uint64{0, 7, 42, 99999, 1 << 30, 9999999999, 12345678901} {
		if got, want := string(appendKeyName(nil, k)), string(loadgen.KeyName(k)); got != want {
			t.Fatalf("key %d: %q, loadgen %q", k, got, want)
		}
	}
}
