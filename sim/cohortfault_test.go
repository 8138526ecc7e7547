package sim

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/rustorium/rustorium/reports"
)

// faulty is a cohort-mode cluster for the timeline's faults: 4 nodes, 4
// shards, 5 ms links, 4000 puts/s (cohorts of 2 ms), a long drain.
const faulty = `
name: faulty
seed: 7
warmup: 500ms
duration: 3s
drain: 5s
cluster: {nodes: 4, shards: 4, cores_per_node: 4}
network:
  default: {delay: 5ms, jitter: 1ms}
simulation: {mode: cohort, window: 2ms}
workload:
  - {name: puts, kind: put, accounts: 100000, rate: 4000/s}
`

// everyReceipt checks that the workload's every measured send got its
// commit receipt: no error, the committed stage counts them all, and the
// checker lost nothing.
func everyReceipt(t *testing.T, r *reports.Result) *reports.WorkloadResult {
	t.Helper()
	w := r.Workloads["puts"]
	if c := w.Stages["committed"]; w.Errors != 0 || c == nil || c.Count != w.Sent || r.Checker.Lost != 0 || r.Checker.Committed != r.Checker.Accepted {
		t.Fatalf("sent %d, errors %d %v, committed %+v, checker %+v", w.Sent, w.Errors, w.ErrorsByKind, c, r.Checker)
	}
	return w
}

// TestCohortKillAndRestart: in cohort mode a killed leader's clients fail
// over (the cohorts it had sent to the log get their receipts from the
// next node, the others go to it whole), its shard stalls for the
// rebalance and fails over, and on its restart it catches up with its
// peers' attestations sent again. Every send is committed and answered
// once; the same inputs give the same bytes.
func TestCohortKillAndRestart(t *testing.T) {
	sc := load(t, faulty+`timeline:
  - {at: 1s, kill: leader(0), restart_after: 1s}
`)
	o := simulate(t, sc, Dedicated)
	r := o.Result
	if r.Simulation.Mode != "cohort" {
		t.Fatalf("mode %q", r.Simulation.Mode)
	}
	everyReceipt(t, r)
	tl := r.Timeline[0]
	f, rj := tl.Failover, tl.Rejoin
	if tl.Node != "node-1" || f == nil || rj == nil || len(f.Shards) != 4 {
		t.Fatalf("timeline %+v", tl)
	}
	// (the blocks it had published before still commit: the gap is the
	// rebalance's, after them)
	if s0 := f.Shards[0]; s0.MaxGapUs < 100_000 || s0.MaxGapUs >= 1_000_000 {
		t.Fatalf("shard 0 (its leader killed) did not stall for the rebalance and fail over: %+v", s0)
	}
	if s1 := f.Shards[1]; s1.MaxGapUs >= 100_000 {
		t.Fatalf("shard 1 (another leader) stalled: %+v", s1)
	}
	if d, err := time.ParseDuration(tl.CatchUp); err != nil || d <= 0 || d >= time.Second {
		t.Fatalf("catch-up %q (%v), want under a second", tl.CatchUp, err)
	}
	if a, b := canonical(t, o), canonical(t, simulate(t, load(t, faulty+"timeline:\n  - {at: 1s, kill: leader(0), restart_after: 1s}\n"), Dedicated)); !bytes.Equal(a, b) {
		t.Fatal("two cohort runs of one kill differ")
	}
}

// TestCohortKillWithoutFailover: without failover the clients of a killed
// node give up what it had not answered: errors, and every send is either
// committed or an error.
func TestCohortKillWithoutFailover(t *testing.T) {
	sc := load(t, faulty+`timeline:
  - {at: 1s, kill: node-2}
`)
	off := false
	sc.Workload[0].Failover = &off
	r := simulate(t, sc, Dedicated).Result
	w := r.Workloads["puts"]
	c := w.Stages["committed"]
	if w.Errors == 0 || c == nil || c.Count+w.Errors != w.Sent || r.Checker.Lost != 0 {
		t.Fatalf("sent %d, errors %d %v, committed %+v, checker %+v", w.Sent, w.Errors, w.ErrorsByKind, c, r.Checker)
	}
	for k := range w.ErrorsByKind {
		if k != "accepted: node unreachable (redialing)" && k != "committed: node unreachable (redialing)" {
			t.Fatalf("error kind %q", k)
		}
	}
}

