package storage

import (
	"sync"
	"time"
)

// groupQueue is the queue of a group-commit style batcher, shared by the
// combiner (Prepare) and the group commit (Commit): calls queue under mu;
// a call that finds no group under way leads one at once, the others wait
// for their turn, and when a group is done the first call still queued
// leads the next. A leader may first wait (await) for calls it expects.
type groupQueue[C any] struct {
	mu      sync.Mutex
	queue   []C
	leading bool // a group is under way
	// changed, while a leader waits for expected calls, is closed (and
	// cleared) when a call queues.
	changed chan struct{}
}

// turn is a queued call's wait for its group.
type turn struct {
	done chan struct{} // signalled once: the call's group ran, or lead is set
	lead bool          // woken to lead the next group (which has the call)
}

func newTurn() turn { return turn{done: make(chan struct{}, 1)} }

// enter queues c, whose turn is t, and waits for its turn; g.mu is held
// (the caller's bookkeeping of c done under it). It returns true with g.mu
// held when c is to lead a group, false (g.mu released) when c's group ran.
func (g *groupQueue[C]) enter(c C, t *turn) bool {
	g.queue = append(g.queue, c)
	if g.changed != nil {
		close(g.changed)
		g.changed = nil
	}
	if g.leading {
		g.mu.Unlock()
		<-t.done
		if !t.lead {
			return false
		}
		g.mu.Lock()
	}
	g.leading = true
	return true
}

// handOff ends a group (g.mu not held): the first call still queued leads
// the next one, or no group is under way.
func (g *groupQueue[C]) handOff(turnOf func(C) *turn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.queue) > 0 {
		t := turnOf(g.queue[0])
		t.lead = true
		t.done <- struct{}{} // never blocks: a turn is signalled once
		return
	}
	g.leading = false
}

// await waits, with g.mu held (released while waiting), until the time
// until returns is not in the future (zero: at once), asking it again each
// time a call queues or that time comes: a leader waits so for the calls
// it expects.
func (g *groupQueue[C]) await(until func(now time.Time) time.Time) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		now := time.Now()
		end := until(now)
		if !end.After(now) {
			return
		}
		if g.changed == nil {
			g.changed = make(chan struct{})
		}
		ch := g.changed
		g.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(end.Sub(now))
		} else {
			timer.Reset(end.Sub(now))
		}
		select {
		case <-ch:
		case <-timer.C:
		}
		g.mu.Lock()
	}
}
