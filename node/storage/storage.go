// Package storage is the node's Pebble store: per-shard state values, the
// shards' Merkle tree nodes and roots, block headers and resume points, the
// transaction index and receipts. A block commits in one atomic Pebble
// batch, so after a crash a shard is at the end of its last committed block,
// never in between; every written key then has a proof against the new root.
//
// One DB holds every shard. Trees reopen from their stored roots and load
// nodes on demand through a bounded in-memory cache shared by all shards.
package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/rustorium/rustorium/node/merkle"
)

// Errors returned by this package; match them with errors.Is.
var (
	// ErrNotFound is returned when a key, block, transaction or receipt is
	// absent. Read returns it together with a non-membership proof.
	ErrNotFound = errors.New("storage: not found")
	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("storage: closed")
	// ErrInvalidOptions is returned by Options.Validate.
	ErrInvalidOptions = errors.New("storage: invalid options")
	// ErrInvalidBlock is returned by CommitBlock for a malformed commit: nil,
	// empty or oversized keys, oversized values.
	ErrInvalidBlock = errors.New("storage: invalid block commit")
	// ErrHeightMismatch is returned when a block's height is not the
	// shard's next height.
	ErrHeightMismatch = errors.New("storage: block height is not the shard's next height")
	// ErrDuplicateShard is returned by PrepareMany for a block of a shard
	// that an earlier block of the same call is of.
	ErrDuplicateShard = errors.New("storage: another block of the shard in the same PrepareMany")
	// ErrCorrupt is returned when stored data cannot be decoded or
	// contradicts itself.
	ErrCorrupt = errors.New("storage: corrupt data")
	// ErrProofMismatch is returned by VerifyProof when a membership proof
	// is checked for an absent value (nil) or a non-membership proof for a
	// present one.
	ErrProofMismatch = errors.New("storage: proof kind does not match the value's presence")
	// ErrWrite is returned when the store cannot take writes: a Pebble
	// write or sync failed (disk full, an I/O error). Pebble cannot go on
	// after a failed WAL write or sync, so the store is then failed: every
	// write returns ErrWrite, without touching the disk, until Recover
	// (which Probe also calls) reopens it from its durable state. Nothing
	// a failed write carried is visible afterwards unless it reached the
	// disk whole (see Recover). With Options.NoSync a failed WAL write or
	// sync is not an ErrWrite: the store retries it and stalls meanwhile
	// (ErrStalled).
	ErrWrite = errors.New("storage: write failed (disk full or I/O error)")
	// ErrStalled is reported, by Probe and Failed, while a write or sync
	// of the WAL keeps failing under Options.NoSync (disk full, an I/O
	// error): the store retries it until it succeeds instead of failing
	// (see Options.NoSync), so commits go on, then wait, and nothing is
	// lost; once the operation succeeds the store takes writes again, in
	// process, without a reopen. The error wraps the operation's first
	// error (errors.Is(err, syscall.ENOSPC) holds on a full disk). It is
	// not an ErrWrite: no write fails or is refused while the WAL stalls.
	ErrStalled = errors.New("storage: WAL writes stalled (disk full or I/O error): commits wait until they succeed")
	// ErrWedged is the last resort of a store with Options.NoSync whose
	// Pebble panicked in a commit with an error (a commit then stops
	// Pebble's commit pipeline for good, holding its lock): the store can
	// be neither written, reopened nor closed in this process, and every
	// write, Recover and Close return ErrWedged. A failed WAL write, sync
	// or creation no longer does this: the store retries it and stalls
	// (ErrStalled). What still wedges the store is a commit failure the
	// store does not retry (none is known), and Close while the WAL is
	// stalled (see DB.Close: it returns ErrWedged wrapping the ErrStalled
	// and leaves Pebble open, the WAL's unwritten tail lost as a crash
	// would lose it). The node fails with it (the process exits with the
	// cause); started again, it replays from the log the blocks its store
	// lost. With syncing on (the default) a failed write is an ErrWrite
	// and the store recovers in process.
	ErrWedged = errors.New("storage: the store takes no writes until the process restarts")
)

