package main

import (
	"context"
	"fmt"
	"os"

	"github.com/pkg/profile"

	"github.com/rustorium/rustorium/internal/perfprof"
)

// startProfile starts the named pkg/profile profiler writing into dir, or
// for "perf" Linux perf's (internal/perfprof: perf.data and perf.pprof,
// the kernel's share included), and returns its stop function; "" profiles
// nothing.
func startProfile(kind, dir string) (func(), error) {
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
			_, note, err := r.Stop(context.Background())
			if note != "" {
				fmt.Fprintf(os.Stderr, "--profile perf: %s\n", note)
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "--profile perf: %v\n", err)
			}
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
	return profile.Start(mode, profile.ProfilePath(dir), profile.NoShutdownHook, profile.Quiet).Stop, nil
}
