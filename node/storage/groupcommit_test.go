package storage_test

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/rustorium/rustorium/node/storage"
)

// commitAll commits ps concurrently, one goroutine each, and returns their
// results in order.
func commitAll(db *storage.DB, ps []*storage.Prepared) ([]*storage.CommitResult, []error) {
	res, errs := make([]*storage.CommitResult, len(ps)), make([]error, len(ps))
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Go(func() { res[i], errs[i] = db.Commit(p) })
	}
	wg.Wait()
	return res, errs
}

// prepareRound prepares one block of each shard together, at height h.
func prepareRound(t *testing.T, db *storage.DB, h uint64, shards ...uint32) []*storage.Prepared {
	t.Helper()
	cs := make([]*storage.BlockCommit, len(shards))
	for i, s := range shards {
		cs[i] = putBlock(s, h, fmt.Sprintf("k%d", s), fmt.Sprintf("v%d/%d", s, h))
	}
	ps, errs := db.PrepareMany(cs)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("prepare shard %d: %v", shards[i], err)
		}
	}
	return ps
}

// TestRoundCommitsShareOneSync: the blocks of four shards prepared
// together and committed concurrently reach Pebble as one batch (one WAL
// sync); each commit gets its own root, meta and proofs, which verify, and
// the store reopened has every block. Without sync each commit goes to
// Pebble alone.
func TestRoundCommitsShareOneSync(t *testing.T) {
	mem := vfs.NewMem()
	db := open(t, mem, storage.Options{CombineWait: time.Minute}) // the leader waits for every sibling
	defer db.Close()
	for h := uint64(1); h <= 3; h++ {
		ps := prepareRound(t, db, h, 0, 1, 2, 3)
		res, errs := commitAll(db, ps)
		for i, err := range errs {
			if err != nil {
				t.Fatalf("height %d shard %d: %v", h, i, err)
			}
			key, val := fmt.Appendf(nil, "k%d", i), fmt.Appendf(nil, "v%d/%d", i, h)
			if res[i].Meta.Height != h || !res[i].Root.Equal(&ps[i].Root) {
				t.Fatalf("height %d shard %d: meta %+v root %s, prepared %s", h, i, res[i].Meta, res[i].Root.String(), ps[i].Root.String())
			}
			if err := storage.VerifyProof(res[i].Root, key, val, res[i].Proofs[0]); err != nil {
				t.Fatalf("height %d shard %d: %v", h, i, err)
			}
		}
		if g, b := storage.CommitGroups(db); g != h || b != 4*h {
			t.Fatalf("after height %d: %d Pebble commits of %d blocks, want %d of %d", h, g, b, h, 4*h)
		}
	}
	db.Close()

	db = open(t, mem, storage.Options{})
	defer db.Close()
	for s := range uint32(4) {
		if m, _, err := db.ShardMeta(s); err != nil || m.Height != 3 {
			t.Fatalf("shard %d reopened: %+v %v, want height 3", s, m, err)
		}
		if v, ok, err := db.Get(s, fmt.Appendf(nil, "k%d", s)); err != nil || !ok || string(v) != fmt.Sprintf("v%d/3", s) {
			t.Fatalf("shard %d reopened: %q %v %v", s, v, ok, err)
		}
	}

	nosync := open(t, vfs.NewMem(), storage.Options{NoSync: true, CombineWait: time.Minute})
	defer nosync.Close()
	if _, errs := commitAll(nosync, prepareRound(t, nosync, 1, 0, 1, 2, 3)); errors.Join(errs...) != nil {
		t.Fatal(errs)
	}
	if g, b := storage.CommitGroups(nosync); g != 0 || b != 0 {
		t.Fatalf("without sync: %d group commits of %d blocks, want none", g, b)
	}
}

// TestRoundCommitWithoutSiblings: a block whose sibling never commits
// (its replica gave up) commits alone once CombineWait has passed; one
// whose siblings commit one after another on one goroutine waits once.
func TestRoundCommitWithoutSiblings(t *testing.T) {
	db := open(t, vfs.NewMem(), storage.Options{CombineWait: 20 * time.Millisecond})
	defer db.Close()
	ps := prepareRound(t, db, 1, 0, 1)
	if _, err := db.Commit(ps[0]); err != nil {
		t.Fatal(err)
	}
	if g, b := storage.CommitGroups(db); g != 1 || b != 1 {
		t.Fatalf("%d Pebble commits of %d blocks, want 1 of 1", g, b)
	}
	if v, ok, err := db.Get(0, []byte("k0")); err != nil || !ok || string(v) != "v0/1" {
		t.Fatalf("the lone block: %q %v %v", v, ok, err)
	}
	// The sibling commits late, alone.
	if _, err := db.Commit(ps[1]); err != nil {
		t.Fatal(err)
	}
	if g, b := storage.CommitGroups(db); g != 2 || b != 2 {
		t.Fatalf("%d Pebble commits of %d blocks, want 2 of 2", g, b)
	}
}

// TestRoundCommitFailsTogether fails the WAL's writes under a round's
// commit: every block of the group fails with ErrWrite (ENOSPC), none is
// visible, and after the disk has room again the store recovers and the
// round commits.
func TestRoundCommitFailsTogether(t *testing.T) {
	full := diskFull(isWrite)
	db := open(t, errorfs.Wrap(vfs.NewMem(), full), storage.Options{CombineWait: time.Minute})
	defer db.Close()
	ps := prepareRound(t, db, 1, 0, 1, 2)
	full.On()
	_, errs := commitAll(db, ps)
	for i, err := range errs {
		if !errors.Is(err, storage.ErrWrite) || !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("shard %d on a full disk: %v, want ErrWrite with ENOSPC", i, err)
		}
	}
	if g, b := storage.CommitGroups(db); g != 1 || b != 3 {
		t.Fatalf("%d Pebble commits of %d blocks, want 1 of 3", g, b)
	}
	full.Off()
	if err := db.Probe(); err != nil {
		t.Fatalf("probe once the disk has room: %v", err)
	}
	for s := range uint32(3) {
		if v, ok, err := db.Get(s, fmt.Appendf(nil, "k%d", s)); err != nil || ok {
			t.Fatalf("shard %d: the failed block's write is visible: %q %v %v", s, v, ok, err)
		}
	}
	if _, errs := commitAll(db, prepareRound(t, db, 1, 0, 1, 2)); errors.Join(errs...) != nil {
		t.Fatal(errs)
	}
	for s := range uint32(3) {
		if v, ok, err := db.Get(s, fmt.Appendf(nil, "k%d", s)); err != nil || !ok || string(v) != fmt.Sprintf("v%d/1", s) {
			t.Fatalf("shard %d after the retry: %q %v %v", s, v, ok, err)
		}
	}
}
