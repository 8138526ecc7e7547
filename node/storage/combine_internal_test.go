package storage

import (
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
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

// TestExpect (in a synctest bubble: its clock moves only when every
// goroutine waits): a Prepare waits for the block another shard expects,
// and the two are prepared in one batch; an expectation that is never met
// holds a batch CombineWait at most; one for a height already prepared is
// not awaited.
func TestExpect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const wait = 50 * time.Millisecond
		d, err := Open("s", Options{FS: vfs.NewMem(), CombineWait: wait})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		block := func(shard uint32, h uint64) *BlockCommit {
			return &BlockCommit{Shard: shard, Height: h, Writes: []Write{{Key: []byte{byte(shard), byte(h)}, Value: []byte("v")}}}
		}
		prepare := func(c *BlockCommit) <-chan error {
			done := make(chan error, 1)
			go func() {
				_, err := d.Prepare(c)
				done <- err
			}()
			return done
		}

		// Shard 1's block 1 is expected: shard 0's Prepare waits for it.
		d.Expect(1, 1)
		start := time.Now()
		first := prepare(block(0, 1))
		synctest.Wait()
		select {
		case err := <-first:
			t.Fatalf("shard 0's Prepare returned (%v) while shard 1's expected block had not come", err)
		default:
		}
		second := prepare(block(1, 1))
		if err := <-first; err != nil {
			t.Fatal(err)
		}
		if err := <-second; err != nil {
			t.Fatal(err)
		}
		if batches, blocks := d.PrepareBatches(); batches != 1 || blocks != 2 {
			t.Fatalf("%d batches of %d blocks, want 1 of 2 (the two blocks together)", batches, blocks)
		}
		if waited := time.Since(start); waited != 0 {
			t.Fatalf("waited %v, want no time (the expected block came at once)", waited)
		}

		// An expectation never met holds the batch CombineWait.
		d.Expect(2, 1)
		start = time.Now()
		if err := <-prepare(block(0, 1)); err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited != wait {
			t.Fatalf("waited %v for a block that never came, want CombineWait %v", waited, wait)
		}

		// An expectation of a block already prepared is moot; a later
		// Prepare does not wait for it.
		d.Expect(1, 1)
		start = time.Now()
		if err := <-prepare(block(0, 1)); err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited != 0 {
			t.Fatalf("waited %v for a block prepared before it was expected", waited)
		}
	})
}
