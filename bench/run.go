// Package bench runs scenarios end to end through one pipeline over a
// Target (the system under test: an in-process cluster, a cluster of node
// processes, or nodes that run elsewhere): it checks the scenario against
// what the target can do, starts the target, measures the floors of the raw
// building blocks on its paths, drives the workloads with the load
// generator (a fixed plan of warmup and measurement with a timeline, or a
// max-rate search of probes), checks that every accepted transaction
// committed exactly once, and writes the report folder. Each workload kind
// is one unit (kind_*.go). It also holds the project's benchmark suite.
package bench

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/rustorium/rustorium/calib"
	"github.com/rustorium/rustorium/loadgen"
	"github.com/rustorium/rustorium/node"
	"github.com/rustorium/rustorium/node/tracing"
	"github.com/rustorium/rustorium/node/tx"
	"github.com/rustorium/rustorium/reports"
	"github.com/rustorium/rustorium/scenarios"
)

// Sentinel errors of Run.
var (
	// ErrUnsupported: the scenario asks for something the harness, or the
	// target it runs on, cannot do.
	ErrUnsupported = errors.New("bench: not supported")
	// ErrInterrupted: the run was cut short (a signal, a node that
	// failed); Run still wrote the report of what it measured and
	// returns its Result.
	ErrInterrupted = errors.New("bench: interrupted")
)

// Options configures Run.
type Options struct {
	// Out is the report folder. Required.
	Out string
	// Target is the system the run measures. Nil means an InProcess
	// cluster with its defaults.
	Target Target
	// Progress receives live progress lines. Nil prints nothing.
	Progress io.Writer
	// SkipFloors skips the floor measurements (tests that need speed only).
	SkipFloors bool
	// Worker, if set, makes this run one worker of a load that several
	// send together (rustorium loadgen --worker I/N): it sends only its
	// share of every workload, at each send's intended time, so that the
	// workers' report folders merge (rustorium report merge) into the
	// report of one run that sent everything. Zero means the whole load.
	Worker loadgen.Split
	// StartAt, if set, is when the load starts (warmup included), so that
	// workers on several hosts start together; it must still be ahead when
	// the transactions are signed. Zero means as soon as they are.
	StartAt time.Time
	// TraceSample is the share of transactions traced (tracing.Sampled,
	// decided from the transaction id, so the nodes the run starts trace
	// the same ones): their traces go to traces.json, always written.
	// Zero means tracing.DefaultSample (1%); negative traces none.
	TraceSample float64
	// OTLP, if set, is an OTLP endpoint (tracing.Config.Endpoint) the
	// client's spans and those of the nodes the run starts are exported
	// to, besides traces.json.
	OTLP string
}

// chainID is the chain of the nodes the harness runs, and of a node that
// runs elsewhere unless its cluster file says otherwise (rustorium node's
// --chain-id defaults to it too).
const chainID = 1

// pipeline is one run of a scenario on a target.
type pipeline struct {
	sc       *scenarios.Scenario
	opts     Options
	t        Target
	caps     Caps
	chk      *checker
	ingress  *ingressIndex
	p        *progress
	accounts map[int][]ed25519.PrivateKey // genesis accounts by workload index
	genesis  []node.GenesisAccount
	share    share
	probes   uint32 // max-rate probes prepared so far
	traces   *runTraces
	bound    boundFunc // measures the node bound: calib.NodeBound unless a test says
	// floorPaths are the paths the floors timed (nil: none measured);
	// the loaded floors time them again under the load.
	floorPaths *FloorPaths
}

// outcome is what a load plan measured, for finish.
type outcome struct {
	res   *reports.Result
	snap  *reports.Snapshot
	notes []string
	// complete fills in what the plan adds after the checker ran.
	complete func(*reports.Result)
	// from and to bound the commits whose blocks result.json's blocks
	// summarise: the measured phase, or the knee's probe.
	from, to time.Time
	// loaded holds the loaded floors (Floors.QuicEchoLoaded,
	// ProduceAckLoaded) the plan timed, for finish to add to the floors.
	loaded reports.Floors
}

// addLoaded adds the loaded floors the plan timed to f.
func (o *outcome) addLoaded(f *reports.Floors) {
	f.QuicEchoLoaded, f.ProduceAckLoaded = o.loaded.QuicEchoLoaded, o.loaded.ProduceAckLoaded
}

