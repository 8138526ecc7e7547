package storage

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/rustorium/rustorium/internal/retry"
)

// partialFile is a file whose writes, while full is set, write at most
// cut bytes and then fail with ENOSPC, as write(2) does on a disk that
// fills during the write (the file's offset moves by what was written).
type partialFile struct {
	vfs.File
	full     *atomic.Bool
	cut      int
	attempts atomic.Int32
}

func (f *partialFile) Write(p []byte) (int, error) {
	f.attempts.Add(1)
	if !f.full.Load() {
		return f.File.Write(p)
	}
	n, err := f.File.Write(p[:min(f.cut, len(p))])
	if err != nil {
		return n, err
	}
	return n, syscall.ENOSPC
}

// stallLog records a walStall's reports.
type stallLog struct {
	mu      sync.Mutex
	errs    []error
	resumed []error
}

func (l *stallLog) stall() *walStall {
	return newWALStall(func(err error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.errs = append(l.errs, err)
	}, func(cause error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.resumed = append(l.resumed, cause)
	})
}

func (l *stallLog) counts() (errs, resumed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.errs), len(l.resumed)
}

func readAll(t *testing.T, fs vfs.FS, name string) []byte {
	t.Helper()
	f, err := fs.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestWALWriteResumes fails a WAL write after part of it was written, on
// every attempt while the disk is full: the write stalls (reported once,
// ErrStalled wrapping ENOSPC), and once the disk has room it completes
// with the rest, leaving the file with exactly the bytes written, without
// a gap or a duplicate; the stall then ends and is reported resumed.
func TestWALWriteResumes(t *testing.T) {
	mem := vfs.NewMem()
	var log stallLog
	st := log.stall()
	st.arm()
	inner, err := mem.Create("000001.log", vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	var full atomic.Bool
	pf := &partialFile{File: inner, full: &full, cut: 3}
	f := &walFile{File: pf, name: "000001.log", kind: "WAL", st: st}

	if n, err := f.Write([]byte("head-")); n != 5 || err != nil {
		t.Fatalf("write: %d %v", n, err)
	}
	full.Store(true)
	p := []byte("0123456789abcdefghij")
	want := append([]byte("head-"), p...)
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := f.Write(bytes.Clone(p))
		done <- result{n, err}
	}()
	// Stalled: several attempts, each writing 3 more bytes.
	if err := retry.Poll(t.Context(), time.Millisecond, 10*time.Second, func() (bool, error) {
		return pf.attempts.Load() >= 5, nil
	}); err != nil {
		t.Fatal("the write is not retried")
	}
	stall := st.err()
	if !errors.Is(stall, ErrStalled) || !errors.Is(stall, syscall.ENOSPC) {
		t.Fatalf("stall: %v, want ErrStalled with ENOSPC", stall)
	}
	select {
	case r := <-done:
		t.Fatalf("the write returned %d %v on a full disk", r.n, r.err)
	default:
	}
	if errs, _ := log.counts(); errs != 1 || !errors.Is(log.errs[0], ErrStalled) || !errors.Is(log.errs[0], syscall.ENOSPC) {
		t.Fatalf("reports within the first second: %v, want the first failure only", log.errs)
	}
	full.Store(false)
	r := <-done
	if r.n != len(p) || r.err != nil {
		t.Fatalf("write after the disk has room: %d %v, want %d nil", r.n, r.err, len(p))
	}
	if got := readAll(t, mem, "000001.log"); !bytes.Equal(got, want) {
		t.Fatalf("file holds %q, want %q", got, want)
	}
	if err := st.err(); err != nil {
		t.Fatalf("stall after the write completed: %v", err)
	}
	if _, resumed := log.counts(); resumed != 1 || !errors.Is(log.resumed[0], syscall.ENOSPC) {
		t.Fatalf("resumed: %v, want once with ENOSPC", log.resumed)
	}
}

// failingFS fails, while full is set, every Create and ReuseForWrite
// (the latter after renaming, as a rename that succeeded before the open
// failed leaves it), and every file sync.
type failingFS struct {
	vfs.FS
	full *atomic.Bool
}

func (fs failingFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	if fs.full.Load() {
		return nil, syscall.ENOSPC
	}
	f, err := fs.FS.Create(name, c)
	return failingFile{File: f, full: fs.full}, err
}

func (fs failingFS) ReuseForWrite(old, new string, c vfs.DiskWriteCategory) (vfs.File, error) {
	if fs.full.Load() {
		if err := fs.FS.Rename(old, new); err != nil {
			return nil, err
		}
		return nil, syscall.ENOSPC
	}
	f, err := fs.FS.ReuseForWrite(old, new, c)
	return failingFile{File: f, full: fs.full}, err
}

type failingFile struct {
	vfs.File
	full *atomic.Bool
}

func (fs failingFS) OpenDir(name string) (vfs.File, error) {
	f, err := fs.FS.OpenDir(name)
	return failingFile{File: f, full: fs.full}, err
}

func (f failingFile) Sync() error {
	if f.full.Load() {
		return syscall.EIO
	}
	return f.File.Sync()
}

func (f failingFile) SyncData() error {
	if f.full.Load() {
		return syscall.EIO
	}
	return f.File.SyncData()
}

// TestWALFSRetries covers walFS's other retried operations: a Create and
// a ReuseForWrite of a WAL (whose rename already happened when it failed:
// the retry creates the new file) stall until the disk has room, then
// return a working file; a WAL sync and a directory sync stall likewise;
// other files' errors,
// and every error before arm, pass through at once.
func TestWALFSRetries(t *testing.T) {
	var full atomic.Bool
	mem := vfs.NewMem()
	var log stallLog
	st := log.stall()
	fs := &walFS{FS: failingFS{FS: mem, full: &full}, st: st}
	full.Store(true)
	if _, err := fs.Create("000001.log", vfs.WriteCategoryUnspecified); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("create before arm: %v, want ENOSPC at once", err)
	}
	st.arm()
	if _, err := fs.Create("000001.sst", vfs.WriteCategoryUnspecified); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("create of a table: %v, want ENOSPC at once", err)
	}
	full.Store(false)
	old, err := fs.Create("000002.log", vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Write([]byte("old")); err != nil {
		t.Fatal(err)
	}
	old.Close()
	full.Store(true)

	stalls := func(name string, op func() error) {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- op() }()
		if err := retry.Poll(t.Context(), time.Millisecond, 10*time.Second, func() (bool, error) { return st.err() != nil, nil }); err != nil {
			t.Fatalf("%s: no stall", name)
		}
		select {
		case err := <-done:
			t.Fatalf("%s returned %v on a full disk", name, err)
		case <-time.After(20 * time.Millisecond):
		}
		full.Store(false)
		if err := <-done; err != nil {
			t.Fatalf("%s after the disk has room: %v", name, err)
		}
		if err := st.err(); err != nil {
			t.Fatalf("%s: stalled after it succeeded: %v", name, err)
		}
		full.Store(true)
	}
	var created, reused vfs.File
	stalls("create", func() (err error) {
		created, err = fs.Create("000003.log", vfs.WriteCategoryUnspecified)
		return err
	})
	stalls("reuse", func() (err error) {
		reused, err = fs.ReuseForWrite("000002.log", "000004.log", vfs.WriteCategoryUnspecified)
		return err
	})
	stalls("sync", created.SyncData)
	dir, err := fs.OpenDir("")
	if err != nil {
		t.Fatal(err)
	}
	stalls("directory sync", dir.Sync)
	dir.Close()
	full.Store(false)
	for _, f := range []vfs.File{created, reused} {
		if _, err := f.Write([]byte("new")); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	if got := readAll(t, mem, "000004.log"); string(got) != "new" {
		t.Fatalf("the reused WAL holds %q", got)
	}
	if _, err := mem.Stat("000002.log"); err == nil {
		t.Fatal("the recycled WAL is still there")
	}
	if _, resumed := log.counts(); resumed != 4 {
		t.Fatalf("%d resumes, want 4", resumed)
	}
}

