package node

import (
	"bytes"
	"fmt"
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

// TestRateHandler: a broker's per-request warnings (the same message for
// every partition, offsets aside) are one line a second, infos pass.
func TestRateHandler(t *testing.T) {
	var buf bytes.Buffer
	rl := newRateLog(nil, time.Second)
	now := time.Unix(0, 0)
	rl.now = func() time.Time { return now }
	log := slog.New(rateHandler{slog.NewTextHandler(&buf, nil), rl}).With("node", "n")
	for i := range 4000 {
		log.Warn(fmt.Sprintf("kfake: persist batch transactions-%d-0: write /d/broker/partitions/transactions-%d-0/0.dat: no space left on device", i%4, i%4))
		log.Info("info passes")
		now = now.Add(time.Millisecond) // 4000 over 4s
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	warns := 0
	for _, l := range lines {
		if strings.Contains(l, "persist batch") {
			warns++
		}
	}
	if warns != 4 || len(lines) != 4000+4 || !strings.Contains(buf.String(), "suppressed=999") || !strings.Contains(buf.String(), "node=n") {
		t.Fatalf("%d warning lines of %d:\n%s", warns, len(lines), strings.Join(lines[:min(len(lines), 10)], "\n"))
	}
}
