// Package state executes a block's transactions against a shard's state,
// deterministically: the same state and the same transactions give the same
// writes and outcomes on every node. It knows the state's key layout (puts
// and accounts live under distinct prefixes) and nothing of storage, logs
// or networks.
package state

import (
	"encoding/binary"
	"fmt"

	"github.com/rustorium/rustorium/node/tx"
)

// Key prefixes: every state key starts with one, so puts and accounts never
// collide.
const (
	prefixPut     = 'p'
	prefixAccount = 'a'
)

// PutKey is the state key a put of key k writes.
func PutKey(k []byte) []byte { return append([]byte{prefixPut}, k...) }

// AccountKey is the state key of the account owned by public key pub.
func AccountKey(pub []byte) []byte { return append([]byte{prefixAccount}, pub...) }

// IsAccountKey reports whether a state key is an account's.
func IsAccountKey(k []byte) bool { return len(k) > 0 && k[0] == prefixAccount }

// Account is a balance and the lowest nonce the next transfer from it may
// carry. A transfer must carry at least Nonce and sets it to its own nonce
// plus one: a nonce is never used twice, and a transfer lost or reordered on
// its way to the log fails alone instead of blocking its sender's next ones.
type Account struct {
	Balance uint64
	Nonce   uint64
}

// Encode returns the account's state value.
func (a Account) Encode() []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 16), a.Balance)
	return binary.BigEndian.AppendUint64(b, a.Nonce)
}

// DecodeAccount parses an account's state value.
func DecodeAccount(b []byte) (Account, error) {
	if len(b) != 16 {
		return Account{}, fmt.Errorf("state: account value is %d bytes, want 16", len(b))
	}
	return Account{Balance: binary.BigEndian.Uint64(b), Nonce: binary.BigEndian.Uint64(b[8:])}, nil
}

// Reader reads a shard's committed state.
type Reader interface {
	// Get returns the value at key and whether it exists.
	Get(key []byte) ([]byte, bool, error)
}

// Write is one key set by a block, in execution order.
type Write struct {
	Key, Value []byte
}

// Outcome is what one transaction did.
type Outcome struct {
	OK     bool
	Reason string // why it failed, when !OK
	// Key is the state key whose proof the receipt carries (the put's key or
	// the sender's account); nil when the transaction wrote nothing.
	Key []byte
	// Write is the index in Result.Writes of the write of Key; -1 when Key
	// is nil.
	Write int
}

// Result is a block's effect.
type Result struct {
	Writes   []Write   // in order; a later write to a key wins
	Outcomes []Outcome // one per transaction, aligned with the input
	// Credits are system transactions the leader must append to other
	// shards' logs, in the same Kafka transaction as the block.
	Credits []*tx.Tx
}

// Executor executes blocks for one shard.
type Executor struct {
	// Local reports whether an account key lives in this shard; transfers to
	// other shards become Credits. Nil means every account is local.
	Local func(routingKey []byte) bool
	// Shard and Height name the block being executed; emitted credits carry
	// them as their source.
	Shard  uint32
	Height uint64
	// CheckCredit, if set, decides whether a credit may be applied: an
	// empty reason accepts it, any other reason fails it (recorded in its
	// outcome, nothing written). An error stops the execution. Nil accepts
	// every credit.
	CheckCredit func(*tx.Tx) (reason string, err error)
}

// Execute runs txs in order against r. Transactions that fail (bad nonce,
// insufficient balance) are recorded in their outcome and write nothing; an
// error is returned only when r fails.
func (e *Executor) Execute(r Reader, txs []*tx.Tx) (*Result, error) {
	x := &exec{r: r, overlay: make(map[string][]byte), lastWrite: make(map[string]int), res: &Result{Outcomes: make([]Outcome, len(txs))}}
	for i, t := range txs {
		out, err := e.apply(x, t)
		if err != nil {
			return nil, err
		}
		out.Write = -1
		if out.Key != nil {
			out.Write = x.lastWrite[string(out.Key)]
		}
		x.res.Outcomes[i] = out
	}
	return x.res, nil
}

func (e *Executor) apply(x *exec, t *tx.Tx) (Outcome, error) {
	switch t.Kind {
	case tx.KindPut:
		k := PutKey(t.Key)
		x.set(k, append([]byte(nil), t.Value...))
		return Outcome{OK: true, Key: k}, nil
	case tx.KindTransfer:
		fromKey := AccountKey(t.From)
		from, err := x.account(fromKey)
		if err != nil {
			return Outcome{}, err
		}
		switch {
		case t.Nonce < from.Nonce:
			return Outcome{Reason: fmt.Sprintf("nonce %d already used: the account's next nonce is %d", t.Nonce, from.Nonce)}, nil
		case t.Amount > from.Balance:
			return Outcome{Reason: fmt.Sprintf("balance %d < amount %d", from.Balance, t.Amount)}, nil
		}
		from.Balance -= t.Amount
		from.Nonce = t.Nonce + 1
		x.set(fromKey, from.Encode())
		if e.Local == nil || e.Local(t.To[:]) {
			if err := x.credit(AccountKey(t.To[:]), t.Amount); err != nil {
				return Outcome{}, err
			}
		} else {
			x.res.Credits = append(x.res.Credits, &tx.Tx{Kind: tx.KindCredit, ChainID: t.ChainID, Nonce: t.Nonce, From: t.From, To: t.To, Amount: t.Amount,
				SourceShard: e.Shard, SourceHeight: e.Height, Sig: make([]byte, 64)})
		}
		return Outcome{OK: true, Key: fromKey}, nil
	case tx.KindCredit:
		if e.CheckCredit != nil {
			reason, err := e.CheckCredit(t)
			if err != nil {
				return Outcome{}, err
			}
			if reason != "" {
				return Outcome{Reason: reason}, nil
			}
		}
		k := AccountKey(t.To[:])
		if err := x.credit(k, t.Amount); err != nil {
			return Outcome{}, err
		}
		return Outcome{OK: true, Key: k}, nil
	default:
		return Outcome{Reason: fmt.Sprintf("unknown kind %v", t.Kind)}, nil
	}
}

// exec is one block's execution: reads see the block's earlier writes.
type exec struct {
	r         Reader
	overlay   map[string][]byte
	lastWrite map[string]int // key → index of its latest write in res.Writes
	res       *Result
}

func (x *exec) get(k []byte) ([]byte, bool, error) {
	if v, ok := x.overlay[string(k)]; ok {
		return v, true, nil
	}
	return x.r.Get(k)
}

func (x *exec) set(k, v []byte) {
	x.overlay[string(k)] = v
	x.lastWrite[string(k)] = len(x.res.Writes)
	x.res.Writes = append(x.res.Writes, Write{Key: k, Value: v})
}

func (x *exec) account(k []byte) (Account, error) {
	v, ok, err := x.get(k)
	if err != nil || !ok {
		return Account{}, err
	}
	return DecodeAccount(v)
}

func (x *exec) credit(k []byte, amount uint64) error {
	a, err := x.account(k)
	if err != nil {
		return err
	}
	a.Balance += amount
	x.set(k, a.Encode())
	return nil
}
