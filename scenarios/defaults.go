package scenarios

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/rustorium/rustorium/netem"
	"github.com/rustorium/rustorium/node/consensus"
	"github.com/rustorium/rustorium/node/ordering"
	"github.com/rustorium/rustorium/reports"
)

// Defaults. Every default of the format is here and applied by EnsureDefaults;
// nothing else in the code base invents one. The cluster's shards, block
// bounds and quorum are the node's own (node/ordering, node/consensus), so
// a scenario, a cluster file and a node's flags agree.
const (
	DefaultName          = "scenario"                         // when there is no file name either
	DefaultSeed          = 1                                  // seed
	DefaultWarmup        = Duration(2e9)                      // 2s
	DefaultDuration      = Duration(30e9)                     // 30s
	DefaultDrain         = Duration(10e9)                     // 10s
	DefaultClusterMode   = ClusterInProcess                   // cluster.mode
	DefaultNodes         = 1                                  // cluster.nodes
	DefaultShards        = ordering.DefaultShards             // cluster.shards: 4
	DefaultBlockMaxTxs   = consensus.DefaultMaxTxs            // cluster.block.max_txs: 1000
	DefaultBlockMaxBytes = consensus.DefaultMaxBytes          // cluster.block.max_bytes: 1 MiB
	DefaultBlockMaxWait  = Duration(consensus.DefaultMaxWait) // cluster.block.max_wait: 20ms
	DefaultBlockHold     = BlockHold(consensus.DefaultHold)   // cluster.block.hold: shard
	DefaultSync          = true                               // cluster.storage.sync
	DefaultSession       = Duration(1e9)                      // cluster.leadership.session_timeout: 1s
	DefaultTxnTimeout    = Duration(3e9)                      // cluster.leadership.transaction_timeout: 3s
	DefaultAccounts      = 10000                              // workload.accounts
	DefaultClient        = ClientQUIC                         // workload.client
	DefaultArrival       = ArrivalConstant                    // workload.arrival (open loop only)
	DefaultValueSize     = 32                                 // workload.value_size, bytes
	DefaultTimeout       = Duration(10e9)                     // workload.timeout: 10s
	DefaultFailover      = true                               // workload.failover
	DefaultVerifyProofs  = Percent(1)                         // workload.verify_proofs: 1%
	DefaultMaxRateFrom   = Rate(100)                          // workload.maxrate.from
	DefaultMaxRateTo     = Rate(1e6)                          // workload.maxrate.to
	DefaultMaxRateStep   = Duration(5e9)                      // workload.maxrate.step: 5s
	DefaultMaxRatePrec   = Percent(5)                         // workload.maxrate.precision
	DefaultLossBurst     = netem.DefaultLossBurst             // impairment.loss_burst (gilbert-elliott): 4
	DefaultQueue         = netem.DefaultQueue                 // impairment.queue (with rate): 1000
	DefaultDistribution  = DistUniform                        // impairment.distribution (with jitter)
	DefaultLossModel     = LossBernoulli                      // impairment.loss_model (with loss)
	defaultKeysKind      = KeysUniform                        // workload.keys
)

// DefaultMaxRateStage is workload.maxrate.stage's default (a typed
// constant of reports, where stages are defined).
const DefaultMaxRateStage = reports.StageAccepted

// DefaultFormats are the report outputs when report.formats is unset.
var DefaultFormats = []Format{FormatJSON, FormatMD, FormatHTML, FormatHGRM, FormatHLog}

// EnsureDefaults fills every unset field with its default, in place. It is
// idempotent. A field the file gives, even as zero (duration: 0s, nodes: 0),
// is not unset: it is kept, and Validate refuses the zeros that mean
// nothing (warmup: 0s and drain: 0s mean none). The defaults:
//
//	field                        default
//	name                         file name without extension ("scenario" without a file)
//	seed                         1
//	warmup                       2s
//	duration                     30s
//	drain                        10s
//	cluster.mode                 inprocess
//	cluster.nodes                1
//	cluster.shards               4
//	cluster.quorum               ⌊2·nodes/3⌋+1 (consensus.DefaultQuorum)
//	cluster.broker               embedded
//	cluster.block.max_txs        1000
//	cluster.block.max_bytes      1048576 (1 MiB)
//	cluster.block.max_wait       20ms
//	cluster.storage.sync         true
//	workload[].name              the kind, plus "-N" (1-based position) if kinds repeat
//	workload[].accounts          10000
//	workload[].keys              uniform
//	workload[].client            quic
//	workload[].arrival           constant (open-loop modes only)
//	workload[].value_size        32 bytes
//	workload[].timeout           10s
//	workload[].verify_proofs     1%
//	workload[].failover          true
//	workload[].ramp.over         the duration
//	workload[].maxrate.stage     accepted
//	workload[].maxrate.from      100/s
//	workload[].maxrate.to        1000000/s
//	workload[].maxrate.step      5s
//	workload[].maxrate.precision 5%
//	report.formats               [json, md, html, hgrm, hlog]
//	report.profile               none
//
// Impairments are left as written, because a link's zero fields inherit the
// default impairment's (see Network); zero fields mean, where traffic is
// impaired: distribution uniform (with jitter), loss_model bernoulli (with
// loss), loss_burst 4 (gilbert-elliott), queue 1000 packets (with rate), no
// MTU limit, and nothing else done to the packets. [Impairment.Effective] makes
// those meanings explicit.
func (s *Scenario) EnsureDefaults() {
	if s.Name == "" && s.unset("name") {
		s.Name = DefaultName
		if s.file != "" {
			base := filepath.Base(s.file)
			if n := strings.TrimSuffix(base, filepath.Ext(base)); n != "" {
				s.Name = n
			}
		}
	}
	setDefault(s, "seed", &s.Seed, DefaultSeed)
	setDefault(s, "warmup", &s.Warmup, DefaultWarmup)
	setDefault(s, "duration", &s.Duration, DefaultDuration)
	setDefault(s, "drain", &s.Drain, DefaultDrain)
	s.clusterDefaults()
	kinds := map[Kind]int{}
	for _, w := range s.Workload {
		kinds[w.Kind]++
	}
	for i := range s.Workload {
		s.workloadDefaults(i, kinds)
	}
	if len(s.Report.Formats) == 0 && s.unset("report.formats") {
		s.Report.Formats = append([]Format(nil), DefaultFormats...)
	}
}

