// Command rustorium is the reference node and the benchmark harness in one
// binary: `rustorium run SCENARIO.yaml` benchmarks a cluster end to end,
// `rustorium node` runs a node, `rustorium merkle` computes and checks
// iden3-compatible Merkle roots and proofs.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// exitError carries a specific exit status out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// defaultGOGC is the collector's target for the commands that run nodes
// (node, run) when the GOGC environment variable is unset: Go's own
// default. It was 400 (a saturated one-node cluster committed about 15%
// more in BenchmarkCluster then), at the price of a heap five times its
// live part: `make run` peaked at 668 MiB RSS with 400 and 398 MiB with
// 100 (same CPU per transaction and latencies within noise, 2026-12-03),
// and four max-rate searches put the knee within this machine's noise
// either way (100: 2625 and 4625 tx/s; 400: 4000 and 2188).
const defaultGOGC = 100

// defaultMemoryShare is the share of the machine's memory the heap is
// softly held to when GOMEMLIMIT is unset, so that a large GOGC from the
// environment does not grow the heap past what a small machine has: near
// the limit the collector runs more often instead. (/proc/meminfo is the host's memory,
// not a container's limit: set GOMEMLIMIT in a container.)
const defaultMemoryShare = 4 // a quarter

// tuneGCForNodes applies defaultGOGC and defaultMemoryShare where the
// environment does not set GOGC and GOMEMLIMIT.
func tuneGCForNodes() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGOGC)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		if total := memTotal(); total > 0 {
			debug.SetMemoryLimit(total / defaultMemoryShare)
		}
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd()
	if err := root.ExecuteContext(ctx); err != nil {
		code := 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		fmt.Fprintln(os.Stderr, "rustorium:", err)
		stop()
		os.Exit(code)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "rustorium",
		Short:         "Benchmark harness and reference node for low-latency ledgers",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newRunCmd(), newLoadgenCmd(), newNodeCmd(), newMerkleCmd(), newReportCmd(), newChaosCmd(), newCalibrateCmd(), newSimulateCmd(), newVersionCmd())
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and build information",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bi, ok := debug.ReadBuildInfo()
			if !ok {
				fmt.Fprintln(cmd.OutOrStdout(), "rustorium (no build info)")
				return nil
			}
			rev := "unknown"
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					rev = s.Value
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "rustorium %s (%s, commit %s)\n", bi.Main.Version, bi.GoVersion, rev)
			return nil
		},
	}
}

// memTotal returns the machine's memory in bytes from /proc/meminfo, or 0
// where that is not available.
func memTotal() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	return parseMemTotal(string(b))
}

// parseMemTotal reads the "MemTotal: N kB" line of a /proc/meminfo text.
func parseMemTotal(meminfo string) int64 {
	for _, line := range strings.Split(meminfo, "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "MemTotal:" && f[2] == "kB" {
			if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil && kb > 0 {
				return kb << 10
			}
		}
	}
	return 0
}
