package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rustorium/rustorium/bench"
	"github.com/rustorium/rustorium/calib"
	"github.com/rustorium/rustorium/node/tracing"
	"github.com/rustorium/rustorium/reports"
	"github.com/rustorium/rustorium/scenarios"
	"github.com/rustorium/rustorium/sim"
)

// clusterScenario is calibrate's three-node run: three nodes in one
// process, quorum 2, on the embedded broker, as make validate-sim's
// cluster scenarios (cluster3 at 600/s, leader-kill at 300/s) run. What
// one node cannot show is measured here: how long an attestation takes
// from one node to another on this machine (ops.peer_handoff_ns).
//
// Until session 30 the model took half a client's QUIC echo for it, while
// the real way from a peer's attestation to the quorum took 1.2-1.3 ms at
// 600/s where the model took 0.35 (session 29's traces). The run's CPU is
// recorded beside the model's (ops.cluster): fitting the share of the
// per-block overhead a replica pays to it was tried and not kept (see
// engine.pump).
const clusterScenario = `
name: calibrate-cluster
seed: 1
warmup: 2s
duration: %ds
drain: 5s
cluster: {nodes: 3, shards: 4, quorum: 2}
workload:
  - {name: puts, kind: put, accounts: 100000, rate: %d/s, verify_proofs: 0%%}
report: {formats: [json]}
`

// The cluster run: 300 puts/s (leader-kill's rate, half cluster3's: the
// fit extrapolates upward with the model's own stretch) for 10 s, with
// one transaction in 20 traced (about 450 copies of replica.quorum, one
// per node and traced transaction; the default 1% leaves about 90).
const (
	clusterRate        = 300
	clusterSeconds     = 10
	clusterTraceSample = 0.05
	// clusterMinQuorums is the fewest traced replica.quorum copies the
	// fit takes a median from.
	clusterMinQuorums = 50
	// handoffPrecision is the peer hand-off fit's resolution (ns).
	handoffPrecision = 2000
)

// addClusterFit runs fitCluster and writes its figures into c, noting a
// run that shared the machine in c.Busy.
func addClusterFit(cmd *cobra.Command, c *calib.Calibration, dir string) error {
	t0 := time.Now()
	cf, err := fitCluster(cmd.Context(), c, dir, cmd.ErrOrStderr())
	if err != nil {
		return fmt.Errorf("calibrate: three-node run: %w", err)
	}
	c.Ops.PeerHandoffNs, c.Ops.Cluster = &cf.handoff, &cf.record
	busy := fmt.Sprintf("three nodes at %d/s: ", clusterRate)
	c.Busy = slices.DeleteFunc(c.Busy, func(b string) bool { return strings.HasPrefix(b, busy) })
	if cf.shared != "" {
		c.Busy = append(c.Busy, busy+cf.shared)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "calibrate: %-12s %v (a peer hand-off of %.0f µs)\n", "three nodes", time.Since(t0).Round(time.Millisecond), cf.handoff/1000)
	return nil
}

// refitCluster is calibrate --refit-cluster: the calibration in file with
// its three-node fit done again on this machine now (or added to one from
// before session 30), every other figure as it was, written to out.
func refitCluster(cmd *cobra.Command, file, out string, quick bool) error {
	if quick {
		return errors.New("calibrate: --refit-cluster and --quick: the fit needs a full calibration's overheads")
	}
	c, err := calib.Load(file)
	if err != nil {
		return err
	}
	if c.Quick || c.Ops.BlockOverheadNs <= 0 {
		return fmt.Errorf("calibrate: --refit-cluster %s: a quick calibration (no overheads fitted) has nothing to fit the three-node run with", file)
	}
	if err := addClusterFit(cmd, c, filepath.Dir(out)); err != nil {
		return err
	}
	return writeCalibration(cmd, c, out)
}

// writeCalibration encodes c into out.
func writeCalibration(cmd *cobra.Command, c *calib.Calibration, out string) error {
	b, err := c.Encode()
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "calibration of %s (%d cores) written to %s\n", c.Machine.CPUModel, c.Machine.Cores, out)
	return nil
}

// clusterPoint is a run's replica.quorum median (ns) and the share of the
// machine's cores it took, real (hostBusy) or simulated (the host's
// utilisation; both to three decimals).
type clusterPoint struct {
	quorumP50, busy float64
}

// clusterModel simulates the cluster run with a peer hand-off (ns).
type clusterModel func(handoff float64) (clusterPoint, error)

// clusterFit is fitCluster's answer.
type clusterFit struct {
	handoff float64
	record  calib.ClusterFit
	shared  string // why the real run was not alone on the machine (reports.Resources.Busy; "": it was)
}

