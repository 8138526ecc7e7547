package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rustorium/rustorium/internal/retry"
	"github.com/rustorium/rustorium/reports"
	"github.com/rustorium/rustorium/scenarios"
)

// timelineRun carries out a scenario's timeline through a target's Faults,
// at its times from the start of measuring, and remembers when each action
// really happened.
type timelineRun struct {
	sc     *scenarios.Scenario
	f      Faults
	chk    *checker
	printf func(string, ...any)
	cancel context.CancelFunc
	done   chan struct{}
	heals  map[int]func() // event index → heal of its partition; owned by the goroutine
	floods map[int]*flood // event index → its flood while it lasts; owned by the goroutine

	mu       sync.Mutex
	when     map[int]time.Duration // event index → when its last action ran, from the start of measuring
	actions  []actionRun           // the actions that ran, in order
	resolved map[int]string        // event index → the node a leader(S) target named when it ran
}

// actionRun is one action that ran.
type actionRun struct {
	a    scenarios.Action
	at   time.Time
	node string // the node it acted on
	err  error
	// For a restart: the highest height of each shard committed anywhere
	// when the node restarted, and the node's own heights then.
	target, own map[uint32]uint64
	// For a flood: the connections opened, and what the node did with them.
	flood *reports.Flood
}

// runTimeline starts carrying out sc's timeline through f (nil when the
// scenario has none: then nothing runs).
func runTimeline(ctx context.Context, sc *scenarios.Scenario, f Faults, chk *checker, measureStart time.Time, printf func(string, ...any)) *timelineRun {
	ctx, cancel := context.WithCancel(ctx)
	tr := &timelineRun{sc: sc, f: f, chk: chk, printf: printf, cancel: cancel, done: make(chan struct{}),
		heals: map[int]func(){}, floods: map[int]*flood{}, when: map[int]time.Duration{}, resolved: map[int]string{}}
	actions := sc.Schedule()
	if f == nil {
		actions = nil // Run refuses a timeline for a target without Faults
	}
	go func() {
		defer close(tr.done)
		defer func() { // a flood still in force when the timeline stops
			for _, f := range tr.floods {
				f.stop()
			}
		}()
		for _, a := range actions {
			if retry.Sleep(ctx, time.Until(measureStart.Add(a.At.Std()))) != nil {
				return
			}
			run := tr.act(ctx, a)
			tr.mu.Lock()
			tr.when[a.Event] = time.Since(measureStart)
			tr.actions = append(tr.actions, run)
			tr.mu.Unlock()
		}
	}()
	return tr
}

// act carries out one action and reports how it went.
func (tr *timelineRun) act(ctx context.Context, a scenarios.Action) actionRun {
	run := actionRun{a: a, at: time.Now()}
	switch a.Op {
	case scenarios.OpPause, scenarios.OpResume, scenarios.OpKill, scenarios.OpRestart, scenarios.OpFlood, scenarios.OpUnflood,
		scenarios.OpDiskFull, scenarios.OpDiskFree:
		if run.node, run.err = tr.target(ctx, a); run.err == nil {
			run.at = time.Now()
		}
	}
	f := tr.f
	switch {
	case run.err != nil:
	case a.Op == scenarios.OpPause:
		run.err = f.Pause(run.node)
	case a.Op == scenarios.OpResume:
		run.err = f.Resume(run.node)
	case a.Op == scenarios.OpKill && run.node == scenarios.BrokerTarget:
		run.err = f.StopBroker()
	case a.Op == scenarios.OpRestart && run.node == scenarios.BrokerTarget:
		run.err = f.StartBroker()
	case a.Op == scenarios.OpKill:
		run.err = f.Kill(run.node)
	case a.Op == scenarios.OpRestart:
		run.target = tr.chk.heights()
		run.own, run.err = f.Restart(run.node)
	case a.Op == scenarios.OpNetwork:
		run.err = f.SetNetwork(tr.sc.NetworkAt(a.At))
	case a.Op == scenarios.OpPartition:
		tr.heals[a.Event] = f.Partition(a.Groups...)
	case a.Op == scenarios.OpHeal:
		if heal := tr.heals[a.Event]; heal != nil {
			heal()
		}
	case a.Op == scenarios.OpFlood:
		var addr string
		if addr, run.err = f.APIAddr(run.node); run.err == nil {
			fl := floodAPI(ctx, addr, a.Conns)
			tr.floods[a.Event] = fl
			run.flood = &reports.Flood{Conns: a.Conns, Held: fl.Held, Refused: fl.Refused}
		}
	case a.Op == scenarios.OpDiskFull:
		run.err = f.FillDisk(run.node, true)
	case a.Op == scenarios.OpDiskFree:
		run.err = f.FillDisk(run.node, false)
	case a.Op == scenarios.OpUnflood:
		if fl := tr.floods[a.Event]; fl != nil {
			fl.stop()
			delete(tr.floods, a.Event)
		}
	}
	what := a.String()
	if run.node != "" && run.node != a.Node {
		what += " (" + run.node + ")"
	}
	if run.flood != nil {
		what += fmt.Sprintf(": %d held, %d refused", run.flood.Held, run.flood.Refused)
	}
	if run.err != nil {
		tr.printf("timeline %v: %s: %v", a.At, what, run.err)
	} else {
		tr.printf("timeline %v: %s (took %v)", a.At, what, time.Since(run.at).Round(time.Millisecond))
	}
	return run
}

