package loadgen

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"testing"

	"github.com/rustorium/rustorium/node/tx"
)

// TestTransfers: each sender's nonces count up from 0 in generation order,
// nobody pays themselves, every transaction is signed by its sender and
// valid, and the same seed gives the same transactions.
func TestTransfers(t *testing.T) {
	accounts := AccountKeys(7, 20)
	gen := func() [][]byte {
		keys, err := NewKeys("zipf", 1.3, uint64(len(accounts)), 7)
		if err != nil {
			t.Fatal(err)
		}
		tr := &Transfers{ChainID: 3, Accounts: accounts, Keys: keys, Amount: 2, Seed: 7}
		txs, err := tr.Generate(context.Background(), 500, nil)
		if err != nil {
			t.Fatal(err)
		}
		return txs
	}
	a, b := gen(), gen()
	next := map[string]uint64{}
	for i, raw := range a {
		if !bytes.Equal(raw, b[i]) {
			t.Fatalf("tx %d differs between two generations with one seed", i)
		}
		x, err := tx.Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := x.Validate(3); err != nil {
			t.Fatalf("tx %d: %v", i, err)
		}
		if x.Kind != tx.KindTransfer || x.Amount != 2 || bytes.Equal(x.From, x.To[:]) {
			t.Fatalf("tx %d: %+v", i, x)
		}
		if x.Nonce != next[string(x.From)] {
			t.Fatalf("tx %d: nonce %d, want %d", i, x.Nonce, next[string(x.From)])
		}
		next[string(x.From)]++
	}
	// zipf: the first account sends the most.
	top := next[string(accounts[0].Public().(ed25519.PublicKey))]
	for _, k := range accounts[1:] {
		if n := next[string(k.Public().(ed25519.PublicKey))]; n > top {
			t.Fatalf("account 0 sent %d, another sent %d: not zipf", top, n)
		}
	}
	if _, err := (&Transfers{Accounts: accounts[:1]}).Generate(context.Background(), 1, nil); err == nil {
		t.Fatal("transfers with one account")
	}
}
