package bench

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rustorium/rustorium/reports"
	"github.com/rustorium/rustorium/scenarios"
)

// runText runs a scenario given as YAML text in process, without floors,
// with its progress captured.
func runText(t *testing.T, name, text string) (*reports.Result, string) {
	t.Helper()
	sc, err := scenarios.Parse(name, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	sc.EnsureDefaults()
	if err := sc.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var progress syncBuffer
	res, err := Run(ctx, sc, Options{Out: t.TempDir(), SkipFloors: true, Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	return res, progress.String()
}

// TestRunBrokerRestart stops the embedded broker mid-load and starts it
// again on its log and port (kill: broker): the nodes go on committing
// after it, nothing accepted is lost or committed twice, and the timeline
// reports both actions without an error. A given broker without a control
// command is refused at load time.
func TestRunBrokerRestart(t *testing.T) {
	const text = `
name: broker-restart
seed: 2
warmup: 500ms
duration: 4s
drain: 30s
cluster: {nodes: 1, shards: 2, block: {max_txs: 100, max_wait: 10ms}, storage: {sync: false}}
workload:
  - {name: puts, kind: put, accounts: 1000, rate: 100/s}
timeline:
  - {at: 1s, kill: broker, restart_after: 1s}
report: {formats: [json]}
`
	sc, err := scenarios.Parse("broker.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	sc.EnsureDefaults()
	if err := Check(sc, (&InProcess{Brokers: []string{"127.0.0.1:1"}}).Caps()); err == nil || !strings.Contains(err.Error(), "broker.yaml:11: timeline[0].kill: a given broker can be stopped and started only through a control command") {
		t.Fatalf("Check of kill: broker on a given broker without --broker-ctl = %v", err)
	}
	res, progress := runText(t, "broker.yaml", text)
	c := res.Checker
	if c.Accepted == 0 || c.Committed != c.Accepted || c.Lost != 0 || c.Duplicated != 0 {
		t.Fatalf("checker %+v", c)
	}
	for _, done := range []string{"timeline 1s: kill broker (took", "timeline 2s: restart broker (took"} {
		if !strings.Contains(progress, done) {
			t.Fatalf("no %q in the progress:\n%s", done, progress)
		}
	}
	if len(res.Timeline) != 1 || res.Timeline[0].Rejoin == nil || res.Timeline[0].CatchUp != "" {
		t.Fatalf("timeline %+v", res.Timeline)
	}
	// Blocks went on after the restart: the rejoin gap ended before the run did.
	for _, s := range res.Timeline[0].Rejoin.Shards {
		if s.FirstBlockUs < 0 {
			t.Fatalf("shard %d committed no block after the broker restarted: %+v", s.Shard, res.Timeline[0].Rejoin)
		}
	}
}

// TestRunAPIFlood floods a node's HTTP API with idle connections whose
// request never ends (timeline flood): the node holds no more than its
// per-address limit and refuses the rest, the REST workload's keep-alive
// connections go on, and nothing accepted is lost.
func TestRunAPIFlood(t *testing.T) {
	res, progress := runText(t, "flood.yaml", `
name: flood
seed: 4
warmup: 500ms
duration: 3s
drain: 20s
cluster: {nodes: 1, shards: 2, block: {max_txs: 100, max_wait: 10ms}, storage: {sync: false}}
workload:
  - {name: puts, kind: put, client: rest, accounts: 1000, rate: 100/s}
timeline:
  - {at: 500ms, flood: node-1, conns: 1500, for: 1s}
report: {formats: [json]}
`)
	c := res.Checker
	if c.Accepted == 0 || c.Committed != c.Accepted || c.Lost != 0 || c.Duplicated != 0 {
		t.Fatalf("checker %+v", c)
	}
	if len(res.Timeline) != 1 || res.Timeline[0].Flood == nil {
		t.Fatalf("timeline %+v", res.Timeline)
	}
	f := res.Timeline[0].Flood
	// The default per-address limit is 1024, the REST clients' connections
	// included: the flood gets at most that, and the rest is refused.
	if f.Conns != 1500 || f.Held+f.Refused != 1500 || f.Held > 1024 || f.Refused < 476 {
		t.Fatalf("flood %+v, want at most 1024 held of 1500", f)
	}
	if !strings.Contains(progress, "timeline 500ms: flood node-1") {
		t.Fatalf("progress:\n%s", progress)
	}
	// The load went on through the flood: most sends committed.
	if w := res.Workloads["puts"]; w == nil || w.Stages["committed"] == nil || w.Stages["committed"].Count < w.Sent*9/10 {
		t.Fatalf("workload %+v", w)
	}
}

// TestRunDiskFull fills a node's disk for a second (disk_full: every write
// of its store fails with ENOSPC): the node keeps what it acknowledged and
// commits again once the disk has room, without a restart.
func TestRunDiskFull(t *testing.T) {
	res, progress := runText(t, "disk.yaml", `
name: disk
seed: 6
warmup: 500ms
duration: 3s
drain: 30s
cluster: {nodes: 1, shards: 2, block: {max_txs: 100, max_wait: 10ms}, storage: {sync: true}}
workload:
  - {name: puts, kind: put, accounts: 1000, rate: 100/s, verify_proofs: 10%}
timeline:
  - {at: 500ms, disk_full: node-1, for: 1s}
report: {formats: [json]}
`)
	c := res.Checker
	if c.Accepted == 0 || c.Committed != c.Accepted || c.Lost != 0 || c.Duplicated != 0 || c.ProofsFailed != 0 {
		t.Fatalf("checker %+v", c)
	}
	for _, done := range []string{"timeline 500ms: disk_full node-1 (took", "timeline 1.5s: disk_free node-1 (took"} {
		if !strings.Contains(progress, done) {
			t.Fatalf("no %q in the progress:\n%s", done, progress)
		}
	}
	if !res.Passed() {
		t.Fatalf("run failed: %+v", res.SLO)
	}
	// The store synced its WAL for most commits (0.58 syncs a
	// transaction here), the full disk notwithstanding.
	if c := res.Cost; c == nil || c.WALSyncsPerTx < 0.2 || c.WALSyncMeanUs <= 0 {
		t.Fatalf("cost %+v: a synced store's WAL syncs not counted", c)
	}
	// Nothing committed while the disk was full: the slowest commit waited
	// for most of that second.
	if s := res.Workloads["puts"].Stages["committed"]; s == nil || s.Corrected.Max < 800_000 {
		t.Fatalf("committed stage %+v: no commit waited out the full disk", s)
	}
}
