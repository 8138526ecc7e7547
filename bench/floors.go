package bench

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/rustorium/rustorium/calib"
	"github.com/rustorium/rustorium/node/ordering"
	"github.com/rustorium/rustorium/reports"
	"github.com/rustorium/rustorium/scenarios"
)

// Floor sample sizes: enough for a stable p50/p99, small enough to take a
// few seconds on two cores.
const (
	floorRoundTrips   = 300 // at most, and at least floorMinSamples …
	floorMinSamples   = 20
	floorBudget       = 2 * time.Second // … within this time per round-trip floor
	floorCeilingSends = 20000
	floorMerkleBlocks = 5
	floorVerifies     = 4000
	// floorTreeLeaves caps the leaves of the trees the state floors
	// commit into, over all shards: seeding a tree costs about 20 µs a
	// leaf, and the floors must take a few seconds.
	floorTreeLeaves = 1 << 17
)

// measureFloors measures, on the run's own paths and broker, what the node's
// stages cannot beat: a bare QUIC round trip through the node's server, a
// bare franz-go produce→ack and produce ceiling, the Merkle batch-update
// ceiling and the ed25519 verification ceiling.
func measureFloors(ctx context.Context, paths FloorPaths, sc *scenarios.Scenario) (reports.Floors, error) {
	var f reports.Floors
	ocfg, size := paths.Log, floorPayload(sc)

	// Round trips are paced like the first workload's sends: an idle
	// machine wakes up more slowly (here ~0.5 ms more) than a busy one, and
	// the floor must see the same conditions as the stage it bounds.
	gap := sc.FloorGap()
	payload := make([]byte, size)
	h, err := sampleRoundTrips(ctx, gap, func() error { return paths.Echo(ctx, payload) })
	if err != nil {
		return f, fmt.Errorf("quic echo: %w", err)
	}
	f.QuicEcho = ptr(reports.PercentilesOf(h))
	if wholePath(sc) {
		cpu, err := calib.CallCPU(ctx, floorCPUCalls, floorCPUReps, func() error { return paths.Echo(ctx, payload) })
		if err != nil {
			return f, fmt.Errorf("quic echo's CPU: %w", err)
		}
		f.QuicEchoCPUMicros = micros(cpu)
	}

	if _, err := ordering.EnsureTopics(ctx, ocfg); err != nil {
		return f, err
	}
	prod, err := ordering.Open(ctx, ocfg)
	if err != nil {
		return f, err
	}
	defer prod.Close()
	h, err = sampleRoundTrips(ctx, gap, func() error { _, err := prod.Append(ctx, 0, nil, payload); return err })
	if err != nil {
		return f, fmt.Errorf("produce: %w", err)
	}
	f.ProduceAck = ptr(reports.PercentilesOf(h))
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	t0 := time.Now()
	for range floorCeilingSends {
		wg.Add(1)
		prod.AppendAsync(ctx, 0, nil, payload, func(_ int64, err error) {
			if err != nil {
				errOnce.Do(func() { firstErr = err })
			}
			wg.Done()
		})
	}
	wg.Wait()
	if firstErr != nil {
		return f, fmt.Errorf("produce ceiling: %w", firstErr)
	}
	f.ProduceCeilingTPS = round1(floorCeilingSends / time.Since(t0).Seconds())

	f.MerkleCeilingWPS = round1(merkleCeiling(sc.Cluster.Block.MaxTxs, uint64(sc.Seed)))
	f.TreeKeys = treeKeys(sc)
	wps, err := stateCeiling(sc.Cluster.Block.MaxTxs, putValueSize(sc), f.TreeKeys, uint64(sc.Seed))
	if err != nil {
		return f, fmt.Errorf("state ceiling: %w", err)
	}
	f.StateCeilingWPS = round1(wps)
	f.VerifyCeilingTPS = round1(verifyCeiling())
	if wholePath(sc) {
		o, err := calib.OrderingCPU(ctx, calib.OrderingOptions{Log: ocfg, RecordSize: size})
		if err != nil {
			return f, fmt.Errorf("ordering's CPU: %w", err)
		}
		f.OrderingRoundCPUMicros, f.OrderingTxCPUMicros = micros(o.Round), micros(o.Tx)
	}
	return f, nil
}

