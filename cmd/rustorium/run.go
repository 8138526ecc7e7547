package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rustorium/rustorium/bench"
	"github.com/rustorium/rustorium/node/tracing"
	"github.com/rustorium/rustorium/reports"
	"github.com/rustorium/rustorium/scenarios"
)

func newRunCmd() *cobra.Command {
	var (
		out, brokers, brokerCtl, profile, baseline, nodeBin string
		verbose                                             bool
		minEffect                                           float64
		trf                                                 traceFlags
	)
	cmd := &cobra.Command{
		Use:   "run SCENARIO.yaml",
		Short: "Run a benchmark scenario end to end and write its report",
		Long: `Run a scenario: start the cluster (in process, on the embedded broker unless
--brokers or the scenario names one), measure the floors, drive the workloads
open loop, check that every accepted transaction committed exactly once, and
write the report folder (result.json, report.md, .hgrm, .hlog).

The exit status is 0 when the checker and every SLO passed, 3 when the run
completed but failed them, and 1 when the run could not be done.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tuneGCForNodes()
			sc, err := scenarios.Load(args[0])
			if err != nil {
				return err
			}
			if out == "" {
				out = filepath.Join("out", sc.Name+"-"+time.Now().Format("20060102-150405"))
			}
			stopProfile, err := startProfile(profile, filepath.Join(out, "profile"), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer stopProfile()
			if nodeBin != "" && sc.Cluster.Mode != scenarios.ClusterProcess {
				return fmt.Errorf("--node-bin: %s runs its nodes in process (cluster.mode: %s); the flag needs cluster.mode: process", sc.File(), sc.Cluster.Mode)
			}
			opts := bench.Options{Out: out, Target: runTarget(sc, brokers, brokerCtl, nodeBin, verbose, cmd.ErrOrStderr()), Progress: cmd.ErrOrStderr()}
			if err := trf.apply(&opts); err != nil {
				return err
			}
			res, err := bench.Run(cmd.Context(), sc, opts)
			if err != nil {
				return partialReport(cmd.OutOrStdout(), res, out, err)
			}
			if err := reports.Summary(cmd.OutOrStdout(), res); err != nil {
				return err
			}
			regressed := false
			if baseline != "" {
				base, err := reports.ReadBaseline(baseline)
				if err != nil {
					return fmt.Errorf("--baseline: %w", err)
				}
				cmp := reports.CompareSet(base, res, reports.CompareOptions{MinEffect: minEffect})
				fmt.Fprintf(cmd.OutOrStdout(), "\ncompared with %s:\n", baseline)
				if err := cmp.Text(cmd.OutOrStdout()); err != nil {
					return err
				}
				regressed = cmp.Regressed()
			}
			fmt.Fprintf(cmd.OutOrStdout(), "\nreport: %s\n", reportPath(out))
			switch {
			case !res.Passed():
				return &exitError{code: 3, err: errors.New("the run failed its checks (see the summary above)")}
			case regressed:
				return &exitError{code: 3, err: fmt.Errorf("a confident regression against %s (see the comparison above)", baseline)}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "out", "", "report folder (default out/<scenario>-<time>)")
	f.StringVar(&brokers, "brokers", "", "use this Kafka/Redpanda cluster (host:port,…) instead of the scenario's broker")
	f.StringVar(&brokerCtl, "broker-ctl", "", "command that stops and resumes the given broker for a timeline's kill: broker (run as 'CMD stop' and 'CMD resume', such as scripts/kafka.sh)")
	f.StringVar(&baseline, "baseline", "", "compare with this result.json (or report folder, or baseline set: a folder of recordings, *.json) and exit 3 on a confident regression")
	f.Float64Var(&minEffect, "min-effect", 0.05, "with --baseline: the smallest relative change that counts as a regression")
	f.StringVar(&profile, "profile", "", "profile the whole run: cpu|mem|mutex|block|trace|perf (written under OUT/profile)")
	f.BoolVarP(&verbose, "verbose", "v", false, "log the nodes' warnings and errors")
	f.StringVar(&nodeBin, "node-bin", "", "with cluster.mode process: the rustorium binary the nodes run (default this one)")
	trf.register(cmd)
	return cmd
}

// traceFlags are run's and loadgen's tracing flags.
type traceFlags struct {
	otlp   string
	sample float64
}

func (tf *traceFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&tf.otlp, "otlp", "", "also export the traces over OTLP: grpc://HOST:PORT or http://HOST:PORT[/PATH] (grpcs://, https:// with TLS); the nodes the run starts export theirs too")
	f.Float64Var(&tf.sample, "trace-sample", tracing.DefaultSample, "the share of transactions traced into OUT/traces.json, 0..1, picked from the transaction id as the nodes pick theirs (rustorium node --trace-sample); their receipts' proofs are checked too; 0 traces none")
}

// apply sets the run's tracing options.
func (tf *traceFlags) apply(opts *bench.Options) error {
	if tf.sample < 0 || tf.sample > 1 {
		return fmt.Errorf("--trace-sample %v: want a share in 0..1", tf.sample)
	}
	opts.TraceSample, opts.OTLP = tf.sample, tf.otlp
	if tf.sample == 0 {
		opts.TraceSample = -1 // none
	}
	if tf.otlp != "" {
		if err := (tracing.Config{Endpoint: tf.otlp}).Validate(); err != nil {
			return fmt.Errorf("--otlp: %w", err)
		}
	}
	return nil
}

// runTarget is the target the scenario's cluster.mode asks for: its nodes
// in this process, or as node processes of nodeBin.
func runTarget(sc *scenarios.Scenario, brokers, brokerCtl, nodeBin string, verbose bool, log io.Writer) bench.Target {
	var addrs []string
	if brokers != "" {
		addrs = strings.Split(brokers, ",")
	}
	var logger *slog.Logger
	if verbose {
		logger = slog.New(slog.NewTextHandler(log, nil))
	}
	if sc.Cluster.Mode == scenarios.ClusterProcess {
		return &bench.Processes{Bin: nodeBin, Brokers: addrs, BrokerCtl: brokerCtl, Logger: logger}
	}
	return &bench.InProcess{Brokers: addrs, BrokerCtl: brokerCtl, Logger: logger}
}

// partialReport prints the summary and the path of an interrupted run's
// report (bench.ErrInterrupted: it wrote what it measured) and returns err.
func partialReport(w io.Writer, res *reports.Result, out string, err error) error {
	if res == nil || !errors.Is(err, bench.ErrInterrupted) {
		return err
	}
	if serr := reports.Summary(w, res); serr == nil {
		fmt.Fprintf(w, "\npartial report: %s\n", reportPath(out))
	}
	return err
}

// reportPath is the report's HTML page if it was written, else the folder.
func reportPath(out string) string {
	html := filepath.Join(out, reports.HTMLFile)
	if _, err := os.Stat(html); err == nil {
		return html
	}
	return out
}
