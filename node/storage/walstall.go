package storage

// This file is the WAL's retrying filesystem, used with Options.NoSync.
//
// Without sync, Pebble's LogWriter writes the WAL in the background, after
// the commits it carries returned; a failed write there is fatal to Pebble
// (its next commit panics holding the commit pipeline's lock: ErrWedged).
// So with NoSync the store never lets a WAL write error reach Pebble: walFS
// retries it until it succeeds, and the store reports the stall (Probe,
// Failed, OnError "wal") meanwhile. Commits go on while the LogWriter
// buffers, then wait once the memtable is full (its WAL cannot be closed
// until its writes landed): back pressure, with memory bounded by the
// memtable. When the disk takes writes again the retried write lands and
// everything continues, in process.

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// The WAL's retries wait walRetryMin, doubling to walRetryMax: a disk that
// has room again is written to within 100 ms, and a stalled WAL costs ten
// failed system calls a second.
const (
	walRetryMin = time.Millisecond
	walRetryMax = 100 * time.Millisecond
)

// walReportEvery is how often a stalled WAL operation reports its failure
// to OnError ("wal"), beside its first failure.
const walReportEvery = time.Second

// isWAL reports whether name is one of Pebble's WAL files ("NNNNNN.log",
// or "NNNNNN-NNN.log" with WAL failover, which the store does not use).
func isWAL(name string) bool { return strings.HasSuffix(name, ".log") }

// walFS is a vfs.FS that retries the failed write-side operations of WAL
// files (Create, ReuseForWrite, and the files' Write, Sync, SyncData and
// SyncTo) and the syncs of directories (see OpenDir), with a capped
// backoff (walRetryMin doubling to walRetryMax), until they succeed; it
// passes everything else through. It retries only once armed (after the
// store's first Pebble Open): a disk that cannot take the WAL at Open
// fails Open. Preallocate is passed through: Pebble ignores its errors. A
// failed Close of a WAL is reported, not retried (see walFile.Close). The
// store's Close ends the retries (walStall.park, walStall.failFast). It
// starts no goroutine: a retry waits on the goroutine of the operation it
// retries (Pebble's WAL flusher, or a commit creating the next WAL).
type walFS struct {
	vfs.FS
	st *walStall
}

// Unwrap returns the wrapped filesystem.
func (fs *walFS) Unwrap() vfs.FS { return fs.FS }

