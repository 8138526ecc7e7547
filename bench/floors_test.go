package bench

import "testing"

// TestStateCeilingCountsTheStorePath checks the state floor against the
// bare Merkle floor measured in the same test: the state path does all of
// the Merkle work and more (hashing values, proofs, Pebble), so on the same
// block size it cannot be several times faster.
func TestStateCeilingCountsTheStorePath(t *testing.T) {
	s, err := stateCeiling(200, 32, 1)
	if err != nil {
		t.Fatal(err)
	}
	m := merkleCeiling(200, 1)
	if s <= 0 || m <= 0 || s > 2*m {
		t.Fatalf("state ceiling %.0f writes/s, Merkle ceiling %.0f writes/s", s, m)
	}
	t.Logf("state ceiling %.0f writes/s, Merkle ceiling %.0f writes/s (%.2fx)", s, m, s/m)
}

func TestErrorSummary(t *testing.T) {
	if got := errorSummary(nil); got != "" {
		t.Fatalf("no errors: %q", got)
	}
	if got, want := errorSummary(map[string]int64{"timeout": 2, "overloaded": 1, "aborted": 1}), " (timeout: 2, aborted: 1, overloaded: 1)"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
