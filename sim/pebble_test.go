package sim

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/rustorium/rustorium/calib"
	"github.com/rustorium/rustorium/reports"
	"github.com/rustorium/rustorium/sim/des"
)

// steady is one node at 2000 puts/s on two cores of its own.
const steady = `
name: steady
seed: 9
warmup: 1s
duration: 10s
drain: 2s
cluster: {nodes: 1, shards: 4, cores_per_node: 2}
workload:
  - {name: puts, kind: put, rate: 2000/s, accounts: 100000}
`

// TestPebbleBackgroundMakesTheTail: with ops.pebble_background a node's
// Pebble flushes each memtable that fills and compacts every fourth
// flush, on its cores, at the calibrated CPU per MiB: the utilisation's
// "pebble" share is what the bytes in per transaction imply, the
// committed median hardly moves, and the tail grows (the chunks take a
// core from the critical path). With the flushes' calibrated schedule
// (in per flush, flushed per byte in, flushes per compaction) the share
// follows those figures. Without the figures nothing is charged.
func TestPebbleBackgroundMakesTheTail(t *testing.T) {
	run := func(pb *calib.PebbleBackground) *reports.Result {
		c := *reference(t)
		c.Ops.PebbleBackground = pb
		o, err := Run(context.Background(), load(t, steady), Options{Calib: &c})
		if err != nil {
			t.Fatal(err)
		}
		return o.Result
	}
	// 1600 B a put at 2000/s: 3.05 MiB/s in, flushed at 20 ms a MiB and
	// compacted twice more (write amp 3): 183 ms of CPU a second, 9.2% of
	// two cores.
	pb := &calib.PebbleBackground{MemtableBytes: 1 << 20, NsPerMiB: 20e6, WriteAmp: 3, InBytesPerTx: 1600}
	without, with := run(nil), run(pb)
	if u := without.Simulation.Utilisation["node-1"]["pebble"]; u != 0 {
		t.Fatalf("pebble utilisation %v without the figures", u)
	}
	want := 2000 * 1600.0 / (1 << 20) * 20e6 * 3 / 1e9 / 2
	if u := with.Simulation.Utilisation["node-1"]["pebble"]; math.Abs(u-want) > 0.2*want {
		t.Fatalf("pebble utilisation %v, want about %.3f", u, want)
	}
	// Flushes every 0.5 MiB in, each writing 2.5 times that, a compaction
	// every 1.5 flushes: the written bytes per byte in are 2.5 × 3, the
	// share 2.5 times the one above, whatever the schedule.
	sched := *pb
	sched.InBytesPerFlush, sched.FlushedPerIn, sched.FlushesPerCompaction = 1<<19, 2.5, 1.5
	if u := run(&sched).Simulation.Utilisation["node-1"]["pebble"]; math.Abs(u-2.5*want) > 0.2*2.5*want {
		t.Fatalf("pebble utilisation %v with the calibrated schedule, want about %.3f", u, 2.5*want)
	}
	a, b := without.Workloads["puts"].Stages["committed"].Corrected, with.Workloads["puts"].Stages["committed"].Corrected
	t.Logf("committed p50 %d → %d µs, p99 %d → %d µs", a.P50, b.P50, a.P99, b.P99)
	if b.P99 < a.P99+5000 || float64(b.P50) > 1.3*float64(a.P50) {
		t.Fatalf("committed p50 %d → %d µs, p99 %d → %d µs: want the tail longer by the chunks, the median about the same", a.P50, b.P50, a.P99, b.P99)
	}
}

// TestCompactionsRewriteTheBaseLevel: with the calibration's base level
// each compaction writes what L0 flushed since the last one and all the
// base level holds, which grows by it, until the base level passes
// BaseMaxBytes and starts over; without it, L0's debt alone.
func TestCompactionsRewriteTheBaseLevel(t *testing.T) {
	n := &node{}
	pb := &calib.PebbleBackground{MemtableBytes: 4 << 20, BaseMaxBytes: 20 << 20}
	var got []float64
	for range 5 {
		n.compactDebt = 6
		got = append(got, n.compactionMiB(pb))
	}
	if want := []float64{6, 12, 18, 24, 6}; !slices.Equal(got, want) {
		t.Fatalf("compactions wrote %v MiB, want %v", got, want)
	}
	pb.BaseMaxBytes = 0
	if v := n.compactionMiB(pb); v != 6 {
		t.Fatalf("without a base level: %v MiB, want the debt's 6", v)
	}
}

// TestSharedHostDeliversThroughItsPoller: on a shared host every link
// delivers through the process's poller, so while Pebble's jobs hold both
// cores a message waits for the monitor's poll; a dedicated host's links
// deliver at once.
func TestSharedHostDeliversThroughItsPoller(t *testing.T) {
	c := reference(t)
	for _, host := range []Host{Shared, Dedicated} {
		e, err := newEngine(load(t, smallThree), Options{Calib: c, Host: host})
		if err != nil {
			t.Fatal(err)
		}
		if (e.poller != nil) != (host == Shared) {
			t.Fatalf("host %s: poller %v", host, e.poller)
		}
		if e.poller != nil {
			e.poller.Hold()
			e.poller.Hold()
		}
		var at des.Time
		e.link(endpointClients, "node-1").Send(100, func() { at = e.s.Now() })
		e.s.RunUntil(des.Second, nil)
		want := des.Time(0)
		if host == Shared {
			want = des.PollPeriod
		}
		if at != want {
			t.Fatalf("host %s: delivered at %v, want %v", host, at, want)
		}
	}
}

