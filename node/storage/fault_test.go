package storage_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/rustorium/rustorium/internal/retry"
	"github.com/rustorium/rustorium/node/storage"
)

// diskFull injects ENOSPC into the filesystem operations ops picks while
// it is on.
func diskFull(ops func(errorfs.Op) bool) *errorfs.Toggle {
	return &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		if ops(op) {
			return fmt.Errorf("op %d on %s: %w", op.Kind, op.Path, syscall.ENOSPC)
		}
		return nil
	})}
}

func isWrite(op errorfs.Op) bool { return op.Kind.ReadOrWrite() == errorfs.OpIsWrite }

// errorLog records OnError and OnRecover calls.
type errorLog struct {
	mu        sync.Mutex
	ops       map[string]int
	recovered []error
}

func (l *errorLog) options(o storage.Options) storage.Options {
	l.ops = map[string]int{}
	o.OnError = func(op string, err error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.ops[op]++
	}
	o.OnRecover = func(cause error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.recovered = append(l.recovered, cause)
	}
	return o
}

func (l *errorLog) count(op string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ops[op]
}

func putBlock(shard uint32, height uint64, key, value string) *storage.BlockCommit {
	return &storage.BlockCommit{Shard: shard, Height: height, NextOffset: int64(height), BlockHash: [32]byte{byte(height)},
		Writes: []storage.Write{{Key: []byte(key), Value: []byte(value)}}}
}

// TestWriteErrorFailsAndRecovers fills the disk (every write fails with
// ENOSPC) under a store that committed a block: the next commit fails with
// ErrWrite, without a panic or the process ending (Pebble's commit
// pipeline reports a failed WAL write as fatal), the store stays failed
// (probes and commits fail, reads of committed data still answer) until
// the disk takes writes again, and then Probe reopens it in process:
// nothing committed is lost, the failed block is not there, and it
// commits on the retry.
func TestWriteErrorFailsAndRecovers(t *testing.T) {
	full := diskFull(isWrite)
	mem := vfs.NewMem()
	var log errorLog
	db := open(t, errorfs.Wrap(mem, full), log.options(storage.Options{}))
	defer db.Close()
	if _, err := db.CommitBlock(putBlock(0, 1, "a", "1")); err != nil {
		t.Fatal(err)
	}
	for h := range uint64(10) { // WAL syncs and bytes for WriteStats to keep across the reopen
		if _, err := db.CommitBlock(putBlock(2, h+1, fmt.Sprint("s", h), "v")); err != nil {
			t.Fatal(err)
		}
	}
	// A flush, and more blocks the WAL alone holds: the reopened Pebble
	// replays them, and WriteStats must not count them twice.
	if err := storage.FlushPebble(db); err != nil {
		t.Fatal(err)
	}
	flushed := db.WriteStats()
	for h := range uint64(5) {
		if _, err := db.CommitBlock(putBlock(3, h+1, fmt.Sprint("w", h), "v")); err != nil {
			t.Fatal(err)
		}
	}
	before := db.WriteStats()
	synced, walOnly := before.WALSyncs, before.BytesIn-flushed.BytesIn

	full.On()
	if _, err := db.CommitBlock(putBlock(0, 2, "b", "2")); !errors.Is(err, storage.ErrWrite) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("commit on a full disk: %v, want ErrWrite with ENOSPC", err)
	}
	if db.Failed() == nil {
		t.Fatal("the store does not say it failed")
	}
	if _, err := db.CommitBlock(putBlock(1, 1, "c", "3")); !errors.Is(err, storage.ErrWrite) {
		t.Fatalf("a second commit on the failed store: %v, want ErrWrite", err)
	}
	for range 3 {
		if err := db.Probe(); !errors.Is(err, storage.ErrWrite) {
			t.Fatalf("probe on a full disk: %v, want ErrWrite", err)
		}
	}
	if log.count("commit") == 0 || log.count("reopen") == 0 {
		t.Fatalf("OnError saw %v, want commit and reopen failures", log.ops)
	}
	// Down (closed, not reopened): reads fail with ErrWrite, never panic.
	if _, _, err := db.Get(0, []byte("a")); !errors.Is(err, storage.ErrWrite) {
		t.Fatalf("read while the store is down: %v", err)
	}

	full.Off()
	if err := db.Probe(); err != nil {
		t.Fatalf("probe once the disk has room again: %v", err)
	}
	if db.Failed() != nil || len(log.recovered) != 1 || !errors.Is(log.recovered[0], syscall.ENOSPC) {
		t.Fatalf("after recovery: failed %v, OnRecover %v", db.Failed(), log.recovered)
	}
	m, _, err := db.ShardMeta(0)
	if err != nil || m.Height != 1 {
		t.Fatalf("shard 0 after recovery: %+v %v, want height 1", m, err)
	}
	if v, ok, err := db.Get(0, []byte("b")); err != nil || ok {
		t.Fatalf("the failed block's write is visible: %q %v %v", v, ok, err)
	}
	if _, err := db.CommitBlock(putBlock(0, 2, "b", "2")); err != nil {
		t.Fatalf("retrying the block after recovery: %v", err)
	}
	// The WAL's syncs and the bytes count over both Pebbles: the closed
	// one's stay.
	if w := db.WriteStats(); synced < 11 || w.WALSyncs <= synced {
		t.Fatalf("WAL syncs %d before the full disk, %d after the reopen and a commit", synced, w.WALSyncs)
	} else if walOnly == 0 || w.BytesIn <= before.BytesIn || w.BytesIn-before.BytesIn >= walOnly || w.BytesWritten <= before.BytesWritten {
		t.Fatalf("bytes in %d (%d of them in the WAL alone), written %d before the full disk; %d, %d after the reopen and a commit", before.BytesIn, walOnly, before.BytesWritten, w.BytesIn, w.BytesWritten)
	}
	db.Close()

	db = open(t, mem, storage.Options{})
	defer db.Close()
	for _, kv := range [][2]string{{"a", "1"}, {"b", "2"}} {
		if v, ok, err := db.Get(0, []byte(kv[0])); err != nil || !ok || string(v) != kv[1] {
			t.Fatalf("after reopening, %s = %q %v %v", kv[0], v, ok, err)
		}
	}
}

