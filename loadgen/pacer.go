// Package loadgen generates load the way a latency benchmark must: open
// loop (sends go out on a schedule, whatever the system under test does),
// latency measured from each send's intended time (coordinated-omission
// correct) as well as from its actual time, sends that could not go out on
// time counted rather than skipped, and transactions pre-signed before the
// measured phase so signing never steals time from it. One Submitter and
// one Reader send over any TxConn: the native QUIC client (Conn) or a
// client of a node's REST, WebSocket or GraphQL API (NewAPIConn).
package loadgen

import (
	"fmt"
	"math"
	"time"
)

// Pacer is an open-loop schedule: a pure function of elapsed time and of the
// number of sends so far, with no clock or state of its own.
type Pacer interface {
	// At returns the intended send time of send i (0-based), from the start.
	At(i uint64) time.Duration
	// Due returns how many sends are due by elapsed: the number of i with
	// At(i) <= elapsed.
	Due(elapsed time.Duration) uint64
}

// Constant sends Rate times per second, evenly spaced.
type Constant struct {
	Rate float64 // per second, > 0
}

// At implements Pacer.
func (c Constant) At(i uint64) time.Duration {
	return time.Duration(float64(i) / c.Rate * float64(time.Second))
}

// Due implements Pacer.
func (c Constant) Due(elapsed time.Duration) uint64 {
	if elapsed < 0 {
		return 0
	}
	return settle(c, elapsed, elapsed.Seconds()*c.Rate)
}

// Ramp goes linearly from From to To sends per second over Over, then holds
// To. The cumulative count is the integral of the rate.
type Ramp struct {
	From, To float64 // per second, >= 0, not both 0
	Over     time.Duration
}

// count is the number of sends intended in [0, t] as a real number.
func (r Ramp) count(t float64) float64 {
	over := r.Over.Seconds()
	if t <= over {
		return r.From*t + (r.To-r.From)*t*t/(2*over)
	}
	return r.From*over + (r.To-r.From)*over/2 + r.To*(t-over)
}

// At implements Pacer: the t with count(t) = i.
func (r Ramp) At(i uint64) time.Duration { return r.at(float64(i)) }

// at is the t with count(t) = n.
func (r Ramp) at(n float64) time.Duration {
	over := r.Over.Seconds()
	atOver := r.count(over)
	var t float64
	if n <= atOver && over > 0 {
		a := (r.To - r.From) / (2 * over)
		if math.Abs(a) < 1e-12 {
			t = n / r.From
		} else {
			// a t² + From t - n = 0, positive root.
			t = (-r.From + math.Sqrt(r.From*r.From+4*a*n)) / (2 * a)
		}
	} else {
		t = over + (n-atOver)/r.To
	}
	return time.Duration(t * float64(time.Second))
}

// Due implements Pacer.
func (r Ramp) Due(elapsed time.Duration) uint64 {
	if elapsed < 0 {
		return 0
	}
	return settle(r, elapsed, r.count(elapsed.Seconds()))
}

// settle turns a closed-form count of sends due by elapsed into the exact
// Due: the number of i with p.At(i) <= elapsed, correcting float rounding
// at the boundaries by stepping from the estimate.
func settle(p Pacer, elapsed time.Duration, estimate float64) uint64 {
	n := uint64(math.Floor(estimate)) + 1
	for n > 0 && p.At(n-1) > elapsed {
		n--
	}
	for p.At(n) <= elapsed {
		n++
	}
	return n
}

// Validate reports a pacer that cannot send.
func Validate(p Pacer) error {
	switch p := p.(type) {
	case Constant:
		if !(p.Rate > 0) || math.IsInf(p.Rate, 0) {
			return fmt.Errorf("loadgen: rate %v must be positive and finite", p.Rate)
		}
	case Ramp:
		if p.From < 0 || p.To < 0 || p.From+p.To == 0 || p.Over <= 0 || (p.To == 0) {
			return fmt.Errorf("loadgen: ramp %v/s → %v/s over %v: rates must be ≥ 0, end rate > 0, duration > 0", p.From, p.To, p.Over)
		}
	}
	return nil
}
