package reports

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// ResultVersion is the version of the result.json layout written by this
// package.
const ResultVersion = 1

// Result is result.json. The JSON names of the fields in docs/DESIGN.md
// ("Results (contract)") are fixed; the others are extras.
type Result struct {
	Scenario    string                     `json:"scenario"`
	Seed        int64                      `json:"seed"`
	Environment Environment                `json:"environment"`
	Workloads   map[string]*WorkloadResult `json:"workloads"`
	Floors      Floors                     `json:"floors"`
	Checker     Checker                    `json:"checker"`
	SLO         []SLOResult                `json:"slo"`
	Timeline    []TimelineResult           `json:"timeline"`
	MaxRate     *MaxRate                   `json:"maxrate,omitempty"`  // a max-rate search's knee and curve
	Profiles    []ProfileSummary           `json:"profiles,omitempty"` // report.profile, over the measured phase

	// Extras.
	Version     int             `json:"version"`               // ResultVersion
	OK          bool            `json:"ok"`                    // Passed(), set when written
	Description string          `json:"description,omitempty"` // the scenario's
	Start       time.Time       `json:"start"`                 // start of measuring
	End         time.Time       `json:"end"`                   // end of measuring
	DurationS   float64         `json:"duration_s"`            // measured seconds
	WarmupS     float64         `json:"warmup_s"`              // warmup seconds
	IntervalS   float64         `json:"interval_s,omitempty"`  // length of each series interval
	Resolved    json.RawMessage `json:"resolved,omitempty"`    // the scenario with defaults
	Files       []string        `json:"files,omitempty"`       // other files of the report folder
	Resources   *Resources      `json:"resources,omitempty"`   // resource use of the process under test

	// NodeResources is the resource use of each node process (cluster
	// mode process), by node name: CPU and RSS only.
	NodeResources map[string]*Resources `json:"node_resources,omitempty"`
	// Cost is what the nodes spent per committed transaction in the
	// measured phase, from their own counters.
	Cost *Cost `json:"cost,omitempty"`

	// Worker is "I/N" when the run sent the I-th of N workers' shares of
	// the load (rustorium loadgen --worker).
	Worker string `json:"worker,omitempty"`
	// Workers is the number of workers' folders a merged result was made
	// from (rustorium report merge); WorkerEnvironments their
	// environments, in worker order.
	Workers            int           `json:"workers,omitempty"`
	WorkerEnvironments []Environment `json:"worker_environments,omitempty"`

	// Simulated says the run was rustorium simulate's, in virtual time;
	// Calibration is the calibration it used and Simulation what the model
	// adds (simulation.go).
	Simulated   bool         `json:"simulated,omitempty"`
	Calibration *Calibration `json:"calibration,omitempty"`
	Simulation  *Simulation  `json:"simulation,omitempty"`
	// Blocks summarises the blocks the nodes committed while measuring.
	Blocks *Blocks `json:"blocks,omitempty"`
	// Traces summarises the sampled transactions' traces (traces.json):
	// how many, and where the p50 and the p99 transaction spent their time.
	Traces *Traces `json:"traces,omitempty"`
}

// Environment describes where a run happened.
type Environment struct {
	Go            string `json:"go"`
	GOMAXPROCS    int    `json:"gomaxprocs"`
	CPU           string `json:"cpu"`
	OS            string `json:"os"`
	Commit        string `json:"commit"`
	Broker        string `json:"broker"`
	Arch          string `json:"arch"`
	NumCPU        int    `json:"num_cpu"`
	Kernel        string `json:"kernel,omitempty"`
	MemoryBytes   uint64 `json:"memory_bytes,omitempty"`
	Dirty         bool   `json:"dirty,omitempty"` // the work tree had uncommitted changes
	BrokerVersion string `json:"broker_version,omitempty"`
}

