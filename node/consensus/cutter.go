package consensus

import (
	"errors"
	"fmt"
	"time"
)

// The block bounds every configuration surface defaults to: the node's
// flags, the cluster file and the scenario format all take them from here.
const (
	DefaultMaxTxs   = 1000                  // CutterConfig.MaxTxs
	DefaultMaxBytes = 1 << 20               // CutterConfig.MaxBytes: 1 MiB
	DefaultMaxWait  = 20 * time.Millisecond // CutterConfig.MaxWait
)

// Hold is when a leader holds a shard's block open for more transactions
// (CutterConfig.Hold).
type Hold string

// Hold policies.
const (
	// HoldShard holds a shard's block while the shard's own previous
	// block is in flight (published, not yet committed by the leader's
	// node): at low load a round cuts at once.
	HoldShard Hold = "shard"
	// HoldLeader holds every shard's block while any block the leader
	// published is in flight. A round, its Kafka transaction and its WAL
	// sync carry more transactions at a moderate load, and a transaction
	// right behind another shard's block waits for that block to commit
	// (make run's scenario, session 47: accepted p50 446–516 µs against
	// 754–884, committed p50 2.74–3.61 ms against 2.78–3.45, CPU a
	// transaction 4% less).
	HoldLeader Hold = "leader"
	// DefaultHold is CutterConfig.Hold's default.
	DefaultHold = HoldShard
)

// HoldValues lists the hold policies, for the configuration surfaces.
var HoldValues = []string{string(HoldShard), string(HoldLeader)}

// Known reports whether h is one of the hold policies (the empty Hold,
// which means DefaultHold where a configuration takes defaults, is not).
func (h Hold) Known() bool { return h == HoldShard || h == HoldLeader }

// DefaultQuorum is the quorum of n validators when none is given: ⌊2n/3⌋+1,
// the smallest majority that tolerates ⌊(n-1)/3⌋ faulty ones.
func DefaultQuorum(n int) int { return 2*n/3 + 1 }

// CutterConfig bounds a block.
type CutterConfig struct {
	// MaxTxs closes a block when it holds this many entries. Zero means
	// DefaultMaxTxs (1000).
	MaxTxs int
	// MaxBytes closes a block when its entries reach this many bytes. Zero
	// means DefaultMaxBytes (1 MiB).
	MaxBytes int
	// MaxWait closes a non-empty block this long after its first entry
	// arrived (Tick). Zero means DefaultMaxWait (20ms). The node's leader
	// holds a block open only while a block is in flight (Hold: the
	// previous block of its shard, or with HoldLeader any it published),
	// so at low load it cuts at once and under load a block grows for at
	// most MaxWait.
	MaxWait time.Duration
	// Hold is which in-flight blocks hold a shard's block open (the
	// node's leader; the Cutter itself is told). Empty means DefaultHold
	// (HoldShard).
	Hold Hold
}

// EnsureDefaults fills zero fields with their documented defaults.
func (c *CutterConfig) EnsureDefaults() {
	if c.MaxTxs == 0 {
		c.MaxTxs = DefaultMaxTxs
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.MaxWait == 0 {
		c.MaxWait = DefaultMaxWait
	}
	if c.Hold == "" {
		c.Hold = DefaultHold
	}
}

// Validate reports a configuration that cannot work.
func (c *CutterConfig) Validate() error {
	var errs []error
	if c.MaxTxs < 1 {
		errs = append(errs, fmt.Errorf("max_txs %d < 1", c.MaxTxs))
	}
	if c.MaxBytes < 1 {
		errs = append(errs, fmt.Errorf("max_bytes %d < 1", c.MaxBytes))
	}
	if c.MaxWait < 0 {
		errs = append(errs, fmt.Errorf("max_wait %v < 0", c.MaxWait))
	}
	if c.Hold != "" && !c.Hold.Known() {
		errs = append(errs, fmt.Errorf("hold %q: want %s or %s", c.Hold, HoldShard, HoldLeader))
	}
	return errors.Join(errs...)
}

// Entry is one record of a shard's log, as the cutter sees it.
type Entry struct {
	Offset int64
	Raw    []byte
}

// Cutter accumulates a shard's log entries into blocks. It is a pure state
// machine: Add and Tick are given the time, and return a block's entries when
// one closes. The zero value is not usable; call NewCutter.
type Cutter struct {
	cfg     CutterConfig
	pending []Entry
	bytes   int
	first   time.Time // arrival of pending[0]
}

// NewCutter returns a cutter; cfg's zero fields take their defaults.
func NewCutter(cfg CutterConfig) *Cutter {
	cfg.EnsureDefaults()
	return &Cutter{cfg: cfg}
}

// Add appends an entry that arrived at now. It returns the closed block when
// the entry filled one (by count or bytes), else nil. An entry larger than
// MaxBytes makes a block of its own.
func (c *Cutter) Add(now time.Time, e Entry) []Entry {
	if len(c.pending) == 0 {
		c.first = now
	}
	c.pending = append(c.pending, e)
	c.bytes += len(e.Raw)
	if len(c.pending) >= c.cfg.MaxTxs || c.bytes >= c.cfg.MaxBytes {
		return c.cut()
	}
	return nil
}

// Tick returns the pending entries as a block if the oldest has waited
// MaxWait or longer at now, else nil.
func (c *Cutter) Tick(now time.Time) []Entry {
	if len(c.pending) > 0 && now.Sub(c.first) >= c.cfg.MaxWait {
		return c.cut()
	}
	return nil
}

// Deadline is when Tick will next close a block, if anything is pending.
func (c *Cutter) Deadline() (time.Time, bool) {
	if len(c.pending) == 0 {
		return time.Time{}, false
	}
	return c.first.Add(c.cfg.MaxWait), true
}

// Flush returns the pending entries as a block whatever their wait, or nil
// if none are pending. A leader that cuts whenever it has entries (rather
// than waiting to fill a block) calls it after adding a batch.
func (c *Cutter) Flush() []Entry {
	if len(c.pending) == 0 {
		return nil
	}
	return c.cut()
}

// Hold reports whether a leader keeps the pending block open at now
// rather than flushing it, given whether the previous block of the shard
// is in flight (published, and not yet committed by the leader's node):
// only then, and only while the oldest pending entry has waited less than
// MaxWait (a full block was already closed by Add). Under load a block
// grows with what arrives while the previous one commits, so that more
// transactions share each block's costs; at low load nothing is in flight
// and the leader flushes at once. Nothing pending: false.
func (c *Cutter) Hold(now time.Time, inflight bool) bool {
	return inflight && len(c.pending) > 0 && now.Sub(c.first) < c.cfg.MaxWait
}

// Pending is the number of entries waiting for the next block.
func (c *Cutter) Pending() int { return len(c.pending) }

func (c *Cutter) cut() []Entry {
	b := c.pending
	c.pending = nil
	c.bytes = 0
	return b
}
