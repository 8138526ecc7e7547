package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/rustorium/rustorium/bench"
	"github.com/rustorium/rustorium/calib"
	"github.com/rustorium/rustorium/scenarios"
	"github.com/rustorium/rustorium/sim"
)

func newCalibrateCmd() *cobra.Command {
	var (
		out   string
		quick bool
	)
	cmd := &cobra.Command{
		Use:   "calibrate",
		Short: "Measure this machine's cost of each node operation for rustorium simulate",
		Long: `Measure, with the node's own code, what each operation the node does costs on
this machine: Poseidon hashes, Merkle block updates by block and tree size,
state commits, ed25519 signing and (batched) verification, Pebble batch
commits with and without fsync, produce→ack and the produce ceiling on the
embedded broker, QUIC round trip and per-stream cost, attestation handling.
The file (format: docs/DESIGN.md, "Calibration") is what rustorium simulate
prices every operation with. Without --quick it ends with a short real run
(one node, 1000 puts/s for 6 s) whose CPU per committed transaction, less
what the simulator charges for the same run, is the per-transaction
overhead no single operation accounts for (ops.tx_overhead_ns). Run it on
an otherwise idle machine: under a minute (--quick: a few seconds, few
samples, no real run).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := calib.Calibrate(cmd.Context(), calib.Options{Quick: quick, Dir: filepath.Dir(out), Progress: cmd.ErrOrStderr()})
			if err != nil {
				return err
			}
			if !quick {
				t0 := time.Now()
				ov, err := txOverhead(cmd.Context(), c, filepath.Dir(out), cmd.ErrOrStderr())
				if err != nil {
					return fmt.Errorf("calibrate: end-to-end run: %w", err)
				}
				c.Ops.TxOverheadNs = math.Round(ov*10) / 10
				fmt.Fprintf(cmd.ErrOrStderr(), "calibrate: %-12s %v (%.0f µs per transaction)\n", "end-to-end", time.Since(t0).Round(time.Millisecond), ov/1000)
			}
			b, err := c.Encode()
			if err != nil {
				return err
			}
			if err := os.WriteFile(out, b, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "calibration of %s (%d cores) written to %s\n", c.Machine.CPUModel, c.Machine.Cores, out)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "calib.json", "the calibration file to write")
	cmd.Flags().BoolVar(&quick, "quick", false, "few samples and small sizes: seconds, for tests")
	return cmd
}

// e2eScenario is calibrate's end-to-end run: what make run does, shorter.
const e2eScenario = `
name: calibrate-e2e
seed: 1
warmup: 2s
duration: 6s
drain: 5s
cluster: {nodes: 1, shards: 4}
workload:
  - {name: puts, kind: put, accounts: 100000, rate: 1000/s, verify_proofs: 0%}
report: {formats: [json]}
`

// txOverhead runs e2eScenario for real and simulated (shared host, no
// overhead) and returns the real CPU per committed transaction less the
// simulated one, in nanoseconds (at least 0).
func txOverhead(ctx context.Context, c *calib.Calibration, dir string, progress io.Writer) (float64, error) {
	sc, err := scenarios.Parse("calibrate-e2e", []byte(e2eScenario))
	if err != nil {
		return 0, err
	}
	sc.EnsureDefaults()
	if err := sc.Validate(); err != nil {
		return 0, err
	}
	tmp, err := os.MkdirTemp(dir, "rustorium-calibrate-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	res, err := bench.Run(ctx, sc, bench.Options{Out: tmp})
	if err != nil {
		return 0, err
	}
	if res.Resources == nil || res.Resources.CPUMicrosPerTx <= 0 {
		return 0, errors.New("the run measured no CPU per transaction")
	}
	bare := *c
	bare.Ops.TxOverheadNs = 0
	o, err := sim.Run(ctx, sc, sim.Options{Calib: &bare, Host: sim.Shared})
	if err != nil {
		return 0, err
	}
	committed := o.Result.Checker.Committed
	w := o.Result.Workloads["puts"]
	if w != nil {
		if st := w.Stages["committed"]; st != nil && st.Count > 0 {
			committed = st.Count
		}
	}
	host := o.Result.Simulation.Utilisation["host"]["total"]
	model := host * float64(c.Machine.Cores) * sc.Duration.Std().Seconds() * 1e9 / float64(max(committed, 1))
	if progress != nil {
		fmt.Fprintf(progress, "calibrate: end-to-end: real %.0f µs CPU per committed transaction, the model charges %.0f µs\n", res.Resources.CPUMicrosPerTx, model/1000)
	}
	return max(res.Resources.CPUMicrosPerTx*1000-model, 0), nil
}
