package storage

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	dto "github.com/prometheus/client_model/go"

	"github.com/rustorium/rustorium/node/merkle"
)

// DB is a node's store. All methods are safe for concurrent use; commits to
// one shard are serialized, commits to different shards run concurrently.
type DB struct {
	opts  Options
	pdb   *pebble.DB
	cache *merkle.NodeCache
	keys  *keyCache
	wopts *pebble.WriteOptions
	prep  combiner    // Prepare's batches
	sync  groupCommit // Commit's synced batches

	// closeMu is held shared by every operation and exclusively by Close
	// and by a reopen while it swaps Pebble, so Pebble is never used after
	// it is closed.
	closeMu sync.RWMutex
	closed  bool
	perms   atomic.Uint64 // Poseidon permutations of values and trees (keys: keys.perms)
	// flushes counts every Pebble the store opened (WriteStats'
	// MemtablesFlushed and L0Rounds).
	flushes FlushCounter
	// down: Recover closed a failed Pebble and has not reopened it yet.
	// Guarded by closeMu.
	down bool
	// closedWrites is what the Pebbles the store closed wrote and synced,
	// and replayed the bytes the current one had counted as coming in
	// when it was opened again (Recover: its replay of the failed one's
	// WAL, which closedWrites holds already; 0 for the first). WriteStats
	// counts over every Pebble the store opened. Guarded by closeMu.
	closedWrites WriteStats
	replayed     uint64
	dir          string
	probes       atomic.Uint64 // Probe's counter

	fmu       sync.Mutex    // guards failed, corrupt, reopening and the background error
	reopening *reopen       // Recover's reopen under way
	failed    error         // why the store takes no writes (ErrWrite); nil while it does
	corrupt   error         // the first corruption Pebble reported (ErrCorrupt)
	bgErr     error         // Pebble's last error message (a failed flush or compaction)
	bgAt      time.Time     // when
	bgCount   int           // since the window began
	bgWindow  time.Duration // backgroundWindow; tests shorten it
	// wedged: a panic stopped Pebble's commit pipeline, or Close left a
	// stalled WAL (NoSync; see ErrWedged). Pebble is never closed or
	// written to again.
	wedged atomic.Bool
	// pfs is the filesystem Pebble is given: opts.FS, wrapped in a walFS
	// with NoSync. wal is that walFS's stall (nil without NoSync).
	pfs vfs.FS
	wal *walStall

	mu     sync.Mutex // guards shards
	shards map[uint32]*shard
}

type shard struct {
	// mu is held exclusively while a block commits and shared by reads, so
	// a read sees a value and a proof of the same block.
	mu      sync.RWMutex
	tree    *merkle.Tree
	meta    Meta
	hasMeta bool
}

// Open opens (creating if needed) the store in dir.
func Open(dir string, opts Options) (*DB, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	d := &DB{
		opts:     opts,
		dir:      dir,
		cache:    merkle.NewNodeCache(opts.TreeCacheNodes),
		keys:     newKeyCache(opts.KeyCacheEntries),
		wopts:    pebble.Sync,
		shards:   map[uint32]*shard{},
		bgWindow: backgroundWindow,
	}
	d.pfs = opts.FS
	if opts.NoSync {
		d.wopts = pebble.NoSync
		d.wal = newWALStall(d.walFailed, d.walResumed)
		d.pfs = &walFS{FS: opts.FS, st: d.wal}
	}
	pdb, err := d.openPebble()
	if err != nil {
		return nil, err
	}
	d.pdb = pdb
	if d.wal != nil {
		// From now on a failed WAL write waits for the disk: Pebble
		// can no longer be told (see Options.NoSync). Open itself fails.
		d.wal.arm()
	}
	metas, err := d.readMetas()
	if err == nil {
		err = d.verify()
	}
	if err != nil {
		d.closeFailedOpen()
		return nil, corrupted(err)
	}
	for id, m := range metas {
		if d.shards[id], err = d.loadShard(id, m); err != nil {
			d.closeFailedOpen()
			return nil, err
		}
	}
	return d, nil
}

// closeFailedOpen closes the Pebble of an Open that fails (nothing else
// uses it yet), unless its WAL stalled since (see Close).
func (d *DB) closeFailedOpen() {
	if d.wal != nil {
		if d.wal.park() != nil {
			return
		}
		d.wal.failFast()
	}
	_ = d.closePebble()
}

// walFailed reports a stalled WAL operation's failure (ErrStalled; see
// Options.NoSync).
func (d *DB) walFailed(err error) {
	if d.opts.OnError != nil {
		d.opts.OnError("wal", err)
	}
}

// walResumed reports that a stalled WAL is written again.
func (d *DB) walResumed(cause error) {
	if d.opts.OnRecover != nil {
		d.opts.OnRecover(cause)
	}
}

// stalled is the stall's error while a WAL operation is failing under
// NoSync (ErrStalled), nil otherwise.
func (d *DB) stalled() error {
	if d.wal == nil {
		return nil
	}
	return d.wal.err()
}

// openPebble opens Pebble in the store's directory.
func (d *DB) openPebble() (*pebble.DB, error) {
	cache := pebble.NewCache(d.opts.CacheBytes)
	defer cache.Unref()
	po := &pebble.Options{
		FS:           d.pfs,
		Cache:        cache,
		MemTableSize: d.opts.MemTableBytes,
		Logger:       pebbleLogger{base: d.opts.Logger, d: d},
		// A corrupted table is reported, not fatal (Pebble's default ends
		// the process): the read that found it fails with ErrCorrupt.
		EventListener: d.flushes.Listen(&pebble.EventListener{DataCorruption: d.corruption}),
	}
	// Bloom filters on every level (the later levels inherit L0's): most
	// point reads are misses — is this transaction id already committed?
	// (once per transaction on the leader and on every replica) — and
	// without a filter each miss reads an index and a data block of every
	// level.
	po.Levels[0].FilterPolicy = bloom.FilterPolicy(10)
	// No block compression: what the store holds is hashes (tree nodes,
	// ids, roots, proofs) and signed transactions' values, which do not
	// compress; Snappy's attempt on every block was about 2% of the CPU of
	// a node at 1000 puts/s (a CPU profile of make run), for nothing.
	po.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return pebble.DBCompressionNone })
	pdb, err := pebble.Open(d.dir, po)
	if err != nil {
		return nil, corrupted(fmt.Errorf("storage: opening pebble in %s: %w", d.dir, err))
	}
	return pdb, nil
}

