// Package metrics defines the node's Prometheus collectors. They are
// registered on the Registerer the node is given (never on a global one), so
// several nodes in one process keep separate metrics.
package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Node holds one node's collectors.
type Node struct {
	Ingress       prometheus.Counter       // transactions that passed stateless checks
	Rejected      *prometheus.CounterVec   // by reason code
	Accepted      prometheus.Counter       // transactions the log acknowledged
	Blocks        *prometheus.CounterVec   // committed blocks by shard
	BlockTxs      prometheus.Histogram     // transactions per block
	CommitSeconds prometheus.Histogram     // a replica's whole time per block, from reading it to its commit (the sum of BlockSeconds' phases but arrive)
	Height        *prometheus.GaugeVec     // last committed height by shard
	Waiting       prometheus.Gauge         // transactions waiting for their commit receipt
	Alarms        *prometheus.CounterVec   // safety alarms by shard and kind (divergence, equivocation, stalled)
	Halted        *prometheus.GaugeVec     // 1 for a shard this node stopped applying after a divergence
	Leader        *prometheus.GaugeVec     // 1 for a shard this node leads
	Resigned      prometheus.Gauge         // 1 once this node left the leaders' group for good (it was given a shard it halted)
	Proposed      *prometheus.CounterVec   // blocks this node published as leader, by shard
	Aborted       prometheus.Counter       // leader rounds whose Kafka transaction aborted (rebalance, fencing)
	RoundSeconds  *prometheus.HistogramVec // a leader round's phases: poll, propose, publish
	BlockSeconds  *prometheus.HistogramVec // a replica's phases per block: arrive, read, execute, root, final, commit
	Ranges        *prometheus.CounterVec   // blocks' transaction ranges a replica read, by where from: leader (this node's, in process) or log
	SigBatch      prometheus.Histogram     // signatures checked together at ingress
	Ready         prometheus.Gauge         // 1 while every readiness check passes (node.Ready)
}

// New creates the collectors and registers them on reg (nil: not registered,
// but still usable).
func New(reg prometheus.Registerer) (*Node, error) {
	m := &Node{
		Ingress: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rustorium_ingress_total", Help: "Transactions that passed stateless checks at ingress.",
		}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rustorium_rejected_total", Help: "Transactions rejected at ingress, by reason.",
		}, []string{"reason"}),
		Accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rustorium_accepted_total", Help: "Transactions acknowledged by the log.",
		}),
		Blocks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rustorium_blocks_total", Help: "Committed blocks, by shard.",
		}, []string{"shard"}),
		BlockTxs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "rustorium_block_transactions", Help: "Transactions per committed block.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14),
		}),
		CommitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "rustorium_block_commit_seconds", Help: "A replica's time per block from reading it to its commit: read, execute, root, waiting for finality and the Pebble batch (see rustorium_replica_block_seconds for each phase).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		Height: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rustorium_shard_height", Help: "Last committed block height, by shard.",
		}, []string{"shard"}),
		Waiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rustorium_waiting_receipts", Help: "Accepted transactions whose client waits for the commit receipt.",
		}),
		Alarms: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rustorium_alarms_total", Help: "Safety alarms raised by the finality tracker, by shard and kind.",
		}, []string{"shard", "kind"}),
		Halted: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rustorium_shard_halted", Help: "1 if this node stopped applying the shard after its state root diverged from the quorum's.",
		}, []string{"shard"}),
		Leader: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rustorium_shard_leader", Help: "1 if this node leads the shard.",
		}, []string{"shard"}),
		Resigned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rustorium_leader_resigned", Help: "1 once this node left the leaders' group for good: it was given a shard it had halted, which it cannot build on.",
		}),
		Proposed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rustorium_blocks_proposed_total", Help: "Blocks this node published as the shard's leader, by shard.",
		}, []string{"shard"}),
		Aborted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rustorium_leader_rounds_aborted_total", Help: "Leader rounds whose Kafka transaction aborted (rebalance or fencing).",
		}),
		RoundSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "rustorium_leader_round_seconds", Help: "Time a leader round spends in each phase: poll (waiting for transactions), propose (execute and build blocks), publish (the Kafka transaction).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18),
		}, []string{"phase"}),
		BlockSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "rustorium_replica_block_seconds", Help: "Time a replica spends per block in each phase: arrive (from the leader cutting it to this node reading it), read (its transaction range), execute, root (Merkle update), final (waiting for the quorum), commit (Pebble batch, views, receipts).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18),
		}, []string{"phase"}),
		Ranges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rustorium_replica_ranges_total", Help: "Blocks' transaction ranges a replica read, by where it read them: from=leader (handed over in process by this node's leader of the shard, which cut the block) or from=log (fetched from the shard's transactions topic).",
		}, []string{"from"}),
		SigBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "rustorium_signature_batch_size", Help: "Transaction signatures checked together in one ed25519 batch at ingress (1: the checker was idle).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 8),
		}),
		Ready: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rustorium_ready", Help: "1 while the node can take writes: every readiness check (GET /readyz) passes; set every 5s and at each check.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.Ingress, m.Rejected, m.Accepted, m.Blocks, m.BlockTxs, m.CommitSeconds, m.Height, m.Waiting,
			m.Alarms, m.Halted, m.Leader, m.Resigned, m.Proposed, m.Aborted, m.RoundSeconds, m.BlockSeconds, m.Ranges, m.SigBatch, m.Ready} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	m.Ranges.WithLabelValues("leader")
	m.Ranges.WithLabelValues("log")
	return m, nil
}

// InitShards creates the per-shard series of shards 0..shards-1 at zero —
// blocks, proposed blocks, leadership, halted, and the alarms of each of
// alarmKinds — so that they are exported before anything happens to a
// shard, and rates and increases over them start from zero.
func (m *Node) InitShards(shards int, alarmKinds []string) {
	for s := range shards {
		shard := strconv.Itoa(s)
		m.Blocks.WithLabelValues(shard)
		m.Proposed.WithLabelValues(shard)
		m.Leader.WithLabelValues(shard)
		m.Halted.WithLabelValues(shard)
		for _, k := range alarmKinds {
			m.Alarms.WithLabelValues(shard, k)
		}
	}
}
