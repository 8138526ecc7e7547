package merkle_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/rustorium/rustorium/node/merkle"
)

// failingReader is a MapReader whose reads fail while fail is set.
type failingReader struct {
	merkle.MapReader
	fail *atomic.Bool
}

var errInjected = errors.New("injected read error")

func (f failingReader) ReadNode(h []byte) ([]byte, error) {
	if f.fail.Load() {
		return nil, errInjected
	}
	return f.MapReader.ReadNode(h)
}

// manyTree is a tree of ApplyMany's tests with its store and a model of
// its contents.
type manyTree struct {
	db    merkle.MapReader
	tr    *merkle.Tree
	fail  *atomic.Bool // its reads fail (a tiny cache makes its walks read)
	state map[fr.Element]fr.Element
	keys  []fr.Element // every key ever written
}

func newManyTree(t *testing.T, r *rand.Rand, opts merkle.Options, leaves int) *manyTree {
	t.Helper()
	m, err := buildManyTree(t, r, opts, leaves)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// buildManyTree returns a tree holding leaves random leaves, or the error
// of applying them (ErrReachedMaxLevel when they do not fit).
func buildManyTree(t *testing.T, r *rand.Rand, opts merkle.Options, leaves int) (*manyTree, error) {
	t.Helper()
	m := &manyTree{db: merkle.MapReader{}, fail: new(atomic.Bool), state: map[fr.Element]fr.Element{}}
	tr, err := merkle.New(failingReader{m.db, m.fail}, fr.Element{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	m.tr = tr
	kvs := make([]merkle.KV, leaves)
	for i := range kvs {
		kvs[i] = merkle.KV{Key: randElem(r), Value: randElem(r)}
	}
	u, err := tr.Apply(kvs)
	if err != nil {
		return nil, err
	}
	m.db.Put(u)
	if err := tr.Commit(u); err != nil {
		t.Fatal(err)
	}
	m.record(kvs)
	return m, nil
}

// commit applies kvs alone and commits them.
func (m *manyTree) commit(t *testing.T, kvs []merkle.KV) {
	t.Helper()
	u, err := m.tr.Apply(kvs)
	if err != nil {
		t.Fatal(err)
	}
	m.db.Put(u)
	if err := m.tr.Commit(u); err != nil {
		t.Fatal(err)
	}
	m.record(kvs)
}

func (m *manyTree) record(kvs []merkle.KV) {
	for _, kv := range kvs {
		m.keys = append(m.keys, kv.Key)
		if kv.Delete {
			delete(m.state, kv.Key)
		} else {
			m.state[kv.Key] = kv.Value
		}
	}
}

// batch returns up to n random writes: inserts, updates (some of a key's
// own value: no-ops), deletes of present and absent keys, repeated keys.
func (m *manyTree) batch(r *rand.Rand, n int) []merkle.KV {
	var present []fr.Element
	for k := range m.state {
		present = append(present, k)
	}
	kvs := make([]merkle.KV, r.IntN(n+1))
	for i := range kvs {
		switch c := r.IntN(10); {
		case c < 3 && len(present) > 0: // update
			k := present[r.IntN(len(present))]
			kvs[i] = merkle.KV{Key: k, Value: randElem(r)}
			if r.IntN(4) == 0 {
				kvs[i].Value = m.state[k] // its own value
			}
		case c < 5 && len(present) > 0: // delete
			kvs[i] = merkle.KV{Key: present[r.IntN(len(present))], Delete: true}
		case c == 5: // delete an absent key
			kvs[i] = merkle.KV{Key: randElem(r), Delete: true}
		case c == 6 && i > 0: // a key of this batch again
			kvs[i] = merkle.KV{Key: kvs[r.IntN(i)].Key, Value: randElem(r)}
		default: // insert
			kvs[i] = merkle.KV{Key: randElem(r), Value: randElem(r)}
		}
	}
	return kvs
}

// sameUpdate fails unless got (from ApplyMany) is want (from Apply).
func sameUpdate(t *testing.T, what string, got, want *merkle.Update) {
	t.Helper()
	if !got.Root.Equal(&want.Root) {
		t.Fatalf("%s: root %s, want %s", what, got.Root.String(), want.Root.String())
	}
	if gb, wb := got.Base(), want.Base(); !gb.Equal(&wb) {
		t.Fatalf("%s: base %s, want %s", what, gb.String(), wb.String())
	}
	if got.Permutations() != want.Permutations() {
		t.Fatalf("%s: %d permutations, want %d", what, got.Permutations(), want.Permutations())
	}
	if len(got.Nodes) != len(want.Nodes) {
		t.Fatalf("%s: %d nodes, want %d", what, len(got.Nodes), len(want.Nodes))
	}
	for i := range got.Nodes {
		g, w := got.Nodes[i], want.Nodes[i]
		if !bytes.Equal(g.Hash, w.Hash) || !bytes.Equal(g.Encoded, w.Encoded) {
			t.Fatalf("%s: node %d is %x:%x, want %x:%x", what, i, g.Hash, g.Encoded, w.Hash, w.Encoded)
		}
	}
}

// checkProofs proves keys against u (uncommitted) when u is not nil, else
// against the committed root, and checks them against the model.
func (m *manyTree) checkProofs(t *testing.T, what string, u *merkle.Update, keys []fr.Element) {
	t.Helper()
	var (
		proofs []*merkle.Proof
		values []fr.Element
		root   fr.Element
		err    error
	)
	if u != nil {
		proofs, values, err = m.tr.ProveManyUpdate(u, keys)
		root = u.Root
	} else {
		proofs, values, root, err = m.tr.ProveMany(keys)
	}
	if err != nil {
		t.Fatalf("%s: proving: %v", what, err)
	}
	for i, k := range keys {
		v, ok := m.state[k]
		if proofs[i].Existence != ok || !values[i].Equal(&v) {
			t.Fatalf("%s: key %s: existence %v value %s, want %v %s", what, k.String(), proofs[i].Existence, values[i].String(), ok, v.String())
		}
		if err := merkle.VerifyProof(root, proofs[i], k, v); err != nil {
			t.Fatalf("%s: key %s: %v", what, k.String(), err)
		}
	}
}

// sample returns the keys of kvs and a few others m wrote before.
func (m *manyTree) sample(r *rand.Rand, kvs []merkle.KV) []fr.Element {
	keys := make([]fr.Element, 0, len(kvs)+8)
	for _, kv := range kvs[:min(len(kvs), 40)] {
		keys = append(keys, kv.Key)
	}
	for range min(8, len(m.keys)) {
		keys = append(keys, m.keys[r.IntN(len(m.keys))])
	}
	return keys
}

// TestApplyManyMatchesApply applies random batches to 1 to 6 trees with
// ApplyMany and compares every update with the tree's own Apply: roots,
// nodes (in order), permutations and bases; then checks proofs against the
// uncommitted updates, commits them and checks proofs again. Some trees
// fail their walk (a read error, or keys too close for MaxLevels 8): their
// error is Apply's and the other trees are unaffected.
func TestApplyManyMatchesApply(t *testing.T) {
	r, _ := seeded(t)
	optss := []merkle.Options{
		{Parallelism: 1},
		{Parallelism: 4, ParallelCutoff: 1, CacheNodes: 64},
		{Parallelism: 2},
		{MaxLevels: 8, Parallelism: 1},
	}
	rounds, maxWrites := 12, 20
	stats := map[string]int{}
	defer func() { t.Logf("updates: %v", stats) }()
	if testing.Short() {
		rounds = 6
	}
	for round := range rounds {
		n := 1 + r.IntN(6)
		trees := make([]*manyTree, n)
		for i := range trees {
			opts := optss[r.IntN(len(optss))]
			leaves := r.IntN(400)
			if opts.MaxLevels == 8 {
				for { // leaves that fit in 8 levels; its batches often do not
					m, err := buildManyTree(t, r, opts, r.IntN(30))
					if err == nil {
						trees[i] = m
						break
					}
				}
				continue
			}
			trees[i] = newManyTree(t, r, opts, leaves)
		}
		for b := range 4 {
			what := fmt.Sprintf("round %d (%d trees) batch %d", round, n, b)
			kvss := make([][]merkle.KV, n)
			for i, m := range trees {
				kvss[i] = m.batch(r, maxWrites)
				if b == 3 && i == 0 {
					kvss[i] = m.batch(r, 700) // large: parallel walks and hashing
				}
			}
			// a tree whose reads fail: a fresh tree over its store with a
			// tiny cache, so its walk must read
			failing := -1
			if n > 1 && r.IntN(3) == 0 {
				failing = r.IntN(n)
				m := trees[failing]
				tr, err := merkle.New(failingReader{m.db, m.fail}, m.tr.Root(), merkle.Options{CacheNodes: 1, Parallelism: 1})
				if err != nil {
					t.Fatal(err)
				}
				m.tr = tr
				if len(kvss[failing]) == 0 {
					kvss[failing] = m.batch(r, maxWrites)
				}
				kvss[failing] = append(kvss[failing], merkle.KV{Key: randElem(r), Value: randElem(r)})
				if len(m.state) < 2 {
					failing = -1 // the walk reads nothing but the (cached) root
				}
			}
			want := make([]*merkle.Update, n)
			wantErr := make([]error, n)
			for i, m := range trees {
				m.fail.Store(i == failing)
				want[i], wantErr[i] = m.tr.Apply(kvss[i])
			}
			trs := make([]*merkle.Tree, n)
			for i, m := range trees {
				trs[i] = m.tr
			}
			got, gotErr := merkle.ApplyMany(trs, kvss)
			for i, m := range trees {
				w := fmt.Sprintf("%s tree %d", what, i)
				if i == failing && !errors.Is(wantErr[i], errInjected) {
					t.Fatalf("%s: Apply with failing reads: %v", w, wantErr[i])
				}
				if (gotErr[i] == nil) != (wantErr[i] == nil) || (gotErr[i] != nil && gotErr[i].Error() != wantErr[i].Error()) {
					t.Fatalf("%s: error %v, want %v", w, gotErr[i], wantErr[i])
				}
				if gotErr[i] != nil {
					stats[errKind(gotErr[i])]++
					if got[i] != nil {
						t.Fatalf("%s: an update with error %v", w, gotErr[i])
					}
					continue
				}
				sameUpdate(t, w, got[i], want[i])
				stats["ok"]++
				// proofs through the uncommitted update (lookups of its fresh
				// nodes), then committed
				m.fail.Store(false)
				saved := m.state
				m.state = map[fr.Element]fr.Element{}
				for k, v := range saved {
					m.state[k] = v
				}
				m.record(kvss[i])
				keys := m.sample(r, kvss[i])
				m.checkProofs(t, w+" (update)", got[i], keys)
				m.db.Put(got[i])
				if err := m.tr.Commit(got[i]); err != nil {
					t.Fatalf("%s: commit: %v", w, err)
				}
				m.checkProofs(t, w+" (committed)", nil, keys)
			}
			for _, m := range trees {
				m.fail.Store(false)
			}
		}
	}
}

func errKind(err error) string {
	switch {
	case errors.Is(err, errInjected):
		return "read error"
	case errors.Is(err, merkle.ErrReachedMaxLevel):
		return "max level"
	}
	return err.Error()
}

// TestApplyManyTreesApart gives ApplyMany trees of the same shape (the
// same keys, other values) and the same writes' keys with other values, so
// that their new nodes pair up height by height: a hash given to another
// tree's node, or taken from another tree's range, shows in the roots.
// Between them sits a tree whose walk fails after emitting nodes
// (ErrReachedMaxLevel), which must not shift the others' nodes.
func TestApplyManyTreesApart(t *testing.T) {
	r, _ := seeded(t)
	const n = 4
	keys := make([]fr.Element, 200)
	for i := range keys {
		keys[i] = randElem(r)
	}
	trees := make([]*manyTree, n)
	kvss := make([][]merkle.KV, n+1)
	for i := range trees {
		trees[i] = newManyTree(t, r, merkle.Options{Parallelism: 1 + i%2}, 0)
		leaves := make([]merkle.KV, len(keys))
		for j, k := range keys {
			leaves[j] = merkle.KV{Key: k, Value: randElem(r)}
		}
		trees[i].commit(t, leaves)
		for _, j := range []int{3, 50, 199} {
			kvss[i] = append(kvss[i], merkle.KV{Key: keys[j], Value: randElem(r)})
		}
		kvss[i] = append(kvss[i], merkle.KV{Key: fr.NewElement(uint64(i)), Value: randElem(r)})
	}
	// a tree of MaxLevels 4 holding key 1; key 9 shares its lowest 3 bits,
	// and is written after key 2 (a first leaf, emitted before the failure)
	bad := newManyTree(t, r, merkle.Options{MaxLevels: 4}, 0)
	bad.commit(t, []merkle.KV{{Key: fr.NewElement(1), Value: fr.NewElement(1)}, {Key: fr.NewElement(4), Value: fr.NewElement(4)}})
	kvss[n] = []merkle.KV{{Key: fr.NewElement(2), Value: fr.NewElement(2)}, {Key: fr.NewElement(9), Value: fr.NewElement(9)}}
	trs := []*merkle.Tree{trees[0].tr, trees[1].tr, bad.tr, trees[2].tr, trees[3].tr}
	kvss = [][]merkle.KV{kvss[0], kvss[1], kvss[n], kvss[2], kvss[3]}
	for _, order := range [][]int{{0, 1, 2, 3, 4}, {4, 3, 2, 1, 0}, {2, 0, 4, 1, 3}} {
		ts, ks := make([]*merkle.Tree, len(order)), make([][]merkle.KV, len(order))
		for i, j := range order {
			ts[i], ks[i] = trs[j], kvss[j]
		}
		got, errs := merkle.ApplyMany(ts, ks)
		for i, tr := range ts {
			want, err := tr.Apply(ks[i])
			if tr == bad.tr {
				if !errors.Is(err, merkle.ErrReachedMaxLevel) || errs[i] == nil || errs[i].Error() != err.Error() || got[i] != nil {
					t.Fatalf("order %v: failing tree: %v (update %v), want Apply's %v", order, errs[i], got[i], err)
				}
				continue
			}
			if err != nil || errs[i] != nil {
				t.Fatalf("order %v: tree %d: %v, Apply: %v", order, i, errs[i], err)
			}
			sameUpdate(t, fmt.Sprintf("order %v tree %d", order, i), got[i], want)
		}
	}
}

// TestApplyManyArguments: a tree given twice fails at both occurrences, a
// nil tree fails, the others are applied; no trees, no updates.
func TestApplyManyArguments(t *testing.T) {
	r, _ := seeded(t)
	a, b := newManyTree(t, r, merkle.Options{}, 20), newManyTree(t, r, merkle.Options{}, 20)
	kv := func() []merkle.KV { return []merkle.KV{{Key: randElem(r), Value: randElem(r)}} }
	kvss := [][]merkle.KV{kv(), kv(), nil, kv(), kv()}
	got, errs := merkle.ApplyMany([]*merkle.Tree{a.tr, b.tr, nil, a.tr, a.tr}, kvss)
	for _, i := range []int{0, 3, 4} {
		if !errors.Is(errs[i], merkle.ErrDuplicateTree) || got[i] != nil {
			t.Errorf("tree %d (a again): %v, %v", i, errs[i], got[i])
		}
	}
	if errs[2] == nil || got[2] != nil {
		t.Errorf("nil tree: %v, %v", errs[2], got[2])
	}
	want, err := b.tr.Apply(kvss[1])
	if err != nil || errs[1] != nil {
		t.Fatalf("tree b: %v; Apply: %v", errs[1], err)
	}
	sameUpdate(t, "tree b", got[1], want)
	if got, errs := merkle.ApplyMany(nil, nil); len(got) != 0 || len(errs) != 0 {
		t.Errorf("no trees: %v %v", got, errs)
	}
	// an empty batch: the base, no nodes
	got, errs = merkle.ApplyMany([]*merkle.Tree{a.tr, b.tr}, [][]merkle.KV{nil, kv()})
	if root := a.tr.Root(); errs[0] != nil || !got[0].Root.Equal(&root) || len(got[0].Nodes) != 0 || errs[1] != nil {
		t.Errorf("empty batch: %v %v, %v", got[0], errs[0], errs[1])
	}
}
