package node

import (
	"crypto/ed25519"
	"fmt"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/rustorium/rustorium/node/consensus"
	"github.com/rustorium/rustorium/node/ordering"
	"github.com/rustorium/rustorium/node/state"
	"github.com/rustorium/rustorium/node/storage"
)

// GenesisAccount is an account that exists, with a balance, before the first
// block.
type GenesisAccount struct {
	Key     ed25519.PublicKey
	Balance uint64
}

// applyGenesis commits, for every shard that has no block yet, a first block
// holding the genesis accounts that live in it. It is deterministic, so
// every node starts every shard from the same root.
func (n *Node) applyGenesis() error {
	if len(n.cfg.Genesis) == 0 {
		return nil
	}
	writes := make([][]storage.Write, n.cfg.Shards)
	for _, a := range n.cfg.Genesis {
		if len(a.Key) != ed25519.PublicKeySize {
			return fmt.Errorf("node: genesis account key of %d bytes", len(a.Key))
		}
		s := ordering.ShardOf(a.Key, n.cfg.Shards)
		writes[s] = append(writes[s], storage.Write{Key: state.AccountKey(a.Key), Value: state.Account{Balance: a.Balance}.Encode()})
	}
	for s := range uint32(n.cfg.Shards) {
		if _, ok, err := n.db.ShardMeta(s); err != nil || ok || len(writes[s]) == 0 {
			if err != nil {
				return err
			}
			continue
		}
		hdr := consensus.Header{Shard: s, Height: 1, TxRoot: consensus.TxRoot(nil)}
		_, err := n.db.CommitBlock(&storage.BlockCommit{
			Shard: s, Height: 1, NextOffset: 0, Writes: writes[s],
			Seal: func(root fr.Element) ([32]byte, []byte) {
				hdr.StateRoot = root.Bytes()
				return hdr.Hash(), hdr.Encode()
			},
		})
		if err != nil {
			return fmt.Errorf("node: genesis of shard %d: %w", s, err)
		}
	}
	return nil
}
