// Package cache holds the node's materialized views over committed state, in
// the spirit of Noria: an account view (balance, nonce and the latest proof),
// the latest blocks of each shard and the recent transactions of each
// account. Views are maintained incrementally from each committed block's
// delta (no blanket invalidation); a miss reads through to storage and fills
// the view. Entries live in otter v2; hit ratio and size are metrics, and
// Optimize adapts the capacity to the observed hit ratio within a budget.
package cache

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/maypok86/otter/v2"
	"github.com/maypok86/otter/v2/stats"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rustorium/rustorium/node/consensus"
	"github.com/rustorium/rustorium/node/merkle"
	"github.com/rustorium/rustorium/node/state"
	"github.com/rustorium/rustorium/node/storage"
	"github.com/rustorium/rustorium/node/tx"
)

// Store is what a miss reads through to: the node's storage.
type Store interface {
	// Read returns a shard's value at key with a proof against the returned
	// root; for an absent key, a non-membership proof and storage.ErrNotFound.
	Read(shard uint32, key []byte) ([]byte, *merkle.Proof, fr.Element, error)
}

// Options configures the views. The zero value is usable.
type Options struct {
	// Accounts is the initial capacity of the account view, in entries.
	// Zero means 65536.
	Accounts int
	// MaxAccounts bounds what Optimize may grow the account view to (the
	// memory budget, about 3 KiB an entry with its proof). Zero means 16×
	// Accounts.
	MaxAccounts int
	// TargetHitRatio is the hit ratio Optimize aims for. Zero means 0.9.
	TargetHitRatio float64
	// Blocks is how many latest headers are kept per shard. Zero means 64.
	Blocks int
	// Recent is how many transaction ids are kept per account. Zero means 16.
	Recent int
	// RecentAccounts bounds how many accounts keep recent transactions (the
	// least used are evicted). Zero means Accounts.
	RecentAccounts int
	// Registerer receives the views' metrics. Nil keeps them unregistered.
	Registerer prometheus.Registerer
}

func (o *Options) ensureDefaults() {
	if o.Accounts <= 0 {
		o.Accounts = 65536
	}
	if o.MaxAccounts <= 0 {
		o.MaxAccounts = 16 * o.Accounts
	}
	if o.TargetHitRatio <= 0 || o.TargetHitRatio >= 1 {
		o.TargetHitRatio = 0.9
	}
	if o.Blocks <= 0 {
		o.Blocks = 64
	}
	if o.Recent <= 0 {
		o.Recent = 16
	}
	if o.RecentAccounts <= 0 {
		o.RecentAccounts = o.Accounts
	}
}

// Account is the account view's entry: an account's state after a block, and
// the proof of it against that block's shard root.
type Account struct {
	state.Account
	Exists bool     // false: no such account (the proof is of absence)
	Height uint64   // the block this view is as of; 0 when read before any delta
	Root   [32]byte // the shard root the proof is against
	Proof  []byte   // merkle.Proof binary encoding
}

// Delta is what a committed block changed, as the write path pushes it.
type Delta struct {
	Header consensus.Header
	// Writes are the block's state writes with, aligned, the proof of each
	// key's final value against Header.StateRoot.
	Writes []storage.Write
	Proofs [][]byte
	// Senders[i] is the account (public key) that sent IDs[i], or nil for
	// transactions without an account (puts).
	IDs     []tx.ID
	Senders [][]byte
}

// Views are the node's materialized views. Methods are safe for concurrent
// use.
type Views struct {
	opts     Options
	store    Store
	shards   int
	accounts *otter.Cache[string, Account]
	counter  *stats.Counter

	recent *otter.Cache[string, []tx.ID] // per account, newest last, at most opts.Recent

	mu      sync.Mutex
	blocks  [][]consensus.Header // per shard, newest last, at most opts.Blocks
	lastHit uint64               // Optimize's window
	lastMis uint64
}

// ErrShard: a shard number outside the node's shards.
var ErrShard = errors.New("cache: shard out of range")