// The path floor's sample sizes: back-to-back calls, the least CPU a call
// of floorCPUReps runs of floorCPUCalls counting.
const (
	floorCPUCalls = 100
	floorCPUReps  = 3
)

// wholePath reports whether the run's cost.cpu_us_per_tx is the CPU of a
// transaction's whole path — one node in this process, beside the load
// generator (and an embedded broker) — so that the path's CPU floor
// (Floors.PathCPUMicrosPerTx) bounds it. A node in a process of its own
// does neither the client's half of QUIC nor the embedded broker's work,
// and with more nodes every node replays every block.
func wholePath(sc *scenarios.Scenario) bool {
	return sc.Cluster.Mode == scenarios.ClusterInProcess && sc.Cluster.Nodes == 1
}

// pathFloor fills in f.PathTxsPerRound and f.PathCPUMicrosPerTx from the
// node bound's CPU, the QUIC echo's and the ordering's, at the run's
// transactions a leader's round: blocks' mean size times the blocks the
// store prepared together (a replica prepares a round's blocks together).
// It does nothing unless all three were measured.
func pathFloor(f *reports.Floors, blocks *reports.Blocks, cost *reports.Cost) {
	if f.NodeBoundCPUMicrosPerTx <= 0 || f.QuicEchoCPUMicros <= 0 || f.OrderingRoundCPUMicros <= 0 || blocks == nil || blocks.MeanTxs <= 0 {
		return
	}
	perRound := blocks.MeanTxs
	if cost != nil && cost.PrepareBlocksMean > 1 {
		perRound *= cost.PrepareBlocksMean
	}
	f.PathTxsPerRound = math.Round(max(perRound, 1)*100) / 100
	f.PathCPUMicrosPerTx = round1(f.NodeBoundCPUMicrosPerTx + f.QuicEchoCPUMicros + f.OrderingTxCPUMicros + f.OrderingRoundCPUMicros/f.PathTxsPerRound)
}

// micros is d in microseconds, rounded to a tenth.
func micros(d time.Duration) float64 { return round1(float64(d) / float64(time.Microsecond)) }

// floorPayload is the size of the floors' round trips' payloads: about one
// put transaction of the first workload.
func floorPayload(sc *scenarios.Scenario) int {
	if len(sc.Workload) == 0 {
		return 0
	}
	return sc.Workload[0].ValueSize + 150
}

// sampleRoundTrips times sequential calls of rt, started gap apart (or back
// to back when a call takes longer): floorRoundTrips of them, or as many as
// fit in floorBudget but at least floorMinSamples (calib.SampleRoundTrips).
func sampleRoundTrips(ctx context.Context, gap time.Duration, rt func() error) (*hdr.Histogram, error) {
	ds, err := calib.SampleRoundTrips(ctx, calib.SampleOptions{Gap: gap, Max: floorRoundTrips, Min: floorMinSamples, Budget: floorBudget}, rt)
	if err != nil {
		return nil, err
	}
	h := reports.NewHistogram()
	for _, d := range ds {
		_ = h.RecordValue(d.Microseconds())
	}
	return h, nil
}

// merkleCeiling is the tree's batch-update throughput in writes per second:
// blocks of blockSize random writes into a growing in-memory tree
// (calib.MerkleUpdate).
func merkleCeiling(blockSize int, seed uint64) float64 {
	if blockSize <= 0 {
		blockSize = 1000
	}
	d, err := calib.MerkleUpdate(blockSize, 0, floorMerkleBlocks, seed)
	if err != nil || d <= 0 {
		return 0
	}
	return float64(blockSize) / d.Seconds()
}

// putWorkload is the scenario's first put workload, or nil.
func putWorkload(sc *scenarios.Scenario) *scenarios.Workload {
	for i := range sc.Workload {
		if sc.Workload[i].Kind == scenarios.KindPut {
			return &sc.Workload[i]
		}
	}
	return nil
}

// putValueSize is the value size of the first put workload (the default
// without one).
func putValueSize(sc *scenarios.Scenario) int {
	if w := putWorkload(sc); w != nil {
		return w.ValueSize
	}
	return scenarios.DefaultValueSize
}

