package merkle_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/rustorium/rustorium/node/merkle"
)

// configs exercise the sequential and the parallel hashing paths.
var configs = []merkle.Options{
	{Parallelism: 1},
	{Parallelism: 4, ParallelCutoff: 1, CacheNodes: 64},
}

func TestEmptyAndSmallTrees(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3} {
		for _, opts := range configs {
			o, ref := newOurs(t, opts), newOracle(t, levels)
			var kvs []merkle.KV
			for i := 0; i < n; i++ {
				k, v := elem(uint64(i*7+1)), elem(uint64(100+i))
				kvs = append(kvs, merkle.KV{Key: k, Value: v})
				if err := ref.set(k, v); err != nil {
					t.Fatal(err)
				}
			}
			if err := o.apply(kvs); err != nil {
				t.Fatal(err)
			}
			if got, want := o.tr.Root(), ref.root(); !got.Equal(&want) {
				t.Fatalf("%d leaves: root %s, want %s", n, got.String(), want.String())
			}
		}
	}
	// empty batch on empty tree
	o := newOurs(t, merkle.Options{})
	u, err := o.tr.Apply(nil)
	if err != nil || !u.Root.IsZero() || len(u.Nodes) != 0 {
		t.Fatalf("empty apply: %v %v %d", err, u.Root.String(), len(u.Nodes))
	}
}

// TestOracleBatches compares the root after every batch with
// go-merkletree-sql fed the same writes one at a time.
func TestOracleBatches(t *testing.T) {
	for _, kind := range []string{"uniform", "small", "prefix"} {
		for ci, opts := range configs {
			t.Run(fmt.Sprintf("%s/cfg%d", kind, ci), func(t *testing.T) {
				r, _ := seeded(t)
				gen := keyGen(kind, r)
				o, ref := newOurs(t, opts), newOracle(t, levels)
				var known []fr.Element
				for b, size := range []int{1, 2, 1, 7, 100, 3, 500, 1, 64} {
					kvs := make([]merkle.KV, size)
					for i := range kvs {
						k := gen()
						if len(known) > 0 && r.IntN(4) == 0 {
							k = known[r.IntN(len(known))] // update an existing key
						}
						known = append(known, k)
						kvs[i] = merkle.KV{Key: k, Value: randElem(r)}
						if r.IntN(10) == 0 {
							kvs[i].Value = fr.Element{} // zero is a value
						}
						if err := ref.set(kvs[i].Key, kvs[i].Value); err != nil {
							t.Fatal(err)
						}
					}
					if err := o.apply(kvs); err != nil {
						t.Fatal(err)
					}
					if got, want := o.tr.Root(), ref.root(); !got.Equal(&want) {
						t.Fatalf("batch %d (size %d): root %s, want %s", b, size, got.String(), want.String())
					}
				}
			})
		}
	}
}

