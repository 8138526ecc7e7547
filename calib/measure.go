package calib

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/rustorium/rustorium/internal/retry"
	"github.com/rustorium/rustorium/node/merkle"
	"github.com/rustorium/rustorium/node/sigverify"
	"github.com/rustorium/rustorium/node/storage"
	"github.com/rustorium/rustorium/node/tx"
)

// This file holds the measurement primitives shared by the harness's floors
// (bench) and by Calibrate: each times one of the node's own operations with
// the node's own code.

// SampleOptions paces SampleRoundTrips.
type SampleOptions struct {
	// Gap is the time between the starts of consecutive calls (back to back
	// when a call takes longer). Zero: back to back.
	Gap time.Duration
	// Max is the most calls made. Zero means 300.
	Max int
	// Min is the fewest calls made, whatever Budget says. Zero means 20.
	Min int
	// Budget stops sampling once this much time has passed (after Min
	// calls). Zero means 2s.
	Budget time.Duration
}

func (o *SampleOptions) ensureDefaults() {
	if o.Max <= 0 {
		o.Max = 300
	}
	if o.Min <= 0 {
		o.Min = 20
	}
	if o.Min > o.Max {
		o.Min = o.Max
	}
	if o.Budget <= 0 {
		o.Budget = 2 * time.Second
	}
}

// SampleRoundTrips times sequential calls of rt, started opts.Gap apart,
// and returns each call's duration in order. It stops at the first error.
func SampleRoundTrips(ctx context.Context, opts SampleOptions, rt func() error) ([]time.Duration, error) {
	opts.ensureDefaults()
	out := make([]time.Duration, 0, opts.Max)
	begin := time.Now()
	next := begin
	for i := 0; i < opts.Max; i++ {
		if i >= opts.Min && time.Since(begin) > opts.Budget {
			break
		}
		if err := retry.Sleep(ctx, time.Until(next)); err != nil {
			return nil, err
		}
		next = next.Add(opts.Gap)
		t0 := time.Now()
		if err := rt(); err != nil {
			return nil, err
		}
		out = append(out, time.Since(t0))
	}
	return out, nil
}

// MerkleUpdate times the Poseidon sparse Merkle tree's batch update (Apply
// and Commit of blocks of blockSize random writes) in an in-memory tree that
// first holds prefill random keys (written in one untimed batch) and grows
// with every timed block. It returns the mean time per block over blocks
// blocks. blockSize and blocks below 1 are taken as 1.
func MerkleUpdate(blockSize, prefill, blocks int, seed uint64) (time.Duration, error) {
	return merkleUpdate(wallClock, blockSize, prefill, blocks, seed)
}

// clock reads a monotonic time: wallClock, or cpuClock (this process's CPU
// time) for CPU-bound operations on a shared machine.
type clock func() time.Duration

var wallStart = time.Now()

// wallClock is the time since the package was loaded.
func wallClock() time.Duration { return time.Since(wallStart) }

func merkleUpdate(now clock, blockSize, prefill, blocks int, seed uint64) (time.Duration, error) {
	blockSize, blocks = max(blockSize, 1), max(blocks, 1)
	store := merkle.MapReader{}
	t, err := merkle.New(store, fr.Element{}, merkle.Options{})
	if err != nil {
		return 0, err
	}
	r := rand.New(rand.NewPCG(seed, 7))
	apply := func(n int) (time.Duration, error) {
		kvs := make([]merkle.KV, n)
		for i := range kvs {
			kvs[i].Key.SetUint64(r.Uint64())
			kvs[i].Value.SetUint64(r.Uint64())
		}
		t0 := now()
		u, err := t.Apply(kvs)
		if err != nil {
			return 0, err
		}
		store.Put(u)
		if err := t.Commit(u); err != nil {
			return 0, err
		}
		return now() - t0, nil
	}
	if prefill > 0 {
		if _, err := apply(prefill); err != nil {
			return 0, err
		}
	}
	var elapsed time.Duration
	for range blocks {
		d, err := apply(blockSize)
		if err != nil {
			return 0, err
		}
		elapsed += d
	}
	return elapsed / time.Duration(blocks), nil
}

// StateCommit times the node's storage commit of a block, as a replica
// does it (storage.DB.CommitBlock): blockSize put writes of valueSize-byte
// values into one shard of a storage.DB on an in-memory filesystem, each
// block hashing its values to field elements, updating the Merkle tree,
// proving every write and writing one Pebble batch. The keys are written
// once before the timed blocks, so their tree keys are cached as a node's
// are for keys it has seen. It returns the mean time per block over blocks
// blocks.
func StateCommit(blockSize, valueSize, blocks int, seed uint64) (time.Duration, error) {
	return stateCommit(wallClock, blockSize, valueSize, blocks, 0, seed)
}

