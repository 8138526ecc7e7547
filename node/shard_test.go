package node

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/rustorium/rustorium/node/consensus"
	"github.com/rustorium/rustorium/node/ordering"
	"github.com/rustorium/rustorium/node/p2p"
	"github.com/rustorium/rustorium/node/state"
	"github.com/rustorium/rustorium/node/storage"
	"github.com/rustorium/rustorium/node/tx"
)

// The replica's steps that do no I/O, tested without a broker or a store.

// mapState is committed state in a map (shard, key) → value.
type mapState map[string][]byte

func (m mapState) Get(shard uint32, key []byte) ([]byte, bool, error) {
	v, ok := m[string(rune('0'+shard))+string(key)]
	return v, ok, nil
}

func (m mapState) set(shard uint32, key, value []byte) {
	m[string(rune('0'+shard))+string(key)] = value
}

func TestAdmit(t *testing.T) {
	const shard = 1
	meta := storage.Meta{Height: 3, BlockHash: [32]byte{3}, NextOffset: 10}
	next := consensus.Header{Shard: shard, Height: 4, Parent: meta.BlockHash, FirstOffset: 10, NextOffset: 12, TxCount: 2, Time: 7}
	for _, tc := range []struct {
		name string
		edit func(h *consensus.Header)
		want verdict
		err  string
	}{
		{"next", func(*consensus.Header) {}, applyBlock, ""},
		{"committed", func(h *consensus.Header) { h.Height = 3 }, skipCommitted, ""},
		{"long committed", func(h *consensus.Header) { h.Height = 1 }, skipCommitted, ""},
		{"other shard", func(h *consensus.Header) { h.Shard = 2 }, skipInvalid, "block of shard 2"},
		{"other shard, old height", func(h *consensus.Header) { h.Shard, h.Height = 2, 1 }, skipInvalid, "block of shard 2"},
		{"gap", func(h *consensus.Header) { h.Height = 5 }, skipInvalid, "height 5, want 4"},
		{"other parent", func(h *consensus.Header) { h.Parent = [32]byte{9} }, skipInvalid, "parent"},
		{"range overlaps", func(h *consensus.Header) { h.FirstOffset = 9 }, skipInvalid, "does not follow 10"},
		{"empty range", func(h *consensus.Header) { h.NextOffset = 10 }, skipInvalid, "does not follow 10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := next
			tc.edit(&h)
			got, v, err := admit(shard, meta, h.Encode())
			if v != tc.want {
				t.Fatalf("verdict %d, want %d (err %v)", v, tc.want, err)
			}
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("err %v, want one saying %q", err, tc.err)
			}
			if got != h {
				t.Fatalf("header %+v, want %+v", got, h)
			}
		})
	}
	if _, v, err := admit(shard, meta, []byte("not a header")); v != skipUndecodable || err == nil {
		t.Fatalf("garbage: verdict %d, err %v", v, err)
	}
}

// keyIn returns an account key that lives in shard (of shards).
func keyIn(t *testing.T, shard uint32, shards int, salt byte) [32]byte {
	t.Helper()
	for i := range 256 {
		k := [32]byte{salt, byte(i)}
		if ordering.ShardOf(k[:], shards) == shard {
			return k
		}
	}
	t.Fatal("no key in shard")
	return [32]byte{}
}

// execFixture is a shard-0 block of a two-shard chain: a put, garbage, the
// put again, a put committed before, a local and a cross-shard transfer
// from alice (balance 10), and an overdraft.
type execFixture struct {
	alice                    ed25519.PublicKey
	local, remote            [32]byte
	put, known, xfer, xShard *tx.Tx
	overdraft                *tx.Tx
	records                  []consensus.Entry
	state                    mapState
	wantIDs, wantReplay      []tx.ID
	wantOK                   []bool
}