// New returns empty views over store for a node with the given shard count.
func New(store Store, shards int, opts Options) (*Views, error) {
	opts.ensureDefaults()
	counter := stats.NewCounter()
	c, err := otter.New(&otter.Options[string, Account]{MaximumSize: opts.Accounts, StatsRecorder: counter})
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	recent, err := otter.New(&otter.Options[string, []tx.ID]{MaximumSize: opts.RecentAccounts})
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	v := &Views{opts: opts, store: store, shards: shards, accounts: c, counter: counter,
		blocks: make([][]consensus.Header, shards), recent: recent}
	if opts.Registerer != nil {
		for _, g := range []prometheus.Collector{
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rustorium_cache_hit_ratio", Help: "Account view hit ratio since start."},
				func() float64 { return v.counter.Snapshot().HitRatio() }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rustorium_cache_entries", Help: "Entries in the account view."},
				func() float64 { return float64(v.accounts.EstimatedSize()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rustorium_cache_capacity", Help: "Capacity of the account view, in entries."},
				func() float64 { return float64(v.accounts.GetMaximum()) }),
		} {
			if err := opts.Registerer.Register(g); err != nil {
				return nil, fmt.Errorf("cache: %w", err)
			}
		}
	}
	return v, nil
}

// Account returns the account view of pub in shard: from the view when it is
// there, else read through to storage (value and proof) and filled.
func (v *Views) Account(ctx context.Context, shard uint32, pub []byte) (Account, error) {
	if int(shard) >= v.shards {
		return Account{}, fmt.Errorf("%w: %d", ErrShard, shard)
	}
	key := state.AccountKey(pub)
	return v.accounts.Get(ctx, string(key), otter.LoaderFunc[string, Account](func(ctx context.Context, _ string) (Account, error) {
		val, p, root, err := v.store.Read(shard, key)
		var a Account
		switch {
		case errors.Is(err, storage.ErrNotFound):
		case err != nil:
			return Account{}, err
		default:
			if a.Account, err = state.DecodeAccount(val); err != nil {
				return Account{}, err
			}
			a.Exists = true
		}
		if a.Proof, err = p.MarshalBinary(); err != nil {
			return Account{}, err
		}
		a.Root = root.Bytes()
		return a, nil
	}))
}

// Apply pushes a committed block's delta into the views: accounts it wrote
// that are in the view are replaced by their new state and proof (accounts
// not in the view stay out: a miss will read them); the header joins its
// shard's latest blocks; each sender's recent transactions gain its ids.
func (v *Views) Apply(d Delta) error {
	if int(d.Header.Shard) >= v.shards {
		return fmt.Errorf("%w: %d", ErrShard, d.Header.Shard)
	}
	if len(d.Proofs) != len(d.Writes) || len(d.Senders) != len(d.IDs) {
		return fmt.Errorf("cache: delta of block %d: %d writes, %d proofs, %d ids, %d senders", d.Header.Height, len(d.Writes), len(d.Proofs), len(d.IDs), len(d.Senders))
	}
	for i, w := range d.Writes {
		if !state.IsAccountKey(w.Key) {
			continue
		}
		if _, ok := v.accounts.GetEntryQuietly(string(w.Key)); !ok {
			continue
		}
		acct, err := state.DecodeAccount(w.Value)
		if err != nil {
			return fmt.Errorf("cache: block %d: %w", d.Header.Height, err)
		}
		v.accounts.Set(string(w.Key), Account{Account: acct, Exists: true, Height: d.Header.Height, Root: d.Header.StateRoot, Proof: d.Proofs[i]})
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	bs := append(v.blocks[d.Header.Shard], d.Header)
	if len(bs) > v.opts.Blocks {
		bs = bs[len(bs)-v.opts.Blocks:]
	}
	v.blocks[d.Header.Shard] = bs
	for i, s := range d.Senders {
		if s == nil {
			continue
		}
		id := d.IDs[i]
		v.recent.Compute(string(s), func(old []tx.ID, _ bool) ([]tx.ID, otter.ComputeOp) {
			r := append(append(make([]tx.ID, 0, len(old)+1), old...), id) // never mutate a slice readers hold
			if len(r) > v.opts.Recent {
				r = r[len(r)-v.opts.Recent:]
			}
			return r, otter.WriteOp
		})
	}
	return nil
}

// LatestBlocks returns up to n of a shard's latest headers, newest first.
func (v *Views) LatestBlocks(shard uint32, n int) []consensus.Header {
	v.mu.Lock()
	defer v.mu.Unlock()
	if int(shard) >= v.shards {
		return nil
	}
	bs := v.blocks[shard]
	out := make([]consensus.Header, 0, min(n, len(bs)))
	for i := len(bs) - 1; i >= 0 && len(out) < n; i-- {
		out = append(out, bs[i])
	}
	return out
}

// Recent returns an account's recent transaction ids, newest first.
func (v *Views) Recent(pub []byte) []tx.ID {
	r, _ := v.recent.GetIfPresent(string(pub))
	out := make([]tx.ID, len(r))
	for i, id := range r {
		out[len(r)-1-i] = id
	}
	return out
}

// Stats are the account view's counters.
type Stats struct {
	Hits, Misses uint64
	Entries      int
	Capacity     uint64
}

// Stats returns the account view's counters since start.
func (v *Views) Stats() Stats {
	s := v.counter.Snapshot()
	return Stats{Hits: s.Hits, Misses: s.Misses, Entries: v.accounts.EstimatedSize(), Capacity: v.accounts.GetMaximum()}
}

// Optimize adapts the account view's capacity to the hit ratio seen since
// the last call: below the target while the view is full, it doubles the
// capacity (up to MaxAccounts); well above it (at most half the misses the
// target allows) with room to spare, it halves it (down to Accounts). It
// returns the new capacity. Call it now and then, e.g. once a minute.
func (v *Views) Optimize() uint64 {
	s := v.counter.Snapshot()
	v.mu.Lock()
	hits, misses := s.Hits-v.lastHit, s.Misses-v.lastMis
	v.lastHit, v.lastMis = s.Hits, s.Misses
	v.mu.Unlock()
	capacity := v.accounts.GetMaximum()
	total := hits + misses
	if total == 0 {
		return capacity
	}
	ratio := float64(hits) / float64(total)
	full := uint64(v.accounts.EstimatedSize()) >= capacity*9/10
	switch {
	case ratio < v.opts.TargetHitRatio && full && capacity < uint64(v.opts.MaxAccounts):
		capacity = min(2*capacity, uint64(v.opts.MaxAccounts))
	case 1-ratio < (1-v.opts.TargetHitRatio)/2 && !full && capacity > uint64(v.opts.Accounts):
		capacity = max(capacity/2, uint64(v.opts.Accounts))
	}
	v.accounts.SetMaximum(capacity)
	return capacity
}
