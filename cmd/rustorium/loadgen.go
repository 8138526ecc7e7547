package main

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/rustorium/rustorium/bench"
	"github.com/rustorium/rustorium/cluster"
	"github.com/rustorium/rustorium/loadgen"
	"github.com/rustorium/rustorium/reports"
	"github.com/rustorium/rustorium/scenarios"
)

// loadgenFlags are rustorium loadgen's flags.
type loadgenFlags struct {
	out, target, apiURL, serverKey, clusterPath, profile, worker, startAt string
	trace                                                                 traceFlags
}

// options turns the flags into the run's options for scenario sc.
func (fl *loadgenFlags) options(sc *scenarios.Scenario) (bench.Options, error) {
	ext := &bench.External{Addr: fl.target, API: fl.apiURL}
	switch {
	case fl.clusterPath != "" && (fl.target != "" || fl.apiURL != "" || fl.serverKey != ""):
		return bench.Options{}, errors.New("--cluster names every node: give it without --target, --api and --server-key")
	case fl.clusterPath != "":
		cf, err := cluster.Load(fl.clusterPath)
		if err != nil {
			return bench.Options{}, err
		}
		ext = &bench.External{Cluster: cf}
	case fl.target == "" && fl.apiURL == "":
		return bench.Options{}, errors.New("--target (QUIC), --api (HTTP) or --cluster (every node of a cluster file) is required")
	}
	opts := bench.Options{Out: fl.out, Target: ext}
	if err := fl.trace.apply(&opts); err != nil {
		return opts, err
	}
	var err error
	if fl.serverKey != "" {
		k, err := hex.DecodeString(fl.serverKey)
		if err != nil || len(k) != ed25519.PublicKeySize {
			return opts, fmt.Errorf("--server-key: want %d hex-encoded bytes", ed25519.PublicKeySize)
		}
		ext.ServerKey = k
	}
	if fl.worker != "" {
		if opts.Worker, err = loadgen.ParseSplit(fl.worker); err != nil {
			return opts, fmt.Errorf("--worker: %w", err)
		}
	}
	if fl.startAt != "" {
		if opts.StartAt, err = time.Parse(time.RFC3339Nano, fl.startAt); err != nil {
			return opts, fmt.Errorf("--start-at: want an RFC 3339 time such as 2026-12-03T10:00:00Z: %w", err)
		}
	}
	if opts.Out == "" {
		opts.Out = filepath.Join("out", sc.Name+"-loadgen-"+time.Now().Format("20060102-150405"))
		if !opts.Worker.Whole() {
			opts.Out += fmt.Sprintf("-worker%d", opts.Worker.Index+1)
		}
	}
	return opts, nil
}

func newLoadgenCmd() *cobra.Command {
	var fl loadgenFlags
	cmd := &cobra.Command{
		Use:   "loadgen SCENARIO.yaml --target HOST:PORT [--api URL] | --cluster FILE",
		Short: "Drive a scenario's workloads against a running node",
		Long: `Drive a scenario's put and get workloads, open or closed loop, against a node that
runs elsewhere (rustorium node), and write the same report as rustorium run.
Workloads with client quic go to --target; those with client rest, ws or
graphql to the node's HTTP APIs at --api (rustorium node --api). The checker
counts commits from the receipts; the cluster, network and timeline sections
of the scenario need rustorium run.

--cluster FILE drives every node of a running cluster instead (the cluster
file the nodes run with; a node's api entry, host:port of its --api, lets
REST, WebSocket and GraphQL workloads reach it): connections spread over
the nodes, and at the end the checker reads every node's API — roots and
heights equal, every accepted transaction in every node's index, and
balances conserved when the file's genesis holds the scenario's accounts.

--server-key pins the node's identity (hex, as rustorium node logs it).

Distributed load: --worker I/N makes this process the I-th of N workers
that together send exactly what one would (puts and reads by send index,
transfers by sender, closed-loop clients divided); --start-at TIME (RFC
3339) starts every worker's load at the same instant. Each worker writes
its own report folder; rustorium report merge DIR... --out DIR makes the
report of the whole load from them.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sc, err := scenarios.Load(args[0])
			if err != nil {
				return err
			}
			opts, err := fl.options(sc)
			if err != nil {
				return err
			}
			opts.Progress = cmd.ErrOrStderr()
			stopProfile, err := startProfile(fl.profile, filepath.Join(opts.Out, "profile"), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer stopProfile()
			res, err := bench.Run(cmd.Context(), sc, opts)
			if err != nil {
				return partialReport(cmd.OutOrStdout(), res, opts.Out, err)
			}
			if err := reports.Summary(cmd.OutOrStdout(), res); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "\nreport: %s\n", reportPath(opts.Out))
			if !res.Passed() {
				return &exitError{code: 3, err: errors.New("the run failed its checks (see the summary above)")}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&fl.target, "target", "", "the node's QUIC address, host:port (for quic workloads)")
	f.StringVar(&fl.apiURL, "api", "", "the node's HTTP API, http://host:port (for rest, ws and graphql workloads)")
	f.StringVar(&fl.serverKey, "server-key", "", "pin the node's ed25519 public key (hex)")
	f.StringVar(&fl.clusterPath, "cluster", "", "drive every node of this cluster file (their addr and api), and check every node at the end")
	f.StringVar(&fl.out, "out", "", "report folder (default out/<scenario>-loadgen-<time>, with -workerI for a worker)")
	f.StringVar(&fl.profile, "profile", "", "profile the load generator: cpu|mem|mutex|block|trace|perf (written under OUT/profile)")
	f.StringVar(&fl.worker, "worker", "", "send the I-th of N workers' shares of the load, I/N (1-based; report merge joins the workers' folders)")
	f.StringVar(&fl.startAt, "start-at", "", "start the load at this RFC 3339 time (the same for every worker)")
	fl.trace.register(cmd)
	return cmd
}
