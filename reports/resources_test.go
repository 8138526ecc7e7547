package reports

import (
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

const statLine = "2114 (my (odd) prog) R 2110 2110 11020 0 -1 4194304 100 0 0 0 250 125 0 0 20 0 7 0 241118 3133440 381 18446744073709551615 94155692244992 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"

func TestParseProcStat(t *testing.T) {
	st, err := ParseProcStat([]byte(statLine))
	if err != nil {
		t.Fatal(err)
	}
	want := ProcStat{PID: 2114, Comm: "my (odd) prog", State: "R", UTime: 250, STime: 125, Threads: 7, RSSPages: 381}
	if st != want {
		t.Errorf("got %+v, want %+v", st, want)
	}
	if data, err := os.ReadFile("/proc/self/stat"); err == nil {
		st, err := ParseProcStat(data)
		if err != nil || st.PID != int64(os.Getpid()) || st.RSSPages <= 0 || st.Threads < 1 {
			t.Errorf("/proc/self/stat: %+v, %v", st, err)
		}
	}
	for _, bad := range []string{"", "12 prog R 1", "x (a) R 1 2", "1 (a) R 1 2 3", strings.Replace(statLine, " 250 ", " -250 ", 1), strings.Replace(statLine, " 381 ", " lots ", 1)} {
		if _, err := ParseProcStat([]byte(bad)); !errors.Is(err, ErrFormat) {
			t.Errorf("ParseProcStat(%q) = %v", bad, err)
		}
	}
}

func FuzzParseProcStat(f *testing.F) {
	f.Add([]byte(statLine))
	f.Add([]byte("1 () S 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"))
	f.Add([]byte("1 (a)) ) S"))
	f.Add([]byte(")( 1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := ParseProcStat(data); err != nil && !errors.Is(err, ErrFormat) {
			t.Fatalf("error not ErrFormat: %v", err)
		}
	})
}

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// A stat file the test rewrites: CPU ticks and RSS of its choosing.
func writeStat(t *testing.T, path string, utime, stime, rss int) {
	t.Helper()
	line := fmt.Sprintf("2114 (prog) R 2110 2110 11020 0 -1 4194304 100 0 0 0 %d %d 0 0 20 0 7 0 241118 3133440 %d 18446744073709551615 0\n", utime, stime, rss)
	if err := os.WriteFile(path, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestResourceSamplerDeterministic(t *testing.T) {
	stat := filepath.Join(t.TempDir(), "stat")
	clk := &fakeClock{t: t0}
	s := NewResourceSampler(ResourceSamplerOptions{Origin: t0.Add(time.Second), ProcStat: stat, Now: clk.Now, MaxSamples: 3})
	writeStat(t, stat, 100, 50, 1000)
	s.Sample() // baseline at t0
	clk.Add(time.Second)
	writeStat(t, stat, 150, 60, 2000) // 60 ticks = 0.6s CPU in 1s
	s.Sample()
	clk.Add(2 * time.Second)
	writeStat(t, stat, 350, 60, 1500) // 2s CPU in 2s
	s.Sample()
	res := s.Resources()
	if len(res.Samples) != 2 {
		t.Fatalf("samples %+v", res.Samples)
	}
	a, b := res.Samples[0], res.Samples[1]
	page := uint64(os.Getpagesize())
	if a.T != 0 || a.CPUPercent != 60 || a.RSSBytes != 2000*page || a.Threads != 7 {
		t.Errorf("first sample %+v", a)
	}
	if b.T != 2 || b.CPUPercent != 100 || b.RSSBytes != 1500*page {
		t.Errorf("second sample %+v", b)
	}
	if a.Goroutines == 0 || a.HeapBytes == 0 {
		t.Errorf("runtime metrics missing: %+v", a)
	}
	// The mean weighs each sample by the time it covers: 2.6 s of CPU in
	// 3 s (an unweighted mean of the two samples would be 80).
	if res.CPUPercentMax != 100 || res.CPUPercentMean != 86.7 || res.RSSMaxBytes != 2000*page || len(res.Notes) != 0 {
		t.Errorf("summary %+v", res)
	}
	// Past MaxSamples: counted, not kept.
	for range 3 {
		clk.Add(time.Second)
		s.Sample()
	}
	if r := s.Resources(); len(r.Samples) != 3 || r.Dropped != 2 {
		t.Errorf("%d samples, %d dropped", len(r.Samples), r.Dropped)
	}
	// Stop twice, without Start: same data; sampling after Stop does nothing.
	clk.Add(time.Second)
	r1 := s.Stop()
	s.Sample()
	r2 := s.Stop()
	if r1.Dropped != 3 || r2.Dropped != 3 || len(r2.Samples) != 3 {
		t.Errorf("stop: %d/%d dropped", r1.Dropped, r2.Dropped)
	}
}

func TestResourceSamplerNoProc(t *testing.T) {
	clk := &fakeClock{t: t0}
	s := NewResourceSampler(ResourceSamplerOptions{ProcStat: filepath.Join(t.TempDir(), "missing"), Now: clk.Now})
	s.Sample()
	clk.Add(time.Second)
	s.Sample()
	res := s.Stop()
	if len(res.Samples) != 1 || res.Samples[0].CPUPercent != 0 || res.Samples[0].RSSBytes != 0 || res.Samples[0].Goroutines == 0 {
		t.Errorf("%+v", res.Samples)
	}
	if len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "CPU and RSS not sampled") {
		t.Errorf("notes %q", res.Notes)
	}
}

// The real thing: the sampler's goroutine samples this process, sees CPU
// burnt and a GC run, and stops when told (Stop waits for its goroutine).
func TestResourceSamplerLive(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	s := NewResourceSampler(ResourceSamplerOptions{Interval: 50 * time.Millisecond})
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); !errors.Is(err, ErrSamplerStarted) {
		t.Errorf("second Start: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	var sink []byte
	for len(s.Resources().Samples) < 4 && time.Now().Before(deadline) {
		for range 1000 {
			sink = make([]byte, 4096) // allocate, so the GC runs
		}
		runtime.GC()
	}
	_ = sink
	res := s.Stop()
	s.Stop()
	if len(res.Samples) < 4 {
		t.Fatalf("%d samples in 5s at 50ms", len(res.Samples))
	}
	if res.GCCycles == 0 || res.RSSMaxBytes == 0 || res.GoroutinesMax == 0 {
		t.Errorf("summary %+v", res)
	}
	var cpu float64
	for _, smp := range res.Samples {
		cpu += smp.CPUPercent
	}
	if cpu == 0 {
		t.Errorf("no CPU seen while burning it: %+v", res.Samples)
	}
}

// TestResourceSamplerFollowsPID: with PID the sampler reads another
// process's stat file, none while PID is 0, and restarts its CPU count when
// the PID changes; it reads no Go runtime metrics.
func TestResourceSamplerFollowsPID(t *testing.T) {
	child := exec.Command("sleep", "5")
	if err := child.Start(); err != nil {
		t.Skip("no sleep to follow:", err)
	}
	defer func() { child.Process.Kill(); child.Wait() }()
	// Until the child has exec'd and touched its pages, its stat may show
	// no resident set.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", child.Process.Pid))
		if st, perr := ParseProcStat(data); err == nil && perr == nil && st.RSSPages > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Skip("the child shows no resident set")
		}
	}
	clk := &fakeClock{t: t0}
	pid := os.Getpid()
	s := NewResourceSampler(ResourceSamplerOptions{Origin: t0, Now: clk.Now, PID: func() int { return pid }})
	s.Sample() // baseline: this process
	clk.Add(time.Second)
	pid = 0 // down
	s.Sample()
	clk.Add(time.Second)
	pid = child.Process.Pid // restarted as another process
	s.Sample()
	res := s.Resources()
	if len(res.Samples) != 2 {
		t.Fatalf("samples %+v", res.Samples)
	}
	down, up := res.Samples[0], res.Samples[1]
	if down.RSSBytes != 0 || down.CPUPercent != 0 {
		t.Errorf("a sample while down: %+v", down)
	}
	if up.RSSBytes == 0 || up.CPUPercent < 0 || up.CPUPercent > 100 || up.Goroutines != 0 || up.HeapBytes != 0 {
		t.Errorf("the restarted process's sample: %+v", up)
	}
	if !strings.Contains(res.Source, "another process") {
		t.Errorf("source %q", res.Source)
	}
}

