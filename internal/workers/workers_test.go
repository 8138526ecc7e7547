package workers

import (
	"bytes"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
)

// goid is the calling goroutine's id.
func goid() string {
	b := make([]byte, 64)
	b = b[:runtime.Stack(b, false)]
	return string(bytes.Fields(b)[1])
}

// TestPool: Go never queues a task behind a busy worker (five blocked
// tasks run at once on a pool that keeps two idle); when they end, two
// workers stay and serve the next tasks themselves (by goroutine id, no
// goroutine started); Close ends them, and the owner's WaitGroup sees it.
func TestPool(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := runtime.NumGoroutine()
		var (
			wg      sync.WaitGroup
			running atomic.Int32
			mu      sync.Mutex
			ran     = map[string]int{}
		)
		p := New(2, &wg, func(release chan struct{}) {
			running.Add(1)
			mu.Lock()
			ran[goid()]++
			mu.Unlock()
			<-release
			running.Add(-1)
		})
		release := make(chan struct{})
		for range 5 {
			p.Go(release)
		}
		synctest.Wait()
		if n := running.Load(); n != 5 {
			t.Fatalf("%d of 5 blocked tasks run: Go queued the others", n)
		}
		close(release)
		synctest.Wait()
		if n := runtime.NumGoroutine() - base; n != 2 || p.idle.Load() != 2 {
			t.Fatalf("%d goroutines and %d idle workers left, want the 2 kept", n, p.idle.Load())
		}
		mu.Lock()
		first := len(ran)
		clear(ran)
		mu.Unlock()
		if first != 5 {
			t.Fatalf("five concurrent tasks ran on %d goroutines", first)
		}
		for range 10 {
			p.Go(release)
			synctest.Wait()
		}
		if len(ran) > 2 || runtime.NumGoroutine()-base != 2 {
			t.Fatalf("ten tasks one at a time ran on %d goroutines (%v), %d left; want the 2 idle ones", len(ran), ran, runtime.NumGoroutine()-base)
		}
		p.Close()
		p.Close()
		wg.Wait()
		synctest.Wait()
		if n := runtime.NumGoroutine() - base; n != 0 {
			t.Fatalf("%d goroutines after Close", n)
		}
	})
}

// TestPoolKeepsNoneIdle: with maxIdle 0 every task runs on a goroutine of
// its own, which ends with it.
func TestPoolKeepsNoneIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := runtime.NumGoroutine()
		var (
			wg  sync.WaitGroup
			ran atomic.Int32
		)
		p := New(0, &wg, func(int) { ran.Add(1) })
		for i := range 3 {
			p.Go(i)
			synctest.Wait()
		}
		if ran.Load() != 3 || runtime.NumGoroutine() != base {
			t.Fatalf("ran %d of 3, %d goroutines left", ran.Load(), runtime.NumGoroutine()-base)
		}
		p.Close()
		wg.Wait()
	})
}
