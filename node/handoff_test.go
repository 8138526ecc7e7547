package node

import (
	"testing"

	"github.com/rustorium/rustorium/node/consensus"
)

func entriesAt(offsets ...int64) []consensus.Entry {
	out := make([]consensus.Entry, len(offsets))
	for i, o := range offsets {
		out[i] = consensus.Entry{Offset: o, Raw: []byte{byte(o)}}
	}
	return out
}

// TestHandoff: a range is taken once, only by its exact bounds and shard;
// ranges the replica passed are forgotten; malformed ranges are not kept;
// at most maxHandoffs are kept per shard, the newest.
func TestHandoff(t *testing.T) {
	h := newHandoff()
	h.put(0, 10, 13, entriesAt(10, 12)) // 11: a transaction marker, say
	h.put(0, 13, 15, entriesAt(13, 14))
	h.put(1, 10, 13, entriesAt(11, 12))
	if _, ok := h.take(0, 10, 14); ok {
		t.Fatal("took [10, 14) though only [10, 13) was handed over")
	}
	if _, ok := h.take(2, 10, 13); ok {
		t.Fatal("took shard 2's range from shard 0's")
	}
	es, ok := h.take(0, 10, 13)
	if !ok || len(es) != 2 || es[0].Offset != 10 || es[1].Offset != 12 {
		t.Fatalf("take(0, 10, 13) = %v, %v", es, ok)
	}
	if _, ok := h.take(0, 10, 13); ok {
		t.Fatal("took a range twice")
	}
	// A replica that read [13, 15) from the log asks for what follows:
	// the passed range goes.
	if _, ok := h.take(0, 15, 16); ok {
		t.Fatal("took a range never handed over")
	}
	if n := len(h.shards[0]); n != 0 {
		t.Fatalf("shard 0 keeps %d ranges it passed", n)
	}
	// Not the whole range (the last record is not at next-1), or nothing.
	h.put(0, 20, 23, entriesAt(20, 21))
	h.put(0, 20, 23, nil)
	h.put(0, 20, 23, entriesAt(19, 22))
	if n := len(h.shards[0]); n != 0 {
		t.Fatalf("kept %d malformed ranges", n)
	}
	for i := range int64(maxHandoffs + 3) {
		h.put(3, 100+i, 101+i, entriesAt(100+i))
	}
	if n := len(h.shards[3]); n != maxHandoffs {
		t.Fatalf("shard 3 keeps %d ranges, want %d", n, maxHandoffs)
	}
	if _, ok := h.take(3, 100, 101); ok {
		t.Fatal("the oldest range was kept beyond the bound")
	}
	if _, ok := h.take(3, 102+maxHandoffs, 103+maxHandoffs); !ok {
		t.Fatal("the newest range was not kept")
	}
}