// unset reports whether the file does not give the field at path (a
// scenario made in code gives none).
func (s *Scenario) unset(path string) bool {
	_, ok := s.lines[path]
	return !ok
}

// setDefault sets *v to def when it is zero and the file does not give it.
func setDefault[T comparable](s *Scenario, path string, v *T, def T) {
	var zero T
	if *v == zero && s.unset(path) {
		*v = def
	}
}

func (s *Scenario) clusterDefaults() {
	c := &s.Cluster
	setDefault(s, "cluster.mode", &c.Mode, DefaultClusterMode)
	setDefault(s, "cluster.nodes", &c.Nodes, DefaultNodes)
	setDefault(s, "cluster.shards", &c.Shards, DefaultShards)
	setDefault(s, "cluster.quorum", &c.Quorum, consensus.DefaultQuorum(c.Nodes))
	setDefault(s, "cluster.block.max_txs", &c.Block.MaxTxs, DefaultBlockMaxTxs)
	setDefault(s, "cluster.block.max_bytes", &c.Block.MaxBytes, DefaultBlockMaxBytes)
	setDefault(s, "cluster.block.max_wait", &c.Block.MaxWait, DefaultBlockMaxWait)
	setDefault(s, "cluster.block.hold", &c.Block.Hold, DefaultBlockHold)
	setDefault(s, "cluster.leadership.session_timeout", &c.Leadership.SessionTimeout, DefaultSession)
	setDefault(s, "cluster.leadership.transaction_timeout", &c.Leadership.TransactionTimeout, DefaultTxnTimeout)
	if c.Storage.Sync == nil {
		v := DefaultSync
		c.Storage.Sync = &v
	}
}

// workloadDefaults fills workload i; kinds counts the workloads of each
// kind (a repeated kind numbers its default names).
func (s *Scenario) workloadDefaults(i int, kinds map[Kind]int) {
	w := &s.Workload[i]
	p := fmt.Sprintf("workload[%d].", i)
	if w.Name == "" && s.unset(p+"name") {
		switch {
		case w.Kind == "":
			w.Name = fmt.Sprintf("workload-%d", i+1)
		case kinds[w.Kind] > 1:
			w.Name = fmt.Sprintf("%s-%d", w.Kind, i+1)
		default:
			w.Name = string(w.Kind)
		}
	}
	setDefault(s, p+"accounts", &w.Accounts, DefaultAccounts)
	if w.Keys.IsZero() {
		w.Keys = KeyDist{Kind: defaultKeysKind}
	}
	setDefault(s, p+"client", &w.Client, DefaultClient)
	if w.Arrival == "" && (w.Rate != 0 || w.Ramp != nil) {
		w.Arrival = DefaultArrival
	}
	setDefault(s, p+"value_size", &w.ValueSize, DefaultValueSize)
	setDefault(s, p+"timeout", &w.Timeout, DefaultTimeout)
	if w.VerifyProofs == nil {
		v := DefaultVerifyProofs
		w.VerifyProofs = &v
	}
	if w.Failover == nil {
		v := DefaultFailover
		w.Failover = &v
	}
	if w.Ramp != nil {
		setDefault(s, p+"ramp.over", &w.Ramp.Over, s.Duration)
	}
	if m := w.MaxRate; m != nil {
		if m.Stage == nil {
			st := DefaultMaxRateStage
			m.Stage = &st
		}
		setDefault(s, p+"maxrate.from", &m.From, DefaultMaxRateFrom)
		setDefault(s, p+"maxrate.to", &m.To, DefaultMaxRateTo)
		setDefault(s, p+"maxrate.step", &m.Step, DefaultMaxRateStep)
		setDefault(s, p+"maxrate.precision", &m.Precision, DefaultMaxRatePrec)
	}
}

// Effective returns i with the meaning of its zero fields made explicit for
// the features in use: distribution uniform when there is jitter, loss_model
// bernoulli when there is loss, loss_burst 4 for gilbert-elliott, queue 1000
// packets when there is a rate limit.
func (i Impairment) Effective() Impairment {
	if i.Jitter > 0 && i.Distribution == "" {
		i.Distribution = DefaultDistribution
	}
	if i.Loss > 0 && i.LossModel == "" {
		i.LossModel = DefaultLossModel
	}
	if i.LossModel == LossGilbertElliott && i.LossBurst == 0 {
		i.LossBurst = DefaultLossBurst
	}
	if i.Rate > 0 && i.Queue == 0 {
		i.Queue = DefaultQueue
	}
	return i
}
