package merkle_test

import (
	"math/rand/v2"
	"testing"

	"github.com/rustorium/rustorium/node/merkle"
)

// benchTrees returns n trees of size leaves each (committed over their own
// MapReader) and the keys they hold.
func benchTrees(b *testing.B, n, size int) ([]*merkle.Tree, [][]merkle.KV) {
	r := rand.New(rand.NewPCG(1, 2))
	trees := make([]*merkle.Tree, n)
	leaves := make([][]merkle.KV, n)
	for i := range trees {
		o := newOurs(b, merkle.Options{})
		leaves[i] = make([]merkle.KV, size)
		for j := range leaves[i] {
			leaves[i][j] = merkle.KV{Key: randElem(r), Value: randElem(r)}
		}
		if err := o.apply(leaves[i]); err != nil {
			b.Fatal(err)
		}
		trees[i] = o.tr
	}
	return trees, leaves
}

// benchBlocks returns rounds blocks of w writes per tree: updates of held keys
// and inserts of new ones, alternately.
func benchBlocks(r *rand.Rand, leaves [][]merkle.KV, rounds, w int) [][][]merkle.KV {
	out := make([][][]merkle.KV, rounds)
	for i := range out {
		out[i] = make([][]merkle.KV, len(leaves))
		for t := range leaves {
			kvs := make([]merkle.KV, w)
			for j := range kvs {
				kvs[j] = merkle.KV{Key: randElem(r), Value: randElem(r)}
				if j%2 == 0 {
					kvs[j].Key = leaves[t][r.IntN(len(leaves[t]))].Key
				}
			}
			out[i][t] = kvs
		}
	}
	return out
}

// BenchmarkApplyManySmall prepares blocks of two writes on four trees of
// 25k leaves each: one Apply per tree against one ApplyMany of the four.
func BenchmarkApplyManySmall(b *testing.B) {
	const nTrees, size, writes = 4, 25000, 2
	trees, leaves := benchTrees(b, nTrees, size)
	blocks := benchBlocks(rand.New(rand.NewPCG(3, 4)), leaves, 1024, writes)
	perBlock := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*nTrees), "ns/block")
	}
	b.Run("separate", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			for t, kvs := range blocks[i%len(blocks)] {
				if _, err := trees[t].Apply(kvs); err != nil {
					b.Fatal(err)
				}
			}
		}
		perBlock(b)
	})
	b.Run("many", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			_, errs := merkle.ApplyMany(trees, blocks[i%len(blocks)])
			for _, err := range errs {
				if err != nil {
					b.Fatal(err)
				}
			}
		}
		perBlock(b)
	})
}