// Run runs a defaulted, validated scenario on opts.Target and writes its
// report into opts.Out. The Result is returned even when the checker or an
// SLO failed (Result.Passed tells); an error means the run itself could not
// be done (ErrUnsupported, with file:line, when the scenario asks for what
// the target cannot do).
func Run(ctx context.Context, sc *scenarios.Scenario, opts Options) (*reports.Result, error) {
	t := opts.Target
	if t == nil {
		t = &InProcess{}
	}
	r := &pipeline{sc: sc, opts: opts, t: t, caps: t.Caps(), chk: newChecker(), ingress: &ingressIndex{}, p: newProgress(opts.Progress), bound: calib.NodeBound}
	defer r.chk.close()
	if err := Check(sc, r.caps); err != nil {
		return nil, err
	}
	if err := checkWorker(sc, opts.Worker); err != nil {
		return nil, err
	}
	r.share = share{split: opts.Worker, salt: uint32(time.Now().UnixNano()), chain: r.caps.ChainID}
	if !opts.StartAt.IsZero() {
		r.share.salt = uint32(opts.StartAt.UnixNano()) // the same for every worker
	}
	r.chk.fromReceipts = !r.caps.Blocks
	if err := os.MkdirAll(opts.Out, 0o755); err != nil {
		return nil, err
	}
	r.accounts = runAccounts(sc)
	r.genesis = genesisOf(r.accounts)
	traceShare := opts.TraceSample
	if traceShare == 0 {
		traceShare = tracing.DefaultSample
	}
	var err error
	if r.traces, err = newRunTraces(ctx, min(traceShare, 1), opts.OTLP); err != nil {
		return nil, err
	}
	defer r.traces.close() // after the target's Close: node processes flush their last spans
	err = t.Start(ctx, sc, Hooks{
		Genesis: r.genesis, OnBlock: r.chk.onBlockNow, OnIngress: r.ingress.stamp,
		Dir: opts.Out, Printf: r.p.printf, Trace: r.traces.hooks(),
	})
	defer t.Close()
	if err != nil {
		return nil, err
	}
	ctx, stopWatch := watch(ctx, t.Failed())
	defer stopWatch()
	floors, err := r.floors(ctx)
	if err != nil {
		return nil, err
	}
	var out *outcome
	if w := maxRateWorkload(sc); w != nil {
		out, err = r.maxRate(ctx, w)
	} else {
		out, err = r.fixed(ctx)
	}
	switch {
	case err != nil && out != nil:
		return r.interrupted(out, floors, err)
	case err != nil:
		return nil, err
	}
	return r.finish(ctx, out, floors)
}

// interruptBudget bounds what an interrupted run still does: write the
// report of what it measured.
const interruptBudget = 5 * time.Second

// interrupted writes the report of a run whose load was cut short by
// cause (a signal, a node that failed): no drain, the checker's counts as
// they stand (transactions still in flight count as lost), no SLOs. It
// returns the result with an error wrapping ErrInterrupted and cause.
func (r *pipeline) interrupted(out *outcome, floors reports.Floors, cause error) (*reports.Result, error) {
	r.p.printf("interrupted (%v): writing what was measured", cause)
	ctx, cancel := context.WithTimeout(context.Background(), interruptBudget)
	defer cancel()
	res := out.res
	r.describe(ctx, res)
	res.Checker = r.chk.verdict(nil)
	res.Checker.RootsUnchecked = true
	res.Checker.Notes = append(res.Checker.Notes, fmt.Sprintf("interrupted: %v — the load was cut short and not drained: transactions in flight count as lost, roots and SLOs were not checked", cause))
	res.Checker.Notes = append(res.Checker.Notes, out.notes...)
	if out.complete != nil {
		out.complete(res)
	}
	res.Blocks = r.blockStats(out)
	out.addLoaded(&floors)
	floors.Ratios = ratios(res, floors, r.sc.Cluster.Nodes)
	res.Floors = floors
	r.writeTraces(ctx, res)
	if _, err := reports.Write(r.opts.Out, res, out.snap, r.formats()); err != nil {
		return res, errors.Join(fmt.Errorf("%w: %w", ErrInterrupted, cause), err)
	}
	return res, fmt.Errorf("%w: %w", ErrInterrupted, cause)
}

// floorsMeasured reports whether the run measures floors: not skipped,
// and the target has them.
func (r *pipeline) floorsMeasured() bool { return !r.opts.SkipFloors && r.caps.Floors }

