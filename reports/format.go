package reports

import (
	"fmt"
	"regexp"
	"time"
)

// FormatMicros formats a latency in microseconds for people: 812µs,
// 12.35ms, 1.52s.
func FormatMicros(us int64) string {
	switch {
	case us < 1000:
		return fmt.Sprintf("%dµs", us)
	case us < 1_000_000:
		return fmt.Sprintf("%.2fms", float64(us)/1e3)
	default:
		return fmt.Sprintf("%.2fs", float64(us)/1e6)
	}
}

func fmtSeconds(s float64) string {
	return (time.Duration(s * float64(time.Second))).Round(time.Millisecond).String()
}

var unsafeFileChars = regexp.MustCompile(`[^A-Za-z0-9_-]`)

// fileSafe makes a workload name usable as part of a file name.
func fileSafe(name string) string {
	s := unsafeFileChars.ReplaceAllString(name, "_")
	if s == "" {
		s = "_"
	}
	return s
}
