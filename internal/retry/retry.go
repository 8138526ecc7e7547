// Package retry is the one place the code base waits before trying again:
// a capped exponential Backoff with jitter, Do to repeat an operation until
// it succeeds, Poll to wait for a condition, and Sleep, a pause that ends
// with its context. Every wait here ends as soon as the context does, so a
// stopping owner never waits out a backoff.
package retry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// ErrTimeout is returned by Poll when its condition did not hold in time.
var ErrTimeout = errors.New("retry: timed out")

// Backoff is a capped exponential backoff. The zero value is usable and
// waits 10ms, 20ms, 40ms, … up to 1s, without jitter. A Backoff is not safe
// for concurrent use; each retrying goroutine owns its own.
type Backoff struct {
	// Min is the first wait. Zero means 10ms.
	Min time.Duration
	// Max caps every wait. Zero means 1s.
	Max time.Duration
	// Factor multiplies the wait after each failure. Zero means 2.
	Factor float64
	// Jitter spreads each wait uniformly over ±Jitter of it (0.2: ±20%),
	// so that many clients that failed together do not retry together.
	// Zero means none; it is capped at 1.
	Jitter float64

	cur time.Duration // the next wait before jitter; 0: Min
}

// Next returns the wait before the next attempt and grows the one after.
func (b *Backoff) Next() time.Duration {
	lo, hi := b.Min, b.Max
	if lo <= 0 {
		lo = 10 * time.Millisecond
	}
	if hi <= 0 {
		hi = time.Second
	}
	hi = max(hi, lo)
	f := b.Factor
	if f < 1 {
		f = 2
	}
	d := min(max(b.cur, lo), hi)
	b.cur = min(time.Duration(float64(d)*f), hi)
	if j := min(b.Jitter, 1); j > 0 {
		d = time.Duration(float64(d) * (1 + j*(2*rand.Float64()-1)))
	}
	return d
}

// Reset makes the next wait Min again (after a success).
func (b *Backoff) Reset() { b.cur = 0 }

// Wait sleeps for Next, or until ctx ends (then it returns ctx's cause).
func (b *Backoff) Wait(ctx context.Context) error { return Sleep(ctx, b.Next()) }

// Sleep waits d, or until ctx ends: then it returns context.Cause(ctx).
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return context.Cause(ctx)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// permanent marks an error that Do must not retry.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent wraps err so that Do returns it at once instead of retrying.
// Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// Do calls op until it returns nil, returns an error wrapped by Permanent
// (Do returns the error inside), or ctx ends (Do returns op's last error
// joined with the context's cause). Between attempts it waits b's backoff.
// attempts bounds the number of calls; zero means no bound (then only ctx
// ends it), and when they are used up Do returns the last error.
func Do(ctx context.Context, b Backoff, attempts int, op func(ctx context.Context) error) error {
	for try := 1; ; try++ {
		err := op(ctx)
		if err == nil {
			return nil
		}
		if p, ok := errors.AsType[permanent](err); ok {
			return p.err
		}
		if attempts > 0 && try >= attempts {
			return err
		}
		if werr := b.Wait(ctx); werr != nil {
			return errors.Join(err, werr)
		}
	}
}

// Poll calls cond every interval until it reports true (Poll returns nil),
// returns an error (Poll returns it), timeout passes (ErrTimeout) or ctx
// ends (its cause). cond runs at once first; a zero timeout means only ctx
// bounds the wait.
func Poll(ctx context.Context, interval, timeout time.Duration, cond func() (bool, error)) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, timeout, fmt.Errorf("%w after %v", ErrTimeout, timeout))
		defer cancel()
	}
	for {
		done, err := cond()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		if err := Sleep(ctx, interval); err != nil {
			return err
		}
	}
}
