package cpuclock

import "testing"

// TestProcessCounts: CPU work moves the clock forward, and never back.
func TestProcessCounts(t *testing.T) {
	c0, ok := Process()
	if !ok {
		if Available {
			t.Fatal("Process failed where getrusage is available")
		}
		t.Skip("no CPU clock here")
	}
	x := uint64(1)
	for i := range 50_000_000 {
		x = x*6364136223846793005 + uint64(i)
	}
	c1, _ := Process()
	if c1 <= c0 {
		t.Fatalf("CPU time %v after spinning, %v before (x=%d)", c1, c0, x)
	}
}
