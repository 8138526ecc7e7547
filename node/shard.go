package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"

	"github.com/rustorium/rustorium/internal/retry"
	"github.com/rustorium/rustorium/node/cache"
	"github.com/rustorium/rustorium/node/consensus"
	"github.com/rustorium/rustorium/node/merkle"
	"github.com/rustorium/rustorium/node/metrics"
	"github.com/rustorium/rustorium/node/ordering"
	"github.com/rustorium/rustorium/node/p2p"
	"github.com/rustorium/rustorium/node/state"
	"github.com/rustorium/rustorium/node/storage"
	"github.com/rustorium/rustorium/node/tracing"
	"github.com/rustorium/rustorium/node/tx"
)

// replica is one shard's validation pipeline, which every node runs for
// every shard: it consumes the shard's blocks (read_committed, so only
// blocks whose leader transaction committed), reads each block's
// transaction range from its own copy of the log, re-executes it, attests
// the root it computed, and commits the block once it is final, delivering
// the commit receipts of the transactions submitted to this node.
//
// A block goes through named steps (apply): admit (decode and check the
// header), readRange, execute, prepare (the new root), finalize (attest and
// wait for the quorum), seal (the commit batch and the receipts) and
// commit. admit, execute, reconcile and seal do no I/O of their own and are
// tested without a broker.
type replica struct {
	shard  uint32
	shards int
	log    *slog.Logger

	// What the steps reach, each only what it needs.
	db       *storage.DB
	gate     *gate
	voter    *voter
	faults   *Faults
	views    *cache.Views
	progress *progress
	waiters  *waiters
	metrics  *metrics.Node
	onBlock  func(BlockEvent)
	tracer   *tracing.Tracer // nil: tracing off

	blocks *ordering.Consumer // blocks-<shard>
	txs    *ordering.Consumer // transactions-<shard>
	ahead  []ordering.Record  // transactions read past the last block's range
	// handoff holds the ranges this node's leader cut; behind is set once
	// a range came from there, so txs has not read past it and must be
	// moved to the next range it reads (SetNext).
	handoff *handoff
	behind  bool
	// fromLeader and fromLog count the ranges read each way
	// (metrics.Node.Ranges).
	fromLeader, fromLog prometheus.Counter
	meta                storage.Meta

	uncheckedCredits bool // logged that credits from a halted shard go unchecked
}

func (n *Node) newReplica(ctx context.Context, shard uint32) (_ *replica, err error) {
	meta, _, err := n.db.ShardMeta(shard)
	if err != nil {
		return nil, err
	}
	r := &replica{
		shard: shard, shards: n.cfg.Shards, log: n.log,
		db: n.db, gate: n.gate, voter: n.voter, faults: &n.faults, views: n.views,
		progress: n.progress, waiters: &n.waiters, metrics: n.metrics, onBlock: n.cfg.OnBlock,
		tracer: n.tracer, meta: meta, handoff: n.handoff,
		fromLeader: n.metrics.Ranges.WithLabelValues("leader"), fromLog: n.metrics.Ranges.WithLabelValues("log"),
	}
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
		if err := r.gate.wait(ctx); err != nil {
			return nil
		}
		recs, err := r.blocks.Poll(ctx)
		var polled time.Time
		if r.tracer != nil {
			polled = time.Now()
		}
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil:
		case errors.Is(err, ordering.ErrBroker):
			r.log.Warn("polling blocks", "shard", r.shard, "err", err)
			_ = retry.Sleep(ctx, pollBackoff) // a ctx that ends is seen above
		default:
			return err
		}
		for _, rec := range recs {
			if err := r.apply(ctx, rec, polled); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
	}
}

