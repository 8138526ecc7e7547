package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rustorium/rustorium/bench"
	"github.com/rustorium/rustorium/reports"
	"github.com/rustorium/rustorium/scenarios"
)

// chaosRow is one run of a fault campaign.
type chaosRow struct {
	scenario string
	seed     int64
	res      *reports.Result
	err      error
}

// failed reports whether the run lost, duplicated or diverged anything,
// failed a proof, or could not be done.
func (r chaosRow) failed() bool {
	if r.err != nil || r.res == nil {
		return true
	}
	c := r.res.Checker
	return c.Lost > 0 || c.Duplicated > 0 || c.Divergent > 0 || !c.RootsEqual || c.ProofsFailed > 0 ||
		(c.BalancesConserved != nil && !*c.BalancesConserved)
}

func newChaosCmd() *cobra.Command {
	var out, seeds, brokers, brokerCtl, nodeBin string
	cmd := &cobra.Command{
		Use:   "chaos SCENARIO.yaml...",
		Short: "Run fault scenarios over several seeds and print one table",
		Long: `Run each fault scenario (scenarios/chaos/ holds the campaign) once per seed,
each into OUT/<scenario>-seed<N>, and print one table: scenario × seed →
accepted, committed, lost, duplicated, roots equal, proofs failed, client
errors, resends and the first timeline event's recovery time.

The exit status is 0 when no run lost, duplicated or diverged anything or
failed a proof (or balances), 3 when one did, and 1 when a run could not be
done.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			seedList, err := parseSeeds(seeds)
			if err != nil {
				return err
			}
			if out == "" {
				out = filepath.Join("out", "chaos-"+time.Now().Format("20060102-150405"))
			}
			var rows []chaosRow
			for _, path := range args {
				for _, seed := range seedList {
					sc, err := scenarios.Load(path)
					if err != nil {
						return err
					}
					sc.Seed = seed
					fmt.Fprintf(cmd.ErrOrStderr(), "chaos: %s seed %d\n", sc.Name, seed)
					dir := filepath.Join(out, fmt.Sprintf("%s-seed%d", sc.Name, seed))
					// The in-process nodes' logs go to DIR/nodes.log, so a
					// failed run can be read afterwards (node processes
					// write node-i.log there anyway).
					if err := os.MkdirAll(dir, 0o755); err != nil {
						return err
					}
					logf, err := os.Create(filepath.Join(dir, "nodes.log"))
					if err != nil {
						return err
					}
					opts := bench.Options{Out: dir, Target: runTarget(sc, brokers, brokerCtl, nodeBin, true, logf)}
					res, err := bench.Run(cmd.Context(), sc, opts)
					logf.Close()
					rows = append(rows, chaosRow{scenario: sc.Name, seed: seed, res: res, err: err})
					if errors.Is(err, bench.ErrInterrupted) {
						break
					}
				}
			}
			if err := chaosTable(cmd.OutOrStdout(), rows); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "\nreports: %s\n", out)
			for _, r := range rows {
				if r.err != nil {
					return fmt.Errorf("%s seed %d: %w", r.scenario, r.seed, r.err)
				}
			}
			for _, r := range rows {
				if r.failed() {
					return &exitError{code: 3, err: errors.New("a run lost, duplicated or diverged something or failed a proof (see the table)")}
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "out", "", "folder of the runs' reports (default out/chaos-<time>)")
	f.StringVar(&seeds, "seeds", "1,2,3", "the seeds each scenario runs with, comma-separated")
	f.StringVar(&brokers, "brokers", "", "use this Kafka/Redpanda cluster (host:port,…) instead of the scenarios' broker")
	f.StringVar(&brokerCtl, "broker-ctl", "", "command that stops and resumes the given broker for a timeline's kill: broker (run as 'CMD stop' and 'CMD resume', such as scripts/kafka.sh)")
	f.StringVar(&nodeBin, "node-bin", "", "for cluster.mode process scenarios: the rustorium binary the nodes run (default this one)")
	return cmd
}

// parseSeeds parses "1,2,3".
func parseSeeds(s string) ([]int64, error) {
	var out []int64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
		if err != nil || v == 0 {
			return nil, fmt.Errorf("--seeds %q: want nonzero whole numbers, comma-separated", s)
		}
		out = append(out, v)
	}
	return out, nil
}

// chaosTable prints the campaign's table.
func chaosTable(w io.Writer, rows []chaosRow) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tseed\taccepted\tcommitted\tlost\tduplicated\troots equal\tproofs failed\terrors\tresent\trecovery\tverdict\t")
	for _, r := range rows {
		if r.res == nil {
			fmt.Fprintf(tw, "%s\t%d\t-\t-\t-\t-\t-\t-\t-\t-\t-\terror: %v\t\n", r.scenario, r.seed, r.err)
			continue
		}
		c := r.res.Checker
		var errs, resent int64
		for _, wl := range r.res.Workloads {
			errs += wl.Errors
			resent += wl.Resent
		}
		recovery := "-"
		if len(r.res.Timeline) > 0 {
			recovery = r.res.Timeline[0].Recovery
		}
		verdict := "PASS"
		if r.failed() {
			verdict = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%d\t%d\t%d\t%s\t%s\t\n", r.scenario, r.seed, c.Accepted, c.Committed, c.Lost, c.Duplicated, c.RootsVerdict(), c.ProofsFailed, errs, resent, recovery, verdict)
	}
	return tw.Flush()
}
