package node

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestRateLog: a kind logs at most one line per interval, the next line
// says how many were suppressed, kinds are independent, and flush counts
// and resets.
func TestRateLog(t *testing.T) {
	var buf bytes.Buffer
	l := newRateLog(slog.New(slog.NewTextHandler(&buf, nil)), time.Second)
	now := time.Unix(0, 0)
	l.now = func() time.Time { return now }
	for range 1000 {
		l.logAt(slog.LevelError, "a", "disk full")
		now = now.Add(time.Millisecond) // 1000 attempts over 1s
	}
	l.logAt(slog.LevelError, "b", "other")
	l.logAt(slog.LevelError, "a", "disk full") // 1s after the first
	l.logAt(slog.LevelError, "a", "disk full")
	got := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(got) != 3 || strings.Contains(got[0], "suppressed") || !strings.Contains(got[1], "other") || !strings.Contains(got[2], "suppressed=999") {
		t.Fatalf("lines:\n%s", buf.String())
	}
	if n := l.flush("a"); n != 1 {
		t.Fatalf("flush: %d suppressed, want 1", n)
	}
	l.logAt(slog.LevelError, "a", "disk full")
	if n := strings.Count(buf.String(), "\n"); n != 4 {
		t.Fatalf("after flush the next line is not let through:\n%s", buf.String())
	}
}
