package metrics

import (
	"bytes"
	"os"
	"runtime/metrics"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Sources are the node's own counters that its cost and resource metrics
// read at each scrape, so the paths that count pay an atomic add at most
// and never a Prometheus call. A nil func leaves its metrics out.
type Sources struct {
	// PoseidonPermutations is the Poseidon permutations the node's store
	// has run (rustorium_poseidon_permutations_total).
	PoseidonPermutations func() uint64
	// KeysHashed is the state keys the node's store hashed to tree keys,
	// its key cache not holding them (rustorium_state_keys_hashed_total).
	KeysHashed func() uint64
	// Wire is the bytes the node sent and received by path
	// (rustorium_wire_bytes_total).
	Wire func() Wire
	// Pebble is what the store's Pebble took in and wrote, and the shape
	// of its background work (one read of its metrics a scrape).
	Pebble func() Pebble
	// Prepares is how many batches the store prepared its shards' blocks
	// in, and how many blocks they held (rustorium_prepare_batches_total,
	// rustorium_prepare_blocks_total: their ratio is the mean batch).
	Prepares func() (batches, blocks uint64)
}

// Pebble is the store's Pebble's totals since it opened (storage.WriteStats):
// the bytes that came in and that it wrote (rustorium_pebble_bytes_in_total,
// rustorium_pebble_bytes_written_total,
// rustorium_pebble_write_amplification), and the shape of its background
// work: the bytes its flushes wrote, the memtables' worth they took and the
// rounds of compactions out of L0 (rustorium_pebble_bytes_flushed_total,
// rustorium_pebble_memtables_flushed_total,
// rustorium_pebble_l0_rounds_total); and its write-ahead log's syncs and
// the seconds they took (rustorium_pebble_wal_syncs_total,
// rustorium_pebble_wal_sync_seconds_total: their ratio is a sync's mean).
type Pebble struct {
	BytesIn, BytesWritten, BytesFlushed uint64
	MemtablesFlushed                    float64
	L0Rounds                            uint64
	WALSyncs                            uint64
	WALSyncSeconds                      float64
}

// Wire is the bytes a node sent and received on each of its paths: QUIC
// with clients and with peers (QUIC packets), and the Kafka protocol's
// produce, fetch and other requests (written and read).
type Wire struct {
	ClientSent, ClientReceived   uint64
	PeerSent, PeerReceived       uint64
	ProduceSent, ProduceReceived uint64
	FetchSent, FetchReceived     uint64
	OtherSent, OtherReceived     uint64
}

// The label values of rustorium_wire_bytes_total.
const (
	PathClientQUIC   = "client_quic"
	PathPeer         = "peer"
	PathKafkaProduce = "kafka_produce"
	PathKafkaFetch   = "kafka_fetch"
	PathKafkaOther   = "kafka_other"
	DirSent          = "sent"
	DirReceived      = "received"
)

// RegisterSources registers on reg the metrics read from s at each scrape,
// and the memory gauges of the process the node runs in:
// rustorium_memory_heap_inuse_bytes (the Go heap's in-use spans, from
// runtime/metrics) and rustorium_memory_rss_bytes (resident set size, from
// /proc/self/statm; absent where there is none).
func RegisterSources(reg prometheus.Registerer, s Sources) error {
	return reg.Register(newSourcesCollector(s))
}

type sourcesCollector struct {
	s                              Sources
	perms, keysHashed, wire        *prometheus.Desc
	pebbleIn, pebbleOut, pebbleAmp *prometheus.Desc
	flushed, memtables, l0Rounds   *prometheus.Desc
	walSyncs, walSyncSeconds       *prometheus.Desc
	heap, rss                      *prometheus.Desc
	batches, prepared              *prometheus.Desc
}

func newSourcesCollector(s Sources) *sourcesCollector {
	return &sourcesCollector{
		s:          s,
		perms:      prometheus.NewDesc("rustorium_poseidon_permutations_total", "Poseidon permutations the node's store ran: state keys (once each, then cached) and values hashed to field elements, and every Merkle node of every block it prepared.", nil, nil),
		keysHashed: prometheus.NewDesc("rustorium_state_keys_hashed_total", "State keys the node's store hashed to tree keys: the writes whose key its key cache did not hold (written for the first time, or evicted).", nil, nil),
		wire: prometheus.NewDesc("rustorium_wire_bytes_total", "Bytes the node sent and received, by path: client_quic and peer (QUIC packets of the client and peer connections, handshakes and retransmissions included, UDP/IP headers not), kafka_produce, kafka_fetch and kafka_other (Kafka protocol requests written and responses read, TCP/IP and TLS not included).",
			[]string{"path", "direction"}, nil),
		pebbleIn:       prometheus.NewDesc("rustorium_pebble_bytes_in_total", "Bytes that came into the store's Pebble: its write-ahead log and ingested tables.", nil, nil),
		pebbleOut:      prometheus.NewDesc("rustorium_pebble_bytes_written_total", "Bytes the store's Pebble wrote: its write-ahead log, flushes and compactions.", nil, nil),
		pebbleAmp:      prometheus.NewDesc("rustorium_pebble_write_amplification", "Pebble's write amplification since the store opened: rustorium_pebble_bytes_written_total / rustorium_pebble_bytes_in_total (0 before any write).", nil, nil),
		flushed:        prometheus.NewDesc("rustorium_pebble_bytes_flushed_total", "Bytes the store's Pebble's flushes wrote (of rustorium_pebble_bytes_written_total).", nil, nil),
		memtables:      prometheus.NewDesc("rustorium_pebble_memtables_flushed_total", "Memtables' worth the store's Pebble flushed: the arena bytes its flushes took over the memtable size.", nil, nil),
		l0Rounds:       prometheus.NewDesc("rustorium_pebble_l0_rounds_total", "Rounds of compactions out of the store's Pebble's L0: the first compaction out of L0 to begin after a flush starts one.", nil, nil),
		walSyncs:       prometheus.NewDesc("rustorium_pebble_wal_syncs_total", "Syncs of the store's Pebble's write-ahead log (each a write and an fdatasync that one or more commits wait for).", nil, nil),
		walSyncSeconds: prometheus.NewDesc("rustorium_pebble_wal_sync_seconds_total", "Seconds the store's Pebble's write-ahead log syncs took, summed: over rustorium_pebble_wal_syncs_total, a sync's mean.", nil, nil),
		heap:           prometheus.NewDesc("rustorium_memory_heap_inuse_bytes", "Go heap in use by the process the node runs in: bytes in in-use heap spans (runtime/metrics: heap objects and unused slots in their spans).", nil, nil),
		rss:            prometheus.NewDesc("rustorium_memory_rss_bytes", "Resident set size of the process the node runs in (/proc/self/statm).", nil, nil),
		batches:        prometheus.NewDesc("rustorium_prepare_batches_total", "Batches in which the node's store prepared blocks (the Merkle update and value hashes of the blocks of several shards computed together; one block alone is a batch too).", nil, nil),
		prepared:       prometheus.NewDesc("rustorium_prepare_blocks_total", "Blocks the node's store prepared in those batches: over rustorium_prepare_batches_total, the mean blocks per batch.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *sourcesCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.perms, c.keysHashed, c.wire, c.pebbleIn, c.pebbleOut, c.pebbleAmp, c.flushed, c.memtables, c.l0Rounds, c.walSyncs, c.walSyncSeconds, c.heap, c.rss, c.batches, c.prepared} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *sourcesCollector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	if f := c.s.PoseidonPermutations; f != nil {
		counter(c.perms, f())
	}
	if f := c.s.KeysHashed; f != nil {
		counter(c.keysHashed, f())
	}
	if f := c.s.Wire; f != nil {
		w := f()
		for _, x := range []struct {
			path, dir string
			v         uint64
		}{
			{PathClientQUIC, DirSent, w.ClientSent}, {PathClientQUIC, DirReceived, w.ClientReceived},
			{PathPeer, DirSent, w.PeerSent}, {PathPeer, DirReceived, w.PeerReceived},
			{PathKafkaProduce, DirSent, w.ProduceSent}, {PathKafkaProduce, DirReceived, w.ProduceReceived},
			{PathKafkaFetch, DirSent, w.FetchSent}, {PathKafkaFetch, DirReceived, w.FetchReceived},
			{PathKafkaOther, DirSent, w.OtherSent}, {PathKafkaOther, DirReceived, w.OtherReceived},
		} {
			counter(c.wire, x.v, x.path, x.dir)
		}
	}
	if f := c.s.Pebble; f != nil {
		p := f()
		counter(c.pebbleIn, p.BytesIn)
		counter(c.pebbleOut, p.BytesWritten)
		amp := 0.0
		if p.BytesIn > 0 {
			amp = float64(p.BytesWritten) / float64(p.BytesIn)
		}
		ch <- prometheus.MustNewConstMetric(c.pebbleAmp, prometheus.GaugeValue, amp)
		counter(c.flushed, p.BytesFlushed)
		ch <- prometheus.MustNewConstMetric(c.memtables, prometheus.CounterValue, p.MemtablesFlushed)
		counter(c.l0Rounds, p.L0Rounds)
		counter(c.walSyncs, p.WALSyncs)
		ch <- prometheus.MustNewConstMetric(c.walSyncSeconds, prometheus.CounterValue, p.WALSyncSeconds)
	}
	if f := c.s.Prepares; f != nil {
		batches, blocks := f()
		counter(c.batches, batches)
		counter(c.prepared, blocks)
	}
	ch <- prometheus.MustNewConstMetric(c.heap, prometheus.GaugeValue, float64(HeapInUse()))
	if rss, ok := RSS(); ok {
		ch <- prometheus.MustNewConstMetric(c.rss, prometheus.GaugeValue, float64(rss))
	}
}

// HeapInUse is the Go heap's bytes in in-use spans: runtime.MemStats'
// HeapInuse, read from runtime/metrics without stopping the world.
func HeapInUse() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}
	metrics.Read(s)
	var n uint64
	for _, x := range s {
		if x.Value.Kind() == metrics.KindUint64 {
			n += x.Value.Uint64()
		}
	}
	return n
}

// RSS is the process's resident set size from /proc/self/statm; false
// where that file does not exist (not Linux) or cannot be read.
func RSS() (uint64, bool) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, false
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0, false
	}
	pages, err := strconv.ParseUint(string(f[1]), 10, 64)
	if err != nil {
		return 0, false
	}
	return pages * uint64(os.Getpagesize()), true
}
