package reports

import (
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Resources is the resource use of the process under test over the run
// (result.json "resources"): one sample per interval, and a summary. In the
// in-process harness the process holds both the node and the load
// generator.
type Resources struct {
	Source    string           `json:"source"`     // what was sampled, e.g. "process 1234"
	IntervalS float64          `json:"interval_s"` // the sampling interval
	Samples   []ResourceSample `json:"samples"`
	Dropped   int64            `json:"dropped,omitempty"` // samples past MaxSamples, not kept
	Notes     []string         `json:"notes,omitempty"`   // what could not be sampled

	// Summary over Samples.
	CPUPercentMean float64 `json:"cpu_pct_mean"`
	CPUPercentMax  float64 `json:"cpu_pct_max"`
	RSSMaxBytes    uint64  `json:"rss_max_bytes"`
	GCPauseTotalS  float64 `json:"gc_pause_total_s"`
	GCCycles       uint64  `json:"gc_cycles"`
	GoroutinesMax  uint64  `json:"goroutines_max"`
	// The machine over the samples that have its figures (the whole
	// machine, from /proc/stat): the CPU every process used, the part of
	// it the sampled process did not use, and the CPU time the hypervisor
	// stole, each ×100 per core like CPUPercent. A run whose machine was
	// busy with other work (or had CPU stolen) has suspect latency tails.
	MachineCPUPercentMean float64 `json:"machine_cpu_pct_mean,omitempty"`
	OtherCPUPercentMean   float64 `json:"other_cpu_pct_mean,omitempty"`
	StealPercentMean      float64 `json:"steal_pct_mean,omitempty"`
	// CPUMicrosPerTx is the CPU time the process spent in the measured
	// phase per committed transaction, in microseconds (CPUPerTx); 0 when
	// unknown.
	CPUMicrosPerTx float64 `json:"cpu_us_per_tx,omitempty"`
}

// CPUPerTx returns the CPU time of the measured phase (from T = 0 to the
// last sample) per transaction of txs, in microseconds; 0 without either.
// A sample covers the time since the one before it (the first, an
// interval): the last one, taken at Stop, is usually shorter, and of the
// one that spans the phase's start only the part after it counts. (Until
// session 44 every sample counted as a whole interval, a short last one
// too.)
func (r *Resources) CPUPerTx(txs int64) float64 {
	if r == nil || txs <= 0 {
		return 0
	}
	return math.Round(r.CPUSeconds()*1e6/float64(txs)*10) / 10
}

// CPUSeconds is the CPU time of the measured phase, as CPUPerTx counts it;
// 0 for a nil Resources.
func (r *Resources) CPUSeconds() float64 {
	if r == nil {
		return 0
	}
	var cpuS float64
	for i, s := range r.Samples {
		if d := s.T - max(r.from(i), 0); d > 0 {
			cpuS += s.CPUPercent / 100 * d
		}
	}
	return cpuS
}

// from is when sample i's interval began: the sample before it, or an
// interval before it for the first.
func (r *Resources) from(i int) float64 {
	if i > 0 {
		return r.Samples[i-1].T
	}
	return r.Samples[i].T - r.IntervalS
}

// ResourceSample is the process's resource use in one interval ending at T.
type ResourceSample struct {
	T          float64 `json:"t_s"`            // end of the interval, seconds from the start of measuring (negative during warmup)
	CPUPercent float64 `json:"cpu_pct"`        // user+system CPU time over wall time, ×100 (above 100 with several cores busy)
	RSSBytes   uint64  `json:"rss_bytes"`      // resident set size at T
	HeapBytes  uint64  `json:"heap_bytes"`     // live and not yet swept heap objects at T
	GCPauseS   float64 `json:"gc_pause_s"`     // stop-the-world GC pause time within the interval
	GCPauseMax float64 `json:"gc_pause_max_s"` // longest GC pause within the interval (upper bucket bound)
	GCCycles   uint64  `json:"gc_cycles"`      // GC cycles completed within the interval
	Goroutines uint64  `json:"goroutines"`     // live goroutines at T
	Threads    int64   `json:"threads"`        // OS threads at T
	// The whole machine in the interval (absent where /proc/stat cannot be
	// read): busy CPU of every process (since session 46 its cores' time
	// less their idle and stolen time where the kernel's busy ticks count
	// less: MachineStat), and CPU time stolen by the hypervisor, each ×100
	// per core.
	MachineCPUPercent float64 `json:"machine_cpu_pct,omitempty"`
	StealPercent      float64 `json:"steal_pct,omitempty"`
	machineOK         bool
}

// summarize fills the summary fields from the samples. The means weigh
// each sample by the time it covers (from), as CPUPerTx does: the last
// one, taken at Stop, is usually shorter than an interval (until session
// 45 it counted as a whole one).
func (r *Resources) summarize() {
	r.CPUPercentMean, r.CPUPercentMax, r.RSSMaxBytes, r.GCPauseTotalS, r.GCCycles, r.GoroutinesMax = 0, 0, 0, 0, 0, 0
	r.MachineCPUPercentMean, r.OtherCPUPercentMean, r.StealPercentMean = 0, 0, 0
	var all, machine float64 // seconds covered: by every sample, by those with the machine's figures
	for i, s := range r.Samples {
		d := max(s.T-r.from(i), 0)
		if s.machineOK {
			machine += d
			r.MachineCPUPercentMean += s.MachineCPUPercent * d
			r.OtherCPUPercentMean += max(0, s.MachineCPUPercent-s.CPUPercent) * d
			r.StealPercentMean += s.StealPercent * d
		}
		all += d
		r.CPUPercentMean += s.CPUPercent * d
		r.CPUPercentMax = max(r.CPUPercentMax, s.CPUPercent)
		r.RSSMaxBytes = max(r.RSSMaxBytes, s.RSSBytes)
		r.GCPauseTotalS += s.GCPauseS
		r.GCCycles += s.GCCycles
		r.GoroutinesMax = max(r.GoroutinesMax, s.Goroutines)
	}
	if all > 0 {
		r.CPUPercentMean = math.Round(r.CPUPercentMean/all*10) / 10
	}
	if machine > 0 {
		mean := func(v float64) float64 { return math.Round(v/machine*10) / 10 }
		r.MachineCPUPercentMean, r.OtherCPUPercentMean, r.StealPercentMean = mean(r.MachineCPUPercentMean), mean(r.OtherCPUPercentMean), mean(r.StealPercentMean)
	}
}

// Exclude takes the CPU of processes that belong to the run (the node
// processes it started, each sampled on its own) out of
// OtherCPUPercentMean: they are the system under test, not other work.
func (r *Resources) Exclude(own ...*Resources) {
	if r == nil || r.MachineCPUPercentMean == 0 {
		return
	}
	for _, o := range own {
		if o != nil {
			r.OtherCPUPercentMean -= o.CPUPercentMean
		}
	}
	r.OtherCPUPercentMean = max(0, math.Round(r.OtherCPUPercentMean*10)/10)
}

// notQuietPercent is the CPU, in percent of a core on average, that others
// may take from a run before its machine is not quiet (Busy): other
// processes' and the hypervisor's together.
const notQuietPercent = 25

// Stolen reports whether the hypervisor alone took enough of the machine's
// CPU (steal time, more than a quarter of a core on average) to make the
// run's latencies suspect: Busy whatever the other processes did.
func (r *Resources) Stolen() bool {
	return r != nil && r.StealPercentMean > notQuietPercent
}

// Busy reports whether others took enough of the machine's CPU to make the
// run's latencies suspect: other processes and the hypervisor (stolen
// time) together more than a quarter of a core on average. It returns
// why, or "".
func (r *Resources) Busy() string {
	if r == nil || r.OtherCPUPercentMean+r.StealPercentMean <= notQuietPercent {
		return ""
	}
	var why []string
	if r.OtherCPUPercentMean > 0 {
		why = append(why, fmt.Sprintf("other processes used %.0f%% of a core", r.OtherCPUPercentMean))
	}
	if r.StealPercentMean > 0 {
		why = append(why, fmt.Sprintf("the hypervisor stole %.0f%% of a core", r.StealPercentMean))
	}
	return strings.Join(why, ", ")
}

// ResourceSamplerOptions configures a ResourceSampler.
type ResourceSamplerOptions struct {
	// Interval is the time between samples. Zero means 1s.
	Interval time.Duration
	// Origin is the time the samples' T counts from: the start of
	// measuring. Zero means the time of the first sample (Start).
	Origin time.Time
	// MaxSamples bounds the samples kept; later ones are counted in
	// Resources.Dropped. Zero means 86400.
	MaxSamples int
	// ProcStat is the path of the process's stat file in proc(5) format.
	// Empty means /proc/self/stat; where it cannot be read, CPU and RSS are
	// not sampled (a note says so).
	ProcStat string
	// PID, if set, makes the sampler follow another process: CPU and RSS
	// from /proc/PID/stat of the PID it returns at each sample (0: none
	// running, nothing sampled; a new PID, a restarted process, starts
	// its CPU count from zero), and no Go runtime metrics.
	PID func() int
	// MachineStat is the path of the machine's CPU counters in proc(5)
	// /proc/stat format. Empty means /proc/stat; where it cannot be read,
	// the machine figures are left out (a note says so).
	MachineStat string
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// ResourceSampler samples the resource use of this process once per
// interval: CPU and RSS from /proc/self/stat, GC pauses, heap and
// goroutines from runtime/metrics. The caller owns it: Start starts its
// goroutine, Stop stops it and returns what was sampled.
type ResourceSampler struct {
	opts ResourceSamplerOptions

	mu       sync.Mutex
	res      Resources
	started  bool
	stopped  bool
	havePrev bool
	prev     rawSample
	warned   map[string]bool
	cancel   context.CancelFunc
	done     chan struct{}
	samples  []metrics.Sample
}

// rawSample is what one reading of the counters gave.
type rawSample struct {
	at         time.Time
	pid        int    // the process followed (PID); 0 for this one
	cpuTicks   uint64 // utime+stime, in clock ticks
	rssBytes   uint64
	threads    int64
	procOK     bool
	gcPauseCPU float64 // cumulative /cpu/classes/gc/pause:cpu-seconds
	gcCycles   uint64
	heapBytes  uint64
	goroutines uint64
	machine    MachineStat
	machineOK  bool
	pauses     *metrics.Float64Histogram
}

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat:
// 100 on every Linux architecture.
const clockTicks = 100

// Runtime metrics the sampler reads.
const (
	metricGCPauseCPU = "/cpu/classes/gc/pause:cpu-seconds"
	metricGCCycles   = "/gc/cycles/total:gc-cycles"
	metricHeap       = "/memory/classes/heap/objects:bytes"
	metricGoroutines = "/sched/goroutines:goroutines"
	metricPauses     = "/sched/pauses/total/gc:seconds"
)

// NewResourceSampler returns a sampler that has not started.
func NewResourceSampler(opts ResourceSamplerOptions) *ResourceSampler {
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.MaxSamples <= 0 {
		opts.MaxSamples = 86400
	}
	if opts.ProcStat == "" {
		opts.ProcStat = "/proc/self/stat"
	}
	if opts.MachineStat == "" {
		opts.MachineStat = "/proc/stat"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &ResourceSampler{opts: opts, warned: map[string]bool{}}
	s.res.IntervalS = opts.Interval.Seconds()
	if opts.PID != nil {
		s.res.Source = "another process (CPU and RSS)"
		return s
	}
	s.res.Source = fmt.Sprintf("process %d", os.Getpid())
	for _, name := range []string{metricGCPauseCPU, metricGCCycles, metricHeap, metricGoroutines, metricPauses} {
		s.samples = append(s.samples, metrics.Sample{Name: name})
	}
	return s
}

// Start takes the baseline reading and starts sampling every interval
// until Stop or until ctx is done. It fails if the sampler was started
// before.
func (s *ResourceSampler) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return ErrSamplerStarted
	}
	s.started = true
	ctx, s.cancel = context.WithCancel(ctx)
	s.done = make(chan struct{})
	s.mu.Unlock()
	s.Sample()
	go func() {
		defer close(s.done)
		t := time.NewTicker(s.opts.Interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.Sample()
			}
		}
	}()
	return nil
}

