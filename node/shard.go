package node

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/rustorium/rustorium/node/cache"
	"github.com/rustorium/rustorium/node/consensus"
	"github.com/rustorium/rustorium/node/merkle"
	"github.com/rustorium/rustorium/node/ordering"
	"github.com/rustorium/rustorium/node/p2p"
	"github.com/rustorium/rustorium/node/state"
	"github.com/rustorium/rustorium/node/storage"
	"github.com/rustorium/rustorium/node/tx"
)

// replica is one shard's validation pipeline, which every node runs for
// every shard: it consumes the shard's blocks (read_committed, so only
// blocks whose leader transaction committed), reads each block's
// transaction range from its own copy of the log, re-executes it, attests
// the root it computed, and commits the block once it is final, delivering
// the commit receipts of the transactions submitted to this node.
type replica struct {
	n      *Node
	shard  uint32
	blocks *ordering.Consumer // blocks-<shard>
	txs    *ordering.Consumer // transactions-<shard>
	ahead  []ordering.Record  // transactions read past the last block's range
	meta   storage.Meta

	uncheckedCredits bool // logged that credits from a halted shard go unchecked
}

func (n *Node) newReplica(ctx context.Context, shard uint32) (_ *replica, err error) {
	meta, _, err := n.db.ShardMeta(shard)
	if err != nil {
		return nil, err
	}
	r := &replica{n: n, shard: shard, meta: meta}
	if r.blocks, err = ordering.OpenConsumer(ctx, n.ocfg, ordering.Blocks, shard, meta.BlockOffset); err != nil {
		return nil, err
	}
	if r.txs, err = ordering.OpenConsumer(ctx, n.ocfg, ordering.Transactions, shard, meta.NextOffset); err != nil {
		r.blocks.Close()
		return nil, err
	}
	return r, nil
}

func (r *replica) close() {
	r.blocks.Close()
	r.txs.Close()
}

