package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/rustorium/rustorium/node/cache"
	"github.com/rustorium/rustorium/node/consensus"
	"github.com/rustorium/rustorium/node/ordering"
	"github.com/rustorium/rustorium/node/p2p"
	"github.com/rustorium/rustorium/node/state"
	"github.com/rustorium/rustorium/node/storage"
	"github.com/rustorium/rustorium/node/tx"
)

// shardRunner is one shard's pipeline: it consumes the shard's transaction
// log from the last committed block on, cuts blocks, executes and commits
// them, and delivers commit receipts. The cutting decisions come from the
// deterministic consensus.Cutter; this type only does the I/O around it.
type shardRunner struct {
	n      *Node
	shard  uint32
	cons   *ordering.Consumer
	cutter *consensus.Cutter
	exec   state.Executor
	meta   storage.Meta
}

func (n *Node) newShard(ctx context.Context, shard uint32) (*shardRunner, error) {
	meta, _, err := n.db.ShardMeta(shard)
	if err != nil {
		return nil, err
	}
	cons, err := ordering.OpenConsumer(ctx, n.ocfg, ordering.Transactions, shard, meta.NextOffset)
	if err != nil {
		return nil, err
	}
	shards := n.cfg.Shards
	return &shardRunner{
		n: n, shard: shard, cons: cons, meta: meta,
		cutter: consensus.NewCutter(n.cfg.Block),
		exec: state.Executor{Local: func(k []byte) bool {
			return ordering.ShardOf(k, shards) == shard
		}},
	}, nil
}

func (r *shardRunner) close() { r.cons.Close() }

func (r *shardRunner) run(ctx context.Context) error {
	for {
		if err := r.n.gate.wait(ctx); err != nil {
			return nil
		}
		pollCtx, cancel := ctx, context.CancelFunc(func() {})
		if d, ok := r.cutter.Deadline(); ok {
			pollCtx, cancel = context.WithDeadline(ctx, d)
		}
		recs, err := r.cons.Poll(pollCtx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil:
		case pollCtx.Err() != nil:
			// The cutter's deadline passed: Tick below closes the block.
		case errors.Is(err, ordering.ErrBroker):
			r.n.log.Warn("polling the log", "shard", r.shard, "err", err)
			time.Sleep(pollBackoff)
		default:
			return err
		}
		now := time.Now()
		for _, rec := range recs {
			if blk := r.cutter.Add(now, consensus.Entry{Offset: rec.Offset, Raw: rec.Value}); blk != nil {
				if err := r.commit(ctx, blk); err != nil {
					return err
				}
			}
		}
		if blk := r.cutter.Tick(time.Now()); blk != nil {
			if err := r.commit(ctx, blk); err != nil {
				return err
			}
		}
	}
}

// stateReader reads this shard's committed state for the executor.
type stateReader struct {
	db    *storage.DB
	shard uint32
}

func (s stateReader) Get(k []byte) ([]byte, bool, error) { return s.db.Get(s.shard, k) }

