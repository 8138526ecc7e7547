// Package des is a deterministic discrete-event simulation core: a virtual
// clock with an event heap (equal times run in scheduling order, by a
// sequence number), FIFO multi-server queues (Server; a long goroutine's
// time slices wait for an idle server behind the jobs, Hog, and its load
// is read over the last period, Load, or about the last second, MeanLoad)
// and network links (Link) with delay, jitter, loss and retransmission,
// bandwidth with a queue, and partitions, and a Go process's network
// poller (Poller), which holds a link's deliveries while long goroutines
// hold every P. It has no goroutines and reads no clock: the
// caller drives it with Run, and the same inputs and seed give the same
// events in the same order.
package des

import (
	"math/rand/v2"
)

// Time is virtual time in nanoseconds from the start of the simulation.
type Time int64

// Common durations in Time units.
const (
	Nanosecond  Time = 1
	Microsecond Time = 1000
	Millisecond Time = 1000 * Microsecond
	Second      Time = 1000 * Millisecond
)

type event struct {
	at  Time
	seq uint64
	fn  func()
}

// Scheduler is the virtual clock and its queue of events. The zero value is
// not usable; call New. Not safe for concurrent use.
type Scheduler struct {
	now    Time
	seq    uint64
	q      []event
	rng    *rand.Rand
	events uint64
}

// New returns a scheduler at time 0 whose random source is PCG seeded with
// seed.
func New(seed uint64) *Scheduler {
	return &Scheduler{rng: rand.New(rand.NewPCG(seed, 0x5eed_5eed_5eed_5eed))}
}

// Now is the current virtual time.
func (s *Scheduler) Now() Time { return s.now }

// Rand is the scheduler's seeded random source: every random decision of a
// simulation draws from it (or from sources seeded from it) in event order.
func (s *Scheduler) Rand() *rand.Rand { return s.rng }

// Events is the number of events run so far.
func (s *Scheduler) Events() uint64 { return s.events }

// Pending is the number of events waiting.
func (s *Scheduler) Pending() int { return len(s.q) }

// At schedules fn at time t (now if t is in the past). Events at the same
// time run in the order they were scheduled.
func (s *Scheduler) At(t Time, fn func()) {
	if t < s.now {
		t = s.now
	}
	s.seq++
	s.q = append(s.q, event{at: t, seq: s.seq, fn: fn})
	s.up(len(s.q) - 1)
}

// After schedules fn d from now.
func (s *Scheduler) After(d Time, fn func()) { s.At(s.now+d, fn) }

// Step runs the earliest event and reports whether there was one.
func (s *Scheduler) Step() bool {
	if len(s.q) == 0 {
		return false
	}
	e := s.q[0]
	last := len(s.q) - 1
	s.q[0] = s.q[last]
	s.q[last] = event{}
	s.q = s.q[:last]
	if last > 0 {
		s.down(0)
	}
	s.now = e.at
	s.events++
	e.fn()
	return true
}

// RunUntil runs every event at or before t, then sets the clock to t.
// stop, if not nil, is polled every 4096 events; when it returns true
// RunUntil returns false at once (the caller's context ended).
func (s *Scheduler) RunUntil(t Time, stop func() bool) bool {
	for len(s.q) > 0 && s.q[0].at <= t {
		s.Step()
		if stop != nil && s.events&4095 == 0 && stop() {
			return false
		}
	}
	if t > s.now {
		s.now = t
	}
	return true
}

func less(a, b *event) bool { return a.at < b.at || (a.at == b.at && a.seq < b.seq) }

// The queue is a 4-ary heap: shallower than a binary one, fewer cache
// misses per event.
func (s *Scheduler) up(i int) {
	e := s.q[i]
	for i > 0 {
		p := (i - 1) / 4
		if !less(&e, &s.q[p]) {
			break
		}
		s.q[i] = s.q[p]
		i = p
	}
	s.q[i] = e
}

func (s *Scheduler) down(i int) {
	n := len(s.q)
	e := s.q[i]
	for {
		c := 4*i + 1
		if c >= n {
			break
		}
		m := c
		for k := c + 1; k < c+4 && k < n; k++ {
			if less(&s.q[k], &s.q[m]) {
				m = k
			}
		}
		if !less(&s.q[m], &e) {
			break
		}
		s.q[i] = s.q[m]
		i = m
	}
	s.q[i] = e
}
