package node

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/rustorium/rustorium/internal/retry"
	"github.com/rustorium/rustorium/node/consensus"
	"github.com/rustorium/rustorium/node/ordering"
	"github.com/rustorium/rustorium/node/storage"
	"github.com/rustorium/rustorium/node/tracing"
	"github.com/rustorium/rustorium/node/tx"
)

// leader proposes the blocks of the shards the consumer group assigned to
// this node. A round polls the transactions of those shards, cuts them into
// blocks (consensus.Cutter) on top of each shard's tip — its committed state
// plus the blocks this leader published that are not committed here yet —
// executes them (for the cross-shard credits they emit), and publishes the
// blocks and credits in one Kafka transaction that also commits the
// consumed offsets (ordering.Publisher). It does not compute Merkle roots:
// every node's replica does that, the leader's own included.
//
// A leader runs at most maxInflight published blocks per shard ahead of its
// own replica, and after a rebalance or an aborted round it first catches up
// with everything already published for the shard (catchUp).
type leader struct {
	n      *Node
	policy consensus.Hold // the node's Config.Block.Hold

	pub atomic.Pointer[ordering.Publisher] // the open one, nil between them

	mu    sync.Mutex
	ready map[uint32]bool // caught up with the shard's committed blocks since it was assigned
	gen   uint64          // counts assignment changes: a catch-up across one does not count

	cuts []cutTrace // the round's blocks holding sampled transactions (tracing only; the rounds goroutine's)
}

// cutTrace is what tracing records of a block a leader cut: its sampled
// transactions get its leader spans.
type cutTrace struct {
	ids                []tx.ID // the sampled ones
	shard              uint32
	height             uint64
	txs, bytes         int
	waitStart, waitEnd time.Time // waiting for its replica, maxInflight blocks ahead (zero: it did not)
	cutStart, cutEnd   time.Time
	pollEnd            time.Time // the end of the last poll that gave the block transactions
}

func newLeader(n *Node) *leader {
	return &leader{n: n, policy: n.cfg.Block.Hold, ready: map[uint32]bool{}}
}

// leading returns the shards this node leads, sorted.
func (l *leader) leading() []uint32 {
	if pub := l.pub.Load(); pub != nil {
		return pub.Assigned()
	}
	return nil
}

// run keeps a Publisher open and proposes blocks until ctx ends. A
// Publisher that fails is closed and a new one joins the group.
func (l *leader) run(ctx context.Context) {
	backoff := retry.Backoff{Min: pollBackoff, Max: 5 * time.Second}
	for ctx.Err() == nil {
		pub, err := ordering.OpenPublisher(ctx, ordering.PublisherConfig{
			Config:             l.n.ocfg,
			NodeID:             l.n.cfg.NodeID,
			SessionTimeout:     l.n.cfg.Leadership.SessionTimeout,
			TransactionTimeout: l.n.cfg.Leadership.TransactionTimeout,
			OnAssigned:         func(s []uint32) { l.assign(s, true) },
			OnRevoked:          func(s []uint32) { l.assign(s, false) },
		})
		if err == nil {
			l.pub.Store(pub)
			err = l.rounds(ctx, pub)
			l.pub.Store(nil)
			pub.Close()
			l.assign(allShards(l.n.cfg.Shards), false)
		}
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errHalted) {
			// This node diverged on a shard it was given: it cannot build
			// on that shard's state, and the round's polled records must
			// not be committed as consumed without a block. It leaves the
			// group for good (the round was never published, so the next
			// leader polls them again) and keeps replicating the others.
			l.n.metrics.Resigned.Set(1)
			l.n.log.Error("ALARM: this node stops leading shards: it halted one it was assigned", "err", err)
			return
		}
		wait := backoff.Next()
		l.n.log.Warn("shard leadership restarts", "err", err, "after", wait)
		if retry.Sleep(ctx, wait) != nil {
			return
		}
	}
}

func allShards(n int) []uint32 {
	out := make([]uint32, n)
	for i := range out {
		out[i] = uint32(i)
	}
	return out
}

// assign records gained or lost shards. A gained shard is not ready until
// this node committed every block already published for it.
func (l *leader) assign(shards []uint32, gained bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gen++
	for _, s := range shards {
		delete(l.ready, s)
		v := 0.0
		if gained {
			v = 1
			l.n.log.Info("leading shard", "shard", s, "node", l.n.cfg.NodeID)
		}
		l.n.metrics.Leader.WithLabelValues(strconv.FormatUint(uint64(s), 10)).Set(v)
	}
}

func (l *leader) isReady(s uint32) (bool, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ready[s], l.gen
}

