//go:build !unix

package calib

import "time"

// cpuClock falls back to wall time where getrusage is not available.
func cpuClock() time.Duration { return wallClock() }