// WorkloadResult is one workload's numbers.
type WorkloadResult struct {
	Sent          int64                   `json:"sent"`
	Errors        int64                   `json:"errors"`
	ThroughputTPS float64                 `json:"throughput_tps"`
	LagP99Us      int64                   `json:"lag_p99_us"`
	Stages        map[string]*StageResult `json:"stages"`

	// Extras.
	Kind         string           `json:"kind,omitempty"`
	Client       string           `json:"client,omitempty"`
	Lag          Percentiles      `json:"lag"`
	ErrorsByKind map[string]int64 `json:"errors_by_kind,omitempty"`
	// Resent counts the sends that failed over to another node (their own
	// node was down) and were sent again, with the same bytes.
	Resent int64 `json:"resent,omitempty"`
	// GeneratorLagged: the open loop could not send on schedule (schedule
	// lag p99 above 1 ms or the mean gap between sends, or sends dropped):
	// the run's figures are suspect; a note says why.
	GeneratorLagged bool             `json:"generator_lagged,omitempty"`
	Discarded       int64            `json:"warmup_discarded,omitempty"`
	Clamped         int64            `json:"clamped,omitempty"`
	Series          []IntervalResult `json:"series,omitempty"`
}

// StageResult is one stage of one workload.
type StageResult struct {
	Count         int64       `json:"count"`
	Corrected     Percentiles `json:"corrected"`   // from the intended send time
	Uncorrected   Percentiles `json:"uncorrected"` // from the actual send time
	ThroughputTPS float64     `json:"throughput_tps"`
}

// Percentiles summarises a latency histogram, in microseconds.
type Percentiles struct {
	P50  int64   `json:"p50_us"`
	P90  int64   `json:"p90_us"`
	P99  int64   `json:"p99_us"`
	P999 int64   `json:"p999_us"`
	Max  int64   `json:"max_us"`
	Min  int64   `json:"min_us"`
	Mean float64 `json:"mean_us"`
}

// IntervalResult is one interval of a workload's series (by completion time).
type IntervalResult struct {
	T      float64                        `json:"t_s"` // interval start, seconds from the start of measuring
	Sent   int64                          `json:"sent"`
	Errors int64                          `json:"errors"`
	Stages map[string]IntervalStageResult `json:"stages,omitempty"`
}

// IntervalStageResult is one stage in one interval.
type IntervalStageResult struct {
	Count          int64 `json:"count"`
	P50            int64 `json:"p50_us"`
	P99            int64 `json:"p99_us"`
	Max            int64 `json:"max_us"`
	P99Uncorrected int64 `json:"p99_uncorrected_us"`
}

