package cache

import (
	"context"
	"crypto/ed25519"
	"errors"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/rustorium/rustorium/node/consensus"
	"github.com/rustorium/rustorium/node/merkle"
	"github.com/rustorium/rustorium/node/state"
	"github.com/rustorium/rustorium/node/storage"
	"github.com/rustorium/rustorium/node/tx"
)

func pub(i byte) []byte {
	var s [32]byte
	s[0] = i
	return ed25519.NewKeyFromSeed(s[:]).Public().(ed25519.PublicKey)
}

// commit writes balances to shard 0 of db as block height and returns the
// delta the write path would push.
func commit(t *testing.T, db *storage.DB, height uint64, balances map[byte]uint64, ids []tx.ID, senders [][]byte) Delta {
	t.Helper()
	var ws []storage.Write
	for i := byte(0); i < 255; i++ {
		if b, ok := balances[i]; ok {
			ws = append(ws, storage.Write{Key: state.AccountKey(pub(i)), Value: state.Account{Balance: b, Nonce: height}.Encode()})
		}
	}
	p, err := db.Prepare(&storage.BlockCommit{Shard: 0, Height: height, Writes: ws})
	if err != nil {
		t.Fatal(err)
	}
	hdr := consensus.Header{Shard: 0, Height: height, StateRoot: p.Root.Bytes()}
	p.Block.BlockHash, p.Block.Header = hdr.Hash(), hdr.Encode()
	res, err := db.Commit(p)
	if err != nil {
		t.Fatal(err)
	}
	proofs := make([][]byte, len(res.Proofs))
	for i, p := range res.Proofs {
		if proofs[i], err = p.MarshalBinary(); err != nil {
			t.Fatal(err)
		}
	}
	return Delta{Header: hdr, Writes: ws, Proofs: proofs, IDs: ids, Senders: senders}
}

// countingStore counts reads that reach storage.
type countingStore struct {
	*storage.DB
	reads int
}

func (c *countingStore) Read(shard uint32, key []byte) ([]byte, *merkle.Proof, fr.Element, error) {
	c.reads++
	return c.DB.Read(shard, key)
}

func verify(t *testing.T, a Account, p []byte) {
	t.Helper()
	var value []byte
	if a.Exists {
		value = a.Account.Encode()
	}
	if err := storage.VerifyProofBytes(a.Root, state.AccountKey(p), value, a.Proof); err != nil {
		t.Fatalf("account view's proof: %v", err)
	}
}

func TestViews(t *testing.T) {
	db, err := storage.Open(t.TempDir(), storage.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store := &countingStore{DB: db}
	v, err := New(store, 2, Options{Blocks: 2, Recent: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	commit(t, db, 1, map[byte]uint64{1: 100, 2: 50}, nil, nil)

	// A miss reads through and fills; the next read is a hit.
	a, err := v.Account(ctx, 0, pub(1))
	if err != nil || !a.Exists || a.Balance != 100 {
		t.Fatalf("miss: %+v %v", a, err)
	}
	verify(t, a, pub(1))
	if _, err := v.Account(ctx, 0, pub(1)); err != nil || store.reads != 1 {
		t.Fatalf("second read went to storage (%d reads): %v", store.reads, err)
	}
	// An absent account is a view too, with a proof of absence.
	none, err := v.Account(ctx, 0, pub(9))
	if err != nil || none.Exists {
		t.Fatalf("absent account: %+v %v", none, err)
	}
	verify(t, none, pub(9))

	// A block's delta updates the cached account in place: no read, and
	// its proof verifies against the new root. Account 2, never read, stays
	// out of the view.
	ids := []tx.ID{{1}, {2}, {3}}
	d := commit(t, db, 2, map[byte]uint64{1: 70, 2: 80}, ids, [][]byte{pub(1), pub(1), nil})
	if err := v.Apply(d); err != nil {
		t.Fatal(err)
	}
	a, err = v.Account(ctx, 0, pub(1))
	if err != nil || a.Balance != 70 || a.Height != 2 || a.Root != d.Header.StateRoot || store.reads != 2 {
		t.Fatalf("after the delta: %+v, %d reads, %v", a, store.reads, err)
	}
	verify(t, a, pub(1))
	if s := v.Stats(); s.Entries != 2 || s.Hits != 2 || s.Misses != 2 {
		t.Fatalf("stats %+v", s)
	}

	// Latest blocks and recent transactions are bounded, newest first.
	v.Apply(commit(t, db, 3, map[byte]uint64{1: 60}, []tx.ID{{4}}, [][]byte{pub(1)}))
	if bs := v.LatestBlocks(0, 10); len(bs) != 2 || bs[0].Height != 3 || bs[1].Height != 2 {
		t.Fatalf("latest blocks %+v", bs)
	}
	if r := v.Recent(pub(1)); len(r) != 2 || r[0] != (tx.ID{4}) || r[1] != (tx.ID{2}) {
		t.Fatalf("recent %v", r)
	}
	if _, err := v.Account(ctx, 5, pub(1)); !errors.Is(err, ErrShard) {
		t.Fatalf("shard out of range: %v", err)
	}
}

// TestOptimize: a view that misses while full grows, within its budget; one
// that barely misses and has room shrinks back.
func TestOptimize(t *testing.T) {
	db, err := storage.Open(t.TempDir(), storage.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	v, err := New(db, 1, Options{Accounts: 8, MaxAccounts: 32})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range byte(64) { // 64 distinct accounts through an 8-entry view: all misses
		if _, err := v.Account(ctx, 0, pub(i)); err != nil {
			t.Fatal(err)
		}
	}
	v.accounts.CleanUp()
	if got := v.Optimize(); got != 16 {
		t.Fatalf("capacity after misses %d, want 16", got)
	}
	for range 2 {
		for i := range byte(64) {
			v.Account(ctx, 0, pub(i))
		}
		v.accounts.CleanUp()
		v.Optimize()
	}
	if got := v.Stats().Capacity; got != 32 {
		t.Fatalf("capacity %d, want the budget 32", got)
	}
	// Now only 2 hot accounts: hits, and room to spare → shrink.
	for range 200 {
		v.Account(ctx, 0, pub(1))
		v.Account(ctx, 0, pub(2))
	}
	v.accounts.InvalidateAll()
	v.Account(ctx, 0, pub(1))
	for range 200 {
		v.Account(ctx, 0, pub(1))
	}
	if got := v.Optimize(); got != 16 {
		t.Fatalf("capacity after hits %d, want 16", got)
	}
}