// corrupted marks a Pebble corruption error as ErrCorrupt.
func corrupted(err error) error {
	if err != nil && !errors.Is(err, ErrCorrupt) && pebble.IsCorruptionError(err) {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return err
}

// verify checks the store's tables at open, so a corrupted table fails
// Open instead of a read after the node started: it reads every table's
// footer, index and first data block (an iterator positioned at each
// table's smallest key), or, with Options.VerifyAll, every block of every
// table (Pebble's CheckLevels). It returns the first corruption Pebble
// reported (ErrCorrupt).
func (d *DB) verify() error {
	if d.opts.VerifyAll {
		if err := d.pdb.CheckLevels(nil); err != nil {
			return fmt.Errorf("storage: checking every table: %w", err)
		}
	}
	levels, err := d.pdb.SSTables()
	if err != nil {
		return fmt.Errorf("storage: listing tables: %w", err)
	}
	for l, tables := range levels {
		for _, tb := range tables {
			it, err := d.pdb.NewIter(&pebble.IterOptions{LowerBound: tb.Smallest.UserKey})
			if err == nil {
				it.First()
				err = it.Close()
			}
			if err != nil {
				return fmt.Errorf("storage: reading table %s (L%d): %w", tb.FileNum, l, err)
			}
		}
	}
	return d.Corrupt()
}

func (d *DB) treeOptions() merkle.Options {
	return merkle.Options{MaxLevels: d.opts.MaxLevels, Cache: d.cache, Parallelism: d.opts.Parallelism}
}

// readMetas reads every shard's stored Meta.
func (d *DB) readMetas() (map[uint32]Meta, error) {
	it, err := d.pdb.NewIter(&pebble.IterOptions{LowerBound: []byte{tableMeta}, UpperBound: []byte{tableMeta + 1}})
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	defer it.Close()
	metas := map[uint32]Meta{}
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) != 5 {
			return nil, fmt.Errorf("%w: meta key %x", ErrCorrupt, k)
		}
		id := binary.BigEndian.Uint32(k[1:])
		m, err := decodeMeta(it.Value())
		if err != nil {
			return nil, fmt.Errorf("shard %d: %w", id, err)
		}
		metas[id] = m
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	return metas, nil
}

// loadShard opens shard id's tree at m's root.
func (d *DB) loadShard(id uint32, m Meta) (*shard, error) {
	tr, err := merkle.New(nodeReader{d}, m.Root, d.treeOptions())
	if err != nil {
		return nil, fmt.Errorf("%w: shard %d: %w", ErrCorrupt, id, err)
	}
	return &shard{tree: tr, meta: m, hasMeta: true}, nil
}

// Close closes the store. It is safe to call more than once.
//
// With NoSync, a WAL operation may be stalled (see Options.NoSync), and
// commits waiting on it inside Pebble, holding what Close waits for; and
// Pebble cannot be told that its WAL failed (it would end the process or
// wedge). So Close, finding the WAL stalled before it could wait for the
// operations in flight, stops the retries for good: the stalled WAL
// operations, and the commits waiting on them, then wait until the
// process exits, without retrying; Close returns at once an ErrWedged
// wrapping the ErrStalled, Pebble is left open (process exit cleans up;
// the WAL's unwritten tail is lost, as a crash would lose it, and a node
// replays those blocks from its log), and the store is wedged. Otherwise,
// once no operation is in flight, WAL operations are no longer retried (a
// stalled one returns its error to Pebble, safe then), and Close returns
// what Pebble's Close returns. Close polls (every closePoll) for the
// operations in flight to end, as it must notice a stall meanwhile.
func (d *DB) Close() error {
	if d.wedged.Load() {
		// Pebble's commit pipeline is locked for good (and a commit may be
		// stuck in it holding closeMu): neither can be waited for.
		return d.failure()
	}
	if d.wal == nil {
		d.closeMu.Lock()
	} else {
		// Wait for the operations in flight unless the WAL stalls: a
		// commit waiting on it would never let go.
		for !d.closeMu.TryLock() {
			if stall := d.wal.park(); stall != nil {
				return d.abandon(stall)
			}
			time.Sleep(closePoll)
		}
		// No commit in flight: Pebble's Close returns a WAL error (of a
		// stalled flusher too), so the retries can end.
		d.wal.failFast()
	}
	defer d.closeMu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	if d.down {
		return nil
	}
	if d.wedged.Load() {
		// A commit wedged Pebble while Close waited.
		return d.failure()
	}
	return d.closePebble()
}

// closePoll is how often Close, with NoSync, tries to take the store from
// the operations in flight, checking meanwhile that the WAL is not stalled.
const closePoll = time.Millisecond

// abandon wedges the store that Close found with its WAL stalled (see
// Close) and returns the error Close returns.
func (d *DB) abandon(stall error) error {
	err := fmt.Errorf("%w: closed with its WAL stalled (Pebble is left open, the WAL's unwritten tail lost): %w", ErrWedged, stall)
	d.wedged.Store(true)
	d.fmu.Lock()
	d.failed = err
	d.fmu.Unlock()
	return err
}

// closePebble closes the store's Pebble (closeDB).
func (d *DB) closePebble() error {
	err := d.closeDB(d.pdb, d.replayed)
	d.replayed = 0
	return err
}

// closeDB closes pdb, a Pebble the store opened having replayed bytes of
// its WAL (writesOf), and adds what it wrote to closedWrites. A failed
// Pebble may report its failure again or a fatal message, returned as an
// error.
func (d *DB) closeDB(pdb *pebble.DB, replayed uint64) (err error) {
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(fatalError)
			if !ok {
				panic(r)
			}
			err = f
		}
	}()
	d.closedWrites = d.closedWrites.add(writesOf(pdb.Metrics(), replayed))
	return pdb.Close()
}

// writesOf is what one Pebble wrote and synced since it opened, from its
// metrics, less the replayed bytes it counted as coming in (and so as
// written to its WAL) at its open: the byte totals and the WAL syncs
// (LogWriter.FsyncLatency, which observes each sync in nanoseconds). The
// flush counts are the store's FlushCounter's, not a Pebble's, and stay
// zero.
func writesOf(m *pebble.Metrics, replayed uint64) WriteStats {
	t := m.Total()
	w := WriteStats{BytesIn: t.TableBytesIn - min(replayed, t.TableBytesIn),
		BytesWritten: t.TableBytesFlushed + t.TableBytesCompacted + t.BlobBytesFlushed + t.BlobBytesCompacted - min(replayed, t.TableBytesFlushed),
		// Total's TableBytesFlushed counts the WAL's bytes too.
		BytesFlushed: t.TableBytesFlushed - min(t.TableBytesIn, t.TableBytesFlushed) + t.BlobBytesFlushed}
	if h := m.LogWriter.FsyncLatency; h != nil {
		var out dto.Metric
		if h.Write(&out) == nil {
			w.WALSyncs, w.WALSyncSeconds = out.GetHistogram().GetSampleCount(), out.GetHistogram().GetSampleSum()/1e9
		}
	}
	return w
}

