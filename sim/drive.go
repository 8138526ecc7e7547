package sim

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/rustorium/rustorium/reports"
	"github.com/rustorium/rustorium/scenarios"
	"github.com/rustorium/rustorium/sim/des"
)

// run drives the scheduler through warmup, the measured phase and the
// drain, with the timeline's actions at their times.
func (e *engine) run(ctx context.Context) error {
	for _, n := range e.nodes {
		n.cpu.Window(e.measureStart, e.measureEnd)
		n.disk.Window(e.measureStart, e.measureEnd)
	}
	for _, b := range e.brokers {
		b.cpu.Window(e.measureStart, e.measureEnd)
	}
	for _, w := range e.wls {
		if w.clients > 0 {
			for i := range w.clients {
				e.s.At(des.Time(i)*des.Microsecond, func() { e.closedSend(w) })
			}
			continue
		}
		if e.cohort {
			e.s.At(0, func() { e.cohortWindow(w, 0) })
			continue
		}
		if first := des.Time(w.pacer.At(0)); first < e.loadEnd {
			e.s.At(first, func() { e.openSend(w) })
		}
	}
	for _, a := range e.sc.Schedule() {
		e.s.At(e.measureStart+des.Time(a.At), func() { e.act(a) })
	}
	for _, ev := range e.sc.Timeline {
		e.timeline = append(e.timeline, reports.TimelineResult{At: ev.At.String(), Event: ev.String(), Recovery: "n/a"})
	}
	stop := func() bool { return ctx.Err() != nil }
	end := e.loadEnd + des.Time(e.sc.Drain)
	for t := des.Second; ; t += des.Second {
		if !e.s.RunUntil(min(t, end), stop) {
			return context.Cause(ctx)
		}
		if e.opts.Progress != nil && t%(5*des.Second) == 0 {
			fmt.Fprintf(e.opts.Progress, "simulated %v of %v: accepted %d, committed %d, %d events\n", durationOf(min(t, end)), durationOf(end), e.accepted, e.committed, e.s.Events())
		}
		if t >= end {
			return nil
		}
	}
}

// act performs one timeline action.
func (e *engine) act(a scenarios.Action) {
	switch a.Op {
	case scenarios.OpNetwork:
		e.setNetwork(e.net.Apply(a.Network))
	case scenarios.OpKill:
		if n := e.target(a); n != nil {
			e.kill(n)
		}
	case scenarios.OpRestart:
		if n := e.target(a); n != nil && !n.up {
			e.startCatchUp(n, a.Event)
			e.restart(n)
		}
	case scenarios.OpPause:
		if n := e.target(a); n != nil {
			until := e.s.Now() + des.Time(e.sc.Timeline[a.Event].For)
			n.paused = until
			if e.host == nil {
				n.cpu.Stall(until)
			}
		}
	case scenarios.OpResume:
		// the pause ends by itself at its time
	case scenarios.OpPartition, scenarios.OpHeal:
		block := a.Op == scenarios.OpPartition
		for i, g := range a.Groups {
			for j, h := range a.Groups {
				if i == j {
					continue
				}
				for _, x := range g {
					for _, y := range h {
						e.link(x, y).Block(block)
					}
				}
			}
		}
	}
}

// target is the node an action names (node-N, or leader(S) when it fires);
// the timeline result records which.
func (e *engine) target(a scenarios.Action) *node {
	if s, ok := scenarios.LeaderTarget(a.Node); ok {
		if s >= len(e.shards) {
			return nil
		}
		n := e.leaderOf(uint32(s))
		if n != nil && a.Op != scenarios.OpRestart && a.Op != scenarios.OpResume {
			e.timeline[a.Event].Node = n.name
		}
		if a.Op == scenarios.OpRestart {
			return e.byName(e.timeline[a.Event].Node)
		}
		return n
	}
	return e.byName(a.Node)
}

