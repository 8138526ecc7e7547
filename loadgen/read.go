package loadgen

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rustorium/rustorium/node/p2p"
	"github.com/rustorium/rustorium/node/state"
	"github.com/rustorium/rustorium/reports"
)

// ErrProof wraps a read whose Merkle proof did not verify against the root
// the node returned with it.
var ErrProof = errors.New("loadgen: read proof failed")

// Reader reads state keys (over QUIC's MsgGet or an HTTP API) and
// verifies every answer's Merkle proof client-side against the root that
// came with it: a found value must be a member, an absent one must
// have a non-membership proof. Each read reaches the read stage when its
// proof verified. Reads are not transactions: they never report Accepted or
// Committed, so a checker does not count them.
type Reader struct {
	// Conns are used round-robin by send index, as in Submitter.
	Conns []TxConn
	// Keys are the state keys; send i reads Keys[i mod len(Keys)].
	Keys [][]byte
	// Accounts makes the Keys account public keys, read through the
	// node's account view (TxConn.Account: a view query) instead of Get;
	// the proof is checked for the account's state key.
	Accounts bool
	// Observer gets every outcome. Required.
	Observer Observer
	// Verify checks the proof of a read's answer (value nil when the key is
	// absent) against its root; an error makes the read a failure wrapped in
	// ErrProof. Required.
	Verify func(root [32]byte, key, value, proof []byte) error
	// Timeout bounds one read. Zero means 60s.
	Timeout time.Duration
	// Failover, if set, reads again over the next connection (each of
	// Conns at most once) when the node is down (NodeDown).
	Failover bool
	// OnResend, if set, is told of each read sent again.
	OnResend func(i uint64)
}

// Send is a SendFunc.
func (q *Reader) Send(ctx context.Context, i uint64, intended time.Time) {
	ctx, cancel := sendContext(ctx, q.Timeout)
	defer cancel()
	actual := time.Now()
	q.Observer.Sent(i, intended, actual)
	key := q.Keys[i%uint64(len(q.Keys))]
	v, err := q.read(ctx, i, key)
	if q.Accounts {
		key = state.AccountKey(key)
	}
	if err != nil {
		q.Observer.Failed(i, reports.StageRead, intended, err)
		return
	}
	if err := verifyRead(q.Verify, key, v); err != nil {
		q.Observer.Failed(i, reports.StageRead, intended, err)
		return
	}
	q.Observer.Reached(i, reports.StageRead, intended, actual, time.Now())
}

// read reads key over connection i (then, failing over, the next ones).
func (q *Reader) read(ctx context.Context, i uint64, key []byte) (v p2p.Value, err error) {
	n := uint64(len(q.Conns))
	tries := uint64(1)
	if q.Failover {
		tries = n
	}
	for try := range tries {
		if try > 0 && q.OnResend != nil {
			q.OnResend(i)
		}
		conn := q.Conns[(i+try)%n]
		if q.Accounts {
			v, err = conn.Account(ctx, key)
		} else {
			v, err = conn.Get(ctx, key)
		}
		if err == nil || !q.Failover || !NodeDown(err) {
			break
		}
	}
	return v, err
}

// verifyRead checks a read's proof: membership of a found value, absence
// otherwise; a failure wraps ErrProof.
func verifyRead(verify func(root [32]byte, key, value, proof []byte) error, key []byte, v p2p.Value) error {
	var value []byte
	if v.Found {
		value = v.Value
	}
	if err := verify(v.Root, key, value, v.Proof); err != nil {
		return fmt.Errorf("%w: key %x (found %t): %w", ErrProof, key, v.Found, err)
	}
	return nil
}
