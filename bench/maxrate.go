package bench

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/rustorium/rustorium/reports"
	"github.com/rustorium/rustorium/scenarios"
)

// maxRateWorkload returns the scenario's max-rate workload, if it has one
// (then it is the only workload; Check makes sure).
func maxRateWorkload(sc *scenarios.Scenario) *scenarios.Workload {
	for i := range sc.Workload {
		if sc.Workload[i].Mode() == scenarios.ModeMaxRate {
			return &sc.Workload[i]
		}
	}
	return nil
}

// maxRate is the plan of a max-rate search: it looks for the highest
// open-loop rate whose corrected p99 of the chosen stage stays within the
// bound with no errors. It doubles the rate from From until a probe fails
// (or To is reached), then bisects between the last passing and the first
// failing rate until the bracket is narrower than Precision. Each probe
// runs for Step on the same target, with transactions signed before it
// starts. The report's workload figures are those of the best passing
// probe; result.json's "maxrate" holds the knee and every probe.
func (r *pipeline) maxRate(ctx context.Context, w *scenarios.Workload) (*outcome, error) {
	s, err := r.newSearch(w)
	if err != nil {
		return nil, err
	}
	if warm := r.sc.Warmup.Std(); warm > 0 {
		r.p.printf("max-rate: warming up at %v/s for %v", s.from, warm)
		if _, err := r.probe(ctx, w, s.from, warm, s.stage); err != nil {
			return nil, err
		}
	}
	// The machine and the processes under test over every probe: a
	// knee is only as good as the quietest of the probes around it.
	origin := time.Now()
	sampler := reports.NewResourceSampler(reports.ResourceSamplerOptions{Origin: origin})
	if err := sampler.Start(ctx); err != nil {
		return nil, err
	}
	defer sampler.Stop()
	nodeSamplers := r.sampleNodes(ctx, origin)
	defer stopSamplers(nodeSamplers)
	var lo, hi float64 // last passing, first failing (0: none yet)
	for rate := s.from; rate <= s.to; rate *= 2 {
		ok, err := s.try(ctx, rate)
		if err != nil {
			return nil, err
		}
		if !ok {
			hi = rate
			break
		}
		lo = rate
	}
	for lo > 0 && hi > 0 && (hi-lo)/hi > s.precision {
		mid := (lo + hi) / 2
		ok, err := s.try(ctx, mid)
		if err != nil {
			return nil, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	return s.outcome(hi == 0, sampler.Stop(), stopSamplers(nodeSamplers)), nil
}

// search is the state of a max-rate search.
type search struct {
	r                   *pipeline
	w                   *scenarios.Workload
	stage               reports.Stage
	step                time.Duration
	from, to, precision float64
	out                 *reports.MaxRate
	best                *probed // the best passing probe
	bestRate            float64
}

func (r *pipeline) newSearch(w *scenarios.Workload) (*search, error) {
	m := w.MaxRate
	stage := maxRateStage(m)
	return &search{
		r: r, w: w, stage: stage, step: m.Step.Std(),
		from: m.From.PerSecond(), to: m.To.PerSecond(), precision: m.Precision.Fraction(),
		out: &reports.MaxRate{Stage: stage.String(), BoundUs: m.P99.Std().Microseconds()},
	}, nil
}

// try probes rate and reports whether it passed.
func (s *search) try(ctx context.Context, rate float64) (bool, error) {
	p, err := s.r.probe(ctx, s.w, rate, s.step, s.stage)
	if err != nil {
		return false, err
	}
	pt := &p.point
	pt.OK = pt.Errors == 0 && pt.P99Us > 0 && pt.P99Us <= s.out.BoundUs
	s.out.Points = append(s.out.Points, *pt)
	cpu := ""
	if pt.CPUMicrosPerTx > 0 {
		cpu = fmt.Sprintf(", %.0f µs CPU a committed tx", pt.CPUMicrosPerTx)
	}
	s.r.p.printf("max-rate: %.0f/s → %.0f tx/s, %s p99 %s%s, %d errors%s: %s", rate, pt.ThroughputTPS, s.stage, reports.FormatMicros(pt.P99Us), cpu, pt.Errors, errorSummary(pt.ErrorsByKind), map[bool]string{true: "pass", false: "fail"}[pt.OK])
	if pt.OK && rate > s.bestRate {
		s.best, s.bestRate = p, rate
		s.out.KneeRate, s.out.KneeTPS = rate, pt.ThroughputTPS
	}
	return pt.OK, nil
}

// outcome is the search's result: the best passing probe's figures, with
// resources sampled over every probe (resources and nodeResources: the
// machine's steal and other work, the peak RSS) and the best probe's CPU
// and cost a transaction.
func (s *search) outcome(aboveRange bool, resources *reports.Resources, nodeResources map[string]*reports.Resources) *outcome {
	var res *reports.Result
	var snap *reports.Snapshot
	var from, to time.Time
	if s.best != nil {
		snap, from, to = s.best.snap, s.best.from, s.best.from.Add(s.step)
		res = reports.NewResult(snap, s.step)
	} else {
		res = &reports.Result{Workloads: map[string]*reports.WorkloadResult{}}
	}
	if wr := res.Workloads[s.w.Name]; wr != nil {
		wr.Kind, wr.Client = string(s.w.Kind), string(s.w.Client)
	}
	res.Resources, res.NodeResources = resources, nodeResources
	for _, nr := range nodeResources {
		resources.Exclude(nr)
	}
	if s.best != nil {
		s.best.charge(res)
	}
	var notes []string
	if aboveRange {
		notes = append(notes, fmt.Sprintf("max-rate: every probe up to %v/s passed; the knee is above the search range", s.to))
	}
	return &outcome{res: res, snap: snap, notes: notes, complete: func(r *reports.Result) { r.MaxRate = s.out }, from: from, to: to}
}

// probed is what one probe measured.
type probed struct {
	snap  *reports.Snapshot
	point reports.MaxRatePoint
	from  time.Time // the probe's start
	// cpu is the CPU time each process under test used over the probe
	// and its drain (processCPU's keys), cpuWhole false when a node
	// process restarted meanwhile (cpu then has this process's only);
	// cost, the nodes' counters over the same time (nil without them).
	cpu      map[string]time.Duration
	cpuWhole bool
	cost     *costReading
}

// charge puts the probe's CPU and cost a committed transaction into res,
// the result made of its snapshot: resources' and each node process's
// cpu_us_per_tx, and cost.
func (p *probed) charge(res *reports.Result) {
	committed := committedTxs(res)
	if res.Resources != nil {
		res.Resources.CPUMicrosPerTx = microsPerTx(p.cpu[selfCPU], committed)
	}
	for name, rs := range res.NodeResources {
		rs.CPUMicrosPerTx = microsPerTx(p.cpu[name], committed)
	}
	res.Cost = p.cost.perTx(res)
}

// probe offers rate for d and measures the stage over the whole probe.
func (r *pipeline) probe(ctx context.Context, w *scenarios.Workload, rate float64, d time.Duration, stage reports.Stage) (*probed, error) {
	pw := *w
	pw.MaxRate, pw.Rate = nil, scenarios.Rate(rate)
	// Every probe sends transactions of its own: the same salt would make
	// the same ids, which the node takes as resends of committed ones.
	r.probes++
	sh := r.share
	sh.salt += r.probes * 0x9e3779b9
	r.ingress.reset()
	l, err := prepare(ctx, r.sc, &pw, 0, nil, d, sh, r.signed, r.p.printf)
	if err != nil {
		return nil, err
	}
	defer l.close()
	start := time.Now().Add(50 * time.Millisecond)
	rec := reports.NewRecorder(reports.RecorderOptions{Start: start})
	cost := startCost(ctx, r.t, start)
	cpuBefore := r.processCPU()
	err = r.runLoads(ctx, []*workloadRun{l}, rec, start, d)
	p := &probed{from: start, cost: cost.end(ctx)}
	p.cpu, p.cpuWhole = r.processCPU().since(cpuBefore)
	if err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	p.snap = rec.Snapshot()
	p.point = reports.MaxRatePoint{Rate: rate}
	pt := &p.point
	if ws := p.snap.Workload(w.Name); ws != nil {
		pt.Errors, pt.ErrorsByKind = ws.Errors, ws.ErrorsByKind
		if h := ws.Stages[stage].Uncorrected; h != nil && h.TotalCount() > 0 {
			pt.ThroughputTPS = float64(h.TotalCount()) / d.Seconds()
		}
		if h := ws.Stages[stage].Corrected; h != nil && h.TotalCount() > 0 {
			pt.P50Us, pt.P99Us = h.ValueAtQuantile(50), h.ValueAtQuantile(99)
		}
		if h := ws.Stages[reports.StageCommitted].Uncorrected; h != nil && p.cpuWhole {
			pt.CPUMicrosPerTx = microsPerTx(costCPUTime(p.cpu), h.TotalCount())
		}
	}
	return p, nil
}

// selfCPU is processCPU's key for this process.
const selfCPU = ""

// cpuClocks is the CPU time each process under test has used at one
// instant: this process under selfCPU, and each node process of this
// machine under its node's name.
type cpuClocks map[string]processClock

type processClock struct {
	pid int // 0 for this process
	cpu time.Duration
}

// processCPU reads the processes under test's CPU clocks now; a process
// whose clock cannot be read is left out.
func (r *pipeline) processCPU() cpuClocks {
	out := cpuClocks{}
	if d, err := reports.ProcessCPU("/proc/self/stat"); err == nil {
		out[selfCPU] = processClock{cpu: d}
	}
	for name, pid := range r.nodeProcesses() {
		if d, err := reports.ProcessCPU(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			out[name] = processClock{pid: pid, cpu: d}
		}
	}
	return out
}

// since is the CPU each process used from before to c. A process read at
// only one end, or that restarted in between (another pid), is left out;
// so are all node processes when any of them is, so that their sum is
// never a part passed off as the whole: whole is then false.
func (c cpuClocks) since(before cpuClocks) (cpu map[string]time.Duration, whole bool) {
	cpu, whole = map[string]time.Duration{}, true
	for name, b := range before {
		a, ok := c[name]
		if !ok || a.pid != b.pid || a.cpu < b.cpu {
			whole = whole && name == selfCPU
			continue
		}
		cpu[name] = a.cpu - b.cpu
	}
	if !whole {
		return map[string]time.Duration{selfCPU: cpu[selfCPU]}, false
	}
	return cpu, true
}

// costCPUTime is the CPU time of cpu that a transaction's cost counts, as
// cost.cpu_us_per_tx does: the node processes' together when there are
// any, else this process's.
func costCPUTime(cpu map[string]time.Duration) time.Duration {
	var nodes time.Duration
	for name, d := range cpu {
		if name != selfCPU {
			nodes += d
		}
	}
	if nodes > 0 {
		return nodes
	}
	return cpu[selfCPU]
}

// microsPerTx is d per transaction of txs, in microseconds rounded to a
// tenth; 0 without either.
func microsPerTx(d time.Duration, txs int64) float64 {
	if txs <= 0 || d <= 0 {
		return 0
	}
	return math.Round(d.Seconds()*1e6/float64(txs)*10) / 10
}

// maxRateStage is the stage a search bounds (accepted by default).
func maxRateStage(m *scenarios.MaxRate) reports.Stage {
	if m.Stage == nil {
		return scenarios.DefaultMaxRateStage
	}
	return *m.Stage
}

// errorSummary lists error kinds and counts, most frequent first,
// " (kind: n, …)", or "" for none.
func errorSummary(kinds map[string]int64) string {
	if len(kinds) == 0 {
		return ""
	}
	names := reports.ErrorKinds(kinds)
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = fmt.Sprintf("%s: %d", k, kinds[k])
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
