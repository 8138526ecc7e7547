package bench

import (
	"context"
	"crypto/ed25519"

	"github.com/rustorium/rustorium/loadgen"
	"github.com/rustorium/rustorium/reports"
	"github.com/rustorium/rustorium/scenarios"
)

// queryKind asks the node's account view for an account (balance, nonce
// and their proof: over QUIC a read of the account's state key, over REST
// GET /v1/accounts/{key}, over GraphQL the account query, over WebSocket
// the account operation) and verifies the proof (the read stage). Its
// accounts are those of the first transfer workload, or without one
// accounts derived from the seed that do not exist (non-membership proofs).
type queryKind struct{}

func (queryKind) check(w *scenarios.Workload, _ Caps) []problem { return noMaxRate(w) }

func (queryKind) genesis(uint64, *scenarios.Workload) []ed25519.PrivateKey { return nil }

func (queryKind) stages() []reports.Stage { return []reports.Stage{reports.StageRead} }

func (queryKind) prepare(_ context.Context, in *prepInput) (*sends, error) {
	accounts, what := in.accounts, "genesis accounts"
	if accounts == nil {
		accounts, what = loadgen.AccountKeys(in.seed, in.w.Accounts), "accounts without genesis (absent)"
	}
	keys := make([][]byte, in.n)
	for i := range keys {
		keys[i] = accounts[in.keys.Next()%uint64(len(accounts))].Public().(ed25519.PublicKey)
	}
	in.printf("workload %s: %d account queries of %s", in.w.Name, in.n, what)
	return readSends(in, keys, true), nil
}