// Stop stops sampling, takes a last sample if at least a quarter interval
// passed since the previous one, and returns everything sampled. It is
// safe to call more than once (later calls return the same data) and
// without Start.
func (s *ResourceSampler) Stop() *Resources {
	s.mu.Lock()
	cancel, done, wasStopped := s.cancel, s.done, s.stopped
	s.stopped = true
	s.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	if !wasStopped {
		s.mu.Lock()
		last := s.prev.at
		havePrev := s.havePrev
		s.mu.Unlock()
		if havePrev && s.opts.Now().Sub(last) >= s.opts.Interval/4 {
			s.sample(true)
		}
	}
	return s.Resources()
}

// Resources returns a copy of what was sampled so far, summarised.
func (s *ResourceSampler) Resources() *Resources {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.res
	r.Samples = append([]ResourceSample(nil), s.res.Samples...)
	r.Notes = append([]string(nil), s.res.Notes...)
	r.summarize()
	return &r
}

// Sample reads the counters now. The first reading is the baseline; each
// later one adds a sample covering the time since the previous reading.
// Start calls it every interval; tests may call it directly. It does
// nothing once the sampler is stopped.
func (s *ResourceSampler) Sample() { s.sample(false) }

func (s *ResourceSampler) sample(final bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped && !final {
		return
	}
	cur := s.read()
	if s.opts.Origin.IsZero() {
		s.opts.Origin = cur.at
	}
	if !s.havePrev {
		s.prev, s.havePrev = cur, true
		return
	}
	prev := s.prev
	s.prev = cur
	wall := cur.at.Sub(prev.at).Seconds()
	if wall <= 0 {
		return
	}
	if len(s.res.Samples) >= s.opts.MaxSamples {
		s.res.Dropped++
		return
	}
	smp := ResourceSample{
		T:          math.Round(cur.at.Sub(s.opts.Origin).Seconds()*1000) / 1000,
		HeapBytes:  cur.heapBytes,
		Goroutines: cur.goroutines,
		GCCycles:   cur.gcCycles - min(prev.gcCycles, cur.gcCycles),
	}
	restarted := cur.pid != prev.pid // a followed process (re)started within the interval
	if cur.procOK && (prev.procOK || restarted) {
		base := prev.cpuTicks
		if restarted {
			base = 0
		}
		ticks := cur.cpuTicks - min(base, cur.cpuTicks)
		smp.CPUPercent = math.Round(float64(ticks)/clockTicks/wall*100*10) / 10
		smp.RSSBytes, smp.Threads = cur.rssBytes, cur.threads
	}
	if procs := runtime.GOMAXPROCS(0); procs > 0 {
		// The metric counts the pause once per P.
		smp.GCPauseS = max(0, cur.gcPauseCPU-prev.gcPauseCPU) / float64(procs)
	}
	smp.GCPauseMax = maxPauseDelta(prev.pauses, cur.pauses)
	if cur.machineOK && prev.machineOK && cur.machine.Busy >= prev.machine.Busy && cur.machine.Steal >= prev.machine.Steal {
		pct := func(ticks uint64) float64 { return math.Round(float64(ticks)/clockTicks/wall*100*10) / 10 }
		smp.MachineCPUPercent = math.Round(cur.machine.busySince(prev.machine, wall)/clockTicks/wall*100*10) / 10
		smp.StealPercent = pct(cur.machine.Steal - prev.machine.Steal)
		smp.machineOK = true
	}
	s.res.Samples = append(s.res.Samples, smp)
}