// apply validates, executes, attests and, once final, commits one block,
// polled at polled (zero when not tracing).
func (r *replica) apply(ctx context.Context, rec ordering.Record, polled time.Time) error {
	hdr, ok := r.next(rec)
	if !ok {
		return nil
	}
	// The other shards' replicas that prepare meanwhile wait for this
	// block (at most storage.Options.CombineWait), so that the blocks of a
	// round share their hashing.
	r.db.Expect(r.shard, hdr.Height)
	clock := startPhases(r.metrics.BlockSeconds, hdr.Time)
	entries, err := r.readRange(ctx, hdr.Height, hdr.FirstOffset, hdr.NextOffset)
	if err != nil {
		return err
	}
	clock.lap("read")
	var b *body
	if err := r.whileStoreDown(ctx, func() (err error) { b, err = r.execute(ctx, &hdr, entries); return err }); err != nil {
		return err
	}
	clock.lap("execute")
	// The block's sampled transactions get its replica spans (nil: none,
	// or tracing is off).
	sampled := tracing.SampledIDs(r.tracer, b.ids)
	bc := commitBatch(&hdr, rec.Offset, b)
	var prep *storage.Prepared
	if err := r.whileStoreDown(ctx, func() (err error) { prep, err = r.db.Prepare(bc); return err }); err != nil {
		return fmt.Errorf("block %d: %w", hdr.Height, err)
	}
	hdr.StateRoot = prep.Root.Bytes()
	hash := hdr.Hash()
	clock.lap("root")
	var attested time.Time
	if err := r.finalize(ctx, hdr.Height, hash, hdr.StateRoot, sampled != nil, &attested); err != nil {
		return err
	}
	clock.lap("final")
	receipts := seal(bc, hash, &hdr, b)
	var committed time.Time
	if err := r.commit(ctx, prep, hdr, hash, b, receipts, sampled != nil, &committed); err != nil {
		return err
	}
	clock.lap("commit")
	if r.tracer != nil {
		signers := r.voter.signersOf(r.shard, hdr.Height)
		if sampled != nil {
			r.trace(sampled, hdr, len(b.ids), polled, clock, attested, committed, signers)
		}
	}
	r.observe(hdr, b, clock)
	return nil
}

// trace records the replica spans of a committed block's sampled
// transactions from the block's phase times: polled is when the replica's
// poll returned the block, attested when its attestation was sent,
// committed when its receipts were about to be delivered, signers the
// validators the quorum counted.
func (r *replica) trace(sampled []tx.ID, hdr consensus.Header, txs int, polled time.Time, clock *phases, attested, committed time.Time, signers []ed25519.PublicKey) {
	attrs := []attribute.KeyValue{tracing.AttrShard.Int64(int64(hdr.Shard)), tracing.AttrHeight.Int64(int64(hdr.Height)),
		tracing.AttrBlockTxs.Int(txs), tracing.AttrSampledInBlock.Int(len(sampled))}
	names := make([]string, len(signers))
	for i, k := range signers {
		names[i] = tracing.KeyPrefix(k)
	}
	quorum := append(attrs[:len(attrs):len(attrs)], tracing.AttrQuorumSigners.StringSlice(names))
	t := clock.laps
	steps := []struct {
		name       tracing.SpanName
		start, end time.Time
		attrs      []attribute.KeyValue
	}{
		{tracing.SpanReplicaQueue, polled, clock.start, attrs},
		{tracing.SpanReplicaRead, clock.start, t[0], attrs},
		{tracing.SpanExecute, t[0], t[1], attrs},
		{tracing.SpanMerkle, t[1], t[2], attrs},
		{tracing.SpanAttest, t[2], attested, attrs},
		{tracing.SpanQuorum, attested, t[3], quorum},
		{tracing.SpanCommit, t[3], committed, attrs},
	}
	for _, id := range sampled {
		for _, s := range steps {
			r.tracer.Record(id, tracing.AnchorCommit, s.name, s.start, s.end, s.attrs...)
		}
	}
}

// verdict is what a replica does with a record of its blocks stream.
type verdict int

const (
	applyBlock      verdict = iota // the shard's next block
	skipUndecodable                // not a block header
	skipCommitted                  // at a height this node committed (before a restart, normally)
	skipInvalid                    // does not follow the committed position
)