// The embedded broker's clients in the nodes' process reach it in memory
// (internal/memnet), which no poller reads: their links skip the poller
// that holds the clients' and the peers' messages; a broker of its own
// (an address) or node processes (cluster.mode: process) are reached
// over TCP, through it.
func TestInProcessBrokerLinksSkipThePoller(t *testing.T) {
	c := reference(t)
	for _, tc := range []struct {
		name, cluster string
		polled        bool
	}{
		{"embedded, in process", "cluster: {nodes: 3, shards: 4, quorum: 2}", false},
		{"a broker's address", "cluster: {nodes: 3, shards: 4, quorum: 2, broker: \"127.0.0.1:9092\"}", true},
		{"node processes", "cluster: {nodes: 3, shards: 4, quorum: 2, mode: process}", true},
	} {
		e, err := newEngine(load(t, strings.Replace(small, "cluster: {nodes: 1, shards: 2}", tc.cluster, 1)), Options{Calib: c, Host: Shared})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		e.poller.Hold()
		e.poller.Hold()
		var got []des.Time
		for _, p := range [][2]string{{"node-1", endpointBroker}, {endpointBroker, "node-2"}, {"node-1", "node-2"}} {
			e.link(p[0], p[1]).Send(100, func() { got = append(got, e.s.Now()) })
		}
		e.s.RunUntil(des.Second, nil)
		broker := des.Time(0)
		if tc.polled {
			broker = des.PollPeriod
		}
		if want := []des.Time{broker, broker, des.PollPeriod}; !slices.Equal(got, want) {
			t.Fatalf("%s: node→broker, broker→node, node→node delivered at %v, want %v", tc.name, got, want)
		}
	}
}

// The calibrated latencies by load (the client ways, the produce→ack's
// scale, the schedule lag, the hop delay) are read at the host's mean load
// over about a second: a 20 ms burst that takes both cores leaves it near
// idle, where the last period's load is 90%; a second of it brings the
// mean most of the way.
func TestCurvesReadTheMeanLoad(t *testing.T) {
	e, err := newEngine(load(t, small), Options{Calib: reference(t), Host: Shared})
	if err != nil {
		t.Fatal(err)
	}
	burst := func(from des.Time, n int) {
		for i := range n {
			e.s.At(from+des.Time(i)*des.SharePeriod, func() {
				for range e.cores {
					e.host.Start(des.SharePeriod, opPebble)
				}
			})
		}
	}
	burst(0, 1)
	e.s.RunUntil(des.SharePeriod, nil)
	if l, m := e.host.Load(), e.curveLoad(); l != 0.9 || m > 0.02 {
		t.Fatalf("after a 20 ms burst: last period's load %v (want 0.9), the curves' %v (want under 0.02)", l, m)
	}
	burst(des.SharePeriod, int(des.Second/des.SharePeriod))
	e.s.RunUntil(des.SharePeriod+des.Second, nil)
	if m := e.curveLoad(); m < 0.55 || m > 0.9 {
		t.Fatalf("after a second at 90%%: the curves' load %v, want 0.9·(1−1/e) ≈ 0.57 or more", m)
	}
}

// A Pebble job holds a core for exponentially distributed slices of mean
// pebbleStreak, cut at goQuantum: the median about 1.8 ms and the mean
// a little under 2.6 (the cut), none longer than the time slice, the
// same draws for the same seed.
func TestPebbleSlicesAreTheMeasuredHolds(t *testing.T) {
	draw := func(seed int64) []des.Time {
		sc := load(t, small)
		sc.Seed = seed
		e, err := newEngine(sc, Options{Calib: reference(t), Host: Shared})
		if err != nil {
			t.Fatal(err)
		}
		out := make([]des.Time, 20000)
		for i := range out {
			out[i] = e.pebbleSlice()
		}
		return out
	}
	a := draw(1)
	if !slices.Equal(a, draw(1)) || slices.Equal(a, draw(2)) {
		t.Fatal("the slices do not follow the seed")
	}
	var sum des.Time
	for _, d := range a {
		if d < des.Microsecond || d > goQuantum {
			t.Fatalf("a slice of %v", d)
		}
		sum += d
	}
	mean := float64(sum) / float64(len(a)) / float64(des.Millisecond)
	sorted := slices.Sorted(slices.Values(a))
	median := float64(sorted[len(a)/2]) / float64(des.Millisecond)
	// Exponential(2.6 ms) cut at 10 ms: mean 2.6·(1−e^(−10/2.6)) ≈ 2.54.
	if math.Abs(mean-2.54) > 0.08 || math.Abs(median-1.80) > 0.08 {
		t.Fatalf("mean %.2f ms (want 2.54), median %.2f ms (want 1.80)", mean, median)
	}
}