func newExecFixture(t *testing.T) *execFixture {
	const shards = 2
	var f execFixture
	var priv ed25519.PrivateKey // alice, whose account lives in shard 0
	for i := 0; priv == nil || ordering.ShardOf(priv.Public().(ed25519.PublicKey), shards) != 0; i++ {
		priv = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{byte(i)}, ed25519.SeedSize))
	}
	f.alice = priv.Public().(ed25519.PublicKey)
	f.local, f.remote = keyIn(t, 0, shards, 'l'), keyIn(t, 1, shards, 'r')
	f.state = mapState{}
	f.state.set(0, state.AccountKey(f.alice), state.Account{Balance: 10}.Encode())
	signed := func(x *tx.Tx) *tx.Tx { x.ChainID = 1; x.Sign(priv); return x }
	f.put = signed(&tx.Tx{Kind: tx.KindPut, From: f.alice, Key: []byte("k"), Value: []byte("v")})
	f.known = signed(&tx.Tx{Kind: tx.KindPut, From: f.alice, Nonce: 1, Key: []byte("old"), Value: []byte("v")})
	f.xfer = signed(&tx.Tx{Kind: tx.KindTransfer, From: f.alice, Nonce: 0, To: f.local, Amount: 3})
	f.xShard = signed(&tx.Tx{Kind: tx.KindTransfer, From: f.alice, Nonce: 1, To: f.remote, Amount: 4})
	f.overdraft = signed(&tx.Tx{Kind: tx.KindTransfer, From: f.alice, Nonce: 2, To: f.local, Amount: 4})
	for i, raw := range [][]byte{f.put.Encode(), []byte("garbage"), f.put.Encode(), f.known.Encode(), f.xfer.Encode(), f.xShard.Encode(), f.overdraft.Encode()} {
		f.records = append(f.records, consensus.Entry{Offset: int64(20 + i), Raw: raw})
	}
	f.wantIDs = []tx.ID{f.put.ID(), f.xfer.ID(), f.xShard.ID(), f.overdraft.ID()}
	f.wantReplay = []tx.ID{f.known.ID()}
	f.wantOK = []bool{true, true, true, false}
	return &f
}

func (f *execFixture) exec(known func(tx.ID) (bool, error)) blockExec {
	return blockExec{Shards: 2, Shard: 0, Height: 5, State: f.state, Known: known, Log: slog.New(slog.DiscardHandler)}
}