// TestCPUPerTx: the CPU of the measured phase per transaction, each sample
// weighed by the time it covers; warmup samples do not count, nor the part
// of a sample before T = 0.
func TestCPUPerTx(t *testing.T) {
	rs := &Resources{IntervalS: 1, Samples: []ResourceSample{{T: 0, CPUPercent: 500}, {T: 1, CPUPercent: 80}, {T: 2, CPUPercent: 120}}}
	// 0.8s + 1.2s = 2s of CPU over 1000 transactions: 2000µs each.
	if got := rs.CPUPerTx(1000); got != 2000 {
		t.Fatalf("CPUPerTx = %v, want 2000", got)
	}
	// Sampled off the second, with a short last sample at Stop: 0.95 s of
	// the first at 100%, 1 s at 100%, 0.35 s at 40%.
	rs = &Resources{IntervalS: 1, Samples: []ResourceSample{{T: -1.05, CPUPercent: 900}, {T: -0.05, CPUPercent: 300}, {T: 0.95, CPUPercent: 100}, {T: 1.95, CPUPercent: 100}, {T: 2.3, CPUPercent: 40}}}
	if got, want := rs.CPUPerTx(1000), 2090.0; math.Abs(got-want) > 0.05 {
		t.Fatalf("CPUPerTx = %v, want %v", got, want)
	}
	// A first sample that spans T = 0 counts from 0.
	rs = &Resources{IntervalS: 1, Samples: []ResourceSample{{T: 0.5, CPUPercent: 200}}}
	if got := rs.CPUPerTx(1000); got != 1000 {
		t.Fatalf("CPUPerTx of half a first sample = %v, want 1000", got)
	}
	if rs.CPUPerTx(0) != 0 || (*Resources)(nil).CPUPerTx(10) != 0 {
		t.Fatal("no transactions or no samples gave a figure")
	}
}