// Floors are the costs of the raw building blocks, measured in the same run
// on the same emulated paths, and the node's ratio to them.
type Floors struct {
	QuicEcho   *Percentiles `json:"quic_echo,omitempty"`   // raw quic-go echo RTT, one stream, tx-sized frames
	ProduceAck *Percentiles `json:"produce_ack,omitempty"` // raw franz-go produce→ack on the same broker
	// QuicEchoLoaded and ProduceAckLoaded are the same two round trips
	// timed while the measured phase's load ran (each every 50 ms; a run
	// at offered rates, not a max-rate search): what a hop costs on the
	// machine as busy as the run made it, beside the floors' idle one.
	// Absent with fewer than 20 of either.
	QuicEchoLoaded    *Percentiles `json:"quic_echo_loaded,omitempty"`
	ProduceAckLoaded  *Percentiles `json:"produce_ack_loaded,omitempty"`
	ProduceCeilingTPS float64      `json:"produce_ceiling_tps"`
	MerkleCeilingWPS  float64      `json:"merkle_ceiling_wps"`          // Merkle batch updates of field elements, writes per second
	StateCeilingWPS   float64      `json:"state_ceiling_wps,omitempty"` // put writes per second through the node's storage: value hashing, Merkle update, proofs, Pebble batch
	VerifyCeilingTPS  float64      `json:"verify_ceiling_tps"`          // ed25519 verifications per second, batched as at ingress
	// TreeKeys is how many leaves each shard's tree held for
	// StateCeilingWPS and NodeBoundTPS: the first put workload's accounts
	// over the shards, capped (docs/DESIGN.md, floors).
	TreeKeys int `json:"tree_keys,omitempty"`
	// NodeBoundTPS is the puts per second this machine's cores do when
	// they do only a put's mandatory work (signature check, value hash,
	// Merkle update and proof, Pebble batch), on trees of TreeKeys leaves
	// with blocks of the run's mean size per shard (Result.Blocks),
	// measured after the load (calib.NodeBound).
	NodeBoundTPS float64 `json:"node_bound_tps,omitempty"`
	// NodeBoundCPUMicrosPerTx is the CPU time, µs, of one put's mandatory
	// work in the node bound's measurement (calib.Bound.CPUPerTx): the
	// floor of cost.cpu_us_per_tx for a node that cuts blocks of the
	// run's sizes, whatever the cores. Zero where it was not measured.
	NodeBoundCPUMicrosPerTx float64 `json:"node_bound_cpu_us_per_tx,omitempty"`
	// NodeBoundSigBatch is how many signatures the node bound checked
	// together: the run's Cost.SigBatchMean rounded, as the node's ingress
	// checked them. Zero (left out): the run had no such figure, and 64
	// goroutines submitted the bound's signatures to a batching verifier
	// (calib.BoundOptions.Callers).
	NodeBoundSigBatch int `json:"node_bound_sig_batch,omitempty"`
	// NodeBoundNewKeys is the share of the node bound's puts that wrote
	// a key new to the store, hashed and inserted into the tree: a node's
	// share of the run's puts whose key its key cache did not hold
	// (Cost.KeysHashedPerTx over Cost.Nodes, at most 1). Zero (left out):
	// every key cached, as when the run had no cost.
	NodeBoundNewKeys float64 `json:"node_bound_new_keys,omitempty"`
	// NodeBoundPrepareBlocks is how many blocks the node bound's store
	// prepared together on average (calib.Bound.PrepareBlocks), beside
	// the node's Cost.PrepareBlocksMean: more blocks a batch share more
	// of the eight-lane hashing.
	NodeBoundPrepareBlocks float64 `json:"node_bound_prepare_blocks,omitempty"`
	// The CPU floor of a transaction's whole path (since session 49;
	// one node in process, where cost.cpu_us_per_tx is the whole
	// process's, load generator and embedded broker included; zero, left
	// out, elsewhere):
	//
	//   - QuicEchoCPUMicros: the CPU, µs, of one QUIC echo round trip
	//     through node-1's server, both ends, back to back before the
	//     load;
	//   - OrderingRoundCPUMicros and OrderingTxCPUMicros: the CPU, µs,
	//     of the log's work a leader's round costs beside its
	//     transactions (its Kafka transaction, the poll) and what each
	//     transaction adds (appended together), the node's own Kafka
	//     clients on the run's broker, back to back before the load
	//     (calib.OrderingCPU);
	//   - PathTxsPerRound: the run's transactions a leader's round
	//     (blocks.mean_txs × cost.prepare_blocks_mean, at least 1);
	//   - PathCPUMicrosPerTx: NodeBoundCPUMicrosPerTx +
	//     QuicEchoCPUMicros + OrderingTxCPUMicros +
	//     OrderingRoundCPUMicros / PathTxsPerRound — the mandatory work,
	//     the transport and the ordering of a transaction at the run's
	//     blocks and rounds, each done the cheapest way the node's code
	//     does it: a floor of cost.cpu_us_per_tx.
	QuicEchoCPUMicros      float64            `json:"quic_echo_cpu_us,omitempty"`
	OrderingRoundCPUMicros float64            `json:"ordering_round_cpu_us,omitempty"`
	OrderingTxCPUMicros    float64            `json:"ordering_tx_cpu_us,omitempty"`
	PathTxsPerRound        float64            `json:"path_txs_per_round,omitempty"`
	PathCPUMicrosPerTx     float64            `json:"path_cpu_us_per_tx,omitempty"`
	Ratios                 map[string]float64 `json:"ratios,omitempty"` // e.g. "accepted.p50/quic_echo.p50"
}

