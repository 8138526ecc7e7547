package calib

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// TestHopProbe: the probe's datagrams arrive, each with a positive delay
// well under a second, sorted, only those of the window asked for; Stop
// is safe to call twice.
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
	if !slices.IsSorted(d) || d[0] <= 0 || d[len(d)-1] >= time.Second {
		t.Fatalf("delays from %v to %v (sorted %v): want sorted, positive, under a second", d[0], d[len(d)-1], slices.IsSorted(d))
	}
	if again, err := h.Stop(from, to); again != nil || err != nil {
		t.Fatalf("second Stop: %v, %v; want nothing", again, err)
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

func TestDelayPoint(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 1000; i++ {
		d = append(d, time.Duration(i)*time.Microsecond)
	}
	p := DelayPoint(0.5, d)
	want := LagPoint{HostBusy: 0.5, P50Ns: 501e3, P90Ns: 901e3, P99Ns: 991e3, P999Ns: 1000e3}
	if p != want {
		t.Fatalf("DelayPoint = %+v, want %+v", p, want)
	}
	if (DelayPoint(0.5, nil) != LagPoint{HostBusy: 0.5}) {
		t.Fatal("DelayPoint of nothing: want zero percentiles")
	}
}