// admit decodes a record of shard's blocks stream and judges it against
// the shard's committed position. Every node judges a record alike, so
// every node skips the same ones. The error says why a block is skipped.
func admit(shard uint32, meta storage.Meta, raw []byte) (consensus.Header, verdict, error) {
	hdr, err := consensus.DecodeHeader(raw)
	switch {
	case err != nil:
		return hdr, skipUndecodable, err
	case hdr.Height <= meta.Height && hdr.Shard == shard:
		return hdr, skipCommitted, nil
	}
	if err := check(shard, meta, &hdr); err != nil {
		return hdr, skipInvalid, err
	}
	return hdr, applyBlock, nil
}

// check validates a block header against the shard's committed position.
func check(shard uint32, meta storage.Meta, h *consensus.Header) error {
	switch {
	case h.Shard != shard:
		return fmt.Errorf("block of shard %d in shard %d's stream", h.Shard, shard)
	case h.Height != meta.Height+1:
		return fmt.Errorf("height %d, want %d", h.Height, meta.Height+1)
	case h.Parent != meta.BlockHash:
		return fmt.Errorf("parent %x is not the last committed block %x", h.Parent[:8], meta.BlockHash[:8])
	case h.FirstOffset < meta.NextOffset || h.NextOffset <= h.FirstOffset:
		return fmt.Errorf("transaction range [%d, %d) does not follow %d", h.FirstOffset, h.NextOffset, meta.NextOffset)
	}
	return nil
}

// next returns rec's header if it is the shard's next block to apply, and
// logs and counts the records it skips.
func (r *replica) next(rec ordering.Record) (consensus.Header, bool) {
	hdr, v, err := admit(r.shard, r.meta, rec.Value)
	switch v {
	case skipUndecodable:
		r.log.Error("undecodable block skipped", "shard", r.shard, "offset", rec.Offset, "err", err)
	case skipCommitted:
		// A different block at a committed height means two leaders built
		// on one parent: the first one committed wins everywhere, the
		// other is skipped.
		if stored, err := r.db.Block(r.shard, hdr.Height); err == nil {
			if sh, err := consensus.DecodeHeader(stored); err == nil && sh.Hash() != hdr.Hash() {
				r.log.Error("ALARM: a second block at a committed height skipped", "shard", r.shard, "height", hdr.Height, "offset", rec.Offset)
				r.alarm("conflicting_block")
			}
		}
	case skipInvalid:
		// A leader that wrote it waits for a height that never commits.
		r.log.Error("ALARM: invalid block skipped", "shard", r.shard, "offset", rec.Offset, "height", hdr.Height, "err", err)
		r.alarm("invalid_block")
	}
	return hdr, v == applyBlock
}

func (r *replica) alarm(kind string) {
	r.metrics.Alarms.WithLabelValues(strconv.FormatUint(uint64(r.shard), 10), kind).Inc()
}

// execute executes a block's entries against the shard's committed state
// and makes hdr describe the transactions this node executed.
func (r *replica) execute(ctx context.Context, hdr *consensus.Header, entries []consensus.Entry) (*body, error) {
	b, err := blockExec{
		Shards: r.shards, Shard: r.shard, Height: hdr.Height, State: r.db, Log: r.log,
		Known: func(id tx.ID) (bool, error) {
			if r.faults.seen(id) {
				return true, nil
			}
			return r.db.HasTx(id)
		},
		CheckCredit: r.checkCredit(ctx),
	}.run(entries)
	if err != nil {
		return nil, fmt.Errorf("executing block %d: %w", hdr.Height, err)
	}
	if leaderTxs, differ := reconcile(hdr, b); differ {
		r.log.Error("block's transactions differ from the leader's", "shard", r.shard, "height", hdr.Height,
			"leader_txs", leaderTxs, "our_txs", hdr.TxCount)
	}
	return b, nil
}