// Create creates name; for a WAL, retrying.
func (fs *walFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	if !isWAL(name) {
		return fs.FS.Create(name, category)
	}
	var f vfs.File
	err := fs.st.retry("WAL create", name, func() (err error) {
		f, err = fs.FS.Create(name, category)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &walFile{File: f, name: name, kind: "WAL", st: fs.st}, nil
}

// ReuseForWrite renames the WAL oldname to newname and opens it for
// writing, retrying. A retry after the rename happened (oldname is gone)
// creates newname instead, as ReuseForWrite's contract allows.
func (fs *walFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	if !isWAL(newname) {
		return fs.FS.ReuseForWrite(oldname, newname, category)
	}
	var f vfs.File
	err := fs.st.retry("WAL reuse", newname, func() (err error) {
		if _, serr := fs.FS.Stat(oldname); serr != nil {
			f, err = fs.FS.Create(newname, category)
			return err
		}
		f, err = fs.FS.ReuseForWrite(oldname, newname, category)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &walFile{File: f, name: newname, kind: "WAL", st: fs.st}, nil
}

// OpenDir opens the directory name, whose syncs retry: Pebble syncs the
// store's directory after creating a WAL, and panics on a failure there
// in a way that ends the process (it has released a lock it then
// unlocks again); a failure of the syncs after tables or the MANIFEST
// were created stalls their flush likewise, which Pebble would retry or
// end the process on, respectively.
func (fs *walFS) OpenDir(name string) (vfs.File, error) {
	f, err := fs.FS.OpenDir(name)
	if err != nil {
		return nil, err
	}
	return &walFile{File: f, name: name, kind: "directory", st: fs.st}, nil
}

// walFile is a WAL file or a directory of walFS: its writes and syncs
// retry.
type walFile struct {
	vfs.File
	name string
	kind string // "WAL" or "directory"
	st   *walStall
}

// Write writes p whole: a write that failed after n bytes (the file's
// offset moved by n) is retried with p[n:], so the file holds p once,
// without a gap or a duplicate.
func (f *walFile) Write(p []byte) (int, error) {
	written := 0
	err := f.st.retry(f.kind+" write", f.name, func() error {
		n, err := f.File.Write(p[written:])
		written += n
		if err == nil && written < len(p) {
			// io.Writer forbids a short write without an error; an
			// implementation that does one is given another turn.
			return fmt.Errorf("storage: short write of %s: %d of %d bytes", f.name, written, len(p))
		}
		return err
	})
	return written, err
}

// Sync syncs the file, retrying (see Options.NoSync on retried syncs).
func (f *walFile) Sync() error { return f.st.retry(f.kind+" sync", f.name, f.File.Sync) }

// SyncData syncs the file's data, retrying.
func (f *walFile) SyncData() error { return f.st.retry(f.kind+" sync", f.name, f.File.SyncData) }

// SyncTo syncs a prefix of the file, retrying.
func (f *walFile) SyncTo(length int64) (fullSync bool, err error) {
	err = f.st.retry(f.kind+" sync", f.name, func() (err error) {
		fullSync, err = f.File.SyncTo(length)
		return err
	})
	return fullSync, err
}

// Close closes the file. A WAL's close that fails while the store runs
// is reported (OnError "wal") and not returned: it cannot be retried (the
// descriptor is released either way), its data was synced before (Sync,
// retried) or is the unsynced tail NoSync may lose, and Pebble, closing a
// full WAL to switch to the next, would end the process on the error.
// Once Close of the store runs (failFast), the error is returned.
func (f *walFile) Close() error {
	err := f.File.Close()
	if err != nil && f.st.swallow() {
		f.st.report(fmt.Errorf("storage: %s close of %s failed (ignored: the file is released, its data synced or the tail NoSync may lose): %w", f.kind, f.name, err))
		return nil
	}
	return err
}

// The modes of a walStall.
const (
	walRetrying = iota // failed operations retry (once armed)
	walParked          // the store was closed with the WAL stalled: failed operations wait for the process to exit
	walFailFast        // the store is closing, no commit in flight: failed operations return their error
)

// walStall is the state of walFS's retries, shared with the store: whether
// a WAL operation is failing (and since when, with which error), the
// reports to OnError, and the mode (walRetrying, walParked, walFailFast)
// that Close changes.
type walStall struct {
	armed    atomic.Bool
	onError  func(error) // told of a stalled operation's failures, rate-limited
	onResume func(error) // told the WAL is written again, with the stall's first error

	mu       sync.Mutex
	mode     int
	changed  chan struct{} // closed (and replaced) when mode changes
	stalling int           // operations in their retry loop
	first    error         // the stall's first error (the cause)
	op, path string        // the operation that failed first
	since    time.Time     // when it failed
	failures int           // failed attempts since
	reported time.Time     // when onError was last called
}

func newWALStall(onError, onResume func(error)) *walStall {
	return &walStall{changed: make(chan struct{}), onError: onError, onResume: onResume}
}

// arm makes failed operations retry from now on.
func (s *walStall) arm() { s.armed.Store(true) }

// park, if an operation is stalled, stops the retries for good and returns
// the stall's error (see err): Close found the WAL stalled, so commits may
// be waiting on it inside Pebble, which cannot be told of the failure
// (Pebble ends the process on a failed WAL close, or wedges on a failed
// write); the stalled operations, and any that fails later, then wait
// without retrying until the process exits. With nothing stalled it
// changes nothing and returns nil.
func (s *walStall) park() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.errLocked()
	if err != nil && s.mode == walRetrying {
		s.setModeLocked(walParked)
	}
	return err
}

// failFast makes failed operations return their error from now on, and
// stalled ones return theirs: the store is closing Pebble, with no commit
// in flight, and Pebble's Close returns a WAL error. It does nothing once
// parked.
func (s *walStall) failFast() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mode == walRetrying {
		s.setModeLocked(walFailFast)
	}
}

func (s *walStall) setModeLocked(m int) {
	s.mode = m
	close(s.changed)
	s.changed = make(chan struct{})
}

// swallow reports whether a WAL close's error is to be reported and not
// returned (see walFile.Close).
func (s *walStall) swallow() bool {
	if !s.armed.Load() {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mode != walFailFast
}

// err is the stall's error while a WAL operation is failing (ErrStalled,
// wrapping the first error), nil otherwise.
func (s *walStall) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.errLocked()
}

func (s *walStall) errLocked() error {
	if s.stalling == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s of %s failing for %v (%d attempts): %w",
		ErrStalled, s.op, s.path, time.Since(s.since).Round(time.Millisecond), s.failures, s.first)
}

// retry runs f, the WAL operation op on path, again while it fails: after
// walRetryMin, doubling to walRetryMax, until it succeeds. Unarmed, or
// failing fast, it returns f's error (at once, or when the mode changes
// to failFast); parked, it waits for the process to exit.
func (s *walStall) retry(op, path string, f func() error) error {
	err := f()
	if err == nil || !s.armed.Load() {
		return err
	}
	changed, ok := s.fail(op, path, err, true)
	if !ok {
		return err
	}
	t := time.NewTimer(walRetryMin)
	defer t.Stop()
	for delay := walRetryMin; ; {
		select {
		case <-changed:
			if changed, ok = s.modeChanged(); !ok {
				return err
			}
			continue
		case <-t.C:
		}
		if err = f(); err == nil {
			s.done(true)
			return nil
		}
		if changed, ok = s.fail(op, path, err, false); !ok {
			return err
		}
		delay = min(2*delay, walRetryMax)
		t.Reset(delay)
	}
}

// modeChanged is a retry's answer to a mode change: false when it is to
// return its error (failFast); parked, it never returns.
func (s *walStall) modeChanged() (<-chan struct{}, bool) {
	s.mu.Lock()
	mode, changed := s.mode, s.changed
	if mode == walFailFast {
		s.mu.Unlock()
		s.done(false)
		return nil, false
	}
	s.mu.Unlock()
	if mode == walParked {
		select {} // see park: nothing may reach Pebble any more
	}
	return changed, true
}

// fail records a failed attempt (the operation's first if begin) and
// reports it to onError: the stall's first failure, then at most once per
// walReportEvery. It returns the channel that signals a mode change, and
// false when the operation is to return its error (failFast); parked, it
// never returns.
func (s *walStall) fail(op, path string, err error, begin bool) (<-chan struct{}, bool) {
	s.mu.Lock()
	switch s.mode {
	case walFailFast:
		s.mu.Unlock()
		if !begin {
			s.done(false)
		}
		return nil, false
	case walParked:
		s.mu.Unlock()
		select {}
	}
	if begin {
		s.stalling++
		if s.stalling == 1 {
			s.first, s.op, s.path, s.since, s.failures = err, op, path, time.Now(), 0
			s.reported = time.Time{}
		}
	}
	s.failures++
	report := time.Since(s.reported) >= walReportEvery
	if report {
		s.reported = time.Now()
		if s.failures > 1 {
			err = fmt.Errorf("%w: %s of %s still failing after %v (%d attempts): %w", ErrStalled, op, path, time.Since(s.since).Round(time.Millisecond), s.failures, err)
		} else {
			err = fmt.Errorf("%w: %s of %s failed; retrying until it succeeds (commits wait): %w", ErrStalled, op, path, err)
		}
	}
	changed := s.changed
	s.mu.Unlock()
	if report {
		s.report(err)
	}
	return changed, true
}

func (s *walStall) report(err error) {
	if s.onError != nil {
		s.onError(err)
	}
}

// done ends an operation's retries: it succeeded (ok), or it returns its
// error (failFast). The last stalled operation to succeed ends the stall
// and tells onResume.
func (s *walStall) done(ok bool) {
	s.mu.Lock()
	s.stalling--
	ended := s.stalling == 0
	cause := s.first
	if ended {
		s.first = nil
	}
	s.mu.Unlock()
	if ended && ok && s.onResume != nil {
		s.onResume(cause)
	}
}
