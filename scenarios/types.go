package scenarios

import (
	"time"

	"github.com/rustorium/rustorium/reports"
)

// Scenario is one scenario file: what to start, how to load it, what to break
// and what must hold. A field left out (or null) takes its default; the
// defaults are all in EnsureDefaults. A field given as zero is kept: where
// zero means nothing (duration: 0s, nodes: 0, shards: 0, quorum: 0,
// max_txs: 0, seed: 0, …) Validate refuses it with its line.
type Scenario struct {
	// Name names the run and its report folder; letters, digits, '.', '_' and
	// '-'. Defaults to the file name without its extension.
	Name string `yaml:"name" json:"name"`
	// Description is free text shown in the report.
	Description string `yaml:"description" json:"description,omitempty"`
	// Seed drives every random decision (keys, arrivals, impairments). Unset
	// means 1; 0 is refused.
	Seed int64 `yaml:"seed" json:"seed"`
	// Warmup is how long load runs before measuring starts; nothing sent
	// during warmup is recorded. Unset means 2s; 0s means none.
	Warmup Duration `yaml:"warmup" json:"warmup"`
	// Duration is the length of the measured phase (> 0).
	Duration Duration `yaml:"duration" json:"duration"`
	// Drain is how long to wait after the last send for outstanding
	// transactions to commit before the checker runs. Unset means 10s; 0s
	// means no wait.
	Drain Duration `yaml:"drain" json:"drain"`
	// Cluster is the system under test.
	Cluster Cluster `yaml:"cluster" json:"cluster"`
	// Network holds the emulated impairments, applied per direction.
	Network Network `yaml:"network" json:"network"`
	// Workload lists the load generators that run at once.
	Workload []Workload `yaml:"workload" json:"workload"`
	// Timeline lists faults and changes, at times from the start of measuring.
	Timeline []Event `yaml:"timeline" json:"timeline,omitempty"`
	// SLO lists the assertions a run must meet; a failed one makes the run
	// exit non-zero.
	SLO []SLO `yaml:"slo" json:"slo,omitempty"`
	// Report says what the report folder contains.
	Report Report `yaml:"report" json:"report"`
	// Sweep runs the scenario once per value of one parameter (rustorium
	// simulate only; rustorium run refuses it).
	Sweep *Sweep `yaml:"sweep" json:"sweep,omitempty"`
	// Simulation tunes rustorium simulate's model (rustorium run ignores
	// it).
	Simulation *Simulation `yaml:"simulation" json:"simulation,omitempty"`

	file  string         // as given to Load or Parse
	lines map[string]int // field path → line, for Validate's errors
}

// Cluster is the set of reference nodes and what they order through.
type Cluster struct {
	// Mode is how the harness runs the nodes: inprocess (in its own
	// process) or process (as `rustorium node` OS processes, so a kill is a
	// crash). Unset means inprocess.
	Mode ClusterMode `yaml:"mode" json:"mode"`
	// Nodes is the number of nodes, named node-1 … node-N (1..64 for a
	// run, 1..1024 for a simulation).
	Nodes int `yaml:"nodes" json:"nodes"`
	// Shards is the number of shards (Kafka topic pairs), 1 up to the
	// node's bound (ordering.MaxShards, 4096).
	Shards int `yaml:"shards" json:"shards"`
	// Quorum is the number of matching attestations that make a block final
	// (1..nodes). Unset means ⌊2N/3⌋+1, as the node's.
	Quorum int `yaml:"quorum" json:"quorum"`
	// Broker is "embedded" (in-process) or a list of host:port of a real
	// Kafka or Redpanda cluster.
	Broker Broker `yaml:"broker" json:"broker"`
	// Block bounds how blocks are cut.
	Block Block `yaml:"block" json:"block"`
	// Storage configures Pebble.
	Storage Storage `yaml:"storage" json:"storage"`
	// Leadership tunes the consumer group that assigns shard leaders.
	Leadership Leadership `yaml:"leadership" json:"leadership"`
	// CoresPerNode is the cores each node has in a simulation (rustorium
	// simulate); unset: the calibration's machine's. rustorium run ignores
	// it (its nodes share the machine it runs on).
	CoresPerNode int `yaml:"cores_per_node" json:"cores_per_node,omitempty"`
	// Brokers is the number of broker machines in a simulation, the
	// shards' partitions spread over them with a replication factor of
	// min(brokers, 3); unset: 1. rustorium run ignores it.
	Brokers int `yaml:"brokers" json:"brokers,omitempty"`
}

