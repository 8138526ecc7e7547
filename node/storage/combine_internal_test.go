package storage

import (
	"slices"
	"testing"
)

// TestCombinerTake: a batch takes the first queued call of each shard, in
// order (a nil block counts as its own); the others stay queued, in order.
func TestCombinerTake(t *testing.T) {
	call := func(shard int) *prepareCall {
		if shard < 0 {
			return &prepareCall{}
		}
		return &prepareCall{c: &BlockCommit{Shard: uint32(shard)}}
	}
	shards := func(cs []*prepareCall) []int {
		var out []int
		for _, c := range cs {
			if c.c == nil {
				out = append(out, -1)
			} else {
				out = append(out, int(c.c.Shard))
			}
		}
		return out
	}
	var q combiner
	for _, s := range []int{1, 2, 1, 3, -1, 2, -1, 1} {
		q.queue = append(q.queue, call(s))
	}
	if got, want := shards(q.take()), []int{1, 2, 3, -1, -1}; !slices.Equal(got, want) {
		t.Fatalf("first batch: shards %v, want %v", got, want)
	}
	if got, want := shards(q.queue), []int{1, 2, 1}; !slices.Equal(got, want) {
		t.Fatalf("left queued: %v, want %v", got, want)
	}
	if got, want := shards(q.take()), []int{1, 2}; !slices.Equal(got, want) {
		t.Fatalf("second batch: %v, want %v", got, want)
	}
	if got, want := shards(q.take()), []int{1}; !slices.Equal(got, want) || len(q.queue) != 0 {
		t.Fatalf("third batch: %v, want %v (queue %d)", got, want, len(q.queue))
	}
}
