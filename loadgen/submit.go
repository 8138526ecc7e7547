package loadgen

import (
	"context"
	"errors"
	"net"
	"syscall"
	"time"

	"github.com/rustorium/rustorium/node/p2p"
	"github.com/rustorium/rustorium/reports"
)

// Observer receives what happens to each send. Implementations must be safe
// for concurrent use; they run on the sending goroutines.
type Observer interface {
	// Sent: send i went out at actual, intended at intended.
	Sent(i uint64, intended, actual time.Time)
	// Reached: send i reached stage at time at.
	Reached(i uint64, stage reports.Stage, intended, actual, at time.Time)
	// Failed: send i, intended at intended, failed before reaching stage.
	Failed(i uint64, stage reports.Stage, intended time.Time, err error)
	// Accepted: the log holds send i at (shard, offset).
	Accepted(i uint64, a p2p.Accepted)
	// Committed: send i's commit receipt.
	Committed(i uint64, c p2p.Committed)
}

// TxConn is a client connection to one node, over any protocol: *Conn
// (QUIC) or an APIConn (REST, WebSocket, GraphQL).
type TxConn interface {
	// Submit sends a transaction's encoding.
	Submit(ctx context.Context, raw []byte) (Call, error)
	// Get reads a state key's committed value with its proof.
	Get(ctx context.Context, stateKey []byte) (p2p.Value, error)
	// Account reads an account (public key pub) from the node's account
	// view: as a Value of its state key, the account's encoding (absent
	// when it does not exist) with its proof.
	Account(ctx context.Context, pub []byte) (p2p.Value, error)
}

// Call is one submission in flight: Accepted returns once the log holds
// the transaction, Committed then waits for its receipt.
type Call interface {
	Accepted() (p2p.Accepted, error)
	Committed() (p2p.Committed, error)
}

// untimedAccept is implemented by a Call whose acceptance is not answered
// on its own (GraphQL answers both at the commit): its accepted stage is
// not timed, though the acceptance is still reported to the Observer. A
// GraphQL submission that fails after the log took it (no receipt in
// time, its node killed) gets no answer but the error, so it counts as
// failed before acceptance.
type untimedAccept interface{ untimedAccept() }

// Submitter sends pre-signed transactions and reports each one's accepted
// and committed stages, and for a sample the client-side verification of
// the receipt's Merkle proof and the read-back of the write.
type Submitter struct {
	// Conns are used round-robin by send index. A send on a connection that
	// is down (its node was killed) fails at once and counts as an error.
	Conns []TxConn
	// Route, if set, sends send i over Conns[Route[i] % len(Conns)] instead:
	// transfers routed by sender stay on one connection to one node, so
	// they reach the log in nonce order (round-robin over nodes at
	// different distances would reorder them, and a transfer with a nonce
	// out of order fails).
	Route []uint32
	// Txs are the signed transactions; send i submits Txs.Tx(i).
	Txs Signed
	// Observer gets every outcome. Required.
	Observer Observer
	// Verify checks a commit receipt's proof for send i, whose encoding
	// is raw. Nil skips the proof_verify stage.
	Verify func(i uint64, raw []byte, c p2p.Committed) error
	// VerifyEvery verifies the receipts of every n-th send. Zero means 10.
	VerifyEvery uint64
	// Traced, if set, names sends whose receipts are verified too (the
	// traced ones, so that each trace ends with the client's proof
	// check); their write is not read back unless they are in the
	// VerifyEvery sample.
	Traced func(i uint64) bool
	// Visible, for every VerifyEvery-th send, reads the send's write back
	// through the same connection after its commit receipt, until it shows
	// (read-your-write); the visible stage is stamped then. Nil skips it.
	Visible func(ctx context.Context, get GetFunc, i uint64, raw []byte, com p2p.Committed) error
	// Timeout bounds one send from submit to commit receipt. Zero means 60s.
	Timeout time.Duration
	// Failover, if set, resends a send whose node is down (NodeDown: its
	// connection broke, or cannot be dialed) — before the log took it, or
	// after, while it waited for the receipt — with the same bytes over
	// the next connection (each of Conns at most once), and takes the
	// receipt there: the nodes deduplicate transactions by id, so it
	// commits once. Off, such a send fails at once.
	Failover bool
	// OnResend, if set, is told of each resend.
	OnResend func(i uint64)
}

// GetFunc reads a state key's committed value with its proof, over
// whichever protocol the send used.
type GetFunc func(ctx context.Context, stateKey []byte) (p2p.Value, error)

