package loadgen

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rustorium/rustorium/internal/retry"
)

// TestOpenLoopKeepsSchedule: a slow system does not slow the sender down.
// Every send goes out at its intended time even though each takes 50x the
// gap between sends (synctest's fake clock makes this exact).
func TestOpenLoopKeepsSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		lags := map[uint64]time.Duration{}
		start := time.Now()
		o := &OpenLoop{Pacer: Constant{Rate: 1000}, Sleep: retry.Sleep}
		st := o.Run(context.Background(), start, 100*time.Millisecond, func(ctx context.Context, i uint64, intended time.Time) {
			mu.Lock()
			lags[i] = time.Since(intended)
			mu.Unlock()
			time.Sleep(50 * time.Millisecond)
		})
		if st.Started != 100 || st.Dropped != 0 {
			t.Fatalf("stats %+v, want 100 started", st)
		}
		for i, l := range lags {
			if l != 0 {
				t.Fatalf("send %d went out %v late", i, l)
			}
		}
		if got := time.Since(start); got != 149*time.Millisecond {
			t.Fatalf("run took %v, want last send at 99ms + 50ms", got)
		}
	})
}

// TestOpenLoopCountsDrops: with the in-flight bound reached, due sends are
// counted as dropped, not delayed.
func TestOpenLoopCountsDrops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var dropped atomic.Uint64
		o := &OpenLoop{Pacer: Constant{Rate: 1000}, Sleep: retry.Sleep, MaxInFlight: 10, OnDrop: func(uint64, time.Time) { dropped.Add(1) }}
		st := o.Run(context.Background(), time.Now(), 100*time.Millisecond, func(ctx context.Context, i uint64, intended time.Time) {
			time.Sleep(time.Second) // never finishes within the run
		})
		if st.Started != 10 || st.Dropped != 90 || dropped.Load() != 90 {
			t.Fatalf("stats %+v (callback %d), want 10 started, 90 dropped", st, dropped.Load())
		}
	})
}

func TestOpenLoopLimitAndFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var got []uint64
		var mu sync.Mutex
		o := &OpenLoop{Pacer: Constant{Rate: 100}, Limit: 5, First: 1000, Sleep: retry.Sleep}
		st := o.Run(context.Background(), time.Now(), time.Hour, func(ctx context.Context, i uint64, _ time.Time) {
			mu.Lock()
			got = append(got, i)
			mu.Unlock()
		})
		if st.Started != 5 || len(got) != 5 {
			t.Fatalf("started %d", st.Started)
		}
		for _, i := range got {
			if i < 1000 || i >= 1005 {
				t.Fatalf("index %d outside [1000, 1005)", i)
			}
		}
	})
}

// TestClosedLoopCalibrates: each worker sends only after its previous send
// completed, and the calibrated interval is the median cycle.
func TestClosedLoopCalibrates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var inflight, maxIn atomic.Int64
		c := &ClosedLoop{Clients: 2, Calibrate: 100 * time.Millisecond}
		st := c.Run(context.Background(), time.Now(), time.Second, func(ctx context.Context, i uint64, intended time.Time) {
			if n := inflight.Add(1); n > maxIn.Load() {
				maxIn.Store(n)
			}
			if !intended.Equal(time.Now()) {
				t.Errorf("closed-loop send %d intended %v, not now", i, intended)
			}
			time.Sleep(10 * time.Millisecond)
			inflight.Add(-1)
		})
		if maxIn.Load() != 2 {
			t.Fatalf("max in flight %d, want 2 (one per client)", maxIn.Load())
		}
		if st.Started != 200 {
			t.Fatalf("started %d, want 2 clients × 100 cycles of 10ms", st.Started)
		}
		if got := c.Expected(); got != 10*time.Millisecond {
			t.Fatalf("expected interval %v, want 10ms", got)
		}
	})
}

// TestClosedLoopCalibrationIgnoresColdStart: the first sends of a run can
// be slow (leader election, topic creation). They must not set the
// expected interval, or a later stall goes uncorrected: with the mean, one
// 600ms first send among 10ms cycles made it 24ms; and when every worker's
// first send outlasts the calibration time, those sends alone made it
// 1.5s. TestRunPause failed on both.
func TestClosedLoopCalibrationIgnoresColdStart(t *testing.T) {
	for _, first := range []time.Duration{600 * time.Millisecond, 1500 * time.Millisecond} {
		synctest.Test(t, func(t *testing.T) {
			c := &ClosedLoop{Clients: 2, Calibrate: time.Second}
			c.Run(context.Background(), time.Now(), 3*time.Second, func(ctx context.Context, i uint64, intended time.Time) {
				if i < 2 { // each worker's first send
					time.Sleep(first)
					return
				}
				time.Sleep(10 * time.Millisecond)
			})
			if got := c.Expected(); got != 10*time.Millisecond {
				t.Fatalf("first sends of %v: expected interval %v, want the steady 10ms", first, got)
			}
		})
	}
}

// TestOpenLoopPreciseTimer runs the default sleep (a timerfd on Linux) on
// the real clock: no send goes out before its intended time, and a
// cancelled run returns.
func TestOpenLoopPreciseTimer(t *testing.T) {
	var mu sync.Mutex
	early := 0
	o := &OpenLoop{Pacer: Constant{Rate: 2000}}
	st := o.Run(context.Background(), time.Now(), 50*time.Millisecond, func(ctx context.Context, i uint64, intended time.Time) {
		if time.Now().Before(intended) {
			mu.Lock()
			early++
			mu.Unlock()
		}
	})
	if st.Started != 100 || early != 0 {
		t.Fatalf("stats %+v, %d sends early; want 100 started, none early", st, early)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	st = (&OpenLoop{Pacer: Constant{Rate: 1}}).Run(ctx, time.Now(), time.Hour, func(context.Context, uint64, time.Time) {})
	if st.Started != 1 {
		t.Fatalf("cancelled run: %+v, want the first send only", st)
	}
}

// TestOpenLoopSleepFails: a sleep that fails on its own (not its context)
// does not end the run; the rest of it sleeps on a Go timer.
func TestOpenLoopSleepFails(t *testing.T) {
	var fails atomic.Int32
	o := &OpenLoop{Pacer: Constant{Rate: 1000}, Sleep: func(context.Context, time.Duration) error {
		fails.Add(1)
		return errors.New("timerfd_settime: boom")
	}}
	st := o.Run(context.Background(), time.Now(), 20*time.Millisecond, func(context.Context, uint64, time.Time) {})
	if st.Started != 20 || fails.Load() != 1 {
		t.Fatalf("stats %+v after %d failed sleeps, want 20 started after 1", st, fails.Load())
	}
}
