package bench

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rustorium/rustorium/loadgen"
	"github.com/rustorium/rustorium/node"
	"github.com/rustorium/rustorium/node/consensus"
	"github.com/rustorium/rustorium/node/p2p"
	"github.com/rustorium/rustorium/node/tx"
)

func block(shard uint32, height uint64, ids ...tx.ID) node.BlockEvent {
	return node.BlockEvent{Header: consensus.Header{Shard: shard, Height: height, TxCount: uint32(len(ids))}, IDs: ids}
}

// TestCheckerVerdict: the checker finds a lost, a duplicated and a
// receipt-less duplicated transaction from what clients were told and what
// the nodes' blocks held, counts a block every node commits once, and
// flags a node that commits a different block at the same height.
func TestCheckerVerdict(t *testing.T) {
	c := newChecker()
	for _, id := range []tx.ID{{1}, {2}, {3}} {
		c.onAccepted(p2p.Accepted{ID: id})
	}
	now := time.Now()
	for _, n := range []string{"node-1", "node-2", "node-3"} {
		c.onBlock(n, block(0, 1, tx.ID{1}, tx.ID{2}), now)
		c.onBlock(n, block(0, 2, tx.ID{2}, tx.ID{9}, tx.ID{9}), now) // 2 again; 9 twice, never accepted
	}
	if got := c.missing(); got != 1 {
		t.Fatalf("missing %d, want 1 (tx 3)", got)
	}
	v := c.verdict(nil)
	if v.Accepted != 3 || v.Committed != 2 || v.Lost != 1 || v.Duplicated != 2 || v.Divergent != 0 || v.Passed() {
		t.Fatalf("verdict %+v", v)
	}

	ok := newChecker()
	ok.onAccepted(p2p.Accepted{ID: tx.ID{1}})
	ok.onBlock("node-1", block(1, 1, tx.ID{1}), now)
	ok.onBlock("node-2", block(1, 1, tx.ID{1}), now)
	if v := ok.verdict(nil); !v.Passed() || v.Lost != 0 || v.Duplicated != 0 || v.Committed != 1 {
		t.Fatalf("clean verdict %+v", v)
	}
	// node-3 commits another block at shard 1, height 1.
	ok.onBlock("node-3", block(1, 1, tx.ID{1}, tx.ID{4}), now)
	v = ok.verdict(nil)
	if v.Divergent != 1 || v.Passed() || v.Duplicated != 0 {
		t.Fatalf("divergent verdict %+v", v)
	}
	if notes := strings.Join(v.Notes, "\n"); !strings.Contains(notes, "shard 1 height 1: node-3") {
		t.Fatalf("notes do not name the divergent node: %s", notes)
	}
}

// TestCheckerReadsAgainstHistory: a read whose root a committed block (or
// a node's tip at the start) had passes; one naming a root no block had —
// a value of a state never committed — fails the run, named in a note.
func TestCheckerReadsAgainstHistory(t *testing.T) {
	c := newChecker()
	ev := block(0, 1)
	ev.Header.StateRoot = [32]byte{0xaa}
	c.onBlock("node-1", ev, time.Now())
	c.history[[32]byte{0xbb}] = 0 // as tips adds a pre-run root
	c.read([32]byte{0xaa})
	c.read([32]byte{0xaa})
	c.read([32]byte{0xbb})
	if v := c.verdict(nil); v.ReadsChecked != 3 || v.ReadsOffHistory != 0 || !v.Passed() {
		t.Fatalf("reads of committed roots: %+v", v)
	}
	c.read([32]byte{0xcc})
	v := c.verdict(nil)
	if v.ReadsChecked != 3 || v.ReadsOffHistory != 1 || v.Passed() {
		t.Fatalf("a read of an uncommitted root: %+v", v)
	}
	if notes := strings.Join(v.Notes, "\n"); !strings.Contains(notes, "cc00000000000000 (1 reads)") {
		t.Fatalf("notes do not name the root: %s", notes)
	}

	r := newChecker()
	r.fromReceipts = true
	r.read([32]byte{0xcc})
	if v := r.verdict(nil); v.ReadsOffHistory != 0 || !strings.Contains(strings.Join(v.Notes, ""), "reads not checked") {
		t.Fatalf("receipts-only run: %+v", v)
	}
}

// TestCheckerStall: the fail-over time is the longest gap between a shard's
// blocks around the change; the catch-up time is when the restarted node
// reached the heights the cluster had when it restarted.
func TestCheckerStall(t *testing.T) {
	c := newChecker()
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	// Shard 0: a block every 10ms. Shard 1: every 10ms until 100ms, then
	// nothing until 900ms (its leader was killed at 100ms).
	for ms := 10; ms <= 1000; ms += 10 {
		c.onBlock("node-1", block(0, uint64(ms/10)), at(ms))
	}
	h := uint64(0)
	for ms := 10; ms <= 1000; ms += 10 {
		if ms > 100 && ms < 900 {
			continue
		}
		h++
		c.onBlock("node-1", block(1, h), at(ms))
	}
	f := c.stall(at(105), at(1000), 2)
	if f.MaxGapUs != 800_000 || f.Shards[1].MaxGapUs != 800_000 || f.Shards[1].FirstBlockUs != 795_000 {
		t.Fatalf("stall %+v", f)
	}
	if f.Shards[0].FirstBlockUs != 5000 || f.BaselineGapUs != 10_000 {
		t.Fatalf("stall %+v", f)
	}
	// Shard 2 never committed: stalled for the whole window.
	if f := c.stall(at(105), at(505), 3); f.Shards[2].MaxGapUs != 400_000 || f.Shards[2].FirstBlockUs != -1 {
		t.Fatalf("empty shard %+v", f.Shards[2])
	}
	// A window that ends before a shard's first block: stalled throughout.
	if f := c.stall(at(1), at(5), 1); f.Shards[0].MaxGapUs != 4000 || f.Shards[0].FirstBlockUs != 9000 {
		t.Fatalf("window before the first block %+v", f.Shards[0])
	}

	// node-2 restarts at 500ms holding heights 5 and 5; the cluster is at
	// 50 and 10 then. It replays and reaches both at 700ms.
	target := map[uint32]uint64{0: 50, 1: 10}
	for i := uint64(6); i <= 50; i++ {
		c.onBlock("node-2", block(0, i), at(500+int(i)*4)) // height 50 at 700ms
	}
	for i := uint64(6); i <= 10; i++ {
		c.onBlock("node-2", block(1, i), at(600))
	}
	if got := c.catchUp("node-2", at(500), target, map[uint32]uint64{0: 5, 1: 5}); got != "200ms" {
		t.Fatalf("catch-up %s, want 200ms", got)
	}
	if got := c.catchUp("node-2", at(500), map[uint32]uint64{0: 60}, nil); got != "not caught up" {
		t.Fatalf("catch-up %s", got)
	}
}