// note records a problem once.
func (s *ResourceSampler) note(msg string) {
	if !s.warned[msg] {
		s.warned[msg] = true
		s.res.Notes = append(s.res.Notes, msg)
	}
}

// read reads the counters; s.mu is held.
func (s *ResourceSampler) read() rawSample {
	r := rawSample{at: s.opts.Now()}
	if data, err := os.ReadFile(s.opts.MachineStat); err != nil {
		s.note(fmt.Sprintf("machine CPU not sampled: %v", err))
	} else if m, err := ParseMachineStat(data); err != nil {
		s.note(fmt.Sprintf("machine CPU not sampled: %v", err))
	} else {
		r.machine, r.machineOK = m, true
	}
	path := s.opts.ProcStat
	if s.opts.PID != nil {
		if r.pid = s.opts.PID(); r.pid == 0 {
			return r // not running now
		}
		path = fmt.Sprintf("/proc/%d/stat", r.pid)
	}
	if data, err := os.ReadFile(path); err != nil {
		s.note(fmt.Sprintf("CPU and RSS not sampled: %v", err))
	} else if st, err := ParseProcStat(data); err != nil {
		s.note(fmt.Sprintf("CPU and RSS not sampled: %v", err))
	} else {
		r.procOK = true
		r.cpuTicks = st.UTime + st.STime
		r.rssBytes = uint64(max(st.RSSPages, 0)) * uint64(os.Getpagesize())
		r.threads = st.Threads
	}
	if len(s.samples) == 0 { // another process: no runtime metrics
		return r
	}
	metrics.Read(s.samples)
	for _, m := range s.samples {
		v := m.Value
		switch {
		case v.Kind() == metrics.KindBad:
			s.note(fmt.Sprintf("runtime metric %s not available", m.Name))
		case m.Name == metricGCPauseCPU && v.Kind() == metrics.KindFloat64:
			r.gcPauseCPU = v.Float64()
		case m.Name == metricGCCycles && v.Kind() == metrics.KindUint64:
			r.gcCycles = v.Uint64()
		case m.Name == metricHeap && v.Kind() == metrics.KindUint64:
			r.heapBytes = v.Uint64()
		case m.Name == metricGoroutines && v.Kind() == metrics.KindUint64:
			r.goroutines = v.Uint64()
		case m.Name == metricPauses && v.Kind() == metrics.KindFloat64Histogram:
			h := v.Float64Histogram()
			r.pauses = &metrics.Float64Histogram{Counts: append([]uint64(nil), h.Counts...), Buckets: h.Buckets}
		}
	}
	return r
}

