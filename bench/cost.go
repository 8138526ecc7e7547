package bench

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rustorium/rustorium/node/metrics"
	"github.com/rustorium/rustorium/reports"
)

// metricsTarget is a Target whose nodes' Prometheus metrics a run can read:
// it reads every node's cost counters at the start and at the end of the
// measured phase (result.json's cost).
type metricsTarget interface {
	// nodeMetrics returns, by node name, a function that gathers the
	// node's metrics now, with the incarnation they belong to (a restarted
	// node's counters start again from zero under a new one); an error
	// while the node is not running.
	nodeMetrics() (source string, read map[string]metricsReader)
}

// metricsReader gathers one node's metrics.
type metricsReader func(ctx context.Context) (fams []*dto.MetricFamily, incarnation uint64, err error)

// The node's counters that result.json's cost is made of (besides
// rustorium_wire_bytes_total, by path and direction): each a counter, and
// the signature batches' histogram as its sum and count.
const (
	costPerms         = "rustorium_poseidon_permutations_total"
	costKeysHashed    = "rustorium_state_keys_hashed_total"
	costPebbleIn      = "rustorium_pebble_bytes_in_total"
	costPebbleOut     = "rustorium_pebble_bytes_written_total"
	costPebbleFlushed = "rustorium_pebble_bytes_flushed_total"
	costMemtables     = "rustorium_pebble_memtables_flushed_total"
	costL0Rounds      = "rustorium_pebble_l0_rounds_total"
	costPrepares      = "rustorium_prepare_batches_total"
	costPrepared      = "rustorium_prepare_blocks_total"
	costWALSyncs      = "rustorium_pebble_wal_syncs_total"
	costWALSeconds    = "rustorium_pebble_wal_sync_seconds_total"
	costSigBatch      = "rustorium_signature_batch_size"
	costSigs          = costSigBatch + "_sum"   // signatures checked
	costSigBatches    = costSigBatch + "_count" // the batches they were checked in
	costWire          = "rustorium_wire_bytes_total"
)

// costCounterNames are the plain counters of cost.
var costCounterNames = []string{costPerms, costKeysHashed, costPebbleIn, costPebbleOut, costPebbleFlushed, costMemtables, costL0Rounds, costPrepares, costPrepared, costWALSyncs, costWALSeconds}

// costCounters are one node's cost counters at one time.
type costCounters struct {
	incarnation uint64
	n           map[string]float64    // by name: costCounterNames, costSigs, costSigBatches
	wire        map[[2]string]float64 // by (path, direction)
}

func newCostCounters(incarnation uint64) costCounters {
	return costCounters{incarnation: incarnation, n: map[string]float64{}, wire: map[[2]string]float64{}}
}

// countersOf picks the cost counters out of a node's metric families.
func countersOf(fams []*dto.MetricFamily, incarnation uint64) costCounters {
	c := newCostCounters(incarnation)
	for _, f := range fams {
		name := f.GetName()
		for _, m := range f.GetMetric() {
			switch {
			case name == costWire:
				var path, dir string
				for _, l := range m.GetLabel() {
					switch l.GetName() {
					case "path":
						path = l.GetValue()
					case "direction":
						dir = l.GetValue()
					}
				}
				c.wire[[2]string{path, dir}] = m.GetCounter().GetValue()
			case name == costSigBatch:
				c.n[costSigs], c.n[costSigBatches] = m.GetHistogram().GetSampleSum(), float64(m.GetHistogram().GetSampleCount())
			case slices.Contains(costCounterNames, name):
				c.n[name] = m.GetCounter().GetValue()
			}
		}
	}
	return c
}

// since is c's change from start; a node restarted in between counts
// from its restart (restarted true).
func (c costCounters) since(start costCounters) (d costCounters, restarted bool) {
	if c.incarnation != start.incarnation {
		return c, true
	}
	d = newCostCounters(c.incarnation)
	for k, v := range c.n {
		d.n[k] = v - start.n[k]
	}
	for k, v := range c.wire {
		d.wire[k] = v - start.wire[k]
	}
	return d, false
}

// add adds d's counts to c's.
func (c costCounters) add(d costCounters) {
	for k, v := range d.n {
		c.n[k] += v
	}
	for k, v := range d.wire {
		c.wire[k] += v
	}
}

// costMeter reads the nodes' cost counters at the start of the measured
// phase and at its end. The zero of a run without a metricsTarget reads
// nothing.
type costMeter struct {
	source string
	read   map[string]metricsReader

	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	start  map[string]costCounters // read at the start of measuring
	notes  []string
}

// costTimeout bounds one read of a node's metrics.
const costTimeout = 5 * time.Second

// startCost reads t's nodes' counters at measured (in the background);
// nil when t's metrics cannot be read.
func startCost(ctx context.Context, t Target, measured time.Time) *costMeter {
	mt, ok := t.(metricsTarget)
	if !ok {
		return nil
	}
	m := &costMeter{done: make(chan struct{})}
	m.source, m.read = mt.nodeMetrics()
	ctx, m.cancel = context.WithCancel(ctx)
	go func() {
		defer close(m.done)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(measured)):
		}
		start, notes := m.readAll(ctx, "start")
		m.mu.Lock()
		m.start, m.notes = start, notes
		m.mu.Unlock()
	}()
	return m
}