// Blocks summarises the blocks committed in the measured phase (a max-rate
// search: in its knee's probe), each block once, at its first commit on any
// node, by the transactions it committed.
type Blocks struct {
	Count   int64   `json:"count"`
	Txs     int64   `json:"txs"`
	MeanTxs float64 `json:"mean_txs"` // Txs over Count
	// Shards holds each shard's blocks, by shard.
	Shards []ShardBlocks `json:"shards"`
}

// ShardBlocks is one shard's part of Blocks.
type ShardBlocks struct {
	Shard   uint32  `json:"shard"`
	Count   int64   `json:"count"`
	Txs     int64   `json:"txs"`
	MeanTxs float64 `json:"mean_txs"` // Txs over Count; 0 without blocks
}

// NewBlocks returns an empty summary of shards shards, to Add blocks to.
func NewBlocks(shards int) *Blocks {
	b := &Blocks{Shards: make([]ShardBlocks, shards)}
	for s := range b.Shards {
		b.Shards[s].Shard = uint32(s)
	}
	return b
}

// Add counts one block of txs transactions on shard (below NewBlocks's
// shards).
func (b *Blocks) Add(shard uint32, txs int64) {
	sb := &b.Shards[shard]
	sb.Count++
	sb.Txs += txs
	b.Count++
	b.Txs += txs
}

// Done rounds the means (Round) and returns b, or nil without blocks.
func (b *Blocks) Done() *Blocks {
	if b.Count == 0 {
		return nil
	}
	b.Round()
	return b
}

// Round sets the means from the counts, to one decimal.
func (b *Blocks) Round() {
	mean := func(txs, n int64) float64 {
		if n == 0 {
			return 0
		}
		return round1(float64(txs) / float64(n))
	}
	b.MeanTxs = mean(b.Txs, b.Count)
	for i := range b.Shards {
		b.Shards[i].MeanTxs = mean(b.Shards[i].Txs, b.Shards[i].Count)
	}
}

// Checker is the verdict of the end-of-run consistency check.
type Checker struct {
	Accepted   int64 `json:"accepted"`
	Committed  int64 `json:"committed"`
	Lost       int64 `json:"lost"`       // accepted but never committed
	Duplicated int64 `json:"duplicated"` // committed more than once
	RootsEqual bool  `json:"roots_equal"`
	// RootsUnchecked: the run could not compare the nodes' roots (an
	// external node); RootsEqual is then true for want of a contradiction.
	RootsUnchecked bool `json:"roots_unchecked,omitempty"`
	// BalancesConserved: the accounts' balances add up to the genesis total
	// (set when the run had transfers).
	BalancesConserved *bool `json:"balances_conserved,omitempty"`
	// Divergent counts blocks a node committed with a header different
	// from the one another node committed at the same shard and height
	// (several nodes only; the notes name them).
	Divergent     int64 `json:"divergent_blocks,omitempty"`
	ProofsChecked int64 `json:"proofs_checked"`
	ProofsFailed  int64 `json:"proofs_failed"`
	// ReadsChecked counts verified reads (gets, queries) whose state root
	// is one the run saw committed, so that the value read is the key's
	// value at that block; ReadsOffHistory those whose root no committed
	// block had (a failure).
	ReadsChecked    int64    `json:"reads_checked,omitempty"`
	ReadsOffHistory int64    `json:"reads_off_history,omitempty"`
	OK              bool     `json:"ok"` // Passed(), set when written
	Notes           []string `json:"notes,omitempty"`
}

// RootsVerdict is RootsEqual as a report shows it: "not checked" when the
// run could not compare roots.
func (c Checker) RootsVerdict() string {
	if c.RootsUnchecked {
		return "not checked"
	}
	return fmt.Sprint(c.RootsEqual)
}

// Passed reports whether nothing was lost or duplicated, the roots agree, no
// node committed a divergent block, every checked proof verified and every
// read named a committed state.
func (c Checker) Passed() bool {
	return c.Lost == 0 && c.Duplicated == 0 && c.RootsEqual && c.Divergent == 0 && c.ProofsFailed == 0 && c.ReadsOffHistory == 0 &&
		(c.BalancesConserved == nil || *c.BalancesConserved)
}