// fitCluster runs clusterScenario for real and fits c's peer hand-off to
// its replica.quorum median (fitHandoff). c must hold the one-node fit
// (the overheads, schedule lag and hop delay) already.
func fitCluster(ctx context.Context, c *calib.Calibration, dir string, progress io.Writer) (clusterFit, error) {
	sc, err := calibScenario("calibrate-cluster", clusterScenario, clusterSeconds, clusterRate)
	if err != nil {
		return clusterFit{}, err
	}
	tmp, err := os.MkdirTemp(dir, "rustorium-calibrate-")
	if err != nil {
		return clusterFit{}, err
	}
	defer os.RemoveAll(tmp)
	res, err := bench.Run(ctx, sc, bench.Options{Out: tmp, SkipFloors: true, TraceSample: clusterTraceSample})
	if err != nil {
		return clusterFit{}, err
	}
	real, err := clusterReal(res, c.Machine.Cores)
	if err != nil {
		return clusterFit{}, err
	}
	model := func(handoff float64) (clusterPoint, error) {
		m := *c
		m.Ops.PeerHandoffNs = &handoff
		// The hand-off is fitted at this run's load (sim.engine.peerWay).
		m.Ops.Cluster = &calib.ClusterFit{RateTPS: clusterRate, HostBusy: real.busy}
		o, err := sim.Run(ctx, sc, sim.Options{Calib: &m, Host: sim.Shared})
		if err != nil {
			return clusterPoint{}, err
		}
		q, _ := spanP50(o.Result.Simulation.Spans, tracing.SpanQuorum)
		return clusterPoint{quorumP50: q, busy: o.Result.Simulation.Utilisation["host"]["total"]}, nil
	}
	handoff, got, err := fitHandoff(real, c.Ops.QUICRoundTrip.P50Ns, model)
	if err != nil {
		return clusterFit{}, err
	}
	f := clusterFit{handoff: math.Round(handoff), shared: res.Resources.Busy(),
		record: calib.ClusterFit{RateTPS: clusterRate, HostBusy: real.busy, SimHostBusy: got.busy,
			QuorumP50Ns: real.quorumP50, SimQuorumP50Ns: got.quorumP50}}
	if progress != nil {
		fmt.Fprintf(progress, "calibrate: three nodes at %d/s: replica.quorum p50 %.0f µs, the model's %.0f µs with a peer hand-off of %.0f µs (half the QUIC echo is %.0f); %.0f%% of the cores busy, the model's %.0f%%\n",
			clusterRate, real.quorumP50/1000, got.quorumP50/1000, f.handoff/1000, c.Ops.QUICRoundTrip.P50Ns/2000, real.busy*100, got.busy*100)
		if f.shared != "" {
			fmt.Fprintf(progress, "calibrate: warning: the three-node run shared the machine: %s\n", f.shared)
		}
	}
	return f, nil
}

// clusterReal is the real cluster run's point.
func clusterReal(res *reports.Result, cores int) (clusterPoint, error) {
	w := res.Workloads["puts"]
	if w == nil || w.ThroughputTPS <= 0 {
		return clusterPoint{}, errors.New("the three-node run committed nothing")
	}
	if res.Resources == nil || res.Resources.CPUPercentMean <= 0 {
		return clusterPoint{}, errors.New("the three-node run measured no CPU")
	}
	if res.Traces == nil {
		return clusterPoint{}, errors.New("the three-node run wrote no traces")
	}
	q, n := spanP50(res.Traces.Spans, tracing.SpanQuorum)
	if n < clusterMinQuorums {
		return clusterPoint{}, fmt.Errorf("the three-node run traced %d copies of %s, want at least %d", n, tracing.SpanQuorum, clusterMinQuorums)
	}
	return clusterPoint{quorumP50: q, busy: hostBusy(res.Resources, cores)}, nil
}

// spanP50 is the named span's median (ns) and copies in a summary.
func spanP50(spans []reports.SpanStat, name tracing.SpanName) (float64, int) {
	for _, s := range spans {
		if s.Span == string(name) {
			return float64(s.P50Us) * 1000, s.Count
		}
	}
	return 0, 0
}

// fitHandoff is the peer hand-off (ns) with which the model's
// replica.quorum median is the real run's, by bisection (a longer
// hand-off makes the quorum later) from none up to 50 times half the
// QUIC echo, doubling the upper end until it is past; at either end, that
// end. It returns the simulated point too.
func fitHandoff(real clusterPoint, quicRT float64, model clusterModel) (float64, clusterPoint, error) {
	lo, hi := 0.0, max(quicRT/2, handoffPrecision)
	low, err := model(lo)
	if err != nil || low.quorumP50 >= real.quorumP50 {
		return lo, low, err
	}
	high, err := model(hi)
	for err == nil && high.quorumP50 < real.quorumP50 && hi < 50*max(quicRT/2, handoffPrecision) {
		lo, low = hi, high
		hi *= 2
		high, err = model(hi)
	}
	if err != nil || high.quorumP50 < real.quorumP50 {
		return hi, high, err
	}
	for hi-lo > handoffPrecision {
		mid := (lo + hi) / 2
		p, err := model(mid)
		if err != nil {
			return 0, clusterPoint{}, err
		}
		if p.quorumP50 < real.quorumP50 {
			lo, low = mid, p
		} else {
			hi, high = mid, p
		}
	}
	if real.quorumP50-low.quorumP50 < high.quorumP50-real.quorumP50 {
		return lo, low, nil
	}
	return hi, high, nil
}

// calibScenario parses one of calibrate's scenario templates at seconds
// and rate, validated.
func calibScenario(name, tmpl string, seconds, rate int) (*scenarios.Scenario, error) {
	sc, err := scenarios.Parse(name, fmt.Appendf(nil, tmpl, seconds, rate))
	if err != nil {
		return nil, err
	}
	sc.EnsureDefaults()
	if err := sc.Validate(); err != nil {
		return nil, err
	}
	return sc, nil
}
