package consensus

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math"
	"sort"
)

// Errors of the finality tracker. Benign inputs (a duplicate vote, a vote
// for a height already final, a vote for a halted shard) are not errors:
// they are ignored and counted in FinalityStats.
var (
	// ErrShard: a shard number outside 0..Shards-1.
	ErrShard = errors.New("consensus: shard out of range")
	// ErrNotValidator: an attestation signed by a key outside the validator
	// set. It is dropped.
	ErrNotValidator = errors.New("consensus: signer is not a validator")
	// ErrTooFarAhead: a height more than Window above the shard's finalized
	// height. It is dropped; the sender must send it again later (see
	// Finality.Own), or the caller must wait before executing further.
	ErrTooFarAhead = errors.New("consensus: height too far ahead of finality")
	// ErrHalted: Local for a shard that halted after a divergence.
	ErrHalted = errors.New("consensus: shard halted after a state root divergence")
	// ErrLocalConflict: Local called twice for one height with different
	// results; the caller's execution is not deterministic.
	ErrLocalConflict = errors.New("consensus: conflicting local results for one height")
)

// AlarmKind says what an Alarm is about.
type AlarmKind uint8

// Alarm kinds.
const (
	// AlarmDivergence: a quorum attests a block or root different from the
	// one this node computed. The shard halts: no further Final for it.
	AlarmDivergence AlarmKind = 1
	// AlarmEquivocation: a validator signed two different votes for one
	// height. Its first vote stays counted, the second is dropped; the
	// quorum intersection keeps finality safe while fewer than a third of
	// the validators equivocate.
	AlarmEquivocation AlarmKind = 2
	// AlarmStalled: the votes at the next height to finalize are split so
	// that no vote can reach a quorum, even with the validators that have
	// not voted yet. The shard cannot make progress.
	AlarmStalled AlarmKind = 3
)

func (k AlarmKind) String() string {
	switch k {
	case AlarmDivergence:
		return "divergence"
	case AlarmEquivocation:
		return "equivocation"
	case AlarmStalled:
		return "stalled"
	default:
		return fmt.Sprintf("alarm(%d)", uint8(k))
	}
}

// Alarm reports a safety problem at (Shard, Height).
type Alarm struct {
	Shard  uint32
	Height uint64
	Kind   AlarmKind
	// Ours and Theirs: for a divergence, this node's result and the
	// quorum's; for an equivocation, the signer's first and second vote; for
	// a stall, this node's result (zero if it has none yet) and the vote with
	// the most signers.
	Ours, Theirs Vote
	// Signer is the equivocating validator (equivocation only).
	Signer ed25519.PublicKey
	// Evidence holds the two conflicting signed attestations (equivocation
	// only): anyone can verify them.
	Evidence []Attestation
}

// Final says that a quorum of validators, this node included, attested
// Vote at (Shard, Height): the block can be committed. Finals of a shard
// come in height order with no gaps.
type Final struct {
	Shard     uint32
	Height    uint64
	BlockHash [32]byte
	StateRoot [32]byte
	// Signers are the validators whose matching attestations were counted,
	// in validator-set order.
	Signers []ed25519.PublicKey
}

// Output is what one input to the tracker produced.
type Output struct {
	// Broadcast holds this node's signed attestations, to send to every peer.
	Broadcast []Attestation
	// Final holds newly final blocks, in height order per shard.
	Final []Final
	// Alarms holds newly raised alarms.
	Alarms []Alarm
}

// Empty reports whether o holds nothing.
func (o *Output) Empty() bool { return len(o.Broadcast)+len(o.Final)+len(o.Alarms) == 0 }

// FinalityConfig configures a Finality tracker.
type FinalityConfig struct {
	// Key is this node's identity; it signs the attestations Local returns.
	// Required. A node whose key is not a validator observes: its local
	// results are compared with the quorum's but it neither votes nor
	// broadcasts.
	Key ed25519.PrivateKey
	// Validators is the validator set: distinct ed25519 public keys.
	// Required. Final.Signers follow this order.
	Validators []ed25519.PublicKey
	// Quorum is how many matching attestations make a block final. Zero
	// means ⌊2N/3⌋+1 for N validators; otherwise it must be in 1..N.
	Quorum int
	// Shards is the number of shards; attestations for other shard numbers
	// are refused with ErrShard. Required (at least 1).
	Shards int
	// Window bounds memory: votes and local results more than Window heights
	// above a shard's finalized height are refused with ErrTooFarAhead.
	// Zero means 4096.
	Window uint64
	// Retain is how many of this node's own attestations at and below the
	// finalized height Own keeps returning, so that a peer that missed them
	// (restarted, partitioned) can be sent them again. Zero means 1024.
	Retain uint64
}

