package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/rustorium/rustorium/calib"
	"github.com/rustorium/rustorium/reports"
	"github.com/rustorium/rustorium/scenarios"
	"github.com/rustorium/rustorium/sim/des"
)

// outcome builds the result of a finished simulation.
func (e *engine) outcome(wall time.Duration) (*Outcome, error) {
	sc := e.sc
	snap := e.rec.Snapshot()
	e.addDrops(snap)
	snap.Taken = e.wall(e.s.Now())
	res := reports.NewResult(snap, sc.Duration.Std())
	res.Scenario, res.Seed, res.Description = sc.Name, sc.Seed, sc.Description
	res.WarmupS = sc.Warmup.Std().Seconds()
	res.Environment = reports.Environment{
		Go: e.opts.Calib.Machine.GoVersion, GOMAXPROCS: e.cores, CPU: e.opts.Calib.Machine.CPUModel,
		OS: e.opts.Calib.Machine.OS, Arch: e.opts.Calib.Machine.Arch, NumCPU: e.cores, Commit: "simulated", Broker: "simulated",
	}
	if b, err := json.Marshal(sc.Resolved()); err == nil {
		res.Resolved = b
	}
	for i, w := range sc.Workload {
		if wr := res.Workloads[w.Name]; wr != nil {
			wr.Kind, wr.Client = string(w.Kind), string(w.Client)
			_ = i
		}
	}
	lost := e.accepted - e.acceptedCommitted()
	res.Checker = reports.Checker{
		Accepted: e.accepted, Committed: e.acceptedCommitted(), Lost: lost, RootsEqual: true,
		Notes: []string{"simulated: every node computes the same roots; lost = accepted but not committed by the end of the drain"},
	}
	for _, p := range e.apiEstimated {
		res.Checker.Notes = append(res.Checker.Notes, fmt.Sprintf("simulated: the %s clients' requests are priced by an estimate from the QUIC figures (the calibration has no ops.api entry for %s)", p, p))
	}
	res.Floors = floorsOf(e.k.c, sc)
	res.Blocks = e.blockStats()
	slos, err := sc.ReportSLOs()
	if err != nil {
		return nil, err
	}
	res.SLO = res.CheckSLOs(slos)
	e.stalls()
	res.Timeline = e.timeline
	ends := map[int]time.Duration{}
	for _, a := range sc.Schedule() {
		ends[a.Event] = max(ends[a.Event], a.At.Std())
	}
	for i, ev := range sc.Timeline {
		if i < len(res.Timeline) {
			res.Timeline[i].Recovery = reports.Recovery(res, ev.At.Std(), ends[i])
		}
	}
	res.Simulated = true
	c := e.opts.Calib
	res.Calibration = &reports.Calibration{File: e.opts.CalibFile, CPUModel: c.Machine.CPUModel, Cores: c.Machine.Cores, GoVersion: c.Machine.GoVersion, Quick: c.Quick, Busy: c.Busy}
	if len(c.Busy) > 0 {
		res.Checker.Notes = append(res.Checker.Notes, fmt.Sprintf("simulated: the calibration's end-to-end runs shared the machine with other work (%s); its overheads and tails are suspect", strings.Join(c.Busy, "; ")))
	}
	res.Simulation = e.simulation(wall)
	return &Outcome{Result: res, Snapshot: snap}, nil
}

// blockStats summarises the blocks first committed in the measured phase,
// as a run's checker does (reports.Blocks); nil when none was. At an
// overload its transactions a second are the node's committed rate, which
// the committed stage's tx/s (the sends of the measured phase that
// committed) is not when the open loop's in-flight bound decides which
// sends fall in the phase.
func (e *engine) blockStats() *reports.Blocks {
	b := reports.NewBlocks(len(e.shards))
	for s, sh := range e.shards {
		for _, blk := range sh.blocks {
			if blk.first > 0 && blk.first >= e.measureStart && blk.first < e.measureEnd {
				b.Add(uint32(s), int64(blk.n))
			}
		}
	}
	return b.Done()
}