// Send is a SendFunc.
func (q *Submitter) Send(ctx context.Context, i uint64, intended time.Time) {
	ctx, cancel := sendContext(ctx, q.Timeout)
	defer cancel()
	k := i
	if i < uint64(len(q.Route)) {
		k = uint64(q.Route[i])
	}
	obs := q.Observer
	raw, err := q.Txs.Tx(ctx, i) // a Stream behind the schedule shows as lag: actual is taken after
	if err != nil {
		obs.Failed(i, reports.StageAccepted, intended, err)
		return
	}
	actual := time.Now()
	obs.Sent(i, intended, actual)
	conn, com, resent, err := q.deliver(ctx, raw, i, k, intended, actual)
	if err != nil {
		return
	}
	obs.Reached(i, reports.StageCommitted, intended, actual, time.Now())
	obs.Committed(i, com)
	// A node answers a resend of a committed transaction from its stored
	// receipt, which keeps no proof: nothing to verify then.
	q.sample(ctx, conn, i, raw, com, intended, actual, !(resent && len(com.Proof) == 0))
}

// deliver submits send i over Conns[k] (then, failing over, the next ones)
// until a node commits it, and reports its accepted stage once; on failure
// it has reported it to the Observer. resent says it failed over.
func (q *Submitter) deliver(ctx context.Context, raw []byte, i, k uint64, intended, actual time.Time) (_ TxConn, _ p2p.Committed, resent bool, err error) {
	obs, n := q.Observer, uint64(len(q.Conns))
	tries := uint64(1)
	if q.Failover {
		tries = n
	}
	accepted := false
	for try := range tries {
		if try > 0 && q.OnResend != nil {
			q.OnResend(i)
		}
		conn := q.Conns[(k+try)%n]
		var call Call
		if call, err = conn.Submit(ctx, raw); err != nil {
			if q.Failover && NodeDown(err) {
				continue
			}
			break
		}
		var acc p2p.Accepted
		if acc, err = call.Accepted(); err != nil {
			if q.Failover && NodeDown(err) {
				continue
			}
			break
		}
		if !accepted {
			if _, untimed := call.(untimedAccept); !untimed {
				obs.Reached(i, reports.StageAccepted, intended, actual, time.Now())
			}
			obs.Accepted(i, acc)
			accepted = true
		}
		var com p2p.Committed
		if com, err = call.Committed(); err == nil {
			return conn, com, try > 0, nil
		}
		if !q.Failover || !NodeDown(err) {
			break
		}
	}
	if accepted {
		obs.Failed(i, reports.StageCommitted, intended, err)
	} else {
		obs.Failed(i, reports.StageAccepted, intended, err)
	}
	return nil, p2p.Committed{}, false, err
}

// sample verifies every VerifyEvery-th receipt's proof (when proved) and
// reads the write back through conn.
func (q *Submitter) sample(ctx context.Context, conn TxConn, i uint64, raw []byte, com p2p.Committed, intended, actual time.Time, proved bool) {
	obs := q.Observer
	every := q.VerifyEvery
	if every == 0 {
		every = 10
	}
	sampled := i%every == 0
	if !sampled && (q.Traced == nil || !q.Traced(i)) {
		return
	}
	if q.Verify != nil && proved {
		if err := q.Verify(i, raw, com); err != nil {
			obs.Failed(i, reports.StageProofVerify, intended, err)
			return
		}
		obs.Reached(i, reports.StageProofVerify, intended, actual, time.Now())
	}
	if q.Visible != nil && sampled {
		if err := q.Visible(ctx, conn.Get, i, raw, com); err != nil {
			obs.Failed(i, reports.StageVisible, intended, err)
			return
		}
		obs.Reached(i, reports.StageVisible, intended, actual, time.Now())
	}
}

// NodeDown reports whether err means the send's node is down or cut off,
// rather than refusing or failing the send: its QUIC connection broke or
// is being redialed, its HTTP API cannot be dialed, or its WebSocket broke.
func NodeDown(err error) bool {
	var (
		apiErr *APIError
		op     *net.OpError
	)
	return errors.Is(err, ErrNotConnected) || ConnBroken(err) ||
		errors.As(err, &apiErr) && apiErr.Code == CodeConnectionLost ||
		errors.As(err, &op) && op.Op == "dial" ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}

// sendContext bounds one send by timeout; zero or less means 60s.
func sendContext(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	return context.WithTimeout(ctx, timeout)
}