// Leadership tunes shard leadership. The defaults are short, so a killed
// leader's shards move within about a second; a real broker must accept the
// session timeout (group.min.session.timeout.ms is 6s by default in Kafka
// and Redpanda: lower it, or set session_timeout: 6s).
type Leadership struct {
	// SessionTimeout is how long a silent leader keeps its shards before
	// the group gives them to another node.
	SessionTimeout Duration `yaml:"session_timeout" json:"session_timeout"`
	// TransactionTimeout is how long the broker lets a leader's block
	// transaction stay open; it bounds fail-over after a crash.
	TransactionTimeout Duration `yaml:"transaction_timeout" json:"transaction_timeout"`
}

// Block bounds a block: it is cut when any bound is reached.
type Block struct {
	// MaxTxs is the most transactions in one block.
	MaxTxs int `yaml:"max_txs" json:"max_txs"`
	// MaxBytes is the most encoded transaction bytes in one block.
	MaxBytes int `yaml:"max_bytes" json:"max_bytes"`
	// MaxWait is the longest a leader holds a block open, from its first
	// transaction, while a block is in flight (published, not yet
	// committed by the leader's node: the previous block of its shard, or
	// with Hold leader any block of the leader's), so that blocks grow
	// under load; at low load nothing is in flight and blocks are cut at
	// once.
	MaxWait Duration `yaml:"max_wait" json:"max_wait"`
	// Hold is which in-flight blocks hold a shard's block open: shard
	// (the shard's own previous block) or leader (any block its leader
	// published, so rounds carry more transactions at a moderate load
	// and a transaction behind another shard's block waits for it).
	Hold BlockHold `yaml:"hold" json:"hold"`
}

// Storage configures the nodes' Pebble stores.
type Storage struct {
	// Sync makes every block commit fsync. Unset means true.
	Sync *bool `yaml:"sync" json:"sync"`
}

// SyncEnabled reports whether commits fsync (true when unset).
func (s Storage) SyncEnabled() bool { return s.Sync == nil || *s.Sync }

// Network is the emulated network: a default impairment for every path,
// per-link overrides, and the path to the broker.
//
// The impairment of packets from A to B is Default with each matching link
// laid over it in order: a link's non-zero fields replace the default's, its
// zero fields inherit. A link matches when its from and to equal A and B or
// are "*".
type Network struct {
	// Default applies to every path between clients and nodes and between
	// nodes. Unset means no impairment.
	Default *Impairment `yaml:"default" json:"default,omitempty"`
	// Links override the default on single directed paths.
	Links []Link `yaml:"links" json:"links,omitempty"`
	// Broker applies to the nodes' connections to the broker.
	Broker *Impairment `yaml:"broker" json:"broker,omitempty"`
}

// Link is an impairment on the packets going one way between two endpoints.
type Link struct {
	// From is the sending endpoint: "clients", "node-N" or "*".
	From string `yaml:"from" json:"from"`
	// To is the receiving endpoint: "clients", "node-N" or "*".
	To         string `yaml:"to" json:"to"`
	Impairment `yaml:",inline"`
}

// Impairment is what the emulated network does to packets on a path, after
// tc netem. The zero value passes traffic unchanged.
type Impairment struct {
	// Delay is added to every packet.
	Delay Duration `yaml:"delay" json:"delay,omitempty"`
	// Jitter varies the delay by up to ± this much.
	Jitter Duration `yaml:"jitter" json:"jitter,omitempty"`
	// Distribution is the shape of the jitter; unset means uniform. Needs
	// jitter.
	Distribution Distribution `yaml:"distribution" json:"distribution,omitempty"`
	// Correlation ties each delay to the previous one.
	Correlation Percent `yaml:"correlation" json:"correlation,omitempty"`
	// Loss is the share of packets dropped (the mean loss rate).
	Loss Percent `yaml:"loss" json:"loss,omitempty"`
	// LossModel spreads the losses; unset means bernoulli.
	LossModel LossModel `yaml:"loss_model" json:"loss_model,omitempty"`
	// LossBurst is the mean length of a loss burst in packets for
	// gilbert-elliott; unset means 4.
	LossBurst int `yaml:"loss_burst" json:"loss_burst,omitempty"`
	// Duplicate is the share of packets sent twice.
	Duplicate Percent `yaml:"duplicate" json:"duplicate,omitempty"`
	// Corrupt is the share of packets with one bit flipped.
	Corrupt Percent `yaml:"corrupt" json:"corrupt,omitempty"`
	// Reorder is the share of packets sent at once instead of delayed, so
	// they overtake others. Needs delay.
	Reorder Percent `yaml:"reorder" json:"reorder,omitempty"`
	// ReorderGap reorders only every Nth packet, as in tc netem; unset means
	// any packet may be reordered.
	ReorderGap int `yaml:"reorder_gap" json:"reorder_gap,omitempty"`
	// Rate limits the bandwidth, like 10mbit; unset means unlimited.
	Rate Bandwidth `yaml:"rate" json:"rate,omitempty"`
	// Queue is how many packets wait behind the rate limit before tail drop;
	// unset means 1000.
	Queue int `yaml:"queue" json:"queue,omitempty"`
	// MTU drops packets larger than this many bytes; unset means no limit.
	MTU int `yaml:"mtu" json:"mtu,omitempty"`
}

