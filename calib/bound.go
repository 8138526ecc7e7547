package calib

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/rustorium/rustorium/node/merkle"
	"github.com/rustorium/rustorium/node/sigverify"
	"github.com/rustorium/rustorium/node/state"
	"github.com/rustorium/rustorium/node/storage"
	"github.com/rustorium/rustorium/node/tx"
)

// BoundOptions configures NodeBound.
type BoundOptions struct {
	// BlockTxs is the mean number of transactions of each shard's blocks,
	// by shard; each is rounded to the nearest integer, and a shard whose
	// mean rounds to 0 is left out. At least one shard must remain.
	BlockTxs []float64
	// TreeKeys is how many leaves each shard's tree holds before the timed
	// blocks (storage.DB.SeedTree), besides the keys the blocks write.
	TreeKeys int
	// ValueSize is the size of a put's value in bytes.
	ValueSize int
	// ChainID is the chain the puts are signed for.
	ChainID uint32
	// Txs is about how many puts are timed over all shards in each
	// repetition. Zero means DefaultBoundTxs. Each shard commits at least
	// BoundMinBlocks blocks whatever Txs says.
	Txs int
	// Reps is how many times the timed puts are done (the same
	// signatures checked again, the same keys written with the same
	// values again, on the grown trees); the fastest counts, since other
	// processes on the machine only slow a repetition down. Zero means
	// DefaultBoundReps.
	Reps int
	// Callers is the number of goroutines submitting signatures to the
	// batching verifier when SigBatch is zero. Zero means 64, enough that
	// the checks are batched as under load.
	Callers int
	// KeysHashed is the share of puts whose state key the node had to
	// hash in the run, its key cache not holding it (a key written for
	// the first time, or evicted): cost.keys_hashed_per_tx, at most 1.
	// That share of each repetition's puts writes keys new to the store
	// (hashed, and inserted into the tree), the others keys it has
	// cached, each block's the same in every repetition. Zero: every key
	// cached.
	KeysHashed float64
	// PrepareBlocks is how many blocks the node's store prepared together
	// on average in the run (cost.prepare_blocks_mean): the blocks are
	// then prepared in batches of that mean size (storage.DB.PrepareMany,
	// each batch of distinct shards, the sizes spread evenly), by up to
	// GOMAXPROCS goroutines that each take a share of the shards, as
	// replicas prepare the blocks of a leader's rounds. A node that cuts
	// a block as soon as a transaction arrives holds few shards' blocks a
	// round at low load, and hashes the Merkle paths of a batch of one
	// block with the scalar kernel. Zero: every shard commits on its own
	// goroutine and expects its next block (storage.DB.Expect), so that
	// the shards' Prepares share their hashing as much as they overlap.
	PrepareBlocks float64
	// SigBatch is how many signatures the node's ingress checked together
	// on average in the run (cost.sig_batch_mean): the signatures are then
	// checked in batches of that many (rounded, at least 1; sigverify.Batch,
	// or sigverify.Verify alone) on GOMAXPROCS goroutines, as the node
	// checked them. A node's checker batches only the signatures that
	// arrive while it is busy, so below tens of thousands of transactions
	// a second it checks almost every one alone, at about twice the CPU
	// of a signature in a batch of 64. Zero means batched as under load:
	// Callers goroutines on a sigverify.Verifier.
	SigBatch float64
	// Seed seeds the keys, values and tree leaves.
	Seed uint64
}

// NodeBound's defaults.
const (
	DefaultBoundTxs  = 3000
	DefaultBoundReps = 3
	BoundMinBlocks   = 3
)

// Bound is what NodeBound measured.
type Bound struct {
	// TPS is puts per second: Txs over Elapsed.
	TPS float64
	// Txs is how many puts one repetition timed, Elapsed the wall time
	// the fastest took.
	Txs     int
	Elapsed time.Duration
	// Blocks is how many blocks one repetition committed, over all
	// shards.
	Blocks int
	// Reps is the number of repetitions.
	Reps int
	// SigBatch is the size of the batches the signatures were checked in
	// (BoundOptions.SigBatch rounded), 0 when the verifier batched them
	// as they queued.
	SigBatch int
	// NewKeys is how many of the puts of a repetition wrote a key new to
	// the store (BoundOptions.KeysHashed's share).
	NewKeys int
	// PrepareBlocks is how many blocks the store prepared together on
	// average in the fastest repetition: the batches of
	// BoundOptions.PrepareBlocks's mean, or as the shards' Prepares
	// overlapped (storage.DB.PrepareBatches). Blocks prepared together
	// share their hashing, as a node's replicas' do when a round holds
	// several shards' blocks.
	PrepareBlocks float64
	// CPU is this process's CPU time (user and system, every thread) in
	// the fastest repetition, zero where the platform cannot tell
	// (getrusage): CPU/Txs is what a put's mandatory work costs the
	// cores, whatever their number — the floor of a one-node run's
	// cost.cpu_us_per_tx at the same block sizes. It is at most
	// Elapsed times the cores busy, less where a serial part of a
	// commit leaves a core idle.
	CPU time.Duration
}