// probeRecoverWait bounds Probe's wait for a reopen of a failed store.
const probeRecoverWait = time.Second

// Probe writes (and syncs, unless Options.NoSync) one small key of its
// own: it fails when the store cannot take writes (disk full, I/O errors,
// a closed store), while its WAL is stalled (ErrStalled, at once, without
// writing, which would wait; see Options.NoSync), when Pebble found a
// corrupted table (Corrupt), and for 10s after Pebble's last error
// message (a flush or compaction that failed: on a full disk the WAL may
// still take the probe's write). A
// failed store is first reopened (Recover, waited for at most 1s): a probe
// that passes means the store took a write again. Readiness checks call
// it.
func (d *DB) Probe() error {
	if err := d.Corrupt(); err != nil {
		return err
	}
	if err := d.stalled(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), probeRecoverWait)
	defer cancel()
	if err := d.Recover(ctx); err != nil {
		return err
	}
	if err := d.background(); err != nil {
		return err
	}
	exit, err := d.enter()
	if err != nil {
		return err
	}
	defer exit()
	return d.probe(d.pdb)
}

func (d *DB) probe(pdb *pebble.DB) error {
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], d.probes.Add(1))
	return d.write("probe", func() error { return pdb.Set([]byte{tableProbe}, v[:], d.wopts) })
}

// write runs fn, a Pebble write of op, unless the store failed. A write
// that fails (with an error, or with the fatal message Pebble's commit
// pipeline raises on a failed WAL write or sync) fails the store: it
// returns ErrWrite, and so does every write after it until Recover.
func (d *DB) write(op string, fn func() error) (err error) {
	if cause := d.failure(); cause != nil {
		if d.wedged.Load() {
			return fmt.Errorf("%s refused: %w", op, cause)
		}
		return fmt.Errorf("%w: %s refused: the store failed (%v) and has not been reopened yet", ErrWrite, op, cause)
	}
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(fatalError)
			if !ok {
				e, isErr := r.(error)
				if !isErr || !d.opts.NoSync {
					panic(r)
				}
				err = d.wedge(op, e)
				return
			}
			err = f
		}
		if err != nil {
			err = fmt.Errorf("%w: %s: %w", ErrWrite, op, err)
			d.fmu.Lock()
			if d.failed == nil {
				d.failed = err
			}
			d.fmu.Unlock()
			if d.opts.OnError != nil {
				d.opts.OnError(op, err)
			}
		}
	}()
	return fn()
}

// wedge fails the store for good after Pebble's commit of op panicked
// with err under NoSync: the panic leaves Pebble's commit pipeline locked,
// so Pebble can take no write and cannot even be closed (see ErrWedged).
// A failed WAL write no longer gets here (the WAL stalls instead; see
// Options.NoSync), but a failure the store does not retry still can.
func (d *DB) wedge(op string, err error) error {
	err = fmt.Errorf("%w: %s: pebble's commit failed with storage sync off: %w", ErrWedged, op, err)
	d.wedged.Store(true)
	d.fmu.Lock()
	d.failed = err
	d.fmu.Unlock()
	if d.opts.OnError != nil {
		d.opts.OnError(op, err)
	}
	return err
}

// corruption is Pebble's DataCorruption event: the store records it
// (Corrupt) and reports it to OnError ("corruption").
func (d *DB) corruption(info pebble.DataCorruptionInfo) {
	err := fmt.Errorf("%w: %s: %v", ErrCorrupt, info.Path, info.Details)
	d.fmu.Lock()
	if d.corrupt == nil {
		d.corrupt = err
	}
	d.fmu.Unlock()
	if d.opts.OnError != nil {
		d.opts.OnError("corruption", err)
	}
}

// backgroundWindow is how long after Pebble's last error message (a
// failed flush or compaction: on a full disk, the WAL may still take the
// probe's small write) Probe keeps failing.
const backgroundWindow = 10 * time.Second

// noteBackground records an error message of Pebble's.
func (d *DB) noteBackground(err error) {
	d.fmu.Lock()
	defer d.fmu.Unlock()
	now := time.Now()
	if now.Sub(d.bgAt) > d.bgWindow {
		d.bgCount = 0
	}
	d.bgErr, d.bgAt = err, now
	d.bgCount++
}

// background is Pebble's last error message if it came less than
// backgroundWindow ago, as ErrWrite; nil otherwise.
func (d *DB) background() error {
	d.fmu.Lock()
	defer d.fmu.Unlock()
	if d.bgErr == nil || time.Since(d.bgAt) > d.bgWindow {
		return nil
	}
	return fmt.Errorf("%w: pebble reported %d errors, the last %v ago: %w", ErrWrite, d.bgCount, time.Since(d.bgAt).Round(time.Millisecond), d.bgErr)
}

// Corrupt returns the first corruption Pebble found in the store's files
// (ErrCorrupt), or nil. A corrupted store does not heal: restore it.
func (d *DB) Corrupt() error {
	d.fmu.Lock()
	defer d.fmu.Unlock()
	return d.corrupt
}

// failure is the error that failed the store; nil while it takes writes.
func (d *DB) failure() error {
	d.fmu.Lock()
	defer d.fmu.Unlock()
	return d.failed
}

// Failed returns the error that failed the store (see ErrWrite and
// ErrWedged), or, while its WAL is stalled, the stall (ErrStalled; see
// Options.NoSync); nil while it takes writes.
func (d *DB) Failed() error {
	if err := d.failure(); err != nil {
		return err
	}
	return d.stalled()
}

// Recover reopens a failed store (see ErrWrite) from its durable state,
// without the process restarting: it closes Pebble, opens it again (which
// replays its WAL and flushes it: Pebble's Open waits until the disk takes
// that flush), checks that it takes a synced write, and reloads every
// shard whose stored Meta differs from the one in memory (a block whose
// commit failed may still have reached the disk whole; it is then
// committed, and CommitBlock/Commit of it again fail with
// ErrHeightMismatch). It returns nil at once for a store that did not
// fail. One reopen runs at a time, owned by the store; Recover starts it
// if none runs and waits for it or for ctx (then it returns an ErrWrite
// naming the failure; the reopen goes on). While it runs the store is
// down: reads fail with ErrWrite too, without waiting. A reopen that
// fails leaves the store down until the next Recover.
//
// Close does not wait for a reopen still inside Pebble's Open (waiting
// for a full disk): that reopen closes what it opened when Open returns.
func (d *DB) Recover(ctx context.Context) error {
	d.fmu.Lock()
	cause := d.failed
	if cause == nil || d.wedged.Load() {
		d.fmu.Unlock()
		return cause
	}
	r := d.reopening
	if r == nil {
		r = &reopen{done: make(chan struct{})}
		d.reopening = r
		go func() {
			defer close(r.done)
			r.err = d.reopen(cause)
			d.fmu.Lock()
			d.reopening = nil
			d.fmu.Unlock()
		}()
	}
	d.fmu.Unlock()
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return fmt.Errorf("%w: the store is reopening (it failed: %v): %w", ErrWrite, cause, context.Cause(ctx))
	}
}