func (f *execFixture) run(t *testing.T) *body {
	t.Helper()
	b, err := f.exec(func(id tx.ID) (bool, error) { return id == f.known.ID(), nil }).run(f.records)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBlockExec(t *testing.T) {
	f := newExecFixture(t)
	b := f.run(t)
	if !reflect.DeepEqual(b.ids, f.wantIDs) {
		t.Fatalf("ids %x, want %x", b.ids, f.wantIDs)
	}
	if !reflect.DeepEqual(b.replay, f.wantReplay) {
		t.Fatalf("replay %x, want %x", b.replay, f.wantReplay)
	}
	if len(b.txs) != len(b.ids) || len(b.res.Outcomes) != len(b.ids) {
		t.Fatalf("%d txs, %d outcomes for %d ids", len(b.txs), len(b.res.Outcomes), len(b.ids))
	}
	for i, o := range b.res.Outcomes {
		if b.txs[i].ID() != b.ids[i] || o.OK != f.wantOK[i] {
			t.Fatalf("tx %d: id %x ok %v (%s), want %x ok %v", i, b.txs[i].ID(), o.OK, o.Reason, b.ids[i], f.wantOK[i])
		}
	}
	// alice paid 3 locally and 4 to shard 1: 3 left; the local receiver
	// got 3; the remote one a credit of block 5 of shard 0.
	final := map[string][]byte{}
	for _, w := range b.res.Writes {
		final[string(w.Key)] = w.Value
	}
	for key, want := range map[string]uint64{string(state.AccountKey(f.alice)): 3, string(state.AccountKey(f.local[:])): 3} {
		a, err := state.DecodeAccount(final[key])
		if err != nil || a.Balance != want {
			t.Fatalf("balance %d (%v), want %d", a.Balance, err, want)
		}
	}
	if v := final[string(state.PutKey([]byte("k")))]; !bytes.Equal(v, []byte("v")) {
		t.Fatalf("put wrote %q", v)
	}
	if _, ok := final[string(state.PutKey([]byte("old")))]; ok {
		t.Fatal("the replayed put was executed again")
	}
	if len(b.res.Credits) != 1 {
		t.Fatalf("%d credits, want 1", len(b.res.Credits))
	}
	if c := b.res.Credits[0]; c.To != f.remote || c.Amount != 4 || c.SourceShard != 0 || c.SourceHeight != 5 {
		t.Fatalf("credit %+v", c)
	}
	if got := b.senders(); !bytes.Equal(got[1], f.alice) || got[0] != nil {
		t.Fatalf("senders %x", got)
	}
}

func TestBlockExecErrors(t *testing.T) {
	f := newExecFixture(t)
	boom := errors.New("boom")
	if _, err := f.exec(func(tx.ID) (bool, error) { return false, boom }).run(f.records); !errors.Is(err, boom) {
		t.Fatalf("known's error: got %v", err)
	}
	credit := &tx.Tx{Kind: tx.KindCredit, ChainID: 1, From: f.alice, To: f.local, Amount: 1, SourceShard: 1, SourceHeight: 2, Sig: make([]byte, 64)}
	e := f.exec(func(tx.ID) (bool, error) { return false, nil })
	e.CheckCredit = func(*tx.Tx) (string, error) { return "not emitted", nil }
	b, err := e.run([]consensus.Entry{{Offset: 1, Raw: credit.Encode()}})
	if err != nil || len(b.res.Outcomes) != 1 || b.res.Outcomes[0].OK || b.res.Outcomes[0].Reason != "not emitted" || len(b.res.Writes) != 0 {
		t.Fatalf("a refused credit: %+v %v", b, err)
	}
	e.CheckCredit = func(*tx.Tx) (string, error) { return "", boom }
	if _, err := e.run([]consensus.Entry{{Offset: 1, Raw: credit.Encode()}}); !errors.Is(err, boom) {
		t.Fatalf("CheckCredit's error: got %v", err)
	}
}

func TestReconcile(t *testing.T) {
	b := newExecFixture(t).run(t)
	hdr := consensus.Header{Shard: 0, Height: 5, TxCount: b.count(), TxRoot: b.txRoot()}
	if _, differ := reconcile(&hdr, b); differ {
		t.Fatal("the leader's own transactions differ")
	}
	leaders := hdr
	leaders.TxCount, leaders.TxRoot = 7, [32]byte{7}
	leaderTxs, differ := reconcile(&leaders, b)
	if !differ || leaderTxs != 7 || leaders != hdr {
		t.Fatalf("differ %v, leader's %d txs, header %+v, want %+v", differ, leaderTxs, leaders, hdr)
	}
	if b.count() != 4 || b.txRoot() != consensus.TxRoot([][32]byte{b.ids[0], b.ids[1], b.ids[2], b.ids[3]}) {
		t.Fatalf("count %d, tx root of another set", b.count())
	}
}

func TestCommitBatchAndSeal(t *testing.T) {
	b := newExecFixture(t).run(t)
	hdr := consensus.Header{Shard: 0, Height: 5, Parent: [32]byte{4}, FirstOffset: 20, NextOffset: 27, TxCount: b.count(), TxRoot: b.txRoot(), StateRoot: [32]byte{0xaa}}
	bc := commitBatch(&hdr, 41, b)
	if bc.Shard != 0 || bc.Height != 5 || bc.NextOffset != 27 || bc.BlockOffset != 42 {
		t.Fatalf("batch position %+v", bc)
	}
	if len(bc.Writes) != len(b.res.Writes) {
		t.Fatalf("%d writes, want %d", len(bc.Writes), len(b.res.Writes))
	}
	for i, w := range b.res.Writes {
		if !bytes.Equal(bc.Writes[i].Key, w.Key) || !bytes.Equal(bc.Writes[i].Value, w.Value) {
			t.Fatalf("write %d differs", i)
		}
	}

	hash := hdr.Hash()
	receipts := seal(bc, hash, &hdr, b)
	if bc.BlockHash != hash {
		t.Fatal("batch without the block hash")
	}
	if got, err := consensus.DecodeHeader(bc.Header); err != nil || got != hdr {
		t.Fatalf("stored header %+v (%v), want %+v", got, err, hdr)
	}
	if len(bc.Credits) != 1 || bc.Credits[0] != b.res.Credits[0].ID() {
		t.Fatalf("credits %x", bc.Credits)
	}
	if len(receipts) != len(b.ids) || len(bc.Txs) != len(b.ids) {
		t.Fatalf("%d receipts, %d stored, want %d", len(receipts), len(bc.Txs), len(b.ids))
	}
	for i, c := range receipts {
		want := p2p.Committed{ID: b.ids[i], Shard: 0, Height: 5, Index: uint32(i), Root: hdr.StateRoot}
		if o := b.res.Outcomes[i]; !o.OK {
			want.Status, want.Reason = p2p.StatusFailed, o.Reason
		}
		if !reflect.DeepEqual(c, want) {
			t.Fatalf("receipt %d: %+v, want %+v", i, c, want)
		}
		stored, err := p2p.DecodeCommitted(bc.Txs[i].Receipt)
		if err != nil || bc.Txs[i].ID != c.ID || stored.Status != c.Status || stored.Index != c.Index || stored.Root != c.Root || stored.Reason != c.Reason {
			t.Fatalf("stored receipt %d: %+v (%v), want %+v", i, stored, err, c)
		}
	}
	if receipts[3].Status != p2p.StatusFailed || receipts[0].Status != p2p.StatusOK {
		t.Fatal("the overdraft did not fail, or the put did")
	}
}
