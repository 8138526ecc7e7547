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
// On Linux a Timer takes sleeps of MinPrecise or more on a timerfd that the
// runtime's netpoller watches: the kernel's high-resolution timer wakes the
// poller when it fires (an idle 1.3 ms sleep: 47 µs late at the median,
// 122 at the p99, against 917 and 1097 on a Go timer; BenchmarkLateness). The
// sleep ends at whichever of the timerfd and the Go timer of its read
// deadline comes first, so a busy process, where the Go timer is the
// quicker, loses nothing. Shorter sleeps use a Go timer. Elsewhere, or when
// no timerfd can be made, every sleep does.
//
// A busy process needs the timerfd too: Go runs a P's timers only when
// that P schedules, and an idle P's thread waits for them in epoll_wait
// on the whole millisecond, also while the timer's own P is in a system
// call (a WAL fdatasync). At 1000 sends a second in `make run`'s scenario,
// the process 60% busy, the pacer's waits just under a millisecond ended
// 0.34–0.40 ms late at the p90 and 0.92–1.34 ms at the p99 on a Go timer,
// 0.12–0.20 and 0.79–0.97 on the timerfd (session 44, four alternated runs
// each).
package wakeup

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by Sleep after Close.
var ErrClosed = errors.New("wakeup: timer closed")

// MinPrecise is the shortest sleep a Timer takes on its timerfd: the wait
// between sends up to 4000 a second. A wake-up there costs system calls
// (arming it, the poller's, the read) and a thread's wake-up, where a Go
// timer in an idle process wakes on the millisecond and the pacer sends
// what is due: on session 44's 2-core VM (BenchmarkSleepCPU) 29–32 µs of
// CPU a sleep against 12–18 for waits of 0.5–1 ms, and 24 against 6 for
// waits of 0.2 ms (12% of a core at 5000 sends a second against 3%).
// Until session 44 it was 1 ms, and 1000/s's waits fell just under it.
// Shorter waits mean a generator whose CPU a send matters more than the
// lateness of a few sends, and a busy process whose Go timers the runtime
// checks often.
const MinPrecise = 250 * time.Microsecond

// Timer sleeps one goroutine at a time. Make one with New; Close it when
// done.
type Timer struct {
	fd     sleeper // nil: none on this system
	g      sleeper // the Go timer
	closed atomic.Bool
}

// sleeper is one of a Timer's timers: its timerfd (Linux) or its Go timer.
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
