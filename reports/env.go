package reports

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// EnvOptions configures CollectEnvironment.
type EnvOptions struct {
	// Dir is the directory whose git commit is recorded. Empty means the
	// working directory.
	Dir string
	// Broker is the broker kind, such as "kfake", "kafka" or "redpanda".
	Broker string
	// BrokerVersion is the broker's version when known.
	BrokerVersion string
}

// CollectEnvironment describes this machine and build. It never fails: what
// it cannot find is left empty (or "unknown" for the commit). git gets at
// most two seconds, bounded further by ctx.
func CollectEnvironment(ctx context.Context, opts EnvOptions) Environment {
	env := Environment{
		Go:            runtime.Version(),
		GOMAXPROCS:    runtime.GOMAXPROCS(0),
		OS:            runtime.GOOS,
		Arch:          runtime.GOARCH,
		NumCPU:        runtime.NumCPU(),
		Broker:        opts.Broker,
		BrokerVersion: opts.BrokerVersion,
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		env.CPU = parseCPUInfo(f)
		f.Close()
	}
	if env.CPU == "" {
		env.CPU = runtime.GOARCH
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		env.Kernel = strings.TrimSpace(string(b))
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		env.MemoryBytes = parseMemInfo(f)
		f.Close()
	}
	env.Commit, env.Dirty = gitCommit(ctx, opts.Dir)
	return env
}

// parseCPUInfo returns the CPU model from /proc/cpuinfo ("model name" on
// x86, "Model"/"Hardware"/"cpu model" elsewhere).
func parseCPUInfo(r io.Reader) string {
	sc := bufio.NewScanner(r)
	fallback := ""
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if v == "" {
			continue
		}
		switch k {
		case "model name":
			return v
		case "Model", "Hardware", "cpu model", "cpu":
			if fallback == "" {
				fallback = v
			}
		}
	}
	return fallback
}

// parseMemInfo returns MemTotal from /proc/meminfo in bytes.
func parseMemInfo(r io.Reader) uint64 {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "MemTotal:" {
			kb, err := strconv.ParseUint(f[1], 10, 64)
			if err == nil {
				return kb * 1024
			}
		}
	}
	return 0
}

// gitCommit asks git for the commit of dir, falling back to the VCS stamp of
// the build.
func gitCommit(ctx context.Context, dir string) (commit string, dirty bool) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	git := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = dir
		out, err := cmd.Output()
		return strings.TrimSpace(string(out)), err
	}
	if out, err := git("rev-parse", "HEAD"); err == nil && out != "" {
		st, err := git("status", "--porcelain", "--untracked-files=no")
		return out, err == nil && st != ""
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if commit == "" {
		commit = "unknown"
	}
	return commit, dirty
}
