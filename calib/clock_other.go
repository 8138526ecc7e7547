//go:build !unix

package calib

import "time"

// haveCPUClock reports whether cpuClock measures CPU time.
const haveCPUClock = false

// cpuClock falls back to wall time where getrusage is not available.
func cpuClock() time.Duration { return wallClock() }
