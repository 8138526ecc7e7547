package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rustorium/rustorium/reports"
	"github.com/rustorium/rustorium/scenarios"
)

func newReportMergeCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "merge DIR... --out DIR",
		Short: "Merge the report folders of a distributed load's workers into one report",
		Long: `Merge the report folders of the N workers of one load (rustorium loadgen
--worker I/N, each worker's folder, in any order) into the report of one run
that sent it all: HDR histograms added bucket by bucket (a merged percentile
is that of one histogram holding every worker's samples), per-second series
aligned on wall-clock seconds, counts and errors summed, the checkers' counts
combined, the scenario's SLOs evaluated on the merged figures, and
result.json carrying "workers": N and each worker's environment. The workers
must have written the hlog format (the default).

The exit status is 0 when the merged checker and SLOs pass, 3 when they
fail, and 1 when the folders cannot be merged.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return errors.New("--out is required")
			}
			res, snap, err := reports.Merge(args)
			if err != nil {
				return err
			}
			sc, err := scenarios.Parse("result.json resolved scenario", res.Resolved)
			if err != nil {
				return fmt.Errorf("the workers' scenario: %w", err)
			}
			sc.EnsureDefaults()
			slos, err := sc.ReportSLOs()
			if err != nil {
				return fmt.Errorf("the workers' scenario: %w", err)
			}
			res.SLO = res.CheckSLOs(slos)
			formats := make([]string, 0, len(sc.Report.Formats))
			for _, f := range sc.Report.Formats {
				if reports.Supported(string(f)) {
					formats = append(formats, string(f))
				}
			}
			if _, err := reports.Write(out, res, snap, formats); err != nil {
				return err
			}
			if err := reports.Summary(cmd.OutOrStdout(), res); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "\nreport: %s\n", reportPath(out))
			if !res.Passed() {
				return &exitError{code: 3, err: errors.New("the merged run failed its checks (see the summary above)")}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "the merged report folder (required)")
	return cmd
}
