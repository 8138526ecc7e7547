// Package workers runs tasks at once on goroutines that outlive them.
//
// A goroutine started for one task begins on a small stack and grows it,
// copying it each time, as the task goes deeper (a QUIC stream's read, a
// signature check); a worker keeps the stack it grew for its next task. A
// Pool never queues a task behind a busy worker: it hands the task to an
// idle worker if one waits, and starts a new one if none does, so a pool
// bounds its idle goroutines, not its busy ones (the caller bounds those:
// the node's connection and stream limits, the load generator's in-flight
// bound).
package workers

import (
	"sync"
	"sync/atomic"
)

// Pool runs tasks of type T with one function. Go and Close are called
// from one goroutine, the pool's owner (a connection's accept loop, a load
// generator's pacer).
type Pool[T any] struct {
	run     func(T)
	maxIdle int32
	wg      *sync.WaitGroup
	work    chan T       // unbuffered: a send succeeds only to an idle worker
	idle    atomic.Int32 // workers waiting on work, or about to
	closed  bool
}

// New returns a pool that runs run(t) for every t given to Go and keeps
// at most maxIdle workers waiting for the next task (zero or less: none,
// every task on a new goroutine). Every worker is counted on wg while it
// runs: the owner waits on wg after Close for the workers to end.
func New[T any](maxIdle int, wg *sync.WaitGroup, run func(T)) *Pool[T] {
	return &Pool[T]{run: run, maxIdle: int32(max(maxIdle, 0)), wg: wg, work: make(chan T)}
}

// Go runs run(t) now: on an idle worker, or on a new one when none is
// idle. It must not be called after Close.
func (p *Pool[T]) Go(t T) {
	select {
	case p.work <- t:
	default:
		p.wg.Add(1)
		go p.worker(t)
	}
}

// worker runs t, then the tasks it receives, until the pool closes or
// maxIdle others wait.
func (p *Pool[T]) worker(t T) {
	defer p.wg.Done()
	for {
		p.run(t)
		if p.idle.Add(1) > p.maxIdle {
			p.idle.Add(-1)
			return
		}
		var ok bool
		t, ok = <-p.work
		p.idle.Add(-1)
		if !ok {
			return
		}
	}
}

// Close ends the idle workers at once and the busy ones when their task
// returns. It is safe to call more than once.
func (p *Pool[T]) Close() {
	if !p.closed {
		p.closed = true
		close(p.work)
	}
}