// TestDuplicateKeysInBatch checks that the last write of a key in a batch wins.
func TestDuplicateKeysInBatch(t *testing.T) {
	r, _ := seeded(t)
	o, ref := newOurs(t, merkle.Options{}), newOracle(t, levels)
	var kvs []merkle.KV
	for i := 0; i < 200; i++ {
		k, v := elem(r.Uint64N(20)), randElem(r)
		kvs = append(kvs, merkle.KV{Key: k, Value: v})
		if err := ref.set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := o.apply(kvs); err != nil {
		t.Fatal(err)
	}
	if got, want := o.tr.Root(), ref.root(); !got.Equal(&want) {
		t.Fatalf("root %s, want %s", got.String(), want.String())
	}
}

// rebuilt is the root of a go-merkletree-sql tree holding exactly m.
func rebuilt(t *testing.T, m map[fr.Element]fr.Element) fr.Element {
	ref := newOracle(t, levels)
	for k, v := range m {
		if err := ref.set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	return ref.root()
}

// TestDeletes checks deletion. go-merkletree-sql v2.0.6's Delete corrupts
// the tree when the deleted leaf's sibling is a middle node (it promotes
// that middle node, shifting its subtree's paths: go-merkletree-sql issue
// 23, fixed in js-merkletree). Our deletion is canonical: the root equals
// that of a tree built from the remaining leaves, which is also what
// go-merkletree-sql's Delete gives whenever it is correct.
func TestDeletes(t *testing.T) {
	for _, kind := range []string{"uniform", "small", "prefix"} {
		for ci, opts := range configs {
			t.Run(fmt.Sprintf("%s/cfg%d", kind, ci), func(t *testing.T) {
				r, _ := seeded(t)
				gen := keyGen(kind, r)
				o := newOurs(t, opts)
				state := map[fr.Element]fr.Element{}
				for b := 0; b < 12; b++ {
					var kvs []merkle.KV
					for i := 0; i < 1+r.IntN(60); i++ {
						var kv merkle.KV
						if len(state) > 0 && r.IntN(3) == 0 {
							for k := range state { // a random present key
								kv = merkle.KV{Key: k, Delete: true}
								break
							}
						} else if r.IntN(8) == 0 {
							kv = merkle.KV{Key: gen(), Delete: true} // maybe absent
						} else {
							kv = merkle.KV{Key: gen(), Value: randElem(r)}
						}
						kvs = append(kvs, kv)
						if kv.Delete {
							delete(state, kv.Key)
						} else {
							state[kv.Key] = kv.Value
						}
					}
					if err := o.apply(kvs); err != nil {
						t.Fatal(err)
					}
					if got, want := o.tr.Root(), rebuilt(t, state); !got.Equal(&want) {
						t.Fatalf("batch %d: root %s, want %s (%d leaves)", b, got.String(), want.String(), len(state))
					}
				}
				// delete everything
				var kvs []merkle.KV
				for k := range state {
					kvs = append(kvs, merkle.KV{Key: k, Delete: true})
				}
				if err := o.apply(kvs); err != nil {
					t.Fatal(err)
				}
				if root := o.tr.Root(); !root.IsZero() {
					t.Fatalf("root after deleting all: %s", root.String())
				}
			})
		}
	}
}

// TestDeleteMatchesIden3 compares single deletes with go-merkletree-sql's
// Delete where that is correct (the deleted leaf's sibling is a leaf).
func TestDeleteMatchesIden3(t *testing.T) {
	r, _ := seeded(t)
	o, ref := newOurs(t, merkle.Options{}), newOracle(t, levels)
	state := map[fr.Element]fr.Element{}
	var kvs []merkle.KV
	for i := 0; i < 120; i++ {
		k, v := randElem(r), randElem(r)
		kvs = append(kvs, merkle.KV{Key: k, Value: v})
		state[k] = v
		if err := ref.set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := o.apply(kvs); err != nil {
		t.Fatal(err)
	}
	compared := 0
	for k := range state {
		if err := o.apply([]merkle.KV{{Key: k, Delete: true}}); err != nil {
			t.Fatal(err)
		}
		delete(state, k)
		if err := ref.del(k); err != nil {
			t.Fatal(err)
		}
		want := rebuilt(t, state)
		if got := o.tr.Root(); !got.Equal(&want) {
			t.Fatalf("delete: root %s, rebuilt %s", got.String(), want.String())
		}
		if lib := ref.root(); lib.Equal(&want) {
			compared++
		} else {
			// the library's tree is now corrupt; restart it from the state
			ref = newOracle(t, levels)
			for k, v := range state {
				ref.set(k, v)
			}
		}
		if len(state) < 90 {
			break
		}
	}
	if compared == 0 {
		t.Fatal("no delete matched the library")
	}
}

// TestIden3DeleteBug documents go-merkletree-sql's Delete defect and that
// our tree does the canonical thing.
func TestIden3DeleteBug(t *testing.T) {
	ref := newOracle(t, levels)
	o := newOurs(t, merkle.Options{})
	// key 2 (…10) is left of the root; 1 (…01) and 3 (…11) right, split at bit 1.
	for _, k := range []uint64{2, 1, 3} {
		ref.set(elem(k), elem(k*10))
	}
	o.apply([]merkle.KV{{Key: elem(2), Value: elem(20)}, {Key: elem(1), Value: elem(10)}, {Key: elem(3), Value: elem(30)}})
	ref.del(elem(2))
	o.apply([]merkle.KV{{Key: elem(2), Delete: true}})
	want := rebuilt(t, map[fr.Element]fr.Element{elem(1): elem(10), elem(3): elem(30)})
	if got := o.tr.Root(); !got.Equal(&want) {
		t.Fatalf("ours %s, rebuilt %s", got.String(), want.String())
	}
	if lib := ref.root(); lib.Equal(&want) {
		t.Log("go-merkletree-sql's Delete is fixed in this version; TestDeletes could compare with it directly")
	}
	if v, found, err := o.tr.Get(elem(1)); err != nil || !found || !v.Equal(ptr(elem(10))) {
		t.Fatalf("get 1: %v %v %v", v.String(), found, err)
	}
}

func ptr(e fr.Element) *fr.Element { return &e }

func TestMaxLevels(t *testing.T) {
	for _, ml := range []int{4, 8, 64} {
		ref := newOracle(t, ml)
		o := newOurs(t, merkle.Options{MaxLevels: ml})
		// keys equal in their lowest ml-1 bits cannot coexist
		a := elem(5)
		var b fr.Element
		b.SetUint64(1)
		for i := 0; i < ml-1; i++ {
			b.Double(&b)
		}
		b.Add(&b, &a) // a + 2^(ml-1): differs first at bit ml-1
		if err := ref.set(a, elem(1)); err != nil {
			t.Fatal(err)
		}
		errLib := ref.set(b, elem(2))
		if errLib == nil {
			t.Fatalf("maxLevels %d: library accepted keys sharing %d bits", ml, ml-1)
		}
		err := o.apply([]merkle.KV{{Key: a, Value: elem(1)}, {Key: b, Value: elem(2)}})
		if !errors.Is(err, merkle.ErrReachedMaxLevel) {
			t.Fatalf("maxLevels %d: err %v, want ErrReachedMaxLevel", ml, err)
		}
		// one bit less shared fits in both
		var c fr.Element
		c.SetUint64(1)
		for i := 0; i < ml-2; i++ {
			c.Double(&c)
		}
		c.Add(&c, &a)
		if err := ref.set(c, elem(3)); err != nil {
			t.Fatalf("maxLevels %d: library: %v", ml, err)
		}
		if err := o.apply([]merkle.KV{{Key: a, Value: elem(1)}, {Key: c, Value: elem(3)}}); err != nil {
			t.Fatal(err)
		}
		if got, want := o.tr.Root(), ref.root(); !got.Equal(&want) {
			t.Fatalf("maxLevels %d: root %s want %s", ml, got.String(), want.String())
		}
		// the failed batch left the tree as it was
	}
}

func TestCommitStale(t *testing.T) {
	o := newOurs(t, merkle.Options{})
	u1, _ := o.tr.Apply([]merkle.KV{{Key: elem(1), Value: elem(1)}})
	u2, _ := o.tr.Apply([]merkle.KV{{Key: elem(2), Value: elem(2)}})
	o.db.Put(u1)
	if err := o.tr.Commit(u1); err != nil {
		t.Fatal(err)
	}
	if err := o.tr.Commit(u2); !errors.Is(err, merkle.ErrStaleUpdate) {
		t.Fatalf("err %v, want ErrStaleUpdate", err)
	}
}

// TestReopenSmallCache reopens a tree from its store with a tiny cache, so
// nodes load on demand, and checks proofs and further batches.
func TestReopenSmallCache(t *testing.T) {
	r, _ := seeded(t)
	o, ref := newOurs(t, merkle.Options{CacheNodes: 8}), newOracle(t, levels)
	var keys []fr.Element
	for b := 0; b < 3; b++ {
		var kvs []merkle.KV
		for i := 0; i < 200; i++ {
			k, v := randElem(r), randElem(r)
			keys = append(keys, k)
			kvs = append(kvs, merkle.KV{Key: k, Value: v})
			ref.set(k, v)
		}
		if err := o.apply(kvs); err != nil {
			t.Fatal(err)
		}
	}
	tr, err := merkle.New(o.db, o.tr.Root(), merkle.Options{CacheNodes: 4})
	if err != nil {
		t.Fatal(err)
	}
	proofs, values, root, err := tr.ProveMany(keys)
	if err != nil {
		t.Fatal(err)
	}
	for i := range keys {
		if err := merkle.VerifyProof(root, proofs[i], keys[i], values[i]); err != nil || !proofs[i].Existence {
			t.Fatalf("key %d: %v", i, err)
		}
	}
	// missing root node
	var bogus fr.Element
	bogus.SetUint64(12345)
	if _, err := merkle.New(o.db, bogus, merkle.Options{}); !errors.Is(err, merkle.ErrNodeNotFound) {
		t.Fatalf("bogus root: %v", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, o := range []merkle.Options{{MaxLevels: -1}, {MaxLevels: 241}, {Parallelism: -2}, {CacheNodes: -1}, {ParallelCutoff: -1}} {
		if _, err := merkle.New(merkle.MapReader{}, fr.Element{}, o); !errors.Is(err, merkle.ErrInvalidOptions) {
			t.Errorf("%+v: %v", o, err)
		}
	}
}

var _ = rand.New

// TestUpdatePermutations counts the hashes a batch needs by the tree's
// shape: one per new leaf and one per new middle node on the paths.
func TestUpdatePermutations(t *testing.T) {
	for _, opts := range configs {
		o := newOurs(t, opts)
		// Keys 1 and 3 share their lowest bit: two leaves under a middle
		// node at depth 1, under the root at depth 0.
		u, err := o.tr.Apply([]merkle.KV{{Key: elem(1), Value: elem(10)}, {Key: elem(3), Value: elem(30)}})
		if err != nil {
			t.Fatal(err)
		}
		if got := u.Permutations(); got != 4 {
			t.Fatalf("two leaves sharing one bit: %d permutations, want 4", got)
		}
		o.db.Put(u)
		if err := o.tr.Commit(u); err != nil {
			t.Fatal(err)
		}
		// Rewriting key 1: its leaf and the two middle nodes above it.
		if u, err = o.tr.Apply([]merkle.KV{{Key: elem(1), Value: elem(11)}}); err != nil {
			t.Fatal(err)
		}
		if got := u.Permutations(); got != 3 {
			t.Fatalf("one rewrite at depth 2: %d permutations, want 3", got)
		}
	}
}

// TestNoOpWrites checks that writes that change nothing (a key written
// with the value it holds, a deletion of an absent key) create no node and
// keep the root, alone and mixed with real writes: Apply decides this from
// the nodes' contents before anything is hashed, and never lists a node the
// store already holds. Roots are compared with go-merkletree-sql.
func TestNoOpWrites(t *testing.T) {
	for ci, opts := range append(configs, merkle.Options{Parallelism: 2}) {
		r := rand.New(rand.NewPCG(uint64(ci), 11))
		o, ref := newOurs(t, opts), newOracle(t, levels)
		var keys, vals []fr.Element
		var kvs []merkle.KV
		for i := 0; i < 3000; i++ {
			k, v := randElem(r), randElem(r)
			keys, vals = append(keys, k), append(vals, v)
			kvs = append(kvs, merkle.KV{Key: k, Value: v})
			if err := ref.set(k, v); err != nil {
				t.Fatal(err)
			}
		}
		if err := o.apply(kvs); err != nil {
			t.Fatal(err)
		}
		root := o.tr.Root()
		if want := ref.root(); !root.Equal(&want) {
			t.Fatalf("cfg %d: root %s, want %s", ci, root.String(), want.String())
		}
		// only no-ops
		kvs = kvs[:0]
		for i := 0; i < 500; i++ {
			j := r.IntN(len(keys))
			kvs = append(kvs, merkle.KV{Key: keys[j], Value: vals[j]}, merkle.KV{Key: randElem(r), Delete: true})
		}
		u, err := o.tr.Apply(kvs)
		if err != nil {
			t.Fatal(err)
		}
		if !u.Root.Equal(&root) || len(u.Nodes) != 0 {
			t.Fatalf("cfg %d: no-op batch: root %s (was %s), %d nodes", ci, u.Root.String(), root.String(), len(u.Nodes))
		}
		// no-ops mixed with real writes
		for i := 0; i < 300; i++ {
			j := r.IntN(len(keys))
			if i%3 == 0 {
				vals[j] = randElem(r)
				if err := ref.set(keys[j], vals[j]); err != nil {
					t.Fatal(err)
				}
			}
			kvs = append(kvs, merkle.KV{Key: keys[j], Value: vals[j]})
		}
		if u, err = o.tr.Apply(kvs); err != nil {
			t.Fatal(err)
		}
		for _, w := range u.Nodes {
			if _, err := o.db.ReadNode(w.Hash); err == nil {
				t.Fatalf("cfg %d: Apply listed a node the store holds", ci)
			}
		}
		o.db.Put(u)
		if err := o.tr.Commit(u); err != nil {
			t.Fatal(err)
		}
		if got, want := o.tr.Root(), ref.root(); !got.Equal(&want) {
			t.Fatalf("cfg %d: mixed batch: root %s, want %s", ci, got.String(), want.String())
		}
	}
}

// TestApplyYieldsBetweenHeights: an update lets the other goroutines of its
// P run between the heights it hashes (hashAll), as the node's pacer and
// ingress need on two busy cores. On one P, a goroutine that only counts
// its turns gets some while a one-leaf update of a tree of 4096 leaves
// runs: about a dozen heights of a few µs each, far below the 10 ms after
// which the runtime would preempt the update.
func TestApplyYieldsBetweenHeights(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	o := newOurs(t, merkle.Options{Parallelism: 1})
	r := rand.New(rand.NewPCG(7, 7))
	kvs := make([]merkle.KV, 4096)
	for i := range kvs {
		kvs[i] = merkle.KV{Key: randElem(r), Value: randElem(r)}
	}
	if err := o.apply(kvs); err != nil {
		t.Fatal(err)
	}
	var (
		turns         atomic.Int64
		updating, end atomic.Bool
		done          = make(chan struct{})
	)
	go func() {
		defer close(done)
		for !end.Load() {
			if updating.Load() {
				turns.Add(1)
			}
			runtime.Gosched()
		}
	}()
	runtime.Gosched() // let it start
	updating.Store(true)
	u, err := o.tr.Apply([]merkle.KV{{Key: kvs[0].Key, Value: elem(1)}})
	updating.Store(false)
	end.Store(true)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	if len(u.Nodes) < 3 {
		t.Fatalf("the update wrote %d nodes: too shallow a path to tell", len(u.Nodes))
	}
	if turns.Load() == 0 {
		t.Fatalf("no other goroutine ran during an update of %d nodes", len(u.Nodes))
	}
}
