package bench

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"time"

	"github.com/google/pprof/profile"

	"github.com/rustorium/rustorium/internal/perfprof"
	"github.com/rustorium/rustorium/reports"
	"github.com/rustorium/rustorium/scenarios"
)

// profileTop is how many functions each profile summary lists.
const profileTop = 15

// profiler captures the scenario's report.profile kinds over the measured
// phase only, into DIR/profile/<kind>.pprof (trace.out for the trace).
type profiler struct {
	dir    string
	kinds  []scenarios.Profile
	cpu    *os.File
	tr     *os.File
	perf   *perfprof.Recorder
	notes  []string
	active bool
}

// startProfiles starts kinds into dir; nodes, if set, gives the run's node
// processes by name, which the perf profile records beside this one.
func startProfiles(dir string, kinds []scenarios.Profile, nodes func() map[string]int) *profiler {
	p := &profiler{dir: dir, kinds: kinds}
	if len(kinds) == 0 {
		return p
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.notes = append(p.notes, fmt.Sprintf("profiles: %v", err))
		return p
	}
	p.active = true
	for _, k := range kinds {
		switch k {
		case scenarios.ProfileCPU:
			p.cpu = p.startFile(filepath.Join(dir, "cpu.pprof"), "cpu profile", pprof.StartCPUProfile)
		case scenarios.ProfileTrace:
			p.tr = p.startFile(filepath.Join(dir, "trace.out"), "trace", trace.Start)
		case scenarios.ProfilePerf:
			var err error
			if p.perf, err = perfprof.Start(dir, nodes); err != nil {
				p.notes = append(p.notes, fmt.Sprintf("perf profile: %v", err))
			}
		case scenarios.ProfileMutex:
			runtime.SetMutexProfileFraction(5)
		case scenarios.ProfileBlock:
			runtime.SetBlockProfileRate(int(10_000)) // one sample per 10µs blocked
		}
	}
	return p
}

// startFile creates path and starts a capture into it; on failure it notes
// why (what names the capture) and returns nil.
func (p *profiler) startFile(path, what string, start func(io.Writer) error) *os.File {
	f, err := os.Create(path)
	if err == nil {
		if err = start(f); err != nil {
			f.Close()
		}
	}
	if err != nil {
		p.notes = append(p.notes, fmt.Sprintf("%s: %v", what, err))
		return nil
	}
	return f
}

// measuredProfiles captures report.profile over the measured phase only:
// from a time in the future until stop.
type measuredProfiles struct {
	timer *time.Timer
	ch    chan *profiler
}

// profileMeasured starts the scenario's profiles (kinds) into dir at from;
// nodes, if set, gives the target's node processes by name (the perf
// profile records them too).
func profileMeasured(dir string, kinds []scenarios.Profile, from time.Time, nodes func() map[string]int) *measuredProfiles {
	m := &measuredProfiles{ch: make(chan *profiler, 1)}
	m.timer = time.AfterFunc(time.Until(from), func() { m.ch <- startProfiles(dir, kinds, nodes) })
	return m
}

// stop ends the capture if it started, and summarises the profiles.
func (m *measuredProfiles) stop() ([]reports.ProfileSummary, []string) {
	if m.timer.Stop() { // it never ran
		return nil, nil
	}
	return (<-m.ch).stop() // it ran, or is running
}

// stop ends the capture, writes the snapshot profiles and summarises each
// profile's top functions by flat and by cumulative cost.
func (p *profiler) stop() ([]reports.ProfileSummary, []string) {
	if !p.active {
		return nil, p.notes
	}
	p.active = false
	var out []reports.ProfileSummary
	for _, k := range p.kinds {
		var (
			path string
			err  error
		)
		switch k {
		case scenarios.ProfileCPU:
			if p.cpu == nil {
				continue
			}
			pprof.StopCPUProfile()
			path, err = p.cpu.Name(), p.cpu.Close()
		case scenarios.ProfileTrace:
			if p.tr == nil {
				continue
			}
			trace.Stop()
			if err := p.tr.Close(); err != nil {
				p.notes = append(p.notes, fmt.Sprintf("trace: %v", err))
				continue
			}
			s, err := summarizeTrace(p.tr.Name()) // its goroutine wake-ups
			if err != nil {
				p.notes = append(p.notes, fmt.Sprintf("trace: %v", err))
				continue
			}
			out = append(out, s)
			continue
		case scenarios.ProfilePerf:
			if p.perf == nil {
				continue
			}
			var note string
			path, note, err = p.perf.Stop(context.Background())
			if note != "" {
				p.notes = append(p.notes, "perf profile: "+note)
			}
		default:
			name := string(k)
			if k == scenarios.ProfileMutex || k == scenarios.ProfileBlock {
				defer runtime.SetMutexProfileFraction(0)
				defer runtime.SetBlockProfileRate(0)
			}
			prof := pprof.Lookup(name)
			if prof == nil {
				p.notes = append(p.notes, fmt.Sprintf("%s profile: unknown", name))
				continue
			}
			var buf bytes.Buffer
			if err = prof.WriteTo(&buf, 0); err == nil {
				path = filepath.Join(p.dir, name+".pprof")
				err = os.WriteFile(path, buf.Bytes(), 0o644)
			}
		}
		if err != nil {
			p.notes = append(p.notes, fmt.Sprintf("%s profile: %v", k, err))
			continue
		}
		s, err := SummarizeProfile(string(k), path)
		if err != nil {
			p.notes = append(p.notes, fmt.Sprintf("%s profile: %v", k, err))
			continue
		}
		out = append(out, s)
	}
	return out, p.notes
}

