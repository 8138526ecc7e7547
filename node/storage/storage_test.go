package storage_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/rustorium/rustorium/node/merkle"
	"github.com/rustorium/rustorium/node/storage"
)

func seeded(t *testing.T) *rand.Rand {
	seed := rand.Uint64()
	if s := os.Getenv("STORAGE_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		seed = v
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("seed %d (rerun with STORAGE_SEED=%d)", seed, seed)
		}
	})
	return rand.New(rand.NewPCG(seed, 1))
}

func open(t *testing.T, fs vfs.FS, opts storage.Options) *storage.DB {
	t.Helper()
	opts.FS = fs
	db, err := storage.Open("db", opts)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// refRoot computes a shard root independently with a fresh merkle tree.
func refRoot(t *testing.T, state map[string][]byte) fr.Element {
	t.Helper()
	tr, err := merkle.New(merkle.MapReader{}, fr.Element{}, merkle.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var kvs []merkle.KV
	for k, v := range state {
		kvs = append(kvs, merkle.KV{Key: merkle.KeyFromBytes([]byte(k)), Value: merkle.ValueFromBytes(v)})
	}
	u, err := tr.Apply(kvs)
	if err != nil {
		t.Fatal(err)
	}
	return u.Root
}

func TestCommitReadVerify(t *testing.T) {
	db := open(t, vfs.NewMem(), storage.Options{})
	defer db.Close()
	state := map[string][]byte{}
	c := &storage.BlockCommit{
		Shard: 3, Height: 1, BlockHash: [32]byte{1}, Header: []byte("h1"), NextOffset: 10,
		Writes: []storage.Write{
			{Key: []byte("a"), Value: []byte("1")},
			{Key: []byte("b"), Value: []byte("2")},
			{Key: []byte("a"), Value: []byte("3")}, // later write wins
			{Key: []byte("e"), Value: []byte{}},    // empty value is a value
			{Key: []byte("gone"), Delete: true},    // deleting an absent key
		},
		Txs: []storage.TxEntry{{ID: [32]byte{7}, Receipt: []byte("r7")}, {ID: [32]byte{8}}},
	}
	state["a"], state["b"], state["e"] = []byte("3"), []byte("2"), []byte{}
	res, err := db.CommitBlock(c)
	if err != nil {
		t.Fatal(err)
	}
	if want := refRoot(t, state); !res.Root.Equal(&want) {
		t.Fatalf("root %s, want %s", res.Root.String(), want.String())
	}
	if len(res.Proofs) != len(c.Writes) {
		t.Fatalf("%d proofs for %d writes", len(res.Proofs), len(c.Writes))
	}
	for i, w := range c.Writes {
		v, ok := state[string(w.Key)]
		if !ok {
			v = nil
		}
		if err := storage.VerifyProof(res.Root, w.Key, v, res.Proofs[i]); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	// second block: delete b
	res2, err := db.CommitBlock(&storage.BlockCommit{Shard: 3, Height: 2, NextOffset: 12, Writes: []storage.Write{{Key: []byte("b"), Delete: true}}})
	if err != nil {
		t.Fatal(err)
	}
	delete(state, "b")
	if want := refRoot(t, state); !res2.Root.Equal(&want) {
		t.Fatal("root after delete")
	}
	if err := storage.VerifyProof(res2.Root, []byte("b"), nil, res2.Proofs[0]); err != nil {
		t.Fatal(err)
	}
	// reads
	for k, want := range state {
		v, p, root, err := db.Read(3, []byte(k))
		if err != nil || !bytes.Equal(v, want) || v == nil {
			t.Fatalf("read %q: %q %v", k, v, err)
		}
		if err := storage.VerifyProof(root, []byte(k), v, p); err != nil {
			t.Fatal(err)
		}
		// the proof of a present key does not prove absence or another value
		if err := storage.VerifyProof(root, []byte(k), nil, p); !errors.Is(err, storage.ErrProofMismatch) {
			t.Fatalf("absent with membership proof: %v", err)
		}
		if err := storage.VerifyProof(root, []byte(k), []byte("other"), p); !errors.Is(err, merkle.ErrRootMismatch) {
			t.Fatalf("other value: %v", err)
		}
	}
	v, p, root, err := db.Read(3, []byte("b"))
	if !errors.Is(err, storage.ErrNotFound) || v != nil {
		t.Fatalf("read deleted: %q %v", v, err)
	}
	if err := storage.VerifyProof(root, []byte("b"), nil, p); err != nil {
		t.Fatal(err)
	}
	if err := storage.VerifyProof(root, []byte("b"), []byte("2"), p); !errors.Is(err, storage.ErrProofMismatch) {
		t.Fatalf("present with non-membership proof: %v", err)
	}
	if got, ok, err := db.Get(3, []byte("e")); err != nil || !ok || got == nil || len(got) != 0 {
		t.Fatalf("get empty value: %q %v %v", got, ok, err)
	}
	if _, ok, err := db.Get(3, []byte("b")); ok || err != nil {
		t.Fatalf("get deleted: %v %v", ok, err)
	}
	// other shard is independent and empty
	if _, p, root, err := db.Read(4, []byte("a")); !errors.Is(err, storage.ErrNotFound) || storage.VerifyProof(root, []byte("a"), nil, p) != nil {
		t.Fatalf("other shard: %v", err)
	}
	// meta, blocks, tx index, receipts
	m, ok, err := db.ShardMeta(3)
	if err != nil || !ok || m.Height != 2 || m.NextOffset != 12 || !m.Root.Equal(&res2.Root) {
		t.Fatalf("meta %+v %v %v", m, ok, err)
	}
	if h, err := db.Block(3, 1); err != nil || string(h) != "h1" {
		t.Fatalf("block: %q %v", h, err)
	}
	if _, err := db.Block(3, 9); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("missing block: %v", err)
	}
	if loc, err := db.TxLocation([32]byte{8}); err != nil || loc != (storage.TxLocation{Shard: 3, Height: 1, Index: 1}) {
		t.Fatalf("tx location %+v %v", loc, err)
	}
	if r, err := db.Receipt([32]byte{7}); err != nil || string(r) != "r7" {
		t.Fatalf("receipt %q %v", r, err)
	}
	if _, err := db.Receipt([32]byte{8}); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("no receipt: %v", err)
	}
	// height must follow
	if _, err := db.CommitBlock(&storage.BlockCommit{Shard: 3, Height: 5}); !errors.Is(err, storage.ErrHeightMismatch) {
		t.Fatalf("height gap: %v", err)
	}
	for _, bad := range []*storage.BlockCommit{nil, {Shard: 3, Height: 3, Writes: []storage.Write{{Key: nil, Value: []byte("x")}}}, {Shard: 3, Height: 3, Writes: []storage.Write{{Key: make([]byte, 2000)}}}} {
		if _, err := db.CommitBlock(bad); !errors.Is(err, storage.ErrInvalidBlock) {
			t.Fatalf("bad block: %v", err)
		}
	}
}

// TestFillBetweenPrepareAndCommit: a block's header and receipts can be
// filled in once Prepare has computed its root (as a replica does after
// finality), and Commit stores them.
func TestFillBetweenPrepareAndCommit(t *testing.T) {
	db := open(t, vfs.NewMem(), storage.Options{})
	defer db.Close()
	prep, err := db.Prepare(&storage.BlockCommit{Shard: 0, Height: 1, Writes: []storage.Write{{Key: []byte("k"), Value: []byte("v")}}})
	if err != nil {
		t.Fatal(err)
	}
	prep.Block.BlockHash, prep.Block.Header = [32]byte{9}, []byte(prep.Root.String())
	prep.Block.Txs = []storage.TxEntry{{ID: [32]byte{1}, Receipt: []byte("filled")}}
	res, err := db.Commit(prep)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Root.Equal(&prep.Root) || res.Meta.BlockHash != ([32]byte{9}) {
		t.Fatalf("committed root %v, meta %+v", res.Root.String(), res.Meta)
	}
	if h, _ := db.Block(0, 1); string(h) != res.Root.String() {
		t.Fatalf("header %q", h)
	}
	if r, err := db.Receipt([32]byte{1}); err != nil || string(r) != "filled" {
		t.Fatalf("receipt filled after Prepare: %q %v", r, err)
	}
	p, root, err := db.WriteWithProof(0, []byte("w"), []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if err := storage.VerifyProof(root, []byte("w"), []byte("x"), p); err != nil {
		t.Fatal(err)
	}
	if m, _, _ := db.ShardMeta(0); m.Height != 2 || !m.Root.Equal(&root) {
		t.Fatalf("meta after WriteWithProof %+v", m)
	}
}

func TestReopenAndClose(t *testing.T) {
	r := seeded(t)
	fs := vfs.NewMem()
	db := open(t, fs, storage.Options{TreeCacheNodes: 4})
	state := map[uint32]map[string][]byte{0: {}, 1: {}}
	for h := uint64(1); h <= 4; h++ {
		for s := uint32(0); s < 2; s++ {
			c := &storage.BlockCommit{Shard: s, Height: h}
			for i := 0; i < 10; i++ {
				k, v := fmt.Sprintf("k%d", r.IntN(30)), []byte(fmt.Sprint(r.Uint32()))
				c.Writes = append(c.Writes, storage.Write{Key: []byte(k), Value: v})
				state[s][k] = v
			}
			if _, err := db.CommitBlock(c); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if _, _, _, err := db.Read(0, []byte("k1")); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	db = open(t, fs, storage.Options{TreeCacheNodes: 4})
	defer db.Close()
	for s, st := range state {
		m, ok, err := db.ShardMeta(s)
		if want := refRoot(t, st); err != nil || !ok || m.Height != 4 || !m.Root.Equal(&want) {
			t.Fatalf("shard %d meta %+v %v %v", s, m, ok, err)
		}
		for k, want := range st {
			v, p, root, err := db.Read(s, []byte(k))
			if err != nil || !bytes.Equal(v, want) {
				t.Fatal(err)
			}
			if err := storage.VerifyProof(root, []byte(k), v, p); err != nil {
				t.Fatal(err)
			}
		}
	}
	// still writable after reopening
	if _, err := db.CommitBlock(&storage.BlockCommit{Shard: 1, Height: 5, Writes: []storage.Write{{Key: []byte("new"), Value: []byte("v")}}}); err != nil {
		t.Fatal(err)
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, o := range []storage.Options{{CacheBytes: -1}, {MaxLevels: 500}, {Parallelism: -1}, {MemTableBytes: 10}} {
		o.FS = vfs.NewMem()
		if _, err := storage.Open("db", o); !errors.Is(err, storage.ErrInvalidOptions) {
			t.Errorf("%+v: %v", o, err)
		}
	}
}

// TestVerifyProofBytes: the wire form accepts the committed value and
// rejects another value, another root and a mangled proof.
func TestVerifyProofBytes(t *testing.T) {
	db, err := storage.Open(t.TempDir(), storage.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p, root, err := db.WriteWithProof(0, []byte("k"), []byte("v"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	r := root.Bytes()
	if err := storage.VerifyProofBytes(r, []byte("k"), []byte("v"), raw); err != nil {
		t.Fatalf("good proof: %v", err)
	}
	other := r
	other[31] ^= 1
	for name, err := range map[string]error{
		"other value": storage.VerifyProofBytes(r, []byte("k"), []byte("w"), raw),
		"other root":  storage.VerifyProofBytes(other, []byte("k"), []byte("v"), raw),
		"mangled":     storage.VerifyProofBytes(r, []byte("k"), []byte("v"), raw[:len(raw)-1]),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestCreditSource checks that a block's credits are indexed to the block,
// durably, and that an unknown credit is ErrNotFound.
func TestCreditSource(t *testing.T) {
	fs := vfs.NewMem()
	db := open(t, fs, storage.Options{})
	a, b := [32]byte{1}, [32]byte{2}
	for h, ids := range [][][32]byte{{a}, {b}} {
		c := &storage.BlockCommit{Shard: 3, Height: uint64(h + 1), Credits: ids, Writes: []storage.Write{{Key: []byte("k"), Value: []byte{byte(h)}}}}
		if _, err := db.CommitBlock(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = open(t, fs, storage.Options{})
	defer db.Close()
	for want, id := range map[uint64][32]byte{1: a, 2: b} {
		if s, h, err := db.CreditSource(id); err != nil || s != 3 || h != want {
			t.Fatalf("credit %x: shard %d height %d, %v; want shard 3 height %d", id[:1], s, h, err, want)
		}
	}
	if _, _, err := db.CreditSource([32]byte{9}); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unknown credit: %v", err)
	}
}

// TestPoseidonPermutations counts a block's Poseidon work independently:
// each key and value hashed once (keys once per store, then cached) and the
// Merkle nodes of the update.
func TestPoseidonPermutations(t *testing.T) {
	db := open(t, vfs.NewMem(), storage.Options{})
	defer db.Close()
	big := bytes.Repeat([]byte{7}, 600) // 20 chunks: two permutations
	writes := []storage.Write{{Key: []byte("a"), Value: []byte("1")}, {Key: []byte("b"), Value: big}}
	tr, err := merkle.New(merkle.MapReader{}, fr.Element{}, merkle.Options{})
	if err != nil {
		t.Fatal(err)
	}
	u, err := tr.Apply([]merkle.KV{
		{Key: merkle.KeyFromBytes([]byte("a")), Value: merkle.ValueFromBytes([]byte("1"))},
		{Key: merkle.KeyFromBytes([]byte("b")), Value: merkle.ValueFromBytes(big)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.CommitBlock(&storage.BlockCommit{Shard: 0, Height: 1, Writes: writes}); err != nil {
		t.Fatal(err)
	}
	if got := db.KeysHashed(); got != 2 {
		t.Fatalf("after block 1: %d keys hashed, want 2", got)
	}
	want := uint64(2 + 1 + 2 + u.Permutations())
	if got := db.PoseidonPermutations(); got != want {
		t.Fatalf("after block 1: %d permutations, want %d (keys 2, values 3, tree %d)", got, want, u.Permutations())
	}
	// The same key again with a new value: its tree key is cached, so
	// only the value and the tree. (The same value again is a no-op write
	// the tree recognises without hashing.)
	before := db.PoseidonPermutations()
	if _, err := db.CommitBlock(&storage.BlockCommit{Shard: 0, Height: 2, Writes: []storage.Write{{Key: []byte("a"), Value: []byte("2")}}}); err != nil {
		t.Fatal(err)
	}
	if got := db.PoseidonPermutations() - before; got < 2 || got > 2+64 {
		t.Fatalf("a rewrite of a cached key: %d permutations, want the value's 1 and its path's", got)
	}
	if got := db.KeysHashed(); got != 2 {
		t.Fatalf("a rewrite of a cached key hashed it: %d keys hashed, want 2", got)
	}
	w := db.WriteStats()
	if w.BytesIn == 0 || w.BytesWritten < w.BytesIn || w.WriteAmp() < 1 {
		t.Fatalf("write stats %+v (amp %.2f): want bytes in and at least as many written", w, w.WriteAmp())
	}
	db.Close()
	if w := db.WriteStats(); w != (storage.WriteStats{}) {
		t.Fatalf("closed store: %+v", w)
	}
}

// TestSeedTree: a seeded shard's root is that of a tree holding exactly the
// given leaves, blocks commit on top of it from height 2 (their proofs
// verify against a root that also commits to the seeded leaves), the
// tree survives a reopen, and a shard with a block cannot be seeded.
func TestSeedTree(t *testing.T) {
	r := seeded(t)
	fs := vfs.NewMem()
	db := open(t, fs, storage.Options{NoSync: true})
	leaves := make([]merkle.KV, 500)
	for i := range leaves {
		leaves[i].Key.SetUint64(r.Uint64())
		leaves[i].Value.SetUint64(r.Uint64())
	}
	if err := db.SeedTree(3, leaves); err != nil {
		t.Fatal(err)
	}
	ref, err := merkle.New(merkle.MapReader{}, fr.Element{}, merkle.Options{MaxLevels: 64})
	if err != nil {
		t.Fatal(err)
	}
	u, err := ref.Apply(leaves)
	if err != nil {
		t.Fatal(err)
	}
	m, ok, err := db.ShardMeta(3)
	if err != nil || !ok || m.Height != 1 || !m.Root.Equal(&u.Root) {
		t.Fatalf("meta %+v (%v, %v), want height 1 and root %s", m, ok, err, merkle.FormatElement(&u.Root))
	}
	res, err := db.CommitBlock(&storage.BlockCommit{Shard: 3, Height: 2, Writes: []storage.Write{{Key: []byte("k"), Value: []byte("v")}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := merkle.VerifyProof(res.Root, res.Proofs[0], merkle.KeyFromBytes([]byte("k")), merkle.ValueFromBytes([]byte("v"))); err != nil {
		t.Fatal(err)
	}
	if res.Root.Equal(&u.Root) || res.Root.Equal(&fr.Element{}) {
		t.Fatal("the block did not change the seeded root")
	}
	if err := db.SeedTree(3, leaves); !errors.Is(err, storage.ErrHeightMismatch) {
		t.Fatalf("seeding a shard with blocks: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = open(t, fs, storage.Options{NoSync: true})
	defer db.Close()
	if m, _, err := db.ShardMeta(3); err != nil || m.Height != 2 || !m.Root.Equal(&res.Root) {
		t.Fatalf("after reopen: %+v, %v", m, err)
	}
}

// TestCommitHashBatches checks the roots of blocks whose keys and values are
// hashed in batches (eight at a time, split over goroutines) against a tree
// built from KeyFromBytes and ValueFromBytes one at a time: blocks of 0 to
// 300 writes, with empty, one-permutation (up to 496 bytes) and longer keys
// and values, deletes, keys repeated within and across blocks, for key
// caches that are off, tiny and large and one to three goroutines.
func TestCommitHashBatches(t *testing.T) {
	rng := seeded(t)
	sizes := []int{0, 1, 7, 8, 9, 16, 17, 40, 300}
	if testing.Short() {
		sizes = []int{0, 9, 40}
	}
	bytesOf := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	length := func() int {
		switch rng.IntN(8) {
		case 0:
			return []int{0, 31, 32, 495, 496, 497, 1000}[rng.IntN(7)]
		case 1:
			return rng.IntN(1024)
		default:
			return 1 + rng.IntN(64)
		}
	}
	for _, o := range []storage.Options{{KeyCacheEntries: -1, Parallelism: 1}, {KeyCacheEntries: 1, Parallelism: 2}, {Parallelism: 3}} {
		t.Run(fmt.Sprintf("cache=%d,parallelism=%d", o.KeyCacheEntries, o.Parallelism), func(t *testing.T) {
			db := open(t, vfs.NewMem(), o)
			defer db.Close()
			state := map[string][]byte{}
			var keys [][]byte
			for h, n := range sizes {
				ws := make([]storage.Write, n)
				for i := range ws {
					if len(keys) > 0 && rng.IntN(3) == 0 {
						ws[i].Key = keys[rng.IntN(len(keys))] // seen before, maybe in this block
					} else {
						ws[i].Key = bytesOf(max(1, length()))
						keys = append(keys, ws[i].Key)
					}
					if rng.IntN(8) == 0 {
						ws[i].Delete = true
						delete(state, string(ws[i].Key))
						continue
					}
					ws[i].Value = bytesOf(length())
					state[string(ws[i].Key)] = ws[i].Value
				}
				res, err := db.CommitBlock(&storage.BlockCommit{Shard: 1, Height: uint64(h + 1), Writes: ws})
				if err != nil {
					t.Fatal(err)
				}
				if want := refRoot(t, state); !res.Root.Equal(&want) {
					t.Fatalf("block %d (%d writes): root %s, want %s", h+1, n, res.Root.String(), want.String())
				}
			}
		})
	}
}

// TestWriteStatsCountWALSyncs: a store that syncs counts a sync of its
// write-ahead log for each block committed one after another, and the time
// they took; one that does not sync counts fewer than its blocks.
func TestWriteStatsCountWALSyncs(t *testing.T) {
	for _, noSync := range []bool{false, true} {
		db := open(t, vfs.NewMem(), storage.Options{NoSync: noSync})
		before := db.WriteStats()
		for h := range uint64(20) {
			if _, err := db.CommitBlock(&storage.BlockCommit{Shard: 0, Height: h + 1, Writes: []storage.Write{{Key: []byte("k"), Value: []byte{byte(h)}}}}); err != nil {
				t.Fatal(err)
			}
		}
		w := db.WriteStats()
		syncs, secs := w.WALSyncs-before.WALSyncs, w.WALSyncSeconds-before.WALSyncSeconds
		t.Logf("no sync %v: %d syncs in %.6f s", noSync, syncs, secs)
		if !noSync && (syncs < 20 || !(secs > 0)) {
			t.Errorf("20 synced blocks: %d WAL syncs in %v s", syncs, secs)
		}
		if noSync && syncs >= 20 {
			t.Errorf("20 blocks without sync: %d WAL syncs", syncs)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestWriteStatsShapeTheBackgroundWork: WriteStats counts what the flushes
// wrote (not the WAL's bytes, which Pebble's totals count as flushed), the
// memtables' worth they took, and a round of compactions out of L0 per run
// of flushes that L0's threshold turns into one: after blocks of fresh
// keys through 64 KiB memtables, several memtables flushed, each round
// followed at least one flush, and the flushes wrote about what came in.
func TestWriteStatsShapeTheBackgroundWork(t *testing.T) {
	db := open(t, vfs.NewMem(), storage.Options{NoSync: true, MemTableBytes: 64 << 10})
	defer db.Close()
	key := make([]byte, 8)
	for h := range uint64(60) {
		writes := make([]storage.Write, 50)
		for i := range writes {
			binary.BigEndian.PutUint64(key, h*1000+uint64(i))
			writes[i] = storage.Write{Key: append([]byte("k"), key...), Value: bytes.Repeat([]byte{byte(i)}, 100)}
		}
		if _, err := db.CommitBlock(&storage.BlockCommit{Shard: 0, Height: h + 1, Writes: writes}); err != nil {
			t.Fatal(err)
		}
	}
	var w storage.WriteStats
	for range 200 { // the compactions run behind the flushes
		if w = db.WriteStats(); w.L0Rounds > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("%+v", w)
	// Fresh keys, nothing overwritten: the tables hold about what came in
	// (1.05 times here); with the WAL's bytes counted too, twice that.
	if w.MemtablesFlushed < 2 || w.BytesFlushed == 0 || float64(w.BytesFlushed) > 1.5*float64(w.BytesIn) {
		t.Fatalf("write stats %+v: want at least two memtables flushed, and the flushes' bytes about the bytes in, not twice", w)
	}
	if w.L0Rounds == 0 || float64(w.L0Rounds) > w.MemtablesFlushed {
		t.Fatalf("write stats %+v: want at least one round of compactions out of L0, at most one per memtable flushed", w)
	}
}