// SLOResult is one SLO of the scenario and whether the run met it.
type SLOResult struct {
	Metric string `json:"metric"`
	Max    string `json:"max,omitempty"`
	Min    string `json:"min,omitempty"`
	Value  string `json:"value"`
	OK     bool   `json:"ok"`
	Error  string `json:"error,omitempty"` // why there is no value
}

// TimelineResult is one timeline event and how long the system took to
// recover from it.
type TimelineResult struct {
	At       string `json:"at"`
	Event    string `json:"event"`
	Recovery string `json:"recovery,omitempty"`

	// Extras. Node is the node a kill or pause of leader(S) acted on.
	Node string `json:"node,omitempty"`
	// For kill events: how the cluster's block production went on without
	// the node and after its restart.
	Failover *Failover `json:"failover,omitempty"`
	Rejoin   *Failover `json:"rejoin,omitempty"`
	// CatchUp is how long the restarted node took, from its restart, to
	// commit on every shard the height the cluster had reached when it
	// restarted ("not caught up" if it did not by the end of the run).
	CatchUp string `json:"catch_up,omitempty"`
	// Signal is how a kill or pause was delivered to a node process
	// ("SIGKILL", "SIGSTOP"); empty in process.
	Signal string `json:"signal,omitempty"`
	// Flood is what a flood of the node's API did.
	Flood *Flood `json:"flood,omitempty"`
}

// Flood is a timeline flood: the idle connections it opened to a node's
// HTTP API, how many the node held and how many it refused (closed at once,
// or the dial failed).
type Flood struct {
	Conns   int `json:"conns"`
	Held    int `json:"held"`
	Refused int `json:"refused"`
}

// EventNode is the event's description with the node it acted on when the
// scenario named it by role, such as "kill leader(0) [node-2]".
func (t TimelineResult) EventNode() string {
	if t.Node == "" {
		return t.Event
	}
	return t.Event + " [" + t.Node + "]"
}

// Failover measures the stall in block production around a cluster change
// (a node killed, or restarted and rejoining shard leadership), from the
// blocks' first commits on any node. For each shard: the longest gap
// between consecutive blocks that ends after the change and starts before
// the next one (so it includes a gap spanning the change itself), and the
// time from the change to the shard's first block after it.
type Failover struct {
	// MaxGap is the longest of the shards' gaps: the fail-over time.
	MaxGap   string `json:"max_gap"`
	MaxGapUs int64  `json:"max_gap_us"`
	// BaselineGapUs is the median gap between consecutive blocks of all
	// shards before the change, for scale.
	BaselineGapUs int64        `json:"baseline_gap_us"`
	Shards        []ShardStall `json:"shards"`
}

// ShardStall is one shard's part of a Failover.
type ShardStall struct {
	Shard uint32 `json:"shard"`
	// MaxGapUs is the shard's longest gap between consecutive blocks around
	// the change (until the end of the window if the shard committed
	// nothing after its last block, the whole window if it committed
	// nothing before the window's end).
	MaxGapUs int64 `json:"max_gap_us"`
	// FirstBlockUs is the time from the change to the shard's first block
	// after it; -1 if none.
	FirstBlockUs int64 `json:"first_block_us"`
}

// Passed reports whether the checker passed and every SLO was met.
func (r *Result) Passed() bool {
	if !r.Checker.Passed() {
		return false
	}
	for _, s := range r.SLO {
		if !s.OK {
			return false
		}
	}
	return true
}

// normalized returns a shallow copy ready to write: derived fields set, nil
// lists and maps empty.
func (r *Result) normalized() *Result {
	c := *r
	c.Version = ResultVersion
	c.Checker.OK = c.Checker.Passed()
	c.OK = c.Passed()
	if c.Workloads == nil {
		c.Workloads = map[string]*WorkloadResult{}
	}
	if c.SLO == nil {
		c.SLO = []SLOResult{}
	}
	if c.Timeline == nil {
		c.Timeline = []TimelineResult{}
	}
	return &c
}

