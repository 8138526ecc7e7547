package node

import (
	"sync"

	"github.com/rustorium/rustorium/node/consensus"
)

// handoff carries the log records a leader on this node cut into a block to
// this node's replica of the shard, so that the replica need not read them
// back from the log: one Kafka fetch a block fewer, and the goroutine
// hand-offs of the Kafka client and the broker that come with it.
//
// It is keyed by the block's log range [first, next), not by the block: a
// transactions topic is read read_committed by the leader and the replica
// alike, so the records in a range below the partition's last stable
// offset are the same for every reader, whoever cut a block over that range
// and whether its round committed. A leader therefore leaves a block's
// records before it publishes the round; a round that aborts leaves
// entries for ranges no committed block may have, which later ranges push
// out. A replica that finds no entry for a block's range (a block another
// node cut, a leader that lost the shard, an entry pushed out) reads the
// range from the log as before.
//
// At most maxHandoffs ranges per shard are kept; the oldest goes first.
type handoff struct {
	mu     sync.Mutex
	shards map[uint32][]handedRange
}

// handedRange is one block's records, in offset order: every record of the
// transactions topic in [first, next), the last one at next-1.
type handedRange struct {
	first, next int64
	entries     []consensus.Entry
}

// maxHandoffs bounds the ranges kept per shard: twice the blocks a leader
// runs ahead of its replica, so that a replica a little behind still finds
// them, and the records of aborted rounds do not pile up.
const maxHandoffs = 2 * maxInflight

func newHandoff() *handoff { return &handoff{shards: map[uint32][]handedRange{}} }

// put leaves a block's records for the shard's replica. entries must be
// every record of the range, in offset order, ending at next-1; anything
// else is not kept.
func (h *handoff) put(shard uint32, first, next int64, entries []consensus.Entry) {
	if len(entries) == 0 || entries[0].Offset < first || entries[len(entries)-1].Offset != next-1 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	rs := append(h.shards[shard], handedRange{first: first, next: next, entries: entries})
	if len(rs) > maxHandoffs {
		rs = append(rs[:0], rs[len(rs)-maxHandoffs:]...)
	}
	h.shards[shard] = rs
}

// take returns and forgets the records of the shard's range [first, next),
// if a leader of this node left them. Ranges that end at or before first
// are forgotten too: the replica has passed them.
func (h *handoff) take(shard uint32, first, next int64) ([]consensus.Entry, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	rs := h.shards[shard]
	var out []consensus.Entry
	found := false
	kept := rs[:0]
	for _, r := range rs {
		switch {
		case r.next <= first:
		case !found && r.first == first && r.next == next:
			out, found = r.entries, true
		default:
			kept = append(kept, r)
		}
	}
	clear(rs[len(kept):]) // the records of dropped ranges are garbage now
	h.shards[shard] = kept
	return out, found
}