// TestCohortPartitionHoldsMessages: a partition between the clients and a
// node holds the cohorts' messages until it heals, as a link does in tx
// mode: nothing is lost and the tail of the committed latencies is at
// least the partition's length; a partition between nodes, with a quorum
// on the other side, heals the same way.
func TestCohortPartitionHoldsMessages(t *testing.T) {
	for _, c := range []struct {
		name, event string
	}{
		{"clients", "{at: 1s, partition: [[clients], [node-3]], heal_after: 400ms}"},
		{"nodes", "{at: 1s, partition: [[node-1], [node-2, node-3, node-4]], heal_after: 400ms}"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := simulate(t, load(t, faulty+"timeline:\n  - "+c.event+"\n"), Dedicated).Result
			w := everyReceipt(t, r)
			if p := w.Stages["committed"].Corrected; p.Max < 350_000 {
				t.Fatalf("committed max %d µs: the partition held nothing", p.Max)
			}
		})
	}
}

// TestCohortPauseDelays: a paused node takes no cohort, executes and
// commits nothing until the pause ends; then everything commits.
func TestCohortPauseDelays(t *testing.T) {
	base := everyReceipt(t, simulate(t, load(t, faulty), Dedicated).Result).Stages["committed"].Corrected
	w := everyReceipt(t, simulate(t, load(t, faulty+"timeline:\n  - {at: 1s, pause: node-2, for: 300ms}\n"), Dedicated).Result)
	if p := w.Stages["committed"].Corrected; p.Max < 250_000 || base.Max >= 100_000 {
		t.Fatalf("committed max %d µs with a 300 ms pause, %d µs without", p.Max, base.Max)
	}
}

// TestRandomCohortFaults runs random cohort-mode clusters of puts and gets
// (over random client protocols) with a pause, a leader's kill and
// restart, another node's kill to the end and a partition: the simulation
// ends, and with the links healed by the drain every put is committed and
// answered (the stopped node's clients by the others) and every get read,
// nothing lost.
func TestRandomCohortFaults(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 23))
	clients := []string{"quic", "rest", "ws", "graphql"}
	for i := range 8 {
		nodes := 3 + r.IntN(4)
		sc := fmt.Sprintf(`
name: random-%d
seed: %d
warmup: 200ms
duration: 1500ms
drain: 8s
cluster: {nodes: %d, shards: %d, block: {max_txs: %d}, storage: {sync: %v}}
network:
  default: {delay: %dms, jitter: 1ms, loss: %d%%}
simulation: {mode: cohort}
workload:
  - {name: puts, kind: put, rate: %d/s, arrival: poisson, client: %s}
  - {name: gets, kind: get, rate: 500/s, client: %s}
timeline:
  - {at: 300ms, pause: node-%d, for: 200ms}
  - {at: 500ms, kill: leader(0), restart_after: %dms}
  - {at: 600ms, kill: node-%d}
  - {at: 700ms, partition: [[node-1], [clients]], heal_after: 300ms}
`, i, i+1, nodes, 1+r.IntN(8), 1+r.IntN(500), r.IntN(2) == 0, r.IntN(20), r.IntN(3), 300+r.IntN(1700), clients[r.IntN(4)], clients[r.IntN(4)], 1+r.IntN(nodes), 50+r.IntN(800), 1+r.IntN(nodes))
		o := simulate(t, load(t, sc), Host([]Host{Dedicated, Shared}[r.IntN(2)]))
		res := o.Result
		w := res.Workloads["puts"]
		c := w.Stages["committed"]
		if res.Simulation.Mode != "cohort" || res.Checker.Lost != 0 || res.Checker.Committed != res.Checker.Accepted || w.Errors != 0 || c == nil || c.Count != w.Sent {
			t.Errorf("scenario %d (%d nodes): sent %d, errors %d %v, committed %+v, checker %+v\n%s", i, nodes, w.Sent, w.Errors, w.ErrorsByKind, c, res.Checker, sc)
		}
		if g := res.Workloads["gets"]; g.Errors != 0 || g.Stages["read"] == nil || g.Stages["read"].Count != g.Sent {
			t.Errorf("scenario %d (%d nodes): gets sent %d, errors %d %v, read %+v", i, nodes, g.Sent, g.Errors, g.ErrorsByKind, g.Stages["read"])
		}
	}
}