// PercentilesOf summarises a latency histogram (microseconds).
func PercentilesOf(h *hdr.Histogram) Percentiles {
	if h == nil || h.TotalCount() == 0 {
		return Percentiles{}
	}
	v := h.ValueAtPercentiles([]float64{50, 90, 99, 99.9})
	return Percentiles{
		P50: v[50], P90: v[90], P99: v[99], P999: v[99.9],
		Max: h.Max(), Min: h.Min(), Mean: math.Round(h.Mean()*10) / 10,
	}
}

// throughputStages are the stages whose completions count as a workload's
// throughput, most complete first; a get workload's is its verified reads.
var throughputStages = []Stage{StageCommitted, StageAccepted, StageIngress, StageRead}

// NewResult summarises a snapshot over a measured phase of the given length:
// it fills Workloads, Start, End, DurationS and IntervalS. The runner fills
// the rest.
func NewResult(snap *Snapshot, measured time.Duration) *Result {
	r := &Result{
		Version:   ResultVersion,
		Start:     snap.Start,
		End:       snap.Start.Add(measured),
		DurationS: measured.Seconds(),
		IntervalS: snap.Interval.Seconds(),
		Workloads: map[string]*WorkloadResult{},
	}
	secs := measured.Seconds()
	rate := func(n int64) float64 {
		if secs <= 0 {
			return 0
		}
		return math.Round(float64(n)/secs*10) / 10
	}
	for _, ws := range snap.Workloads {
		w := &WorkloadResult{
			Sent:         ws.Sent,
			Errors:       ws.Errors,
			Lag:          PercentilesOf(ws.Lag),
			ErrorsByKind: ws.ErrorsByKind,
			Discarded:    ws.Discarded,
			Clamped:      ws.Clamped,
			Stages:       map[string]*StageResult{},
		}
		w.LagP99Us = w.Lag.P99
		for _, st := range Stages() {
			s := ws.Stages[st]
			n := s.Uncorrected.TotalCount() // the corrected one may hold synthetic (expected-interval) samples
			if n == 0 {
				continue
			}
			w.Stages[st.String()] = &StageResult{
				Count:         n,
				Corrected:     PercentilesOf(s.Corrected),
				Uncorrected:   PercentilesOf(s.Uncorrected),
				ThroughputTPS: rate(n),
			}
		}
		for _, st := range throughputStages {
			if s, ok := w.Stages[st.String()]; ok {
				w.ThroughputTPS = s.ThroughputTPS
				break
			}
		}
		for _, iv := range ws.Intervals {
			ir := IntervalResult{T: iv.Start.Seconds(), Sent: iv.Sent, Errors: iv.Errors}
			for _, st := range Stages() {
				p := iv.Stages[st]
				if p.Corrected == nil || p.Corrected.TotalCount() == 0 {
					continue
				}
				if ir.Stages == nil {
					ir.Stages = map[string]IntervalStageResult{}
				}
				v := p.Corrected.ValueAtPercentilesSlice([]float64{50, 99})
				ir.Stages[st.String()] = IntervalStageResult{
					Count:          p.Uncorrected.TotalCount(),
					P50:            v[0],
					P99:            v[1],
					Max:            p.Corrected.Max(),
					P99Uncorrected: p.Uncorrected.ValueAtPercentile(99),
				}
			}
			w.Series = append(w.Series, ir)
		}
		r.Workloads[ws.Name] = w
	}
	return r
}