// StateCommitTree is StateCommit on a shard whose tree first holds
// treeKeys random leaves (storage.DB.SeedTree, untimed), as a node's does
// once the workload's keys are written.
func StateCommitTree(blockSize, valueSize, blocks, treeKeys int, seed uint64) (time.Duration, error) {
	return stateCommit(wallClock, blockSize, valueSize, blocks, treeKeys, seed)
}

func stateCommit(now clock, blockSize, valueSize, blocks, treeKeys int, seed uint64) (time.Duration, error) {
	blockSize, blocks = max(blockSize, 1), max(blocks, 1)
	r := rand.New(rand.NewPCG(seed, 11))
	db, height, err := seededStore(treeKeys, r)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	keys := make([][]byte, blockSize)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "floor/%016x", r.Uint64())
	}
	var elapsed time.Duration
	for h := range uint64(blocks + 1) { // h = 0 writes the keys for the first time
		ws := make([]storage.Write, blockSize)
		for i := range ws {
			v := make([]byte, valueSize)
			for j := range v {
				v[j] = byte(r.Uint32())
			}
			ws[i] = storage.Write{Key: keys[i], Value: v}
		}
		t0 := now()
		if _, err := db.CommitBlock(&storage.BlockCommit{Shard: 0, Height: height + h, Writes: ws}); err != nil {
			return 0, err
		}
		if h > 0 { // the first block writes the keys for the first time
			elapsed += now() - t0
		}
	}
	return elapsed / time.Duration(blocks), nil
}

// VerifyThroughput is how many transaction signatures the node's batching
// verifier (sigverify.Verifier) checks per second with every core busy:
// verifies checks of a signed put for chainID, submitted by callers
// concurrent callers so that they are checked in batches as under load.
func VerifyThroughput(verifies, callers int, chainID uint32) float64 {
	callers = max(callers, 1)
	var seed [32]byte
	x := &tx.Tx{Kind: tx.KindPut, ChainID: chainID, Key: []byte("floor"), Value: make([]byte, 32)}
	x.Sign(ed25519.NewKeyFromSeed(seed[:]))
	msg := x.SigningBytes()
	v := sigverify.New(sigverify.Options{})
	defer v.Close()
	per := max(verifies/callers, 1)
	var wg sync.WaitGroup
	t0 := time.Now()
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range per {
				_, _ = v.Verify(context.Background(), x.From, msg, x.Sig)
			}
		}()
	}
	wg.Wait()
	return float64(per*callers) / time.Since(t0).Seconds()
}

// stateRead times a node's read of a state key with its proof
// (storage.DB.Read) and a client's check of the answer
// (storage.VerifyProof), per read, on a shard whose tree holds treeKeys
// leaves besides the keys read: reads reads of 1000 keys written with
// 32-byte values, every fourth one absent (a non-membership proof).
func stateRead(now clock, treeKeys, reads int, seed uint64) (read, verify time.Duration, err error) {
	r := rand.New(rand.NewPCG(seed, 13))
	db, height, err := seededStore(treeKeys, r)
	if err != nil {
		return 0, 0, err
	}
	defer db.Close()
	ws := make([]storage.Write, 1000)
	for i := range ws {
		v := make([]byte, 32)
		for j := range v {
			v[j] = byte(r.Uint32())
		}
		ws[i] = storage.Write{Key: fmt.Appendf(nil, "read/%016x", r.Uint64()), Value: v}
	}
	if _, err := db.CommitBlock(&storage.BlockCommit{Shard: 0, Height: height, Writes: ws}); err != nil {
		return 0, 0, err
	}
	reads = max(reads, 1)
	for i := range reads {
		key := ws[r.IntN(len(ws))].Key
		if i%4 == 3 {
			key = fmt.Appendf(nil, "absent/%016x", r.Uint64())
		}
		t0 := now()
		v, p, root, err := db.Read(0, key)
		t1 := now()
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return 0, 0, err
		}
		if err := storage.VerifyProof(root, key, v, p); err != nil {
			return 0, 0, fmt.Errorf("a read's proof: %w", err)
		}
		read, verify = read+t1-t0, verify+now()-t1
	}
	return read / time.Duration(reads), verify / time.Duration(reads), nil
}

// seededStore opens an in-memory store without sync whose shard 0 holds
// treeKeys random leaves (none: an empty shard), and returns the height its
// next block takes.
func seededStore(treeKeys int, r *rand.Rand) (*storage.DB, uint64, error) {
	db, err := storage.Open("calib", storage.Options{FS: vfs.NewMem(), NoSync: true})
	if err != nil {
		return nil, 0, err
	}
	if treeKeys <= 0 {
		return db, 1, nil
	}
	leaves := make([]merkle.KV, treeKeys)
	for i := range leaves {
		leaves[i].Key.SetUint64(r.Uint64())
		leaves[i].Value.SetUint64(r.Uint64())
	}
	if err := db.SeedTree(0, leaves); err != nil {
		db.Close()
		return nil, 0, err
	}
	return db, 2, nil
}
