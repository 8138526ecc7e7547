package node

import (
	"context"
	"strconv"
	"time"

	"github.com/rustorium/rustorium/node/ordering"
)

// The hanging-transaction sweep: every hangingEvery a node looks at the
// logs of the shards it leads (their transactions and blocks topics), and
// at the partition of Kafka's offsets topic that holds the leaders'
// group's positions (where each round commits its shards' offsets), for a
// transaction left open that its coordinator no longer counts as ongoing
// (ordering.HangingTxn: a broker restarted while a leader's round was being
// written can leave one), and aborts it. Until then the shard's readers
// see nothing after it: its leader accepts transactions it never commits,
// and the credits other shards sent it never arrive. A transaction is left
// alone until its producer has been silent for hangingGrace, or three of
// the leaders' transaction timeouts if that is longer.
const (
	hangingEvery   = 10 * time.Second
	hangingGrace   = 10 * time.Second
	hangingTimeout = 5 * time.Second // one sweep
)

// sweepHanging runs the sweep until ctx ends.
func (n *Node) sweepHanging(ctx context.Context) {
	grace := max(hangingGrace, 3*n.cfg.Leadership.TransactionTimeout)
	sw, err := ordering.NewHangingSweeper(n.ocfg, grace, n.ocfg.LeadersGroup())
	if err != nil {
		n.log.Error("hanging-transaction sweep disabled", "err", err)
		return
	}
	defer sw.Close()
	t := time.NewTicker(hangingEvery)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		shardOf := map[string]uint32{}
		var topics []string
		for _, s := range n.Leading() {
			for _, st := range []ordering.Stream{ordering.Transactions, ordering.Blocks} {
				topic := n.ocfg.Topic(st, s)
				shardOf[topic] = s
				topics = append(topics, topic)
			}
		}
		sctx, cancel := context.WithTimeout(ctx, hangingTimeout)
		aborted, err := sw.Sweep(sctx, topics)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			if !failing { // once per failing spell: the broker may not support it
				n.log.Warn("hanging-transaction sweep failed", "err", err)
			}
			failing = true
			continue
		case err == nil:
			failing = false
		}
		for _, h := range aborted {
			s, ok := shardOf[h.Topic]
			label := strconv.FormatUint(uint64(s), 10)
			if !ok { // the leaders' offsets: every shard's position
				label = "all"
			}
			n.metrics.Alarms.WithLabelValues(label, alarmHangingTxn).Inc()
			n.log.Warn("ALARM: aborted a hanging transaction", "shard", label, "txn", h.String())
		}
	}
}

// alarmHangingTxn is the rustorium_alarms_total kind of an aborted hanging
// transaction.
const alarmHangingTxn = "hanging_txn"
