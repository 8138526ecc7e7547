package reports

import (
	"fmt"
	"math"
)

// Cost is what the system under test spent per committed transaction in the
// measured phase, from the nodes' own counters (their Prometheus metrics,
// read at the start and at the end of the measured phase): the change of
// each counter summed over the nodes, over the committed transactions (the
// workloads' committed stage counts). A cluster's figures are the whole
// cluster's: every node executes and hashes every block, so a three-node
// cluster's Poseidon work per transaction is three times one node's.
type Cost struct {
	// Source says how the counters were read: "registry" (in-process
	// nodes) or "metrics" (each node process's /metrics).
	Source string `json:"source"`
	// Nodes is how many nodes' counters were read at both ends.
	Nodes int `json:"nodes"`
	// Committed is the number of committed transactions divided by.
	Committed int64 `json:"committed"`
	// PoseidonPermsPerTx: Poseidon permutations (state keys and values
	// hashed to field elements, Merkle nodes) per transaction
	// (rustorium_poseidon_permutations_total).
	PoseidonPermsPerTx float64 `json:"poseidon_perms_per_tx"`
	// WireBytesPerTx: bytes on the wire per transaction, by path
	// (rustorium_wire_bytes_total).
	WireBytesPerTx WireCost `json:"wire_bytes_per_tx"`
	// PebbleWriteAmp is Pebble's write amplification over the measured
	// phase: the bytes it wrote (WAL, flushes, compactions) over the bytes
	// that came in (WAL, ingestion); 0 when nothing came in.
	PebbleWriteAmp float64 `json:"pebble_write_amp"`
	// PebbleBytesPerTx: bytes Pebble wrote per transaction.
	PebbleBytesPerTx float64 `json:"pebble_bytes_per_tx"`
	// The shape of Pebble's background work in the measured phase, when
	// it flushed (else all 0 and left out): PebbleFlushedPerTx is what its
	// flushes wrote per transaction (of PebbleBytesPerTx), and
	// PebbleMemtablesFlushed and PebbleL0Rounds the memtables' worth
	// flushed and the rounds of compactions out of L0, summed over the
	// nodes (rustorium_pebble_bytes_flushed_total,
	// rustorium_pebble_memtables_flushed_total,
	// rustorium_pebble_l0_rounds_total; storage.WriteStats).
	PebbleFlushedPerTx     float64 `json:"pebble_flushed_bytes_per_tx,omitempty"`
	PebbleMemtablesFlushed float64 `json:"pebble_memtables_flushed,omitempty"`
	PebbleL0Rounds         int64   `json:"pebble_l0_rounds,omitempty"`
	// CPUMicrosPerTx: CPU time per transaction, µs — in process
	// resources.cpu_us_per_tx (the whole process), with node processes the
	// sum of node_resources' (the nodes only); 0 when unknown.
	CPUMicrosPerTx float64 `json:"cpu_us_per_tx,omitempty"`
	// SigBatchMean is how many transaction signatures the nodes' ingress
	// checked together on average (rustorium_signature_batch_size's sum
	// over its count): 1 when every signature was checked alone, as a
	// node whose checker is idle when a transaction arrives does; 0 (left
	// out) when no signature was checked.
	SigBatchMean float64 `json:"sig_batch_mean,omitempty"`
	// KeysHashedPerTx is how many state keys the nodes hashed to tree keys
	// per transaction, summed over the nodes
	// (rustorium_state_keys_hashed_total): the writes whose key a node's
	// key cache did not hold — written for the first time, or evicted.
	// Omitted when none was.
	KeysHashedPerTx float64 `json:"keys_hashed_per_tx,omitempty"`
	// PrepareBlocksMean is how many blocks the nodes' stores prepared
	// together on average: their Merkle updates and value hashes computed
	// in one batch, sharing the eight-lane Poseidon kernels
	// (rustorium_prepare_blocks_total over rustorium_prepare_batches_total);
	// omitted when no block was prepared.
	PrepareBlocksMean float64 `json:"prepare_blocks_mean,omitempty"`
	// WALSyncsPerTx is how many times the nodes' Pebble synced its
	// write-ahead log per transaction, and WALSyncMeanUs how long a sync
	// took on average, µs (each a write and an fdatasync that one or more
	// commits waited for: rustorium_pebble_wal_syncs_total,
	// rustorium_pebble_wal_sync_seconds_total). Omitted when none synced.
	// Without cluster.storage.sync a node still syncs now and then (its
	// metadata, a flush): 0.005 a transaction in TestRunEndToEnd, against
	// about 0.6–0.85 with sync.
	WALSyncsPerTx float64 `json:"wal_syncs_per_tx,omitempty"`
	WALSyncMeanUs float64 `json:"wal_sync_mean_us,omitempty"`
	// Notes say what the figures leave out (a node that could not be
	// read, a node restarted in the measured phase).
	Notes []string `json:"notes,omitempty"`
}

