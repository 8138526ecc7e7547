package loadgen

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/rustorium/rustorium/node/tx"
)

func TestPoissonPacer(t *testing.T) {
	p := &Poisson{Rate: 1000, Seed: 42}
	n := p.Due(10 * time.Second)
	// 10k expected, standard deviation 100.
	if math.Abs(float64(n)-10000) > 400 {
		t.Fatalf("Due(10s) = %d, want about 10000", n)
	}
	// Inter-arrival gaps: mean 1ms, coefficient of variation 1.
	var sum, sq float64
	for i := uint64(1); i < n; i++ {
		g := (p.At(i) - p.At(i-1)).Seconds()
		sum += g
		sq += g * g
	}
	mean := sum / float64(n-1)
	cv := math.Sqrt(sq/float64(n-1)-mean*mean) / mean
	if math.Abs(mean-0.001) > 0.00005 || math.Abs(cv-1) > 0.05 {
		t.Fatalf("gaps: mean %v cv %v", mean, cv)
	}
	// Pure function of the seed; Due and At agree.
	q := &Poisson{Rate: 1000, Seed: 42}
	for i := uint64(0); i < 500; i += 17 {
		if q.At(i) != p.At(i) {
			t.Fatalf("send %d differs for the same seed", i)
		}
		if got := p.Due(p.At(i)); got < i+1 {
			t.Fatalf("Due(At(%d)) = %d", i, got)
		}
	}
	if r := (&Poisson{Rate: 1000, Seed: 43}); r.At(10) == p.At(10) {
		t.Fatal("another seed gave the same schedule")
	}
}

func TestTrace(t *testing.T) {
	tr, err := ReadTrace(strings.NewReader("seconds,key\n0,a\n0.5,b\n\n# pause\n2.25,c\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Offsets) != 3 || tr.Keys[2] != "c" || tr.At(2) != 2250*time.Millisecond {
		t.Fatalf("trace %+v", tr)
	}
	for _, c := range []struct {
		d    time.Duration
		want uint64
	}{{0, 1}, {499 * time.Millisecond, 1}, {500 * time.Millisecond, 2}, {time.Hour, 3}} {
		if got := tr.Due(c.d); got != c.want {
			t.Errorf("Due(%v) = %d, want %d", c.d, got, c.want)
		}
	}
	if tr.At(3) != math.MaxInt64 {
		t.Fatal("a send past the trace is due")
	}
	long := strings.Repeat("k", tx.MaxKeySize)
	if _, err := ReadTrace(strings.NewReader("0," + long + "\n")); err != nil {
		t.Errorf("a key of tx.MaxKeySize bytes: %v", err)
	}
	for _, bad := range []string{"", "1\n0.5\n", "0\nx\n", "-1\n", "0,a\n1\n", "0,a\n1," + long + "k\n"} {
		if _, err := ReadTrace(strings.NewReader(bad)); !errors.Is(err, ErrTrace) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func FuzzReadTrace(f *testing.F) {
	f.Add("0,a\n0.5,b\n")
	f.Add("seconds\n1\n2\n")
	f.Fuzz(func(t *testing.T, s string) {
		tr, err := ReadTrace(strings.NewReader(s))
		if err != nil {
			return
		}
		for i := 1; i < len(tr.Offsets); i++ {
			if tr.Offsets[i] < tr.Offsets[i-1] {
				t.Fatal("accepted a trace that goes back in time")
			}
		}
	})
}

// TestPoissonRamp: a Poisson process shaped by a ramp sends as many as the
// ramp over each stretch, within Poisson noise.
func TestPoissonRamp(t *testing.T) {
	ramp := Ramp{From: 100, To: 2100, Over: 10 * time.Second}
	p := &Poisson{Shape: ramp, Seed: 7}
	for _, c := range []struct{ from, to time.Duration }{{0, 2 * time.Second}, {8 * time.Second, 10 * time.Second}} {
		got := float64(p.Due(c.to) - p.Due(c.from))
		want := float64(ramp.Due(c.to) - ramp.Due(c.from))
		if math.Abs(got-want) > 4*math.Sqrt(want) {
			t.Errorf("[%v, %v): %v sends, ramp has %v", c.from, c.to, got, want)
		}
	}
}