// setReady marks the shard caught up, unless the assignment changed since
// gen (another leader may have published blocks meanwhile).
func (l *leader) setReady(s uint32, gen uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gen != gen {
		return false
	}
	l.ready[s] = true
	return true
}

// maxInflight bounds the blocks per shard that a leader proposed and its
// node has not committed yet: a leader runs at most this far ahead of its
// own replica.
const maxInflight = 8

// rounds proposes blocks until ctx ends or the Publisher fails.
func (l *leader) rounds(ctx context.Context, pub *ordering.Publisher) error {
	tips := make([]tip, l.n.cfg.Shards)
	for {
		if err := l.n.gate.wait(ctx); err != nil {
			return nil
		}
		t0 := time.Now()
		batches, err := pub.Poll(ctx, pollMax)
		t1 := time.Now()
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil:
		case errors.Is(err, ordering.ErrBroker):
			l.n.log.Warn("leader polling the log", "err", err)
			if retry.Sleep(ctx, pollBackoff) != nil {
				return nil
			}
			continue
		default:
			return err
		}
		l.cuts = l.cuts[:0]
		rd := &round{cutters: map[uint32]*consensus.Cutter{}, polled: map[uint32]time.Time{}}
		err = l.propose(ctx, pub, tips, batches, rd, t1)
		if err == nil {
			err = l.hold(ctx, pub, tips, rd)
		}
		if err == nil {
			err = l.flush(ctx, tips, rd)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		outs, proposed := rd.outs, rd.proposed
		t2 := time.Now()
		// A round under way finishes even if the node is closing: an
		// abandoned transaction would hide the shards' logs from every
		// reader until the broker times it out.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
		committed, err := pub.Publish(pctx, outs)
		cancel()
		t3 := time.Now()
		if len(l.cuts) > 0 {
			l.traceRound(rd.records, len(proposed), committed && err == nil, t0, t1, t2, t3)
		}
		if err != nil {
			return err
		}
		if !committed {
			// Rebalanced or fenced: nothing of this round is visible.
			// Every shard this node still leads catches up again, from
			// what the node committed.
			l.n.metrics.Aborted.Inc()
			l.mu.Lock()
			clear(l.ready)
			l.mu.Unlock()
			continue
		}
		for i := range tips {
			tips[i].published = len(tips[i].blocks)
		}
		// This node's replicas prepare the round's blocks together, as
		// they come (storage.DB.Expect).
		for _, h := range proposed {
			l.n.db.Expect(h.Shard, h.Height)
		}
		for _, h := range proposed {
			l.n.metrics.Proposed.WithLabelValues(strconv.FormatUint(uint64(h.Shard), 10)).Inc()
		}
		phases := l.n.metrics.RoundSeconds
		phases.WithLabelValues("poll").Observe(t1.Sub(t0).Seconds())
		phases.WithLabelValues("propose").Observe(t2.Sub(t1).Seconds())
		phases.WithLabelValues("publish").Observe(t3.Sub(t2).Seconds())
	}
}

// tip is a shard's state as its leader sees it: the committed state plus
// the blocks it published that this node has not committed yet. Blocks
// build on the tip, so a leader need not wait for its last block to be
// final before it proposes the next.
type tip struct {
	blocks    []pendingBlock // in height order
	published int            // how many of blocks (the first ones) a committed transaction published
}

// pendingBlock is a published block that is not committed here yet.
type pendingBlock struct {
	hdr    consensus.Header
	writes map[string][]byte // final value of each key the block wrote
	ids    map[tx.ID]bool
}

// prune drops the blocks the node committed (up to height).
func (t *tip) prune(height uint64) {
	i := 0
	for i < len(t.blocks) && t.blocks[i].hdr.Height <= height {
		i++
	}
	t.blocks = t.blocks[i:]
	t.published = max(0, t.published-i)
}

// tipState reads a shard's state at its tip: pending blocks first (newest
// wins), then the store.
type tipState struct {
	db  *storage.DB
	tip *tip
}

func (s tipState) Get(shard uint32, key []byte) ([]byte, bool, error) {
	for i := len(s.tip.blocks) - 1; i >= 0; i-- {
		if v, ok := s.tip.blocks[i].writes[string(key)]; ok {
			return v, true, nil
		}
	}
	return s.db.Get(shard, key)
}

func (s tipState) known(id tx.ID) (bool, error) {
	for _, b := range s.tip.blocks {
		if b.ids[id] {
			return true, nil
		}
	}
	return s.db.HasTx(id)
}

