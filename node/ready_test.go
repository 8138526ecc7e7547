package node

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestAppendHealth: the broker check fails while the log's last answer to
// an append was an error less than the window ago, and passes after a
// success or once the error is old.
func TestAppendHealth(t *testing.T) {
	var a appendHealth
	if err := a.failing(time.Minute); err != nil {
		t.Fatalf("no appends yet: %v", err)
	}
	a.done(nil)
	full := errors.New("UNKNOWN_SERVER_ERROR")
	a.done(full)
	a.done(full)
	if err := a.failing(time.Minute); !errors.Is(err, full) || !strings.Contains(err.Error(), "the last 2 appends failed") {
		t.Fatalf("after two failed appends: %v", err)
	}
	if err := a.failing(0); err != nil {
		t.Fatalf("an error older than the window: %v", err)
	}
	a.done(nil)
	if err := a.failing(time.Minute); err != nil {
		t.Fatalf("after a successful append: %v", err)
	}
}