// reopen is one run of Recover's reopening.
type reopen struct {
	done chan struct{}
	err  error
}

// reopen closes the failed Pebble and opens it again; see Recover.
func (d *DB) reopen(cause error) error {
	fail := func(err error) error {
		err = fmt.Errorf("%w: reopening the store: %w", ErrWrite, err)
		if d.opts.OnError != nil {
			d.opts.OnError("reopen", err)
		}
		return err
	}
	d.closeMu.Lock()
	if d.closed {
		d.closeMu.Unlock()
		return ErrClosed
	}
	if !d.down {
		if err := d.closePebble(); err != nil && d.opts.OnError != nil {
			d.opts.OnError("reopen", fmt.Errorf("%w: closing the failed store: %w", ErrWrite, err))
		}
		d.down = true
	}
	d.closeMu.Unlock()

	pdb, err := d.openPebble() // may wait long for the disk: no lock held
	if err != nil {
		return fail(err)
	}
	// What the new Pebble counted as coming in when it replayed the WAL,
	// already counted by the failed one; its flush of it is its own.
	replayed := pdb.Metrics().Total().TableBytesIn
	d.closeMu.Lock()
	defer d.closeMu.Unlock()
	if d.closed {
		_ = d.closeDB(pdb, replayed)
		return ErrClosed
	}
	d.fmu.Lock()
	d.failed = nil // probe's write must reach pdb
	d.fmu.Unlock()
	if err := d.probe(pdb); err != nil {
		d.fmu.Lock()
		d.failed = cause
		d.fmu.Unlock()
		_ = d.closeDB(pdb, replayed)
		return err // reported by write
	}
	d.pdb, d.replayed, d.down = pdb, replayed, false
	metas, err := d.readMetas()
	if err == nil {
		err = d.reloadShards(metas)
	}
	if err != nil {
		d.fmu.Lock()
		d.failed = cause
		d.fmu.Unlock()
		_ = d.closePebble()
		d.down = true
		return fail(err)
	}
	if d.opts.OnRecover != nil {
		d.opts.OnRecover(cause)
	}
	return nil
}

// PoseidonPermutations is how many Poseidon permutations the store has run
// since it opened: hashing state keys (those its key cache missed) and
// values to field elements, and the Merkle nodes of every prepared block.
// Proof verification, which clients do, is not counted.
func (d *DB) PoseidonPermutations() uint64 { return d.perms.Load() + d.keys.perms.Load() }

// KeysHashed is how many state keys the store has hashed to tree keys since
// it opened: the writes whose key its key cache did not hold (a key
// written for the first time, or evicted).
func (d *DB) KeysHashed() uint64 { return d.keys.hashed.Load() }

// commitBatch commits block batch b, prepared in round r: with sync, in a
// group with its round's other blocks (groupCommit), one WAL sync for all.
func (d *DB) commitBatch(r *prepRound, b *pebble.Batch) error {
	if d.opts.NoSync {
		return d.write("commit", func() error { return b.Commit(d.wopts) })
	}
	return d.sync.commit(r, b, d.opts.CombineWait, func(f func() error) error { return d.write("commit", f) }, d.wopts)
}

// WriteStats is how much Pebble wrote since the store opened (from
// pebble.Metrics' totals): BytesIn is what came in (the WAL's bytes and
// ingested tables), BytesWritten all it wrote for that (the WAL, flushes and
// compactions). BytesWritten / BytesIn is the write amplification.
// BytesFlushed is what its flushes wrote, MemtablesFlushed the memtables'
// worth they took (the arena bytes flushed over Options.MemTableBytes: a
// flush that fell behind takes several at once), and L0Rounds how many
// rounds of compactions took tables out of L0: the first compaction out of
// L0 to begin after a flush ended starts one (Pebble merges L0 into the
// base level in one or several compactions back to back, split by key
// range, as many as the base level has grown: on session 34's host a
// three-node cluster's nodes ran rounds of 1, 2 and 3 after every second
// flush). They are the shape of its background work, which the
// simulator's Pebble model takes from calibrate's runs, and count over
// every Pebble the store opened, as the byte totals do: a store that
// reopened after a failed write keeps what the failed Pebble wrote, and
// does not count again what the new one replayed of its WAL.
//
// WALSyncs is how many times Pebble synced its write-ahead log, and
// WALSyncSeconds how long those syncs took together (Pebble's
// LogWriter.FsyncLatency: each sync's write and fdatasync), over every
// Pebble the store opened.
type WriteStats struct {
	BytesIn, BytesWritten uint64
	BytesFlushed          uint64
	MemtablesFlushed      float64
	L0Rounds              uint64
	WALSyncs              uint64
	WALSyncSeconds        float64
}

// add is w and o summed field by field.
func (w WriteStats) add(o WriteStats) WriteStats {
	return WriteStats{BytesIn: w.BytesIn + o.BytesIn, BytesWritten: w.BytesWritten + o.BytesWritten, BytesFlushed: w.BytesFlushed + o.BytesFlushed,
		MemtablesFlushed: w.MemtablesFlushed + o.MemtablesFlushed, L0Rounds: w.L0Rounds + o.L0Rounds,
		WALSyncs: w.WALSyncs + o.WALSyncs, WALSyncSeconds: w.WALSyncSeconds + o.WALSyncSeconds}
}

// WriteAmp is BytesWritten / BytesIn, 0 before anything came in.
func (w WriteStats) WriteAmp() float64 {
	if w.BytesIn == 0 {
		return 0
	}
	return float64(w.BytesWritten) / float64(w.BytesIn)
}

// WriteStats returns Pebble's write totals; zero once the store is closed.
func (d *DB) WriteStats() WriteStats {
	exit, err := d.enter()
	if err != nil {
		return WriteStats{}
	}
	defer exit()
	w := d.closedWrites.add(writesOf(d.pdb.Metrics(), d.replayed))
	w.MemtablesFlushed = float64(d.flushes.ArenaBytes()) / float64(max(d.opts.MemTableBytes, 1))
	w.L0Rounds = d.flushes.L0Rounds()
	return w
}

// FlushCounter counts a Pebble's memtable flushes and its rounds of
// compactions out of L0 from its events, as WriteStats reports them: the
// node's store and calibrate's one-core Pebble measurement count the same
// way. The zero value is ready; it is safe for Pebble's concurrent events.
type FlushCounter struct {
	arena  atomic.Uint64 // the memtable arena bytes the flushes took
	since  atomic.Bool   // a flush ended since the last round began
	rounds atomic.Uint64
}

