package sim

import (
	"testing"

	"github.com/rustorium/rustorium/calib"
	"github.com/rustorium/rustorium/sim/des"
)

// prepareAt queues block b on node n's combiner at time at and returns
// where the time its batch is done will be written.
func prepareAt(e *engine, n *node, at des.Time, b *block) *des.Time {
	done := new(des.Time)
	*done = -1
	e.s.At(at, func() { e.prepare(n, b, func() { *done = e.s.Now() }) })
	return done
}

// A node's replicas prepare their blocks through one combiner, as
// storage.DB.Prepare does: a block that comes while a batch is under way
// waits for it, and the blocks queued meanwhile go together in the next
// batch, one job on the cores (one goroutine's PrepareMany). A model that
// prepares each block as a job of its own finishes the second block half
// a cost after the first, on the other core.
func TestPreparesOneBatchAtATime(t *testing.T) {
	e, err := newEngine(load(t, small), Options{Calib: reference(t), Host: Dedicated})
	if err != nil {
		t.Fatal(err)
	}
	n := e.nodes[0]
	a := &block{shard: 0, height: 1, n: 1, tree: 1000}
	b := &block{shard: 1, height: 1, n: 1, tree: 1000}
	c := &block{shard: 0, height: 2, n: 1, tree: 1000}
	cost := e.k.execute(1, 1000)
	doneA := prepareAt(e, n, 0, a)
	doneB := prepareAt(e, n, cost/2, b)
	doneC := prepareAt(e, n, cost/2, c) // shard 0's next: not in a batch with a
	e.s.RunUntil(des.Second, nil)
	if *doneA != cost {
		t.Fatalf("the first block prepared at %v, want its cost %v", *doneA, cost)
	}
	if *doneB != 3*cost || *doneC != 3*cost {
		t.Fatalf("the blocks that came during the first batch prepared at %v and %v, want both at %v (after it, in one batch)", *doneB, *doneC, 3*cost)
	}
}

// A batch waits for the blocks expected on their way (a round the node's
// leader published: DB.Expect) until they come, at most combineWait from
// the expectation; a batch holds at most one block of each shard.
func TestPrepareWaitsForTheExpectedBlocks(t *testing.T) {
	e, err := newEngine(load(t, small), Options{Calib: reference(t), Host: Dedicated})
	if err != nil {
		t.Fatal(err)
	}
	n := e.nodes[0]
	cost := e.k.execute(1, 1000)
	e.expect(n, 1, 1)
	doneA := prepareAt(e, n, 0, &block{shard: 0, height: 1, n: 1, tree: 1000})
	doneB := prepareAt(e, n, 100*des.Microsecond, &block{shard: 1, height: 1, n: 1, tree: 1000})
	// Shard 1's next block is expected but never comes: shard 0's waits
	// combineWait, then goes alone.
	e.s.At(des.Millisecond, func() { e.expect(n, 1, 2) })
	doneC := prepareAt(e, n, des.Millisecond, &block{shard: 0, height: 2, n: 1, tree: 1000})
	e.s.RunUntil(des.Second, nil)
	if want := 100*des.Microsecond + 2*cost; *doneA != want || *doneB != want {
		t.Fatalf("shard 0's block prepared at %v, shard 1's expected one at %v: want both at %v", *doneA, *doneB, want)
	}
	if want := des.Millisecond + combineWait + cost; *doneC != want {
		t.Fatalf("a block whose expected sibling never came prepared at %v, want at %v", *doneC, want)
	}
}

// TestMerkleExtraCountsFromTheRequest: a Prepare batch under load waits
// until the calibrated update has passed since it asked for a core: the
// calibrated 600 µs less its CPU when it got a core at once, less its
// wait for a core too when it waited, nothing when it took longer than
// that; and nothing without the calibration's points.
func TestMerkleExtraCountsFromTheRequest(t *testing.T) {
	c := *reference(t)
	c.Ops.MerkleWay = []calib.WayPoint{{HostBusy: 0.01, P50Ns: 600e3}, {HostBusy: 0.5, P50Ns: 600e3}}
	e := &engine{s: des.New(1), k: costs{c: &c}, merkleWay: true}
	e.host = des.NewServer(e.s, "host", 2, numOps)
	for at := des.Time(0); at < 2*des.Second; at += des.SharePeriod {
		e.s.At(at, func() { // both cores kept busy for two seconds: a load above the first point
			e.host.MeanLoad()
			e.host.Do(des.SharePeriod, opExecute, func() {})
			e.host.Do(des.SharePeriod, opExecute, func() {})
		})
	}
	e.s.RunUntil(2*des.Second, nil)
	if l := e.curveLoad(); l < 0.5 {
		t.Fatalf("host load %v", l)
	}
	cost := 100 * des.Microsecond
	for _, tc := range []struct{ took, want des.Time }{
		{cost, 500 * des.Microsecond},                       // a core at once
		{cost + 300*des.Microsecond, 200 * des.Microsecond}, // 300 µs waiting for a core
		{cost + 900*des.Microsecond, 0},                     // longer than the calibrated update
	} {
		if got := e.merkleExtra(cost, tc.took); got != tc.want {
			t.Errorf("took %v: extra %v, want %v", tc.took, got, tc.want)
		}
	}
	e.merkleWay = false
	if got := e.merkleExtra(cost, cost); got != 0 {
		t.Errorf("without the points: extra %v", got)
	}
}