// Options configures a DB. The zero value is usable: EnsureDefaults fills
// in every zero field.
type Options struct {
	// FS is the filesystem Pebble uses. Default (nil): vfs.Default. Tests
	// pass vfs.NewCrashableMem() to simulate crashes.
	FS vfs.FS
	// NoSync, when true, commits blocks without syncing the WAL: a crash may
	// lose the latest blocks (never a part of one). Pebble then writes the
	// WAL in the background, after the commits returned, and cannot go on
	// after such a write fails; so the store retries every failed write,
	// sync or creation of a WAL file, and sync of its directory (1 ms
	// doubling to 100 ms), until it succeeds, and Pebble never sees the
	// error (a failed close of a WAL file, which cannot be retried, is
	// reported to OnError and ignored). Meanwhile commits return while
	// Pebble buffers the WAL, then wait once its memtable is full (back
	// pressure: memory stays bounded); Probe and Failed report ErrStalled,
	// and OnError is told ("wal") at the first failure and at most once a
	// second after. When the disk takes writes again (space freed) the
	// retried write lands, waiting commits complete, OnRecover is called,
	// and the store goes on in process: nothing acknowledged is lost.
	//
	// A retried fsync may report success for WAL data the kernel could not
	// write when the first attempt failed (Linux marks those pages clean
	// and forgets the error). The running store does not read the WAL (it
	// reads memtables and synced tables), so only a reopen before the
	// memtable holding those blocks was flushed to a table can miss them:
	// the WAL then replays only up to the gap. That is the loss of the
	// WAL's unsynced tail which NoSync accepts on any crash, and which a
	// node makes good by replaying those blocks from its log. See ErrWedged
	// for what still wedges the store.
	//
	// Default (false): every committed block is durable when CommitBlock
	// returns, and a failed write fails the store until it recovers in
	// process (ErrWrite).
	NoSync bool
	// CacheBytes is the size of Pebble's block cache. Default (0): 64 MiB.
	CacheBytes int64
	// MemTableBytes is Pebble's memtable size. Default (0): 16 MiB (4 MiB,
	// Pebble's own default, until session 38: at 5000 puts/s a node flushed
	// one about every second, and its commits waited behind the flushes —
	// with 16 MiB its accepted p50 fell by a third and its schedule lag p99
	// from 14–16 ms to 8–11, and `maxrate-committed`'s knee rose from 10500
	// to 12000 tx/s in two pairs of runs; at 1000/s its medians took about
	// 5% longer, and `make run` 13–20 MiB more RSS: docs/DESIGN.md, "Where
	// the CPU and the latency go").
	MemTableBytes uint64
	// TreeCacheNodes bounds the in-memory Merkle node cache shared by all
	// shards. Default (0): 1<<18 nodes (at most about 60 MiB). A commit
	// drops the nodes it superseded, so the cache holds the current trees'
	// nodes (about two per key) and those read for proofs at earlier
	// roots; a miss reads Pebble.
	TreeCacheNodes int
	// MaxLevels is the Merkle trees' number of levels (see merkle.Options).
	// Default (0): 64. It is part of the data: a store must always be
	// opened with the same value.
	MaxLevels int
	// Parallelism is the number of goroutines hashing one batch of blocks
	// (tree nodes, and keys and values to field elements). Default (0):
	// GOMAXPROCS.
	Parallelism int
	// CombineWait bounds how long a batch of Prepares waits for the blocks
	// expected to be on their way (DB.Expect), so that they share its
	// hashing; and, with sync, how long the Commit of a block prepared
	// with others waits for theirs, so that they share one Pebble commit
	// and WAL sync (see groupCommit). Default (0): 2 ms; negative: neither
	// waits.
	CombineWait time.Duration
	// KeyCacheEntries bounds the cache of state keys' tree keys (each a
	// costly 16-input Poseidon). Default (0): 1<<18, enough for every key
	// of a 100k-account workload; negative disables it.
	KeyCacheEntries int
	// MaxKeyBytes bounds a state key. Default (0): 1 KiB.
	MaxKeyBytes int
	// MaxValueBytes bounds a state value. Default (0): 1 MiB.
	MaxValueBytes int
	// Logger receives Pebble's logs. Default (nil): errors go to Pebble's
	// default logger, informational messages are dropped. When OnError is
	// set, Pebble's error messages go to OnError instead. The fatal message
	// of a failed commit never reaches it: the store turns it into ErrWrite
	// (see ErrWrite); Pebble's other fatal messages do (Fatalf must end the
	// process).
	Logger pebble.Logger
	// VerifyAll makes Open read and checksum every block of every table
	// (Pebble's CheckLevels; about 130 MB/s on a busy two-core machine),
	// so that any corrupted table fails Open. Default (false): Open reads
	// every table's footer, index and first data block, which finds a
	// truncated or overwritten table end or start; a corrupted block
	// elsewhere fails the read that meets it (ErrCorrupt, never a crash)
	// and Probe from then on.
	VerifyAll bool
	// OnError, if set, is told of every failed write (op "commit" or
	// "probe"), every failed attempt to reopen a failed store ("reopen"),
	// a stalled WAL operation under NoSync ("wal": an ErrStalled, at its
	// first failure and then at most once a second while it fails),
	// every corruption Pebble found ("corruption") and every error message
	// of Pebble's own ("pebble": background flush and compaction failures
	// among them), on the goroutine that saw it.
	// The node counts them (rustorium_storage_errors_total) and logs them
	// rate-limited. Default (nil): Pebble's messages go to Logger.
	OnError func(op string, err error)
	// OnRecover, if set, is called when Recover reopened a failed store
	// and it takes writes again, with the error that failed it, and when
	// a stalled WAL (NoSync) is written again, with the stall's first
	// error.
	OnRecover func(cause error)
}

