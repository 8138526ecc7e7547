package main

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/pprof/profile"

	"github.com/rustorium/rustorium/calib"
	"github.com/rustorium/rustorium/node/tracing"
	"github.com/rustorium/rustorium/reports"
)

// TestSolveOverhead: runs' extra CPU made of a known cost per transaction
// and per block give those costs back, from two runs or, through the
// first and by least squares over the others, from three with noise; runs whose blocks cannot separate the two (the
// same transactions per block), or a fit with a negative part, fall back
// to the first run's extra per transaction.
func TestSolveOverhead(t *testing.T) {
	const perTx, perBlock = 200e3, 2e6 // ns
	pt := func(txs, blocks float64) e2ePoint {
		return e2ePoint{txs: txs, blocks: blocks, extra: perTx*txs + perBlock*blocks}
	}
	got := solveOverhead([]e2ePoint{pt(1000, 450), pt(3000, 90)})
	if math.Abs(got.perTx-perTx) > 1e-6 || math.Abs(got.perBlock-perBlock) > 1e-3 {
		t.Fatalf("fit %+v, want %v per tx and %v per block", got, perTx, perBlock)
	}
	// Three runs, the middle one's extra 5% high: the fit still passes
	// through the first run exactly, and its split moves less than an
	// exact solve through the first two runs would.
	noisy := []e2ePoint{pt(1000, 540), pt(3000, 200), pt(6000, 50)}
	noisy[1].extra *= 1.05
	got = solveOverhead(noisy)
	exact := solveOverhead(noisy[:2])
	if at := got.perTx*1000 + got.perBlock*540; math.Abs(at-noisy[0].extra) > 1e-3 {
		t.Fatalf("fit %+v charges the first run %v, want its %v", got, at, noisy[0].extra)
	}
	if math.Abs(got.perBlock-perBlock) > 0.1*perBlock || math.Abs(got.perBlock-perBlock) >= math.Abs(exact.perBlock-perBlock) {
		t.Fatalf("least squares %+v (two runs: %+v), want within 10%% of %v per block, and closer", got, exact, perBlock)
	}
	same := solveOverhead([]e2ePoint{pt(1000, 100), pt(3000, 300)})
	if same.perBlock != 0 || math.Abs(same.perTx-(perTx+perBlock*0.1)) > 1e-6 {
		t.Fatalf("blocks of the same size: %+v, want everything per transaction", same)
	}
	// More extra per second at the lower rate with fewer blocks: a
	// negative per-transaction part, refused.
	neg := solveOverhead([]e2ePoint{{txs: 1000, blocks: 100, extra: 5e8}, {txs: 3000, blocks: 90, extra: 1e8}})
	if neg.perBlock != 0 || neg.perTx != 5e5 {
		t.Fatalf("negative fit: %+v, want the first run's 500 µs per transaction alone", neg)
	}
	if one := solveOverhead([]e2ePoint{pt(1000, 450)}); one.perBlock != 0 || math.Abs(one.perTx-(perTx+perBlock*0.45)) > 1e-6 {
		t.Fatalf("one run: %+v, want everything per transaction", one)
	}
}