// maxPauseDelta returns the upper bound of the highest bucket that gained
// counts between two readings of a pause histogram.
func maxPauseDelta(prev, cur *metrics.Float64Histogram) float64 {
	if cur == nil {
		return 0
	}
	for i := len(cur.Counts) - 1; i >= 0; i-- {
		var before uint64
		if prev != nil && i < len(prev.Counts) {
			before = prev.Counts[i]
		}
		if cur.Counts[i] > before && i+1 < len(cur.Buckets) {
			hi := cur.Buckets[i+1]
			if math.IsInf(hi, 1) {
				hi = cur.Buckets[i]
			}
			return max(hi, 0)
		}
	}
	return 0
}

// ProcStat is the part of a proc(5) /proc/PID/stat line the sampler uses.
type ProcStat struct {
	PID      int64
	Comm     string
	State    string
	UTime    uint64 // user CPU time, clock ticks
	STime    uint64 // system CPU time, clock ticks
	Threads  int64
	RSSPages int64
}

// statField parses field n of a /proc/PID/stat line (f[0] is field 3).
// After an error it returns 0 and keeps the first error in *err.
func statField[T int64 | uint64](f []string, n int, err *error) T {
	if *err != nil {
		return 0
	}
	var v T
	var e error
	switch p := any(&v).(type) {
	case *int64:
		*p, e = strconv.ParseInt(f[n-3], 10, 64)
	case *uint64:
		*p, e = strconv.ParseUint(f[n-3], 10, 64)
	}
	if e != nil {
		*err = fmt.Errorf("%w: proc stat field %d: %q", ErrFormat, n, f[n-3])
	}
	return v
}