// blockStats summarises the blocks committed in out's window, when the
// target reports its blocks.
func (r *pipeline) blockStats(out *outcome) *reports.Blocks {
	if !r.caps.Blocks || out.from.IsZero() {
		return nil
	}
	return r.chk.blockStats(out.from, out.to, r.shards())
}

// floors measures the target's floors, unless skipped or it has none.
func (r *pipeline) floors(ctx context.Context) (reports.Floors, error) {
	if !r.floorsMeasured() {
		return reports.Floors{}, nil
	}
	what := "QUIC echo, produce→ack, Merkle batch, ed25519 verify"
	if wholePath(r.sc) {
		what += ", the QUIC echo's and a leader's Kafka round's CPU"
	}
	r.p.printf("measuring floors (%s)", what)
	paths, err := r.t.FloorPaths()
	if err != nil {
		return reports.Floors{}, fmt.Errorf("bench: floors: %w", err)
	}
	f, err := measureFloors(ctx, paths, r.sc)
	if err != nil {
		return f, fmt.Errorf("bench: floors: %w", err)
	}
	r.floorPaths = &paths
	return f, nil
}

// watch returns a context that ends, with the failure as its cause, when
// failed delivers one. stop releases the watcher.
func watch(ctx context.Context, failed <-chan error) (_ context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		select {
		case err := <-failed:
			cancel(err)
		case <-done:
		}
	}()
	return ctx, func() { close(done); cancel(nil) }
}

