// Package wakeup sleeps until a deadline with sub-millisecond precision,
// for the load generator's pacer.
//
// A Go timer fires when the runtime next looks at its timers. In a busy
// process that is soon; in an idle one the runtime waits for them in
// epoll_wait, whose timeout is whole milliseconds (runtime/netpoll_epoll.go:
// any wait under 1 ms takes 1 ms, and 1.5 ms takes 1 ms and then 1 more).
// A pacer sleeping on one at 300 sends a second (`make run`'s scenario at
// that rate) sent each 0.58 ms late at the median and 1.15 ms at the p99,
// and every latency measured from the intended send time carried it; at
// 1000 a second, whose waits fall just under a millisecond, 0.54 and 1.09.
//
// On Linux a Timer takes sleeps of MinPrecise or more on a timerfd that the
// runtime's netpoller watches: the kernel's high-resolution timer wakes the
// poller when it fires (an idle 1.3 ms sleep: 47 µs late at the median,
// 122 at the p99, against 917 and 1097 on a Go timer; BenchmarkLateness). The
// sleep ends at whichever of the timerfd and the Go timer of its read
// deadline comes first, so a busy process, where the Go timer is the
// quicker, loses nothing.
//
// A timerfd wake-up costs system calls a Go timer does not (on this
// project's 2-core VM a pacer waking on it for every send took 30% of a
// core at 5000 sends a second, against 5% on a Go timer), and buys nothing
// where the runtime checks its timers on time anyway. So a Timer watches
// which timer ends its sleeps: after CoarseAfter precise sleeps in a row
// that the Go timer ended first (the process is busy), it sleeps on the Go
// timer alone, until one such sleep ends more than LateLimit late (the
// process went idle), and then on the timerfd again. Sleeps under
// MinPrecise, and every sleep elsewhere or when no timerfd can be made, use
// a Go timer.
package wakeup

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by Sleep after Close.
var ErrClosed = errors.New("wakeup: timer closed")

// Tuning of a Timer's choice between its timerfd and its Go timer.
const (
	// MinPrecise is the shortest sleep a Timer takes on its timerfd: a
	// pacer's wait between sends at up to 10000 a second. Shorter waits
	// mean a generator whose cost per send matters more than a
	// millisecond's lateness of the few sends it makes while idle; they
	// use a Go timer, which wakes at least on the millisecond and sends
	// whatever is due.
	MinPrecise = 100 * time.Microsecond
	// CoarseAfter is how many sleeps in a row on the timerfd must end on
	// the Go timer of their deadline first (the runtime checked its
	// timers before the netpoller saw the timerfd: the process is busy)
	// before the Timer sleeps on the Go timer alone.
	CoarseAfter = 8
	// LateLimit is how late a sleep on the Go timer alone may end before
	// the Timer goes back to its timerfd: an idle process's Go timer ends
	// 0.5 ms late at the median, a busy one's a few microseconds.
	LateLimit = 250 * time.Microsecond
)

// Timer sleeps one goroutine at a time. Make one with New; Close it when
// done.
type Timer struct {
	fd     sleeper // the timerfd; nil: none on this system
	g      sleeper // the Go timer
	now    func() time.Time
	closed atomic.Bool

	// Which timer sleeps, touched only by the one sleeping goroutine.
	coarse   bool // on the Go timer alone
	goFirsts int  // sleeps in a row on the timerfd that the Go timer ended
}

// sleeper is one of a Timer's timers.
type sleeper interface {
	// sleep waits d (> 0) or until ctx is done, whichever is first, and
	// returns nil after d. precise reports that the timerfd ended the
	// sleep, not the Go timer of its deadline (always false for the Go
	// timer).
	sleep(ctx context.Context, d time.Duration) (precise bool, err error)
	close() error
}

// New returns a Timer: on Linux with a timerfd watched by the netpoller
// (one file descriptor until Close) for sleeps of MinPrecise or more,
// falling back to a Go timer when the timerfd cannot be made; elsewhere a
// Go timer.
func New() *Timer {
	t := &Timer{g: newGoTimer(), now: time.Now}
	if s, err := newFD(); err == nil {
		t.fd = s
	}
	return t
}

// Sleep returns nil once d has passed (at once when d <= 0 and ctx is not
// done), never before; ctx's error when ctx is done first; ErrClosed after
// Close.
func (t *Timer) Sleep(ctx context.Context, d time.Duration) error {
	if t.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	if t.fd == nil || d < MinPrecise {
		_, err := t.g.sleep(ctx, d)
		return err
	}
	if t.coarse {
		start := t.now()
		_, err := t.g.sleep(ctx, d)
		if err == nil && t.now().Sub(start)-d > LateLimit {
			t.coarse, t.goFirsts = false, 0
		}
		return err
	}
	precise, err := t.fd.sleep(ctx, d)
	switch {
	case err != nil:
	case precise:
		t.goFirsts = 0
	default:
		if t.goFirsts++; t.goFirsts >= CoarseAfter {
			t.coarse = true
		}
	}
	return err
}

// Close releases the timer's file descriptor. It is safe to call more than
// once; a Sleep under way ends with ErrClosed.
func (t *Timer) Close() error {
	if !t.closed.CompareAndSwap(false, true) {
		return nil
	}
	t.g.close()
	if t.fd == nil {
		return nil
	}
	return t.fd.close()
}

// goTimer is the portable sleeper.
type goTimer struct {
	t    *time.Timer
	done chan struct{} // closed by close
}

func newGoTimer() *goTimer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &goTimer{t: t, done: make(chan struct{})}
}

func (g *goTimer) sleep(ctx context.Context, d time.Duration) (bool, error) {
	g.t.Reset(d)
	select {
	case <-g.t.C:
		return false, nil
	case <-ctx.Done():
		g.t.Stop()
		return false, ctx.Err()
	case <-g.done:
		g.t.Stop()
		return false, ErrClosed
	}
}

// close ends a sleep under way; Timer.Close calls it once.
func (g *goTimer) close() error {
	close(g.done)
	return nil
}
