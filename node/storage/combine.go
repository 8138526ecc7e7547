package storage

import (
	"sync/atomic"
	"time"
)

// combiner batches the Prepare calls of different shards that overlap in
// time into one PrepareMany, group-commit style: a call that finds no batch
// under way leads one at once, with whatever else is queued; calls that
// arrive meanwhile queue, and the first of them leads the next batch as soon
// as the current one is done. When a node's shards get their blocks together
// (a leader publishes a round's blocks in one Kafka transaction, and they
// reach the shards' replicas at once), their Merkle updates and value hashes
// share Poseidon's eight-lane kernel calls instead of each hashing the one
// or two nodes of every tree level it has one at a time: with blocks of two
// puts on four shards, a third of the hashing time
// (merkle.BenchmarkApplyManySmall).
//
// A batch does not wait to fill, except for the Prepares expected to be on
// their way (DB.Expect: the shards of a round a leader published, a
// replica's shard once it has its block), at most Options.CombineWait: an
// unexpected lone block is prepared as soon as it comes.
//
// A batch holds at most one block of each shard: a second call for a shard
// in the batch waits for the next one, so concurrent Prepares of one shard
// behave as they would one by one.
type combiner struct {
	groupQueue[*prepareCall]
	// expect holds the blocks whose Prepare is on its way (Expect) by
	// shard, until when each is awaited; seen the highest height of each
	// shard that queued (so that an expectation that comes late is not
	// awaited).
	expect map[uint32]expected
	seen   map[uint32]uint64

	batches, blocks atomic.Uint64 // PrepareManys run, and the blocks they held
}

type prepareCall struct {
	c   *BlockCommit
	p   *Prepared
	err error
	turn
}

type expected struct {
	height uint64
	until  time.Time
}

// Expect tells the store that a Prepare of the block at height of shard is
// on its way: the block was published and is being read (a leader expects
// the blocks of the round it just published; a replica its own block once
// it has it). A batch of Prepares under way waits for it, at most
// Options.CombineWait from now, so that the blocks share their hashing. The
// expectation ends with a Prepare of the shard at that height or above, or
// when that time has passed; a block of the shard at that height or above
// already prepared (or queued) makes it moot.
func (d *DB) Expect(shard uint32, height uint64) {
	if d.opts.CombineWait <= 0 {
		return
	}
	until := time.Now().Add(d.opts.CombineWait)
	q := &d.prep
	q.mu.Lock()
	defer q.mu.Unlock()
	if h, ok := q.seen[shard]; ok && h >= height {
		return
	}
	if e, ok := q.expect[shard]; ok && e.height <= height {
		return // the lower one comes first: a shard's blocks are prepared in turn
	}
	if q.expect == nil {
		q.expect = make(map[uint32]expected)
	}
	q.expect[shard] = expected{height: height, until: until}
}

// prepare is d.PrepareMany of c and the calls that overlap it.
func (q *combiner) prepare(d *DB, c *BlockCommit) (*Prepared, error) {
	call := &prepareCall{c: c, turn: newTurn()}
	q.mu.Lock()
	if c != nil {
		if q.seen == nil {
			q.seen = make(map[uint32]uint64)
		}
		q.seen[c.Shard] = max(q.seen[c.Shard], c.Height)
		if e, ok := q.expect[c.Shard]; ok && e.height <= c.Height {
			delete(q.expect, c.Shard)
		}
	}
	if !q.enter(call, &call.turn) {
		return call.p, call.err
	}
	q.await()
	batch := q.take()
	q.mu.Unlock()

	cs := make([]*BlockCommit, len(batch))
	for i, b := range batch {
		cs[i] = b.c
	}
	ps, errs := d.PrepareMany(cs)
	q.batches.Add(1)
	q.blocks.Add(uint64(len(cs)))
	for i, b := range batch {
		b.p, b.err = ps[i], errs[i]
		if b != call {
			b.done <- struct{}{} // never blocks: a turn is signalled once
		}
	}
	q.handOff(func(c *prepareCall) *turn { return &c.turn })
	return call.p, call.err
}

// await waits while expected Prepares have not queued, until the latest
// of their expectations ends. q.mu is held (released while waiting).
func (q *combiner) await() {
	q.groupQueue.await(func(now time.Time) (until time.Time) {
		for s, e := range q.expect {
			if !e.until.After(now) {
				delete(q.expect, s)
				continue
			}
			if e.until.After(until) {
				until = e.until
			}
		}
		return until
	})
}

// take removes from the queue the first call of each shard (a nil block is
// its own), in order, and returns them. q.mu is held.
func (q *combiner) take() []*prepareCall {
	var (
		batch  []*prepareCall
		rest   = q.queue[:0]
		shards = make(map[uint32]bool, len(q.queue))
	)
	for _, call := range q.queue {
		if call.c != nil {
			if shards[call.c.Shard] {
				rest = append(rest, call)
				continue
			}
			shards[call.c.Shard] = true
		}
		batch = append(batch, call)
	}
	clear(q.queue[len(rest):])
	q.queue = rest
	return batch
}

// PrepareBatches returns how many batches Prepare computed blocks in
// (PrepareMany calls), and how many blocks those held: their ratio is how
// many shards' blocks a batch shared its hashing among, on average.
func (d *DB) PrepareBatches() (batches, blocks uint64) {
	return d.prep.batches.Load(), d.prep.blocks.Load()
}
