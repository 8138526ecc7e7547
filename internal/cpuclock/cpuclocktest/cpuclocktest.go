// Package cpuclocktest is cpuclock for benchmarks: the process's CPU time,
// or a skipped benchmark where it cannot be read.
package cpuclocktest

import (
	"testing"
	"time"

	"github.com/rustorium/rustorium/internal/cpuclock"
)

// Process is the process's CPU time so far, user and system; it skips tb
// where there is no CPU clock.
func Process(tb testing.TB) time.Duration {
	tb.Helper()
	d, ok := cpuclock.Process()
	if !ok {
		tb.Skip("no CPU clock here")
	}
	return d
}
