//go:build unix

package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestNodeRaiseFileLimit: a soft RLIMIT_NOFILE below the hard limit is
// raised to it and logged; a need above the limit is warned about.
func TestNodeRaiseFileLimit(t *testing.T) {
	var r unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &r); err != nil {
		t.Fatal(err)
	}
	if r.Max < 512 {
		t.Skipf("hard limit %d", r.Max)
	}
	low := unix.Rlimit{Cur: 256, Max: r.Max}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Setrlimit(unix.RLIMIT_NOFILE, &r) })
	var buf bytes.Buffer
	raiseFileLimit(slog.New(slog.NewTextHandler(&buf, nil)), r.Max+1)
	var now unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &now); err != nil {
		t.Fatal(err)
	}
	if now.Cur != r.Max {
		t.Fatalf("soft limit %d after raising, want the hard limit %d", now.Cur, r.Max)
	}
	if out := buf.String(); !strings.Contains(out, "file descriptor limit") || !strings.Contains(out, "level=WARN") {
		t.Fatalf("log: %s", out)
	}
}
