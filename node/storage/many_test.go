package storage_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/rustorium/rustorium/node/merkle"
	"github.com/rustorium/rustorium/node/storage"
)

// randomBlock returns a block of 1 to 20 writes on shard at height h: keys
// from a pool all shards share (so blocks of one call hash the same state
// key), repeated keys, deletes, empty and long values.
func randomBlock(r *rand.Rand, shard uint32, h uint64) *storage.BlockCommit {
	ws := make([]storage.Write, 1+r.IntN(20))
	for i := range ws {
		ws[i].Key = fmt.Appendf(nil, "k%d", r.IntN(60))
		if r.IntN(6) == 0 && i > 0 {
			ws[i].Key = ws[r.IntN(i)].Key
		}
		switch r.IntN(8) {
		case 0:
			ws[i].Delete = true
		case 1:
			ws[i].Value = []byte{}
		case 2:
			ws[i].Value = bytes.Repeat([]byte{byte(r.Uint32())}, 500) // two permutations
		default:
			ws[i].Value = fmt.Appendf(nil, "v%d", r.Uint64())
		}
	}
	return &storage.BlockCommit{Shard: shard, Height: h, BlockHash: [32]byte{byte(shard), byte(h)}, Header: fmt.Appendf(nil, "h%d/%d", shard, h), NextOffset: int64(h), Writes: ws}
}

// sameResult fails unless two commits of the same block agree: root, meta
// and every proof's encoding.
func sameResult(t *testing.T, what string, got, want *storage.CommitResult) {
	t.Helper()
	if !got.Root.Equal(&want.Root) || got.Meta != want.Meta || len(got.Proofs) != len(want.Proofs) {
		t.Fatalf("%s: root %s meta %+v (%d proofs), want %s %+v (%d)", what, got.Root.String(), got.Meta, len(got.Proofs), want.Root.String(), want.Meta, len(want.Proofs))
	}
	for i := range got.Proofs {
		g, _ := got.Proofs[i].MarshalBinary()
		w, _ := want.Proofs[i].MarshalBinary()
		if !bytes.Equal(g, w) {
			t.Fatalf("%s: proof %d differs", what, i)
		}
	}
}

