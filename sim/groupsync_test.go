package sim

import (
	"context"
	"testing"

	"github.com/rustorium/rustorium/sim/des"
)

// TestRoundBlocksShareOneFsync: with sync, the blocks a leader published
// together commit at a node with one fsync — the first waits for the
// others, at most combineWait —, a round whose last block never comes
// flushes when the wait ends, and a block published alone, or any block
// without sync, goes at once. Each done call records when its write was
// synced.
func TestRoundBlocksShareOneFsync(t *testing.T) {
	k := costs{c: reference(t), sync: true}
	fsync := func(writes int) des.Time { return k.fsync(1000 * writes) } // one fsync of that many writes
	if fsync(1) <= 0 {
		t.Fatal("no fsync cost to see")
	}
	setup := func(sync bool) (*engine, *groupSync, map[string]des.Time) {
		e := &engine{s: des.New(1), k: k}
		e.k.sync = sync
		return e, &groupSync{disk: des.NewServer(e.s, "disk", 1, numOps)}, map[string]des.Time{}
	}
	add := func(e *engine, g *groupSync, at des.Time, r *pubRound, name string, done map[string]des.Time) {
		e.s.At(at, func() { g.add(e, 1000, r, func() { done[name] = e.s.Now() }) })
	}

	e, g, done := setup(true)
	r := &pubRound{blocks: 3}
	add(e, g, 0, r, "a", done)
	add(e, g, 300*des.Microsecond, r, "b", done)
	add(e, g, 600*des.Microsecond, r, "c", done)
	e.s.RunUntil(des.Second, nil)
	if want := 600*des.Microsecond + fsync(3); done["a"] != want || done["b"] != want || done["c"] != want {
		t.Fatalf("a round of three: synced at %v, want all at %v (one fsync once the last came)", done, want)
	}

	e, g, done = setup(true)
	add(e, g, 0, &pubRound{blocks: 2}, "lonely", done) // its sibling never comes
	add(e, g, 100*des.Microsecond, nil, "alone", done)
	e.s.RunUntil(des.Second, nil)
	if want := combineWait + fsync(2); done["lonely"] != want || done["alone"] != want {
		t.Fatalf("a round missing a block: synced at %v, want both at %v (the wait's end)", done, want)
	}

	e, g, done = setup(true)
	add(e, g, 0, nil, "alone", done)
	e.s.RunUntil(des.Second, nil)
	if done["alone"] != fsync(1) {
		t.Fatalf("a block alone: synced at %v, want %v", done["alone"], fsync(1))
	}

	e, g, done = setup(false)
	add(e, g, 0, &pubRound{blocks: 2}, "nosync", done)
	e.s.RunUntil(des.Second, nil)
	if done["nosync"] != 0 {
		t.Fatalf("without sync: done at %v, want at once", done["nosync"])
	}
}

// TestFsyncStretchesWithTheHostsLoad: on a shared host a block commit's
// fsync takes as much longer as the host's loopback latencies do, so with
// other processes' load on the host (BackgroundLoad) the same commits keep
// its disk busier; without sync the disk has nothing to do.
func TestFsyncStretchesWithTheHostsLoad(t *testing.T) {
	disk := func(sync bool, background float64) float64 {
		sc := load(t, small)
		sc.Cluster.Storage.Sync = &sync
		o, err := Run(context.Background(), sc, Options{Calib: reference(t), Host: Shared, BackgroundLoad: background})
		if err != nil {
			t.Fatal(err)
		}
		return o.Result.Simulation.Utilisation["host disk"]["fsync"]
	}
	idle, busy := disk(true, 0), disk(true, 2)
	if !(idle > 0) || busy < 1.3*idle {
		t.Errorf("the host's disk busy with fsync %.4f with no other load, %.4f with two threads' worth: want it to grow with the load", idle, busy)
	}
	if u := disk(false, 0); u != 0 {
		t.Errorf("without sync the disk is busy with fsync %.4f", u)
	}
}

// TestReplicasPayTheBlockOverhead: every node that commits another node's
// block pays the calibrated per-block overhead, as its leader does with
// its round. With no per-transaction overhead, the two nodes that lead no
// shard (four nodes, two shards) are charged overhead only for the blocks
// they replicate — each block once: about blocks per second × the
// overhead.
func TestReplicasPayTheBlockOverhead(t *testing.T) {
	c := *reference(t)
	c.Ops.TxOverheadNs, c.Ops.BlockOverheadNs = 0, 1e6 // 1 ms a block
	sc := load(t, small)
	sc.Cluster.Nodes, sc.Cluster.Quorum = 4, 3
	o, err := Run(context.Background(), sc, Options{Calib: &c, Host: Dedicated})
	if err != nil {
		t.Fatal(err)
	}
	s := o.Result.Simulation
	perSecond := o.Result.Workloads["puts"].Stages["committed"].ThroughputTPS / s.BlockMeanTxs // blocks a second
	want := perSecond * 1e-3 / float64(s.CoresPerNode)
	for _, n := range []string{"node-3", "node-4"} {
		if got := s.Utilisation[n]["overhead"]; got < 0.8*want || got > 1.2*want {
			t.Errorf("%s (a replica only): overhead %.4f of its cores, want about %.4f (%.0f blocks/s × 1 ms)", n, got, want, perSecond)
		}
	}
}
