package bench

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/exp/trace"

	"github.com/rustorium/rustorium/reports"
)

// summarizeTrace counts a runtime trace's goroutine wake-ups — every
// goroutine that went from waiting to runnable: a hand-off, which on idle
// cores often wakes a thread too — by what the woken goroutine is. TopFlat
// lists them by the goroutine's start function, TopCum by the package of
// that function (kfake, kgo, quic-go, the node's …): on two cores at
// 1000/s the count per transaction, not the work, decides much of the CPU
// (docs/DESIGN.md, "The hand-offs, counted"). Flat and Cum are counts;
// Total is every wake-up in the trace.
func summarizeTrace(path string) (reports.ProfileSummary, error) {
	s := reports.ProfileSummary{Kind: "trace", File: filepath.Base(path), Unit: "goroutine wake-ups (count)"}
	f, err := os.Open(path)
	if err != nil {
		return s, err
	}
	defer f.Close()
	r, err := trace.NewReader(f)
	if err != nil {
		return s, err
	}
	start := map[trace.GoID]string{} // a goroutine's start function, when the trace showed it
	byFunc := map[string]int64{}
	for {
		ev, err := r.ReadEvent()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return s, fmt.Errorf("%s: %w", s.File, err)
		}
		if ev.Kind() != trace.EventStateTransition {
			continue
		}
		st := ev.StateTransition()
		if st.Resource.Kind != trace.ResourceGoroutine {
			continue
		}
		g := st.Resource.Goroutine()
		from, to := st.Goroutine()
		if _, known := start[g]; !known && st.Stack != trace.NoStack {
			// Created in the trace (its start stack) or seen with a stack
			// (a status or a block): its outermost frame is where it began.
			if fn := outermost(st.Stack); fn != "" {
				start[g] = fn
			}
		}
		if from == trace.GoWaiting && to == trace.GoRunnable {
			s.Total++
			fn := start[g]
			if fn == "" {
				fn = "(unknown)"
			}
			byFunc[fn]++
		}
	}
	byPkg := map[string]int64{}
	for fn, n := range byFunc {
		byPkg[funcPackage(fn)] += n
	}
	// A wake-up is its goroutine's own: flat and cumulative are the same.
	s.TopFlat, s.TopCum = topFuncs(s.Total, byFunc, byFunc, byFunc), topFuncs(s.Total, byPkg, byPkg, byPkg)
	return s, nil
}

// outermost is the function a stack began in (runtime.goexit left out).
func outermost(st trace.Stack) string {
	fn := ""
	for f := range st.Frames() {
		if f.Func != "runtime.goexit" {
			fn = f.Func
		}
	}
	return fn
}

// funcPackage is the package path of a function's full name
// ("github.com/twmb/franz-go/pkg/kfake.(*Cluster).run" →
// "github.com/twmb/franz-go/pkg/kfake").
func funcPackage(fn string) string {
	slash := strings.LastIndex(fn, "/")
	if dot := strings.Index(fn[slash+1:], "."); dot >= 0 {
		return fn[:slash+1+dot]
	}
	return fn
}
