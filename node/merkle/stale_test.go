package merkle

import (
	"math/rand/v2"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
)

// reachable returns the hashes of every node of the tree rooted at root,
// read from the store (not the cache).
func reachable(t *testing.T, m MapReader, root fr.Element) map[fr.Element]bool {
	t.Helper()
	seen := map[fr.Element]bool{}
	var walk func(h fr.Element)
	walk = func(h fr.Element) {
		if h.IsZero() || seen[h] {
			return
		}
		seen[h] = true
		k := ElementLE(&h)
		b, err := m.ReadNode(k[:])
		if err != nil {
			t.Fatalf("node %s: %v", h.String(), err)
		}
		n, err := decodeNode(b)
		if err != nil {
			t.Fatal(err)
		}
		if n.typ == typeMiddle {
			walk(n.a)
			walk(n.b)
		}
	}
	walk(root)
	return seen
}

// TestUpdateStale checks, against the trees themselves, that an update's
// stale nodes are exactly the committed tree's nodes the new tree no
// longer has (inserts under leaves, overwrites, deletes that lift a leaf,
// no-op writes), and that Commit drops them from the cache, on the
// sequential and the concurrent walk.
func TestUpdateStale(t *testing.T) {
	for _, opts := range []Options{{Parallelism: 1}, {Parallelism: 4, ParallelCutoff: 1}} {
		r := rand.New(rand.NewPCG(7, uint64(opts.Parallelism)))
		m := MapReader{}
		cache := NewNodeCache(1 << 20)
		opts.Cache = cache
		tr, err := New(m, fr.Element{}, opts)
		if err != nil {
			t.Fatal(err)
		}
		var keys []fr.Element
		elem := func() fr.Element { var e fr.Element; e.SetUint64(r.Uint64()); return e }
		for batch := range 6 {
			var kvs []KV
			n := 3000 // enough on each side of the root to walk concurrently
			if batch > 0 {
				n = 1500
			}
			for range n {
				switch x := r.IntN(10); {
				case batch == 0 || x < 4 || len(keys) == 0: // a new key
					k := elem()
					keys = append(keys, k)
					kvs = append(kvs, KV{Key: k, Value: elem()})
				case x < 7: // overwrite
					kvs = append(kvs, KV{Key: keys[r.IntN(len(keys))], Value: elem()})
				case x < 9: // delete
					kvs = append(kvs, KV{Key: keys[r.IntN(len(keys))], Delete: true})
				default: // delete a key that is not there
					kvs = append(kvs, KV{Key: elem(), Delete: true})
				}
			}
			old := tr.Root()
			u, err := tr.Apply(kvs)
			if err != nil {
				t.Fatal(err)
			}
			m.Put(u)
			before, after := reachable(t, m, old), reachable(t, m, u.Root)
			want := map[fr.Element]bool{}
			for h := range before {
				if !after[h] {
					want[h] = true
				}
			}
			got := map[fr.Element]bool{}
			for _, h := range u.stale {
				if got[h] {
					t.Fatalf("parallelism %d batch %d: stale node %s listed twice", opts.Parallelism, batch, h.String())
				}
				got[h] = true
				if !want[h] {
					t.Fatalf("parallelism %d batch %d: stale node %s is still in the new tree or was never in the old one", opts.Parallelism, batch, h.String())
				}
			}
			if len(got) != len(want) {
				t.Fatalf("parallelism %d batch %d: %d stale nodes, want %d", opts.Parallelism, batch, len(got), len(want))
			}
			if batch > 0 && len(want) == 0 {
				t.Fatalf("batch %d replaced nothing: the test tests nothing", batch)
			}
			if err := tr.Commit(u); err != nil {
				t.Fatal(err)
			}
			for h := range want {
				if _, ok := cache.get(h); ok {
					t.Fatalf("parallelism %d batch %d: stale node %s still cached after Commit", opts.Parallelism, batch, h.String())
				}
			}
			for h := range after {
				if _, ok := cache.get(h); !ok && !before[h] {
					t.Fatalf("parallelism %d batch %d: fresh node %s not cached", opts.Parallelism, batch, h.String())
				}
			}
		}
	}
}
