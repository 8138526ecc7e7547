package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rustorium/rustorium/calib"
	"github.com/rustorium/rustorium/node/tracing"
	"github.com/rustorium/rustorium/reports"
	"github.com/rustorium/rustorium/scenarios"
	"github.com/rustorium/rustorium/sim"
)

// defaultCalib is the committed calibration simulate uses without --calib.
const defaultCalib = "calib/reference.json"

func newSimulateCmd() *cobra.Command {
	var (
		out, calibFile, host string
		against              []string
		background           float64
	)
	cmd := &cobra.Command{
		Use:   "simulate SCENARIO.yaml",
		Short: "Run a scenario in virtual time, each operation priced from a calibration",
		Long: `Simulate a scenario: the same cluster, network, workloads and timeline as
rustorium run, in virtual time with a seeded discrete-event scheduler, the
node's own deterministic protocol code (block cutter, finality tracker,
shard routing) and every operation priced from a calibration
(rustorium calibrate; default calib/reference.json). It writes the same
report folder as run, with "simulated": true, the calibration used, the
utilisation of every resource by operation and the bottleneck.

--host dedicated (the default) gives every node cluster.cores_per_node
cores of its own; --host shared puts the whole cluster, the broker and the
load generator on one machine of the calibration's cores, as rustorium run
does (make validate-sim).

--against puts a real run of the same scenario (its folder or result.json)
beside the simulation, in a table of the figures make validate-sim judges;
given more than once, the real column is the runs' median and the table
shows their range: a figure off its tolerance from the median but not
from the range is "noise" (the real runs disagreed more than that), not
OFF.

The exit status is 0 when the SLOs passed (with --against: when no figure
is OFF), 3 when they did not, 1 when the scenario could not be simulated.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sc, err := scenarios.LoadSimulation(args[0])
			if err != nil {
				return err
			}
			c, err := calib.Load(calibFile)
			if err != nil {
				return err
			}
			if out == "" {
				out = filepath.Join("out", sc.Name+"-sim-"+time.Now().Format("20060102-150405"))
			}
			formats := make([]string, 0, len(sc.Report.Formats))
			for _, f := range sc.Report.Formats {
				if reports.Supported(string(f)) {
					formats = append(formats, string(f))
				}
			}
			opts := sim.Options{Calib: c, CalibFile: calibFile, Host: sim.Host(host), BackgroundLoad: background}
			if sc.Sweep != nil {
				if len(against) > 0 {
					return fmt.Errorf("--against: %s is a sweep", args[0])
				}
				r, err := sim.RunSweep(cmd.Context(), sc, opts, out, formats, cmd.ErrOrStderr())
				if err != nil {
					return err
				}
				fmt.Fprint(cmd.OutOrStdout(), r.Markdown())
				fmt.Fprintf(cmd.OutOrStdout(), "\nsweep: %s\n", filepath.Join(out, "sweep.md"))
				return nil
			}
			opts.Progress = cmd.ErrOrStderr()
			o, err := sim.Run(cmd.Context(), sc, opts)
			if err != nil {
				return err
			}
			if _, err := reports.Write(out, o.Result, o.Snapshot, formats); err != nil {
				return err
			}
			if err := reports.Summary(cmd.OutOrStdout(), o.Result); err != nil {
				return err
			}
			if s := o.Result.Simulation; s != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "simulated %.1fs in %.1fs wall (%d events), blocks %d of %.1f txs on average\n", s.VirtualS, s.WallS, s.Events, s.Blocks, s.BlockMeanTxs)
				if b := s.Bottleneck; b != nil {
					fmt.Fprintf(cmd.OutOrStdout(), "bottleneck: %s at %.0f%% (mostly %s)\n", b.Resource, b.Utilisation*100, b.Operation)
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "\nreport: %s\n", filepath.Join(out, "report.html"))
			if len(against) > 0 {
				reals := make([]*reports.Result, len(against))
				for i, a := range against {
					if st, err := os.Stat(a); err == nil && st.IsDir() {
						a = filepath.Join(a, "result.json")
					}
					if reals[i], err = reports.ReadJSON(a); err != nil {
						return err
					}
					if err := spansOf(reals[i], filepath.Dir(a)); err != nil {
						return err
					}
				}
				rows := sim.CompareRuns(reals, o.Result)
				fmt.Fprintln(cmd.OutOrStdout())
				if err := sim.WriteTable(cmd.OutOrStdout(), rows); err != nil {
					return err
				}
				for _, r := range rows {
					if !r.Pass() {
						return &exitError{code: 3, err: fmt.Errorf("simulation off the real run(s) %s: %s %s", strings.Join(against, ", "), r.Workload, r.Metric)}
					}
				}
				return nil
			}
			if !o.Result.Passed() {
				return &exitError{code: 3, err: fmt.Errorf("simulated run failed its checks or SLOs")}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "report folder (default out/<name>-sim-<YYYYMMDD-HHMMSS>)")
	cmd.Flags().StringVar(&calibFile, "calib", defaultCalib, "calibration file (rustorium calibrate)")
	cmd.Flags().StringArrayVar(&against, "against", nil, "a real run's result.json (or folder) of the same scenario: print both side by side and exit 3 when a figure is off its tolerance; repeat for several runs (their median, and range)")
	cmd.Flags().StringVar(&host, "host", string(sim.Dedicated), "dedicated (each node its own cores) or shared (everything on one calibrated machine, as run)")
	cmd.Flags().Float64Var(&background, "background-load", 0, "with --host shared: other processes' runnable threads on the machine (its load average before the real run), time-sliced with the cluster's work")
	return cmd
}

// spansOf fills a real result's traces.spans from the traces.json beside it
// when the result was written before it had them (session 29), so that
// --against shows the span rows for older runs too.
func spansOf(r *reports.Result, dir string) error {
	t := r.Traces
	if t == nil || len(t.Spans) > 0 || t.File == "" {
		return nil
	}
	reqs, err := tracing.ReadFile(filepath.Join(dir, t.File))
	if errors.Is(err, fs.ErrNotExist) {
		return nil // moved without its traces: no span rows
	}
	if err != nil {
		return fmt.Errorf("--against: %w", err)
	}
	t.Spans = reports.SummarizeTraces(reqs).Spans
	return nil
}