// Check reports, as scenario errors with file and line wrapping
// ErrUnsupported, what in sc the harness or a target with caps cannot run:
// each workload kind's own rules, the client protocols, load modes the
// harness cannot combine, and a timeline or network emulation on a target
// without faults.
func Check(sc *scenarios.Scenario, caps Caps) error {
	var errs []error
	bad := func(path, format string, args ...any) { errs = append(errs, sc.Invalid(path, format, args...)) }
	for i := range sc.Workload {
		w := &sc.Workload[i]
		path := fmt.Sprintf("workload[%d]", i)
		k, ok := kinds[w.Kind]
		if !ok {
			bad(path+".kind", "kind %q has no runner", w.Kind)
			continue
		}
		for _, pr := range k.check(w, caps) {
			bad(path+pr.field, "%s", pr.msg)
		}
		if !slices.Contains(caps.Protocols, w.Client) {
			bad(path+".client", "this target cannot be reached over %s (give the node's %s)", w.Client, map[bool]string{true: "QUIC address", false: "API address"}[w.Client == scenarios.ClientQUIC])
		}
		if w.MaxRate != nil && len(sc.Workload) > 1 {
			bad(path+".maxrate", "a max-rate search must be the only workload")
		}
		if n := plannedSends(sc, w); n > MaxSends {
			bad(path, "%.0f sends over warmup and duration, more than the %d a run may schedule: lower the rate or the duration", n, MaxSends)
		}
		if m := w.Mode(); w.Arrival == scenarios.ArrivalPoisson && m != scenarios.ModeRate && m != scenarios.ModeRamp {
			bad(path+".arrival", "poisson arrivals only with a rate or a ramp")
		}
		if m := w.MaxRate; m != nil {
			if st := maxRateStage(m); !slices.Contains(k.stages(), st) {
				bad(path+".maxrate.stage", "a %s workload records no %s stage", w.Kind, st)
			}
		}
	}
	if sc.Sweep != nil {
		bad("sweep", "a sweep is for rustorium simulate only")
	}
	if !caps.Faults && len(sc.Timeline) > 0 {
		bad("timeline", "timeline events need a target with fault injection (rustorium run)")
	}
	for i, e := range sc.Timeline {
		if e.DiskFull != "" && caps.Faults && !caps.DiskFull {
			bad(fmt.Sprintf("timeline[%d].disk_full", i), "a full disk is emulated for nodes in this process only (cluster.mode: inprocess)")
		}
		if e.Kill == scenarios.BrokerTarget && caps.Faults && !caps.BrokerRestart {
			bad(fmt.Sprintf("timeline[%d].kill", i), "a given broker can be stopped and started only through a control command (--broker-ctl, such as scripts/kafka.sh)")
		}
	}
	if !caps.Network && usesNetwork(sc) {
		bad("network", "network emulation needs a target that emulates it (rustorium run with cluster.mode inprocess)")
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	return nil
}

// plannedSends is how many sends an open-loop rate or ramp schedules over
// warmup and duration (0 for the other modes, known only when prepared).
func plannedSends(sc *scenarios.Scenario, w *scenarios.Workload) float64 {
	total := (sc.Warmup + sc.Duration).Std().Seconds()
	switch {
	case w.Rate > 0:
		return w.Rate.PerSecond() * total
	case w.Ramp != nil:
		return max(w.Ramp.From.PerSecond(), w.Ramp.To.PerSecond()) * total // a bound
	}
	return 0
}

// fixed is the plan of a scenario without a max-rate search: every
// workload runs through warmup and the measured phase, with the timeline,
// the resource sampler and the profiles over the measured phase.
func (r *pipeline) fixed(ctx context.Context) (*outcome, error) {
	sc := r.sc
	warmup, measure := sc.Warmup.Std(), sc.Duration.Std()
	loads := make([]*workloadRun, len(sc.Workload))
	defer func() {
		for _, l := range loads {
			l.close()
		}
	}()
	r.ingress.reset()
	for i := range sc.Workload {
		var err error
		if loads[i], err = prepare(ctx, sc, &sc.Workload[i], i, accountsFor(r.accounts, i), warmup+measure, r.share, r.signed, r.p.printf); err != nil {
			return nil, err
		}
	}
	if r.caps.Inspect { // the state reads may name before the run's first block
		r.chk.tips(r.t.Nodes(), r.shards())
	}
	start, err := r.loadStart()
	if err != nil {
		return nil, err
	}
	measured := start.Add(warmup)
	rec := reports.NewRecorder(reports.RecorderOptions{Start: measured})
	r.p.printf("running: %v warmup, %v measured", warmup, measure)
	sampler := reports.NewResourceSampler(reports.ResourceSamplerOptions{Origin: measured})
	if err := sampler.Start(ctx); err != nil {
		return nil, err
	}
	nodeSamplers := r.sampleNodes(ctx, measured)
	cost := startCost(ctx, r.t, measured)
	stopProgress := r.p.live(ctx, rec, r.chk, start, warmup, measure)
	timeline := runTimeline(ctx, sc, r.t.Faults(), r.chk, measured, r.p.printf)
	prof := profileMeasured(filepath.Join(r.opts.Out, "profile"), sc.Report.Profile, measured, r.nodeProcesses)
	var (
		probe     *floorProbe
		probeNote string
		loaded    reports.Floors
	)
	if r.floorPaths != nil {
		var perr error
		if probe, perr = startFloorProbe(ctx, *r.floorPaths, floorPayload(sc), measured); perr != nil {
			probeNote = perr.Error()
		}
	}
	err = r.runLoads(ctx, loads, rec, start, warmup+measure)
	if note := probe.stop(&loaded); note != "" {
		probeNote = note
	}
	costEnd := cost.end(ctx)
	profiles, notes := prof.stop()
	if probeNote != "" {
		notes = append(notes, probeNote)
	}
	timeline.stop()
	resources := sampler.Stop()
	nodeResources := stopSamplers(nodeSamplers)
	stopProgress()
	if err != nil {
		return nil, err
	}
	snap := rec.Snapshot()
	if ctx.Err() != nil { // cut short: rates over the measured time that ran
		measure = min(measure, max(time.Since(measured), time.Millisecond))
	}
	res := reports.NewResult(snap, measure)
	res.Resources, res.NodeResources = resources, nodeResources
	for _, nr := range nodeResources { // the nodes are the run's, not other work
		resources.Exclude(nr)
	}
	label(res, loads)
	cpuPerTx(res)
	res.Cost = costEnd.perTx(res)
	notes = append(notes, loadNotes(loads)...)
	notes = append(notes, generatorNotes(res, loads, measure)...)
	out := &outcome{res: res, snap: snap, notes: notes, complete: func(res *reports.Result) {
		res.Timeline = timeline.results(res, measured.Add(measure))
		res.Profiles = profiles
		if resources != nil {
			cpuProfileCaveat(res.Profiles, sc, resources.CPUPercentMean, runtime.NumCPU())
		}
		var nodesCPU float64
		for _, nr := range nodeResources {
			nodesCPU += nr.CPUSeconds()
		}
		profileCPU(res.Profiles, resources.CPUSeconds(), nodesCPU, committedTxs(res))
	}, from: measured, to: measured.Add(measure), loaded: loaded}
	// Interrupted (a signal, a node that failed): what was measured goes
	// into the report all the same.
	return out, context.Cause(ctx)
}

// loadStart is when the load starts: Options.StartAt, or now.
func (r *pipeline) loadStart() (time.Time, error) {
	at := r.opts.StartAt
	if at.IsZero() {
		return time.Now().Add(50 * time.Millisecond), nil
	}
	if late := time.Since(at); late > 0 {
		return at, fmt.Errorf("bench: the load was to start at %s, %v ago: the transactions were signed too late (start the workers further ahead)", at.Format(time.RFC3339Nano), late.Round(time.Millisecond))
	}
	r.p.printf("waiting for the start at %s (%v)", at.Format(time.RFC3339), time.Until(at).Round(time.Millisecond))
	return at, nil
}

// checkWorker refuses what cannot be split over workers.
func checkWorker(sc *scenarios.Scenario, w loadgen.Split) error {
	if w.Whole() {
		return nil
	}
	var errs []error
	for i, wl := range sc.Workload {
		path := fmt.Sprintf("workload[%d]", i)
		if wl.MaxRate != nil {
			errs = append(errs, sc.Invalid(path+".maxrate", "a max-rate search cannot be split over workers (each probe's verdict needs every send)"))
		}
		if wl.Clients > 0 && uint64(wl.Clients) < w.Count {
			errs = append(errs, sc.Invalid(path+".clients", "%d closed-loop clients cannot be split over %d workers", wl.Clients, w.Count))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: worker %s: %w", ErrUnsupported, w, err)
	}
	return nil
}

// sampleNodes starts a resource sampler per node process, for a target
// whose nodes are processes (none otherwise).
func (r *pipeline) sampleNodes(ctx context.Context, origin time.Time) map[string]*reports.ResourceSampler {
	pt, ok := r.t.(processTarget)
	if !ok {
		return nil
	}
	out := map[string]*reports.ResourceSampler{}
	for name, pid := range pt.nodePIDs() {
		s := reports.NewResourceSampler(reports.ResourceSamplerOptions{Origin: origin, PID: pid})
		if s.Start(ctx) == nil {
			out[name] = s
		}
	}
	return out
}

// nodeProcesses is the target's node processes' ids now, by node name (nil
// for a target whose nodes are not processes of this machine; a node that
// is down is left out).
func (r *pipeline) nodeProcesses() map[string]int {
	pt, ok := r.t.(processTarget)
	if !ok {
		return nil
	}
	out := map[string]int{}
	for name, pid := range pt.nodePIDs() {
		if p := pid(); p > 0 {
			out[name] = p
		}
	}
	return out
}

// stopSamplers stops the node samplers and returns what they sampled.
func stopSamplers(samplers map[string]*reports.ResourceSampler) map[string]*reports.Resources {
	if len(samplers) == 0 {
		return nil
	}
	out := map[string]*reports.Resources{}
	for name, s := range samplers {
		out[name] = s.Stop()
	}
	return out
}

// cpuPerTx fills in the CPU time per committed transaction of the measured
// phase, of the harness's process and of each node process.
func cpuPerTx(res *reports.Result) {
	committed := committedTxs(res)
	if res.Resources != nil {
		res.Resources.CPUMicrosPerTx = res.Resources.CPUPerTx(committed)
	}
	for _, rs := range res.NodeResources {
		rs.CPUMicrosPerTx = rs.CPUPerTx(committed)
	}
}

// committedTxs is the transactions the workloads saw committed in the
// measured phase.
func committedTxs(res *reports.Result) int64 {
	var committed int64
	for _, w := range res.Workloads {
		if s := w.Stages[reports.StageCommitted.String()]; s != nil {
			committed += s.Count
		}
	}
	return committed
}

// loadNotes explains what the workloads' own counts say about the run.
func loadNotes(loads []*workloadRun) []string {
	var notes []string
	for _, l := range loads {
		if f := l.obs.failed.Load(); f > 0 {
			notes = append(notes, fmt.Sprintf("workload %s: %d transactions committed as failed by execution (stale nonce or balance), with the reason in their receipts; a transfer fails when it reaches the log after a later transfer of its sender (its nonce is then used up: reordered by the network, or resent after its node went down) or when the sender's balance is short", l.name, f))
		}
	}
	for _, l := range loads {
		if l.closed != nil && l.closed.Limit > 0 && l.stats.Started >= l.closed.Limit {
			notes = append(notes, fmt.Sprintf("workload %s used all %d pre-signed transactions and stopped early", l.name, l.closed.Limit))
		}
	}
	return notes
}

// generatorLagBound is the smallest schedule lag p99 that says an open
// loop's generator could not keep up (or more, a send's mean gap).
const generatorLagBound = time.Millisecond

// generatorNotes marks the open-loop workloads whose generator lagged: a
// schedule lag p99 above generatorLagBound or above the mean gap between
// its sends, or sends it dropped. Their latencies are still corrected from
// the intended times, but the load the system saw was not the scenario's,
// so the run's figures are suspect; the result and the report say so.
func generatorNotes(res *reports.Result, loads []*workloadRun, measure time.Duration) []string {
	var notes []string
	for _, l := range loads {
		w := res.Workloads[l.name]
		if w == nil || l.closed != nil || w.Sent == 0 {
			continue
		}
		gap := measure / time.Duration(w.Sent)
		bound := max(generatorLagBound, gap)
		dropped := w.ErrorsByKind["dropped"]
		lag := time.Duration(w.LagP99Us) * time.Microsecond
		if lag <= bound && dropped == 0 {
			continue
		}
		w.GeneratorLagged = true
		why := fmt.Sprintf("schedule lag p99 %v (bound %v: 1 ms or the mean gap between sends)", lag.Round(time.Microsecond), bound.Round(time.Microsecond))
		if dropped > 0 {
			why += fmt.Sprintf(", %d sends dropped (too many in flight)", dropped)
		}
		notes = append(notes, fmt.Sprintf("workload %s: the load generator lagged: %s; the system was not offered the scenario's load on time, so this run's figures are suspect (%s)", l.name, why, lagCause(res.Resources, runtime.NumCPU())))
	}
	return notes
}

// busyCores is the share of the machine's cores above which a lagging
// generator is taken to have waited for a core: a Go timer fires when a P
// is free to run it, and on a machine whose cores are mostly busy that is
// late (the node of make run at 1000/s keeps three quarters of two cores
// busy on some hosts, and its generator lags 1.5-5 ms there).
const busyCores = 0.6

// lagCause says what the machine was doing while a generator lagged, from
// the run's resource samples (r: the run's own process; its nodes'
// processes and other work are the rest of the machine's CPU; steal is the
// time the hypervisor gave other guests, blamed past the quarter of a core
// after which a run's latencies are suspect, reports.Resources.Stolen),
// and what to do about it.
func lagCause(r *reports.Resources, cores int) string {
	if r == nil || r.MachineCPUPercentMean <= 0 || cores <= 0 {
		return "a busy machine, or a generator short of CPU"
	}
	pct := func(v float64) float64 { return v / float64(cores) }
	busy, own, other := pct(r.MachineCPUPercentMean), pct(r.CPUPercentMean), pct(r.OtherCPUPercentMean)
	nodes := max(0, busy-own-other)
	split := fmt.Sprintf("this process %.0f%%", own)
	if nodes >= 1 {
		split += fmt.Sprintf(", the nodes' processes %.0f%%", nodes)
	}
	split += fmt.Sprintf(", other work %.0f%%", other)
	switch {
	case r.Stolen(): // as a run whose latencies are judged is void (Resources.Busy)
		return fmt.Sprintf("the hypervisor took %.0f%% of the machine's %d cores' time for other guests (steal; %s): measure when the host is quiet", pct(r.StealPercentMean), cores, split)
	case busy < 100*busyCores:
		return fmt.Sprintf("the machine's %d cores were %.0f%% busy on average (%s): the generator's own goroutines or timers were late", cores, busy, split)
	case other > own+nodes:
		return fmt.Sprintf("the machine's %d cores were %.0f%% busy on average, mostly with other work (%s): measure on a quieter machine", cores, busy, split)
	}
	apart := "apart (cluster.mode: process, or rustorium loadgen on another machine)"
	if nodes >= 1 { // it is apart from the nodes already
		apart = "on another machine (rustorium loadgen)"
	}
	return fmt.Sprintf("the machine's %d cores were %.0f%% busy on average (%s): the generator waited for cores that what it drives kept busy; run it %s to tell its lag from the load", cores, busy, split, apart)
}

// label records each workload's kind, client and resends in the result.
func label(res *reports.Result, loads []*workloadRun) {
	for _, l := range loads {
		if w := res.Workloads[l.name]; w != nil {
			w.Kind, w.Client = string(l.kind), string(l.client)
			if l.obs != nil {
				w.Resent = l.obs.resent.Load()
			}
		}
	}
}

// runLoads drives every workload from start for total (warmup included) and
// returns when all sends have completed.
func (r *pipeline) runLoads(ctx context.Context, loads []*workloadRun, rec *reports.Recorder, start time.Time, total time.Duration) error {
	sendFuncs := make([]loadgen.SendFunc, len(loads))
	for i, l := range loads {
		conns, err := r.t.Conns(l.client)
		if err != nil {
			return err
		}
		n := 0 // reads have no ingress stamps to match
		if l.sends.txs != nil {
			n = l.sends.txs.Len()
		}
		l.obs = newObserver(rec.Workload(l.name), r.chk, n)
		sendFuncs[i] = l.sends.sender(conns, l.obs, r.chk)
	}
	// After the observers exist (the node's ingress hook reads them): the
	// presigned transactions join the ingress index and the trace marks,
	// as streamed ones do when they are signed.
	for _, l := range loads {
		l.measured = rec.Start()
		l.obs.traced = &l.traced
		if pre, ok := l.sends.txs.(loadgen.Presigned); ok {
			for i, raw := range pre {
				r.signed(l, uint64(i), raw)
			}
		}
	}
	var wg sync.WaitGroup
	for i, l := range loads {
		send := sendFuncs[i]
		if l.closed != nil {
			l.obs.expected = l.closed.Expected
			wg.Go(func() { l.stats = l.closed.Run(ctx, start, total, send) })
			continue
		}
		ol := &loadgen.OpenLoop{Pacer: l.pacer, OnDrop: l.dropped}
		wg.Go(func() { l.stats = ol.Run(ctx, start, total, send) })
	}
	wg.Wait()
	return nil
}

// finish drains the target, fills in everything but the workloads, stops
// the target before the node bound is measured, checks the SLOs and writes
// the report folder.
func (r *pipeline) finish(ctx context.Context, out *outcome, floors reports.Floors) (*reports.Result, error) {
	sc, res := r.sc, out.res
	// Drain: give the nodes until the drain deadline to commit everything
	// that was accepted; what is still missing then is lost.
	r.p.printf("draining (up to %v) and checking", sc.Drain.Std())
	r.chk.waitCommitted(ctx, sc.Drain.Std())
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	r.describe(ctx, res)
	res.Checker = r.check(ctx)
	res.Checker.Notes = append(res.Checker.Notes, out.notes...)
	if out.complete != nil {
		out.complete(res)
	}
	res.Blocks = r.blockStats(out)
	if r.floorsMeasured() && res.Blocks != nil && res.Blocks.Count > 0 {
		// The bound is measured on cores nothing else uses: a target
		// left running meanwhile (its compactions, its broker, its heap's
		// collections) took a third to a half of it (4.1k to 8.6k puts/s
		// measured after four maxrate-committed runs, where the same
		// blocks measured alone gave 7.0k to 8.0k).
		r.t.Close()
		r.p.printf("measuring the node bound (blocks of the run's mean size, the target stopped)")
		if err := nodeBound(ctx, r.bound, &floors, sc, res.Blocks, res.Cost); err != nil {
			if ctx.Err() != nil {
				return nil, context.Cause(ctx)
			}
			res.Checker.Notes = append(res.Checker.Notes, fmt.Sprintf("floors: %v", err))
		}
		pathFloor(&floors, res.Blocks, res.Cost)
	}
	out.addLoaded(&floors)
	floors.Ratios = ratios(res, floors, r.sc.Cluster.Nodes)
	res.Floors = floors
	slos, err := sc.ReportSLOs()
	if err != nil {
		return res, err
	}
	if r.opts.Worker.Whole() {
		res.SLO = res.CheckSLOs(slos)
	} else if len(slos) > 0 {
		// A worker's share is not the load the SLOs speak of (its
		// throughput is a fraction of it): they hold for the merged report.
		res.Checker.Notes = append(res.Checker.Notes, fmt.Sprintf("worker %s: the scenario's %d SLOs are evaluated by rustorium report merge on the whole load", r.opts.Worker, len(sc.SLO)))
	}
	r.writeTraces(ctx, res)
	if _, err := reports.Write(r.opts.Out, res, out.snap, r.formats()); err != nil {
		return res, err
	}
	return res, nil
}

// writeTraces writes traces.json and summarises it in res; a failure is a
// note, not the run's.
func (r *pipeline) writeTraces(ctx context.Context, res *reports.Result) {
	sum, err := r.traces.write(ctx, r.opts.Out)
	if err != nil {
		res.Checker.Notes = append(res.Checker.Notes, fmt.Sprintf("traces: %v", err))
		return
	}
	res.Traces = sum
	res.Files = append(res.Files, tracing.TracesFile)
}

// describe fills in what the run was: scenario, seed, worker, warmup,
// environment and the resolved scenario.
func (r *pipeline) describe(ctx context.Context, res *reports.Result) {
	sc := r.sc
	res.Scenario, res.Seed, res.Description = sc.Name, sc.Seed, sc.Description
	if r.opts.Worker.Count > 0 {
		res.Worker = r.opts.Worker.String()
	}
	res.WarmupS = sc.Warmup.Std().Seconds()
	res.Environment = reports.CollectEnvironment(ctx, reports.EnvOptions{Broker: r.t.Caps().Broker}) // as started: a scenario may name real brokers
	if b, err := json.Marshal(sc.Resolved()); err == nil {
		res.Resolved = b
	}
}

// formats are the report formats the scenario asks for that reports writes.
func (r *pipeline) formats() []string {
	formats := make([]string, 0, len(r.sc.Report.Formats))
	for _, f := range r.sc.Report.Formats {
		if reports.Supported(string(f)) {
			formats = append(formats, string(f))
		}
	}
	return formats
}

// shards is the number of shards the target's nodes run.
func (r *pipeline) shards() int {
	if r.caps.Shards > 0 {
		return r.caps.Shards
	}
	return r.sc.Cluster.Shards
}

// check is the checker's verdict, with what the target's nodes say when
// they can be read: every running node converges on the same height, block
// and root on every shard, and conserves the genesis balances (each
// bounded by the drain again).
func (r *pipeline) check(ctx context.Context) reports.Checker {
	drain := r.sc.Drain.Std()
	var notes []string
	if !r.caps.Blocks {
		notes = append(notes, "commits counted from the clients' receipts (the target reports no blocks)")
	}
	if !r.caps.Inspect {
		v := r.chk.verdict(nil)
		v.RootsUnchecked = true
		v.Notes = append(v.Notes, append(notes, "the target's nodes cannot be read: their stores and roots were not inspected")...)
		return v
	}
	rootsOK, rootNotes := rootsEqual(ctx, r.t, r.shards(), drain)
	nodes := r.t.Nodes()
	v := r.chk.verdict(nodes)
	v.RootsEqual = rootsOK
	v.Notes = append(v.Notes, notes...)
	v.Notes = append(v.Notes, rootNotes...)
	if len(r.genesis) > 0 {
		ok, notes := conserved(ctx, r.t, r.genesis, drain)
		v.BalancesConserved = &ok
		v.Notes = append(v.Notes, notes...)
	}
	if down := r.sc.Cluster.Nodes - len(nodes); down > 0 {
		v.Notes = append(v.Notes, fmt.Sprintf("%d node(s) down at the end (killed without restart): checked on the %d running", down, len(nodes)))
	}
	return v
}

// ingressIndex maps transaction ids to their workload and send index, so the
// node's ingress hook can stamp the right send. Streamed transactions are
// added as they are signed, presigned ones when the load starts (add), and
// each entry goes with its stamp, so that a streamed run's index stays as
// small as its sends in flight. reset empties it for the next load.
type ingressIndex struct {
	mu  sync.RWMutex
	ids map[tx.ID]ingressRef
}

type ingressRef struct {
	l *workloadRun // its observer is set before any send: read it at stamp time
	i uint64
}

// reset empties the index, before a load's workloads are prepared.
func (x *ingressIndex) reset() {
	x.mu.Lock()
	x.ids = map[tx.ID]ingressRef{}
	x.mu.Unlock()
}

// add registers send i of l, whose id is id.
func (x *ingressIndex) add(id tx.ID, l *workloadRun, i uint64) {
	x.mu.Lock()
	if x.ids == nil {
		x.ids = map[tx.ID]ingressRef{}
	}
	x.ids[id] = ingressRef{l, i}
	x.mu.Unlock()
}

// signed registers send i of l, signed as raw: in the ingress index, and
// among the traced sends when its id is sampled. Streamed transactions are
// registered as they are signed, presigned ones when the load starts.
func (r *pipeline) signed(l *workloadRun, i uint64, raw []byte) {
	id := tx.IDOf(raw)
	r.ingress.add(id, l, i)
	r.traces.markOne(l, i, id)
}

// stamp records the node's ingress of transaction id, once: a resend's
// second ingress (on another node) is not a send of its own.
func (x *ingressIndex) stamp(id tx.ID, at time.Time) {
	x.mu.Lock()
	r, ok := x.ids[id]
	delete(x.ids, id)
	x.mu.Unlock()
	if ok {
		r.l.obs.ingress(r.i, at)
	}
}