// SummarizeProfile reads a pprof file of kind (a report.profile kind) and
// lists its top functions by flat and by cumulative value of its main
// sample type (the last one: cpu nanoseconds, in-use bytes, contention
// delay…), and for cpu and perf splits its samples among the parts of the
// system (profileComponents) — without µs a transaction, which only a
// run's profiles over its measured phase get (profileCPU).
func SummarizeProfile(kind, path string) (reports.ProfileSummary, error) {
	s := reports.ProfileSummary{Kind: kind, File: filepath.Base(path)}
	f, err := os.Open(path)
	if err != nil {
		return s, err
	}
	defer f.Close()
	prof, err := profile.Parse(f)
	if err != nil {
		return s, err
	}
	if len(prof.SampleType) == 0 {
		return s, fmt.Errorf("no sample types")
	}
	vi := len(prof.SampleType) - 1
	if kind == "heap" {
		// inuse_space is the one people read first.
		for i, st := range prof.SampleType {
			if st.Type == "inuse_space" {
				vi = i
			}
		}
	}
	s.Unit = prof.SampleType[vi].Type + " (" + prof.SampleType[vi].Unit + ")"
	flat, cum := map[string]int64{}, map[string]int64{}
	for _, smp := range prof.Sample {
		v := smp.Value[vi]
		s.Total += v
		seen := map[string]bool{}
		for i, loc := range smp.Location {
			for j, line := range loc.Line {
				if line.Function == nil {
					continue
				}
				fn := line.Function.Name
				if i == 0 && j == 0 {
					flat[fn] += v
				}
				if !seen[fn] {
					seen[fn] = true
					cum[fn] += v
				}
			}
		}
	}
	s.TopFlat, s.TopCum = topFuncs(s.Total, flat, cum, flat), topFuncs(s.Total, flat, cum, cum)
	if kind == string(scenarios.ProfileCPU) || kind == string(scenarios.ProfilePerf) {
		s.Components = profileComponents(prof, vi)
	}
	// A perf profile of a process cluster: every process's share, even one
	// below the top functions (a node restarted late in the run).
	procs := map[string]int64{}
	for fn, v := range cum {
		if perfprof.IsProcessFrame(fn) && !slices.ContainsFunc(s.TopCum, func(f reports.ProfileFunc) bool { return f.Func == fn }) {
			procs[fn] = v
		}
	}
	s.TopCum = append(s.TopCum, topFuncs(s.Total, flat, cum, procs)...)
	return s, nil
}

// topFuncs lists the profileTop names with the highest value in by, with
// their flat and cumulative values and their shares of total (ties by
// name).
func topFuncs(total int64, flat, cum, by map[string]int64) []reports.ProfileFunc {
	pct := func(v int64) float64 { return pctOf(v, total) }
	fs := make([]reports.ProfileFunc, 0, len(by))
	for fn := range by {
		fs = append(fs, reports.ProfileFunc{Func: fn, Flat: flat[fn], FlatPct: pct(flat[fn]), Cum: cum[fn], CumPct: pct(cum[fn])})
	}
	slices.SortFunc(fs, func(a, b reports.ProfileFunc) int {
		if c := cmp.Compare(by[b.Func], by[a.Func]); c != 0 {
			return c
		}
		return cmp.Compare(a.Func, b.Func)
	})
	return fs[:min(profileTop, len(fs))]
}

// pacedIdleCPU is the share of the cores below which a process that an
// open loop paces on a constant schedule gets a caveat on its cpu profile.
const pacedIdleCPU = 0.75

// cpuProfileCaveat marks the cpu profiles of a run whose open-loop
// workloads sent on a constant schedule (sc's) while the process used less
// than pacedIdleCPU of the machine's cores (cpuPct, percent of one core):
// Linux checks the profiler's per-thread CPU timers on its scheduler tick,
// so a sample falls on whatever runs at a tick, and a process that wakes on
// a fixed schedule can keep step with the tick. Measured on this project's
// 2-core host (HZ=250) in make run's scenario at 1000/s: the signature
// check had 20% of the Go profile's samples, 3–4% of perf's (cpu-clock,
// 3989 Hz) and of a Go profile of the same run with poisson arrivals —
// and its traced time, 35 µs a transaction, is 3% of the CPU a
// transaction. At 8000/s (the cores busy) the two agreed within 4 points.
func cpuProfileCaveat(profiles []reports.ProfileSummary, sc *scenarios.Scenario, cpuPct float64, cores int) {
	if cpuPct <= 0 || cpuPct >= pacedIdleCPU*100*float64(cores) {
		return
	}
	paced := false
	for _, w := range sc.Workload {
		if m := w.Mode(); (m == scenarios.ModeRate || m == scenarios.ModeRamp || m == scenarios.ModeMaxRate) && w.Arrival != scenarios.ArrivalPoisson {
			paced = true
		}
	}
	if !paced {
		return
	}
	for i := range profiles {
		if profiles[i].Kind == string(scenarios.ProfileCPU) {
			profiles[i].Caveat = fmt.Sprintf("an open loop sent on a constant schedule while the process used %.0f%% of %d cores: the profiler samples on the kernel's tick, which such a load can keep step with, so functions that run at a fixed moment of each send's work may get far more than their share of samples (in make run's scenario the signature check got 20%% of this profile's samples and 3%% of perf's). Profile with report.profile: [perf] (Linux perf's cpu-clock samples), or with arrival: poisson, to check", cpuPct, cores)
		}
	}
}
