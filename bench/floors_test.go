package bench

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/rustorium/rustorium/calib"
	"github.com/rustorium/rustorium/node"
	"github.com/rustorium/rustorium/node/consensus"
	"github.com/rustorium/rustorium/node/tx"
	"github.com/rustorium/rustorium/reports"
	"github.com/rustorium/rustorium/scenarios"
)

// TestStateCeilingCountsTheStorePath checks the state floor against the
// bare Merkle floor measured in the same test: the state path does all of
// the Merkle work and more (hashing values, proofs, Pebble), so on the same
// block size it cannot be several times faster.
func TestStateCeilingCountsTheStorePath(t *testing.T) {
	s, err := stateCeiling(200, 32, 1000, 1)
	if err != nil {
		t.Fatal(err)
	}
	m := merkleCeiling(200, 1)
	if s <= 0 || m <= 0 || s > 2*m {
		t.Fatalf("state ceiling %.0f writes/s, Merkle ceiling %.0f writes/s", s, m)
	}
	t.Logf("state ceiling %.0f writes/s, Merkle ceiling %.0f writes/s (%.2fx)", s, m, s/m)
}

func TestErrorSummary(t *testing.T) {
	if got := errorSummary(nil); got != "" {
		t.Fatalf("no errors: %q", got)
	}
	if got, want := errorSummary(map[string]int64{"timeout": 2, "overloaded": 1, "aborted": 1}), " (timeout: 2, aborted: 1, overloaded: 1)"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// TestNodeBoundFromMeanBlocksAndTree: the node bound is measured with each
// shard's mean block size over the blocks the run committed (unrounded:
// calib rounds), on trees holding the first put workload's accounts over
// the shards (capped at floorTreeLeaves in all), with its values' size;
// and the committed throughput is put beside it in the ratios.
func TestNodeBoundFromMeanBlocksAndTree(t *testing.T) {
	for _, tc := range []struct {
		accounts, shards, wantTree int
	}{
		{100000, 4, 25000},
		{10, 4, 3},
		{1 << 20, 4, floorTreeLeaves / 4}, // capped
	} {
		sc := &scenarios.Scenario{Name: "bound", Seed: 3, Cluster: scenarios.Cluster{Shards: tc.shards},
			Workload: []scenarios.Workload{{Name: "gets", Kind: scenarios.KindGet, Accounts: 7}, {Name: "puts", Kind: scenarios.KindPut, Accounts: tc.accounts, ValueSize: 64}}}
		blocks := &reports.Blocks{Count: 8, Txs: 111, Shards: []reports.ShardBlocks{{Shard: 0, Count: 4, Txs: 10}, {Shard: 1}, {Shard: 2, Count: 3, Txs: 100}, {Shard: 3, Count: 1, Txs: 1}}}
		var got calib.BoundOptions
		measure := func(_ context.Context, o calib.BoundOptions) (calib.Bound, error) {
			got = o
			return calib.Bound{TPS: 1234.56, Txs: 1000, CPU: 476 * time.Millisecond, SigBatch: 1, NewKeys: 850}, nil
		}
		var f reports.Floors
		// Two nodes hashed 1.7 keys a transaction between them: 0.85 each.
		if err := nodeBound(context.Background(), measure, &f, sc, blocks, &reports.Cost{SigBatchMean: 1.07, KeysHashedPerTx: 1.7, Nodes: 2, PrepareBlocksMean: 1.37}); err != nil {
			t.Fatal(err)
		}
		want := []float64{2.5, 0, 100.0 / 3, 1}
		if len(got.BlockTxs) != len(want) || got.TreeKeys != tc.wantTree || got.ValueSize != 64 || got.ChainID != chainID || got.Seed != 3 || got.SigBatch != 1.07 || f.NodeBoundSigBatch != 1 || got.KeysHashed != 0.85 || f.NodeBoundNewKeys != 0.85 || got.PrepareBlocks != 1.37 {
			t.Fatalf("accounts %d: options %+v, want blocks %v and %d leaves", tc.accounts, got, want, tc.wantTree)
		}
		for i := range want {
			if got.BlockTxs[i] != want[i] {
				t.Fatalf("shard %d: blocks of %v, want %v", i, got.BlockTxs[i], want[i])
			}
		}
		if f.NodeBoundTPS != 1234.6 || f.TreeKeys != tc.wantTree || f.NodeBoundCPUMicrosPerTx != 476 {
			t.Fatalf("floors %+v", f)
		}
		res := &reports.Result{Workloads: map[string]*reports.WorkloadResult{"puts": {Stages: map[string]*reports.StageResult{"committed": {ThroughputTPS: 617.3}}}},
			Cost: &reports.Cost{CPUMicrosPerTx: 1428}}
		rs := ratios(res, f, 1)
		if r := rs["puts.committed_tps/node_bound_tps"]; r != 0.5 {
			t.Fatalf("ratio %v, want 0.5", r)
		}
		if r := rs["cpu_us_per_tx/node_bound_cpu_us_per_tx"]; r != 3 {
			t.Fatalf("CPU ratio %v, want 3", r)
		}
		// With three nodes each replays every block: one node's mandatory
		// work is no floor of their sum.
		if r, ok := ratios(res, f, 3)["cpu_us_per_tx/node_bound_cpu_us_per_tx"]; ok {
			t.Fatalf("three nodes: CPU ratio %v", r)
		}
	}
	// Without blocks there is nothing to measure with.
	var f reports.Floors
	if err := nodeBound(context.Background(), func(context.Context, calib.BoundOptions) (calib.Bound, error) {
		t.Fatal("measured without blocks")
		return calib.Bound{}, nil
	}, &f, &scenarios.Scenario{}, nil, nil); err != nil || f.NodeBoundTPS != 0 {
		t.Fatalf("no blocks: %v, %+v", err, f)
	}
}

// TestPathFloor: the path's CPU floor is the node bound's, the QUIC
// echo's and the ordering's a transaction at the run's transactions a round
// (blocks' mean size × the blocks prepared together), and none without any
// of them.
func TestPathFloor(t *testing.T) {
	parts := reports.Floors{NodeBoundCPUMicrosPerTx: 400, QuicEchoCPUMicros: 80, OrderingRoundCPUMicros: 300, OrderingTxCPUMicros: 10}
	blocks := &reports.Blocks{Count: 10, Txs: 12, MeanTxs: 1.2}
	f := parts
	pathFloor(&f, blocks, &reports.Cost{PrepareBlocksMean: 1.25})
	if f.PathTxsPerRound != 1.5 || f.PathCPUMicrosPerTx != 400+80+10+200 {
		t.Fatalf("floors %+v", f)
	}
	res := &reports.Result{Cost: &reports.Cost{CPUMicrosPerTx: 1380}}
	if r := ratios(res, f, 1)["cpu_us_per_tx/path_cpu_us_per_tx"]; r != 2 {
		t.Fatalf("ratio %v, want 2", r)
	}
	// Rounds of fewer transactions than one are rounds of one.
	f = parts
	pathFloor(&f, &reports.Blocks{Count: 1, Txs: 1, MeanTxs: 0.5}, nil)
	if f.PathTxsPerRound != 1 || f.PathCPUMicrosPerTx != 790 {
		t.Fatalf("small rounds: floors %+v", f)
	}
	for name, drop := range map[string]func(*reports.Floors){
		"node bound": func(f *reports.Floors) { f.NodeBoundCPUMicrosPerTx = 0 },
		"QUIC":       func(f *reports.Floors) { f.QuicEchoCPUMicros = 0 },
		"ordering":   func(f *reports.Floors) { f.OrderingRoundCPUMicros = 0 },
	} {
		f := parts
		drop(&f)
		pathFloor(&f, blocks, nil)
		if f.PathCPUMicrosPerTx != 0 || ratios(res, f, 1)["cpu_us_per_tx/path_cpu_us_per_tx"] != 0 {
			t.Errorf("without %s: floors %+v", name, f)
		}
	}
	f = parts
	pathFloor(&f, nil, nil)
	if f.PathCPUMicrosPerTx != 0 {
		t.Errorf("without blocks: floors %+v", f)
	}
}

// TestBlockStatsInWindow: result.json's blocks count each block once, at
// its first commit on any node, only when that commit falls in the window,
// with each shard's mean size.
func TestBlockStatsInWindow(t *testing.T) {
	c := newChecker()
	t0 := time.Unix(1000, 0)
	block := func(node string, shard uint32, height uint64, txs int, at time.Duration) {
		ev := testBlock(shard, height, txs)
		c.onBlock(node, ev, t0.Add(at))
	}
	block("node-1", 0, 1, 50, -time.Millisecond) // before the window
	block("node-1", 0, 2, 10, 0)
	block("node-2", 0, 2, 10, time.Millisecond) // the same block on another node
	block("node-1", 0, 3, 20, time.Second)
	block("node-1", 2, 1, 7, 2*time.Second)
	block("node-1", 2, 2, 9, 3*time.Second) // at the window's end: out
	b := c.blockStats(t0, t0.Add(3*time.Second), 3)
	if b == nil || b.Count != 3 || b.Txs != 37 || b.MeanTxs != 12.3 || len(b.Shards) != 3 {
		t.Fatalf("blocks %+v", b)
	}
	if s := b.Shards[0]; s.Count != 2 || s.Txs != 30 || s.MeanTxs != 15 {
		t.Fatalf("shard 0: %+v", s)
	}
	if s := b.Shards[1]; s.Shard != 1 || s.Count != 0 || s.MeanTxs != 0 {
		t.Fatalf("shard 1: %+v", s)
	}
	if s := b.Shards[2]; s.Shard != 2 || s.Count != 1 || s.MeanTxs != 7 {
		t.Fatalf("shard 2: %+v", s)
	}
	if b := c.blockStats(t0.Add(time.Hour), t0.Add(2*time.Hour), 3); b != nil {
		t.Fatalf("no block in the window: %+v", b)
	}
}

// testBlock is a block of shard at height holding txs distinct
// transactions.
func testBlock(shard uint32, height uint64, txs int) node.BlockEvent {
	ev := node.BlockEvent{Header: consensus.Header{Shard: shard, Height: height, TxCount: uint32(txs)}}
	for i := range txs {
		var id tx.ID
		id[0], id[1], id[2] = byte(shard), byte(height), byte(i)
		ev.IDs = append(ev.IDs, id)
	}
	return ev
}

// TestRoundRatio: ratios keep two decimals from 1 up and three significant
// digits below (a small ratio is not rounded to 0); 0 stays 0.
func TestRoundRatio(t *testing.T) {
	for _, c := range []struct{ in, want float64 }{
		{12.3456, 12.35}, {1, 1}, {0.49123, 0.491}, {0.0031234, 0.00312}, {0.000049999, 0.00005}, {0, 0},
	} {
		if got := roundRatio(c.in); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("roundRatio(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}