// EnsureDefaults sets zero fields to their defaults.
func (o *Options) EnsureDefaults() {
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.CacheBytes == 0 {
		o.CacheBytes = 64 << 20
	}
	if o.MemTableBytes == 0 {
		o.MemTableBytes = 16 << 20
	}
	if o.TreeCacheNodes == 0 {
		o.TreeCacheNodes = 1 << 18
	}
	if o.MaxLevels == 0 {
		o.MaxLevels = 64
	}
	if o.Parallelism == 0 {
		o.Parallelism = runtime.GOMAXPROCS(0)
	}
	if o.CombineWait == 0 {
		o.CombineWait = 2 * time.Millisecond
	}
	if o.KeyCacheEntries == 0 {
		o.KeyCacheEntries = 1 << 18
	}
	if o.MaxKeyBytes == 0 {
		o.MaxKeyBytes = 1 << 10
	}
	if o.MaxValueBytes == 0 {
		o.MaxValueBytes = 1 << 20
	}
	if o.Logger == nil {
		o.Logger = quietLogger{}
	}
}

// Validate reports whether the (defaulted) options are usable.
func (o *Options) Validate() error {
	switch {
	case o.CacheBytes < 0:
		return fmt.Errorf("%w: CacheBytes %d < 0", ErrInvalidOptions, o.CacheBytes)
	case o.MemTableBytes < 1<<10 || o.MemTableBytes >= 4<<30:
		return fmt.Errorf("%w: MemTableBytes %d not in [1KiB, 4GiB)", ErrInvalidOptions, o.MemTableBytes)
	case o.TreeCacheNodes < 1:
		return fmt.Errorf("%w: TreeCacheNodes %d < 1", ErrInvalidOptions, o.TreeCacheNodes)
	case o.Parallelism < 1:
		return fmt.Errorf("%w: Parallelism %d < 1", ErrInvalidOptions, o.Parallelism)
	case o.MaxKeyBytes < 1:
		return fmt.Errorf("%w: MaxKeyBytes %d < 1", ErrInvalidOptions, o.MaxKeyBytes)
	case o.MaxValueBytes < 0:
		return fmt.Errorf("%w: MaxValueBytes %d < 0", ErrInvalidOptions, o.MaxValueBytes)
	}
	mo := merkle.Options{MaxLevels: o.MaxLevels}
	mo.EnsureDefaults()
	if err := mo.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	return nil
}

// pebbleLogger is the Logger the store gives Pebble: error messages go to
// OnError when it is set, and the fatal message of a failed commit (a WAL
// write or sync failed; Pebble's default logger would end the process)
// panics with a fatalError, which the store's write turns into ErrWrite.
// Other fatal messages go to the base logger, which ends the process.
type pebbleLogger struct {
	base pebble.Logger
	d    *DB
}

func (l pebbleLogger) Infof(f string, args ...any) { l.base.Infof(f, args...) }

func (l pebbleLogger) Errorf(f string, args ...any) {
	err := newPebbleError(f, args)
	l.d.noteBackground(err)
	if l.d.opts.OnError == nil {
		l.base.Errorf(f, args...)
		return
	}
	l.d.opts.OnError("pebble", err)
}

func (l pebbleLogger) Fatalf(f string, args ...any) {
	if !strings.HasPrefix(f, fatalCommit) {
		// Not on a write's goroutine (a failed MANIFEST write in a
		// background flush, an invariant): it ends the process, as
		// Pebble means it to.
		l.base.Fatalf(f, args...)
		return
	}
	panic(fatalError{newPebbleError(f, args)})
}

// pebbleError is a message Pebble logged; it unwraps to the message's
// first error argument, so errors.Is finds the cause (syscall.ENOSPC).
type pebbleError struct {
	msg string
	err error
}