// IsZero reports whether i leaves traffic unchanged.
func (i Impairment) IsZero() bool { return i == Impairment{} }

// Workload is one load generator. Exactly one of Rate, Ramp, Clients, Trace
// and MaxRate sets its load mode.
type Workload struct {
	// Name keys the workload in result.json. Defaults to the kind, with
	// "-N" (its position) added when two workloads share a kind.
	Name string `yaml:"name" json:"name"`
	// Kind is transfer, put, get or query. A get reads state keys through
	// the node's read API and verifies each answer's Merkle proof against
	// the root that came with it (the read stage); reads are not
	// transactions and do not count in the checker's accepted, committed
	// or lost. Its keys: with a transfer workload in the scenario, the
	// genesis accounts of the first one (key index k reads account k mod
	// that workload's accounts); otherwise put keys named as a put workload
	// names them (index k is key-%010d), so a get with the put's accounts
	// reads the put's key space, and a key not written yet is a valid
	// non-membership read. A query asks the node's account view for an
	// account (balance, nonce and their proof: over QUIC a read of the
	// account's state key, over REST GET /v1/accounts/{key}, over GraphQL
	// the account query, over WebSocket the account operation) and
	// verifies the proof (the read stage); its accounts are those of the
	// first transfer workload, or without one accounts derived from the
	// seed that do not exist (non-membership proofs).
	Kind Kind `yaml:"kind" json:"kind" schema:"required"`
	// Accounts is the size of the key space: accounts for transfer,
	// distinct keys for put, get and query.
	Accounts int `yaml:"accounts" json:"accounts"`
	// Keys is how keys are picked: uniform, sequential or zipf(s).
	Keys KeyDist `yaml:"keys" json:"keys"`
	// Rate is a constant open-loop rate, N/s.
	Rate Rate `yaml:"rate" json:"rate,omitempty"`
	// Ramp is an open-loop rate changing linearly over time.
	Ramp *Ramp `yaml:"ramp" json:"ramp,omitempty"`
	// Arrival spaces open-loop sends: constant or poisson.
	Arrival Arrival `yaml:"arrival" json:"arrival,omitempty"`
	// Clients is the number of closed-loop clients, each sending its next
	// request when the previous one completes.
	Clients int `yaml:"clients" json:"clients,omitempty"`
	// Think is a closed-loop client's pause between a response and its next
	// request.
	Think Duration `yaml:"think" json:"think,omitempty"`
	// Trace replays send times (and optionally keys) from a CSV file, relative
	// to the scenario file.
	Trace string `yaml:"trace" json:"trace,omitempty"`
	// MaxRate searches for the highest rate that meets a latency bound.
	MaxRate *MaxRate `yaml:"maxrate" json:"maxrate,omitempty"`
	// Client is the protocol: quic, rest, graphql or ws.
	Client Client `yaml:"client" json:"client"`
	// ValueSize is the size of a put's value in bytes: 1 up to the largest
	// value the node accepts (tx.MaxValueSize, 16384).
	ValueSize int `yaml:"value_size" json:"value_size"`
	// Timeout is how long a request may take before it counts as an error.
	Timeout Duration `yaml:"timeout" json:"timeout"`
	// VerifyProofs is the share of committed receipts whose Merkle proofs
	// the client verifies (the proof_verify stage).
	VerifyProofs *Percent `yaml:"verify_proofs" json:"verify_proofs"`
	// Failover makes a client whose node is down resend to the next node
	// (the same signed bytes; the nodes deduplicate by id) and take the
	// receipt there, as a client that knows the cluster's addresses does;
	// each resend counts in the workload's resent. false: such a send fails
	// at once. Unset means true.
	Failover *bool `yaml:"failover" json:"failover"`
}

// Mode names a workload's load mode.
type Mode string

// Load modes.
const (
	ModeRate    Mode = "rate"
	ModeRamp    Mode = "ramp"
	ModeClients Mode = "clients"
	ModeTrace   Mode = "trace"
	ModeMaxRate Mode = "maxrate"
)

