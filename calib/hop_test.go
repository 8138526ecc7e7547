package calib

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestHopProbe: the probe's datagrams arrive, each with a positive delay
// well under a second, in arrival order, only those of the window asked
// for, at most MaxSamples of them; Stop is safe to call twice.
func TestHopProbe(t *testing.T) {
	h := &HopProbe{Interval: 200 * time.Microsecond}
	if err := h.Start(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	from := time.Now()
	time.Sleep(100 * time.Millisecond)
	to := time.Now()
	time.Sleep(20 * time.Millisecond)
	d, err := h.Stop(from, to)
	if err != nil {
		t.Fatal(err)
	}
	// About 500 were sent in the window; a loaded test machine may
	// delay the sender's timer, never the count to nothing.
	if len(d) < 20 || len(d) > 1000 {
		t.Fatalf("%d delays in 100 ms at one every 200 µs on average", len(d))
	}
	for i, s := range d {
		if s.Delay <= 0 || s.Delay >= time.Second || s.At.Before(from) || !s.At.Before(to) || (i > 0 && s.At.Before(d[i-1].At)) {
			t.Fatalf("sample %d: %+v; want a positive delay under a second, in the window [%v, %v), in arrival order", i, s, from, to)
		}
	}
	if again, err := h.Stop(from, to); again != nil || err != nil {
		t.Fatalf("second Stop: %v, %v; want nothing", again, err)
	}

	// A probe keeps at most MaxSamples.
	h = &HopProbe{Interval: 100 * time.Microsecond, MaxSamples: 5}
	if err := h.Start(context.Background(), 3); err != nil {
		t.Fatal(err)
	}
	from = time.Now()
	time.Sleep(30 * time.Millisecond)
	if d, err := h.Stop(from, time.Now()); err != nil || len(d) > 5 {
		t.Fatalf("bounded probe: %d samples, %v; want at most 5", len(d), err)
	}

	h = &HopProbe{}
	if err := h.Start(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	if _, err := h.Stop(time.Now().Add(time.Hour), time.Now().Add(2*time.Hour)); !errors.Is(err, ErrProbe) {
		t.Fatalf("Stop over a window with no datagram: %v, want ErrProbe", err)
	}
}

// TestDelayPoint: each percentile is taken over every DelayWindow (10 s) and
// the windows' median kept, so one window's burst of long delays does not
// make the tail; a last window shorter than half of one joins the one
// before.
func TestDelayPoint(t *testing.T) {
	start := time.Unix(1000, 0)
	var s []HopSample
	add := func(window int, delays func(i int) time.Duration) {
		for i := range 1000 {
			s = append(s, HopSample{At: start.Add(time.Duration(window)*DelayWindow + time.Duration(i)*DelayWindow/1000), Delay: delays(i)})
		}
	}
	calm := func(i int) time.Duration { return time.Duration(i+1) * time.Microsecond } // 1..1000 µs
	add(0, calm)
	add(1, func(i int) time.Duration { return time.Duration(i+1) * time.Millisecond }) // a bad window
	add(2, calm)
	want := LagPoint{HostBusy: 0.5, P50Ns: 501e3, P90Ns: 901e3, P99Ns: 991e3, P999Ns: 1000e3}
	if p := DelayPoint(0.5, s); p != want {
		t.Fatalf("DelayPoint = %+v, want the calm windows' %+v", p, want)
	}
	// A tail of 1 s joins the last window: two windows, their mean.
	s = append(s, HopSample{At: start.Add(3 * DelayWindow), Delay: time.Microsecond})
	s = s[1000:] // the bad window and a calm one
	p := DelayPoint(0.5, s)
	// The calm window with the extra sample: 1, 1, 2, … 1000 µs, its p50
	// (index 500) 500 µs.
	if p.P50Ns != (501e6+500e3)/2 {
		t.Fatalf("two windows: p50 %v, want the mean of theirs", p.P50Ns)
	}
	if (DelayPoint(0.5, nil) != LagPoint{HostBusy: 0.5}) {
		t.Fatal("DelayPoint of nothing: want zero percentiles")
	}
}

// TestHopProbeEndsWithItsContext: a probe whose context ends without Stop
// (a signal, a caller that failed first) stops its sender and its reader.
func TestHopProbeEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	h := &HopProbe{}
	if err := h.Start(ctx, 1); err != nil {
		t.Fatal(err)
	}
	cancel()
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the probe's goroutines outlived its context")
	}
	// Stop still returns (what arrived before, or ErrProbe for nothing).
	if _, err := h.Stop(time.Time{}, time.Now()); err != nil && !errors.Is(err, ErrProbe) {
		t.Fatalf("Stop after the context ended: %v", err)
	}
}
