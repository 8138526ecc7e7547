//go:build unix

package cpuclock

import (
	"syscall"
	"time"
)

// Available reports whether Process can read the CPU time here.
const Available = true

// Process returns this process's CPU time (user and system) so far, and
// false where it cannot be read (getrusage failed, or is missing: see
// Available).
func Process() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