// Modes returns the load modes w sets, in the order above; a valid workload
// sets exactly one.
func (w *Workload) Modes() []Mode {
	var m []Mode
	if w.Rate != 0 {
		m = append(m, ModeRate)
	}
	if w.Ramp != nil {
		m = append(m, ModeRamp)
	}
	if w.Clients != 0 {
		m = append(m, ModeClients)
	}
	if w.Trace != "" {
		m = append(m, ModeTrace)
	}
	if w.MaxRate != nil {
		m = append(m, ModeMaxRate)
	}
	return m
}

// Mode returns w's load mode, or "" when it sets none or several.
func (w *Workload) Mode() Mode {
	if m := w.Modes(); len(m) == 1 {
		return m[0]
	}
	return ""
}

// FloorGap is the pace of a run's floor round trips (the QUIC echo and
// produce→ack the run measures before its load): the first workload's
// send interval at its rate, or 1 ms when it sets no rate (other load
// modes). An idle machine wakes more slowly the longer it idled, so a
// floor must see the pace of the stage it bounds; the simulator prices a
// scenario's hops at the same pace (calib.Calibration.AtGap).
func (s *Scenario) FloorGap() time.Duration {
	if len(s.Workload) > 0 && s.Workload[0].Rate > 0 {
		return time.Duration(float64(time.Second) / s.Workload[0].Rate.PerSecond())
	}
	return time.Millisecond
}

// Ramp is an open-loop rate that moves linearly from From to To over Over,
// then stays at To.
type Ramp struct {
	// From is the rate at the start of measuring (may be 0/s).
	From Rate `yaml:"from" json:"from"`
	// To is the rate reached after Over.
	To Rate `yaml:"to" json:"to"`
	// Over is how long the ramp takes; unset means the whole duration.
	Over Duration `yaml:"over" json:"over"`
}

// RateAt returns the ramp's rate at elapsed time t from the start of
// measuring.
func (r Ramp) RateAt(t Duration) Rate {
	if t <= 0 {
		return r.From
	}
	if r.Over <= 0 || t >= r.Over {
		return r.To
	}
	f := float64(t) / float64(r.Over)
	return Rate(float64(r.From) + f*float64(r.To-r.From))
}

// MaxRate searches for the knee: the highest open-loop rate whose latency
// percentile at Stage stays under P99 with no errors. Each probe runs Step at
// one rate; rates grow geometrically from From, then bisect to Precision.
type MaxRate struct {
	// Stage is the stage whose p99 is bounded; unset means accepted.
	Stage *reports.Stage `yaml:"stage" json:"stage"`
	// P99 is the bound on the stage's corrected p99.
	P99 Duration `yaml:"p99" json:"p99" schema:"required"`
	// From is the first rate probed; unset means 100/s.
	From Rate `yaml:"from" json:"from"`
	// To is the highest rate probed; unset means 1M/s.
	To Rate `yaml:"to" json:"to"`
	// Step is how long each probe runs; unset means 5s.
	Step Duration `yaml:"step" json:"step"`
	// Precision stops the bisection when the bracket is this narrow relative
	// to its top; unset means 5%.
	Precision Percent `yaml:"precision" json:"precision"`
}

// Event is one entry of the timeline: at a time from the start of measuring,
// exactly one action (network, kill, partition, pause, flood or disk_full).
type Event struct {
	// At is when the event happens, from the start of measuring.
	At Duration `yaml:"at" json:"at"`
	// Network changes the emulated network: a given default or broker
	// impairment replaces the current one; a given link replaces the current
	// link with the same from and to, or is added.
	Network *Network `yaml:"network" json:"network,omitempty"`
	// Kill stops a node ("node-N", or "leader(S)": the node leading shard
	// S at that moment), or the broker ("broker").
	Kill string `yaml:"kill" json:"kill,omitempty"`
	// RestartAfter restarts the killed node this long after the kill; unset
	// means it stays down.
	RestartAfter Duration `yaml:"restart_after" json:"restart_after,omitempty"`
	// Partition splits endpoints into groups that cannot reach each other.
	Partition [][]string `yaml:"partition" json:"partition,omitempty"`
	// HealAfter ends the partition this long after it starts; unset means it
	// lasts to the end.
	HealAfter Duration `yaml:"heal_after" json:"heal_after,omitempty"`
	// Pause stalls a node's ingress and processing ("node-N" or
	// "leader(S)").
	Pause string `yaml:"pause" json:"pause,omitempty"`
	// Flood opens Conns idle connections to a node's HTTP API ("node-N" or
	// "leader(S)"), each with an unfinished request, and holds them for
	// For: a client exhausting the API's connections and descriptors. The
	// node must refuse what is over its limits and keep committing.
	Flood string `yaml:"flood" json:"flood,omitempty"`
	// Conns is how many connections a flood opens. Unset means 5000.
	Conns int `yaml:"conns" json:"conns,omitempty"`
	// DiskFull makes every write of a node's store fail with ENOSPC for
	// For ("node-N" or "leader(S)"; nodes in process only): the node must
	// keep what it acknowledged, say it is not ready, and commit again
	// once the disk has room, without a restart.
	DiskFull string `yaml:"disk_full" json:"disk_full,omitempty"`
	// For is how long the pause, the flood or the full disk lasts.
	For Duration `yaml:"for" json:"for,omitempty"`
}

