package loadgen

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rustorium/rustorium/node/tx"
)

// Keys picks key indexes in [0, N) from a seeded source. Not safe for
// concurrent use.
type Keys interface {
	Next() uint64
}

// Uniform picks every key with the same probability.
type Uniform struct {
	N uint64
	R *rand.Rand
}

// Next implements Keys.
func (u *Uniform) Next() uint64 { return u.R.Uint64N(u.N) }

// Sequential picks 0, 1, …, N-1, 0, …
type Sequential struct {
	N, i uint64
}

// Next implements Keys.
func (s *Sequential) Next() uint64 {
	k := s.i % s.N
	s.i++
	return k
}

// Zipf picks key k with probability proportional to 1/(k+1)^S (S > 1): key 0
// is the hottest.
type Zipf struct {
	z *rand.Zipf
}

// NewZipf returns a Zipf over [0, n) with exponent s > 1.
func NewZipf(r *rand.Rand, s float64, n uint64) (*Zipf, error) {
	if !(s > 1) || n == 0 {
		return nil, fmt.Errorf("loadgen: zipf(%v) over %d keys: want s > 1 and keys > 0", s, n)
	}
	return &Zipf{z: rand.NewZipf(r, s, 1, n-1)}, nil
}

// Next implements Keys.
func (z *Zipf) Next() uint64 { return z.z.Uint64() }

// NewKeys returns the named distribution ("uniform", "sequential",
// "zipf") over n keys, seeded.
func NewKeys(kind string, s float64, n uint64, seed uint64) (Keys, error) {
	if n == 0 {
		return nil, fmt.Errorf("loadgen: key space is empty")
	}
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	switch kind {
	case "", "uniform":
		return &Uniform{N: n, R: r}, nil
	case "sequential":
		return &Sequential{N: n}, nil
	case "zipf":
		return NewZipf(r, s, n)
	default:
		return nil, fmt.Errorf("loadgen: unknown key distribution %q", kind)
	}
}

// KeyName is the put key of key index k.
func KeyName(k uint64) []byte { return fmt.Appendf(nil, "key-%010d", k) }

// Puts describes a put workload's transactions. The i-th transaction is a
// pure function of the fields and i, so a run is reproducible from its seed.
type Puts struct {
	ChainID uint32
	Signer  ed25519.PrivateKey
	Keys    Keys // drawn in order, once per transaction
	// KeyNames, if set, are the keys of the transactions in order (a
	// replayed trace's); they override Keys.
	KeyNames  []string
	ValueSize int
	Seed      uint64
	// Salt separates the transaction ids of different runs against the same
	// broker: it goes into each nonce's high bits. Workers of one split
	// load must share it.
	Salt uint32
	// Split, if set, keeps only this worker's share: transaction i of the
	// whole load when Split.Owns(i).
	Split Split
	// Of is set by Generate: the whole load's index of each transaction it
	// returned.
	Of []uint64
}

// Generate builds the n put transactions of the whole load, and signs and
// returns the encodings of the Split's share across GOMAXPROCS goroutines,
// calling progress (if not nil) now and then with the number signed so far.
// Signing happens here, before measuring; Stream signs them during a run.
func (p *Puts) Generate(ctx context.Context, n int, progress func(done int)) ([][]byte, error) {
	p.Of = nil
	txs, keys, err := collect(ctx, p.iter(n, func(i uint64) { p.Of = append(p.Of, i) }))
	if err != nil {
		return nil, err
	}
	return SignAll(ctx, txs, func(i int) ed25519.PrivateKey { return keys[i] }, progress)
}

// Plan sets Of for the n sends of the whole load, without building or
// signing anything: what a run needs to schedule before Stream signs.
func (p *Puts) Plan(n int) {
	p.Of = nil
	if p.Split.Whole() {
		return
	}
	for i := range n {
		if p.Split.Owns(uint64(i)) {
			p.Of = append(p.Of, uint64(i))
		}
	}
}

// iter returns the Split's share of the n puts of the whole load, in order,
// telling own (if not nil) the whole load's index of each. The key draws
// are the whole load's, so each iteration needs Keys afresh.
func (p *Puts) iter(n int, own func(i uint64)) txIter {
	i := 0
	return func() (*tx.Tx, ed25519.PrivateKey, bool) {
		for ; i < n; i++ {
			var key []byte
			if i < len(p.KeyNames) {
				key = []byte(p.KeyNames[i])
			} else {
				key = KeyName(p.Keys.Next()) // drawn for every i: the key sequence is the whole load's
			}
			if !p.Split.Owns(uint64(i)) {
				continue
			}
			v := make([]byte, p.ValueSize)
			var mark [8]byte // values of fewer than 8 bytes take its first ones
			binary.LittleEndian.PutUint64(mark[:], p.Seed^uint64(i)*0x9e3779b97f4a7c15)
			copy(v, mark[:])
			t := &tx.Tx{
				Kind: tx.KindPut, ChainID: p.ChainID,
				Nonce: uint64(p.Salt)<<32 | uint64(i),
				Key:   key, Value: v,
			}
			if own != nil {
				own(uint64(i))
			}
			i++
			return t, p.Signer, true
		}
		return nil, nil, false
	}
}

// txIter yields a workload's transactions in send order with the key that
// signs each; ok false after the last.
type txIter func() (t *tx.Tx, key ed25519.PrivateKey, ok bool)