func (e *engine) byName(name string) *node {
	for _, n := range e.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

// upNodes is how many nodes are up.
func (e *engine) upNodes() int { return len(e.nodes) - e.down }

// rebalanceDelay is how long the leaders' group takes to move a stopped
// node's shards: an in-process kill is a graceful leave (a rebalance at
// once, about a broker round trip or two here); a process is killed and
// its session must time out.
func (e *engine) rebalanceDelay() des.Time {
	if e.sc.Cluster.Mode == scenarios.ClusterProcess {
		return des.Time(e.sc.Cluster.Leadership.SessionTimeout)
	}
	return 100 * des.Millisecond
}

// kill stops node n: its clients fail over, its shards move after the
// rebalance.
func (e *engine) kill(n *node) {
	if !n.up {
		return
	}
	n.up = false
	e.down++
	n.life++
	n.vq = nil
	n.idle = e.cores
	n.waitFor = nil
	n.inRound = false
	e.abandonRound(n)
	for _, r := range n.reps {
		r.busy, r.waiting = false, nil
	}
	n.prep = combiner{}
	if e.cohort {
		e.cohortStop(n)
	} else {
		e.failOver(n)
	}
	e.s.After(e.rebalanceDelay(), func() {
		e.assign()
		for _, sh := range e.shards {
			e.wakeLeader(sh)
		}
	})
}

// restart starts node n again on its data: its replicas resume from what
// they committed, the finality tracker restored there.
func (e *engine) restart(n *node) {
	if n.up {
		return
	}
	n.up = true
	e.down--
	fin, err := e.newFinalizer(n, e.validators(), e.realFinality())
	if err == nil {
		n.fin = fin
	}
	for _, r := range n.reps {
		if rf, ok := n.fin.(*realFinality); ok {
			_, _ = rf.f.Restore(r.shard, r.committed)
		} else if cf, ok := n.fin.(*countFinality); ok {
			cf.shards[r.shard].final = r.committed
		}
		r.final = map[uint64]bool{}
		r.next = r.committed + 1
		r.avail = uint64(len(e.shards[r.shard].blocks))
	}
	n.inflight = map[uint32]int{}
	e.s.After(e.rebalanceDelay(), func() {
		e.assign()
		for _, sh := range e.shards {
			e.wakeLeader(sh)
		}
	})
	if e.cohort {
		e.cohortRejoin(n)
	} else {
		e.resendAttestations(n)
	}
	for _, r := range n.reps {
		e.pump(r)
	}
}

// catchUp follows a restarted node until it has committed, on every shard,
// the height the cluster had reached when it restarted (reports.CatchUp).
type catchUp struct {
	event  int // the timeline event that restarted it
	node   *node
	from   des.Time
	target map[uint32]uint64 // the shards it is still behind on: the cluster's height then
	done   des.Time          // when the last of them caught up (left 0)
	left   int
}

// startCatchUp records, as node n restarts for timeline event ev, the
// heights it must reach: per shard the highest any node had committed.
func (e *engine) startCatchUp(n *node, ev int) {
	c := &catchUp{event: ev, node: n, from: e.s.Now(), target: map[uint32]uint64{}}
	for _, r := range n.reps {
		var h uint64
		for _, m := range e.nodes {
			h = max(h, m.reps[r.shard].committed)
		}
		if h > r.committed {
			c.target[r.shard] = h
		}
	}
	c.left = len(c.target)
	if c.left == 0 {
		c.done = c.from
	}
	e.catchUps = append(e.catchUps, c)
}

// caughtUp notes that node n committed height h of shard.
func (e *engine) caughtUp(n *node, shard uint32, h uint64) {
	for _, c := range e.catchUps {
		if c.node != n || c.left == 0 {
			continue
		}
		if t, ok := c.target[shard]; ok && h >= t {
			delete(c.target, shard)
			if c.left--; c.left == 0 {
				c.done = e.s.Now()
			}
		}
	}
}

// stalls fills in the timeline's kills and restarts, as a run's checker
// does: the fail-over (kill) and rejoin (restart) stalls of block
// production, from the blocks' first commits, each in the window until
// the next action or the end of the load; and the restarted nodes'
// catch-up.
func (e *engine) stalls() {
	acts := e.sc.Schedule()
	var logs [][]time.Time
	for i, a := range acts {
		if (a.Op != scenarios.OpKill && a.Op != scenarios.OpRestart) || a.Node == scenarios.BrokerTarget || a.Event >= len(e.timeline) {
			continue
		}
		if logs == nil {
			logs = make([][]time.Time, len(e.shards))
			for s, sh := range e.shards {
				for _, b := range sh.blocks {
					if b.first > 0 {
						logs[s] = append(logs[s], e.wall(b.first))
					}
				}
				slices.SortFunc(logs[s], func(a, b time.Time) int { return a.Compare(b) })
			}
		}
		from, until := e.measureStart+des.Time(a.At), e.loadEnd
		if i+1 < len(acts) {
			until = min(until, e.measureStart+des.Time(acts[i+1].At))
		}
		f := reports.Stall(logs, e.wall(from), e.wall(until))
		tr := &e.timeline[a.Event]
		if a.Op == scenarios.OpKill {
			tr.Failover = f
			continue
		}
		tr.Rejoin = f
		tr.CatchUp = reports.CatchUp(0, false)
		for _, c := range e.catchUps {
			if c.event == a.Event && c.left == 0 {
				tr.CatchUp = reports.CatchUp(time.Duration(c.done-c.from), true)
			}
		}
	}
}
