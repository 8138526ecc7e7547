package bench

import (
	"context"
	"crypto/ed25519"

	"github.com/rustorium/rustorium/loadgen"
	"github.com/rustorium/rustorium/reports"
	"github.com/rustorium/rustorium/scenarios"
)

// transferKind moves 1 unit between the workload's accounts, which exist
// from genesis with genesisBalance each (so it needs a target that starts
// its nodes with the run's genesis). A sender's transfers carry its nonces
// in order and stay on one connection, so they reach the log in order.
type transferKind struct{}

func (transferKind) check(w *scenarios.Workload, caps Caps) []problem {
	var out []problem
	if w.Accounts < 2 {
		out = append(out, problem{".accounts", "a transfer needs at least 2 accounts"})
	}
	if !caps.Genesis {
		out = append(out, problem{".kind", "a transfer needs accounts from genesis, which this target does not create (puts, gets of put keys and queries of absent accounts only)"})
	}
	return append(out, noMaxRate(w)...)
}

// genesis: the workload's accounts, derived from its seed.
func (transferKind) genesis(seed uint64, w *scenarios.Workload) []ed25519.PrivateKey {
	return loadgen.AccountKeys(seed, w.Accounts)
}

func (transferKind) stages() []reports.Stage {
	return []reports.Stage{reports.StageIngress, reports.StageAccepted, reports.StageCommitted}
}

func (transferKind) prepare(ctx context.Context, in *prepInput) (*sends, error) {
	tr := &loadgen.Transfers{ChainID: in.chain, Accounts: in.accounts, Keys: in.keys, Amount: 1, Seed: in.seed, Split: in.split}
	txs, err := signTxs(ctx, in, 0, tr.Generate, func(o loadgen.StreamOptions) (*loadgen.Stream, error) {
		if err := tr.Plan(in.n); err != nil { // the routes and split indexes, drawing the keys once
			return nil, err
		}
		keys, err := in.newKeys() // and the stream draws them again
		if err != nil {
			return nil, err
		}
		st := *tr
		st.Keys = keys
		return st.Stream(in.n, o)
	})
	if err != nil {
		return nil, err
	}
	route, timeout, failover := tr.Senders, in.w.Timeout.Std(), failoverOf(in.w)
	return &sends{txs: txs, of: splitOf(in, tr.Of), sender: func(conns []loadgen.TxConn, obs *observer, _ *checker) loadgen.SendFunc {
		// A transfer's proof shows its sender's new balance, which the
		// client does not know: no proof check, no read-back.
		return (&loadgen.Submitter{Conns: conns, Route: route, Txs: txs, Observer: obs, Timeout: timeout, Failover: failover, OnResend: obs.resend}).Send
	}}, nil
}