// TestPrepareMany prepares blocks of 3 or 4 shards with PrepareMany on one
// store and with Prepare one by one on another: the roots, the commits
// (roots, metas, proofs, then reads) and the Poseidon permutations counted
// must agree. Blocks of one call write the same state keys on different
// shards (a key hashed once for the call, as Prepare one by one finds it
// in the key cache), with the key cache on and off.
func TestPrepareMany(t *testing.T) {
	r := seeded(t)
	for _, o := range []storage.Options{{}, {KeyCacheEntries: -1, Parallelism: 1}} {
		t.Run(fmt.Sprintf("cache=%d", o.KeyCacheEntries), func(t *testing.T) {
			many, one := open(t, vfs.NewMem(), o), open(t, vfs.NewMem(), o)
			defer many.Close()
			defer one.Close()
			states := map[uint32]map[string][]byte{}
			heights := map[uint32]uint64{}
			for round := range 6 {
				shards := []uint32{1, 2, 3, 4}
				r.Shuffle(len(shards), func(i, j int) { shards[i], shards[j] = shards[j], shards[i] })
				shards = shards[:3+r.IntN(2)]
				cs := make([]*storage.BlockCommit, len(shards))
				for i, s := range shards {
					cs[i] = randomBlock(r, s, heights[s]+1)
				}
				before := [2]uint64{many.PoseidonPermutations(), one.PoseidonPermutations()}
				ps, errs := many.PrepareMany(cs)
				want := make([]*storage.Prepared, len(cs))
				for i, c := range cs {
					var err error
					if want[i], err = one.Prepare(c); err != nil {
						t.Fatal(err)
					}
					if errs[i] != nil {
						t.Fatalf("round %d block %d: %v", round, i, errs[i])
					}
					if !ps[i].Root.Equal(&want[i].Root) || ps[i].Block != c {
						t.Fatalf("round %d block %d: root %s, want %s", round, i, ps[i].Root.String(), want[i].Root.String())
					}
				}
				got, exp := many.PoseidonPermutations()-before[0], one.PoseidonPermutations()-before[1]
				if got != exp || got == 0 {
					t.Fatalf("round %d: %d permutations, one by one %d", round, got, exp)
				}
				// commit in another order than prepared
				for _, i := range r.Perm(len(cs)) {
					c := cs[i]
					res, err := many.Commit(ps[i])
					if err != nil {
						t.Fatalf("round %d block %d: commit: %v", round, i, err)
					}
					wres, err := one.Commit(want[i])
					if err != nil {
						t.Fatal(err)
					}
					sameResult(t, fmt.Sprintf("round %d block %d", round, i), res, wres)
					if states[c.Shard] == nil {
						states[c.Shard] = map[string][]byte{}
					}
					st := states[c.Shard]
					for _, w := range c.Writes {
						if w.Delete {
							delete(st, string(w.Key))
						} else {
							st[string(w.Key)] = w.Value
						}
					}
					for j, w := range c.Writes {
						if err := storage.VerifyProof(res.Root, w.Key, st[string(w.Key)], res.Proofs[j]); err != nil {
							t.Fatalf("round %d block %d write %d: %v", round, i, j, err)
						}
					}
					if ref := refRoot(t, st); !res.Root.Equal(&ref) {
						t.Fatalf("round %d shard %d: root %s, want %s", round, c.Shard, res.Root.String(), ref.String())
					}
					heights[c.Shard] = c.Height
				}
			}
			// reads agree
			for s, st := range states {
				for k := range 60 {
					key := fmt.Appendf(nil, "k%d", k)
					v, p, root, err := many.Read(s, key)
					if err != nil && !errors.Is(err, storage.ErrNotFound) {
						t.Fatal(err)
					}
					if want, ok := st[string(key)]; ok != (err == nil) || !bytes.Equal(v, want) {
						t.Fatalf("shard %d key %s: %q (%v), want %q", s, key, v, err, want)
					}
					if err := storage.VerifyProof(root, key, v, p); err != nil {
						t.Fatalf("shard %d key %s: %v", s, key, err)
					}
				}
			}
		})
	}
}