// reconcile makes hdr name the transactions of b, the block this node
// executed, and reports whether the leader's header named others (another
// range, or another view of which were committed) and how many it named.
// The node attests the block it executed: its hash then differs from the
// quorum's and the tracker halts the shard, even where the state root
// happens to agree (the differing transactions all failed).
func reconcile(hdr *consensus.Header, b *body) (leaderTxs uint32, differ bool) {
	count, root := b.count(), b.txRoot()
	if count == hdr.TxCount && root == hdr.TxRoot {
		return hdr.TxCount, false
	}
	leaderTxs = hdr.TxCount
	hdr.TxCount, hdr.TxRoot = count, root
	return leaderTxs, true
}

// commitBatch is the storage batch of block hdr (read from the blocks
// stream at offset) with b's writes: what Prepare needs. seal completes it
// once the block is final.
func commitBatch(hdr *consensus.Header, offset int64, b *body) *storage.BlockCommit {
	return &storage.BlockCommit{
		Shard: hdr.Shard, Height: hdr.Height, NextOffset: hdr.NextOffset, BlockOffset: offset + 1, Writes: b.storageWrites(),
	}
}

// finalize attests this node's result for a block (or the one a fault
// makes it attest) and waits until the block is final. With stamp, it
// sets *at to when the attestation was sent.
func (r *replica) finalize(ctx context.Context, height uint64, hash, root [32]byte, stamp bool, at *time.Time) error {
	attested := r.faults.attested(r.shard, height, root)
	if err := r.voter.local(r.shard, height, hash, attested); err != nil {
		return err
	}
	if stamp {
		*at = time.Now()
	}
	return r.voter.await(ctx, r.shard, height)
}

// seal completes bc, the commit batch of the final block hdr (hash, with
// its state root), with the header, the credits b emitted and the stored
// receipts, and returns the block's receipts (without proofs).
func seal(bc *storage.BlockCommit, hash [32]byte, hdr *consensus.Header, b *body) []p2p.Committed {
	receipts := b.receipts(hdr)
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
	return receipts
}

// commit writes the prepared, sealed block, then makes it visible: the
// views, the shard's progress, and the receipts of its transactions and
// of those it replays. Nothing is visible, no receipt sent, before the
// block's batch committed. With stamp, it sets *at to when it starts
// delivering the receipts.
func (r *replica) commit(ctx context.Context, prep *storage.Prepared, hdr consensus.Header, hash [32]byte, b *body, receipts []p2p.Committed, stamp bool, at *time.Time) error {
	committed, err := r.commitBlock(ctx, prep, hash)
	if err != nil {
		return fmt.Errorf("committing block %d: %w", hdr.Height, err)
	}
	r.meta = committed.Meta
	proofs, err := b.attachProofs(receipts, committed.Proofs)
	if err != nil {
		return err
	}
	if err := r.views.Apply(cache.Delta{Header: hdr, Writes: prep.Block.Writes, Proofs: proofs, IDs: b.ids, Senders: b.senders()}); err != nil {
		return err
	}
	r.progress.set(r.shard, r.meta)
	if stamp {
		*at = time.Now()
	}
	for _, c := range receipts {
		r.waiters.deliver(c)
	}
	for _, id := range b.replay {
		var raw []byte
		if err := r.whileStoreDown(ctx, func() (err error) { raw, err = r.db.Receipt(id); return err }); err != nil {
			return err
		}
		if c, err := p2p.DecodeCommitted(raw); err == nil {
			r.waiters.deliver(c)
		}
	}
	return nil
}

// commitBlock commits the prepared final block (hash). A store that
// cannot take writes (storage.ErrWrite: disk full, I/O errors) does not
// stop the shard: the replica tries storage.Recover, which reopens the
// store once the disk takes writes again, with a backoff growing to 1s,
// then commits the block. (The store reports each failure: the node counts
// and logs them, rate-limited.) A block whose failed commit reached the
// disk whole is committed after the reopen: its proofs are read back from
// the store.
func (r *replica) commitBlock(ctx context.Context, prep *storage.Prepared, hash [32]byte) (*storage.CommitResult, error) {
	var failed bool
	var bo retry.Backoff
	for {
		res, err := r.db.Commit(prep)
		switch {
		case err == nil:
			return res, nil
		case errors.Is(err, storage.ErrWrite):
			failed = true
		case failed && errors.Is(err, storage.ErrHeightMismatch):
			return r.landed(prep, hash)
		default:
			return nil, err
		}
		if err := bo.Wait(ctx); err != nil {
			return nil, err
		}
		_ = r.db.Recover(ctx) // a failure is reported by the store
	}
}

