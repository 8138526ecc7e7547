package sim

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"github.com/rustorium/rustorium/loadgen"
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
// above, tx below and for what cohorts do not model; an explicit cohort
// mode with a kill is refused.
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
	if on, _ := cohortMode(sc); on {
		t.Fatal("auto chose cohorts for a scenario with a kill")
	}
	sc.Simulation = &scenarios.Simulation{Mode: scenarios.SimCohort}
	if err := Check(sc); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("cohort mode with a kill: %v", err)
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
