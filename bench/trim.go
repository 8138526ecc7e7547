package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/rustorium/rustorium/node/ordering"
)

// trimInterval is how often a run trims its embedded broker's
// transactions topics (logTrimmer). A variable for tests.
var trimInterval = 10 * time.Second

// logTrimmer keeps the embedded broker's log from growing with the run's
// length: every round it reads each node's tip and deletes, from each
// shard's transactions topic, the records below the lowest offset any node
// of the cluster resumes from (Tip.NextOffset), as that low-water mark
// stood a round earlier. Every node has those records in blocks it
// committed, and a node replays from its store's offset, never below it, so
// none is read again. A node that is down keeps the offset it last showed;
// a shard some node has not shown yet is not trimmed. The blocks topics are
// kept whole (a node that turns follower reads them from its own position,
// which its tip does not show): they grow by one record per block, not per
// transaction.
type logTrimmer struct {
	names  []string               // every node of the cluster
	shards int                    // shards of the cluster
	nodes  func() []NodeView      // the running nodes
	del    func(map[uint32]int64) // deletes below the offsets (ordering.DeleteBelow)

	known   map[string][]int64 // per node, per shard: the highest NextOffset seen (-1: none yet)
	pending map[uint32]int64   // the previous round's low-water marks, deleted this round
	deleted map[uint32]int64   // what was deleted below, by shard
}

func newLogTrimmer(names []string, shards int, nodes func() []NodeView, del func(map[uint32]int64)) *logTrimmer {
	t := &logTrimmer{names: names, shards: shards, nodes: nodes, del: del,
		known: map[string][]int64{}, deleted: map[uint32]int64{}}
	for _, n := range names {
		offs := make([]int64, shards)
		for s := range offs {
			offs[s] = -1
		}
		t.known[n] = offs
	}
	return t
}

// round reads the running nodes' tips, deletes below the previous round's
// low-water marks, and keeps this round's for the next.
func (t *logTrimmer) round() {
	for _, v := range t.nodes() {
		offs := t.known[v.Name()]
		if offs == nil {
			continue
		}
		for s := range uint32(t.shards) {
			if tip, err := v.Tip(s); err == nil && tip.NextOffset > offs[s] {
				offs[s] = tip.NextOffset
			}
		}
	}
	if del := t.due(); len(del) > 0 {
		t.del(del)
		for s, o := range del {
			t.deleted[s] = o
		}
	}
	t.pending = t.lowWater()
}

// due returns the previous round's low-water marks above what was already
// deleted.
func (t *logTrimmer) due() map[uint32]int64 {
	out := map[uint32]int64{}
	for s, o := range t.pending {
		if o > t.deleted[s] {
			out[s] = o
		}
	}
	return out
}

// lowWater returns, for each shard every node has shown, the lowest offset
// a node resumes from.
func (t *logTrimmer) lowWater() map[uint32]int64 {
	out := map[uint32]int64{}
shards:
	for s := range t.shards {
		low := int64(-1)
		for _, n := range t.names {
			o := t.known[n][s]
			if o < 0 {
				continue shards
			}
			if low < 0 || o < low {
				low = o
			}
		}
		out[uint32(s)] = low
	}
	return out
}

// startTrimmer runs a logTrimmer on the run's embedded broker every
// trimInterval until the run releases it; given brokers (a real cluster)
// keep their own retention and are never trimmed.
func (r *clusterRun) startTrimmer(nodes func() []NodeView) {
	if r.brokerKind != "kfake" {
		return
	}
	names := make([]string, r.sc.Cluster.Nodes)
	for i := range names {
		names[i] = fmt.Sprintf("node-%d", i+1)
	}
	cfg := ordering.Config{Brokers: r.brokers, TopicPrefix: r.prefix, Shards: r.sc.Cluster.Shards, Dialer: r.broker.dial}
	ctx, cancel := context.WithCancel(r.ctx)
	interval := trimInterval
	t := newLogTrimmer(names, r.sc.Cluster.Shards, nodes, func(below map[uint32]int64) {
		dctx, dcancel := context.WithTimeout(ctx, trimInterval)
		defer dcancel()
		if err := ordering.DeleteBelow(dctx, cfg, ordering.Transactions, below); err != nil && ctx.Err() == nil && !r.broker.stopped() {
			r.hooks.Printf("trimming the embedded broker's log: %v", err)
		}
	})
	r.trimmer = t
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				t.round()
			}
		}
	}()
	r.closers = append(r.closers, closerFunc(func() { cancel(); wg.Wait() }))
}