func (r *replica) run(ctx context.Context) error {
	for {
		if err := r.n.gate.wait(ctx); err != nil {
			return nil
		}
		recs, err := r.blocks.Poll(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil:
		case errors.Is(err, ordering.ErrBroker):
			r.n.log.Warn("polling blocks", "shard", r.shard, "err", err)
			time.Sleep(pollBackoff)
		default:
			return err
		}
		for _, rec := range recs {
			if err := r.apply(ctx, rec); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
	}
}

// apply validates, executes, attests and, once final, commits one block.
func (r *replica) apply(ctx context.Context, rec ordering.Record) error {
	hdr, err := consensus.DecodeHeader(rec.Value)
	if err != nil {
		r.n.log.Error("undecodable block skipped", "shard", r.shard, "offset", rec.Offset, "err", err)
		return nil
	}
	if hdr.Height <= r.meta.Height && hdr.Shard == r.shard {
		// Committed before a restart, normally. A different block at a
		// committed height means two leaders built on one parent: the
		// first one committed wins everywhere, the other is skipped.
		if stored, err := r.n.db.Block(r.shard, hdr.Height); err == nil {
			if sh, err := consensus.DecodeHeader(stored); err == nil && sh.Hash() != hdr.Hash() {
				r.n.log.Error("ALARM: a second block at a committed height skipped", "shard", r.shard, "height", hdr.Height, "offset", rec.Offset)
				r.n.metrics.Alarms.WithLabelValues(strconv.FormatUint(uint64(r.shard), 10), "conflicting_block").Inc()
			}
		}
		return nil
	}
	if err := r.check(&hdr); err != nil {
		// Every node skips the same invalid block the same way; a leader
		// that wrote it waits for a height that never commits.
		r.n.log.Error("ALARM: invalid block skipped", "shard", r.shard, "offset", rec.Offset, "height", hdr.Height, "err", err)
		r.n.metrics.Alarms.WithLabelValues(strconv.FormatUint(uint64(r.shard), 10), "invalid_block").Inc()
		return nil
	}
	t0 := time.Now()
	phases := r.n.metrics.BlockSeconds
	phases.WithLabelValues("arrive").Observe(t0.Sub(time.Unix(0, hdr.Time)).Seconds())
	entries, err := r.readRange(ctx, hdr.FirstOffset, hdr.NextOffset)
	if err != nil {
		return err
	}
	t1 := time.Now()
	phases.WithLabelValues("read").Observe(t1.Sub(t0).Seconds())
	seen := func(id tx.ID) (bool, error) {
		if r.n.cfg.SeenTx != nil && r.n.cfg.SeenTx(id) {
			return true, nil
		}
		return r.n.db.HasTx(id)
	}
	b, err := r.n.execute(r.shard, hdr.Height, r.n.db, seen, r.checkCredit(ctx), entries)
	if err != nil {
		return fmt.Errorf("executing block %d: %w", hdr.Height, err)
	}
	if count, root := b.count(), b.txRoot(); count != hdr.TxCount || root != hdr.TxRoot {
		// This node executed another set of transactions than the leader
		// (another range, or another view of which were committed). It
		// attests the block it executed: the hash then differs from the
		// quorum's and the tracker halts the shard, even where the state
		// root happens to agree (the differing transactions all failed).
		r.n.log.Error("block's transactions differ from the leader's", "shard", r.shard, "height", hdr.Height,
			"leader_txs", hdr.TxCount, "our_txs", count)
		hdr.TxCount, hdr.TxRoot = count, root
	}
	t2 := time.Now()
	phases.WithLabelValues("execute").Observe(t2.Sub(t1).Seconds())
	writes := b.storageWrites()
	bc := &storage.BlockCommit{
		Shard: r.shard, Height: hdr.Height, NextOffset: hdr.NextOffset, BlockOffset: rec.Offset + 1, Writes: writes,
	}
	prep, err := r.n.db.Prepare(bc)
	if err != nil {
		return fmt.Errorf("block %d: %w", hdr.Height, err)
	}
	hdr.StateRoot = prep.Root.Bytes()
	hash, attested := hdr.Hash(), hdr.StateRoot
	if r.n.cfg.AlterRoot != nil {
		attested = r.n.cfg.AlterRoot(r.shard, hdr.Height, attested)
	}
	tAttest := time.Now()
	phases.WithLabelValues("root").Observe(tAttest.Sub(t2).Seconds())
	if err := r.n.voter.local(r.shard, hdr.Height, hash, attested); err != nil {
		return err
	}
	if err := r.n.voter.await(ctx, r.shard, hdr.Height); err != nil {
		return err
	}
	tFinal := time.Now()
	phases.WithLabelValues("final").Observe(tFinal.Sub(tAttest).Seconds())

	receipts := b.receipts(&hdr)
	bc.BlockHash, bc.Header = hash, hdr.Encode()
	bc.Credits = make([][32]byte, len(b.res.Credits))
	for i, c := range b.res.Credits {
		bc.Credits[i] = c.ID()
	}
	bc.Txs = make([]storage.TxEntry, len(receipts))
	for i, c := range receipts {
		// Stored receipts carry no proof: it is recomputed on read.
		bc.Txs[i] = storage.TxEntry{ID: c.ID, Receipt: c.AppendTo(nil)}
	}
	committed, err := r.n.db.Commit(prep)
	if err != nil {
		return fmt.Errorf("committing block %d: %w", hdr.Height, err)
	}
	r.meta = committed.Meta
	proofs, err := b.attachProofs(receipts, committed.Proofs)
	if err != nil {
		return err
	}
	if err := r.n.views.Apply(cache.Delta{Header: hdr, Writes: writes, Proofs: proofs, IDs: b.ids, Senders: b.senders()}); err != nil {
		return err
	}
	r.n.progress.set(r.shard, r.meta)
	for _, c := range receipts {
		r.n.waiters.deliver(c)
	}
	for _, id := range b.replay {
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
	phases.WithLabelValues("commit").Observe(time.Since(tFinal).Seconds())
	m.CommitSeconds.Observe(time.Since(t0).Seconds())
	m.BlockTxs.Observe(float64(len(b.txs)))
	m.Blocks.WithLabelValues(shard).Inc()
	m.Height.WithLabelValues(shard).Set(float64(hdr.Height))
	if r.n.cfg.OnBlock != nil {
		r.n.cfg.OnBlock(BlockEvent{Header: hdr, IDs: b.ids})
	}
	return nil
}

// checkCredit returns the replica's rule for credits (state.Executor's
// CheckCredit): a credit is applied only if this node's own execution of
// the block it names emitted it, so a credit that no block's transfer
// produced (a leader's mistake, or a record written around the leaders)
// fails on every node alike instead of minting money. It waits until this
// node committed that block.
//
// A node that halted the source shard cannot judge the credit: it applies
// it unchecked, which is safe because it commits a block only when a
// quorum attested the same root. If the quorum refused the credit, this
// node's root differs and it halts this shard too, with its own alarm;
// otherwise its other shards keep going.
func (r *replica) checkCredit(ctx context.Context) func(*tx.Tx) (string, error) {
	return func(c *tx.Tx) (string, error) {
		src, h := c.SourceShard, c.SourceHeight
		if src == r.shard || int(src) >= r.n.cfg.Shards || h == 0 {
			return fmt.Sprintf("credit names block %d of shard %d, which cannot credit shard %d", h, src, r.shard), nil
		}
		err := r.n.progress.await(ctx, r.n.voter, src, func(m storage.Meta) bool { return m.Height >= h })
		if errors.Is(err, errHalted) {
			if !r.uncheckedCredits {
				r.uncheckedCredits = true
				r.n.log.Warn("applying credits from a halted shard unchecked: the quorum's attestations decide", "shard", r.shard, "source_shard", src)
			}
			return "", nil
		}
		if err != nil {
			return "", err
		}
		s, sh, err := r.n.db.CreditSource(c.ID())
		switch {
		case errors.Is(err, storage.ErrNotFound):
			return fmt.Sprintf("credit not emitted by block %d of shard %d", h, src), nil
		case err != nil:
			return "", err
		case s != src || sh != h:
			return fmt.Sprintf("credit emitted by block %d of shard %d, not block %d of shard %d", sh, s, h, src), nil
		}
		return "", nil
	}
}

// check validates a block header against the shard's committed position.
func (r *replica) check(h *consensus.Header) error {
	switch {
	case h.Shard != r.shard:
		return fmt.Errorf("block of shard %d in shard %d's stream", h.Shard, r.shard)
	case h.Height != r.meta.Height+1:
		return fmt.Errorf("height %d, want %d", h.Height, r.meta.Height+1)
	case h.Parent != r.meta.BlockHash:
		return fmt.Errorf("parent %x is not the last committed block %x", h.Parent[:8], r.meta.BlockHash[:8])
	case h.FirstOffset < r.meta.NextOffset || h.NextOffset <= h.FirstOffset:
		return fmt.Errorf("transaction range [%d, %d) does not follow %d", h.FirstOffset, h.NextOffset, r.meta.NextOffset)
	}
	return nil
}

// readRange returns the shard's log records in [first, next) from this
// node's own consumer. The leader ends a block's range just after its last
// record, so the range is complete once the record at next-1 is read.
func (r *replica) readRange(ctx context.Context, first, next int64) ([]consensus.Entry, error) {
	var out []consensus.Entry
	for {
		for len(r.ahead) > 0 {
			rec := r.ahead[0]
			if rec.Offset >= next {
				return out, nil
			}
			r.ahead = r.ahead[1:]
			if rec.Offset < first {
				r.n.log.Warn("log record outside every block", "shard", r.shard, "offset", rec.Offset)
				continue
			}
			out = append(out, consensus.Entry{Offset: rec.Offset, Raw: rec.Value})
			if rec.Offset == next-1 {
				return out, nil
			}
		}
		recs, err := r.txs.Poll(ctx)
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case err == nil:
			r.ahead = recs
		case errors.Is(err, ordering.ErrBroker):
			r.n.log.Warn("polling the log", "shard", r.shard, "err", err)
			time.Sleep(pollBackoff)
		default:
			return nil, err
		}
	}
}

// body is a block's transactions after decoding and de-duplication, with
// their execution result. Leaders and replicas build it the same way from
// the same records and state, so they agree on it.
type body struct {
	txs    []*tx.Tx
	ids    []tx.ID
	replay []tx.ID // committed in an earlier block: answered from the stored receipt
	res    *state.Result
}

// execute decodes, de-duplicates and executes a block's log records
// against the shard's state read through rd; known reports transactions
// committed in earlier blocks.
func (n *Node) execute(shard uint32, height uint64, rd getter, known func(tx.ID) (bool, error), checkCredit func(*tx.Tx) (string, error), records []consensus.Entry) (*body, error) {
	b := &body{}
	seen := make(map[tx.ID]bool, len(records))
	for _, rec := range records {
		id := tx.IDOf(rec.Raw)
		t, err := tx.Decode(rec.Raw)
		if err != nil {
			// Only validated transactions are appended by nodes; anything
			// else in the log was written around them and is skipped, the
			// same way on every node.
			n.log.Warn("undecodable log record skipped", "shard", shard, "offset", rec.Offset, "err", err)
			continue
		}
		if seen[id] {
			continue
		}
		seen[id] = true
		if dup, err := known(id); err != nil {
			return nil, err
		} else if dup {
			b.replay = append(b.replay, id)
			continue
		}
		b.txs = append(b.txs, t)
		b.ids = append(b.ids, id)
	}
	shards := n.cfg.Shards
	exec := state.Executor{
		Local: func(k []byte) bool { return ordering.ShardOf(k, shards) == shard },
		Shard: shard, Height: height, CheckCredit: checkCredit,
	}
	res, err := exec.Execute(shardReader{rd, shard}, b.txs)
	if err != nil {
		return nil, err
	}
	b.res = res
	return b, nil
}

// getter reads committed state.
type getter interface {
	Get(shard uint32, key []byte) ([]byte, bool, error)
}

// shardReader reads one shard's committed state for the executor.
type shardReader struct {
	g     getter
	shard uint32
}

func (s shardReader) Get(k []byte) ([]byte, bool, error) { return s.g.Get(s.shard, k) }

func (b *body) count() uint32 { return uint32(len(b.txs)) }

func (b *body) txRoot() [32]byte {
	ids := make([][32]byte, len(b.ids))
	for i, id := range b.ids {
		ids[i] = id
	}
	return consensus.TxRoot(ids)
}

func (b *body) storageWrites() []storage.Write {
	ws := make([]storage.Write, len(b.res.Writes))
	for i, w := range b.res.Writes {
		ws[i] = storage.Write{Key: w.Key, Value: w.Value}
	}
	return ws
}

// receipts are the block's commit receipts, without proofs.
func (b *body) receipts(h *consensus.Header) []p2p.Committed {
	out := make([]p2p.Committed, len(b.txs))
	for i, o := range b.res.Outcomes {
		c := p2p.Committed{ID: b.ids[i], Shard: h.Shard, Height: h.Height, Index: uint32(i), Root: h.StateRoot}
		if !o.OK {
			c.Status, c.Reason = p2p.StatusFailed, o.Reason
		}
		out[i] = c
	}
	return out
}

// attachProofs gives each receipt the proof of the final value of the key
// its transaction wrote, and returns every write's proof in wire form.
func (b *body) attachProofs(receipts []p2p.Committed, proofs []*merkle.Proof) ([][]byte, error) {
	wire := make([][]byte, len(proofs))
	for i, p := range proofs {
		var err error
		if wire[i], err = p.MarshalBinary(); err != nil {
			return nil, err
		}
	}
	lastWrite := make(map[string]int, len(b.res.Writes))
	for i, w := range b.res.Writes {
		lastWrite[string(w.Key)] = i
	}
	for i, o := range b.res.Outcomes {
		if o.Key == nil {
			continue
		}
		final := lastWrite[string(o.Key)]
		receipts[i].Superseded = final != o.Write
		receipts[i].Proof = wire[final]
	}
	return wire, nil
}

// senders are the accounts whose recent-transactions view each transaction
// joins (transfers only).
func (b *body) senders() [][]byte {
	out := make([][]byte, len(b.txs))
	for i, t := range b.txs {
		if t.Kind == tx.KindTransfer {
			out[i] = t.From
		}
	}
	return out
}