// Listen sets l's FlushEnd and CompactionBegin to count into c, and
// returns l.
func (c *FlushCounter) Listen(l *pebble.EventListener) *pebble.EventListener {
	l.FlushEnd = func(fi pebble.FlushInfo) {
		if fi.Err == nil && !fi.Ingest {
			c.arena.Add(fi.InputBytes)
			c.since.Store(true)
		}
	}
	// The first compaction out of L0 to begin after a flush ended starts
	// a round.
	l.CompactionBegin = func(ci pebble.CompactionInfo) {
		if len(ci.Input) > 0 && ci.Input[0].Level == 0 && c.since.Swap(false) {
			c.rounds.Add(1)
		}
	}
	return l
}

// ArenaBytes is the memtable arena bytes the flushes took (a memtable's
// entries and skiplist nodes), summed over every memtable flushed.
func (c *FlushCounter) ArenaBytes() uint64 { return c.arena.Load() }

// L0Rounds is how many rounds of compactions took tables out of L0.
func (c *FlushCounter) L0Rounds() uint64 { return c.rounds.Load() }

// reloadShards replaces the shards whose stored Meta is not the one in
// memory with the stored one. The caller holds closeMu exclusively.
func (d *DB) reloadShards(metas map[uint32]Meta) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, m := range metas {
		if s, ok := d.shards[id]; ok && s.hasMeta && s.meta == m {
			continue
		}
		s, err := d.loadShard(id, m)
		if err != nil {
			return err
		}
		d.shards[id] = s
	}
	return nil
}

// enter guards an operation against Close and Recover; the returned func
// ends it.
func (d *DB) enter() (func(), error) {
	d.closeMu.RLock()
	if d.closed {
		d.closeMu.RUnlock()
		return nil, ErrClosed
	}
	if d.down {
		cause := d.failure()
		d.closeMu.RUnlock()
		return nil, fmt.Errorf("%w: the store is down until it reopens (%v)", ErrWrite, cause)
	}
	return d.closeMu.RUnlock, nil
}

// shard returns shard id, creating an empty one.
func (d *DB) shard(id uint32) (*shard, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s, ok := d.shards[id]; ok {
		return s, nil
	}
	tr, err := merkle.New(nodeReader{d}, fr.Element{}, d.treeOptions())
	if err != nil {
		return nil, err
	}
	s := &shard{tree: tr}
	d.shards[id] = s
	return s, nil
}

// nodeReader serves tree nodes from Pebble.
type nodeReader struct{ d *DB }

func (r nodeReader) ReadNode(hash []byte) ([]byte, error) {
	k := make([]byte, 1+len(hash))
	k[0] = tableNode
	copy(k[1:], hash)
	return r.d.get(k, merkle.ErrNodeNotFound)
}

// get returns a copy of key's value, or notFound.
func (d *DB) get(key []byte, notFound error) ([]byte, error) {
	v, closer, err := d.pdb.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, notFound
	}
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	out := bytes.Clone(v)
	if out == nil {
		out = []byte{}
	}
	closer.Close()
	return out, nil
}

// Write is one state write of a block.
type Write struct {
	Key []byte
	// Value is the new value (nil is stored as an empty value).
	Value []byte
	// Delete removes Key (Value is ignored).
	Delete bool
}

// TxEntry indexes one transaction of a block.
type TxEntry struct {
	ID [32]byte
	// Receipt is stored opaquely under ID (nil stores none).
	Receipt []byte
}

// BlockCommit is everything a block changes, committed atomically.
type BlockCommit struct {
	Shard  uint32
	Height uint64
	// BlockHash is recorded in the shard's Meta.
	BlockHash [32]byte
	// Header is stored under (Shard, Height).
	Header []byte
	// NextOffset is the log offset to resume from after this block.
	NextOffset int64
	// BlockOffset is the blocks-stream offset to resume from after this
	// block (Meta.BlockOffset).
	BlockOffset int64
	// Writes are applied in order; a later write of a key wins.
	Writes []Write
	// Txs are indexed to (Shard, Height, position).
	Txs []TxEntry
	// Credits are the ids of the credit transactions the block's execution
	// emitted to other shards, each recorded with (Shard, Height) for
	// CreditSource.
	Credits [][32]byte
}

// CommitResult is a committed block's outcome.
type CommitResult struct {
	// Root is the shard's new Merkle root.
	Root fr.Element
	// Proofs[i] proves the final state of Writes[i].Key against Root:
	// membership of its value, or non-membership after a delete. When a
	// key is written twice, both entries prove its final value.
	Proofs []*merkle.Proof
	// Meta is the shard's new Meta.
	Meta Meta
}

func (d *DB) checkBlock(c *BlockCommit) error {
	if c == nil {
		return fmt.Errorf("%w: nil", ErrInvalidBlock)
	}
	for i, w := range c.Writes {
		if len(w.Key) == 0 || len(w.Key) > d.opts.MaxKeyBytes {
			return fmt.Errorf("%w: write %d: key of %d bytes (1..%d)", ErrInvalidBlock, i, len(w.Key), d.opts.MaxKeyBytes)
		}
		if len(w.Value) > d.opts.MaxValueBytes {
			return fmt.Errorf("%w: write %d: value of %d bytes (max %d)", ErrInvalidBlock, i, len(w.Value), d.opts.MaxValueBytes)
		}
	}
	return nil
}

// CommitBlock commits c in one atomic Pebble batch: state values, new tree
// nodes, the shard's meta and root, the block header, the tx index and the
// receipts; then it makes the new tree current and proves every write.
// c.Height must be the shard's next height (any height for a shard's first
// block). It is Prepare followed by Commit.
func (d *DB) CommitBlock(c *BlockCommit) (*CommitResult, error) {
	p, err := d.Prepare(c)
	if err != nil {
		return nil, err
	}
	return d.Commit(p)
}

// Prepared is a block whose new root is computed and nothing is written
// yet: a validator attests the root and commits only once the block is
// final. Until Commit, the block's fields (Header, BlockHash, Txs) may still
// be filled in.
type Prepared struct {
	Block *BlockCommit
	// Root is the shard's Merkle root after the block.
	Root fr.Element
	kvs  []merkle.KV
	u    *merkle.Update
	// round is the blocks prepared with this one, whose commits share a
	// WAL sync (groupCommit); nil if it was prepared alone.
	round *prepRound
}

// Prepare computes c's new root on top of the shard's committed tree,
// without writing. c.Height must be the shard's next height (any height for
// a shard's first block). The prepared block stays valid until another block
// of the shard commits. Prepares of other shards that overlap in time are
// computed together (PrepareMany; see combiner).
func (d *DB) Prepare(c *BlockCommit) (*Prepared, error) {
	return d.prep.prepare(d, c)
}