// SLO is an assertion on a metric of result.json. Metrics are "lost",
// "duplicated", "proofs_failed", "errors", "throughput", "lag.pNN" and
// "STAGE.STAT" with STAT one of p50, p90, p99, p999, max and an optional
// ".uncorrected"; all but the checker's may be prefixed with "WORKLOAD." to
// look at one workload (otherwise the worst over workloads, or the sum for
// errors and throughput).
type SLO struct {
	// Metric names what is measured, such as committed.p99.
	Metric string `yaml:"metric" json:"metric" schema:"required"`
	// Max is the highest passing value: a duration for latencies, a number
	// for counts, a rate for throughput.
	Max Threshold `yaml:"max" json:"max,omitempty"`
	// Min is the lowest passing value.
	Min Threshold `yaml:"min" json:"min,omitempty"`
}

// Report says what goes into the report folder.
type Report struct {
	// Formats lists the outputs: json, md, html, hgrm, hlog.
	Formats []Format `yaml:"formats" json:"formats"`
	// Profile lists profiles to capture over the measured phase only: Go's
	// (cpu, heap, allocs, mutex, block, trace, goroutine) and perf (Linux
	// perf's cpu-clock samples of the harness process and any node
	// processes, kernel included).
	Profile []Profile `yaml:"profile" json:"profile,omitempty"`
}

// Sweep is a simulation's parameter sweep: exactly one of its lists, each
// value a run of the scenario with that parameter set.
type Sweep struct {
	// Nodes sets cluster.nodes (and the default quorum).
	Nodes []int `yaml:"nodes" json:"nodes,omitempty"`
	// Shards sets cluster.shards.
	Shards []int `yaml:"shards" json:"shards,omitempty"`
	// Cores sets cluster.cores_per_node.
	Cores []int `yaml:"cores" json:"cores,omitempty"`
	// RTT sets every network path's delay (network.default.delay) to half
	// the round trip.
	RTT []Duration `yaml:"rtt" json:"rtt,omitempty"`
}

// Simulation tunes the simulator's model of a scenario.
type Simulation struct {
	// Mode is how transactions move through the model: tx (one at a
	// time), cohort (in cohorts sharing a window of send times) or auto
	// (cohort when the open loops offer at least CohortAutoRate in total
	// and the scenario has nothing cohorts do not model). Unset means
	// auto.
	Mode SimMode `yaml:"mode" json:"mode,omitempty"`
	// Window is a cohort's span of intended send times. Unset or 0s
	// means automatic: about 100 sends per node and cohort, from 1ms to
	// 20ms.
	Window Duration `yaml:"window" json:"window,omitempty"`
}

// CohortAutoRate is the total offered open-loop rate, in tx/s, from which
// simulation.mode auto simulates in cohorts.
const CohortAutoRate = 50_000

// MaxCohortWindow bounds simulation.window.
const MaxCohortWindow = Duration(100e6)

// MaxSweepValues bounds the values of a sweep.
const MaxSweepValues = 32

// Param names the swept parameter ("nodes", "shards", "cores", "rtt") and
// its values as numbers (a round trip in milliseconds); "" when no list is
// given.
func (s *Sweep) Param() (string, []float64) {
	ints := func(v []int) []float64 {
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = float64(x)
		}
		return out
	}
	switch {
	case len(s.Nodes) > 0:
		return "nodes", ints(s.Nodes)
	case len(s.Shards) > 0:
		return "shards", ints(s.Shards)
	case len(s.Cores) > 0:
		return "cores", ints(s.Cores)
	case len(s.RTT) > 0:
		out := make([]float64, len(s.RTT))
		for i, d := range s.RTT {
			out[i] = d.Std().Seconds() * 1000
		}
		return "rtt", out
	}
	return "", nil
}