const machineStatLine = "cpu  958171 430 160355 680625 26372 11 19760 80814 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n"

func TestParseMachineStat(t *testing.T) {
	m, err := ParseMachineStat([]byte(machineStatLine))
	if err != nil {
		t.Fatal(err)
	}
	if want := (MachineStat{Busy: 958171 + 430 + 160355 + 11 + 19760, Idle: 680625 + 26372, Steal: 80814, CPUs: 1}); m != want {
		t.Errorf("got %+v, want %+v", m, want)
	}
	// An old kernel's line has no steal column.
	if m, err := ParseMachineStat([]byte("cpu 1 2 3 4 5\n")); err != nil || m != (MachineStat{Busy: 6, Idle: 9}) {
		t.Errorf("short line: %+v, %v", m, err)
	}
	if data, err := os.ReadFile("/proc/stat"); err == nil {
		if m, err := ParseMachineStat(data); err != nil || m.Busy == 0 || m.Idle == 0 {
			t.Errorf("/proc/stat: %+v, %v", m, err)
		}
	}
	for _, bad := range []string{"", "cpu0 1 2 3 4 5", "cpu 1 2 3", "cpu 1 2 x 4 5", "cpu 1 2 3 4 -5"} {
		if _, err := ParseMachineStat([]byte(bad)); !errors.Is(err, ErrFormat) {
			t.Errorf("ParseMachineStat(%q) = %v", bad, err)
		}
	}
}

