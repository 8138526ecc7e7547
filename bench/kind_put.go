package bench

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"time"

	"github.com/rustorium/rustorium/internal/retry"
	"github.com/rustorium/rustorium/loadgen"
	"github.com/rustorium/rustorium/node/p2p"
	"github.com/rustorium/rustorium/node/state"
	"github.com/rustorium/rustorium/node/storage"
	"github.com/rustorium/rustorium/node/tx"
	"github.com/rustorium/rustorium/reports"
	"github.com/rustorium/rustorium/scenarios"
)

// putKind writes value_size bytes under a key of the workload's key space
// (key-%010d, or a trace's key names), signed by one key from the seed.
// A sample of its commit receipts (verify_proofs) has its Merkle proof
// verified for the put's own key and value, and is read back until
// visible. It is the only kind a max-rate search drives.
type putKind struct{}

func (putKind) check(*scenarios.Workload, Caps) []problem { return nil }

func (putKind) genesis(uint64, *scenarios.Workload) []ed25519.PrivateKey { return nil }

func (putKind) stages() []reports.Stage {
	return []reports.Stage{reports.StageIngress, reports.StageAccepted, reports.StageCommitted, reports.StageVisible, reports.StageProofVerify}
}

func (putKind) prepare(ctx context.Context, in *prepInput) (*sends, error) {
	w := in.w
	puts := &loadgen.Puts{ChainID: in.chain, Signer: signerOf(in.seed), Keys: in.keys, KeyNames: in.traceKeys, ValueSize: w.ValueSize, Seed: in.seed, Salt: in.salt, Split: in.split}
	txs, err := signTxs(ctx, in, w.ValueSize, puts.Generate, func(o loadgen.StreamOptions) (*loadgen.Stream, error) {
		puts.Plan(in.n)
		return puts.Stream(in.n, o), nil
	})
	if err != nil {
		return nil, err
	}
	every := verifyEvery(w)
	return &sends{txs: txs, of: splitOf(in, puts.Of), sender: func(conns []loadgen.TxConn, obs *observer, chk *checker) loadgen.SendFunc {
		s := &loadgen.Submitter{Conns: conns, Txs: txs, Observer: obs, Timeout: w.Timeout.Std(), Failover: failoverOf(w), OnResend: obs.resend}
		if every > 0 {
			// The traced sends' receipts are checked too: each trace
			// ends with the client's proof check.
			s.VerifyEvery, s.Verify, s.Visible, s.Traced = every, verifyPut(chk), visiblePut(chk), obs.isTraced
		}
		return s.Send
	}}, nil
}

// putKV is a put's state key and value, from its encoding.
func putKV(raw []byte) (key, value []byte, err error) {
	t, err := tx.Decode(raw)
	if err != nil {
		return nil, nil, err
	}
	return state.PutKey(t.Key), t.Value, nil
}

// verifyEvery is the sampling interval of verify_proofs: every n-th
// receipt, or 0 for none (0%).
func verifyEvery(w *scenarios.Workload) uint64 {
	frac := 0.01
	if w.VerifyProofs != nil {
		frac = w.VerifyProofs.Fraction()
	}
	if frac <= 0 {
		return 0
	}
	return uint64(max(1, int(1/frac+0.5)))
}

// verifyPut checks a sampled receipt's proof: it must show the put's own
// key and value under the receipt's root.
func verifyPut(chk *checker) func(i uint64, raw []byte, c p2p.Committed) error {
	return func(i uint64, raw []byte, c p2p.Committed) error {
		if c.Superseded {
			// A later put of the same block overwrote the key, so the proof
			// shows that put's value, which this client does not know.
			return nil
		}
		key, value, err := putKV(raw)
		if err == nil {
			err = storage.VerifyProofBytes(c.Root, key, value, c.Proof)
		}
		chk.proof(err)
		return err
	}
}

// visiblePut reads a sampled put back through the node's read API until it
// shows the put's value, or the state of a block at or after the put's:
// read-your-write visibility. A later put of the same key — in the same
// block (the receipt says superseded) or in a later one — may have replaced
// the value by then, so a read whose root the run saw committed at the
// put's height or above (chk.reached) shows the put as well, whatever value
// it has. (Waiting for the put's own value would wait for ever once a
// later block rewrote the key, and fail the send with a timeout: at a few
// thousand puts a second over 100k keys, about one sampled read-back in
// each max-rate probe did.)
func visiblePut(chk *checker) func(ctx context.Context, get loadgen.GetFunc, _ uint64, raw []byte, com p2p.Committed) error {
	return func(ctx context.Context, get loadgen.GetFunc, _ uint64, raw []byte, com p2p.Committed) error {
		key, value, err := putKV(raw)
		if err != nil {
			return err
		}
		for {
			v, err := get(ctx, key)
			if err != nil {
				return err
			}
			if v.Found && (com.Superseded || bytes.Equal(v.Value, value)) || chk.reached(v.Root, com.Height) {
				return nil
			}
			if err := retry.Sleep(ctx, time.Millisecond); err != nil {
				return err
			}
		}
	}
}
