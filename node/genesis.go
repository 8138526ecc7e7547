package node

import (
	"crypto/ed25519"
	"fmt"

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
		// The header's hash does not cover its root; the stored header
		// carries it (as a replica's does once the block is final).
		p, err := n.db.Prepare(&storage.BlockCommit{Shard: s, Height: 1, NextOffset: 0, Writes: writes[s]})
		if err == nil {
			hdr := consensus.Header{Shard: s, Height: 1, TxRoot: consensus.TxRoot(nil), StateRoot: p.Root.Bytes()}
			p.Block.BlockHash, p.Block.Header = hdr.Hash(), hdr.Encode()
			_, err = n.db.Commit(p)
		}
		if err != nil {
			return fmt.Errorf("node: genesis of shard %d: %w", s, err)
		}
	}
	return nil
}