// ParseProcStat parses a /proc/PID/stat line. The command name may hold
// spaces and parentheses; it ends at the last ')'. A line that is too short
// or has non-numeric fields is ErrFormat.
func ParseProcStat(data []byte) (ProcStat, error) {
	line := strings.TrimSpace(string(data))
	open := strings.IndexByte(line, '(')
	close := strings.LastIndexByte(line, ')')
	if open < 0 || close < open {
		return ProcStat{}, fmt.Errorf("%w: proc stat: no (comm)", ErrFormat)
	}
	var st ProcStat
	var err error
	if st.PID, err = strconv.ParseInt(strings.TrimSpace(line[:open]), 10, 64); err != nil {
		return ProcStat{}, fmt.Errorf("%w: proc stat: bad pid", ErrFormat)
	}
	st.Comm = line[open+1 : close]
	f := strings.Fields(line[close+1:])
	// f[0] is field 3 (state); field N is f[N-3].
	const need = 24 - 3 + 1
	if len(f) < need {
		return ProcStat{}, fmt.Errorf("%w: proc stat: %d fields after comm, want at least %d", ErrFormat, len(f), need)
	}
	st.State = f[0]
	st.UTime, st.STime = statField[uint64](f, 14, &err), statField[uint64](f, 15, &err)
	st.Threads, st.RSSPages = statField[int64](f, 20, &err), statField[int64](f, 24, &err)
	if err != nil {
		return ProcStat{}, err
	}
	return st, nil
}