// commit executes and commits one block made of log entries.
func (r *shardRunner) commit(ctx context.Context, block []consensus.Entry) error {
	t0 := time.Now()
	var (
		txs    []*tx.Tx
		ids    []tx.ID
		seen   = make(map[tx.ID]bool, len(block))
		replay []tx.ID // already committed earlier: answer from the stored receipt
	)
	for _, e := range block {
		id := tx.IDOf(e.Raw)
		t, err := tx.Decode(e.Raw)
		if err != nil {
			// Only validated transactions are appended by nodes; anything
			// else in the log was written around them and is skipped, the
			// same way on every node.
			r.n.log.Warn("undecodable log record skipped", "shard", r.shard, "offset", e.Offset, "err", err)
			continue
		}
		if seen[id] {
			continue
		}
		seen[id] = true
		if _, err := r.n.db.TxLocation(id); err == nil {
			replay = append(replay, id)
			continue
		} else if !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		txs = append(txs, t)
		ids = append(ids, id)
	}
	res, err := r.exec.Execute(stateReader{r.n.db, r.shard}, txs)
	if err != nil {
		return fmt.Errorf("executing block %d: %w", r.meta.Height+1, err)
	}
	if err := r.sendCredits(ctx, res.Credits); err != nil {
		return fmt.Errorf("block %d: %w", r.meta.Height+1, err)
	}
	idBytes := make([][32]byte, len(ids))
	for i, id := range ids {
		idBytes[i] = id
	}
	hdr := consensus.Header{
		Shard:       r.shard,
		Height:      r.meta.Height + 1,
		Parent:      r.meta.BlockHash,
		FirstOffset: block[0].Offset,
		NextOffset:  block[len(block)-1].Offset + 1,
		TxCount:     uint32(len(txs)),
		TxRoot:      consensus.TxRoot(idBytes),
		Time:        time.Now().UnixNano(),
	}
	writes := make([]storage.Write, len(res.Writes))
	lastWrite := make(map[string]int, len(res.Writes))
	for i, w := range res.Writes {
		writes[i] = storage.Write{Key: w.Key, Value: w.Value}
		lastWrite[string(w.Key)] = i
	}
	receipts := make([]p2p.Committed, len(txs))
	entries := make([]storage.TxEntry, len(txs))
	bc := &storage.BlockCommit{
		Shard:      r.shard,
		Height:     hdr.Height,
		NextOffset: hdr.NextOffset,
		Writes:     writes,
		Txs:        entries,
		// The header commits to the root of its own block: storage computes
		// the root, then seals the header before writing anything.
		Seal: func(root fr.Element) ([32]byte, []byte) {
			hdr.StateRoot = root.Bytes()
			for i, o := range res.Outcomes {
				c := p2p.Committed{ID: ids[i], Shard: r.shard, Height: hdr.Height, Index: uint32(i), Root: hdr.StateRoot}
				if !o.OK {
					c.Status, c.Reason = p2p.StatusFailed, o.Reason
				}
				receipts[i] = c
				// Stored receipts carry no proof: it is recomputed on read.
				entries[i] = storage.TxEntry{ID: ids[i], Receipt: c.AppendTo(nil)}
			}
			return hdr.Hash(), hdr.Encode()
		},
	}
	committed, err := r.n.db.CommitBlock(bc)
	if err != nil {
		return fmt.Errorf("committing block %d: %w", hdr.Height, err)
	}
	proofs := make([][]byte, len(committed.Proofs))
	for i, p := range committed.Proofs {
		if proofs[i], err = p.MarshalBinary(); err != nil {
			return err
		}
	}
	for i, o := range res.Outcomes {
		if o.Key == nil {
			continue
		}
		final := lastWrite[string(o.Key)]
		receipts[i].Superseded = final != o.Write
		receipts[i].Proof = proofs[final]
	}
	r.meta = committed.Meta
	// The views follow the block: push its delta (no invalidation).
	senders := make([][]byte, len(txs))
	for i, t := range txs {
		if t.Kind == tx.KindTransfer {
			senders[i] = t.From
		}
	}
	if err := r.n.views.Apply(cache.Delta{Header: hdr, Writes: writes, Proofs: proofs, IDs: ids, Senders: senders}); err != nil {
		return err
	}
	for _, c := range receipts {
		r.n.waiters.deliver(c)
	}
	for _, id := range replay {
		raw, err := r.n.db.Receipt(id)
		if err != nil {
			return err
		}
		if c, err := p2p.DecodeCommitted(raw); err == nil {
			r.n.waiters.deliver(c)
		}
	}
	m := r.n.metrics
	shard := strconv.FormatUint(uint64(r.shard), 10)
	m.CommitSeconds.Observe(time.Since(t0).Seconds())
	m.BlockTxs.Observe(float64(len(txs)))
	m.Blocks.WithLabelValues(shard).Inc()
	m.Height.WithLabelValues(shard).Set(float64(hdr.Height))
	if r.n.cfg.OnBlock != nil {
		r.n.cfg.OnBlock(BlockEvent{Header: hdr, IDs: ids})
	}
	return nil
}

// sendCredits appends the credits of cross-shard transfers to their shards'
// logs before the block commits. If the node stops between the two, the
// block is executed again after the restart and appends the same credits
// again: a credit's id is a function of its transfer, and the receiving
// shard skips ids it already committed, so each credit applies exactly once.
func (r *shardRunner) sendCredits(ctx context.Context, credits []*tx.Tx) error {
	for _, c := range credits {
		c.Sig = make([]byte, ed25519.SignatureSize) // system transaction: trusted by its log, not signed
		raw := c.Encode()
		id := tx.IDOf(raw)
		shard := ordering.ShardOf(c.RoutingKey(), r.n.cfg.Shards)
		if _, err := r.n.prod.Append(ctx, shard, id[:], raw); err != nil {
			return fmt.Errorf("appending a credit to shard %d: %w", shard, err)
		}
	}
	return nil
}