// Metric returns the value of an SLO metric in its unit (microseconds for
// latencies, a count, or per second). Without a workload prefix a latency is
// the worst over the workloads that recorded the stage, errors and
// throughput the sum. A latency nobody recorded is ErrNoData.
func (r *Result) Metric(m Metric) (float64, error) {
	switch m.Name {
	case MetricLost:
		return float64(r.Checker.Lost), nil
	case MetricDuplicated:
		return float64(r.Checker.Duplicated), nil
	case MetricProofsFailed:
		return float64(r.Checker.ProofsFailed), nil
	}
	ws, err := r.metricWorkloads(m.Workload)
	if err != nil {
		return 0, err
	}
	switch m.Name {
	case MetricErrors:
		var n int64
		for _, w := range ws {
			n += w.Errors
		}
		return float64(n), nil
	case MetricThroughput:
		var t float64
		for _, w := range ws {
			t += w.ThroughputTPS
		}
		return t, nil
	case MetricLag:
		return worstLatency(ws, m.Stat, "nothing was sent", func(w *WorkloadResult) (Percentiles, bool) {
			return w.Lag, w.Sent > 0
		})
	}
	stage := string(m.Name)
	if _, err := ParseStage(stage); err != nil {
		return 0, err
	}
	return worstLatency(ws, m.Stat, "nothing reached stage "+stage, func(w *WorkloadResult) (Percentiles, bool) {
		s, ok := w.Stages[stage]
		if !ok || s.Count == 0 {
			return Percentiles{}, false
		}
		if m.Uncorrected {
			return s.Uncorrected, true
		}
		return s.Corrected, true
	})
}

// metricWorkloads returns the named workload, or all of them for "".
func (r *Result) metricWorkloads(name string) ([]*WorkloadResult, error) {
	if name != "" {
		w, ok := r.Workloads[name]
		if !ok {
			return nil, fmt.Errorf("%w: no workload %q", ErrUnknownMetric, name)
		}
		return []*WorkloadResult{w}, nil
	}
	ws := make([]*WorkloadResult, 0, len(r.Workloads))
	for _, w := range r.Workloads {
		ws = append(ws, w)
	}
	return ws, nil
}

// worstLatency returns the highest stat (p50, p90, p99, p999 or max) of the
// workloads' latencies that get returns; none says why there is no data
// when get returns none.
func worstLatency(ws []*WorkloadResult, stat, none string, get func(*WorkloadResult) (Percentiles, bool)) (float64, error) {
	var worst int64 = -1
	for _, w := range ws {
		p, ok := get(w)
		if !ok {
			continue
		}
		v, err := p.stat(stat)
		if err != nil {
			return 0, err
		}
		worst = max(worst, v)
	}
	if worst < 0 {
		return 0, fmt.Errorf("%w: %s", ErrNoData, none)
	}
	return float64(worst), nil
}

// stat returns the statistic named as in SLO metrics: p50, p90, p99, p999
// or max.
func (p Percentiles) stat(name string) (int64, error) {
	switch name {
	case "p50":
		return p.P50, nil
	case "p90":
		return p.P90, nil
	case "p99":
		return p.P99, nil
	case "p999":
		return p.P999, nil
	case "max":
		return p.Max, nil
	}
	return 0, fmt.Errorf("%w: no statistic %q", ErrUnknownMetric, name)
}

// CheckSLOs evaluates SLOs against r. An SLO whose metric has no value
// fails, with the reason in its Error.
func (r *Result) CheckSLOs(slos []SLO) []SLOResult {
	out := make([]SLOResult, 0, len(slos))
	for _, slo := range slos {
		res := SLOResult{Metric: slo.Metric, Max: slo.Max.Text, Min: slo.Min.Text}
		m, err := ParseMetric(slo.Metric)
		if err == nil {
			var v float64
			v, err = r.Metric(m)
			if err == nil {
				lo, hi := slo.bounds()
				res.Value = formatMetric(m.Kind, v)
				res.OK = v >= lo && v <= hi
			}
		}
		if err != nil {
			res.Value = "n/a"
			res.Error = err.Error()
		}
		out = append(out, res)
	}
	return out
}

// MaxRate is the outcome of a max-rate search: the highest probed rate whose
// stage p99 (corrected) stayed within the bound with no errors, and every
// probe on the way (the latency–throughput curve).
type MaxRate struct {
	Stage    string         `json:"stage"`
	BoundUs  int64          `json:"p99_bound_us"`
	KneeRate float64        `json:"knee_rate"` // offered rate per second; 0 when even the first probe failed
	KneeTPS  float64        `json:"knee_tps"`  // achieved throughput at the knee
	Points   []MaxRatePoint `json:"points"`    // in probe order
}

