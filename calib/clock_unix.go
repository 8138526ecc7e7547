//go:build unix

package calib

import (
	"syscall"
	"time"
)

// haveCPUClock reports whether cpuClock measures CPU time (it falls back to
// wall time where getrusage is missing).
const haveCPUClock = true

// cpuClock is this process's CPU time (user and system) so far: the cost
// of CPU-bound operations, not stretched by other processes' load as wall
// time is on a shared machine.
func cpuClock() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return wallClock()
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
