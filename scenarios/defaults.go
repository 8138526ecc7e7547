package scenarios

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/rustorium/rustorium/reports"
)

// Defaults. Every default of the format is here and applied by EnsureDefaults;
// nothing else in the code base invents one.
const (
	DefaultName          = "scenario"      // when there is no file name either
	DefaultSeed          = 1               // seed: 0 or unset
	DefaultWarmup        = Duration(2e9)   // 2s
	DefaultDuration      = Duration(30e9)  // 30s
	DefaultDrain         = Duration(10e9)  // 10s
	DefaultNodes         = 1               // cluster.nodes
	DefaultShards        = 4               // cluster.shards
	DefaultBlockMaxTxs   = 1000            // cluster.block.max_txs
	DefaultBlockMaxBytes = 1 << 20         // cluster.block.max_bytes: 1 MiB
	DefaultBlockMaxWait  = Duration(20e6)  // cluster.block.max_wait: 20ms
	DefaultSync          = true            // cluster.storage.sync
	DefaultSession       = Duration(1e9)   // cluster.leadership.session_timeout: 1s
	DefaultTxnTimeout    = Duration(3e9)   // cluster.leadership.transaction_timeout: 3s
	DefaultAccounts      = 10000           // workload.accounts
	DefaultClient        = ClientQUIC      // workload.client
	DefaultArrival       = ArrivalConstant // workload.arrival (open loop only)
	DefaultValueSize     = 32              // workload.value_size, bytes
	DefaultTimeout       = Duration(10e9)  // workload.timeout: 10s
	DefaultVerifyProofs  = Percent(1)      // workload.verify_proofs: 1%
	DefaultMaxRateFrom   = Rate(100)       // workload.maxrate.from
	DefaultMaxRateTo     = Rate(1e6)       // workload.maxrate.to
	DefaultMaxRateStep   = Duration(5e9)   // workload.maxrate.step: 5s
	DefaultMaxRatePrec   = Percent(5)      // workload.maxrate.precision
	DefaultLossBurst     = 4               // impairment.loss_burst (gilbert-elliott)
	DefaultQueue         = 1000            // impairment.queue (with rate)
	DefaultDistribution  = DistUniform     // impairment.distribution (with jitter)
	DefaultLossModel     = LossBernoulli   // impairment.loss_model (with loss)
	defaultKeysKind      = KeysUniform     // workload.keys
)

// DefaultMaxRateStage is workload.maxrate.stage's default (a typed
// constant of reports, where stages are defined).
const DefaultMaxRateStage = reports.StageAccepted

// DefaultFormats are the report outputs when report.formats is unset.
var DefaultFormats = []Format{FormatJSON, FormatMD, FormatHTML, FormatHGRM, FormatHLog}

// EnsureDefaults fills every unset field with its default, in place. It is
// idempotent. The defaults:
//
//	field                        default
//	name                         file name without extension ("scenario" without a file)
//	seed                         1
//	warmup                       2s
//	duration                     30s
//	drain                        10s
//	cluster.nodes                1
//	cluster.shards               4
//	cluster.quorum               ⌊2·nodes/3⌋+1
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
	if s.Name == "" {
		s.Name = DefaultName
		if s.file != "" {
			base := filepath.Base(s.file)
			if n := strings.TrimSuffix(base, filepath.Ext(base)); n != "" {
				s.Name = n
			}
		}
	}
	if s.Seed == 0 {
		s.Seed = DefaultSeed
	}
	if s.Warmup == 0 {
		s.Warmup = DefaultWarmup
	}
	if s.Duration == 0 {
		s.Duration = DefaultDuration
	}
	if s.Drain == 0 {
		s.Drain = DefaultDrain
	}
	c := &s.Cluster
	if c.Nodes == 0 {
		c.Nodes = DefaultNodes
	}
	if c.Shards == 0 {
		c.Shards = DefaultShards
	}
	if c.Quorum == 0 {
		c.Quorum = 2*c.Nodes/3 + 1
	}
	if c.Block.MaxTxs == 0 {
		c.Block.MaxTxs = DefaultBlockMaxTxs
	}
	if c.Block.MaxBytes == 0 {
		c.Block.MaxBytes = DefaultBlockMaxBytes
	}
	if c.Block.MaxWait == 0 {
		c.Block.MaxWait = DefaultBlockMaxWait
	}
	if c.Leadership.SessionTimeout == 0 {
		c.Leadership.SessionTimeout = DefaultSession
	}
	if c.Leadership.TransactionTimeout == 0 {
		c.Leadership.TransactionTimeout = DefaultTxnTimeout
	}
	if c.Storage.Sync == nil {
		v := DefaultSync
		c.Storage.Sync = &v
	}

	kinds := map[Kind]int{}
	for _, w := range s.Workload {
		kinds[w.Kind]++
	}
	for i := range s.Workload {
		w := &s.Workload[i]
		if w.Name == "" {
			switch {
			case w.Kind == "":
				w.Name = fmt.Sprintf("workload-%d", i+1)
			case kinds[w.Kind] > 1:
				w.Name = fmt.Sprintf("%s-%d", w.Kind, i+1)
			default:
				w.Name = string(w.Kind)
			}
		}
		if w.Accounts == 0 {
			w.Accounts = DefaultAccounts
		}
		if w.Keys.IsZero() {
			w.Keys = KeyDist{Kind: defaultKeysKind}
		}
		if w.Client == "" {
			w.Client = DefaultClient
		}
		if w.Arrival == "" && (w.Rate != 0 || w.Ramp != nil) {
			w.Arrival = DefaultArrival
		}
		if w.ValueSize == 0 {
			w.ValueSize = DefaultValueSize
		}
		if w.Timeout == 0 {
			w.Timeout = DefaultTimeout
		}
		if w.VerifyProofs == nil {
			v := DefaultVerifyProofs
			w.VerifyProofs = &v
		}
		if w.Ramp != nil && w.Ramp.Over == 0 {
			w.Ramp.Over = s.Duration
		}
		if m := w.MaxRate; m != nil {
			if m.Stage == nil {
				st := DefaultMaxRateStage
				m.Stage = &st
			}
			if m.From == 0 {
				m.From = DefaultMaxRateFrom
			}
			if m.To == 0 {
				m.To = DefaultMaxRateTo
			}
			if m.Step == 0 {
				m.Step = DefaultMaxRateStep
			}
			if m.Precision == 0 {
				m.Precision = DefaultMaxRatePrec
			}
		}
	}
	if len(s.Report.Formats) == 0 {
		s.Report.Formats = append([]Format(nil), DefaultFormats...)
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
