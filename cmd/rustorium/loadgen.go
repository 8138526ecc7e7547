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
	"github.com/rustorium/rustorium/loadgen"
	"github.com/rustorium/rustorium/reports"
	"github.com/rustorium/rustorium/scenarios"
)

func newLoadgenCmd() *cobra.Command {
	var out, target, apiURL, serverKey, profile, worker, startAt string
	cmd := &cobra.Command{
		Use:   "loadgen SCENARIO.yaml --target HOST:PORT [--api URL]",
		Short: "Drive a scenario's workloads against a running node",
		Long: `Drive a scenario's put and get workloads, open or closed loop, against a node that
runs elsewhere (rustorium node), and write the same report as rustorium run.
Workloads with client quic go to --target; those with client rest, ws or
graphql to the node's HTTP APIs at --api (rustorium node --api). The checker
counts commits from the receipts; the cluster, network and timeline sections
of the scenario need rustorium run.

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
			if target == "" && apiURL == "" {
				return errors.New("--target (QUIC) or --api (HTTP) is required")
			}
			ext := &bench.External{Addr: target, API: apiURL}
			opts := bench.Options{Out: out, Target: ext, Progress: cmd.ErrOrStderr()}
			if worker != "" {
				if opts.Worker, err = loadgen.ParseSplit(worker); err != nil {
					return fmt.Errorf("--worker: %w", err)
				}
			}
			if startAt != "" {
				if opts.StartAt, err = time.Parse(time.RFC3339Nano, startAt); err != nil {
					return fmt.Errorf("--start-at: want an RFC 3339 time such as 2026-12-03T10:00:00Z: %w", err)
				}
			}
			if serverKey != "" {
				k, err := hex.DecodeString(serverKey)
				if err != nil || len(k) != ed25519.PublicKeySize {
					return fmt.Errorf("--server-key: want %d hex-encoded bytes", ed25519.PublicKeySize)
				}
				ext.ServerKey = k
			}
			if out == "" {
				out = filepath.Join("out", sc.Name+"-loadgen-"+time.Now().Format("20060102-150405"))
				if !opts.Worker.Whole() {
					out += fmt.Sprintf("-worker%d", opts.Worker.Index+1)
				}
			}
			opts.Out = out
			stopProfile, err := startProfile(profile, filepath.Join(out, "profile"))
			if err != nil {
				return err
			}
			defer stopProfile()
			res, err := bench.Run(cmd.Context(), sc, opts)
			if err != nil {
				return err
			}
			if err := reports.Summary(cmd.OutOrStdout(), res); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "\nreport: %s\n", reportPath(out))
			if !res.Passed() {
				return &exitError{code: 3, err: errors.New("the run failed its checks (see the summary above)")}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&target, "target", "", "the node's QUIC address, host:port (for quic workloads)")
	f.StringVar(&apiURL, "api", "", "the node's HTTP API, http://host:port (for rest, ws and graphql workloads)")
	f.StringVar(&serverKey, "server-key", "", "pin the node's ed25519 public key (hex)")
	f.StringVar(&out, "out", "", "report folder (default out/<scenario>-loadgen-<time>)")
	f.StringVar(&profile, "profile", "", "profile the load generator: cpu|mem|mutex|block|trace (written under OUT/profile)")
	f.StringVar(&worker, "worker", "", "send the I-th of N workers' shares of the load, I/N (1-based; report merge joins the workers' folders)")
	f.StringVar(&startAt, "start-at", "", "start the load at this RFC 3339 time (the same for every worker)")
	return cmd
}
