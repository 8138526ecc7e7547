package loadgen

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestOpenLoopKeepsSchedule: a slow system does not slow the sender down.
// Every send goes out at its intended time even though each takes 50x the
// gap between sends (synctest's fake clock makes this exact).
func TestOpenLoopKeepsSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		lags := map[uint64]time.Duration{}
		start := time.Now()
		o := &OpenLoop{Pacer: Constant{Rate: 1000}}
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
		o := &OpenLoop{Pacer: Constant{Rate: 1000}, MaxInFlight: 10, OnDrop: func(uint64, time.Time) { dropped.Add(1) }}
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
		o := &OpenLoop{Pacer: Constant{Rate: 100}, Limit: 5, First: 1000}
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
