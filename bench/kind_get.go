package bench

import (
	"context"
	"crypto/ed25519"

	"github.com/rustorium/rustorium/loadgen"
	"github.com/rustorium/rustorium/node/state"
	"github.com/rustorium/rustorium/reports"
	"github.com/rustorium/rustorium/scenarios"
)

// getKind reads state keys through the node's read API and verifies each
// answer's Merkle proof against the root that came with it (the read
// stage). With a transfer workload in the scenario it reads the genesis
// accounts of the first one (key index k reads account k mod their
// number); otherwise put keys named as a put workload names them, so a key
// not written yet is a valid non-membership read; a replayed trace's key
// names come first.
type getKind struct{}

func (getKind) check(w *scenarios.Workload, _ Caps) []problem { return noMaxRate(w) }

func (getKind) genesis(uint64, *scenarios.Workload) []ed25519.PrivateKey { return nil }

func (getKind) stages() []reports.Stage { return []reports.Stage{reports.StageRead} }

func (getKind) prepare(_ context.Context, in *prepInput) (*sends, error) {
	keys := getKeys(in)
	what := "put keys"
	if in.accounts != nil {
		what = "genesis accounts"
	}
	in.printf("workload %s: %d reads of %s", in.w.Name, in.n, what)
	return readSends(in, keys, false), nil
}

// getKeys picks the state key of each of the n reads: a trace's key names
// first, then key index k from the key distribution, read as the account
// accounts[k mod len(accounts)] when there are accounts, else as the put
// key loadgen.KeyName(k).
func getKeys(in *prepInput) [][]byte {
	keys := make([][]byte, in.n)
	for i := range keys {
		switch {
		case i < len(in.traceKeys):
			keys[i] = state.PutKey([]byte(in.traceKeys[i]))
		case len(in.accounts) > 0:
			k := in.keys.Next() % uint64(len(in.accounts))
			keys[i] = state.AccountKey(in.accounts[k].Public().(ed25519.PublicKey))
		default:
			keys[i] = state.PutKey(loadgen.KeyName(in.keys.Next()))
		}
	}
	return keys
}
