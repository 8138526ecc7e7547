package retry

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func TestBackoffGrowsToMaxAndResets(t *testing.T) {
	b := Backoff{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond}
	want := []time.Duration{10, 20, 40, 50, 50}
	for i, w := range want {
		if got := b.Next(); got != w*time.Millisecond {
			t.Fatalf("wait %d = %v, want %v", i, got, w*time.Millisecond)
		}
	}
	b.Reset()
	if got := b.Next(); got != 10*time.Millisecond {
		t.Fatalf("after Reset: %v, want 10ms", got)
	}
}

func TestBackoffZeroValueDefaults(t *testing.T) {
	var b Backoff
	if got := b.Next(); got != 10*time.Millisecond {
		t.Fatalf("first wait %v, want 10ms", got)
	}
	for range 20 {
		b.Next()
	}
	if got := b.Next(); got != time.Second {
		t.Fatalf("capped wait %v, want 1s", got)
	}
}

func TestBackoffJitterStaysInBounds(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: 100 * time.Millisecond, Jitter: 0.2}
	seen := map[time.Duration]bool{}
	for range 200 {
		d := b.Next()
		if d < 80*time.Millisecond || d > 120*time.Millisecond {
			t.Fatalf("jittered wait %v outside 80ms..120ms", d)
		}
		seen[d] = true
	}
	if len(seen) < 10 {
		t.Fatalf("jitter produced only %d distinct waits", len(seen))
	}
}

func TestDoRetriesUntilSuccess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		calls := 0
		start := time.Now()
		err := Do(t.Context(), Backoff{Min: time.Second, Max: 4 * time.Second}, 0, func(context.Context) error {
			calls++
			if calls < 4 {
				return errors.New("not yet")
			}
			return nil
		})
		if err != nil || calls != 4 {
			t.Fatalf("Do = %v after %d calls, want nil after 4", err, calls)
		}
		if got := time.Since(start); got != 7*time.Second { // 1s + 2s + 4s
			t.Fatalf("Do waited %v, want 7s", got)
		}
	})
}

func TestDoStopsOnPermanentAndAttempts(t *testing.T) {
	boom := errors.New("boom")
	calls := 0
	err := Do(t.Context(), Backoff{Min: time.Nanosecond}, 0, func(context.Context) error {
		calls++
		return Permanent(boom)
	})
	if err != boom || calls != 1 {
		t.Fatalf("permanent: Do = %v after %d calls, want boom after 1", err, calls)
	}
	calls = 0
	err = Do(t.Context(), Backoff{Min: time.Nanosecond}, 3, func(context.Context) error {
		calls++
		return boom
	})
	if !errors.Is(err, boom) || calls != 3 {
		t.Fatalf("attempts: Do = %v after %d calls, want boom after 3", err, calls)
	}
}

func TestDoEndsWithContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		defer cancel()
		boom := errors.New("boom")
		err := Do(ctx, Backoff{Min: time.Second, Max: time.Second}, 0, func(context.Context) error { return boom })
		if !errors.Is(err, boom) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Do = %v, want boom joined with the deadline", err)
		}
	})
}

func TestPoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := 0
		err := Poll(t.Context(), 100*time.Millisecond, time.Second, func() (bool, error) { n++; return n == 3, nil })
		if err != nil || n != 3 {
			t.Fatalf("Poll = %v after %d calls, want nil after 3", err, n)
		}
		err = Poll(t.Context(), 100*time.Millisecond, time.Second, func() (bool, error) { return false, nil })
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("Poll = %v, want ErrTimeout", err)
		}
		bad := errors.New("bad")
		if err := Poll(t.Context(), time.Second, 0, func() (bool, error) { return false, bad }); err != bad {
			t.Fatalf("Poll = %v, want the condition's error", err)
		}
	})
}

func TestSleepEndsWithContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancelCause(t.Context())
		stop := errors.New("stop")
		time.AfterFunc(time.Second, func() { cancel(stop) })
		start := time.Now()
		if err := Sleep(ctx, time.Hour); err != stop {
			t.Fatalf("Sleep = %v, want the cause", err)
		}
		if time.Since(start) != time.Second {
			t.Fatalf("Sleep took %v, want 1s", time.Since(start))
		}
	})
}