// PrepareMany is Prepare of every block of cs, computed together: the
// values and keys of all the blocks are hashed as one batch, and the
// shards' trees are applied with merkle.ApplyMany, whose nodes of equal
// height of all the trees share hashing, so that several small blocks cost
// far less than their Prepares one by one. ps[i] and errs[i] are what
// Prepare(cs[i]) returns: a block that fails (ErrInvalidBlock,
// ErrHeightMismatch, a tree error, a closed or failed store) fails alone.
// A block of a shard that an earlier block of cs is of fails with
// ErrDuplicateShard (its height could only follow a commit of the
// earlier one). The shards are read-locked (in shard order) while the
// blocks are prepared. The Poseidon permutations counted
// (PoseidonPermutations) are those of Prepares of cs in turn, unless the
// key cache evicts keys meanwhile.
func (d *DB) PrepareMany(cs []*BlockCommit) (ps []*Prepared, errs []error) {
	ps, errs = make([]*Prepared, len(cs)), make([]error, len(cs))
	live := 0
	var first map[uint32]int // the first block of each shard, when several blocks
	if len(cs) > 1 {
		first = make(map[uint32]int, len(cs))
	}
	for i, c := range cs {
		if errs[i] = d.checkBlock(c); c == nil {
			continue
		}
		if first != nil {
			if j, ok := first[c.Shard]; ok {
				if errs[i] == nil {
					errs[i] = fmt.Errorf("%w: block %d (height %d) is of shard %d, as block %d (height %d) is", ErrDuplicateShard, i, c.Height, c.Shard, j, cs[j].Height)
				}
				continue
			}
			first[c.Shard] = i
		}
		if errs[i] == nil {
			live++
		}
	}
	if live == 0 {
		return ps, errs
	}
	leave, err := d.enter()
	if err != nil {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
		return ps, errs
	}
	defer leave()
	ss := make([]*shard, len(cs))
	order := make([]int, 0, live) // the blocks to prepare, by shard
	for i, c := range cs {
		if errs[i] != nil {
			continue
		}
		if ss[i], errs[i] = d.shard(c.Shard); errs[i] == nil {
			order = append(order, i)
		}
	}
	// read-lock the shards in shard order (each once: the shards differ)
	slices.SortFunc(order, func(i, j int) int { return cmp.Compare(cs[i].Shard, cs[j].Shard) })
	for _, i := range order {
		ss[i].mu.RLock()
		defer ss[i].mu.RUnlock()
	}
	for _, i := range order {
		s, c := ss[i], cs[i]
		if s.hasMeta && c.Height != s.meta.Height+1 {
			errs[i] = fmt.Errorf("%w: shard %d at %d, got %d", ErrHeightMismatch, c.Shard, s.meta.Height, c.Height)
		}
	}
	d.prepareLocked(ss, cs, ps, errs)
	return ps, errs
}

// prepareLocked sets ps[i] (or errs[i]) to the prepared cs[i] on shard
// ss[i] for every i whose errs[i] is nil: the blocks' values and keys are
// hashed in one batch (treeWrites) and their trees applied together
// (merkle.ApplyMany). The shards must differ; the caller holds their locks
// (shared or exclusive).
func (d *DB) prepareLocked(ss []*shard, cs []*BlockCommit, ps []*Prepared, errs []error) {
	live := make([]int, 0, len(cs))
	for i := range cs {
		if errs[i] == nil {
			live = append(live, i)
		}
	}
	if len(live) == 0 {
		return
	}
	wss := make([][]Write, len(live))
	trees := make([]*merkle.Tree, len(live))
	for k, i := range live {
		wss[k], trees[k] = cs[i].Writes, ss[i].tree
	}
	kvss := d.treeWrites(wss)
	us, uerrs := merkle.ApplyMany(trees, kvss)
	var r *prepRound
	for k, i := range live {
		if uerrs[k] != nil {
			errs[i] = fmt.Errorf("storage: shard %d: %w", cs[i].Shard, uerrs[k])
			continue
		}
		d.perms.Add(uint64(us[k].Permutations()))
		ps[i] = &Prepared{Block: cs[i], Root: us[k].Root, kvs: kvss[k], u: us[k]}
		if r == nil {
			r = &prepRound{}
		}
		r.blocks++
		ps[i].round = r
	}
	if r != nil && r.blocks == 1 {
		for _, p := range ps {
			if p != nil {
				p.round = nil
			}
		}
	}
}

// Commit writes a prepared block in one atomic Pebble batch: state values,
// new tree nodes, the shard's meta and root, the block header, the tx index
// and the receipts; then it makes the new tree current and proves every
// write. It fails with ErrHeightMismatch if another block of the shard
// committed since Prepare.
func (d *DB) Commit(p *Prepared) (*CommitResult, error) {
	leave, err := d.enter()
	if err != nil {
		return nil, err
	}
	defer leave()
	c := p.Block
	s, err := d.shard(c.Shard)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	base, root := p.u.Base(), s.tree.Root()
	if (s.hasMeta && c.Height != s.meta.Height+1) || !root.Equal(&base) {
		return nil, fmt.Errorf("%w: shard %d moved to %d since block %d was prepared", ErrHeightMismatch, c.Shard, s.meta.Height, c.Height)
	}
	return d.commitLocked(s, p)
}