func newPebbleError(f string, args []any) pebbleError {
	pe := pebbleError{msg: fmt.Sprintf(f, args...)}
	for _, a := range args {
		if err, ok := a.(error); ok {
			pe.err = err
			break
		}
	}
	return pe
}

func (e pebbleError) Error() string { return e.msg }
func (e pebbleError) Unwrap() error { return e.err }

// fatalCommit starts the fatal message Pebble's DB.Apply logs, on the
// committing goroutine, when a WAL write or sync failed.
const fatalCommit = "pebble: fatal commit error"

// fatalError is a fatal message of Pebble's, panicked.
type fatalError struct{ pebbleError }

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)         {}
func (quietLogger) Errorf(f string, args ...any) { pebble.DefaultLogger.Errorf(f, args...) }
func (quietLogger) Fatalf(f string, args ...any) { pebble.DefaultLogger.Fatalf(f, args...) }

// Key layout. Every key starts with a one-byte table prefix.
const (
	tableValue   = 'v' // 'v' shard(4) key → value
	tableNode    = 'n' // 'n' hash(32, little-endian) → encoded node
	tableMeta    = 'm' // 'm' shard(4) → meta
	tableBlock   = 'b' // 'b' shard(4) height(8) → header bytes
	tableTx      = 't' // 't' txid(32) → shard(4) height(8) index(4)
	tableReceipt = 'r' // 'r' txid(32) → receipt bytes
	tableCredit  = 'c' // 'c' credit txid(32) → source shard(4) height(8)
	tableProbe   = 'p' // 'p' → the last Probe's counter (no other key)
)

func valueKey(shard uint32, key []byte) []byte {
	k := make([]byte, 5+len(key))
	k[0] = tableValue
	binary.BigEndian.PutUint32(k[1:], shard)
	copy(k[5:], key)
	return k
}

func metaKey(shard uint32) []byte {
	k := make([]byte, 5)
	k[0] = tableMeta
	binary.BigEndian.PutUint32(k[1:], shard)
	return k
}

func blockKey(shard uint32, height uint64) []byte {
	k := make([]byte, 13)
	k[0] = tableBlock
	binary.BigEndian.PutUint32(k[1:], shard)
	binary.BigEndian.PutUint64(k[5:], height)
	return k
}

func idKey(table byte, id [32]byte) []byte {
	k := make([]byte, 33)
	k[0] = table
	copy(k[1:], id[:])
	return k
}

// Meta is a shard's committed position.
type Meta struct {
	// Height is the height of the shard's last committed block.
	Height uint64
	// BlockHash is that block's hash.
	BlockHash [32]byte
	// Root is the shard's Merkle root after that block.
	Root fr.Element
	// NextOffset is the log offset to resume consuming from.
	NextOffset int64
	// BlockOffset is the offset in the shard's blocks stream to resume
	// consuming blocks from (0 for a node that proposes its own blocks).
	BlockOffset int64
}

const metaLen = 1 + 8 + 32 + 32 + 8 + 8

func (m *Meta) encode() []byte {
	b := make([]byte, metaLen)
	b[0] = 2 // version
	binary.BigEndian.PutUint64(b[1:], m.Height)
	copy(b[9:41], m.BlockHash[:])
	r := merkle.ElementLE(&m.Root)
	copy(b[41:73], r[:])
	binary.BigEndian.PutUint64(b[73:], uint64(m.NextOffset))
	binary.BigEndian.PutUint64(b[81:], uint64(m.BlockOffset))
	return b
}

func decodeMeta(b []byte) (Meta, error) {
	var m Meta
	if len(b) != metaLen || b[0] != 2 || int64(binary.BigEndian.Uint64(b[73:])) < 0 || int64(binary.BigEndian.Uint64(b[81:])) < 0 {
		return m, fmt.Errorf("%w: shard meta of %d bytes", ErrCorrupt, len(b))
	}
	m.Height = binary.BigEndian.Uint64(b[1:])
	copy(m.BlockHash[:], b[9:41])
	r, err := merkle.ElementFromLE(b[41:73])
	if err != nil {
		return m, fmt.Errorf("%w: shard root: %w", ErrCorrupt, err)
	}
	m.Root = r
	m.NextOffset = int64(binary.BigEndian.Uint64(b[73:]))
	m.BlockOffset = int64(binary.BigEndian.Uint64(b[81:]))
	return m, nil
}

// TxLocation is where a transaction was committed.
type TxLocation struct {
	Shard  uint32
	Height uint64
	// Index is the transaction's position in its block (BlockCommit.Txs).
	Index uint32
}