// readAll reads every node's counters; a node that cannot be read is left
// out with a note.
func (m *costMeter) readAll(ctx context.Context, when string) (map[string]costCounters, []string) {
	out := map[string]costCounters{}
	var notes []string
	for _, name := range slices.Sorted(maps.Keys(m.read)) {
		rctx, cancel := context.WithTimeout(ctx, costTimeout)
		fams, inc, err := m.read[name](rctx)
		cancel()
		if err != nil {
			notes = append(notes, fmt.Sprintf("%s: metrics not read at the %s of measuring (%v): its counters are left out", name, when, err))
			continue
		}
		out[name] = countersOf(fams, inc)
	}
	return out, notes
}

// costReading is the counters read at both ends of the measured phase.
type costReading struct {
	source     string
	start, end map[string]costCounters
	notes      []string
}

// end reads the counters at the end of measuring; nil when the start was
// never read (the run ended before measuring) or m is nil.
func (m *costMeter) end(ctx context.Context) *costReading {
	if m == nil {
		return nil
	}
	m.cancel()
	<-m.done
	m.mu.Lock()
	start, notes := m.start, m.notes
	m.mu.Unlock()
	if start == nil {
		return nil
	}
	end, endNotes := m.readAll(ctx, "end")
	return &costReading{source: m.source, start: start, end: end, notes: append(notes, endNotes...)}
}

// perTx is the cost per transaction the workloads of res saw committed, or
// nil when nothing committed or no node was read at both ends. Its CPU
// time is res's resources' (cpuPerTx fills them in first).
func (r *costReading) perTx(res *reports.Result) *reports.Cost {
	committed := committedTxs(res)
	if r == nil || committed <= 0 {
		return nil
	}
	notes := slices.Clone(r.notes)
	sum := newCostCounters(0)
	nodes := 0
	for _, name := range slices.Sorted(maps.Keys(r.end)) {
		s, ok := r.start[name]
		if !ok {
			continue
		}
		d, restarted := r.end[name].since(s)
		if restarted {
			notes = append(notes, fmt.Sprintf("%s restarted while measuring: its counters count from its restart", name))
		}
		nodes++
		sum.add(d)
	}
	if nodes == 0 {
		return nil
	}
	tx := float64(committed)
	both := func(path string) float64 {
		return (sum.wire[[2]string{path, metrics.DirSent}] + sum.wire[[2]string{path, metrics.DirReceived}]) / tx
	}
	w := reports.WireCost{
		ClientQUIC:   both(metrics.PathClientQUIC),
		KafkaProduce: both(metrics.PathKafkaProduce),
		KafkaFetch:   both(metrics.PathKafkaFetch),
		KafkaOther:   both(metrics.PathKafkaOther),
		Peer:         sum.wire[[2]string{metrics.PathPeer, metrics.DirSent}] / tx,
	}
	w.Total = w.ClientQUIC + w.KafkaProduce + w.KafkaFetch + w.KafkaOther + w.Peer
	n := sum.n
	c := &reports.Cost{
		Source: r.source, Nodes: nodes, Committed: committed,
		PoseidonPermsPerTx: n[costPerms] / tx,
		KeysHashedPerTx:    n[costKeysHashed] / tx,
		WireBytesPerTx:     w,
		PebbleBytesPerTx:   n[costPebbleOut] / tx,
		Notes:              notes,
	}
	if n[costMemtables] > 0 {
		c.PebbleFlushedPerTx = n[costPebbleFlushed] / tx
		c.PebbleMemtablesFlushed = n[costMemtables]
		c.PebbleL0Rounds = int64(n[costL0Rounds])
	}
	if n[costPebbleIn] > 0 {
		c.PebbleWriteAmp = n[costPebbleOut] / n[costPebbleIn]
	}
	if n[costSigBatches] > 0 {
		c.SigBatchMean = n[costSigs] / n[costSigBatches]
	}
	if n[costPrepares] > 0 {
		c.PrepareBlocksMean = n[costPrepared] / n[costPrepares]
	}
	if n[costWALSyncs] > 0 {
		c.WALSyncsPerTx = n[costWALSyncs] / tx
		c.WALSyncMeanUs = n[costWALSeconds] / n[costWALSyncs] * 1e6
	}
	switch {
	case len(res.NodeResources) > 0:
		for _, rs := range res.NodeResources {
			c.CPUMicrosPerTx += rs.CPUMicrosPerTx
		}
	case res.Resources != nil:
		c.CPUMicrosPerTx = res.Resources.CPUMicrosPerTx
	}
	c.Round()
	return c
}

// scrapeMetrics returns a metricsReader of the node serving Prometheus
// metrics at addr (host:port), whose process id pid returns (0: not
// running).
func scrapeMetrics(client *http.Client, addr string, pid func() int) metricsReader {
	return func(ctx context.Context) ([]*dto.MetricFamily, uint64, error) {
		p := pid()
		if p == 0 {
			return nil, 0, fmt.Errorf("not running")
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
		if err != nil {
			return nil, 0, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, 0, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, 0, fmt.Errorf("GET /metrics: %s", resp.Status)
		}
		fams, err := parseMetrics(io.LimitReader(resp.Body, 32<<20))
		return fams, uint64(p), err
	}
}

// parseMetrics parses Prometheus's text exposition format.
func parseMetrics(r io.Reader) ([]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	m, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("bench: parsing metrics: %w", err)
	}
	out := make([]*dto.MetricFamily, 0, len(m))
	for _, name := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[name])
	}
	return out, nil
}
