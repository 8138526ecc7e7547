package loadgen

import (
	"testing"
	"time"
)

func TestConstantPacer(t *testing.T) {
	p := Constant{Rate: 1000}
	cases := []struct {
		elapsed time.Duration
		due     uint64
	}{
		{-time.Millisecond, 0},
		{0, 1}, // send 0 is due at once
		{999 * time.Microsecond, 1},
		{time.Millisecond, 2},
		{time.Second, 1001},
		{10 * time.Second, 10001},
	}
	for _, c := range cases {
		if got := p.Due(c.elapsed); got != c.due {
			t.Errorf("Due(%v) = %d, want %d", c.elapsed, got, c.due)
		}
	}
	if got := p.At(500); got != 500*time.Millisecond {
		t.Errorf("At(500) = %v", got)
	}
	// Due and At agree everywhere: Due(At(i)) == i+1.
	for i := uint64(0); i < 5000; i += 7 {
		if got := p.Due(p.At(i)); got != i+1 {
			t.Fatalf("Due(At(%d)) = %d", i, got)
		}
	}
}

func TestRampPacer(t *testing.T) {
	p := Ramp{From: 100, To: 300, Over: 10 * time.Second}
	// Over 10s the rate averages 200/s: 2000 sends; then 300/s.
	cases := []struct {
		elapsed time.Duration
		due     uint64
	}{
		{0, 1},
		{10 * time.Second, 2001},
		{11 * time.Second, 2301},
	}
	for _, c := range cases {
		if got := p.Due(c.elapsed); got != c.due {
			t.Errorf("Due(%v) = %d, want %d", c.elapsed, got, c.due)
		}
	}
	// Gaps shrink as the rate grows.
	early := p.At(11) - p.At(10)
	late := p.At(1901) - p.At(1900)
	if !(early > late) || early < 9*time.Millisecond || late > 4*time.Millisecond {
		t.Errorf("gaps: early %v late %v", early, late)
	}
	for i := uint64(0); i < 3000; i += 13 {
		if got := p.Due(p.At(i)); got != i+1 {
			t.Fatalf("Due(At(%d)) = %d", i, got)
		}
	}
	flat := Ramp{From: 50, To: 50, Over: time.Second}
	if got := flat.Due(2 * time.Second); got != 101 {
		t.Errorf("flat ramp Due(2s) = %d", got)
	}
}

func TestValidatePacer(t *testing.T) {
	bad := []Pacer{Constant{}, Constant{Rate: -1}, Ramp{From: 1, To: 0, Over: time.Second}, Ramp{From: 1, To: 2}}
	for _, p := range bad {
		if Validate(p) == nil {
			t.Errorf("%#v accepted", p)
		}
	}
	if err := Validate(Ramp{From: 0, To: 10, Over: time.Second}); err != nil {
		t.Error(err)
	}
}
