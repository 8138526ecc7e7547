package state

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"

	"github.com/rustorium/rustorium/node/tx"
)

type mapReader map[string][]byte

func (m mapReader) Get(k []byte) ([]byte, bool, error) {
	v, ok := m[string(k)]
	return v, ok, nil
}

func pub(b byte) ed25519.PublicKey {
	var s [32]byte
	s[0] = b
	return ed25519.NewKeyFromSeed(s[:]).Public().(ed25519.PublicKey)
}

func TestPutsLaterWins(t *testing.T) {
	var e Executor
	res, err := e.Execute(mapReader{}, []*tx.Tx{
		{Kind: tx.KindPut, Key: []byte("k"), Value: []byte("1")},
		{Kind: tx.KindPut, Key: []byte("k"), Value: []byte("2")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Writes) != 2 || string(res.Writes[1].Value) != "2" || !bytes.Equal(res.Writes[1].Key, PutKey([]byte("k"))) {
		t.Fatalf("writes %+v", res.Writes)
	}
	if !res.Outcomes[0].OK || !res.Outcomes[1].OK {
		t.Fatal("puts failed")
	}
}

func TestTransfers(t *testing.T) {
	alice, bob := pub(1), pub(2)
	var bobKey [32]byte
	copy(bobKey[:], bob)
	r := mapReader{string(AccountKey(alice)): Account{Balance: 100}.Encode()}
	e := Executor{Local: func(k []byte) bool { return !bytes.Equal(k, bob) || false }, Shard: 3, Height: 8}
	res, err := e.Execute(r, []*tx.Tx{
		{Kind: tx.KindTransfer, From: alice, To: bobKey, Amount: 30, Nonce: 0},
		{Kind: tx.KindTransfer, From: alice, To: bobKey, Amount: 30, Nonce: 0},  // replayed nonce
		{Kind: tx.KindTransfer, From: alice, To: bobKey, Amount: 500, Nonce: 1}, // too much
		{Kind: tx.KindTransfer, From: alice, To: bobKey, Amount: 70, Nonce: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	wantOK := []bool{true, false, false, true}
	for i, o := range res.Outcomes {
		if o.OK != wantOK[i] {
			t.Fatalf("tx %d: ok=%v (%s), want %v", i, o.OK, o.Reason, wantOK[i])
		}
	}
	last := res.Writes[len(res.Writes)-1]
	a, _ := DecodeAccount(last.Value)
	if !bytes.Equal(last.Key, AccountKey(alice)) || a.Balance != 0 || a.Nonce != 2 {
		t.Fatalf("alice after: %+v", a)
	}
	// Bob lives in another shard: two credits, 30 + 70, conserve the total.
	var credited uint64
	for _, c := range res.Credits {
		if c.Kind != tx.KindCredit || c.To != bobKey || c.SourceShard != 3 || c.SourceHeight != 8 {
			t.Fatalf("credit %+v", c)
		}
		credited += c.Amount
	}
	if len(res.Credits) != 2 || credited != 100 {
		t.Fatalf("credits %d totalling %d", len(res.Credits), credited)
	}
}

// TestNonceGaps: a transfer may skip nonces (one lost on its way leaves a
// gap) but never reuse one, even one it skipped.
func TestNonceGaps(t *testing.T) {
	alice, bob := pub(1), pub(2)
	var bobKey [32]byte
	copy(bobKey[:], bob)
	r := mapReader{string(AccountKey(alice)): Account{Balance: 100, Nonce: 3}.Encode()}
	var e Executor
	res, err := e.Execute(r, []*tx.Tx{
		{Kind: tx.KindTransfer, From: alice, To: bobKey, Amount: 1, Nonce: 2}, // below the account's
		{Kind: tx.KindTransfer, From: alice, To: bobKey, Amount: 1, Nonce: 5}, // gap: 3 and 4 skipped
		{Kind: tx.KindTransfer, From: alice, To: bobKey, Amount: 1, Nonce: 4}, // reordered after 5
		{Kind: tx.KindTransfer, From: alice, To: bobKey, Amount: 1, Nonce: 6},
	})
	if err != nil {
		t.Fatal(err)
	}
	wantOK := []bool{false, true, false, true}
	for i, o := range res.Outcomes {
		if o.OK != wantOK[i] {
			t.Fatalf("tx %d: ok=%v (%s), want %v", i, o.OK, o.Reason, wantOK[i])
		}
	}
	var a Account
	for _, w := range res.Writes {
		if bytes.Equal(w.Key, AccountKey(alice)) {
			a, _ = DecodeAccount(w.Value)
		}
	}
	if a.Nonce != 7 || a.Balance != 98 {
		t.Fatalf("alice after: %+v, want nonce 7 balance 98", a)
	}
}

func TestLocalTransferAndCredit(t *testing.T) {
	alice, bob := pub(1), pub(2)
	var bobKey [32]byte
	copy(bobKey[:], bob)
	r := mapReader{string(AccountKey(alice)): Account{Balance: 10}.Encode()}
	var e Executor
	res, err := e.Execute(r, []*tx.Tx{
		{Kind: tx.KindTransfer, From: alice, To: bobKey, Amount: 10},
		{Kind: tx.KindCredit, To: bobKey, Amount: 5},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Account{}
	for _, w := range res.Writes {
		got[string(w.Key)], _ = DecodeAccount(w.Value)
	}
	if got[string(AccountKey(bob))].Balance != 15 || got[string(AccountKey(alice))].Balance != 0 || len(res.Credits) != 0 {
		t.Fatalf("state %+v credits %d", got, len(res.Credits))
	}
}

// TestCheckCredit: a credit the check refuses fails with its reason and
// writes nothing; a check error stops the block.
func TestCheckCredit(t *testing.T) {
	bob := pub(2)
	var bobKey [32]byte
	copy(bobKey[:], bob)
	r := mapReader{string(AccountKey(bob)): Account{Balance: 1}.Encode()}
	e := Executor{CheckCredit: func(c *tx.Tx) (string, error) {
		if c.Amount > 10 {
			return "too good to be true", nil
		}
		return "", nil
	}}
	res, err := e.Execute(r, []*tx.Tx{
		{Kind: tx.KindCredit, To: bobKey, Amount: 1000},
		{Kind: tx.KindCredit, To: bobKey, Amount: 4},
	})
	if err != nil {
		t.Fatal(err)
	}
	if o := res.Outcomes[0]; o.OK || o.Reason != "too good to be true" || o.Key != nil {
		t.Fatalf("refused credit: %+v", o)
	}
	if len(res.Writes) != 1 {
		t.Fatalf("%d writes, want the accepted credit's only", len(res.Writes))
	}
	if a, _ := DecodeAccount(res.Writes[0].Value); a.Balance != 5 {
		t.Fatalf("bob %d, want 5", a.Balance)
	}
	boom := errors.New("boom")
	e.CheckCredit = func(*tx.Tx) (string, error) { return "", boom }
	if _, err := e.Execute(r, []*tx.Tx{{Kind: tx.KindCredit, To: bobKey, Amount: 1}}); !errors.Is(err, boom) {
		t.Fatalf("check error: %v", err)
	}
}
