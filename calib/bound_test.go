package calib

import (
	"context"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"testing"
	"time"
)

// TestNodeBoundCommitsTheGivenBlocks: NodeBound commits, on each shard
// whose mean block size rounds to one or more, at least BoundMinBlocks
// blocks of that size (rounded), and times every put it signed, in every
// repetition (the second one's blocks at the heights after the first's).
func TestNodeBoundCommitsTheGivenBlocks(t *testing.T) {
	b, err := NodeBound(context.Background(), BoundOptions{BlockTxs: []float64{2.6, 0.4, 5}, TreeKeys: 200, ValueSize: 32, ChainID: 1, Txs: 40, Reps: 2, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	// shard 0: blocks of 3, max(3, ceil(20/3)=7) = 7 blocks; shard 2:
	// blocks of 5, max(3, 4) = 4 blocks; shard 1 left out.
	if b.Blocks != 7+4 || b.Txs != 7*3+4*5 || b.Reps != 2 {
		t.Fatalf("blocks %d, txs %d, reps %d; want 11, 41 and 2", b.Blocks, b.Txs, b.Reps)
	}
	if b.TPS <= 0 || b.Elapsed <= 0 {
		t.Fatalf("rate %v over %v", b.TPS, b.Elapsed)
	}
	// The CPU is the fastest repetition's: some, and no more than every
	// core busy for its whole wall time (with a scheduler tick's slack).
	if haveCPUClock && (b.CPU <= 0 || b.CPU > time.Duration(runtime.NumCPU())*b.Elapsed+20*time.Millisecond) {
		t.Fatalf("CPU %v in a repetition of %v on %d cores", b.CPU, b.Elapsed, runtime.NumCPU())
	}
	if b.CPUPerTx() != b.CPU/time.Duration(b.Txs) {
		t.Fatalf("CPU per put %v, want %v", b.CPUPerTx(), b.CPU/time.Duration(b.Txs))
	}
	if b.SigBatch != 0 {
		t.Fatalf("signatures batched as they queue, yet SigBatch %d", b.SigBatch)
	}
	// Two shards' blocks: prepared one or two at a time.
	if b.PrepareBlocks < 1 || b.PrepareBlocks > 2 {
		t.Fatalf("%v blocks prepared together, want 1 to 2", b.PrepareBlocks)
	}
	// The signatures in batches of the node's mean size, rounded: every
	// one checked (an invalid one would be an error), the same puts.
	for _, c := range []struct {
		mean float64
		want int
	}{{2.6, 3}, {0.4, 1}, {1, 1}} {
		b, err := NodeBound(context.Background(), BoundOptions{BlockTxs: []float64{2.6, 0.4, 5}, TreeKeys: 200, ValueSize: 32, ChainID: 1, Txs: 40, Reps: 1, Seed: 1, SigBatch: c.mean})
		if err != nil {
			t.Fatal(err)
		}
		if b.SigBatch != c.want || b.Txs != 41 || b.TPS <= 0 {
			t.Fatalf("SigBatch %v: batches of %d, %d puts at %v/s; want batches of %d, 41 puts", c.mean, b.SigBatch, b.Txs, b.TPS, c.want)
		}
	}
	// A share of the puts to keys new to the store, spread over each
	// shard's: 10 of shard 0's 21 and 10 of shard 2's 20 for a half.
	for _, c := range []struct {
		share float64
		want  int
	}{{0.5, 20}, {1, 41}, {1.7, 41}, {-1, 0}} {
		b, err := NodeBound(context.Background(), BoundOptions{BlockTxs: []float64{2.6, 0.4, 5}, TreeKeys: 200, ValueSize: 32, ChainID: 1, Txs: 40, Reps: 2, Seed: 1, KeysHashed: c.share})
		if err != nil {
			t.Fatal(err)
		}
		if b.NewKeys != c.want || b.Txs != 41 {
			t.Fatalf("KeysHashed %v: %d new keys of %d puts, want %d", c.share, b.NewKeys, b.Txs, c.want)
		}
	}
	// Blocks prepared one at a time, as a node at low load does.
	if b, err := NodeBound(context.Background(), BoundOptions{BlockTxs: []float64{2.6, 0.4, 5}, TreeKeys: 200, ValueSize: 32, ChainID: 1, Txs: 40, Reps: 1, Seed: 1, PrepareBlocks: 1}); err != nil || b.PrepareBlocks != 1 || b.Txs != 41 {
		t.Fatalf("PrepareBlocks 1: %v, %v blocks prepared together, %d puts", err, b.PrepareBlocks, b.Txs)
	}
	if _, err := NodeBound(context.Background(), BoundOptions{BlockTxs: []float64{0.2}, TreeKeys: 10}); err == nil {
		t.Fatal("no shard with blocks: want an error")
	}
}

// TestPrepareGroups: the batches hold each block once, a shard's blocks in
// order on one goroutine, never a shard twice, at the mean size asked when
// the shards allow it (seeded: the seed is printed on failure).
func TestPrepareGroups(t *testing.T) {
	for _, c := range []struct {
		counts []int
		mean   float64
		cores  int
		want   [][][]blockRef
	}{
		{[]int{2, 2}, 1, 2, [][][]blockRef{{{{0, 0}}, {{0, 1}}}, {{{1, 0}}, {{1, 1}}}}},
		{[]int{2, 2, 2, 2}, 1.5, 2, [][][]blockRef{
			{{{0, 0}}, {{2, 0}, {0, 1}}, {{2, 1}}},
			{{{1, 0}}, {{3, 0}, {1, 1}}, {{3, 1}}}}},
		// Too few shards for batches of 4: what they allow, one goroutine.
		{[]int{1, 3}, 4, 2, [][][]blockRef{{{{0, 0}, {1, 0}}, {{1, 1}}, {{1, 2}}}}},
	} {
		if got := prepareGroups(c.counts, c.mean, c.cores); !reflect.DeepEqual(got, c.want) {
			t.Errorf("prepareGroups(%v, %v, %d) = %v, want %v", c.counts, c.mean, c.cores, got, c.want)
		}
	}
	if got := meanBatch(prepareGroups([]int{2, 2, 2, 2}, 1.5, 2)); math.Abs(got-4.0/3) > 1e-9 {
		t.Errorf("mean batch %v, want 4/3", got)
	}
	seed := uint64(time.Now().UnixNano())
	r := rand.New(rand.NewPCG(seed, 1))
	for range 200 {
		counts := make([]int, 1+r.IntN(8))
		total := 0
		for i := range counts {
			counts[i] = r.IntN(20)
			total += counts[i]
		}
		mean, cores := 1+r.Float64()*5, 1+r.IntN(4)
		groups := prepareGroups(counts, mean, cores)
		if len(groups) > cores {
			t.Fatalf("seed %d: %d goroutines for %d cores", seed, len(groups), cores)
		}
		next := make([]int, len(counts)) // each shard's next block
		owner := map[int]int{}
		seen := 0
		for g, batches := range groups {
			for _, batch := range batches {
				if len(batch) == 0 || float64(len(batch)) > math.Ceil(mean) {
					t.Fatalf("seed %d: counts %v mean %v: a batch of %d", seed, counts, mean, len(batch))
				}
				in := map[int]bool{}
				for _, ref := range batch {
					if in[ref.shard] {
						t.Fatalf("seed %d: counts %v mean %v: shard %d twice in a batch", seed, counts, mean, ref.shard)
					}
					in[ref.shard] = true
					if o, ok := owner[ref.shard]; ok && o != g {
						t.Fatalf("seed %d: shard %d on two goroutines", seed, ref.shard)
					}
					owner[ref.shard] = g
					if ref.block != next[ref.shard] {
						t.Fatalf("seed %d: shard %d's block %d before %d", seed, ref.shard, ref.block, next[ref.shard])
					}
					next[ref.shard]++
					seen++
				}
			}
		}
		if seen != total {
			t.Fatalf("seed %d: counts %v: %d blocks in the batches, want %d", seed, counts, seen, total)
		}
	}
}