// round is what a leader round has cut so far: a cutter per shard that
// had records, holding the entries not yet in a block, and the outputs and
// headers of the blocks cut.
type round struct {
	cutters  map[uint32]*consensus.Cutter
	polled   map[uint32]time.Time // per shard, the end of the last poll that returned its records
	records  int                  // polled in the round
	outs     []ordering.Output
	proposed []consensus.Header
}

// propose adds the polled transactions of each shard, which arrived at now,
// to the shard's block on its tip (consensus.Cutter), and cuts every block
// they fill (MaxTxs, MaxBytes), with the credits their transfers emit to
// other shards; what does not fill a block stays pending for hold and
// flush. The blocks join the tip at once; if the round's transaction
// aborts, every tip is dropped (see rounds).
func (l *leader) propose(ctx context.Context, pub *ordering.Publisher, tips []tip, batches []ordering.Batch, rd *round, now time.Time) error {
	for _, b := range batches {
		t := &tips[b.Shard]
		cutter := rd.cutters[b.Shard]
		if cutter == nil { // the shard's first records of the round
			if ready, _ := l.isReady(b.Shard); !ready {
				t.blocks, t.published = nil, 0
			}
			if err := l.catchUp(ctx, pub, b.Shard); err != nil {
				return fmt.Errorf("shard %d: %w", b.Shard, err)
			}
			cutter = consensus.NewCutter(l.n.cfg.Block)
			rd.cutters[b.Shard] = cutter
		}
		rd.records += len(b.Records)
		if len(b.Records) > 0 {
			rd.polled[b.Shard] = now
		}
		for _, rec := range b.Records {
			if blk := cutter.Add(now, consensus.Entry{Offset: rec.Offset, Raw: rec.Value}); blk != nil {
				if err := l.cutInto(ctx, rd, t, b.Shard, blk); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// cutInto cuts blk on the shard's tip and adds its outputs to the round.
func (l *leader) cutInto(ctx context.Context, rd *round, t *tip, shard uint32, blk []consensus.Entry) error {
	traced := len(l.cuts)
	out, hdr, err := l.cut(ctx, t, shard, blk)
	if err != nil {
		return fmt.Errorf("shard %d: %w", shard, err)
	}
	if len(l.cuts) > traced { // the block's sampled transactions arrived by the shard's last poll
		l.cuts[len(l.cuts)-1].pollEnd = rd.polled[shard]
	}
	if hdr != nil {
		rd.outs = append(rd.outs, out...)
		rd.proposed = append(rd.proposed, *hdr)
	}
	return nil
}

// flush cuts every shard's pending entries into a last, smaller block, in
// shard order: a round never carries transactions over to the next one
// (its transaction commits the consumption of everything it polled).
func (l *leader) flush(ctx context.Context, tips []tip, rd *round) error {
	for _, s := range slices.Sorted(maps.Keys(rd.cutters)) {
		if blk := rd.cutters[s].Flush(); blk != nil {
			if err := l.cutInto(ctx, rd, &tips[s], s, blk); err != nil {
				return err
			}
		}
	}
	return nil
}

// hold keeps the round open while a shard with pending entries holds its
// block (consensus.Cutter.Hold): the shard's previous block is in flight —
// published, not yet committed by this node — and the block is neither
// full nor MaxWait old. Meanwhile it polls for more transactions, which
// join the blocks (and cut those they fill), until no shard holds any more
// (its in-flight block committed, or MaxWait passed since its block's
// first entry) or the round has polled pollMax records. Under load blocks
// so grow with what arrives while the previous ones commit, and the
// per-block costs (the Kafka transaction, the replica's tree update,
// proofs and Pebble batch, attestations) are shared by more transactions;
// at low load nothing is in flight and the round goes on at once. The
// other shards' blocks, cut with the same round, wait at most as long. A
// failed poll ends the hold (the next round's poll sees the error again).
func (l *leader) hold(ctx context.Context, pub *ordering.Publisher, tips []tip, rd *round) error {
	for rd.records < pollMax {
		committed, changed := l.n.progress.heights()
		deadline, ok := l.holding(time.Now(), tips, rd, committed)
		if !ok {
			return nil
		}
		pctx, cancel := context.WithDeadline(ctx, deadline)
		go func() { // ends with pctx, cancelled below at the latest
			select {
			case <-changed: // a block committed: an in-flight one may be done
				cancel()
			case <-pctx.Done():
			}
		}()
		batches, err := pub.Poll(pctx, pollMax-rd.records)
		now := time.Now()
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil && pctx.Err() == nil {
			return nil
		}
		if err := l.propose(ctx, pub, tips, batches, rd, now); err != nil {
			return err
		}
	}
	return nil
}

// holding reports whether a shard with pending entries holds its block at
// now, given each shard's committed height, and the earliest deadline
// (MaxWait after the first entry) of the shards that hold. A shard's
// block is held while its own previous block is in flight, or with
// consensus.HoldLeader while any block the leader published is.
func (l *leader) holding(now time.Time, tips []tip, rd *round, committed []uint64) (deadline time.Time, hold bool) {
	inflight := func(s uint32) bool {
		t := &tips[s]
		return t.published > 0 && t.blocks[t.published-1].hdr.Height > committed[s]
	}
	anyInflight := false
	if l.policy == consensus.HoldLeader {
		for s := range tips {
			if inflight(uint32(s)) {
				anyInflight = true
				break
			}
		}
	}
	for s, c := range rd.cutters {
		if !c.Hold(now, anyInflight || inflight(s)) {
			continue
		}
		if d, _ := c.Deadline(); !hold || d.Before(deadline) {
			deadline = d
		}
		hold = true
	}
	return deadline, hold
}

// cut builds one block of entries on the shard's tip and adds it there. It
// returns the block's outputs (the block and its credits), or a nil header
// if every entry is already in a block.
func (l *leader) cut(ctx context.Context, t *tip, shard uint32, entries []consensus.Entry) ([]ordering.Output, *consensus.Header, error) {
	var waitStart, waitEnd time.Time
	// Only published blocks can be waited for: the blocks of this round
	// commit with the round.
	if t.published >= maxInflight {
		if l.n.tracer != nil {
			waitStart = time.Now()
		}
		h := t.blocks[0].hdr.Height
		if err := l.n.progress.await(ctx, l.n.voter, shard, func(m storage.Meta) bool { return m.Height >= h }); err != nil {
			return nil, nil, err
		}
		if l.n.tracer != nil {
			waitEnd = time.Now()
		}
	}
	var start time.Time
	if l.n.tracer != nil {
		start = time.Now()
	}
	meta, _, err := l.n.db.ShardMeta(shard)
	if err != nil {
		return nil, nil, err
	}
	t.prune(meta.Height)
	height, parent, next := meta.Height+1, meta.BlockHash, meta.NextOffset
	if n := len(t.blocks); n > 0 {
		last := &t.blocks[n-1].hdr
		height, parent, next = last.Height+1, last.Hash(), last.NextOffset
	}
	for len(entries) > 0 && entries[0].Offset < next {
		entries = entries[1:] // already in a block
	}
	if len(entries) == 0 {
		return nil, nil, nil
	}
	ts := tipState{l.n.db, t}
	// The leader applies credits without checking their source: its tip is
	// a forecast, and the replicas decide (replica.checkCredit).
	body, err := blockExec{Shards: l.n.cfg.Shards, Shard: shard, Height: height, State: ts, Known: ts.known, Log: l.n.log}.run(entries)
	if err != nil {
		return nil, nil, fmt.Errorf("leader executing shard %d: %w", shard, err)
	}
	hdr := consensus.Header{
		Shard:       shard,
		Height:      height,
		Parent:      parent,
		FirstOffset: entries[0].Offset,
		NextOffset:  entries[len(entries)-1].Offset + 1,
		TxCount:     body.count(),
		TxRoot:      body.txRoot(),
		Time:        time.Now().UnixNano(),
	}
	outs := []ordering.Output{{
		Stream: ordering.Blocks, Shard: shard,
		Key: binary.BigEndian.AppendUint64(nil, hdr.Height), Value: hdr.Encode(),
	}}
	// Credits go to their shards' logs in the same transaction as the
	// block: both are visible, or neither.
	for _, c := range body.res.Credits {
		raw := c.Encode() // a system transaction: not signed; checked against its source block
		id := tx.IDOf(raw)
		outs = append(outs, ordering.Output{
			Stream: ordering.Transactions, Shard: ordering.ShardOf(c.RoutingKey(), l.n.cfg.Shards),
			Key: id[:], Value: raw,
		})
	}
	pb := pendingBlock{hdr: hdr, writes: make(map[string][]byte, len(body.res.Writes)), ids: make(map[tx.ID]bool, len(body.ids))}
	for _, w := range body.res.Writes {
		pb.writes[string(w.Key)] = w.Value
	}
	for _, id := range body.ids {
		pb.ids[id] = true
	}
	t.blocks = append(t.blocks, pb)
	// This node's replica of the shard takes the block's records from here
	// instead of the log, whether or not the round commits (handoff).
	l.n.handoff.put(shard, hdr.FirstOffset, hdr.NextOffset, entries)
	if sampled := tracing.SampledIDs(l.n.tracer, body.ids); len(sampled) > 0 {
		c := cutTrace{ids: sampled, shard: shard, height: hdr.Height, txs: len(body.ids), waitStart: waitStart, waitEnd: waitEnd, cutStart: start, cutEnd: time.Now()}
		for _, e := range entries {
			c.bytes += len(e.Raw)
		}
		l.cuts = append(l.cuts, c)
	}
	return outs, &hdr, nil
}

// traceRound records the leader spans of the round's sampled transactions:
// the poll from t0 to the end of the poll that gave their block its last
// transactions (t1, or later for a held block: the hold is part of the
// poll span), each one's block cut, the publishing transaction [t2, t3]
// (published: it committed); records is what the round polled.
func (l *leader) traceRound(records, blocks int, published bool, t0, t1, t2, t3 time.Time) {
	tr := l.n.tracer
	for _, c := range l.cuts {
		pollEnd := t1
		if c.pollEnd.After(t1) { // a held block: its transactions came with a later poll
			pollEnd = c.pollEnd
		}
		block := []attribute.KeyValue{tracing.AttrShard.Int64(int64(c.shard)), tracing.AttrHeight.Int64(int64(c.height)),
			tracing.AttrBlockTxs.Int(c.txs), tracing.AttrSampledInBlock.Int(len(c.ids))}
		for _, id := range c.ids {
			tr.Record(id, tracing.AnchorCommit, tracing.SpanLeaderPoll, t0, pollEnd, tracing.AttrLeaderRecords.Int(records))
			if !c.waitStart.IsZero() {
				tr.Record(id, tracing.AnchorCommit, tracing.SpanLeaderInflight, c.waitStart, c.waitEnd, block...)
			}
			tr.Record(id, tracing.AnchorCommit, tracing.SpanBlockCut, c.cutStart, c.cutEnd, append(block, tracing.AttrBlockBytes.Int(c.bytes))...)
			tr.Record(id, tracing.AnchorCommit, tracing.SpanPublish, t2, t3, tracing.AttrLeaderBlocks.Int(blocks), tracing.AttrPublishCommit.Bool(published))
		}
	}
	l.cuts = l.cuts[:0]
}

// catchUp waits, once per assignment, until this node committed every
// block already published for the shard: the group's committed position in
// the shard's log is where the last published block ends.
func (l *leader) catchUp(ctx context.Context, pub *ordering.Publisher, shard uint32) error {
	for {
		ready, gen := l.isReady(shard)
		if ready {
			return nil
		}
		end, err := pub.ConsumedOffset(ctx, shard)
		if err != nil {
			return err
		}
		if end > 0 {
			l.n.log.Info("leader catching up", "shard", shard, "to_offset", end)
			if err := l.n.progress.await(ctx, l.n.voter, shard, func(m storage.Meta) bool { return m.NextOffset >= end }); err != nil {
				return err
			}
		}
		if l.setReady(shard, gen) {
			return nil
		}
		// The group reassigned shards meanwhile: another leader may have
		// published more blocks; catch up again.
	}
}

// pollMax bounds the transactions one leader round takes (over all its
// shards): the round's blocks are cut from them by the block bounds.
const pollMax = 4096

// publishTimeout bounds one leader transaction.
const publishTimeout = 10 * time.Second

// progress publishes each shard's committed position to the goroutines
// that wait on it (the leader).
type progress struct {
	mu      sync.Mutex
	meta    []storage.Meta
	changed chan struct{}
}

func newProgress(shards int) *progress {
	return &progress{meta: make([]storage.Meta, shards), changed: make(chan struct{})}
}

// heights returns every shard's committed height and a channel closed at
// the next change.
func (p *progress) heights() ([]uint64, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]uint64, len(p.meta))
	for i, m := range p.meta {
		out[i] = m.Height
	}
	return out, p.changed
}

func (p *progress) set(shard uint32, m storage.Meta) {
	p.mu.Lock()
	p.meta[shard] = m
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

// await waits until ok holds for the shard's committed position, the shard
// halts (errHalted) or ctx ends.
func (p *progress) await(ctx context.Context, v *voter, shard uint32, ok func(storage.Meta) bool) error {
	for {
		p.mu.Lock()
		done, ch := ok(p.meta[shard]), p.changed
		p.mu.Unlock()
		if done {
			return nil
		}
		halted, vch := v.state(shard)
		if halted {
			return errHalted
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		case <-vch: // a halt signals the voter, not p
		}
	}
}