// whileStoreDown runs f, a step that reads the store, again while it fails
// with storage.ErrWrite: the store failed a write and is closed until it
// reopens (storage.Recover, tried before each attempt after the first,
// with a backoff growing to 1s). The steps it wraps have no effect but
// their result, so running them again is safe.
func (r *replica) whileStoreDown(ctx context.Context, f func() error) error {
	var bo retry.Backoff
	for {
		err := f()
		if !errors.Is(err, storage.ErrWrite) {
			return err
		}
		if err := bo.Wait(ctx); err != nil {
			return err
		}
		_ = r.db.Recover(ctx) // a failure is reported by the store
	}
}

// landed returns the outcome of the prepared block (hash) that the store
// holds although its commit failed: the failed batch reached the disk
// whole (a sync failed after its write), and the reopened store has it.
func (r *replica) landed(prep *storage.Prepared, hash [32]byte) (*storage.CommitResult, error) {
	c := prep.Block
	meta, _, err := r.db.ShardMeta(c.Shard)
	if err != nil {
		return nil, err
	}
	if meta.Height != c.Height || meta.BlockHash != hash {
		return nil, fmt.Errorf("%w: the store moved to height %d (block %x) while block %d (%x) failed to commit",
			storage.ErrHeightMismatch, meta.Height, meta.BlockHash[:8], c.Height, hash[:8])
	}
	res := &storage.CommitResult{Root: meta.Root, Meta: meta, Proofs: make([]*merkle.Proof, len(c.Writes))}
	for i, w := range c.Writes {
		_, p, root, err := r.db.Read(c.Shard, w.Key)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return nil, err
		}
		if root != meta.Root {
			return nil, fmt.Errorf("%w: shard %d moved past height %d", storage.ErrHeightMismatch, c.Shard, c.Height)
		}
		res.Proofs[i] = p
	}
	r.log.Warn("a block whose commit failed reached the disk whole: it is committed", "shard", c.Shard, "height", c.Height)
	return res, nil
}

// observe records a committed block in the metrics and tells OnBlock.
func (r *replica) observe(hdr consensus.Header, b *body, clock *phases) {
	m, shard := r.metrics, strconv.FormatUint(uint64(r.shard), 10)
	m.CommitSeconds.Observe(time.Since(clock.start).Seconds())
	m.BlockTxs.Observe(float64(len(b.txs)))
	m.Blocks.WithLabelValues(shard).Inc()
	m.Height.WithLabelValues(shard).Set(float64(hdr.Height))
	if r.onBlock != nil {
		r.onBlock(BlockEvent{Header: hdr, IDs: b.ids})
	}
}

// phases times a block's phases into a histogram by phase name.
type phases struct {
	h           *prometheus.HistogramVec
	start, last time.Time
	laps        [5]time.Time // the end of each phase: read, execute, root, final, commit
	n           int
}

// startPhases starts timing a block cut at cut (unix nanoseconds): the
// "arrive" phase is from then to now.
func startPhases(h *prometheus.HistogramVec, cut int64) *phases {
	now := time.Now()
	h.WithLabelValues("arrive").Observe(now.Sub(time.Unix(0, cut)).Seconds())
	return &phases{h: h, start: now, last: now}
}

