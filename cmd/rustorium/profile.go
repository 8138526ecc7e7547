package main

import (
	"fmt"
	"os"

	"github.com/pkg/profile"
)

// startProfile starts the named pkg/profile profiler writing into dir and
// returns its stop function; "" profiles nothing.
func startProfile(kind, dir string) (func(), error) {
	var mode func(*profile.Profile)
	switch kind {
	case "":
		return func() {}, nil
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
		return nil, fmt.Errorf("--profile %q: want cpu, mem, mutex, block or trace", kind)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return profile.Start(mode, profile.ProfilePath(dir), profile.NoShutdownHook, profile.Quiet).Stop, nil
}
