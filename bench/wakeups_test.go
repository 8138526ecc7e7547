package bench

import (
	"os"
	"path/filepath"
	"runtime/trace"
	"strings"
	"testing"

	"github.com/rustorium/rustorium/reports"
)

// wakeupsWaiter blocks on in n times: each send from the test wakes it.
func wakeupsWaiter(in <-chan int, done chan<- struct{}) {
	for range in {
	}
	close(done)
}

// TestSummarizeTraceCountsWakeups: 300 sends on an unbuffered channel to a
// goroutine that receives them hand off 300 times — the receiver woken by
// a send, or the sender by the receive when the sender came first — and
// the summary counts those wake-ups under the two goroutines' start
// functions (the receiver's wakeupsWaiter, the test's testing.tRunner) and
// their packages; a file that is not a trace is an error.
func TestSummarizeTraceCountsWakeups(t *testing.T) {
	const sends = 300
	path := filepath.Join(t.TempDir(), "trace.out")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := trace.Start(f); err != nil {
		t.Fatal(err)
	}
	in, done := make(chan int), make(chan struct{})
	go wakeupsWaiter(in, done)
	for i := range sends {
		in <- i
	}
	close(in)
	<-done
	trace.Stop()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := summarizeTrace(path)
	if err != nil {
		t.Fatal(err)
	}
	count := func(rows []reports.ProfileFunc, name string) int64 {
		for _, f := range rows {
			if f.Func == name {
				return f.Flat
			}
		}
		return 0
	}
	waiter, tester := count(s.TopFlat, "github.com/rustorium/rustorium/bench.wakeupsWaiter"), count(s.TopFlat, "testing.tRunner")
	pkgs := count(s.TopCum, "github.com/rustorium/rustorium/bench") + count(s.TopCum, "testing")
	if s.Kind != "trace" || waiter == 0 || waiter+tester < sends || pkgs != waiter+tester || s.Total < pkgs || !strings.Contains(s.Unit, "wake-ups") {
		t.Fatalf("summary %+v: the receiver woken %d times, the sender %d, their packages %d", s, waiter, tester, pkgs)
	}
	if err := os.WriteFile(path, []byte("not a trace"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := summarizeTrace(path); err == nil {
		t.Fatal("not a trace: no error")
	}
}

func TestFuncPackage(t *testing.T) {
	for fn, want := range map[string]string{
		"github.com/twmb/franz-go/pkg/kfake.(*Cluster).run": "github.com/twmb/franz-go/pkg/kfake",
		"runtime.bgsweep": "runtime",
		"main.main":       "main",
		"noDot":           "noDot",
	} {
		if got := funcPackage(fn); got != want {
			t.Errorf("funcPackage(%q) = %q, want %q", fn, got, want)
		}
	}
}
