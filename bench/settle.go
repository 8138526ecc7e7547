package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rustorium/rustorium/internal/retry"
	"github.com/rustorium/rustorium/node"
)

// The end-of-run checks that read the target's nodes: they poll until the
// nodes agree or the deadline passes, since the last blocks and cross-shard
// credits may still be on their way when the load ends.

// settlePoll is how often the end-of-run checks read the nodes again.
const settlePoll = 20 * time.Millisecond

// rootsEqual waits up to d until every running node reports the same
// height, block hash and state root on every shard, and says which node and
// shard differ if they do not converge.
func rootsEqual(ctx context.Context, t Target, shards int, d time.Duration) (bool, []string) {
	var notes []string
	err := retry.Poll(ctx, settlePoll, d, func() (bool, error) {
		notes = rootDiffs(t.Nodes(), shards)
		return len(notes) == 0, nil
	})
	return err == nil, notes
}

func rootDiffs(nodes []NodeView, shards int) []string {
	if len(nodes) == 0 {
		return []string{"roots: no node running"}
	}
	var notes []string
	for shard := range uint32(shards) {
		metas := make([]Tip, len(nodes))
		var errs []error
		for i, n := range nodes {
			m, err := n.Tip(shard)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", n.Name(), err))
			}
			metas[i] = m
		}
		if err := errors.Join(errs...); err != nil {
			notes = append(notes, fmt.Sprintf("roots: shard %d: %v", shard, err))
			continue
		}
		for i := 1; i < len(nodes); i++ {
			a, b := metas[0], metas[i]
			if a == b {
				continue
			}
			notes = append(notes, fmt.Sprintf("roots: shard %d: %s at height %d (block %x, root %x…) but %s at height %d (block %x, root %x…)%s",
				shard, nodes[0].Name(), a.Height, a.Block[:4], a.Root[:4], nodes[i].Name(), b.Height, b.Block[:4], b.Root[:4], haltedNote(nodes[i], shard)+haltedNote(nodes[0], shard)))
		}
	}
	return notes
}

func haltedNote(n NodeView, shard uint32) string {
	if n.Halted(shard) {
		return fmt.Sprintf("; %s halted shard %d after a root divergence", n.Name(), shard)
	}
	return ""
}

// conserved checks on every running node that the genesis accounts'
// balances add up to their genesis total, waiting up to d for the sums to
// settle (credits of cross-shard transfers may still be on their way).
func conserved(ctx context.Context, t Target, genesis []node.GenesisAccount, d time.Duration) (bool, []string) {
	var want uint64
	for _, a := range genesis {
		want += a.Balance
	}
	var notes []string
	err := retry.Poll(ctx, settlePoll, d, func() (bool, error) {
		notes = nil
		nodes := t.Nodes()
		for _, n := range nodes {
			got, err := balances(n, genesis)
			switch {
			case err != nil:
				notes = append(notes, fmt.Sprintf("%s: balances: %v", n.Name(), err))
			case got != want:
				notes = append(notes, fmt.Sprintf("%s: balances add up to %d, genesis gave %d", n.Name(), got, want))
			}
		}
		if len(nodes) == 0 {
			notes = append(notes, "no node running to check balances on")
		}
		return len(notes) == 0, nil
	})
	return err == nil, notes
}

func balances(n NodeView, genesis []node.GenesisAccount) (uint64, error) {
	var sum uint64
	for _, a := range genesis {
		b, _, err := n.Balance(a.Key)
		if err != nil {
			return 0, err
		}
		sum += b
	}
	return sum, nil
}
