package storage

import (
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// groupCommit commits the synced Pebble batches of blocks that were
// prepared together (one PrepareMany: a leader's round, see combiner) as
// one batch with one WAL sync. Pebble groups the syncs of commits that
// queue while a sync is under way, but not those of commits that come one
// after another: the first block of a round reaches Commit while its
// siblings' replicas are still runnable, starts a sync alone, and the
// siblings share the next one — two syncs a round. Each fdatasync also
// holds one of the process's Ps for its whole length (Go hands a P in a
// system call to other work only when sysmon notices, which at this rate
// it mostly does not): a runtime trace of `make run` had the WAL syncing
// 39% of the time, 560 syncs a second for 633 blocks, and a third of the
// load generator's late timers waiting on a P held so.
//
// So a commit whose block has siblings still on their way waits for them,
// at most Options.CombineWait from the first of them (a sibling that never
// commits — its replica failed, the round was fenced — costs that wait
// once); calls that arrive while a group is under way queue, and the
// first of them leads the next group as soon as the current one is done.
// Without sync (Options.NoSync) there is nothing to share: commits go to
// Pebble directly.
type groupCommit struct {
	groupQueue[*commitCall]

	groups, batches atomic.Uint64 // Pebble commits made, and the blocks' batches they held
}

// commitCall is one block's batch on its way to Pebble.
type commitCall struct {
	b   *pebble.Batch
	r   *prepRound // nil: prepared alone
	err error
	turn
}

// prepRound is the blocks one PrepareMany prepared. Its fields are guarded
// by groupCommit.mu.
type prepRound struct {
	blocks  int       // prepared
	arrived int       // commits queued so far
	first   time.Time // when the first of them queued
}

// commit commits b (block prepared in round r, nil if alone) with wopts,
// in a group with its siblings and whatever else is queued; write runs the
// one Pebble commit (DB.write: failure accounting). Every call of a group
// gets the group's error.
func (g *groupCommit) commit(r *prepRound, b *pebble.Batch, wait time.Duration, write func(func() error) error, wopts *pebble.WriteOptions) error {
	call := &commitCall{b: b, r: r, turn: newTurn()}
	g.mu.Lock()
	if r != nil {
		if r.arrived == 0 {
			r.first = time.Now()
		}
		r.arrived++
	}
	if !g.enter(call, &call.turn) {
		return call.err
	}
	g.await(wait)
	group := g.queue
	g.queue = nil
	g.mu.Unlock()

	err := write(func() error {
		for _, c := range group {
			if c != call {
				if err := call.b.Apply(c.b, nil); err != nil {
					return err
				}
			}
		}
		return call.b.Commit(wopts)
	})
	g.groups.Add(1)
	g.batches.Add(uint64(len(group)))
	for _, c := range group {
		if c != call {
			c.err = err
			c.done <- struct{}{} // never blocks: a turn is signalled once
		}
	}
	g.handOff(func(c *commitCall) *turn { return &c.turn })
	return err
}

// await waits while a queued call's round has siblings still on their way,
// until wait after the first of them queued. g.mu is held (released while
// waiting).
func (g *groupCommit) await(wait time.Duration) {
	if wait <= 0 {
		return
	}
	g.groupQueue.await(func(now time.Time) (until time.Time) {
		for _, c := range g.queue {
			if r := c.r; r != nil && r.arrived < r.blocks {
				if end := r.first.Add(wait); end.After(now) && end.After(until) {
					until = end
				}
			}
		}
		return until
	})
}