// TestDelayPoints: the runs' schedule lag (or hop delay) points come out sorted by load,
// without a point at no higher a load than the one before or without lag
// (calib.Validate would refuse them), or above calib.MaxLagBusy (an
// overloaded generator's).
func TestDelayPoints(t *testing.T) {
	pt := func(busy, p50, p99 float64) calib.LagPoint {
		return calib.LagPoint{HostBusy: busy, P50Ns: p50, P99Ns: p99}
	}
	got := delayPoints([]calib.LagPoint{pt(0.9, 300e3, 9e6), pt(0.7, 70e3, 4e6), pt(0.96, 2e6, 90e6)})
	want := []calib.LagPoint{{HostBusy: 0.7, P50Ns: 70e3, P99Ns: 4e6}, {HostBusy: 0.9, P50Ns: 300e3, P99Ns: 9e6}}
	if !slices.Equal(got, want) {
		t.Fatalf("delayPoints: %+v, want %+v (the 96%% point left out)", got, want)
	}
	for name, pts := range map[string][]calib.LagPoint{
		"same load":  {pt(0.7, 70e3, 4e6), pt(0.7, 80e3, 5e6)},
		"no lag":     {pt(0.7, 70e3, 4e6), pt(0.9, 0, 0)},
		"p99 < p50":  {pt(0.7, 70e3, 4e6), pt(0.9, 5e6, 4e6)},
		"above 90%":  {pt(0.7, 70e3, 4e6), pt(0.95, 80e3, 5e6)},
		"above 100%": {pt(0.7, 70e3, 4e6), pt(1.2, 80e3, 5e6)},
	} {
		if got := delayPoints(pts); len(got) != 1 || got[0] != want[0] {
			t.Errorf("%s: %+v, want the 70%% point alone", name, got)
		}
	}
	c, err := calib.Load("../../calib/reference.json")
	if err != nil {
		t.Fatal(err)
	}
	c.Ops.ScheduleLag = got
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestClientWay: a run's client way is half its client.send median beyond
// node.ingress's, from at least e2eMinTraces copies of each; wayPoints
// sorts the runs' ways by load and leaves out those without one, at a
// load no higher than the one before, or above 90%.
func TestClientWay(t *testing.T) {
	res := func(send, ingress int64, n int) *reports.Result {
		return &reports.Result{Traces: &reports.Traces{Spans: []reports.SpanStat{
			{Span: string(tracing.SpanClientSend), Count: n, P50Us: send},
			{Span: string(tracing.SpanIngress), Count: n, P50Us: ingress},
		}}}
	}
	spans := &reports.Result{Traces: &reports.Traces{Spans: []reports.SpanStat{
		{Span: string(tracing.SpanProduce), Count: e2eMinTraces, P50Us: 70},
		{Span: string(tracing.SpanCommit), Count: e2eMinTraces, P50Us: 430},
	}}}
	if got := spanWay(spans, tracing.SpanProduce); got != 70e3 {
		t.Errorf("node.produce 70 µs: %v ns", got)
	}
	if got := spanWay(spans, tracing.SpanCommit); got != 430e3 {
		t.Errorf("replica.commit 430 µs: %v ns", got)
	}
	if got := spanWay(&reports.Result{Traces: &reports.Traces{Spans: []reports.SpanStat{{Span: string(tracing.SpanProduce), Count: e2eMinTraces - 1, P50Us: 70}}}}, tracing.SpanProduce); got != 0 {
		t.Errorf("node.produce from %d traces: %v ns, want 0", e2eMinTraces-1, got)
	}
	if got := clientWay(res(600, 130, e2eMinTraces)); got != 235e3 {
		t.Errorf("client.send 600 µs, node.ingress 130: way %v ns, want 235000", got)
	}
	for name, r := range map[string]*reports.Result{
		"few traces":   res(600, 130, e2eMinTraces-1),
		"no way":       res(130, 130, e2eMinTraces),
		"no traces":    {},
		"ingress only": {Traces: &reports.Traces{Spans: []reports.SpanStat{{Span: string(tracing.SpanIngress), Count: 500, P50Us: 100}}}},
	} {
		if got := clientWay(r); got != 0 {
			t.Errorf("%s: way %v, want 0", name, got)
		}
	}
	if s := e2eTraceShare(300, 10); s*300*10 < 2*e2eMinTraces {
		t.Errorf("300/s for 10 s traced at %v: fewer than %d", s, 2*e2eMinTraces)
	}
	if s := e2eTraceShare(1000, 30); s != tracing.DefaultSample {
		t.Errorf("1000/s for 30 s traced at %v, want the default", s)
	}
	pt := func(busy, way float64) e2ePoint {
		return e2ePoint{lag: calib.LagPoint{HostBusy: busy}, way: way}
	}
	got := wayPoints([]e2ePoint{pt(0.75, 126e3), pt(0.23, 194e3), pt(0.41, 0), pt(0.41, 246e3), pt(0.41, 250e3), pt(0.95, 90e3)}, func(p e2ePoint) float64 { return p.way })
	want := []calib.WayPoint{{HostBusy: 0.23, P50Ns: 194e3}, {HostBusy: 0.41, P50Ns: 246e3}, {HostBusy: 0.75, P50Ns: 126e3}}
	if !slices.Equal(got, want) {
		t.Fatalf("wayPoints: %+v, want %+v", got, want)
	}
	c, err := calib.Load("../../calib/reference.json")
	if err != nil {
		t.Fatal(err)
	}
	c.Ops.ClientWay = got
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestFitCapacity: the split of the first run's extra CPU keeps that run
// exact and makes the model commit the saturated run's rate, within the
// bisection's resolution; a rate the model cannot reach either way takes
// the nearer end, and a model that fails fails the fit.
func TestFitCapacity(t *testing.T) {
	first := e2ePoint{txs: 1000, blocks: 950, extra: 1e9} // 1000 µs a transaction at 1000/s
	// Two cores; 120 µs of modelled work a transaction and blocks of 400
	// at saturation.
	model := func(perTx, perBlock float64) (float64, error) {
		return 2e9 / (120e3 + perTx + perBlock/400), nil
	}
	for _, capacity := range []float64{6000, 9000} {
		got, err := fitCapacity(first, capacity, model)
		if err != nil {
			t.Fatal(err)
		}
		if at := got.perTx*first.txs + got.perBlock*first.blocks; math.Abs(at-first.extra) > 1e-3*first.extra {
			t.Fatalf("capacity %v: fit %+v charges the first run %v, want its %v", capacity, got, at, first.extra)
		}
		if math.Abs(got.simCapacity-capacity) > 0.01*capacity {
			t.Fatalf("capacity %v: fit %+v", capacity, got)
		}
		if want, _ := model(got.perTx, got.perBlock); want != got.simCapacity {
			t.Fatalf("capacity %v: simCapacity %v, the model says %v", capacity, got.simCapacity, want)
		}
	}
	if got, _ := fitCapacity(first, 50000, model); got.perTx != 0 || got.perBlock != first.extra/first.blocks {
		t.Fatalf("out of reach above: %+v, want everything per block", got)
	}
	if got, _ := fitCapacity(first, 100, model); got.perTx != first.extra/first.txs || got.perBlock != 0 {
		t.Fatalf("out of reach below: %+v, want everything per transaction", got)
	}
	boom := errors.New("boom")
	if _, err := fitCapacity(first, 6000, func(float64, float64) (float64, error) { return 0, boom }); !errors.Is(err, boom) {
		t.Fatalf("failing model: %v", err)
	}
	if _, err := fitCapacity(e2ePoint{}, 6000, model); err == nil {
		t.Fatal("no extra CPU: want an error")
	}
}

// TestPebbleShape: a run's cost gives the node's flush schedule (its
// bytes in per memtable flushed, bytes flushed per byte in, memtables per
// round of L0 compactions), summed over runs; runs that flushed less
// than two memtables or never compacted leave the in-memory
// measurement's schedule as it was.
func TestPebbleShape(t *testing.T) {
	// 1000 transactions of 1800 B in (write amp 3: 5400 B written each),
	// 1900 B flushed each, 0.6 memtables flushed, no round.
	a := shapeOf(&reports.Cost{Committed: 1000, PebbleWriteAmp: 3, PebbleBytesPerTx: 5400, PebbleFlushedPerTx: 1900, PebbleMemtablesFlushed: 0.6})
	if math.Abs(a.in-1.8e6) > 1 || math.Abs(a.flushed-1.9e6) > 1 || a.memtables != 0.6 || a.rounds != 0 {
		t.Fatalf("shape %+v", a)
	}
	if s := shapeOf(&reports.Cost{Committed: 1000, PebbleWriteAmp: 3, PebbleBytesPerTx: 5400}); s != (pebbleShape{}) {
		t.Fatalf("a run that never flushed: %+v", s)
	}
	b := &calib.PebbleBackground{InBytesPerFlush: 2.5e6, FlushedPerIn: 2.375, FlushesPerCompaction: 2.6}
	before := *b
	a.apply(b)
	if *b != before {
		t.Fatalf("under two memtables flushed, no round: the schedule changed to %+v", *b)
	}
	// Another run: 9000 transactions of 1800 B, 8.4 memtables, 5 rounds;
	// its profile sampled too little CPU in Pebble's jobs to price them.
	b.NsPerMiB = 1.7e6
	sum := a.add(pebbleShape{in: 16.2e6, flushed: 16.2e6, memtables: 8.4, rounds: 5, tables: 64 << 20, cpu: minPebbleCPU / 2})
	sum.apply(b)
	want := calib.PebbleBackground{InBytesPerFlush: 2e6, FlushedPerIn: 1.006, FlushesPerCompaction: 1.8, NsPerMiB: 1.7e6}
	if *b != want {
		t.Fatalf("schedule %+v, want %+v", *b, want)
	}
	// The first run's tables are all it wrote less its WAL's. With a
	// third run's 250 ms the runs' 400 ms of CPU for their 64 MiB and
	// 3.6 MB of tables price them.
	if a.tables != 3.6e6 {
		t.Fatalf("tables written %v, want 3.6e6", a.tables)
	}
	sum = sum.add(pebbleShape{cpu: 250e6})
	sum.apply(b)
	if want.NsPerMiB = math.Round(400e6 / (64 + 3.6e6/(1<<20))); *b != want {
		t.Fatalf("with the CPU: %+v, want %+v", *b, want)
	}
}

// pebbleCPU sums the CPU of the samples whose stack holds Pebble's flush
// or compaction goroutine's first function, whatever the module's major
// version, and nothing else: not the user's Flush, not a function of
// another package of that name; a profile without CPU samples is refused.
func TestPebbleCPU(t *testing.T) {
	fns := map[string]*profile.Function{}
	loc := func(names ...string) []*profile.Location {
		var out []*profile.Location
		for _, n := range names {
			f := fns[n]
			if f == nil {
				f = &profile.Function{ID: uint64(len(fns) + 1), Name: n}
				fns[n] = f
			}
			out = append(out, &profile.Location{ID: uint64(len(fns)*10 + len(out) + 1), Line: []profile.Line{{Function: f}}})
		}
		return out
	}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		Sample: []*profile.Sample{
			{Value: []int64{1, 10e6}, Location: loc("github.com/cockroachdb/pebble/v2/sstable.(*Writer).Add", "github.com/cockroachdb/pebble/v2.(*DB).runCompaction", "github.com/cockroachdb/pebble/v2.(*DB).compact1", "github.com/cockroachdb/pebble/v2.(*DB).compact.func1", "github.com/cockroachdb/pebble/v2.(*DB).compact")},
			{Value: []int64{1, 20e6}, Location: loc("syscall.Syscall", "github.com/cockroachdb/pebble/v2.(*DB).flush1", "github.com/cockroachdb/pebble/v2.(*DB).flush")},
			{Value: []int64{1, 40e6}, Location: loc("github.com/cockroachdb/pebble.(*DB).compact")}, // another major version
			{Value: []int64{1, 1e9}, Location: loc("github.com/cockroachdb/pebble/v2.(*DB).Flush", "main.main")},
			{Value: []int64{1, 1e9}, Location: loc("github.com/cockroachdb/pebble/v2.(*DB).Apply", "github.com/rustorium/rustorium/node/storage.(*DB).flush")},
			{Value: []int64{1, 1e9}, Location: loc("github.com/cockroachdb/pebble/v2.(*DB).compactAndWrite")},
		},
	}
	for _, f := range fns {
		p.Function = append(p.Function, f)
	}
	for _, s := range p.Sample {
		p.Location = append(p.Location, s.Location...)
	}
	path := filepath.Join(t.TempDir(), "cpu.pprof")
	write := func(p *profile.Profile) {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := p.Write(f); err != nil {
			t.Fatal(err)
		}
	}
	write(p)
	got, err := pebbleCPU(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != 70e6 {
		t.Fatalf("Pebble's CPU %v ns, want 70e6", got)
	}
	p.SampleType = []*profile.ValueType{{Type: "alloc_objects", Unit: "count"}, {Type: "alloc_space", Unit: "bytes"}}
	write(p)
	if _, err := pebbleCPU(path); err == nil || !strings.Contains(err.Error(), "not a CPU profile") {
		t.Fatalf("a heap profile: %v", err)
	}
	if _, err := pebbleCPU(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Fatal("no file: no error")
	}
}
