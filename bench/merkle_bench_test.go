package bench_test

import (
	"context"
	"errors"
	"math/big"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	iden3 "github.com/iden3/go-merkletree-sql/v2"
	"github.com/iden3/go-merkletree-sql/v2/db/memory"

	"github.com/rustorium/rustorium/node/merkle"
)

// The Merkle benchmarks compare our batched tree with go-merkletree-sql
// (v2.0.6, in-memory storage) on the same writes, in the same run, and log
// the throughput ratio. Run them with, e.g.:
//
//	go test -run xxx -bench Merkle -benchtime 1x ./bench/
//
// (the go-merkletree-sql side of the 30-block benchmark takes ~10 s per op).

const (
	mkLevels      = 64
	mkBlocks      = 30
	mkBlockWrites = 1000
	mkBaseLeaves  = 100_000
)

// mkWrite is one write, also in go-merkletree-sql's form.
type mkWrite struct {
	kv     merkle.KV
	k, v   *big.Int
	update bool // the key is already in the tree (go-merkletree-sql: Update, else Add)
}

func mkRandElem(r *rand.Rand) fr.Element {
	var b [32]byte
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	var e fr.Element
	e.SetBytes(b[:])
	return e
}

func mkNewWrite(k, v fr.Element, update bool) mkWrite {
	return mkWrite{kv: merkle.KV{Key: k, Value: v}, k: k.BigInt(new(big.Int)), v: v.BigInt(new(big.Int)), update: update}
}

// mkGenBlock makes a block of n writes: ~80% new keys, ~20% updates of keys
// from existing (and of keys written earlier in the block).
func mkGenBlock(r *rand.Rand, n int, existing *[]fr.Element, present map[fr.Element]bool) []mkWrite {
	ws := make([]mkWrite, n)
	for i := range ws {
		var k fr.Element
		if len(*existing) > 0 && r.IntN(5) == 0 {
			k = (*existing)[r.IntN(len(*existing))]
		} else {
			k = mkRandElem(r)
			*existing = append(*existing, k)
		}
		ws[i] = mkNewWrite(k, mkRandElem(r), present[k])
		present[k] = true
	}
	return ws
}

func mkKVs(ws []mkWrite) []merkle.KV {
	kvs := make([]merkle.KV, len(ws))
	for i := range ws {
		kvs[i] = ws[i].kv
	}
	return kvs
}