// EnsureDefaults fills zero fields with their documented defaults.
func (c *FinalityConfig) EnsureDefaults() {
	if c.Quorum == 0 {
		c.Quorum = DefaultQuorum(len(c.Validators))
	}
	if c.Window == 0 {
		c.Window = 4096
	}
	if c.Retain == 0 {
		c.Retain = 1024
	}
}

// Validate reports a configuration that cannot work.
func (c *FinalityConfig) Validate() error {
	var errs []error
	if len(c.Key) != ed25519.PrivateKeySize {
		errs = append(errs, errors.New("key is not an ed25519 private key"))
	}
	if len(c.Validators) == 0 {
		errs = append(errs, errors.New("no validators"))
	}
	seen := make(map[string]bool, len(c.Validators))
	for i, v := range c.Validators {
		if len(v) != ed25519.PublicKeySize {
			errs = append(errs, fmt.Errorf("validator %d is not an ed25519 public key", i))
			continue
		}
		if seen[string(v)] {
			errs = append(errs, fmt.Errorf("validator %d (%x) is listed twice", i, []byte(v)))
		}
		seen[string(v)] = true
	}
	if c.Quorum < 1 || c.Quorum > len(c.Validators) {
		errs = append(errs, fmt.Errorf("quorum %d not in 1..%d", c.Quorum, len(c.Validators)))
	}
	if c.Shards < 1 {
		errs = append(errs, fmt.Errorf("shards %d < 1", c.Shards))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("consensus: finality config: %w", err)
	}
	return nil
}

// FinalityStats counts the tracker's inputs by outcome.
type FinalityStats struct {
	Accepted     uint64 // votes recorded (this node's own included)
	Duplicate    uint64 // the same vote again from the same signer
	Stale        uint64 // heights already final
	Halted       uint64 // votes for a halted shard
	NotValidator uint64
	TooFarAhead  uint64
	BadSignature uint64
	BadShard     uint64
	Equivocation uint64
}

// Finality decides when blocks are final from this node's re-execution
// results and its peers' attestations. It is a deterministic state machine
// in the style of etcd/raft: no goroutines, no clocks, no I/O; every input
// returns an Output and the caller does the sending, committing and
// alarming. It is not safe for concurrent use.
//
// Per shard, a height h becomes final when h-1 is final (or h is the first
// height above the restored one), a quorum of validators attested the same
// block hash and state root for h, and this node's own result for h is that
// same vote. If a quorum agrees on another vote, the node diverged: an
// AlarmDivergence is raised and the shard halts. Decisions are taken in
// height order, so a divergence at h+1 is seen once h is final.
type Finality struct {
	cfg    FinalityConfig
	self   ed25519.PublicKey
	selfIx int // index in Validators, or -1
	index  map[string]int
	shards []shardState
	stats  FinalityStats
}

type shardState struct {
	final  uint64 // last final height
	halted bool
	rounds map[uint64]*round // heights above final
	own    []Attestation     // this node's attestations, by increasing height
}

// round is the voting state of one height.
type round struct {
	local   *Vote
	votes   []*Attestation // by validator index; nil: no vote yet
	alarmed []bool         // by validator index: equivocation already reported
	stalled bool           // stall already reported
}

// NewFinality returns a tracker; cfg's zero fields take their defaults.
// Every shard starts with height 0 final; see Restore.
func NewFinality(cfg FinalityConfig) (*Finality, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	f := &Finality{
		cfg:    cfg,
		self:   cfg.Key.Public().(ed25519.PublicKey),
		selfIx: -1,
		index:  make(map[string]int, len(cfg.Validators)),
		shards: make([]shardState, cfg.Shards),
	}
	for i, v := range cfg.Validators {
		f.index[string(v)] = i
		if bytes.Equal(v, f.self) {
			f.selfIx = i
		}
	}
	for i := range f.shards {
		f.shards[i].rounds = make(map[uint64]*round)
	}
	return f, nil
}

// Quorum is the number of matching attestations that make a block final.
func (f *Finality) Quorum() int { return f.cfg.Quorum }

// Finalized is the shard's highest final height (0 before any).
func (f *Finality) Finalized(shard uint32) uint64 {
	if int64(shard) >= int64(len(f.shards)) {
		return 0
	}
	return f.shards[shard].final
}

// Halted reports whether the shard stopped after a divergence.
func (f *Finality) Halted(shard uint32) bool {
	return int64(shard) < int64(len(f.shards)) && f.shards[shard].halted
}

// Stats returns the input counters.
func (f *Finality) Stats() FinalityStats { return f.stats }