// acceptedCommitted counts the accepted transactions some node committed.
func (e *engine) acceptedCommitted() int64 { return min(e.committed, e.accepted) }

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// simulation is the model's own section of the result.
func (e *engine) simulation(wall time.Duration) *reports.Simulation {
	out := &reports.Simulation{
		Host: string(e.opts.Host), CoresPerNode: e.cores, Brokers: max(e.sc.Cluster.Brokers, 1),
		Finality: "count", VirtualS: time.Duration(e.s.Now()).Seconds(), Events: e.s.Events(),
		WallS: math.Round(wall.Seconds()*1000) / 1000, Blocks: e.blocks,
		Utilisation: map[string]map[string]float64{},
	}
	if e.real && !e.cohort {
		out.Finality = "consensus"
	}
	out.BackgroundLoad = e.opts.BackgroundLoad
	out.Mode = "tx"
	if e.cohort {
		out.Mode = "cohort"
		out.CohortWindowMS = float64(e.window) / float64(des.Millisecond)
	}
	if e.blocks > 0 {
		out.BlockMeanTxs = math.Round(float64(e.blockTxs)/float64(e.blocks)*10) / 10
	}
	out.Spans = reports.SpanStats(e.spans)
	var servers []*des.Server
	seen := map[*des.Server]bool{}
	add := func(v *des.Server) {
		if v != nil && !seen[v] {
			seen[v] = true
			servers = append(servers, v)
		}
	}
	for _, n := range e.nodes {
		add(n.cpu)
		add(n.disk)
	}
	for _, b := range e.brokers {
		add(b.cpu)
	}
	for _, v := range servers {
		m := map[string]float64{}
		var total float64
		best, bestOp := 0.0, ""
		for op := range numOps {
			u := v.Utilisation(op)
			if u <= 0 {
				continue
			}
			m[opNames[op]] = round3(u)
			total += u
			if u > best {
				best, bestOp = u, opNames[op]
			}
		}
		m["total"] = round3(total)
		out.Utilisation[v.Name] = m
		if out.Bottleneck == nil || total > out.Bottleneck.Utilisation {
			out.Bottleneck = &reports.Bottleneck{Resource: v.Name, Utilisation: round3(total), Operation: bestOp}
		}
	}
	var dropped int64
	for _, w := range e.wls {
		dropped += w.dropped
	}
	if dropped > 0 {
		// The load generator's own bound (20000 sends in flight per open
		// loop) stopped sends before any resource saturated.
		if out.Bottleneck == nil || out.Bottleneck.Utilisation < 0.95 {
			out.Bottleneck = &reports.Bottleneck{Resource: "clients", Utilisation: 1, Operation: fmt.Sprintf("the open loop's in-flight bound: %d sends dropped", dropped)}
		}
	}
	keys := make([][2]string, 0, len(e.links))
	for k := range e.links {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][0]+keys[i][1] < keys[j][0]+keys[j][1] })
	for _, k := range keys {
		if u := e.links[k].Utilisation(); u > 0 {
			name := "link " + k[0] + "→" + k[1]
			out.Utilisation[name] = map[string]float64{"total": round3(u)}
			if u > out.Bottleneck.Utilisation {
				out.Bottleneck = &reports.Bottleneck{Resource: name, Utilisation: round3(u), Operation: "bandwidth"}
			}
		}
	}
	return out
}

// floorsOf states the calibration's figures (at the scenario's pace,
// calib.Calibration.AtGap) as the run's floors: what the model's stages
// cannot beat. The QUIC echo crosses the scenario's
// emulated link between the clients and node-1 both ways, as a real run's
// floor does (its produce→ack goes to the broker directly).
func floorsOf(c *calib.Calibration, sc *scenarios.Scenario) reports.Floors {
	us := func(ns float64) int64 { return int64(math.Round(ns / 1000)) }
	lat := func(l calib.Latency, plus float64) *reports.Percentiles {
		return &reports.Percentiles{P50: us(l.P50Ns + plus), P99: us(l.P99Ns + plus), Max: us(l.P99Ns + plus), Mean: math.Round((l.MeanNs+plus)/100) / 10}
	}
	nw, node1 := sc.NetworkAt(0), scenarios.NodeName(1)
	wire := float64(nw.Path(scenarios.EndpointClients, node1).Effective().Delay + nw.Path(node1, scenarios.EndpointClients).Effective().Delay)
	block := sc.Cluster.Block.MaxTxs
	f := reports.Floors{
		QuicEcho: lat(c.Ops.QUICRoundTrip, wire), ProduceAck: lat(c.Ops.ProduceAck, 0),
		ProduceCeilingTPS: math.Round(c.Ops.ProduceCeilingTPS*10) / 10,
		VerifyCeilingTPS:  math.Round(float64(c.Machine.Cores)*1e9*128/c.VerifyBatchNs(128)*10) / 10,
	}
	if m := c.MerkleBlockNs(block, 0); m > 0 {
		f.MerkleCeilingWPS = math.Round(float64(c.Machine.Cores)*float64(block)*1e9/m*10) / 10
	}
	if s := c.StateBlockNs(block); s > 0 {
		f.StateCeilingWPS = math.Round(float64(c.Machine.Cores)*float64(block)*1e9/s*10) / 10
	}
	return f
}