// iden3Apply writes ws one at a time, as go-merkletree-sql is used.
func iden3Apply(ctx context.Context, mt *iden3.MerkleTree, ws []mkWrite) error {
	for i := range ws {
		var err error
		if ws[i].update {
			_, err = mt.Update(ctx, ws[i].k, ws[i].v)
		} else {
			err = mt.Add(ctx, ws[i].k, ws[i].v)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func sameRoot(ours fr.Element, theirs *iden3.Hash) bool {
	le := merkle.ElementLE(&ours)
	return le == [32]byte(*theirs)
}

// ---- 30 blocks of 1000 writes into a growing tree ----

type growingData struct {
	blocks [][]mkWrite
	kvs    [][]merkle.KV
	roots  []fr.Element // our root after each block
}

var growing = sync.OnceValues(func() (*growingData, error) {
	r := rand.New(rand.NewPCG(30, 1000))
	d := &growingData{}
	var existing []fr.Element
	present := map[fr.Element]bool{}
	for b := 0; b < mkBlocks; b++ {
		ws := mkGenBlock(r, mkBlockWrites, &existing, present)
		d.blocks = append(d.blocks, ws)
		d.kvs = append(d.kvs, mkKVs(ws))
	}
	store := merkle.MapReader{}
	tr, err := merkle.New(store, fr.Element{}, merkle.Options{MaxLevels: mkLevels})
	if err != nil {
		return nil, err
	}
	for _, kvs := range d.kvs {
		u, err := tr.Apply(kvs)
		if err != nil {
			return nil, err
		}
		store.Put(u)
		if err := tr.Commit(u); err != nil {
			return nil, err
		}
		d.roots = append(d.roots, u.Root)
	}
	return d, nil
})

func BenchmarkMerkleBlocks30x1000(b *testing.B) {
	d, err := growing()
	if err != nil {
		b.Fatal(err)
	}
	var oursNs, theirsNs float64
	b.Run("ours", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			store := merkle.MapReader{}
			tr, err := merkle.New(store, fr.Element{}, merkle.Options{MaxLevels: mkLevels})
			if err != nil {
				b.Fatal(err)
			}
			for blk, kvs := range d.kvs {
				u, err := tr.Apply(kvs)
				if err != nil {
					b.Fatal(err)
				}
				store.Put(u)
				if err := tr.Commit(u); err != nil {
					b.Fatal(err)
				}
				if !u.Root.Equal(&d.roots[blk]) {
					b.Fatalf("block %d: root differs from setup", blk)
				}
			}
		}
		oursNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(float64(mkBlocks*mkBlockWrites*b.N)/b.Elapsed().Seconds(), "writes/s")
	})
	b.Run("iden3", func(b *testing.B) {
		b.ReportAllocs()
		ctx := context.Background()
		for i := 0; i < b.N; i++ {
			mt, err := iden3.NewMerkleTree(ctx, memory.NewMemoryStorage(), mkLevels)
			if err != nil {
				b.Fatal(err)
			}
			for blk, ws := range d.blocks {
				if err := iden3Apply(ctx, mt, ws); err != nil {
					b.Fatal(err)
				}
				if !sameRoot(d.roots[blk], mt.Root()) {
					b.Fatalf("block %d: go-merkletree-sql root %s, ours %s", blk, mt.Root().BigInt(), d.roots[blk].String())
				}
			}
		}
		theirsNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(float64(mkBlocks*mkBlockWrites*b.N)/b.Elapsed().Seconds(), "writes/s")
	})
	if oursNs > 0 && theirsNs > 0 {
		b.Logf("30x1000 writes, growing tree: ours %.1f ms, go-merkletree-sql %.1f ms: %.2fx", oursNs/1e6, theirsNs/1e6, theirsNs/oursNs)
	}
}

// ---- a 1000-write block into a 100k-leaf tree, proofs ----

type bigTreeData struct {
	store    merkle.MapReader
	cache    *merkle.NodeCache
	root     fr.Element
	keys     []fr.Element
	values   []fr.Element
	iden3DB  *memory.Storage
	iden3Rt  *iden3.Hash
	mu       sync.Mutex
	blocks   map[int][]mkWrite // per iteration, generated lazily
	blockRts map[int]fr.Element
}

// bigTree builds the 100k-leaf tree once with our batched Apply, then loads
// the very same node bytes into go-merkletree-sql's memory storage (the
// node encoding is identical), so neither side pays 100k single inserts.
var bigTree = sync.OnceValues(func() (*bigTreeData, error) {
	r := rand.New(rand.NewPCG(100, 1000))
	d := &bigTreeData{store: merkle.MapReader{}, cache: merkle.NewNodeCache(1 << 20), blocks: map[int][]mkWrite{}, blockRts: map[int]fr.Element{}}
	tr, err := merkle.New(d.store, fr.Element{}, merkle.Options{MaxLevels: mkLevels, Cache: d.cache})
	if err != nil {
		return nil, err
	}
	for lo := 0; lo < mkBaseLeaves; lo += 10_000 {
		kvs := make([]merkle.KV, 10_000)
		for i := range kvs {
			kvs[i] = merkle.KV{Key: mkRandElem(r), Value: mkRandElem(r)}
			d.keys = append(d.keys, kvs[i].Key)
			d.values = append(d.values, kvs[i].Value)
		}
		u, err := tr.Apply(kvs)
		if err != nil {
			return nil, err
		}
		d.store.Put(u)
		if err := tr.Commit(u); err != nil {
			return nil, err
		}
	}
	d.root = tr.Root()
	ctx := context.Background()
	d.iden3DB = memory.NewMemoryStorage()
	for k, enc := range d.store {
		n, err := iden3.NewNodeFromBytes(enc)
		if err != nil {
			return nil, err
		}
		if err := d.iden3DB.Put(ctx, k[:], n); err != nil {
			return nil, err
		}
	}
	rh := iden3.Hash(merkle.ElementLE(&d.root))
	d.iden3Rt = &rh
	if err := d.iden3DB.SetRoot(ctx, d.iden3Rt); err != nil {
		return nil, err
	}
	// sanity: the library reads our nodes and proves one of our keys
	mt, err := iden3.NewMerkleTree(ctx, d.iden3DB, mkLevels)
	if err != nil {
		return nil, err
	}
	p, _, err := mt.GenerateProof(ctx, d.keys[0].BigInt(new(big.Int)), nil)
	if err != nil || !p.Existence || !iden3.VerifyProof(mt.Root(), p, d.keys[0].BigInt(new(big.Int)), d.values[0].BigInt(new(big.Int))) {
		return nil, errors.New("go-merkletree-sql cannot prove a key of the shared tree")
	}
	return d, nil
})

// block returns iteration i's block (distinct per iteration, so nodes that
// go-merkletree-sql added in earlier iterations never collide).
func (d *bigTreeData) block(i int) []mkWrite {
	d.mu.Lock()
	defer d.mu.Unlock()
	if ws, ok := d.blocks[i]; ok {
		return ws
	}
	r := rand.New(rand.NewPCG(uint64(i), 7))
	ws := make([]mkWrite, mkBlockWrites)
	for j := range ws {
		if r.IntN(5) == 0 {
			n := r.IntN(len(d.keys))
			ws[j] = mkNewWrite(d.keys[n], mkRandElem(r), true)
		} else {
			k := mkRandElem(r)
			ws[j] = mkNewWrite(k, mkRandElem(r), false)
		}
	}
	d.blocks[i] = ws
	return ws
}

func BenchmarkMerkleBlock1000Into100k(b *testing.B) {
	d, err := bigTree()
	if err != nil {
		b.Fatal(err)
	}
	var oursNs, theirsNs float64
	b.Run("ours", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			kvs := mkKVs(d.block(i))
			tr, err := merkle.New(d.store, d.root, merkle.Options{MaxLevels: mkLevels, Cache: d.cache})
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			u, err := tr.Apply(kvs)
			if err != nil {
				b.Fatal(err)
			}
			d.store.Put(u)
			if err := tr.Commit(u); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			d.mu.Lock()
			d.blockRts[i] = u.Root
			d.mu.Unlock()
			b.StartTimer()
		}
		oursNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(float64(mkBlockWrites*b.N)/b.Elapsed().Seconds(), "writes/s")
	})
	b.Run("iden3", func(b *testing.B) {
		b.ReportAllocs()
		ctx := context.Background()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			ws := d.block(i)
			if err := d.iden3DB.SetRoot(ctx, d.iden3Rt); err != nil {
				b.Fatal(err)
			}
			mt, err := iden3.NewMerkleTree(ctx, d.iden3DB, mkLevels)
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if err := iden3Apply(ctx, mt, ws); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			d.mu.Lock()
			want, ok := d.blockRts[i]
			d.mu.Unlock()
			if ok && !sameRoot(want, mt.Root()) {
				b.Fatalf("iteration %d: roots differ", i)
			}
			b.StartTimer()
		}
		theirsNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(float64(mkBlockWrites*b.N)/b.Elapsed().Seconds(), "writes/s")
	})
	if oursNs > 0 && theirsNs > 0 {
		b.Logf("1000 writes into 100k leaves: ours %.2f ms, go-merkletree-sql %.2f ms: %.2fx", oursNs/1e6, theirsNs/1e6, theirsNs/oursNs)
	}
}

