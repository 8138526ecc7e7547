// Package wakeup sleeps until a deadline with sub-millisecond precision,
// for the load generator's pacer.
//
// A Go timer fires when the runtime next looks at its timers. In a busy
// process that is soon; in an idle one the runtime waits for them in
// epoll_wait, whose timeout is whole milliseconds (runtime/netpoll_epoll.go:
// any wait under 1 ms takes 1 ms, and 1.5 ms takes 1 ms and then 1 more).
// A pacer sleeping on one at 300 sends a second (`make run`'s scenario at
// that rate) sent each 0.58 ms late at the median and 1.15 ms at the p99,
// and every latency measured from the intended send time carried it.
//
// On Linux a Timer takes sleeps of a millisecond or more on a timerfd that the
// runtime's netpoller watches: the kernel's high-resolution timer wakes the
// poller when it fires (an idle 1.3 ms sleep: 47 µs late at the median,
// 122 at the p99, against 917 and 1097 on a Go timer; BenchmarkLateness). The
// sleep ends at whichever of the timerfd and the Go timer of its read
// deadline comes first, so a busy process, where the Go timer is the
// quicker, loses nothing. Shorter sleeps use a Go timer (MinPrecise).
// Elsewhere, or when no timerfd can be made, every sleep does.
package wakeup

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by Sleep after Close.
var ErrClosed = errors.New("wakeup: timer closed")

// MinPrecise is the shortest sleep a Timer takes on its timerfd. A
// wake-up there costs a system call to arm it and one each from the
// poller, about 80 µs of CPU on this project's 2-core VM: a pacer waking
// for each send would take 40% of a core at 5000 sends a second and 80% at
// 20000, where one on a Go timer, which wakes on the millisecond and sends
// what is due, takes 8–9%. Sleeps between sends this short mean a busy
// generator, whose Go timers the runtime checks often.
const MinPrecise = time.Millisecond

// Timer sleeps one goroutine at a time. Make one with New; Close it when
// done.
type Timer struct {
	fd     sleeper // nil: none on this system
	g      *goTimer
	closed atomic.Bool
}

// sleeper is a Timer's timerfd (Linux).
type sleeper interface {
	// sleep waits d (> 0) or until ctx is done, whichever is first, and
	// returns nil after d.
	sleep(ctx context.Context, d time.Duration) error
	close() error
}

// New returns a Timer: on Linux with a timerfd watched by the netpoller
// (one file descriptor until Close) for sleeps of MinPrecise or more,
// falling back to a Go timer when the timerfd cannot be made; elsewhere a
// Go timer.
func New() *Timer {
	t := &Timer{g: newGoTimer()}
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
		return t.g.sleep(ctx, d)
	}
	return t.fd.sleep(ctx, d)
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

func (g *goTimer) sleep(ctx context.Context, d time.Duration) error {
	g.t.Reset(d)
	select {
	case <-g.t.C:
		return nil
	case <-ctx.Done():
		g.t.Stop()
		return ctx.Err()
	case <-g.done:
		g.t.Stop()
		return ErrClosed
	}
}

// close ends a sleep under way; Timer.Close calls it once.
func (g *goTimer) close() error {
	close(g.done)
	return nil
}
