package bench

import (
	"testing"

	"github.com/rustorium/rustorium/node"
	"github.com/rustorium/rustorium/node/p2p"
	"github.com/rustorium/rustorium/node/tx"
)

// TestCheckerVerdict: the checker finds a lost, a duplicated and a
// receipt-less duplicated transaction from what clients were told and what
// the node's blocks held.
func TestCheckerVerdict(t *testing.T) {
	c := newChecker()
	for _, id := range []tx.ID{{1}, {2}, {3}} {
		c.onAccepted(p2p.Accepted{ID: id})
	}
	c.onBlock(node.BlockEvent{IDs: []tx.ID{{1}, {2}}})
	c.onBlock(node.BlockEvent{IDs: []tx.ID{{2}, {9}, {9}}}) // 2 again; 9 twice, never accepted
	if got := c.missing(); got != 1 {
		t.Fatalf("missing %d, want 1 (tx 3)", got)
	}
	v := c.verdict(nil)
	if v.Accepted != 3 || v.Committed != 2 || v.Lost != 1 || v.Duplicated != 2 || v.Passed() {
		t.Fatalf("verdict %+v", v)
	}
	ok := newChecker()
	ok.onAccepted(p2p.Accepted{ID: tx.ID{1}})
	ok.onBlock(node.BlockEvent{IDs: []tx.ID{{1}}})
	if v := ok.verdict(nil); !v.Passed() || v.Lost != 0 || v.Duplicated != 0 {
		t.Fatalf("clean verdict %+v", v)
	}
}