func (d *DB) commitLocked(s *shard, p *Prepared) (*CommitResult, error) {
	c, kvs, u := p.Block, p.kvs, p.u
	var err error
	meta := Meta{Height: c.Height, BlockHash: c.BlockHash, Root: u.Root, NextOffset: c.NextOffset, BlockOffset: c.BlockOffset}

	b := d.pdb.NewBatch()
	defer b.Close()
	for _, w := range c.Writes {
		if w.Delete {
			err = b.Delete(valueKey(c.Shard, w.Key), nil)
		} else {
			err = b.Set(valueKey(c.Shard, w.Key), w.Value, nil)
		}
		if err != nil {
			return nil, fmt.Errorf("storage: %w", err)
		}
	}
	nk := make([]byte, 1+merkle.HashLen)
	nk[0] = tableNode
	for _, n := range u.Nodes {
		copy(nk[1:], n.Hash)
		if err := b.Set(nk, n.Encoded, nil); err != nil { // Set copies
			return nil, fmt.Errorf("storage: %w", err)
		}
	}
	if err := b.Set(metaKey(c.Shard), meta.encode(), nil); err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	if err := b.Set(blockKey(c.Shard, c.Height), c.Header, nil); err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	var loc [16]byte
	binary.BigEndian.PutUint32(loc[0:], c.Shard)
	binary.BigEndian.PutUint64(loc[4:], c.Height)
	for i, tx := range c.Txs {
		binary.BigEndian.PutUint32(loc[12:], uint32(i))
		if err := b.Set(idKey(tableTx, tx.ID), loc[:], nil); err != nil {
			return nil, fmt.Errorf("storage: %w", err)
		}
		if tx.Receipt != nil {
			if err := b.Set(idKey(tableReceipt, tx.ID), tx.Receipt, nil); err != nil {
				return nil, fmt.Errorf("storage: %w", err)
			}
		}
	}
	for _, id := range c.Credits {
		if err := b.Set(idKey(tableCredit, id), loc[:12], nil); err != nil {
			return nil, fmt.Errorf("storage: %w", err)
		}
	}
	if err := d.commitBatch(p.round, b); err != nil {
		return nil, fmt.Errorf("storage: committing block %d of shard %d: %w", c.Height, c.Shard, err)
	}
	if err := s.tree.Commit(u); err != nil {
		return nil, fmt.Errorf("storage: shard %d: %w", c.Shard, err)
	}
	s.meta, s.hasMeta = meta, true

	keys := make([]fr.Element, len(kvs))
	for i := range kvs {
		keys[i] = kvs[i].Key
	}
	proofs, _, _, err := s.tree.ProveMany(keys)
	if err != nil {
		return nil, fmt.Errorf("storage: proving block %d of shard %d: %w", c.Height, c.Shard, err)
	}
	return &CommitResult{Root: u.Root, Proofs: proofs, Meta: meta}, nil
}

// treeWrites hashes the keys and values of blocks' writes (wss[b] being
// block b's) to field elements: every value, and every key the key cache
// misses, of all the blocks in one batch (hashBytes), as each
// poseidon.HashBytes costs far more than a tree node. A key that an earlier
// block missed is not hashed again, as if the blocks were hashed in turn
// (that block's hash would be in the cache by then), unless the key cache
// is off; a key a block writes twice and the cache misses is hashed twice,
// as each of the block's keys is looked up before any is hashed.
func (d *DB) treeWrites(wss [][]Write) [][]merkle.KV {
	kvss := make([][]merkle.KV, len(wss))
	n := 0
	for b, ws := range wss {
		kvss[b] = make([]merkle.KV, len(ws))
		n += len(ws)
	}
	in := make([][]byte, 0, 2*n) // the values, then the keys missed
	perms := 0
	for b, ws := range wss {
		for i := range ws {
			if ws[i].Delete {
				kvss[b][i].Delete = true
				continue
			}
			in = append(in, ws[i].Value)
			perms += merkle.BytesPermutations(len(ws[i].Value))
		}
	}
	type miss struct {
		b, i int // block b's write i
		j    int // its key's hash is out[j]
		add  bool
	}
	var (
		missed []miss
		// the keys earlier blocks missed, with their hashes' places in
		// out: only when the cache would have kept them
		earlier map[string]int
	)
	if len(wss) > 1 && d.keys.perShard > 0 {
		earlier = map[string]int{}
	}
	for b, ws := range wss {
		from := len(missed)
		for i := range ws {
			if k, ok := d.keys.lookup(ws[i].Key); ok {
				kvss[b][i].Key = k
				continue
			}
			if j, ok := earlier[string(ws[i].Key)]; ok {
				missed = append(missed, miss{b: b, i: i, j: j})
				continue
			}
			missed = append(missed, miss{b: b, i: i, j: len(in), add: true})
			in = append(in, ws[i].Key)
		}
		if earlier != nil {
			for _, m := range missed[from:] {
				if m.add {
					if _, ok := earlier[string(ws[m.i].Key)]; !ok {
						earlier[string(ws[m.i].Key)] = m.j
					}
				}
			}
		}
	}
	out := make([]fr.Element, len(in))
	d.hashBytes(out, in)
	j := 0
	for b, ws := range wss {
		for i := range ws {
			if !ws[i].Delete {
				kvss[b][i].Value = out[j]
				j++
			}
		}
	}
	for _, m := range missed {
		kvss[m.b][m.i].Key = out[m.j]
		if m.add {
			d.keys.add(wss[m.b][m.i].Key, out[m.j])
		}
	}
	d.perms.Add(uint64(perms))
	return kvss
}

// hashLanes is how many inputs merkle.ElementsFromBytes hashes at once (the
// lanes of poseidon's AVX-512 IFMA kernels): hashBytes splits a batch in
// multiples of it, so that splitting adds no partly filled kernel call.
const hashLanes = 8

// hashBytes sets out[i] = merkle.ElementsFromBytes of in[i] for every i, on
// up to Parallelism goroutines, each given a multiple of hashLanes inputs
// (the last the rest).
func (d *DB) hashBytes(out []fr.Element, in [][]byte) {
	workers := min(d.opts.Parallelism, (len(in)+hashLanes-1)/hashLanes)
	if workers <= 1 {
		merkle.ElementsFromBytes(out, in)
		return
	}
	chunk := (len(in) + workers - 1) / workers
	chunk = (chunk + hashLanes - 1) / hashLanes * hashLanes
	var wg sync.WaitGroup
	for lo := 0; lo < len(in); lo += chunk {
		hi := min(len(in), lo+chunk)
		wg.Add(1)
		go func() {
			defer wg.Done()
			merkle.ElementsFromBytes(out[lo:hi], in[lo:hi])
		}()
	}
	wg.Wait()
}

// SeedTree fills a shard that has no block yet with leaves, as its block 1:
// the leaves are tree keys and values as given (not hashed from state keys
// and values), and no state value, header or index entry is written. It is
// how a benchmark gets a tree of a given size without paying a state key's
// and value's Poseidon hash per leaf (calib's node bound); a node never
// calls it. A shard that has a block fails with ErrHeightMismatch.
func (d *DB) SeedTree(shardID uint32, leaves []merkle.KV) error {
	leave, err := d.enter()
	if err != nil {
		return err
	}
	defer leave()
	s, err := d.shard(shardID)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hasMeta {
		return fmt.Errorf("%w: shard %d already has block %d", ErrHeightMismatch, shardID, s.meta.Height)
	}
	u, err := s.tree.Apply(leaves)
	if err != nil {
		return fmt.Errorf("storage: shard %d: %w", shardID, err)
	}
	d.perms.Add(uint64(u.Permutations()))
	_, err = d.commitLocked(s, &Prepared{Block: &BlockCommit{Shard: shardID, Height: 1}, Root: u.Root, u: u})
	return err
}