// runMaxRate searches for the knee as `rustorium run` does: probes of
// step length at doubling rates until one fails, then bisection; each
// probe is a simulation of its own (with the scenario's warmup first).
func runMaxRate(ctx context.Context, sc *scenarios.Scenario, w *scenarios.Workload, opts Options) (*Outcome, error) {
	m := w.MaxRate
	stage := reports.StageAccepted
	if m.Stage != nil {
		stage = *m.Stage
	}
	bound := m.P99.Std()
	wall := time.Now()
	var (
		points []reports.MaxRatePoint
		best   *Outcome
		bestR  float64
		events uint64
	)
	probe := func(rate float64) (bool, error) {
		p := sc.Clone()
		p.Duration = m.Step
		pw := &p.Workload[0]
		pw.MaxRate = nil
		pw.Rate = scenarios.Rate(rate)
		e, err := newEngine(p, opts)
		if err != nil {
			return false, err
		}
		if err := e.run(ctx); err != nil {
			return false, err
		}
		out, err := e.outcome(0)
		if err != nil {
			return false, err
		}
		events += e.s.Events()
		wr := out.Result.Workloads[w.Name]
		var st *reports.StageResult
		if wr != nil {
			st = wr.Stages[stage.String()]
		}
		ok := wr != nil && st != nil && wr.Errors == 0 && time.Duration(st.Corrected.P99)*time.Microsecond <= bound
		pt := reports.MaxRatePoint{Rate: rate, OK: ok}
		if wr != nil {
			pt.Errors, pt.ThroughputTPS = wr.Errors, wr.ThroughputTPS
			if st != nil {
				pt.P50Us, pt.P99Us = st.Corrected.P50, st.Corrected.P99
			}
		}
		points = append(points, pt)
		if ok && rate >= bestR {
			best, bestR = out, rate
		}
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "probe %.0f/s: %s p99 %dµs, errors %d, ok %v\n", rate, stage, pt.P99Us, pt.Errors, ok)
		}
		return ok, nil
	}
	lo, hi := 0.0, 0.0
	for r := m.From.PerSecond(); ; r *= 2 {
		r = min(r, m.To.PerSecond())
		ok, err := probe(r)
		if err != nil {
			return nil, err
		}
		if !ok {
			hi = r
			break
		}
		lo = r
		if r >= m.To.PerSecond() {
			break
		}
	}
	for hi > 0 && lo > 0 && hi-lo > m.Precision.Fraction()*hi {
		mid := (lo + hi) / 2
		ok, err := probe(mid)
		if err != nil {
			return nil, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	if best == nil { // even the first probe failed: report it
		p := sc.Clone()
		p.Duration = m.Step
		p.Workload[0].MaxRate, p.Workload[0].Rate = nil, m.From
		e, err := newEngine(p, opts)
		if err != nil {
			return nil, err
		}
		if err := e.run(ctx); err != nil {
			return nil, err
		}
		if best, err = e.outcome(0); err != nil {
			return nil, err
		}
	}
	res := best.Result
	res.Scenario, res.Description = sc.Name, sc.Description
	// The floors at the search's own pace, as a real search measures them
	// (not the knee's probe's: each probe prices its hops at its rate).
	res.Floors = floorsOf(opts.Calib.AtGap(sc.FloorGap()), sc)
	if b, err := json.Marshal(sc.Resolved()); err == nil {
		res.Resolved = b
	}
	knee := reports.MaxRate{Stage: stage.String(), BoundUs: bound.Microseconds(), Points: points}
	if bestR > 0 {
		knee.KneeRate = bestR
		knee.KneeTPS = res.Workloads[w.Name].ThroughputTPS
	}
	res.MaxRate = &knee
	res.Simulation.WallS = math.Round(time.Since(wall).Seconds()*1000) / 1000
	res.Simulation.Events = events
	return best, nil
}