// lap ends the phase under way, named phase, and starts the next.
func (p *phases) lap(phase string) {
	now := time.Now()
	p.h.WithLabelValues(phase).Observe(now.Sub(p.last).Seconds())
	p.last = now
	if p.n < len(p.laps) {
		p.laps[p.n] = now
		p.n++
	}
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
		if src == r.shard || int(src) >= r.shards || h == 0 {
			return fmt.Sprintf("credit names block %d of shard %d, which cannot credit shard %d", h, src, r.shard), nil
		}
		err := r.progress.await(ctx, r.voter, src, func(m storage.Meta) bool { return m.Height >= h })
		if errors.Is(err, errHalted) {
			if !r.uncheckedCredits {
				r.uncheckedCredits = true
				r.log.Warn("applying credits from a halted shard unchecked: the quorum's attestations decide", "shard", r.shard, "source_shard", src)
			}
			return "", nil
		}
		if err != nil {
			return "", err
		}
		s, sh, err := r.db.CreditSource(c.ID())
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

// readRange returns the shard's log records in [first, next), block
// height's: those this node's leader handed over when it cut the block
// (handoff), or else from this node's own consumer. The leader ends a
// block's range just after its last record, so the range is complete once
// the record at next-1 is read.
func (r *replica) readRange(ctx context.Context, height uint64, first, next int64) ([]consensus.Entry, error) {
	if out, ok := r.handoff.take(r.shard, first, next); ok && !r.faults.handoffOff(r.shard, height) {
		r.fromLeader.Inc()
		r.behind = true
		return out, nil
	}
	r.fromLog.Inc()
	if r.behind {
		// The consumer stopped where the last range read from the log
		// ended (or fetched on from there): this range starts after the
		// ones handed over since.
		r.ahead, r.behind = nil, false
		if err := r.txs.SetNext(first); err != nil {
			return nil, err
		}
	}
	var out []consensus.Entry
	for {
		for len(r.ahead) > 0 {
			rec := r.ahead[0]
			if rec.Offset >= next {
				return out, nil
			}
			r.ahead = r.ahead[1:]
			if rec.Offset < first {
				r.log.Warn("log record outside every block", "shard", r.shard, "offset", rec.Offset)
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
			r.log.Warn("polling the log", "shard", r.shard, "err", err)
			if err := retry.Sleep(ctx, pollBackoff); err != nil {
				return nil, err
			}
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

// blockExec executes one block of a shard: the same way on a leader (on
// its tip) and on a replica (on committed state).
type blockExec struct {
	Shards int    // the cluster's shard count: which accounts are local
	Shard  uint32 // the block's shard
	Height uint64 // the block's height (the source of the credits it emits)
	// State reads the shard's state the block builds on.
	State getter
	// Known reports transactions committed in earlier blocks.
	Known func(tx.ID) (bool, error)
	// CheckCredit judges credits (state.Executor.CheckCredit); nil applies
	// them unchecked.
	CheckCredit func(*tx.Tx) (string, error)
	// Log is told of the records skipped as undecodable.
	Log *slog.Logger
}

// run decodes, de-duplicates and executes a block's log records.
func (e blockExec) run(records []consensus.Entry) (*body, error) {
	b := &body{}
	seen := make(map[tx.ID]bool, len(records))
	for _, rec := range records {
		id := tx.IDOf(rec.Raw)
		t, err := tx.Decode(rec.Raw)
		if err != nil {
			// Only validated transactions are appended by nodes; anything
			// else in the log was written around them and is skipped, the
			// same way on every node.
			e.Log.Warn("undecodable log record skipped", "shard", e.Shard, "offset", rec.Offset, "err", err)
			continue
		}
		if seen[id] {
			continue
		}
		seen[id] = true
		if dup, err := e.Known(id); err != nil {
			return nil, err
		} else if dup {
			b.replay = append(b.replay, id)
			continue
		}
		b.txs = append(b.txs, t)
		b.ids = append(b.ids, id)
	}
	shards, shard := e.Shards, e.Shard
	exec := state.Executor{
		Local: func(k []byte) bool { return ordering.ShardOf(k, shards) == shard },
		Shard: shard, Height: e.Height, CheckCredit: e.CheckCredit,
	}
	res, err := exec.Execute(shardReader{e.State, shard}, b.txs)
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