// TestSyncErrorBlockLanded fails only the sync: the failed block's batch
// reached the (in-memory) disk whole, so the reopened store has it. Recover
// reloads the shard: the block is committed, its retry fails with
// ErrHeightMismatch, and its state proves against the stored root.
func TestSyncErrorBlockLanded(t *testing.T) {
	full := diskFull(func(op errorfs.Op) bool { return op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData })
	mem := vfs.NewMem()
	db := open(t, errorfs.Wrap(mem, full), storage.Options{})
	defer db.Close()
	if _, err := db.CommitBlock(putBlock(0, 1, "a", "1")); err != nil {
		t.Fatal(err)
	}
	full.On()
	if _, err := db.CommitBlock(putBlock(0, 2, "b", "2")); !errors.Is(err, storage.ErrWrite) {
		t.Fatalf("commit with failing syncs: %v, want ErrWrite", err)
	}
	full.Off()
	if err := db.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	m, _, err := db.ShardMeta(0)
	if err != nil || m.Height != 2 {
		t.Fatalf("shard 0 after recovery: %+v %v, want the landed block 2", m, err)
	}
	if _, err := db.CommitBlock(putBlock(0, 2, "b", "2")); !errors.Is(err, storage.ErrHeightMismatch) {
		t.Fatalf("retrying a landed block: %v, want ErrHeightMismatch", err)
	}
	v, p, root, err := db.Read(0, []byte("b"))
	if err != nil || string(v) != "2" {
		t.Fatalf("read b: %q %v", v, err)
	}
	if err := storage.VerifyProof(root, []byte("b"), v, p); err != nil || root != m.Root {
		t.Fatalf("proof of the landed block's write: %v (root %v, meta %v)", err, root, m.Root)
	}
}

