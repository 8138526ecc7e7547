package sim

import "github.com/rustorium/rustorium/sim/des"

// A node's replicas prepare their blocks through one combiner, as
// storage.DB.Prepare does (node/storage/combine.go): a block that finds no
// batch under way leads one, with whatever else is queued, after waiting
// for the blocks expected on their way (at most combineWait from each
// expectation); blocks that come meanwhile queue, and the first of them
// leads the next batch when the current one is done. A batch holds at
// most one block of each shard. Its Merkle work is one goroutine's
// (storage.DB.PrepareMany), so it is one job on the node's cores: the
// blocks' costs one after the other, where until session 36 every block
// was a job of its own and a node's shards prepared in parallel. The
// blocks expected are those of a round the node's leader published
// (node/leader.go calls DB.Expect for each), which so prepare together.
//
// Modelled in tx mode; cohort mode, whose blocks are a window's
// transactions, prepares each block on its own as before.

// combiner is a node's Prepare combiner.
type combiner struct {
	busy    bool                   // a batch is under way, or its leader waits
	waiting int                    // the waiting leader's generation (0: none waits)
	gen     int                    // counts the waits, so that a stale timer does nothing
	queue   []prepCall             // blocks waiting for a batch, in order
	expect  map[uint32]expectation // blocks on their way, by shard
	seen    map[uint32]uint64      // the highest height of each shard that queued
}

// prepCall is a block waiting for its batch; done runs when the batch is
// done.
type prepCall struct {
	b    *block
	done func()
}

// expectation is a block expected to come: its height, and until when it
// is waited for.
type expectation struct {
	height uint64
	until  des.Time
}

// expect tells node n's combiner that a block of shard at height is on
// its way (storage.DB.Expect): a batch led until then waits for it, at
// most combineWait. A block of the shard at that height or above that
// queued already makes it moot.
func (e *engine) expect(n *node, shard uint32, height uint64) {
	c := &n.prep
	if h, ok := c.seen[shard]; ok && h >= height {
		return
	}
	if x, ok := c.expect[shard]; ok && x.height <= height {
		return // the lower one comes first
	}
	if c.expect == nil {
		c.expect = map[uint32]expectation{}
	}
	c.expect[shard] = expectation{height: height, until: e.s.Now() + combineWait}
}

// prepare queues block b's preparation (its execution and Merkle update)
// on node n's combiner; done runs when its batch is done.
func (e *engine) prepare(n *node, b *block, done func()) {
	c := &n.prep
	if c.seen == nil {
		c.seen = map[uint32]uint64{}
	}
	c.seen[b.shard] = max(c.seen[b.shard], b.height)
	if x, ok := c.expect[b.shard]; ok && x.height <= b.height {
		delete(c.expect, b.shard)
	}
	c.queue = append(c.queue, prepCall{b: b, done: done})
	switch {
	case c.waiting != 0:
		e.prepareBatch(n) // the waiting leader looks again
	case !c.busy:
		c.busy = true
		e.prepareBatch(n)
	}
}

// prepareBatch is the leader's turn: it waits while an expected block has
// not come (until the latest expectation ends), then prepares the first
// queued block of each shard as one job.
func (e *engine) prepareBatch(n *node) {
	c := &n.prep
	now := e.s.Now()
	var until des.Time
	for s, x := range c.expect {
		if x.until <= now {
			delete(c.expect, s)
			continue
		}
		until = max(until, x.until)
	}
	if until > now {
		if c.waiting == 0 {
			c.gen++
			c.waiting = c.gen
			gen, life := c.gen, n.life
			e.s.At(until, func() {
				if n.life == life && c.waiting == gen {
					e.prepareBatch(n)
				}
			})
		}
		return
	}
	c.waiting = 0
	var batch []prepCall
	rest := c.queue[:0]
	shards := map[uint32]bool{}
	var cost des.Time
	for _, call := range c.queue {
		if shards[call.b.shard] {
			rest = append(rest, call)
			continue
		}
		shards[call.b.shard] = true
		batch = append(batch, call)
		cost += e.k.execute(call.b.n, call.b.tree)
	}
	clear(c.queue[len(rest):])
	c.queue = rest
	life, start := n.life, e.s.Now()
	e.cpuOf(n).Do(cost, opExecute, func() {
		if extra := e.merkleExtra(cost, e.s.Now()-start); extra > 0 {
			e.s.After(extra, func() { e.prepared(n, life, batch) })
			return
		}
		e.prepared(n, life, batch)
	})
}

// merkleExtra is how long a Prepare batch waits beyond its time on the
// cores (took: its CPU cost and its wait for a core), on a shared host
// whose calibration measured the replica's Merkle update under load
// (calib.Calibration.MerkleExtraAt): the update yields its P between the
// tree's heights (merkle's hashAll) and each time waits behind what runs
// meanwhile, which the batch's one job on the cores does not show. The
// calibrated median holds the update's first wait for a core too, so the
// batch's own wait is taken off: it ends no sooner than the calibrated
// update at the load now after it asked for a core. 0 without those
// points, off a shared host, and in cohort mode.
func (e *engine) merkleExtra(cost, took des.Time) des.Time {
	if !e.merkleWay {
		return 0
	}
	v, _ := e.k.c.MerkleExtraAt(e.curveLoad(), float64(cost))
	return max(ns(v)-(took-cost), 0)
}

// prepared ends node n's Prepare batch: its blocks go on, and the next
// queued ones start theirs.
func (e *engine) prepared(n *node, life int, batch []prepCall) {
	c := &n.prep
	if n.life != life {
		return
	}
	for _, call := range batch {
		call.done()
	}
	if len(c.queue) > 0 {
		e.prepareBatch(n)
	} else {
		c.busy = false
	}
}
