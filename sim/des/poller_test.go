package des

import (
	"slices"
	"testing"
)

// A process with two Ps: one long goroutine leaves a P to poll, two hold
// both, and a message then waits for the monitor's poll every PollPeriod
// from when they took the last P; when one ends, what waited arrives at
// once.
func TestPollerWaitsForTheMonitorWhileLongGoroutinesHoldEveryP(t *testing.T) {
	s := New(1)
	p := NewPoller(s, 2)
	var got []Time
	deliver := func(at Time) {
		s.At(at, func() { p.Deliver(func() { got = append(got, s.Now()) }) })
	}
	s.At(0, p.Hold)
	deliver(1 * Millisecond) // one long goroutine: at once
	s.At(2*Millisecond, p.Hold)
	deliver(3 * Millisecond)  // held since 2 ms: the poll at 12
	deliver(5 * Millisecond)  // the same poll
	deliver(13 * Millisecond) // the next, at 22
	s.At(25*Millisecond, p.Hold)
	deliver(26 * Millisecond)       // the poll at 32
	s.At(33*Millisecond, p.Release) // still two: held
	deliver(34 * Millisecond)
	s.At(36*Millisecond, p.Release) // one left: a P polls at once
	deliver(37 * Millisecond)
	s.RunUntil(Second, nil)
	ms := Millisecond
	want := []Time{1 * ms, 12 * ms, 12 * ms, 22 * ms, 32 * ms, 36 * ms, 37 * ms}
	if !slices.Equal(got, want) {
		t.Fatalf("delivered at %v, want %v", got, want)
	}
	if p.Held() {
		t.Fatal("held with one long goroutine on two Ps")
	}
}

// A link with a poller delivers through it; a release with nothing
// waiting, and more releases than holds, change nothing.
func TestLinkDeliversThroughItsPoller(t *testing.T) {
	s := New(1)
	p := NewPoller(s, 1)
	l := NewLink(s, 1, Impairment{Delay: Millisecond})
	l.SetPoller(p)
	var got []Time
	s.At(0, p.Hold)
	s.At(0, func() { l.Send(10, func() { got = append(got, s.Now()) }) })
	s.At(15*Millisecond, p.Release)
	s.At(16*Millisecond, p.Release)
	s.At(17*Millisecond, func() { l.Send(10, func() { got = append(got, s.Now()) }) })
	s.RunUntil(Second, nil)
	if want := []Time{10 * Millisecond, 18 * Millisecond}; !slices.Equal(got, want) {
		t.Fatalf("delivered at %v, want %v", got, want)
	}
}

// More long goroutines than Ps: what the monitor polled waits behind the
// one in the global queue, a time slice more.
func TestPollerWaitsASliceMoreBehindAWaitingLongGoroutine(t *testing.T) {
	s := New(1)
	p := NewPoller(s, 2)
	p.Slice = 10 * Millisecond
	var got []Time
	s.At(0, func() { p.Hold(); p.Hold() })
	s.At(1*Millisecond, func() { p.Deliver(func() { got = append(got, s.Now()) }) }) // two on two Ps: the poll at 10
	s.At(11*Millisecond, p.Hold)
	s.At(12*Millisecond, func() { p.Deliver(func() { got = append(got, s.Now()) }) }) // three: the poll at 20, behind a slice
	s.At(35*Millisecond, p.Release)
	s.At(36*Millisecond, func() { p.Deliver(func() { got = append(got, s.Now()) }) }) // two again: the poll at 40
	s.RunUntil(Second, nil)
	ms := Millisecond
	if want := []Time{10 * ms, 30 * ms, 40 * ms}; !slices.Equal(got, want) {
		t.Fatalf("delivered at %v, want %v", got, want)
	}
}