// collect drains it.
func collect(ctx context.Context, it txIter) ([]*tx.Tx, []ed25519.PrivateKey, error) {
	var (
		txs  []*tx.Tx
		keys []ed25519.PrivateKey
	)
	for {
		if len(txs)%(1<<16) == 0 && ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		t, k, ok := it()
		if !ok {
			return txs, keys, nil
		}
		txs, keys = append(txs, t), append(keys, k)
	}
}

// Transfers describes a transfer workload over a set of accounts: each
// transaction moves Amount from an account drawn from Keys to another one
// drawn uniformly, with the sender's next nonce (in generation order).
type Transfers struct {
	ChainID  uint32
	Accounts []ed25519.PrivateKey
	Keys     Keys // picks the sender's index
	Amount   uint64
	Seed     uint64
	// Split, if set, keeps only this worker's share: the transfers whose
	// sender's index it owns, so that a sender's nonces stay on one worker.
	Split Split
	// Senders is set by Generate: the sender's index of each transfer (to
	// keep one sender's transfers on one connection, in nonce order).
	Senders []uint32
	// Of is set by Generate: the whole load's index of each transfer.
	Of []uint64
}

// AccountKeys derives n account keys from seed, the same for every run with
// that seed.
func AccountKeys(seed uint64, n int) []ed25519.PrivateKey {
	keys := make([]ed25519.PrivateKey, n)
	for i := range keys {
		var s [ed25519.SeedSize]byte
		binary.LittleEndian.PutUint64(s[:], seed)
		binary.LittleEndian.PutUint64(s[8:], uint64(i))
		s[16] = 'a'
		keys[i] = ed25519.NewKeyFromSeed(s[:])
	}
	return keys
}

// Generate builds the n transfers of the whole load and signs the Split's
// share, like Puts.Generate.
func (t *Transfers) Generate(ctx context.Context, n int, progress func(done int)) ([][]byte, error) {
	it, err := t.iter(n, t.record())
	if err != nil {
		return nil, err
	}
	txs, keys, err := collect(ctx, it)
	if err != nil {
		return nil, err
	}
	return SignAll(ctx, txs, func(i int) ed25519.PrivateKey { return keys[i] }, progress)
}

// Plan sets Senders and Of for the n transfers of the whole load without
// signing them (the draws alone), for a run that streams the signing.
func (t *Transfers) Plan(n int) error {
	it, err := t.iter(n, t.record())
	if err != nil {
		return err
	}
	for _, _, ok := it(); ok; _, _, ok = it() {
	}
	return nil
}

// record resets Senders and Of and returns an iter callback that fills them.
func (t *Transfers) record() func(i uint64, sender uint32) {
	t.Senders, t.Of = nil, nil
	return func(i uint64, sender uint32) { t.Senders, t.Of = append(t.Senders, sender), append(t.Of, i) }
}

// iter returns the Split's share of the n transfers of the whole load, in
// order, telling own (if not nil) the whole load's index and the sender of
// each. Like Puts.iter it draws from Keys, so each iteration needs Keys
// afresh.
func (t *Transfers) iter(n int, own func(i uint64, sender uint32)) (txIter, error) {
	if len(t.Accounts) < 2 {
		return nil, fmt.Errorf("loadgen: transfers need at least 2 accounts, have %d", len(t.Accounts))
	}
	r := rand.New(rand.NewPCG(t.Seed, 0x7ea5))
	nonces := make([]uint64, len(t.Accounts))
	i := 0
	return func() (*tx.Tx, ed25519.PrivateKey, bool) {
		for ; i < n; i++ {
			f := int(t.Keys.Next())
			to := r.IntN(len(t.Accounts) - 1)
			if to >= f {
				to++
			}
			if !t.Split.Owns(uint64(f)) {
				continue
			}
			x := &tx.Tx{Kind: tx.KindTransfer, ChainID: t.ChainID, Nonce: nonces[f], Amount: t.Amount}
			copy(x.To[:], t.Accounts[to].Public().(ed25519.PublicKey))
			nonces[f]++
			if own != nil {
				own(uint64(i), uint32(f))
			}
			i++
			return x, t.Accounts[f], true
		}
		return nil, nil, false
	}, nil
}

// SignAll signs txs in parallel, tx i with key(i), and returns their
// encodings.
func SignAll(ctx context.Context, txs []*tx.Tx, key func(i int) ed25519.PrivateKey, progress func(done int)) ([][]byte, error) {
	out := make([][]byte, len(txs))
	var (
		next, done atomic.Int64
		wg         sync.WaitGroup
	)
	const chunk = 256
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				lo := int(next.Add(chunk)) - chunk
				if lo >= len(txs) {
					return
				}
				hi := min(lo+chunk, len(txs))
				for i := lo; i < hi; i++ {
					txs[i].Sign(key(i))
					out[i] = txs[i].Encode()
				}
				d := done.Add(int64(hi - lo))
				if progress != nil {
					progress(int(d))
				}
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// Count is how many sends a pacer schedules in [0, d).
func Count(p Pacer, d time.Duration) int {
	n := p.Due(d)
	for n > 0 && p.At(n-1) >= d {
		n--
	}
	if n > math.MaxInt32 {
		return math.MaxInt32
	}
	return int(n)
}