// TestFlushErrorFailsProbe fails only the creation of tables: commits
// still reach the WAL, but memtable flushes fail in the background (a
// disk too full for a table while the WAL still has room). Probe must
// fail while they do, naming the error, and pass again once they stop.
func TestFlushErrorFailsProbe(t *testing.T) {
	full := diskFull(func(op errorfs.Op) bool { return op.Kind == errorfs.OpCreate && strings.HasSuffix(op.Path, ".sst") })
	var log errorLog
	db := open(t, errorfs.Wrap(vfs.NewMem(), full), log.options(storage.Options{MemTableBytes: 16 << 10}))
	defer db.Close()
	storage.SetBackgroundWindow(db, 200*time.Millisecond)
	full.On()
	// Commits fill memtables until a flush fails. They write from a
	// goroutine: on a busy machine the memtables can fill before the
	// failed flush is reported, and Pebble then stalls the commit until a
	// flush succeeds (after full.Off), which must not hang the test.
	var stop atomic.Bool
	written := make(chan error, 1)
	go func() {
		for h := uint64(1); !stop.Load(); h++ {
			if h > 2000 {
				written <- errors.New("no flush failed after 2000 blocks")
				return
			}
			if _, err := db.CommitBlock(putBlock(0, h, fmt.Sprintf("k%d", h), strings.Repeat("v", 200))); err != nil {
				written <- fmt.Errorf("commit %d: %w", h, err)
				return
			}
		}
		written <- nil
	}()
	failed := retry.Poll(context.Background(), 5*time.Millisecond, 30*time.Second, func() (bool, error) { return log.count("pebble") > 0, nil })
	stop.Store(true)
	if failed != nil {
		full.Off()
		t.Fatalf("no flush failure reported: %v (writer: %v)", failed, <-written)
	}
	probe := db.Probe()
	full.Off()
	if err := <-written; err != nil { // the writer is done before the store closes
		t.Fatal(err) // a stalled commit completes once flushes succeed
	}
	if !errors.Is(probe, storage.ErrWrite) || !errors.Is(probe, syscall.ENOSPC) {
		t.Fatalf("probe while flushes fail: %v, want ErrWrite with ENOSPC", probe)
	}
	if err := retry.Poll(context.Background(), 20*time.Millisecond, 10*time.Second, func() (bool, error) { return db.Probe() == nil, nil }); err != nil {
		t.Fatalf("probe after flushes succeed again: %v", db.Probe())
	}
}

