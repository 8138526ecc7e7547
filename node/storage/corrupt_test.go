package storage_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rustorium/rustorium/node/storage"
)

// tableStore commits enough blocks into a new store in dir, with small
// memtables, to leave it with tables (.sst files), and returns them.
func tableStore(t *testing.T, dir string) []string {
	t.Helper()
	db, err := storage.Open(dir, storage.Options{MemTableBytes: 64 << 10, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	for h := uint64(1); h <= 300; h++ {
		if _, err := db.CommitBlock(putBlock(0, h, fmt.Sprintf("k%d", h), fmt.Sprintf("value-%d-%0100d", h, h))); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	ssts, err := filepath.Glob(filepath.Join(dir, "*.sst"))
	if err != nil || len(ssts) == 0 {
		t.Fatalf("no tables in %s: %v", dir, err)
	}
	return ssts
}

// overwrite writes garbage into file at offset.
func overwrite(t *testing.T, file string, offset int64) {
	t.Helper()
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte("garbage-garbage-garbage"), offset); err != nil {
		t.Fatal(err)
	}
}

// TestCorruptTableRefusedAtOpen overwrites part of every table of a store
// and opens it: Open fails with ErrCorrupt naming the file — not a panic,
// not Pebble ending the process (its default on a corruption), and not an
// Open that succeeds and fails later in the background, as before. The
// start of a table is checked by default; a block in the middle with
// VerifyAll, and otherwise fails the read that meets it (and Probe), as
// an error.
func TestCorruptTableRefusedAtOpen(t *testing.T) {
	base := t.TempDir()
	ssts := tableStore(t, base)
	corrupt := func(t *testing.T, at func(size int64) int64) string {
		dir := filepath.Join(t.TempDir(), "db")
		if out, err := exec.Command("cp", "-r", base, dir).CombinedOutput(); err != nil {
			t.Fatalf("copying the store: %v %s", err, out)
		}
		for _, s := range ssts {
			fi, err := os.Stat(s)
			if err != nil {
				t.Fatal(err)
			}
			overwrite(t, filepath.Join(dir, filepath.Base(s)), at(fi.Size()))
		}
		return dir
	}
	refused := func(t *testing.T, dir string, opts storage.Options) {
		t.Helper()
		db, err := storage.Open(dir, opts)
		if err == nil {
			db.Close()
			t.Fatal("a store with corrupted tables opened")
		}
		if !errors.Is(err, storage.ErrCorrupt) || !strings.Contains(err.Error(), "file 0") {
			t.Fatalf("Open: %v, want ErrCorrupt naming the table", err)
		}
		t.Logf("refused: %v", err)
	}

	t.Run("start", func(t *testing.T) {
		refused(t, corrupt(t, func(int64) int64 { return 0 }), storage.Options{})
	})
	t.Run("end", func(t *testing.T) {
		refused(t, corrupt(t, func(size int64) int64 { return size - 100 }), storage.Options{})
	})
	t.Run("middle", func(t *testing.T) {
		dir := corrupt(t, func(size int64) int64 { return size / 2 })
		refused(t, dir, storage.Options{VerifyAll: true})

		// Without VerifyAll the store opens; a read that meets the
		// corrupted block fails with an error, and Probe from then on.
		db, err := storage.Open(dir, storage.Options{})
		if err != nil {
			if !errors.Is(err, storage.ErrCorrupt) {
				t.Fatalf("Open: %v", err)
			}
			return
		}
		defer db.Close()
		var readErr error
		for h := 1; h <= 300 && readErr == nil; h++ {
			_, _, _, readErr = db.Read(0, fmt.Appendf(nil, "k%d", h))
		}
		if readErr == nil {
			t.Skip("no read met the corrupted block")
		}
		if db.Corrupt() == nil || !errors.Is(db.Probe(), storage.ErrCorrupt) {
			t.Fatalf("a read failed (%v), but Corrupt is %v and Probe %v", readErr, db.Corrupt(), db.Probe())
		}
	})
}