// target is the node an action acts on: its name, or for leader(S) the
// node leading shard S when the event's first action runs (its later
// actions, restart and resume, act on the same node).
func (tr *timelineRun) target(ctx context.Context, a scenarios.Action) (string, error) {
	tr.mu.Lock()
	name, ok := tr.resolved[a.Event]
	tr.mu.Unlock()
	if ok {
		return name, nil
	}
	shard, ok := scenarios.LeaderTarget(a.Node)
	if !ok {
		return a.Node, nil
	}
	name, err := tr.f.LeaderOf(ctx, uint32(shard), leaderWait)
	if err != nil {
		return "", err
	}
	tr.mu.Lock()
	tr.resolved[a.Event] = name
	tr.mu.Unlock()
	return name, nil
}

// stop ends the timeline (actions not yet due do not run) and undoes a pause
// or partition still in force, so the drain can finish. A killed node stays
// down.
func (tr *timelineRun) stop() {
	tr.cancel()
	<-tr.done
	if tr.f != nil {
		tr.f.Settle()
	}
}

// results lists each timeline event with its recovery time: from the end of
// the event (its last action) to the end of the first one-second interval
// whose committed (else accepted) p99 is back within twice the median p99 of
// the intervals before the event. A kill also gets its fail-over time (the
// stall of block production after the kill), and with a restart the stall
// when the node rejoins and its catch-up time. loadEnd is when the last
// send was due.
func (tr *timelineRun) results(res *reports.Result, loadEnd time.Time) []reports.TimelineResult {
	tr.mu.Lock()
	actions := slices.Clone(tr.actions)
	tr.mu.Unlock()
	var out []reports.TimelineResult
	for i, e := range tr.sc.Timeline {
		r := reports.TimelineResult{At: e.At.String(), Event: e.String()}
		tr.mu.Lock()
		end, ran := tr.when[i]
		r.Node = tr.resolved[i]
		tr.mu.Unlock()
		if !ran {
			r.Recovery = "not run"
		} else {
			r.Recovery = reports.Recovery(res, e.At.Std(), end)
		}
		var errs []string
		for j, a := range actions {
			if a.a.Event != i {
				continue
			}
			if a.err != nil {
				errs = append(errs, fmt.Sprintf("%s failed: %v", a.a.Op, a.err))
				continue
			}
			// The change's window lasts until the next action or the end
			// of the load.
			until := loadEnd
			if j+1 < len(actions) && actions[j+1].at.Before(until) {
				until = actions[j+1].at
			}
			if sig := tr.f.Delivery(a.a.Op); sig != "" && r.Signal == "" {
				r.Signal = sig
			}
			if a.flood != nil {
				r.Flood = a.flood
			}
			switch a.a.Op {
			case scenarios.OpKill:
				r.Failover = tr.chk.stall(a.at, until, tr.sc.Cluster.Shards)
			case scenarios.OpRestart:
				r.Rejoin = tr.chk.stall(a.at, until, tr.sc.Cluster.Shards)
				if a.node != scenarios.BrokerTarget { // the broker has no heights to catch up
					r.CatchUp = tr.chk.catchUp(a.node, a.at, a.target, a.own)
				}
			}
		}
		if len(errs) > 0 {
			r.Recovery = strings.Join(errs, "; ")
		}
		out = append(out, r)
	}
	return out
}

// leaderWait bounds the wait for a shard to have a leader, for leader(S).
const leaderWait = 5 * time.Second