// stalledWrite starts a write that stalls (every attempt fails with
// ENOSPC) and waits until it does.
func stalledWrite(t *testing.T, st *walStall) (*walFile, chan error) {
	t.Helper()
	inner, err := vfs.NewMem().Create("000001.log", vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	var full atomic.Bool
	full.Store(true)
	f := &walFile{File: &partialFile{File: inner, full: &full}, name: "000001.log", kind: "WAL", st: st}
	done := make(chan error, 1)
	go func() {
		_, err := f.Write([]byte("x"))
		done <- err
	}()
	if err := retry.Poll(t.Context(), time.Millisecond, 10*time.Second, func() (bool, error) { return st.err() != nil, nil }); err != nil {
		t.Fatal("no stall")
	}
	return f, done
}

// TestWALFailFast ends a stall as the store's Close does with no commit
// in flight: the stalled write returns its error at once, a write that
// fails afterwards returns at once, and nothing is stalled any more.
func TestWALFailFast(t *testing.T) {
	var log stallLog
	st2 := log.stall()
	st2.arm()
	f, done := stalledWrite(t, st2)
	st2.failFast()
	select {
	case err := <-done:
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("stalled write after failFast: %v, want ENOSPC", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stalled write still waits after failFast")
	}
	if _, err := f.Write([]byte("y")); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write after failFast: %v, want ENOSPC at once", err)
	}
	if err := st2.err(); err != nil {
		t.Fatalf("stalled after failFast: %v", err)
	}
	if err := st2.park(); err != nil {
		t.Fatalf("park after failFast: %v, want nil (nothing stalled)", err)
	}
	if _, resumed := log.counts(); resumed != 0 {
		t.Fatal("a failed stall reported resumed")
	}
}

// TestWALPark parks a stall as the store's Close does when it finds the
// WAL stalled: park returns the stall, and the stalled write neither
// returns nor retries any more (it waits for the process to exit: this
// test leaves it so).
func TestWALPark(t *testing.T) {
	var log stallLog
	st := log.stall()
	st.arm()
	f, done := stalledWrite(t, st)
	if err := st.park(); !errors.Is(err, ErrStalled) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("park: %v, want the stall", err)
	}
	pf := f.File.(*partialFile)
	time.Sleep(2 * walRetryMax) // a retry under way ends
	attempts := pf.attempts.Load()
	select {
	case err := <-done:
		t.Fatalf("the parked write returned %v", err)
	case <-time.After(3 * walRetryMax):
	}
	if a := pf.attempts.Load(); a != attempts {
		t.Fatalf("the parked write retried: %d attempts, then %d", attempts, a)
	}
	if err := st.park(); err == nil {
		t.Fatal("a second park does not report the stall")
	}
}
