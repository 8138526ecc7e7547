package wakeup

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// impls are the sleepers under test: what New gives on this system, and
// the portable one, which New falls back to.
func impls() map[string]func() *Timer {
	return map[string]func() *Timer{
		"new": New,
		"go":  func() *Timer { return &Timer{g: newGoTimer()} }, // as New without a timerfd
	}
}

func TestSleepNeverEarly(t *testing.T) {
	for name, mk := range impls() {
		t.Run(name, func(t *testing.T) {
			tm := mk()
			defer tm.Close()
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range 200 {
				d := time.Duration(rng.IntN(3000)) * time.Microsecond // both sides of MinPrecise
				start := time.Now()
				if err := tm.Sleep(context.Background(), d); err != nil {
					t.Fatalf("sleep %d (%v): %v", i, d, err)
				}
				if got := time.Since(start); got < d {
					t.Fatalf("sleep %d: %v, asked %v", i, got, d)
				}
			}
		})
	}
}

// A sleep that ends on its context leaves the timerfd armed; its expiry
// must not end the next sleep early. (The cancel comes 1 ms into a 30 ms
// sleep; on a machine so loaded that it comes after the sleep ended, the
// sleep rightly returns nil and that round tests nothing: session 28's
// CI, with a 5 ms sleep, failed so.)
func TestStaleExpiryDoesNotEndTheNextSleep(t *testing.T) {
	const asked = 30 * time.Millisecond
	for name, mk := range impls() {
		t.Run(name, func(t *testing.T) {
			tm := mk()
			defer tm.Close()
			cancelled := 0
			for range 5 {
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(time.Millisecond, cancel)
				start := time.Now()
				err := tm.Sleep(ctx, asked)
				switch {
				case err == nil && time.Since(start) >= asked:
					continue // the cancel came late
				case !errors.Is(err, context.Canceled):
					t.Fatalf("cancelled sleep: %v after %v", err, time.Since(start))
				}
				cancelled++
				time.Sleep(asked + 10*time.Millisecond) // the stale expiry has come
				start = time.Now()
				if err := tm.Sleep(context.Background(), 20*time.Millisecond); err != nil {
					t.Fatal(err)
				}
				if got := time.Since(start); got < 20*time.Millisecond {
					t.Fatalf("the sleep after a cancelled one took %v, asked 20ms", got)
				}
			}
			if cancelled == 0 {
				t.Skip("no cancel came before its sleep ended: the machine is too loaded for this test")
			}
		})
	}
}

func TestSleepEndsWithItsContext(t *testing.T) {
	for name, mk := range impls() {
		t.Run(name, func(t *testing.T) {
			tm := mk()
			defer tm.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
			defer cancel()
			if err := <-sleepHour(t, tm, ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("got %v, want the context's error", err)
			}
			// A done context ends even an empty sleep; an empty one
			// with a live context returns at once.
			if err := tm.Sleep(ctx, 0); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Sleep(done, 0) = %v", err)
			}
			if err := tm.Sleep(context.Background(), -time.Second); err != nil {
				t.Fatalf("Sleep(-1s) = %v", err)
			}
		})
	}
}

func TestClose(t *testing.T) {
	for name, mk := range impls() {
		t.Run(name, func(t *testing.T) {
			tm := mk()
			done := sleepHour(t, tm, context.Background())
			time.Sleep(5 * time.Millisecond)
			if err := tm.Close(); err != nil {
				t.Fatal(err)
			}
			if err := tm.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			if err := tm.Sleep(context.Background(), time.Millisecond); !errors.Is(err, ErrClosed) {
				t.Fatalf("Sleep after Close = %v, want ErrClosed", err)
			}
			if err := <-done; !errors.Is(err, ErrClosed) {
				t.Fatalf("a sleep under way when the timer closed ended with %v, want ErrClosed", err)
			}
		})
	}
}

// sleepHour starts an hour's sleep on tm and returns the channel its
// result comes on, failing the test if none came within 10 s (the sleep
// outlived whatever was to end it).
func sleepHour(t *testing.T, tm *Timer, ctx context.Context) <-chan error {
	t.Helper()
	in, out := make(chan error, 1), make(chan error, 1)
	go func() { in <- tm.Sleep(ctx, time.Hour) }()
	go func() {
		select {
		case err := <-in:
			out <- err
		case <-time.After(10 * time.Second):
			out <- errors.New("the sleep outlived what was to end it")
		}
	}()
	return out
}

// BenchmarkLateness sleeps 1.3 ms at a time, as a pacer between sends at
// about 750/s, and reports how late each sleep ended (p50 and p99), for
// New's timer and the Go timer in the same run.
func BenchmarkLateness(b *testing.B) {
	for name, mk := range impls() {
		b.Run(name, func(b *testing.B) {
			tm := mk()
			defer tm.Close()
			const d = 1300 * time.Microsecond
			late := make([]time.Duration, 0, b.N)
			for b.Loop() {
				start := time.Now()
				if err := tm.Sleep(context.Background(), d); err != nil {
					b.Fatal(err)
				}
				late = append(late, time.Since(start)-d)
			}
			slices.Sort(late)
			b.ReportMetric(float64(late[len(late)/2].Microseconds()), "late-p50-µs")
			b.ReportMetric(float64(late[len(late)*99/100].Microseconds()), "late-p99-µs")
		})
	}
}

// recorder is a sleeper that records what it was asked to sleep.
type recorder struct{ asked []time.Duration }

func (r *recorder) sleep(_ context.Context, d time.Duration) error {
	r.asked = append(r.asked, d)
	return nil
}
func (r *recorder) close() error { return nil }

// Sleeps of MinPrecise or more go to the timerfd, shorter ones to the Go
// timer, and an empty one to neither; without a timerfd every sleep goes
// to the Go timer.
func TestSleepChoosesItsTimer(t *testing.T) {
	fd, g := &recorder{}, &recorder{}
	tm := &Timer{fd: fd, g: g}
	ask := []time.Duration{0, time.Microsecond, MinPrecise - 1, MinPrecise, 950 * time.Microsecond, time.Hour}
	for _, d := range ask {
		if err := tm.Sleep(context.Background(), d); err != nil {
			t.Fatal(err)
		}
	}
	if want := ask[1:3]; !slices.Equal(g.asked, want) {
		t.Errorf("the Go timer slept %v, want %v", g.asked, want)
	}
	if want := ask[3:]; !slices.Equal(fd.asked, want) {
		t.Errorf("the timerfd slept %v, want %v", fd.asked, want)
	}
	// 950 µs is a pacer's wait at 1000 sends a second: it must be precise.
	if MinPrecise > 950*time.Microsecond {
		t.Errorf("MinPrecise %v leaves 1000/s's waits on the Go timer", MinPrecise)
	}
	g = &recorder{}
	tm = &Timer{g: g}
	for _, d := range ask {
		_ = tm.Sleep(context.Background(), d)
	}
	if want := ask[1:]; !slices.Equal(g.asked, want) {
		t.Errorf("without a timerfd the Go timer slept %v, want %v", g.asked, want)
	}
}