func BenchmarkMerkleProve(b *testing.B) {
	d, err := bigTree()
	if err != nil {
		b.Fatal(err)
	}
	tr, err := merkle.New(d.store, d.root, merkle.Options{MaxLevels: mkLevels, Cache: d.cache})
	if err != nil {
		b.Fatal(err)
	}
	var oursNs, theirsNs float64
	b.Run("ours", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, _, err := tr.Prove(d.keys[i%len(d.keys)]); err != nil {
				b.Fatal(err)
			}
		}
		oursNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("ours-many1000", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			lo := (i * 1000) % (len(d.keys) - 1000)
			if _, _, _, err := tr.ProveMany(d.keys[lo : lo+1000]); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(1000*b.N)/b.Elapsed().Seconds(), "proofs/s")
	})
	b.Run("iden3", func(b *testing.B) {
		b.ReportAllocs()
		ctx := context.Background()
		if err := d.iden3DB.SetRoot(ctx, d.iden3Rt); err != nil {
			b.Fatal(err)
		}
		mt, err := iden3.NewMerkleTree(ctx, d.iden3DB, mkLevels)
		if err != nil {
			b.Fatal(err)
		}
		bigKeys := make([]*big.Int, 1000)
		for i := range bigKeys {
			bigKeys[i] = d.keys[i].BigInt(new(big.Int))
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, _, err := mt.GenerateProof(ctx, bigKeys[i%len(bigKeys)], nil); err != nil {
				b.Fatal(err)
			}
		}
		theirsNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	if oursNs > 0 && theirsNs > 0 {
		b.Logf("proof generation, 100k leaves: ours %.1f µs, go-merkletree-sql %.1f µs: %.2fx", oursNs/1e3, theirsNs/1e3, theirsNs/oursNs)
	}
}

func BenchmarkMerkleVerify(b *testing.B) {
	d, err := bigTree()
	if err != nil {
		b.Fatal(err)
	}
	tr, err := merkle.New(d.store, d.root, merkle.Options{MaxLevels: mkLevels, Cache: d.cache})
	if err != nil {
		b.Fatal(err)
	}
	const n = 256
	proofs, values, root, err := tr.ProveMany(d.keys[:n])
	if err != nil {
		b.Fatal(err)
	}
	theirs := make([]*iden3.Proof, n)
	bigK, bigV := make([]*big.Int, n), make([]*big.Int, n)
	for i := range proofs {
		bin, err := proofs[i].MarshalBinary()
		if err != nil {
			b.Fatal(err)
		}
		if theirs[i], err = iden3.NewProofFromBytes(bin); err != nil {
			b.Fatal(err)
		}
		bigK[i], bigV[i] = d.keys[i].BigInt(new(big.Int)), values[i].BigInt(new(big.Int))
	}
	var oursNs, theirsNs float64
	b.Run("ours", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			j := i % n
			if err := merkle.VerifyProof(root, proofs[j], d.keys[j], values[j]); err != nil {
				b.Fatal(err)
			}
		}
		oursNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("iden3", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			j := i % n
			if !iden3.VerifyProof(d.iden3Rt, theirs[j], bigK[j], bigV[j]) {
				b.Fatal("go-merkletree-sql rejects our proof")
			}
		}
		theirsNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	if oursNs > 0 && theirsNs > 0 {
		b.Logf("proof verification, 100k leaves: ours %.1f µs, go-merkletree-sql %.1f µs: %.2fx", oursNs/1e3, theirsNs/1e3, theirsNs/oursNs)
	}
}