// WireCost is bytes on the wire per committed transaction, by path. Client
// and peer bytes are QUIC packets (handshakes, acknowledgements and
// retransmissions included; UDP/IP headers not); Kafka bytes are protocol
// requests and responses (TCP/IP and TLS not included).
type WireCost struct {
	// ClientQUIC: sent and received on the nodes' client connections.
	ClientQUIC float64 `json:"client_quic"`
	// KafkaProduce: produce requests written and their responses read
	// (clients' transactions, and the leaders' blocks and credits).
	KafkaProduce float64 `json:"kafka_produce"`
	// KafkaFetch: fetch requests written and their responses read (every
	// node reads every shard's transactions and blocks).
	KafkaFetch float64 `json:"kafka_fetch"`
	// KafkaOther: every other Kafka request and response (metadata,
	// group membership, transactions, offsets).
	KafkaOther float64 `json:"kafka_other"`
	// Peer: sent on the peer connections (attestations; each byte counted
	// once, by its sender).
	Peer float64 `json:"peer"`
	// Total is the sum of the paths.
	Total float64 `json:"total"`
}

// round1 rounds to one decimal.
func round1(v float64) float64 { return math.Round(v*10) / 10 }

// Round rounds every figure for the report: per-transaction figures to one
// decimal, the write amplification to three.
func (c *Cost) Round() {
	w := &c.WireBytesPerTx
	c.PebbleMemtablesFlushed = math.Round(c.PebbleMemtablesFlushed*1000) / 1000
	for _, p := range []*float64{&c.PoseidonPermsPerTx, &c.PebbleBytesPerTx, &c.PebbleFlushedPerTx, &c.CPUMicrosPerTx, &w.ClientQUIC, &w.KafkaProduce, &w.KafkaFetch, &w.KafkaOther, &w.Peer, &w.Total} {
		*p = round1(*p)
	}
	c.PebbleWriteAmp = math.Round(c.PebbleWriteAmp*1000) / 1000
	c.SigBatchMean = math.Round(c.SigBatchMean*100) / 100
	c.KeysHashedPerTx = math.Round(c.KeysHashedPerTx*1000) / 1000
	c.PrepareBlocksMean = math.Round(c.PrepareBlocksMean*100) / 100
	c.WALSyncsPerTx = math.Round(c.WALSyncsPerTx*1000) / 1000
	c.WALSyncMeanUs = round1(c.WALSyncMeanUs)
}

// costText is the summary's and the report's one-line account of c.
func costText(c *Cost) string {
	w := c.WireBytesPerTx
	s := fmt.Sprintf("Poseidon %.1f perms, wire %.0f B (client QUIC %.0f, Kafka produce %.0f, fetch %.0f, other %.0f, peer %.0f), Pebble %.0f B written (write amp %.2f)",
		c.PoseidonPermsPerTx, w.Total, w.ClientQUIC, w.KafkaProduce, w.KafkaFetch, w.KafkaOther, w.Peer, c.PebbleBytesPerTx, c.PebbleWriteAmp)
	if c.CPUMicrosPerTx > 0 {
		s += fmt.Sprintf(", CPU %.0fµs", c.CPUMicrosPerTx)
	}
	if c.SigBatchMean > 0 {
		s += fmt.Sprintf(", signatures checked %.2f at a time", c.SigBatchMean)
	}
	if c.WALSyncsPerTx > 0 {
		s += fmt.Sprintf(", WAL synced %.2f times at %.0fµs", c.WALSyncsPerTx, c.WALSyncMeanUs)
	}
	return s + fmt.Sprintf(" — %d node(s), %d committed", c.Nodes, c.Committed)
}