func FuzzParseMachineStat(f *testing.F) {
	f.Add([]byte(machineStatLine))
	f.Add([]byte("cpu 1 2 3 4"))
	f.Add([]byte("cpu 18446744073709551615 18446744073709551615 1 1 1 18446744073709551615"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := ParseMachineStat(data); err != nil && !errors.Is(err, ErrFormat) {
			t.Fatalf("error not ErrFormat: %v", err)
		}
	})
}

// TestMachineBusyFromIdle: on a machine whose busy ticks count less than
// its cores' time less their idle and stolen time (a tickless kernel
// samples busy time at its ticks, and on a KVM guest they miss some), the
// machine's busy CPU is the latter, never above the cores' time; where the
// busy ticks count more, or the per-core lines are missing, the ticks.
func TestMachineBusyFromIdle(t *testing.T) {
	dir := t.TempDir()
	stat, machine := filepath.Join(dir, "stat"), filepath.Join(dir, "machine")
	writeMachine := func(busy, idle, steal int, cores bool) {
		t.Helper()
		text := fmt.Sprintf("cpu  %d 0 0 %d 0 0 0 %d 0 0\n", busy, idle, steal)
		if cores {
			text += "cpu0 0 0 0 0 0 0 0 0 0 0\ncpu1 0 0 0 0 0 0 0 0 0 0\nintr 1 2 3\n"
		}
		if err := os.WriteFile(machine, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name                 string
		busy, idle, steal    int // each interval's ticks, a second at 100 a second on two cores
		cores                bool
		machine, other, stol float64
	}{
		{"ticks missed", 100, 70, 0, true, 130, 10, 0}, // 200 − 70 = 130 where the ticks say 100
		{"ticks missed, stolen", 100, 70, 20, true, 110, 0, 20},
		{"ticks complete", 150, 50, 0, true, 150, 30, 0}, // the sum is the cores' time: the same either way
		{"ticks above", 180, 50, 0, true, 180, 60, 0},    // the ticks count more: they stand
		{"idle over", 10, 250, 0, true, 10, 0, 0},        // a sum above the cores' time: never negative
		{"no core lines", 100, 70, 0, false, 100, 0, 0},  // the aggregate line only: the ticks
	} {
		clk := &fakeClock{t: t0}
		s := NewResourceSampler(ResourceSamplerOptions{Origin: t0, ProcStat: stat, MachineStat: machine, Now: clk.Now})
		writeStat(t, stat, 100, 0, 10)
		writeMachine(1000, 1000, 10, tc.cores)
		s.Sample()
		clk.Add(time.Second)
		writeStat(t, stat, 220, 0, 10) // the process: 120% of a core
		writeMachine(1000+tc.busy, 1000+tc.idle, 10+tc.steal, tc.cores)
		s.Sample()
		res := s.Resources()
		if smp := res.Samples[0]; smp.MachineCPUPercent != tc.machine || smp.StealPercent != tc.stol {
			t.Errorf("%s: machine %v%%, stolen %v%%, want %v and %v", tc.name, smp.MachineCPUPercent, smp.StealPercent, tc.machine, tc.stol)
		}
		if res.OtherCPUPercentMean != tc.other {
			t.Errorf("%s: others %v%%, want %v", tc.name, res.OtherCPUPercentMean, tc.other)
		}
	}
}

// The machine's figures: busy and stolen CPU per interval, the part the
// sampled process did not use, and Busy's verdict on them.
func TestResourceSamplerMachine(t *testing.T) {
	dir := t.TempDir()
	stat, machine := filepath.Join(dir, "stat"), filepath.Join(dir, "machine")
	writeMachine := func(busy, steal int) {
		t.Helper()
		line := fmt.Sprintf("cpu  %d 0 0 1000 0 0 0 %d 0 0\n", busy, steal)
		if err := os.WriteFile(machine, []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	clk := &fakeClock{t: t0}
	s := NewResourceSampler(ResourceSamplerOptions{Origin: t0, ProcStat: stat, MachineStat: machine, Now: clk.Now})
	writeStat(t, stat, 100, 0, 10)
	writeMachine(500, 10)
	s.Sample()
	clk.Add(time.Second)
	writeStat(t, stat, 150, 0, 10) // the process: 50% of a core
	writeMachine(580, 12)          // the machine: 80%, 2% stolen
	s.Sample()
	res := s.Resources()
	if smp := res.Samples[0]; smp.MachineCPUPercent != 80 || smp.StealPercent != 2 || smp.CPUPercent != 50 {
		t.Fatalf("sample %+v", smp)
	}
	if res.MachineCPUPercentMean != 80 || res.OtherCPUPercentMean != 30 || res.StealPercentMean != 2 {
		t.Errorf("summary %+v", res)
	}
	if why := res.Busy(); why != "other processes used 30% of a core, the hypervisor stole 2% of a core" {
		t.Errorf("Busy() = %q", why)
	}
	clk.Add(time.Second)
	writeStat(t, stat, 250, 0, 10) // 100%
	writeMachine(680, 32)          // 100%, 20% stolen
	s.Sample()
	res = s.Stop()
	if res.OtherCPUPercentMean != 15 || res.StealPercentMean != 11 {
		t.Errorf("summary %+v", res)
	}
	if why := res.Busy(); why != "other processes used 15% of a core, the hypervisor stole 11% of a core" {
		t.Errorf("Busy() = %q", why)
	}
	// Others' CPU and stolen time count together: a quarter of a core
	// between them is still quiet, more is not.
	for _, c := range []struct {
		other, steal float64
		busy         bool
	}{{25, 0, false}, {15, 10, false}, {0, 25, false}, {0, 26, true}, {20, 6, true}} {
		r := &Resources{OtherCPUPercentMean: c.other, StealPercentMean: c.steal}
		if got := r.Busy() != ""; got != c.busy {
			t.Errorf("other %v, stolen %v: busy %v (%q)", c.other, c.steal, got, r.Busy())
		}
	}
	// Without the machine's file: no machine figures, a note, not busy.
	s = NewResourceSampler(ResourceSamplerOptions{ProcStat: stat, MachineStat: filepath.Join(dir, "missing"), Now: clk.Now})
	s.Sample()
	clk.Add(time.Second)
	s.Sample()
	res = s.Stop()
	if res.Samples[0].MachineCPUPercent != 0 || res.MachineCPUPercentMean != 0 || res.Busy() != "" || len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "machine CPU not sampled") {
		t.Errorf("%+v", res)
	}
}

// TestResourcesExclude: the run's own node processes are not other work;
// what remains never goes below zero, and a sampler without the machine's
// figures is left alone.
func TestResourcesExclude(t *testing.T) {
	r := &Resources{MachineCPUPercentMean: 190, OtherCPUPercentMean: 150}
	r.Exclude(&Resources{CPUPercentMean: 60}, nil, &Resources{CPUPercentMean: 70})
	if r.OtherCPUPercentMean != 20 || r.Busy() != "" {
		t.Errorf("after the nodes: other %v, busy %q", r.OtherCPUPercentMean, r.Busy())
	}
	r.Exclude(&Resources{CPUPercentMean: 50})
	if r.OtherCPUPercentMean != 0 {
		t.Errorf("below zero: %v", r.OtherCPUPercentMean)
	}
	none := &Resources{OtherCPUPercentMean: 0}
	none.Exclude(&Resources{CPUPercentMean: 50})
	if none.OtherCPUPercentMean != 0 {
		t.Errorf("no machine figures: %v", none.OtherCPUPercentMean)
	}
	var nilRes *Resources
	nilRes.Exclude(&Resources{CPUPercentMean: 1}) // no panic
}
