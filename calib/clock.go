package calib

import (
	"time"

	"github.com/rustorium/rustorium/internal/cpuclock"
)

// haveCPUClock reports whether cpuClock measures CPU time (it falls back to
// wall time where getrusage is missing).
const haveCPUClock = cpuclock.Available

// cpuClock is this process's CPU time (user and system) so far: the cost
// of CPU-bound operations, not stretched by other processes' load as wall
// time is on a shared machine. Wall time where it cannot be read.
func cpuClock() time.Duration {
	if d, ok := cpuclock.Process(); ok {
		return d
	}
	return wallClock()
}
