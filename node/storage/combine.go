package storage

import "sync"

// combiner batches the Prepare calls of different shards that overlap in
// time into one PrepareMany, group-commit style: a call that finds no batch
// under way prepares at once, with whatever else is queued; calls that
// arrive meanwhile queue, and the first of them leads the next batch as soon
// as the current one is done. Nothing waits for a batch to fill, so a lone
// block is prepared as soon as it comes. When a node's shards get their
// blocks together (a leader publishes a round's blocks in one Kafka
// transaction, and they reach the shards' replicas at once), their Merkle
// updates and value hashes share Poseidon's eight-lane kernel calls instead
// of each hashing the one or two nodes of every tree level it has one at a
// time: with blocks of two puts on four shards, a third of the hashing
// time (merkle.BenchmarkApplyManySmall).
//
// A batch holds at most one block of each shard: a second call for a shard
// in the batch waits for the next one, so concurrent Prepares of one shard
// behave as they would one by one.
type combiner struct {
	mu      sync.Mutex
	queue   []*prepareCall
	leading bool // a batch is under way
}

type prepareCall struct {
	c    *BlockCommit
	p    *Prepared
	err  error
	done chan struct{} // signalled once: p and err are set, or lead is
	lead bool          // woken to lead the next batch (which has the call)
}

// prepare is d.PrepareMany of c and the calls that overlap it.
func (q *combiner) prepare(d *DB, c *BlockCommit) (*Prepared, error) {
	call := &prepareCall{c: c, done: make(chan struct{}, 1)}
	q.mu.Lock()
	q.queue = append(q.queue, call)
	if q.leading {
		q.mu.Unlock()
		<-call.done
		if !call.lead {
			return call.p, call.err
		}
		q.mu.Lock()
	}
	q.leading = true
	batch := q.take()
	q.mu.Unlock()

	cs := make([]*BlockCommit, len(batch))
	for i, b := range batch {
		cs[i] = b.c
	}
	ps, errs := d.PrepareMany(cs)
	for i, b := range batch {
		b.p, b.err = ps[i], errs[i]
		b.done <- struct{}{} // never blocks: each call is signalled once, its leader's signal unread
	}

	q.mu.Lock()
	if len(q.queue) > 0 {
		next := q.queue[0]
		next.lead = true
		next.done <- struct{}{}
	} else {
		q.leading = false
	}
	q.mu.Unlock()
	return call.p, call.err
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
