package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/pkg/profile"

	"github.com/rustorium/rustorium/bench"
	"github.com/rustorium/rustorium/internal/perfprof"
	"github.com/rustorium/rustorium/reports"
)

// startProfile starts the named pkg/profile profiler writing into dir, or
// for "perf" Linux perf's (internal/perfprof: perf.data and perf.pprof,
// the kernel's share included), and returns its stop function; "" profiles
// nothing. Stopped, a cpu or perf profile says on w how its samples split
// among the parts of the system.
func startProfile(kind, dir string, w io.Writer) (func(), error) {
	var mode func(*profile.Profile)
	switch kind {
	case "":
		return func() {}, nil
	case "perf":
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		r, err := perfprof.Start(dir, nil)
		if err != nil {
			return nil, fmt.Errorf("--profile perf: %w", err)
		}
		return func() {
			path, note, err := r.Stop(context.Background())
			if note != "" {
				fmt.Fprintf(w, "--profile perf: %s\n", note)
			}
			if err != nil {
				fmt.Fprintf(w, "--profile perf: %v\n", err)
				return
			}
			printParts(w, "perf", path)
		}, nil
	case "cpu":
		mode = profile.CPUProfile
	case "mem":
		mode = profile.MemProfile
	case "mutex":
		mode = profile.MutexProfile
	case "block":
		mode = profile.BlockProfile
	case "trace":
		mode = profile.TraceProfile
	default:
		return nil, fmt.Errorf("--profile %q: want cpu, mem, mutex, block, trace or perf", kind)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	stop := profile.Start(mode, profile.ProfilePath(dir), profile.NoShutdownHook, profile.Quiet).Stop
	if kind != "cpu" {
		return stop, nil
	}
	return func() {
		stop()
		printParts(w, "cpu", filepath.Join(dir, "cpu.pprof"))
	}, nil
}

// printParts says on w how a CPU profile's samples split among the parts
// of the system (bench.SummarizeProfile), the largest first.
func printParts(w io.Writer, kind, path string) {
	s, err := bench.SummarizeProfile(kind, path)
	if err != nil {
		fmt.Fprintf(w, "--profile %s: %v\n", kind, err)
		return
	}
	if line := reports.ComponentsText(s); line != "" {
		fmt.Fprintf(w, "--profile %s (%s, the whole process): %s\n", kind, path, line)
	}
}