// TestReopenWaitingForDisk fails a commit, then lets the disk take
// everything but new tables: reopening the store then waits inside
// Pebble's Open (it flushes the replayed WAL first, and that flush fails
// again and again). Meanwhile Probe must answer within its bound, and
// reads must fail at once, not hang; once tables can be written, the
// reopen completes and the store takes writes.
func TestReopenWaitingForDisk(t *testing.T) {
	var mode atomic.Int32 // 0: no errors, 1: every write fails, 2: table creation fails
	fs := errorfs.Wrap(vfs.NewMem(), errorfs.InjectorFunc(func(op errorfs.Op) error {
		switch m := mode.Load(); {
		case m == 1 && isWrite(op), m == 2 && op.Kind == errorfs.OpCreate && strings.HasSuffix(op.Path, ".sst"):
			return fmt.Errorf("op %d on %s: %w", op.Kind, op.Path, syscall.ENOSPC)
		}
		return nil
	}))
	var log errorLog
	db := open(t, fs, log.options(storage.Options{}))
	defer db.Close()
	storage.SetBackgroundWindow(db, 100*time.Millisecond)
	if _, err := db.CommitBlock(putBlock(0, 1, "a", "1")); err != nil {
		t.Fatal(err)
	}
	mode.Store(1)
	if _, err := db.CommitBlock(putBlock(0, 2, "b", "2")); !errors.Is(err, storage.ErrWrite) {
		t.Fatalf("commit on a full disk: %v", err)
	}
	mode.Store(2)
	start := time.Now()
	if err := db.Probe(); !errors.Is(err, storage.ErrWrite) {
		t.Fatalf("probe while the reopen waits for the disk: %v, want ErrWrite", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("probe took %v", d)
	}
	start = time.Now()
	if _, _, err := db.Get(0, []byte("a")); !errors.Is(err, storage.ErrWrite) || time.Since(start) > time.Second {
		t.Fatalf("read while the store reopens: %v after %v, want ErrWrite at once", err, time.Since(start))
	}
	mode.Store(0)
	if err := retry.Poll(context.Background(), 20*time.Millisecond, 10*time.Second, func() (bool, error) { return db.Probe() == nil, nil }); err != nil {
		t.Fatalf("probe once the disk takes tables: %v", db.Probe())
	}
	if v, ok, err := db.Get(0, []byte("a")); err != nil || !ok || string(v) != "1" {
		t.Fatalf("after the reopen, a = %q %v %v", v, ok, err)
	}
	if _, err := db.CommitBlock(putBlock(0, 2, "b", "2")); err != nil {
		t.Fatalf("commit after the reopen: %v", err)
	}
}

// walFull injects ENOSPC into the write-side operations of WAL files
// while it is on, but not their Close: a failed close cannot be retried
// (the store does not; see ErrWedged), and a test that fills the disk
// while Pebble closes a full WAL would wedge the store at random.
func walFull() *errorfs.Toggle {
	return diskFull(func(op errorfs.Op) bool {
		return isWrite(op) && op.Kind != errorfs.OpFileClose && strings.HasSuffix(op.Path, ".log")
	})
}

// stallWriter commits blocks 2, 3, … of shard 0 (key k<h>, a 200-byte
// value) from a goroutine until stopped or a commit fails: on a stalled
// WAL its commits return, then block. acked is the last block whose
// commit returned.
type stallWriter struct {
	stop  atomic.Bool
	acked atomic.Uint64
	done  chan error
}

func startWriter(db *storage.DB) *stallWriter {
	w := &stallWriter{done: make(chan error, 1)}
	w.acked.Store(1)
	go func() {
		for h := uint64(2); !w.stop.Load(); h++ {
			if _, err := db.CommitBlock(putBlock(0, h, fmt.Sprint("k", h), strings.Repeat("v", 200))); err != nil {
				w.done <- fmt.Errorf("commit %d: %w", h, err)
				return
			}
			w.acked.Store(h)
		}
		w.done <- nil
	}()
	return w
}

// blocked waits until db reports its WAL stalled and w's commits have
// stopped returning (no commit returned for 300ms), failing t if w ends
// first.
func (w *stallWriter) blocked(t *testing.T, db *storage.DB) {
	t.Helper()
	if err := retry.Poll(context.Background(), 5*time.Millisecond, 30*time.Second, func() (bool, error) {
		return errors.Is(db.Failed(), storage.ErrStalled), nil
	}); err != nil {
		t.Fatalf("the WAL does not stall: Failed %v", db.Failed())
	}
	last, since := w.acked.Load(), time.Now()
	if err := retry.Poll(context.Background(), 10*time.Millisecond, 30*time.Second, func() (bool, error) {
		select {
		case err := <-w.done:
			return false, fmt.Errorf("the writer ended on a stalled WAL after block %d: %v", w.acked.Load(), err)
		default:
		}
		if a := w.acked.Load(); a != last {
			last, since = a, time.Now()
		}
		return time.Since(since) > 300*time.Millisecond, nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestNoSyncWALErrorStalls fails the WAL's writes under a store that does
// not sync. Pebble never sees the error (it would panic in its commit
// pipeline and wedge the store): the WAL's writes are retried, commits
// return while Pebble buffers them and then block (back pressure: the
// memtable is full and its WAL cannot be closed), Probe and Failed report
// the stall (ErrStalled with ENOSPC; Probe at once, without writing) and
// OnError is told ("wal"). Once the disk has room the blocked commit
// completes, the store takes writes again without a reopen (OnRecover is
// told), every acknowledged block is there, and still is after the store
// is closed and opened again.
func TestNoSyncWALErrorStalls(t *testing.T) {
	full := walFull()
	mem := vfs.NewMem()
	var log errorLog
	db := open(t, errorfs.Wrap(mem, full), log.options(storage.Options{NoSync: true, MemTableBytes: 64 << 10}))
	defer db.Close()
	if _, err := db.CommitBlock(putBlock(0, 1, "k1", "v")); err != nil {
		t.Fatal(err)
	}
	full.On()
	w := startWriter(db)
	w.blocked(t, db)
	stalledAt := w.acked.Load()
	start := time.Now()
	probe := db.Probe()
	if d := time.Since(start); d > time.Second {
		t.Fatalf("probe of a stalled store took %v", d)
	}
	if !errors.Is(probe, storage.ErrStalled) || !errors.Is(probe, syscall.ENOSPC) || errors.Is(probe, storage.ErrWedged) {
		t.Fatalf("probe while the WAL stalls: %v, want ErrStalled with ENOSPC", probe)
	}
	if err := db.Failed(); !errors.Is(err, storage.ErrStalled) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Failed while the WAL stalls: %v, want ErrStalled with ENOSPC", err)
	}
	if log.count("wal") == 0 || log.count("commit") != 0 {
		t.Fatalf("OnError saw %v, want wal stalls and no failed commit", log.ops)
	}
	t.Logf("commits blocked after block %d, stalled %v", stalledAt, probe)

	full.Off() // space returns
	w.stop.Store(true)
	if err := <-w.done; err != nil {
		t.Fatalf("the blocked commit, once the disk has room: %v", err)
	}
	acked := w.acked.Load()
	if acked <= stalledAt {
		t.Fatalf("no commit completed after the disk had room (acked %d)", acked)
	}
	if err := db.Probe(); err != nil {
		t.Fatalf("probe once the disk has room: %v", err)
	}
	if err := db.Failed(); err != nil {
		t.Fatalf("Failed once the disk has room: %v", err)
	}
	log.mu.Lock()
	recovered := log.recovered
	log.mu.Unlock()
	if len(recovered) == 0 || !errors.Is(recovered[0], syscall.ENOSPC) {
		t.Fatalf("OnRecover saw %v, want the stall's ENOSPC", recovered)
	}
	if _, err := db.CommitBlock(putBlock(0, acked+1, fmt.Sprint("k", acked+1), "v")); err != nil {
		t.Fatalf("a commit after the stall: %v", err)
	}
	acked++
	check := func(db *storage.DB, when string) {
		t.Helper()
		if m, _, err := db.ShardMeta(0); err != nil || m.Height != acked {
			t.Fatalf("%s: shard 0 at %+v %v, want height %d", when, m, err, acked)
		}
		for h := uint64(1); h <= acked; h++ {
			if _, ok, err := db.Get(0, []byte(fmt.Sprint("k", h))); err != nil || !ok {
				t.Fatalf("%s: block %d's write: %v %v", when, h, ok, err)
			}
		}
	}
	check(db, "after the stall")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	db = open(t, mem, storage.Options{NoSync: true})
	defer db.Close()
	check(db, "reopened")
}

// TestNoSyncCloseWhileStalled closes a store whose WAL stalls, with a
// commit blocked on it: Close returns promptly (ErrWedged wrapping the
// stall: Pebble is left open, its WAL's unwritten tail lost), the blocked
// commit waits for the process to exit (this test leaves it so), and a
// second Close, and a commit of another shard, return ErrWedged.
func TestNoSyncCloseWhileStalled(t *testing.T) {
	full := walFull()
	db := open(t, errorfs.Wrap(vfs.NewMem(), full), storage.Options{NoSync: true, MemTableBytes: 64 << 10})
	if _, err := db.CommitBlock(putBlock(0, 1, "k1", "v")); err != nil {
		t.Fatal(err)
	}
	full.On()
	w := startWriter(db)
	w.blocked(t, db)
	closed := make(chan error, 1)
	go func() { closed <- db.Close() }()
	select {
	case err := <-closed:
		if !errors.Is(err, storage.ErrWedged) || !errors.Is(err, storage.ErrStalled) || !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("Close while the WAL stalls: %v, want ErrWedged wrapping ErrStalled with ENOSPC", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close of a stalled store hangs")
	}
	select {
	case err := <-w.done:
		t.Fatalf("the blocked commit returned after Close: %v, want it to wait for the process to exit", err)
	case <-time.After(200 * time.Millisecond):
	}
	if err := db.Probe(); !errors.Is(err, storage.ErrStalled) {
		t.Fatalf("Probe after Close: %v, want ErrStalled", err)
	}
	if err := db.Close(); !errors.Is(err, storage.ErrWedged) {
		t.Fatalf("second Close: %v, want ErrWedged", err)
	}
	if _, err := db.CommitBlock(putBlock(1, 1, "b", "2")); !errors.Is(err, storage.ErrWedged) {
		t.Fatalf("a commit after Close: %v, want ErrWedged", err)
	}
}
