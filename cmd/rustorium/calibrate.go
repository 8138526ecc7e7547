package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/rustorium/rustorium/calib"
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
prices every operation with. Run it on an otherwise idle machine: about a
minute (--quick: a few seconds, few samples).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := calib.Calibrate(cmd.Context(), calib.Options{Quick: quick, Dir: filepath.Dir(out), Progress: cmd.ErrOrStderr()})
			if err != nil {
				return err
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