// Own returns this node's attestations for the shard that are not final
// yet or are among the last Retain final heights, in height order. A runner
// sends them again to a peer it (re)connects to; receivers drop duplicates.
func (f *Finality) Own(shard uint32) []Attestation {
	return f.OwnFrom(shard, 0, math.MaxInt)
}

// OwnFrom returns at most max of this node's attestations for the shard at
// heights from and above (those Own would return), in height order: what a
// peer stuck at height from asks for.
func (f *Finality) OwnFrom(shard uint32, from uint64, max int) []Attestation {
	if int64(shard) >= int64(len(f.shards)) || max <= 0 {
		return nil
	}
	own := f.shards[shard].own
	i := sort.Search(len(own), func(i int) bool { return own[i].Height >= from })
	j := len(own)
	if max < j-i { // (i+max may overflow)
		j = i + max
	}
	return append([]Attestation(nil), own[i:j]...)
}

// Restore declares every height up to finalized final for the shard, as a
// node does at start from what it has committed. Votes at or below it are
// dropped from then on. A height at or below the current finalized one
// changes nothing. Restoring can make the next height final at once.
func (f *Finality) Restore(shard uint32, finalized uint64) (Output, error) {
	var out Output
	st, err := f.shard(shard)
	if err != nil {
		return out, err
	}
	if finalized <= st.final {
		return out, nil
	}
	st.final = finalized
	for h := range st.rounds {
		if h <= finalized {
			delete(st.rounds, h)
		}
	}
	f.pruneOwn(st)
	f.advance(shard, st, &out)
	return out, nil
}

// Local records this node's own result for a block: re-executing blockHash
// at (shard, height) gave root. A validator returns its signed attestation
// in Output.Broadcast (once per height). Calling it again with the same
// result is a no-op; a different result is ErrLocalConflict.
func (f *Finality) Local(shard uint32, height uint64, blockHash, root [32]byte) (Output, error) {
	var out Output
	st, err := f.shard(shard)
	if err != nil {
		return out, err
	}
	switch {
	case st.halted:
		return out, fmt.Errorf("%w: shard %d", ErrHalted, shard)
	case height <= st.final:
		f.stats.Stale++
		return out, nil
	case height-st.final > f.cfg.Window:
		f.stats.TooFarAhead++
		return out, fmt.Errorf("%w: shard %d height %d, finalized %d, window %d", ErrTooFarAhead, shard, height, st.final, f.cfg.Window)
	}
	v := Vote{BlockHash: blockHash, StateRoot: root}
	r := f.round(st, height)
	if r.local != nil {
		if *r.local != v {
			return out, fmt.Errorf("%w: shard %d height %d", ErrLocalConflict, shard, height)
		}
		return out, nil
	}
	r.local = &v
	if f.selfIx >= 0 {
		a := Attestation{Shard: shard, Height: height, BlockHash: blockHash, StateRoot: root}
		a.Sign(f.cfg.Key)
		// A vote under our key can already be there (sent by an earlier run
		// of this node): the same one is a duplicate, another one is an
		// equivocation of ours and is not broadcast.
		if f.vote(shard, height, r, f.selfIx, &a, &out) {
			f.addOwn(st, a)
			out.Broadcast = append(out.Broadcast, a)
		}
	}
	f.advance(shard, st, &out)
	return out, nil
}

// Receive records a peer's attestation. It verifies the signature itself
// (callers need not), so it costs one ed25519 verification for a vote that
// is new and in the window; refused inputs cost none. Errors say why an
// attestation was dropped; duplicates, stale heights and halted shards are
// dropped silently (see Stats).
func (f *Finality) Receive(a Attestation) (Output, error) {
	var out Output
	st, err := f.shard(a.Shard)
	if err != nil {
		return out, err
	}
	ix, ok := f.index[string(a.Signer)]
	switch {
	case !ok:
		f.stats.NotValidator++
		return out, fmt.Errorf("%w: %x", ErrNotValidator, []byte(a.Signer))
	case st.halted:
		f.stats.Halted++
		return out, nil
	case a.Height <= st.final:
		f.stats.Stale++
		return out, nil
	case a.Height-st.final > f.cfg.Window:
		f.stats.TooFarAhead++
		return out, fmt.Errorf("%w: shard %d height %d, finalized %d, window %d", ErrTooFarAhead, a.Shard, a.Height, st.final, f.cfg.Window)
	}
	r := f.round(st, a.Height)
	if prev := r.votes[ix]; prev != nil && prev.Vote() == a.Vote() {
		f.stats.Duplicate++ // no need to verify it again
		return out, nil
	}
	if err := a.Verify(); err != nil {
		f.stats.BadSignature++
		if r.local == nil && !r.any() {
			delete(st.rounds, a.Height) // created for nothing
		}
		return out, err
	}
	a.Signer = append(ed25519.PublicKey(nil), a.Signer...)
	a.Sig = append([]byte(nil), a.Sig...)
	f.vote(a.Shard, a.Height, r, ix, &a, &out)
	f.advance(a.Shard, st, &out)
	return out, nil
}

