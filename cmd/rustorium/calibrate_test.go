package main

import (
	"math"
	"testing"
)

// TestSolveOverhead: two runs' extra CPU made of a known cost per
// transaction and per block give those costs back; runs whose blocks
// cannot separate the two (the same transactions per block), or a fit
// with a negative part, fall back to the first run's extra per
// transaction.
func TestSolveOverhead(t *testing.T) {
	const perTx, perBlock = 200e3, 2e6 // ns
	pt := func(txs, blocks float64) e2ePoint {
		return e2ePoint{txs: txs, blocks: blocks, extra: perTx*txs + perBlock*blocks}
	}
	got := solveOverhead([2]e2ePoint{pt(1000, 450), pt(3000, 90)})
	if math.Abs(got.perTx-perTx) > 1e-6 || math.Abs(got.perBlock-perBlock) > 1e-3 {
		t.Fatalf("fit %+v, want %v per tx and %v per block", got, perTx, perBlock)
	}
	same := solveOverhead([2]e2ePoint{pt(1000, 100), pt(3000, 300)})
	if same.perBlock != 0 || math.Abs(same.perTx-(perTx+perBlock*0.1)) > 1e-6 {
		t.Fatalf("blocks of the same size: %+v, want everything per transaction", same)
	}
	// More extra per second at the lower rate with fewer blocks: a
	// negative per-transaction part, refused.
	neg := solveOverhead([2]e2ePoint{{txs: 1000, blocks: 100, extra: 5e8}, {txs: 3000, blocks: 90, extra: 1e8}})
	if neg.perBlock != 0 || neg.perTx != 5e5 {
		t.Fatalf("negative fit: %+v, want the first run's 500 µs per transaction alone", neg)
	}
}
