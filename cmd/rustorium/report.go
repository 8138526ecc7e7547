package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/rustorium/rustorium/reports"
)

// exitRegression is the exit status of `report compare` when head
// confidently regressed (the same status `run` uses for failed checks).
const exitRegression = 3

func newReportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Work with the results of runs (compare two runs, merge workers' folders)",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newReportCompareCmd(), newReportMergeCmd())
	return cmd
}

func newReportCompareCmd() *cobra.Command {
	var (
		opts   reports.CompareOptions
		format string
	)
	cmd := &cobra.Command{
		Use:   "compare BASE HEAD",
		Short: "Compare two runs with a noise-aware verdict per workload, stage and metric",
		Long: `Compare two runs (each a result.json, or a report folder holding one): for every
workload and stage, the corrected p50 and p99 and the throughput get a verdict,
better, same, worse or inconclusive. The noise comes from each run's
per-interval series: a Mann-Whitney U test on the interval values (adjusted for
the number of metrics compared) and a bootstrap confidence interval of the
change of their medians. Only a change at least --min-effect in the bad
direction, with confidence, is a regression.

BASE may also be a baseline set: a folder of runs of the same scenario (*.json:
recordings made at different hours of the machine, or a reference build's runs
made just before and just after HEAD's). A metric is then worse, better or same
only when it is so against every one, and its figures are those against the
nearest: a regression must exceed the slowest of them.

The exit status is 0 without a confident regression, 3 with one, and 1 when
the files cannot be read.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.MinEffect < 0 || opts.MinEffect >= 10 {
				return fmt.Errorf("--min-effect %v: want a fraction such as 0.05", opts.MinEffect)
			}
			if opts.Confidence < 0 || opts.Confidence >= 1 {
				return fmt.Errorf("--confidence %v: want a level such as 0.95", opts.Confidence)
			}
			if opts.MinIntervals < 0 || opts.Resamples < 0 {
				return errors.New("--min-intervals and --resamples must not be negative")
			}
			base, err := reports.ReadBaseline(args[0])
			if err != nil {
				return err
			}
			head, err := readResult(args[1])
			if err != nil {
				return err
			}
			c := reports.CompareSet(base, head, opts)
			out := cmd.OutOrStdout()
			switch format {
			case "text":
				err = c.Text(out)
			case "md", "markdown":
				err = c.Markdown(out)
			case "json":
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				err = enc.Encode(c)
			default:
				return fmt.Errorf("--format %q: want text, md or json", format)
			}
			if err != nil {
				return err
			}
			if reg := c.Regressions(); len(reg) > 0 {
				return &exitError{code: exitRegression, err: fmt.Errorf("%d metric(s) confidently regressed", len(reg))}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.Float64Var(&opts.MinEffect, "min-effect", 0.05, "smallest relative change that counts as better or worse")
	f.Float64Var(&opts.Confidence, "confidence", 0.95, "confidence level of the test and interval")
	f.IntVar(&opts.MinIntervals, "min-intervals", 5, "fewest per-interval values each run needs for a verdict")
	f.IntVar(&opts.Resamples, "resamples", 2000, "bootstrap resamples")
	f.Uint64Var(&opts.Seed, "seed", 1, "bootstrap seed")
	f.StringVar(&format, "format", "text", "output: text, md or json")
	return cmd
}

// readResult reads a result.json, or the one in a report folder.
func readResult(path string) (*reports.Result, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, reports.ResultFile)
	}
	return reports.ReadJSON(path)
}
