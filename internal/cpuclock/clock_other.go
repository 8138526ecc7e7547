//go:build !unix

package cpuclock

import "time"

// Available reports whether Process can read the CPU time here.
const Available = false

// Process has no getrusage to read here.
func Process() (time.Duration, bool) { return 0, false }
