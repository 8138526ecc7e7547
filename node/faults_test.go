package node

import (
	"testing"

	"github.com/rustorium/rustorium/node/tx"
)

func TestFaults(t *testing.T) {
	var f Faults
	root := [32]byte{1}
	if got := f.attested(2, 3, root); got != root {
		t.Fatal("the zero Faults altered a root")
	}
	if f.seen(tx.ID{4}) {
		t.Fatal("the zero Faults saw a transaction")
	}
	f.SetAlterRoot(func(shard uint32, height uint64, r [32]byte) [32]byte {
		r[0], r[1], r[2] = byte(shard), byte(height), 0xff
		return r
	})
	f.SetSeenTx(func(id tx.ID) bool { return id == tx.ID{4} })
	if got := f.attested(2, 3, root); got != [32]byte{2, 3, 0xff} {
		t.Fatalf("altered root %x", got[:3])
	}
	if !f.seen(tx.ID{4}) || f.seen(tx.ID{5}) {
		t.Fatal("SetSeenTx's function not asked")
	}
	f.SetAlterRoot(nil)
	f.SetSeenTx(nil)
	if f.attested(2, 3, root) != root || f.seen(tx.ID{4}) {
		t.Fatal("nil did not clear the faults")
	}
}