// TestPrepareManyFailures: among good blocks, a malformed block, a nil
// block, one of the wrong height, one whose tree fails (keys too close for
// MaxLevels 4) and a second block of a shard each fail alone, with
// Prepare's error (ErrDuplicateShard for the second block); the good ones
// prepare as Prepare does and commit. A closed store fails every block.
func TestPrepareManyFailures(t *testing.T) {
	db := open(t, vfs.NewMem(), storage.Options{MaxLevels: 4})
	defer db.Close()
	ref := open(t, vfs.NewMem(), storage.Options{MaxLevels: 4})
	defer ref.Close()
	// two keys whose tree keys share their lowest 3 bits: no room in 4
	// levels
	var near [2][]byte
	seen := map[uint64][]byte{}
	for i := 0; near[0] == nil; i++ {
		k := fmt.Appendf(nil, "c%d", i)
		e := merkle.KeyFromBytes(k)
		low := e.Bits()[0] & 7
		if o, ok := seen[low]; ok {
			near = [2][]byte{o, k}
		}
		seen[low] = k
	}
	put := func(shard uint32, h uint64, keys ...[]byte) *storage.BlockCommit {
		c := &storage.BlockCommit{Shard: shard, Height: h}
		for _, k := range keys {
			c.Writes = append(c.Writes, storage.Write{Key: k, Value: []byte("v")})
		}
		return c
	}
	for _, s := range []uint32{3, 7} { // shards with a block
		for _, d := range []*storage.DB{db, ref} {
			if _, err := d.CommitBlock(put(s, 1, []byte("x"))); err != nil {
				t.Fatal(err)
			}
		}
	}
	cs := []*storage.BlockCommit{
		put(1, 1, []byte("a")),              // good (a new shard)
		put(2, 1, []byte("a"), []byte{}),    // empty key
		nil,                                 // nil
		put(3, 5, []byte("b")),              // wrong height (3 is at 1)
		put(7, 2, []byte("b")),              // good
		put(5, 1, near[0], near[1]),         // too deep for 4 levels
		put(1, 2, []byte("c")),              // shard 1 again
		put(9, 1, []byte("d"), []byte("a")), // good
	}
	wantErr := []error{nil, storage.ErrInvalidBlock, storage.ErrInvalidBlock, storage.ErrHeightMismatch, nil, merkle.ErrReachedMaxLevel, storage.ErrDuplicateShard, nil}
	ps, errs := db.PrepareMany(cs)
	for i, c := range cs {
		if wantErr[i] == nil {
			if errs[i] != nil {
				t.Fatalf("block %d: %v", i, errs[i])
			}
			want, err := ref.Prepare(c)
			if err != nil {
				t.Fatal(err)
			}
			if !ps[i].Root.Equal(&want.Root) {
				t.Fatalf("block %d: root %s, want %s", i, ps[i].Root.String(), want.Root.String())
			}
			res, err := db.Commit(ps[i])
			if err != nil {
				t.Fatalf("block %d: commit: %v", i, err)
			}
			wres, err := ref.Commit(want)
			if err != nil {
				t.Fatal(err)
			}
			sameResult(t, fmt.Sprintf("block %d", i), res, wres)
			continue
		}
		if !errors.Is(errs[i], wantErr[i]) || ps[i] != nil {
			t.Fatalf("block %d: %v (prepared %v), want %v", i, errs[i], ps[i] != nil, wantErr[i])
		}
		if c == nil || errors.Is(wantErr[i], storage.ErrDuplicateShard) {
			continue
		}
		if _, err := ref.Prepare(c); err == nil || err.Error() != errs[i].Error() {
			t.Fatalf("block %d: %v, Prepare: %v", i, errs[i], err)
		}
	}
	// the refused second block of shard 1 prepares now
	if _, err := db.CommitBlock(cs[6]); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, errs = db.PrepareMany([]*storage.BlockCommit{put(1, 3, []byte("e")), put(2, 1, []byte{})})
	if !errors.Is(errs[0], storage.ErrClosed) || !errors.Is(errs[1], storage.ErrInvalidBlock) {
		t.Fatalf("closed store: %v", errs)
	}
	if ps, errs := db.PrepareMany(nil); len(ps) != 0 || len(errs) != 0 {
		t.Fatalf("no blocks: %v %v", ps, errs)
	}
}

// TestPrepareConcurrent: Prepares of several shards at once — which the
// store batches into PrepareManys — give what Prepare gives one at a time
// on another store, and two goroutines preparing the same shard's block at
// the same time both get it (never ErrDuplicateShard: a batch holds one
// block of a shard, the other waits for the next batch).
func TestPrepareConcurrent(t *testing.T) {
	r := seeded(t)
	conc, one := open(t, vfs.NewMem(), storage.Options{}), open(t, vfs.NewMem(), storage.Options{})
	defer conc.Close()
	defer one.Close()
	const shards = 4
	for h := uint64(1); h <= 8; h++ {
		cs := make([]*storage.BlockCommit, shards)
		want := make([]*storage.Prepared, shards)
		for s := range cs {
			cs[s] = randomBlock(r, uint32(s), h)
			p, err := one.Prepare(cs[s])
			if err != nil {
				t.Fatal(err)
			}
			want[s] = p
		}
		got := make([]*storage.Prepared, 2*shards)
		errs := make([]error, 2*shards)
		var wg sync.WaitGroup
		for i := range got {
			wg.Go(func() { got[i], errs[i] = conc.Prepare(cs[i%shards]) })
		}
		wg.Wait()
		for i := range got {
			if errs[i] != nil {
				t.Fatalf("height %d: Prepare %d (shard %d): %v", h, i, i%shards, errs[i])
			}
			if w := want[i%shards]; !got[i].Root.Equal(&w.Root) {
				t.Fatalf("height %d: Prepare %d (shard %d): root %s, want %s", h, i, i%shards, got[i].Root.String(), w.Root.String())
			}
		}
		for s := range cs {
			if _, err := conc.Commit(got[s]); err != nil {
				t.Fatal(err)
			}
			if _, err := one.Commit(want[s]); err != nil {
				t.Fatal(err)
			}
		}
	}
}