// MaxRatePoint is one probe of a max-rate search.
type MaxRatePoint struct {
	Rate          float64 `json:"rate"` // offered, per second
	ThroughputTPS float64 `json:"throughput_tps"`
	P50Us         int64   `json:"p50_us"`
	P99Us         int64   `json:"p99_us"`
	Errors        int64   `json:"errors"`
	// ErrorsByKind names the probe's errors (as a workload's errors_by_kind).
	ErrorsByKind map[string]int64 `json:"errors_by_kind,omitempty"`
	OK           bool             `json:"ok"`
	// CPUMicrosPerTx is the CPU time the processes under test spent from
	// the probe's start until its last send completed, per transaction
	// the probe saw committed, in microseconds: the node processes' with
	// cluster.mode process, else this process's (nodes, broker and load
	// generator), as cost.cpu_us_per_tx counts it. 0 (omitted) when
	// nothing committed, a node process restarted within the probe, or
	// the CPU could not be read.
	CPUMicrosPerTx float64 `json:"cpu_us_per_tx,omitempty"`
}

// ProfileSummary lists a profile's costliest functions.
type ProfileSummary struct {
	Kind    string        `json:"kind"` // cpu, heap, allocs, mutex, block, goroutine
	File    string        `json:"file"` // in the report folder's profile/ directory
	Unit    string        `json:"unit"` // the sample type summarised, e.g. "cpu (nanoseconds)"
	Total   int64         `json:"total"`
	TopFlat []ProfileFunc `json:"top_flat"` // by the function's own cost
	TopCum  []ProfileFunc `json:"top_cum"`  // by the cost of the function and its callees
	// Components splits a CPU profile's samples (cpu, perf) among the
	// parts of the system, in the order they claim a sample: each sample
	// counts once, for the first part a function of its stack belongs to
	// (harness, Poseidon, Merkle tree, ed25519, Pebble, embedded broker,
	// Kafka client, QUIC, load generator, node, rustorium, Go's background
	// GC, Go's runtime, other: docs/DESIGN.md, "CPU by part of the
	// system"). Absent for other kinds.
	Components []ProfileComponent `json:"components,omitempty"`
	// CoveredPct is a CPU profile's total over the CPU time the processes
	// it samples used in the measured phase (resources: the harness
	// process's for cpu; perf's with the node processes' too), in
	// percent: about 100 when the profiler saw all of it. Absent without
	// that CPU time.
	CoveredPct float64 `json:"covered_pct,omitempty"`
	// Caveat says why the profile may misplace its samples, when the run
	// suggests it (a cpu profile of a paced, mostly idle process: the
	// kernel checks the profiler's CPU timers on its tick, and a load sent
	// on a fixed schedule can keep step with it). Empty: none known.
	Caveat string `json:"caveat,omitempty"`
}

// ProfileComponent is one part of the system's share of a CPU profile
// (ProfileSummary.Components).
type ProfileComponent struct {
	Name  string  `json:"name"`
	Value int64   `json:"value"` // in the profile's unit (cpu nanoseconds)
	Pct   float64 `json:"pct"`   // of the profile's total
	// MicrosPerTx is what the part costs a committed transaction: its
	// share of the profile times the CPU time the processes the profile
	// samples used in the measured phase a transaction committed then
	// (resources.cpu_us_per_tx, with perf and node processes their
	// node_resources' too), so a profiler that lost samples still splits
	// what was spent. Absent when none committed.
	MicrosPerTx float64 `json:"us_per_tx,omitempty"`
}

// ProfileFunc is one function's share of a profile.
type ProfileFunc struct {
	Func    string  `json:"func"`
	Flat    int64   `json:"flat"`
	FlatPct float64 `json:"flat_pct"`
	Cum     int64   `json:"cum"`
	CumPct  float64 `json:"cum_pct"`
}