// vote records validator ix's verified attestation a in r. It reports
// whether a was new (not a duplicate nor an equivocation).
func (f *Finality) vote(shard uint32, height uint64, r *round, ix int, a *Attestation, out *Output) bool {
	prev := r.votes[ix]
	switch {
	case prev == nil:
		r.votes[ix] = a
		f.stats.Accepted++
		return true
	case prev.Vote() == a.Vote():
		f.stats.Duplicate++
		return false
	}
	f.stats.Equivocation++
	if !r.alarmed[ix] {
		r.alarmed[ix] = true
		out.Alarms = append(out.Alarms, Alarm{
			Shard: shard, Height: height, Kind: AlarmEquivocation,
			Ours: prev.Vote(), Theirs: a.Vote(),
			Signer:   f.cfg.Validators[ix],
			Evidence: []Attestation{*prev, *a},
		})
	}
	return false
}

// advance finalizes the shard's next heights while it can.
func (f *Finality) advance(shard uint32, st *shardState, out *Output) {
	for !st.halted {
		h := st.final + 1
		r := st.rounds[h]
		if r == nil {
			return
		}
		top, count, voted := r.tally()
		if count < f.cfg.Quorum {
			n := len(f.cfg.Validators)
			if !r.stalled && count+(n-voted) < f.cfg.Quorum {
				r.stalled = true
				a := Alarm{Shard: shard, Height: h, Kind: AlarmStalled, Theirs: top}
				if r.local != nil {
					a.Ours = *r.local
				}
				out.Alarms = append(out.Alarms, a)
			}
			return
		}
		if r.local == nil {
			return // final for the others; this node has not executed it yet
		}
		if *r.local != top {
			st.halted = true
			out.Alarms = append(out.Alarms, Alarm{Shard: shard, Height: h, Kind: AlarmDivergence, Ours: *r.local, Theirs: top})
			return
		}
		fin := Final{Shard: shard, Height: h, BlockHash: top.BlockHash, StateRoot: top.StateRoot}
		for _, v := range r.votes {
			if v != nil && v.Vote() == top {
				fin.Signers = append(fin.Signers, v.Signer)
			}
		}
		out.Final = append(out.Final, fin)
		st.final = h
		delete(st.rounds, h)
		f.pruneOwn(st)
	}
}

// tally returns the vote with the most signers (the first such in validator
// order on a tie), its count, and how many validators voted at all.
func (r *round) tally() (top Vote, count, voted int) {
	for i, a := range r.votes {
		if a == nil {
			continue
		}
		voted++
		v := a.Vote()
		n := 0
		for _, b := range r.votes[i:] {
			if b != nil && b.Vote() == v {
				n++
			}
		}
		if n > count {
			top, count = v, n
		}
	}
	return top, count, voted
}

func (r *round) any() bool {
	for _, a := range r.votes {
		if a != nil {
			return true
		}
	}
	return false
}

func (f *Finality) shard(shard uint32) (*shardState, error) {
	if int64(shard) >= int64(len(f.shards)) {
		f.stats.BadShard++
		return nil, fmt.Errorf("%w: %d (shards: %d)", ErrShard, shard, len(f.shards))
	}
	return &f.shards[shard], nil
}

func (f *Finality) round(st *shardState, h uint64) *round {
	r := st.rounds[h]
	if r == nil {
		n := len(f.cfg.Validators)
		r = &round{votes: make([]*Attestation, n), alarmed: make([]bool, n)}
		st.rounds[h] = r
	}
	return r
}

func (f *Finality) addOwn(st *shardState, a Attestation) {
	i := sort.Search(len(st.own), func(i int) bool { return st.own[i].Height >= a.Height })
	st.own = append(st.own, Attestation{})
	copy(st.own[i+1:], st.own[i:])
	st.own[i] = a
}

// pruneOwn drops own attestations Retain or more heights below the
// finalized one.
func (f *Finality) pruneOwn(st *shardState) {
	if st.final < f.cfg.Retain {
		return
	}
	floor := st.final - f.cfg.Retain // keep heights > floor
	i := sort.Search(len(st.own), func(i int) bool { return st.own[i].Height > floor })
	if i > 0 {
		st.own = append(st.own[:0], st.own[i:]...)
	}
}