// ProcessCPU returns the user and system CPU time the process whose
// proc(5) stat file is at path (such as /proc/self/stat) has used so far,
// to the clock tick (10 ms).
func ProcessCPU(path string) (time.Duration, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	st, err := ParseProcStat(data)
	if err != nil {
		return 0, err
	}
	return time.Duration(st.UTime+st.STime) * time.Second / clockTicks, nil
}

// MachineStat is the machine's CPU time from the aggregate "cpu" line of
// proc(5) /proc/stat, in clock ticks summed over the cores.
type MachineStat struct {
	Busy  uint64 // user, nice, system, irq and softirq (guest time is inside user)
	Idle  uint64 // idle and iowait
	Steal uint64 // time the hypervisor gave this machine's virtual CPUs to others
	CPUs  int    // the per-core "cpuN" lines that follow (0: none)
}

// busySince is the machine's busy time from prev to m, in ticks, over
// wall seconds: its busy ticks, or, when those count less, its cores'
// time less their idle and stolen time. A tickless kernel accounts idle
// time exactly but samples busy time at its ticks, and on this project's
// KVM host the ticks miss some of it: under a run's load /proc/stat's
// fields summed to 173–177% of two cores' 200% a second, while the
// process alone took 121% (session 46), so the busy ticks left others
// almost nothing and a busy machine looked quiet. Never more than the
// cores' time.
func (m MachineStat) busySince(prev MachineStat, wall float64) float64 {
	busy := float64(m.Busy - prev.Busy)
	if m.CPUs == 0 || m.CPUs != prev.CPUs {
		return busy
	}
	capacity := float64(m.CPUs) * wall * clockTicks
	idle := float64(m.Idle-min(prev.Idle, m.Idle)) + float64(m.Steal-prev.Steal)
	return min(max(busy, capacity-idle), capacity)
}

// ParseMachineStat parses the "cpu" line of /proc/stat (its first line).
// Kernels before 2.6.11 have no steal column; it is then 0. A missing or
// non-numeric line is ErrFormat.
func ParseMachineStat(data []byte) (MachineStat, error) {
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return MachineStat{}, fmt.Errorf("%w: /proc/stat: no aggregate cpu line", ErrFormat)
	}
	var v [8]uint64
	for i := 1; i < len(f) && i <= len(v); i++ {
		n, err := strconv.ParseUint(f[i], 10, 64)
		if err != nil {
			return MachineStat{}, fmt.Errorf("%w: /proc/stat cpu field %d: %q", ErrFormat, i, f[i])
		}
		v[i-1] = n
	}
	// user nice system idle iowait irq softirq steal
	m := MachineStat{Busy: v[0] + v[1] + v[2] + v[5] + v[6], Idle: v[3] + v[4], Steal: v[7]}
	for _, l := range strings.Split(string(data), "\n")[1:] {
		if n, ok := strings.CutPrefix(l, "cpu"); ok && n != "" && n[0] >= '0' && n[0] <= '9' {
			m.CPUs++
		}
	}
	return m, nil
}