// treeKeys is how many leaves each shard's tree holds in the state floors:
// the first put workload's accounts (the default without one) spread over
// the shards, as a node's trees hold them once every key was written, but
// at most floorTreeLeaves over all shards.
func treeKeys(sc *scenarios.Scenario) int {
	accounts := scenarios.DefaultAccounts
	if w := putWorkload(sc); w != nil {
		accounts = w.Accounts
	}
	shards := max(sc.Cluster.Shards, 1)
	return max(1, (min(accounts, floorTreeLeaves)+shards-1)/shards)
}

// stateCeiling is how many put writes per second the node's storage
// commits (calib.StateCommitTree): blocks of blockSize writes of
// valueSize-byte values into one shard of a storage.DB on an in-memory
// filesystem whose tree first holds leaves leaves (treeKeys), each
// block hashing its values to field elements, updating the Merkle tree,
// proving every write and writing one Pebble batch (CommitBlock, as a
// replica does). Its keys were written once before the timed blocks, so
// their tree keys are cached as a node's are for keys it has seen: the
// floor leaves out the key hash that a never-seen key costs, so a node
// cannot beat it by revisiting keys.
func stateCeiling(blockSize, valueSize, leaves int, seed uint64) (float64, error) {
	d, err := calib.StateCommitTree(blockSize, valueSize, floorMerkleBlocks, leaves, seed)
	if err != nil {
		return 0, err
	}
	return float64(max(blockSize, 1)) / d.Seconds(), nil
}

// verifyCeiling is how many transaction signatures a node's ingress checker
// verifies per second with every core busy: floorVerifies checks submitted
// by many concurrent callers, so they are checked in batches as under load.
func verifyCeiling() float64 {
	return calib.VerifyThroughput(floorVerifies, 64, chainID)
}

// boundFunc measures a node bound (calib.NodeBound; tests replace it).
type boundFunc func(context.Context, calib.BoundOptions) (calib.Bound, error)

// nodeBound fills in f.NodeBoundTPS, measured after the load: puts of the
// first put workload's value size in blocks of the run's mean size per
// shard (blocks, which the node cut while measuring), on trees of
// f.TreeKeys leaves per shard, their signatures checked in batches of the
// size the node's ingress checked them in, the share of their keys new to
// the store that a node hashed, and the blocks prepared together as many
// at a time as the node's store did (cost's SigBatchMean, KeysHashedPerTx
// over its Nodes and PrepareBlocksMean; nil cost or none: batched as they
// queue, every key cached, the shards' Prepares combined as they overlap)
// (calib.NodeBound). It does nothing without blocks; a failure is returned
// for a note.
func nodeBound(ctx context.Context, measure boundFunc, f *reports.Floors, sc *scenarios.Scenario, blocks *reports.Blocks, cost *reports.Cost) error {
	if blocks == nil || blocks.Count == 0 {
		return nil
	}
	if f.TreeKeys == 0 {
		f.TreeKeys = treeKeys(sc)
	}
	sizes := make([]float64, len(blocks.Shards))
	for i, s := range blocks.Shards {
		sizes[i] = float64(s.Txs) / float64(max(s.Count, 1)) // unrounded
	}
	opts := calib.BoundOptions{BlockTxs: sizes, TreeKeys: f.TreeKeys, ValueSize: putValueSize(sc), ChainID: chainID, Seed: uint64(sc.Seed)}
	if cost != nil {
		opts.SigBatch, opts.PrepareBlocks = cost.SigBatchMean, cost.PrepareBlocksMean
		if cost.Nodes > 0 {
			opts.KeysHashed = cost.KeysHashedPerTx / float64(cost.Nodes) // a node's
		}
	}
	b, err := measure(ctx, opts)
	if err != nil {
		return fmt.Errorf("node bound: %w", err)
	}
	f.NodeBoundTPS = round1(b.TPS)
	f.NodeBoundSigBatch = b.SigBatch
	if b.Txs > 0 {
		f.NodeBoundNewKeys = math.Round(float64(b.NewKeys)/float64(b.Txs)*1000) / 1000
	}
	f.NodeBoundPrepareBlocks = math.Round(b.PrepareBlocks*100) / 100
	f.NodeBoundCPUMicrosPerTx = micros(b.CPUPerTx())
	return nil
}

func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }

// ratios puts each stage beside its floor: how many times the floor the
// node's median is, and the node's committed throughput against the Merkle
// and state ceilings and the node bound; and, for a run of one node, the
// CPU a transaction cost (cost.cpu_us_per_tx) against the node bound's
// mandatory CPU a put (with more nodes every node replays every block,
// which the bound, one node's work, does not count).
func ratios(res *reports.Result, f reports.Floors, nodes int) map[string]float64 {
	out := map[string]float64{}
	if nodes == 1 && res.Cost != nil && res.Cost.CPUMicrosPerTx > 0 && f.NodeBoundCPUMicrosPerTx > 0 {
		out["cpu_us_per_tx/node_bound_cpu_us_per_tx"] = roundRatio(res.Cost.CPUMicrosPerTx / f.NodeBoundCPUMicrosPerTx)
	}
	if res.Cost != nil && res.Cost.CPUMicrosPerTx > 0 && f.PathCPUMicrosPerTx > 0 {
		out["cpu_us_per_tx/path_cpu_us_per_tx"] = roundRatio(res.Cost.CPUMicrosPerTx / f.PathCPUMicrosPerTx)
	}
	p50 := func(p *reports.Percentiles) float64 {
		if p == nil {
			return 0
		}
		return float64(p.P50)
	}
	// The accepted path's floor (issue #14 item 3): a QUIC round trip, a
	// produce→ack and acceptedWorkMicros of the node's own work, idle
	// and under the load.
	acceptedFloor := func(echo, ack *reports.Percentiles) float64 {
		if p50(echo) <= 0 || p50(ack) <= 0 {
			return 0
		}
		return p50(echo) + p50(ack) + acceptedWorkMicros
	}
	per := func(key string, v, of float64) {
		if v > 0 && of > 0 {
			out[key] = roundRatio(v / of)
		}
	}
	for name, w := range res.Workloads {
		if s := w.Stages[reports.StageAccepted.String()]; s != nil {
			v := float64(s.Corrected.P50)
			per(name+".accepted.p50/quic_echo.p50", v, p50(f.QuicEcho))
			per(name+".accepted.p50/produce_ack.p50", v, p50(f.ProduceAck))
			per(name+".accepted.p50/accepted_floor", v, acceptedFloor(f.QuicEcho, f.ProduceAck))
			per(name+".accepted.p50/accepted_floor_loaded", v, acceptedFloor(f.QuicEchoLoaded, f.ProduceAckLoaded))
		}
		if s := w.Stages[reports.StageIngress.String()]; s != nil {
			v := float64(s.Corrected.P50)
			per(name+".ingress.p50/quic_echo.p50", v, p50(f.QuicEcho))
			per(name+".ingress.p50/quic_echo_loaded.p50", v, p50(f.QuicEchoLoaded))
		}
		if s := w.Stages[reports.StageCommitted.String()]; s != nil {
			if f.MerkleCeilingWPS > 0 {
				out[name+".committed_tps/merkle_ceiling_wps"] = roundRatio(s.ThroughputTPS / f.MerkleCeilingWPS)
			}
			if f.StateCeilingWPS > 0 {
				out[name+".committed_tps/state_ceiling_wps"] = roundRatio(s.ThroughputTPS / f.StateCeilingWPS)
			}
			if f.NodeBoundTPS > 0 {
				out[name+".committed_tps/node_bound_tps"] = roundRatio(s.ThroughputTPS / f.NodeBoundTPS)
			}
		}
	}
	return out
}

// acceptedWorkMicros is the node's own work on the accepted path that
// neither round trip of the floors does — decoding, the signature check,
// the hand-offs — as issue #14 item 3 allows it: the accepted path's floor
// is quic_echo.p50 + produce_ack.p50 + 100 µs.
const acceptedWorkMicros = 100

// roundRatio rounds a ratio to two decimals, or to three significant
// digits below 1 (a small committed_tps/merkle_ceiling_wps, 0.0031, would
// read 0 with two decimals).
func roundRatio(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return v
	}
	if v >= 1 {
		return math.Round(v*100) / 100
	}
	scale := math.Pow(10, 2-math.Floor(math.Log10(v)))
	return math.Round(v*scale) / scale
}

func ptr[T any](v T) *T { return &v }