// WriteWithProof commits a block holding the single write key=value at the
// shard's next height (1 for a new shard), keeping its log offset, and
// returns the write's proof and the new root.
func (d *DB) WriteWithProof(shardID uint32, key, value []byte) (*merkle.Proof, fr.Element, error) {
	c := &BlockCommit{Shard: shardID, Writes: []Write{{Key: key, Value: value}}}
	if err := d.checkBlock(c); err != nil {
		return nil, fr.Element{}, err
	}
	leave, err := d.enter()
	if err != nil {
		return nil, fr.Element{}, err
	}
	defer leave()
	s, err := d.shard(shardID)
	if err != nil {
		return nil, fr.Element{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c.Height, c.NextOffset = 1, 0
	if s.hasMeta {
		c.Height, c.NextOffset, c.BlockOffset = s.meta.Height+1, s.meta.NextOffset, s.meta.BlockOffset
	}
	var (
		ps   [1]*Prepared
		errs [1]error
	)
	if d.prepareLocked([]*shard{s}, []*BlockCommit{c}, ps[:], errs[:]); errs[0] != nil {
		return nil, fr.Element{}, errs[0]
	}
	res, err := d.commitLocked(s, ps[0])
	if err != nil {
		return nil, fr.Element{}, err
	}
	return res.Proofs[0], res.Root, nil
}

// Get returns shard's committed value for key; false if absent.
func (d *DB) Get(shardID uint32, key []byte) ([]byte, bool, error) {
	leave, err := d.enter()
	if err != nil {
		return nil, false, err
	}
	defer leave()
	v, err := d.get(valueKey(shardID, key), ErrNotFound)
	if errors.Is(err, ErrNotFound) {
		return nil, false, nil
	}
	return v, err == nil, err
}

// Read returns key's value in shard with a proof against the returned root
// (the shard's latest committed root). For an absent key it returns a nil
// value, a non-membership proof, the root and ErrNotFound.
func (d *DB) Read(shardID uint32, key []byte) ([]byte, *merkle.Proof, fr.Element, error) {
	leave, err := d.enter()
	if err != nil {
		return nil, nil, fr.Element{}, err
	}
	defer leave()
	d.mu.Lock()
	s, ok := d.shards[shardID]
	d.mu.Unlock()
	if !ok {
		// A shard without blocks is the empty tree: every key is absent.
		// (Not creating it keeps arbitrary shard ids from growing memory.)
		return nil, &merkle.Proof{}, fr.Element{}, ErrNotFound
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, verr := d.get(valueKey(shardID, key), ErrNotFound)
	if verr != nil && !errors.Is(verr, ErrNotFound) {
		return nil, nil, fr.Element{}, verr
	}
	root := s.tree.Root()
	p, _, err := s.tree.Prove(d.keys.key(key))
	if err != nil {
		return nil, nil, fr.Element{}, fmt.Errorf("storage: proving: %w", err)
	}
	if p.Existence != (verr == nil) {
		return nil, nil, fr.Element{}, fmt.Errorf("%w: shard %d key %x: value present %v, tree membership %v", ErrCorrupt, shardID, key, verr == nil, p.Existence)
	}
	if verr != nil {
		return nil, p, root, ErrNotFound
	}
	return v, p, root, nil
}

// VerifyProof checks that p proves key=value under root, or, for a nil
// value, that key is absent.
func VerifyProof(root fr.Element, key, value []byte, p *merkle.Proof) error {
	if p == nil {
		return fmt.Errorf("%w: nil proof", merkle.ErrMalformedProof)
	}
	k := merkle.KeyFromBytes(key)
	if value == nil {
		if p.Existence {
			return fmt.Errorf("%w: membership proof for an absent key", ErrProofMismatch)
		}
		return merkle.VerifyProof(root, p, k, fr.Element{})
	}
	if !p.Existence {
		return fmt.Errorf("%w: non-membership proof for a present value", ErrProofMismatch)
	}
	return merkle.VerifyProof(root, p, k, merkle.ValueFromBytes(value))
}

// VerifyProofBytes is VerifyProof on the wire forms a receipt carries: the
// root as 32 big-endian bytes and the proof's binary encoding.
func VerifyProofBytes(root [32]byte, key, value, proof []byte) error {
	var p merkle.Proof
	if err := p.UnmarshalBinary(proof); err != nil {
		return err
	}
	var r fr.Element
	r.SetBytes(root[:])
	return VerifyProof(r, key, value, &p)
}

// ShardMeta returns shard's committed position; false if it has none.
func (d *DB) ShardMeta(shardID uint32) (Meta, bool, error) {
	leave, err := d.enter()
	if err != nil {
		return Meta{}, false, err
	}
	defer leave()
	d.mu.Lock()
	s, ok := d.shards[shardID]
	d.mu.Unlock()
	if !ok {
		return Meta{}, false, nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.meta, s.hasMeta, nil
}

// Block returns the header stored for (shard, height), or ErrNotFound.
func (d *DB) Block(shardID uint32, height uint64) ([]byte, error) {
	leave, err := d.enter()
	if err != nil {
		return nil, err
	}
	defer leave()
	return d.get(blockKey(shardID, height), ErrNotFound)
}

// TxLocation returns where transaction id was committed, or ErrNotFound.
func (d *DB) TxLocation(id [32]byte) (TxLocation, error) {
	leave, err := d.enter()
	if err != nil {
		return TxLocation{}, err
	}
	defer leave()
	b, err := d.get(idKey(tableTx, id), ErrNotFound)
	if err != nil {
		return TxLocation{}, err
	}
	if len(b) != 16 {
		return TxLocation{}, fmt.Errorf("%w: tx index entry of %d bytes", ErrCorrupt, len(b))
	}
	return TxLocation{
		Shard:  binary.BigEndian.Uint32(b[0:]),
		Height: binary.BigEndian.Uint64(b[4:]),
		Index:  binary.BigEndian.Uint32(b[12:]),
	}, nil
}

// CreditSource returns the block (shard, height) whose committed execution
// emitted the credit transaction id, or ErrNotFound.
func (d *DB) CreditSource(id [32]byte) (shard uint32, height uint64, err error) {
	leave, err := d.enter()
	if err != nil {
		return 0, 0, err
	}
	defer leave()
	b, err := d.get(idKey(tableCredit, id), ErrNotFound)
	if err != nil {
		return 0, 0, err
	}
	if len(b) != 12 {
		return 0, 0, fmt.Errorf("%w: credit index entry of %d bytes", ErrCorrupt, len(b))
	}
	return binary.BigEndian.Uint32(b), binary.BigEndian.Uint64(b[4:]), nil
}

// HasTx reports whether the transaction id was committed.
func (d *DB) HasTx(id [32]byte) (bool, error) {
	_, err := d.TxLocation(id)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Receipt returns transaction id's receipt, or ErrNotFound.
func (d *DB) Receipt(id [32]byte) ([]byte, error) {
	leave, err := d.enter()
	if err != nil {
		return nil, err
	}
	defer leave()
	return d.get(idKey(tableReceipt, id), ErrNotFound)
}