// CPUPerTx is the CPU time of one put's mandatory work (CPU over Txs), or
// zero when CPU was not measured.
func (b Bound) CPUPerTx() time.Duration {
	if b.Txs <= 0 {
		return 0
	}
	return b.CPU / time.Duration(b.Txs)
}

// boundReceiptBytes is the size of the receipt stored with each put (a
// node's receipt of a successful put is about this size).
const boundReceiptBytes = 64

// NodeBound measures how many puts per second this machine's cores do when
// they do only a put's mandatory work, the way a node does it, with every
// core busy: each put's ed25519 signature checked in batches of the size
// the node's ingress checked them in (opts.SigBatch; without it, by the
// node's batching verifier, sigverify.Verifier, called by opts.Callers
// goroutines at once), and each shard's blocks of opts.BlockTxs[shard]
// puts committed as a replica commits them (storage.DB.Prepare and Commit
// on an in-memory filesystem, without sync: values hashed with Poseidon
// HashBytes, tree keys from the key cache but for the share
// opts.KeysHashed of puts that write keys new to the store, as the node's
// did, the Merkle update on a tree holding opts.TreeKeys leaves, a proof
// per write, one Pebble batch with the values, tree nodes, tx index and
// receipts), the blocks of several shards prepared together as many at a
// time as the node's were (opts.PrepareBlocks; without it, the shards
// concurrently, their Prepares batched together as they overlap, each
// shard's next block expected, storage.DB.Expect, as a node's replicas
// prepare a round's blocks). The verification and the commits run at the
// same time over the same puts, so the cores are shared between them as
// in a node; the rate is the puts over the wall time until both are done,
// in the fastest of opts.Reps repetitions, and Bound.CPU the process's CPU
// time in that repetition.
//
// Untimed setup: the trees are seeded (SeedTree), each shard's keys are
// written once so that their tree keys are cached (a node's are for keys
// it has seen), and the puts are signed.
func NodeBound(ctx context.Context, opts BoundOptions) (Bound, error) {
	if opts.Txs <= 0 {
		opts.Txs = DefaultBoundTxs
	}
	if opts.Callers <= 0 {
		opts.Callers = 64
	}
	if opts.Reps <= 0 {
		opts.Reps = DefaultBoundReps
	}
	type shardWork struct {
		id     uint32
		size   int      // puts per block
		blocks int      // timed blocks
		keys   [][]byte // the state keys each block writes
	}
	var shards []*shardWork
	for i, m := range opts.BlockTxs {
		if size := int(math.Round(m)); size >= 1 {
			shards = append(shards, &shardWork{id: uint32(i), size: size})
		}
	}
	if len(shards) == 0 {
		return Bound{}, fmt.Errorf("calib: node bound: no shard with blocks of at least one transaction")
	}
	perShard := max(opts.Txs/len(shards), 1)
	for _, s := range shards {
		s.blocks = max(BoundMinBlocks, (perShard+s.size-1)/s.size)
	}

	db, err := storage.Open("bound", storage.Options{FS: vfs.NewMem(), NoSync: true})
	if err != nil {
		return Bound{}, err
	}
	defer db.Close()
	r := rand.New(rand.NewPCG(opts.Seed, 13))
	value := func() []byte {
		v := make([]byte, opts.ValueSize)
		for j := range v {
			v[j] = byte(r.Uint32())
		}
		return v
	}
	var priv ed25519.PrivateKey
	{
		var seed [32]byte
		binary.LittleEndian.PutUint64(seed[:], opts.Seed)
		priv = ed25519.NewKeyFromSeed(seed[:])
	}
	type signed struct{ pub, msg, sig []byte }
	var sigs []signed
	var blockWrites [][][]storage.Write // by shard index, block, put: the cached keys
	newKeys := min(max(opts.KeysHashed, 0), 1)
	for _, s := range shards {
		leaves := make([]merkle.KV, opts.TreeKeys)
		for i := range leaves {
			leaves[i].Key.SetUint64(r.Uint64())
			leaves[i].Value.SetUint64(r.Uint64())
		}
		if err := db.SeedTree(s.id, leaves); err != nil {
			return Bound{}, err
		}
		s.keys = make([][]byte, s.size)
		warm := make([]storage.Write, s.size)
		for i := range s.keys {
			s.keys[i] = state.PutKey(fmt.Appendf(nil, "bound-%d-%016x", s.id, r.Uint64()))
			warm[i] = storage.Write{Key: s.keys[i], Value: value()}
		}
		if _, err := db.CommitBlock(&storage.BlockCommit{Shard: s.id, Height: 2, Writes: warm}); err != nil {
			return Bound{}, err
		}
		blocks := make([][]storage.Write, s.blocks)
		for b := range blocks {
			blocks[b] = make([]storage.Write, s.size)
			for i := range blocks[b] {
				x := &tx.Tx{Kind: tx.KindPut, ChainID: opts.ChainID, Nonce: uint64(len(sigs)), Key: s.keys[i][1:], Value: value()}
				x.Sign(priv)
				sigs = append(sigs, signed{x.From, x.SigningBytes(), x.Sig})
				blocks[b][i] = storage.Write{Key: s.keys[i], Value: x.Value}
			}
		}
		blockWrites = append(blockWrites, blocks)
	}
	// Each repetition's writes: the blocks', with a newKeys share of the
	// puts (spread evenly over each shard's) writing a key of their own.
	writes := make([][][][]storage.Write, opts.Reps) // by repetition, shard index, block, put
	fresh := 0
	for rep := range writes {
		writes[rep] = make([][][]storage.Write, len(shards))
		for si, s := range shards {
			put := 0
			writes[rep][si] = make([][]storage.Write, len(blockWrites[si]))
			for b, ws := range blockWrites[si] {
				out := slices.Clone(ws)
				for i := range out {
					if math.Floor(float64(put+1)*newKeys) > math.Floor(float64(put)*newKeys) {
						out[i].Key = state.PutKey(fmt.Appendf(nil, "bound-%d-new-%016x", s.id, r.Uint64()))
						if rep == 0 {
							fresh++
						}
					}
					put++
				}
				writes[rep][si][b] = out
			}
		}
	}
	receipt := make([]byte, boundReceiptBytes)

	var v *sigverify.Verifier // without SigBatch: the node's batching verifier
	sigBatch := 0
	var batches [][]sigverify.Item // SigBatch's batches, in order
	if opts.SigBatch <= 0 {
		v = sigverify.New(sigverify.Options{})
		defer v.Close()
	} else {
		sigBatch = max(1, int(math.Round(opts.SigBatch)))
		for i := 0; i < len(sigs); i += sigBatch {
			b := make([]sigverify.Item, 0, sigBatch)
			for _, sg := range sigs[i:min(i+sigBatch, len(sigs))] {
				b = append(b, sigverify.Item{Pub: sg.pub, Msg: sg.msg, Sig: sg.sig})
			}
			batches = append(batches, b)
		}
	}
	ids := make([][][][32]byte, len(shards)) // by shard index, block, put
	seq := uint64(0)
	for si, s := range shards {
		ids[si] = make([][][32]byte, s.blocks)
		for b := range ids[si] {
			ids[si][b] = make([][32]byte, s.size)
			for i := range ids[si][b] {
				seq++
				binary.BigEndian.PutUint64(ids[si][b][i][:], seq)
			}
		}
	}
	heights := make([]uint64, len(shards)) // each shard's next height: 1 seeded, 2 warm
	for si := range heights {
		heights[si] = 3
	}
	var groups [][][]blockRef // by goroutine: the batches of blocks it prepares together, in turn
	if opts.PrepareBlocks > 0 {
		counts := make([]int, len(shards))
		for si := range shards {
			counts[si] = len(blockWrites[si])
		}
		groups = prepareGroups(counts, opts.PrepareBlocks, runtime.GOMAXPROCS(0))
	}
	once := func(writes [][][]storage.Write) (time.Duration, error) {
		var (
			wg       sync.WaitGroup
			errMu    sync.Mutex
			firstErr error
			next     = make(chan int, opts.Callers)
		)
		fail := func(err error) {
			errMu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			errMu.Unlock()
		}
		t0 := time.Now()
		callers, items := opts.Callers, len(sigs)
		if v == nil {
			callers, items = runtime.GOMAXPROCS(0), len(batches)
		}
		for range callers {
			wg.Go(func() {
				for i := range next {
					if v == nil {
						for j, ok := range sigverify.Batch(batches[i]) {
							if !ok {
								fail(fmt.Errorf("calib: node bound: signature %d of batch %d: invalid", j, i))
							}
						}
						continue
					}
					if ok, err := v.Verify(ctx, sigs[i].pub, sigs[i].msg, sigs[i].sig); err != nil || !ok {
						fail(fmt.Errorf("calib: node bound: signature %d: ok %v, %w", i, ok, err))
					}
				}
			})
		}
		wg.Go(func() {
			defer close(next)
			for i := range items {
				select {
				case next <- i:
				case <-ctx.Done():
					return
				}
			}
		})
		for _, batches := range groups {
			wg.Go(func() {
				for _, batch := range batches {
					if ctx.Err() != nil {
						return
					}
					cs := make([]*storage.BlockCommit, len(batch))
					for i, ref := range batch {
						ws := writes[ref.shard][ref.block]
						txs := make([]storage.TxEntry, len(ws))
						for j := range txs {
							txs[j] = storage.TxEntry{ID: ids[ref.shard][ref.block][j], Receipt: receipt}
						}
						cs[i] = &storage.BlockCommit{Shard: shards[ref.shard].id, Height: heights[ref.shard] + uint64(ref.block), Header: receipt, Writes: ws, Txs: txs}
					}
					ps, errs := db.PrepareMany(cs)
					for i := range ps {
						err := errs[i]
						if err == nil {
							_, err = db.Commit(ps[i])
						}
						if err != nil {
							fail(err)
							return
						}
					}
				}
			})
		}
		for si, s := range shards {
			if groups != nil {
				break // the batches above commit every shard's blocks
			}
			wg.Go(func() {
				for b, ws := range writes[si] {
					if ctx.Err() != nil {
						return
					}
					txs := make([]storage.TxEntry, len(ws))
					for i := range txs {
						txs[i] = storage.TxEntry{ID: ids[si][b][i], Receipt: receipt}
					}
					h := heights[si] + uint64(b)
					p, err := db.Prepare(&storage.BlockCommit{Shard: s.id, Height: h, Header: receipt, Writes: ws, Txs: txs})
					if err == nil {
						// The next block is on its way, as a round's
						// blocks are in a node: the other shards'
						// Prepares meanwhile wait for it and share their
						// hashing with it (storage.DB.Expect).
						if b+1 < len(writes[si]) {
							db.Expect(s.id, h+1)
						}
						_, err = db.Commit(p)
					}
					if err != nil {
						fail(err)
						return
					}
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(t0)
		if firstErr != nil {
			return 0, firstErr
		}
		return elapsed, ctx.Err()
	}
	var elapsed, cpu time.Duration
	prepareBlocks := meanBatch(groups) // 0 without groups: measured below
	for rep := range opts.Reps {
		c0 := cpuClock()
		batches0, blocks0 := db.PrepareBatches()
		d, err := once(writes[rep])
		if err != nil {
			return Bound{}, err
		}
		if rep == 0 || d < elapsed {
			elapsed, cpu = d, cpuClock()-c0
			if batches, blocks := db.PrepareBatches(); groups == nil && batches > batches0 {
				prepareBlocks = float64(blocks-blocks0) / float64(batches-batches0)
			}
		}
		for si := range heights {
			heights[si] += uint64(len(blockWrites[si]))
		}
	}
	out := Bound{Txs: len(sigs), Elapsed: elapsed, Reps: opts.Reps, SigBatch: sigBatch, NewKeys: fresh, PrepareBlocks: prepareBlocks}
	if haveCPUClock {
		out.CPU = cpu
	}
	for _, s := range shards {
		out.Blocks += s.blocks
	}
	out.TPS = float64(out.Txs) / elapsed.Seconds()
	return out, nil
}

// blockRef is block number block of the shard of index shard.
type blockRef struct{ shard, block int }

// prepareGroups cuts the blocks of shards (counts[i] blocks of the shard of
// index i) into batches of mean size mean (at least 1), each of distinct
// shards, for up to cores goroutines: each takes every n-th shard, n the
// goroutines, as few as let a batch reach mean's ceiling, and lists its
// shards' blocks in turn (block 0 of each, then block 1, ...), cut into
// batches whose sizes spread mean evenly (floor((j+1)·mean) −
// floor(j·mean)); a batch that would hold a shard twice ends early.
func prepareGroups(counts []int, mean float64, cores int) [][][]blockRef {
	mean = max(mean, 1)
	per := int(math.Ceil(mean)) // shards a goroutine needs for its biggest batch
	n := max(1, min(cores, len(counts)/per))
	out := make([][][]blockRef, n)
	for g := range n {
		var order []blockRef
		for b := 0; ; b++ {
			added := false
			for si := g; si < len(counts); si += n {
				if b < counts[si] {
					order = append(order, blockRef{si, b})
					added = true
				}
			}
			if !added {
				break
			}
		}
		for j := 0; len(order) > 0; j++ {
			size := max(1, int(math.Floor(float64(j+1)*mean)-math.Floor(float64(j)*mean)))
			k := 0
			seen := map[int]bool{}
			for k < len(order) && k < size && !seen[order[k].shard] {
				seen[order[k].shard] = true
				k++
			}
			out[g] = append(out[g], order[:k])
			order = order[k:]
		}
	}
	return out
}

// meanBatch is the mean size of groups' batches.
func meanBatch(groups [][][]blockRef) float64 {
	var batches, blocks int
	for _, g := range groups {
		batches += len(g)
		for _, b := range g {
			blocks += len(b)
		}
	}
	if batches == 0 {
		return 0
	}
	return float64(blocks) / float64(batches)
}