// indexView is a NodeView whose index holds the given transactions.
type indexView struct {
	tipView
	index map[tx.ID]uint32
}

func (v indexView) TxShard(id tx.ID) (uint32, bool, error) {
	s, ok := v.index[id]
	return s, ok, nil
}

// TestCheckerSpillsSettled: with settled transactions moved to disk every
// four, the checker still counts every one, finds a duplicate commit of one
// long settled (on disk), a lost one, and a settled one missing from the
// node's index.
func TestCheckerSpillsSettled(t *testing.T) {
	c := newChecker()
	c.settled = newSettledSet(4)
	defer c.close()
	now := time.Now()
	n := indexView{tipView: tipView{name: "node-1"}, index: map[tx.ID]uint32{}}
	full := indexView{tipView: tipView{name: "node-2"}, index: map[tx.ID]uint32{}}
	for i := range 40 {
		id := tx.ID{byte(i), 7}
		if i%2 == 0 { // the receipt before the block, and after it
			c.onAccepted(p2p.Accepted{ID: id, Shard: 1})
		}
		c.onBlock("node-1", block(1, uint64(i+1), id), now)
		if i%2 == 1 {
			c.onAccepted(p2p.Accepted{ID: id, Shard: 1})
		}
		if i != 5 {
			n.index[id] = 1
		}
		full.index[id] = 1
	}
	if c.settled.db == nil || len(c.settled.mem) >= 4 || c.settled.n != 40 || len(c.accepted)+len(c.committed) != 0 {
		t.Fatalf("settled: on disk %v, in memory %d, in all %d; unsettled %d accepted, %d committed",
			c.settled.db != nil, len(c.settled.mem), c.settled.n, len(c.accepted), len(c.committed))
	}
	c.onBlock("node-1", block(1, 41, tx.ID{0, 7}), now) // the first one, long on disk, again
	c.onAccepted(p2p.Accepted{ID: tx.ID{99}, Shard: 1}) // never committed
	v := c.verdict([]NodeView{n, full})
	if v.Accepted != 41 || v.Committed != 40 || v.Duplicated != 1 || v.Lost != 1 {
		t.Fatalf("verdict %+v", v)
	}
	if notes := strings.Join(v.Notes, "\n"); !strings.Contains(notes, "node-1: 1 committed transactions missing from its store index") {
		t.Fatalf("the settled transaction missing from the index is not noted: %s", notes)
	}
	dir := c.settled.dir
	if err := c.close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("the spill folder %s is still there: %v", dir, err)
	}
	if err := c.close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}

// TestVisiblePutAfterRewrite: a sampled put's read-back passes when the
// node shows its value, or when it shows the state of a block at or after
// the put's whatever the value (a later block rewrote the key: waiting for
// the put's own value would wait until the send timed out); a read of an
// older state keeps it waiting.
func TestVisiblePutAfterRewrite(t *testing.T) {
	c := newChecker()
	older, newer := block(0, 4), block(0, 6)
	older.Header.StateRoot, newer.Header.StateRoot = [32]byte{4}, [32]byte{6}
	c.onBlock("node-1", older, time.Now())
	c.onBlock("node-1", newer, time.Now())
	x := &tx.Tx{Kind: tx.KindPut, ChainID: 1, Key: []byte("k"), Value: []byte("mine")}
	x.Sign(signerOf(1))
	raw := x.Encode()
	com := p2p.Committed{ID: tx.IDOf(raw), Shard: 0, Height: 5}
	visible := visiblePut(c)
	reads := func(value string, root [32]byte) loadgen.GetFunc {
		return func(context.Context, []byte) (p2p.Value, error) {
			return p2p.Value{Found: true, Value: []byte(value), Root: root}, nil
		}
	}
	ctx, stop := context.WithTimeout(context.Background(), 10*time.Second) // a wrong wait fails, not hangs
	defer stop()
	if err := visible(ctx, reads("mine", [32]byte{6}), 0, raw, com); err != nil {
		t.Fatalf("the put's own value: %v", err)
	}
	if err := visible(ctx, reads("a later put's", [32]byte{6}), 0, raw, com); err != nil {
		t.Fatalf("another value at a later block's root: %v", err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := visible(short, reads("an earlier put's", [32]byte{4}), 0, raw, com); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("another value at an older block's root: %v, want to keep waiting until the context ends", err)
	}
}
