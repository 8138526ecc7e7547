package storage_test

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/rustorium/rustorium/node/storage"
)

// snapshot is a shard's expected state after a block.
type snapshot struct {
	root  fr.Element
	state map[string][]byte
}

// TestCrashSafety commits random blocks on a crashable in-memory filesystem
// and, at a random point (between blocks, or while a block is committing),
// takes the state a crash would leave: all synced data plus a random part of
// the unsynced data. After reopening, every shard must be exactly at the end
// of a committed block — the last one when commits sync — with the root of
// that block, and every value read must match that block's state and verify
// against the root.
func TestCrashSafety(t *testing.T) {
	r := seeded(t)
	const shards = 3
	iters := 16
	if testing.Short() {
		iters = 4
	}
	for iter := 0; iter < iters; iter++ {
		noSync := iter%4 == 3
		t.Run(fmt.Sprintf("iter%d/nosync=%v", iter, noSync), func(t *testing.T) {
			fs := vfs.NewCrashableMem()
			// small memtables so flushes and compactions run between commits
			opts := storage.Options{NoSync: noSync, MemTableBytes: 32 << 10, TreeCacheNodes: 64}
			db := open(t, fs, opts)
			hist := make([][]snapshot, shards) // hist[s][h] for h = 0 (empty) ..
			for s := range hist {
				hist[s] = []snapshot{{state: map[string][]byte{}}}
			}
			keys := make([]map[string]bool, shards)
			for s := range keys {
				keys[s] = map[string]bool{}
			}
			nBlocks := 3 + r.IntN(20)
			crashAt := r.IntN(nBlocks + 1)
			during := r.IntN(2) == 0
			var crashed *vfs.MemFS
			pendingShard := -1
			crash := func() {
				crashed = fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: r.IntN(101), RNG: rand.New(rand.NewPCG(r.Uint64(), 2))})
			}
			for b := 0; b < nBlocks && crashed == nil; b++ {
				s := r.IntN(shards)
				prev := hist[s][len(hist[s])-1]
				next := maps.Clone(prev.state)
				c := &storage.BlockCommit{Shard: uint32(s), Height: uint64(len(hist[s])), NextOffset: int64(b), BlockHash: [32]byte{byte(b)}}
				for i := 0; i < 1+r.IntN(12); i++ {
					k := fmt.Sprintf("key-%d", r.IntN(40))
					keys[s][k] = true
					if r.IntN(6) == 0 {
						c.Writes = append(c.Writes, storage.Write{Key: []byte(k), Delete: true})
						delete(next, k)
						continue
					}
					v := make([]byte, r.IntN(200))
					for j := range v {
						v[j] = byte(r.Uint32())
					}
					c.Writes = append(c.Writes, storage.Write{Key: []byte(k), Value: v})
					next[k] = v
				}
				if b == crashAt && during {
					// crash while this block commits
					done := make(chan error, 1)
					var root fr.Element
					go func() {
						res, err := db.CommitBlock(c)
						if err == nil {
							root = res.Root
						}
						done <- err
					}()
					for i := r.IntN(200); i > 0; i-- {
						runtime.Gosched()
					}
					crash()
					if err := <-done; err != nil {
						t.Fatal(err)
					}
					hist[s] = append(hist[s], snapshot{root: root, state: next})
					pendingShard = s
					break
				}
				if b == crashAt {
					crash()
					break
				}
				res, err := db.CommitBlock(c)
				if err != nil {
					t.Fatal(err)
				}
				hist[s] = append(hist[s], snapshot{root: res.Root, state: next})
			}
			if crashed == nil {
				crash()
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}

			db = open(t, crashed, opts)
			defer db.Close()
			for s := 0; s < shards; s++ {
				m, ok, err := db.ShardMeta(uint32(s))
				if err != nil {
					t.Fatal(err)
				}
				h := 0
				if ok {
					h = int(m.Height)
				}
				last := len(hist[s]) - 1
				lowest := last
				if s == pendingShard {
					lowest = last - 1 // the in-flight block may or may not have landed
				}
				if noSync {
					lowest = 0 // any committed prefix
				}
				if h < lowest || h > last {
					t.Fatalf("shard %d recovered at height %d, want %d..%d", s, h, lowest, last)
				}
				want := hist[s][h]
				if ok && !m.Root.Equal(&want.root) {
					t.Fatalf("shard %d height %d: root %s, want %s", s, h, m.Root.String(), want.root.String())
				}
				for k := range keys[s] {
					v, p, root, err := db.Read(uint32(s), []byte(k))
					wv, present := want.state[k]
					switch {
					case present && (err != nil || !bytes.Equal(v, wv)):
						t.Fatalf("shard %d key %s: %x %v, want %x", s, k, v, err, wv)
					case !present && !errors.Is(err, storage.ErrNotFound):
						t.Fatalf("shard %d key %s: %v, want not found", s, k, err)
					}
					if !root.Equal(&want.root) && h > 0 {
						t.Fatalf("read root differs from the block's")
					}
					if err := storage.VerifyProof(root, []byte(k), v, p); err != nil {
						t.Fatalf("shard %d key %s: proof: %v", s, k, err)
					}
				}
				// the shard keeps going from where it is
				if _, err := db.CommitBlock(&storage.BlockCommit{Shard: uint32(s), Height: uint64(h + 1), Writes: []storage.Write{{Key: []byte("after"), Value: []byte("crash")}}}); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
