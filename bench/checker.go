package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rustorium/rustorium/loadgen"
	"github.com/rustorium/rustorium/node"
	"github.com/rustorium/rustorium/node/api"
	"github.com/rustorium/rustorium/node/p2p"
	"github.com/rustorium/rustorium/node/tx"
	"github.com/rustorium/rustorium/reports"
)

// checker is the end-to-end consistency check. It learns what clients were
// told (accepted receipts) from the load generator, and what the cluster
// committed from every node's block hook, independently of the receipts, so
// a lost or duplicated transaction cannot hide behind a receipt.
//
// Every node commits every block, so a block is counted once, by (shard,
// height), the first time any node commits it; a node that commits a
// different header at a (shard, height) another node committed first is a
// divergence, noted and failing the check.
type checker struct {
	mu        sync.Mutex
	accepted  map[tx.ID]p2p.Accepted // not yet settled
	committed map[tx.ID]int          // times seen in committed blocks (each block counted once), not yet settled
	// settled holds the transactions seen accepted and committed once,
	// out of accepted and committed (settle), so that those two hold only
	// what is in flight or wrong; dupSettled are settled ones committed
	// again.
	settled    *settledSet
	dupSettled map[tx.ID]struct{}
	receipts   atomic.Int64  // committed receipts received by clients
	changed    chan struct{} // poked when committed changes

	blocks    map[blockKey]blockSeen // first commit of each (shard, height)
	shardLog  map[uint32][]time.Time // first-commit times of each shard's blocks, in commit order
	shardTxs  map[uint32][]int       // the transactions of those blocks, in the same order
	nodeLog   map[string][]nodeBlock // every node's commits, in order
	divergent int64                  // commits whose header differs from the first one of their (shard, height)
	divNotes  []string               // the first few of them

	proofsChecked, proofsFailed atomic.Int64

	// history holds every state root the run saw committed (block events,
	// the nodes' tips when the load started, and, from an external node,
	// receipts) with the highest height of a block it was the root of (an
	// empty block keeps its parent's root; nodes commit a block at
	// different times); readRoots counts the roots
	// that verified reads named, checked against history at the end.
	history   map[[32]byte]uint64
	readRoots map[[32]byte]int64
	// fromReceipts counts commits from clients' receipts instead of the
	// nodes' block hooks (the node is not ours to watch).
	fromReceipts bool
}

type blockKey struct {
	shard  uint32
	height uint64
}

type blockSeen struct {
	hash [32]byte
	node string
	at   time.Time
}

type nodeBlock struct {
	shard  uint32
	height uint64
	at     time.Time
}

// maxDivergenceNotes bounds the divergences listed one by one.
const maxDivergenceNotes = 5

func newChecker() *checker {
	return &checker{
		accepted:   map[tx.ID]p2p.Accepted{},
		committed:  map[tx.ID]int{},
		settled:    newSettledSet(settledSpill),
		dupSettled: map[tx.ID]struct{}{},
		changed:    make(chan struct{}, 1),
		blocks:     map[blockKey]blockSeen{},
		shardLog:   map[uint32][]time.Time{},
		shardTxs:   map[uint32][]int{},
		nodeLog:    map[string][]nodeBlock{},
		history:    map[[32]byte]uint64{},
		readRoots:  map[[32]byte]int64{},
	}
}

// tips adds the nodes' committed roots on every shard to the history: the
// state reads may name before the run's first block.
func (c *checker) tips(nodes []NodeView, shards int) {
	for _, n := range nodes {
		for s := range uint32(shards) {
			if t, err := n.Tip(s); err == nil {
				c.mu.Lock()
				c.history[t.Root] = max(c.history[t.Root], t.Height)
				c.mu.Unlock()
			}
		}
	}
}

// read counts a verified read's root, for the end-of-run check that it is
// a root the shard committed: its proof shows the key's value under that
// root, and the root commits to the whole state of its block, so a root
// in the history makes the value the key's value at that block.
func (c *checker) read(root [32]byte) {
	c.mu.Lock()
	c.readRoots[root]++
	c.mu.Unlock()
}

// reached reports whether root is a state root the run saw committed at
// height or above: a read that names it shows the state of a block at or
// after height.
func (c *checker) reached(root [32]byte, height uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	h, ok := c.history[root]
	return ok && h >= height
}

func (c *checker) onAccepted(a p2p.Accepted) {
	c.mu.Lock()
	if c.settled.has(a.ID) { // a second receipt (a resend's) of a settled one
		c.mu.Unlock()
		return
	}
	c.accepted[a.ID] = a
	if c.committed[a.ID] == 1 {
		c.settle(a.ID, a.Shard)
	}
	c.mu.Unlock()
}

// commitOne counts a commit of id (with c.mu held), settling it when it
// is its first and its receipt came.
func (c *checker) commitOne(id tx.ID) {
	if c.settled.has(id) {
		c.dupSettled[id] = struct{}{}
		return
	}
	c.committed[id]++
	if a, ok := c.accepted[id]; ok && c.committed[id] == 1 {
		c.settle(id, a.Shard)
	}
}

// settle moves id, accepted and committed once on shard, to the settled
// set (with c.mu held).
func (c *checker) settle(id tx.ID, shard uint32) {
	delete(c.accepted, id)
	delete(c.committed, id)
	c.settled.add(id, shard)
}

// close releases the settled set's disk store. Safe to call twice.
func (c *checker) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.settled.close()
}

// onBlockNow is the OnBlock hook: node name committed ev now.
func (c *checker) onBlockNow(name string, ev node.BlockEvent) { c.onBlock(name, ev, time.Now()) }

func (c *checker) onBlock(name string, ev node.BlockEvent, at time.Time) {
	h := ev.Header
	k := blockKey{h.Shard, h.Height}
	hash := h.Hash()
	c.mu.Lock()
	c.nodeLog[name] = append(c.nodeLog[name], nodeBlock{h.Shard, h.Height, at})
	c.history[h.StateRoot] = max(c.history[h.StateRoot], h.Height)
	first, seen := c.blocks[k]
	switch {
	case !seen:
		c.blocks[k] = blockSeen{hash: hash, node: name, at: at}
		c.shardLog[h.Shard] = append(c.shardLog[h.Shard], at)
		c.shardTxs[h.Shard] = append(c.shardTxs[h.Shard], len(ev.IDs))
		for _, id := range ev.IDs {
			c.commitOne(id)
		}
	case first.hash != hash:
		c.divergent++
		if len(c.divNotes) < maxDivergenceNotes {
			c.divNotes = append(c.divNotes, fmt.Sprintf("shard %d height %d: %s committed block %x, %s committed %x first",
				h.Shard, h.Height, name, hash[:4], first.node, first.hash[:4]))
		}
	}
	c.mu.Unlock()
	if !seen {
		c.poke()
	}
}

// commitIDs counts transactions committed as a client's receipts say (an
// external node).
func (c *checker) commitIDs(ids ...tx.ID) {
	c.mu.Lock()
	for _, id := range ids {
		c.commitOne(id)
	}
	c.mu.Unlock()
	c.poke()
}

func (c *checker) poke() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// heights returns the highest height committed so far on each shard.
func (c *checker) heights() map[uint32]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[uint32]uint64{}
	for k := range c.blocks {
		if k.height > out[k.shard] {
			out[k.shard] = k.height
		}
	}
	return out
}

// blockStats summarises the blocks first committed in [from, to) on each
// of shards shards (each block once, by its first commit on any node; a
// shard without any has count 0); nil when no block was committed then.
func (c *checker) blockStats(from, to time.Time, shards int) *reports.Blocks {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := reports.NewBlocks(shards)
	for s := range uint32(shards) {
		for i, at := range c.shardLog[s] {
			if !at.Before(from) && at.Before(to) {
				b.Add(s, int64(c.shardTxs[s][i]))
			}
		}
	}
	return b.Done()
}

// stall is reports.Stall of the shards' first commits so far.
func (c *checker) stall(from, until time.Time, shards int) *reports.Failover {
	c.mu.Lock()
	defer c.mu.Unlock()
	logs := make([][]time.Time, shards)
	for s := range logs {
		logs[s] = c.shardLog[uint32(s)]
	}
	return reports.Stall(logs, from, until)
}

// catchUp is the time from a node's restart at from until it had
// committed, on every shard, the height the cluster had reached then
// (target); own are the heights its store held at the restart.
func (c *checker) catchUp(name string, from time.Time, target, own map[uint32]uint64) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var done time.Duration // when the last shard caught up
	for shard, h := range target {
		if own[shard] >= h {
			continue
		}
		reached := false
		for _, b := range c.nodeLog[name] {
			if b.shard == shard && b.height >= h && !b.at.Before(from) {
				done, reached = max(done, b.at.Sub(from)), true
				break
			}
		}
		if !reached {
			return reports.CatchUp(0, false)
		}
	}
	return reports.CatchUp(done, true)
}

func (c *checker) proof(err error) {
	c.proofsChecked.Add(1)
	if err != nil {
		c.proofsFailed.Add(1)
	}
}

// missing counts accepted transactions not yet seen committed.
func (c *checker) missing() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for id := range c.accepted {
		if c.committed[id] == 0 {
			n++
		}
	}
	return n
}

// waitCommitted waits until every accepted transaction was seen committed,
// or for at most d.
func (c *checker) waitCommitted(ctx context.Context, d time.Duration) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for c.missing() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			return
		case <-c.changed:
		}
	}
}

// verdict compares what was accepted with what the cluster committed and
// with what the running nodes' stores index (none when the target's nodes
// cannot be read). RootsEqual is left true for the caller to decide.
func (c *checker) verdict(nodes []NodeView) reports.Checker {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := reports.Checker{
		Accepted:      int64(len(c.accepted)) + c.settled.n,
		RootsEqual:    true,
		Divergent:     c.divergent,
		ProofsChecked: c.proofsChecked.Load(),
		ProofsFailed:  c.proofsFailed.Load(),
	}
	unindexed := make([]int, len(nodes)) // per node
	var nowhere int                      // in no node's index
	var unseen int                       // in an index, in no block the checker saw
	indexed := func(id tx.ID, shard uint32) {
		v.Committed++
		missing := 0
		for i, n := range nodes {
			if s, ok, err := n.TxShard(id); err != nil || !ok || s != shard {
				unindexed[i]++
				missing++
			}
		}
		if len(nodes) > 0 && missing == len(nodes) {
			nowhere++
		}
	}
	if err := c.settled.each(func(id tx.ID, shard uint32) bool { indexed(id, shard); return true }); err != nil {
		v.Notes = append(v.Notes, fmt.Sprintf("reading the settled transactions back: %v", err))
	}
	if c.settled.err != nil {
		v.Notes = append(v.Notes, fmt.Sprintf("the checker's settled transactions stayed in memory: %v", c.settled.err))
	}
	v.Duplicated += int64(len(c.dupSettled))
	for id, a := range c.accepted {
		switch k := c.committed[id]; {
		case k == 0 && indexedAnywhere(nodes, id, a.Shard):
			// Its block reached the checker from no node (a node's block
			// feed was reconnecting), but a node's store committed it.
			unseen++
		case k == 0:
			v.Lost++
			continue
		case k > 1:
			v.Duplicated++
		}
		indexed(id, a.Shard)
	}
	c.checkReads(&v)
	for id, k := range c.committed {
		if _, ok := c.accepted[id]; !ok && k > 1 {
			v.Duplicated++ // committed twice without a receipt ever reaching a client
		}
	}
	if unseen > 0 {
		v.Notes = append(v.Notes, fmt.Sprintf("%d committed transactions were found in the nodes' indexes but in no block the checker followed (a block feed reconnected); counted committed, not checked for duplicates", unseen))
	}
	if nowhere > 0 {
		v.Lost += int64(nowhere)
		v.Notes = append(v.Notes, fmt.Sprintf("%d committed transactions missing from every node's store index", nowhere))
	}
	for i, k := range unindexed {
		if k > 0 && k != nowhere {
			v.Notes = append(v.Notes, fmt.Sprintf("%s: %d committed transactions missing from its store index", nodes[i].Name(), k))
		}
	}
	if c.divergent > 0 {
		v.Notes = append(v.Notes, fmt.Sprintf("%d blocks committed with a header different from another node's at the same shard and height", c.divergent))
		for _, d := range c.divNotes {
			v.Notes = append(v.Notes, "divergent block: "+d)
		}
	}
	if n := c.receipts.Load(); n < v.Committed {
		v.Notes = append(v.Notes, fmt.Sprintf("%d of %d committed transactions got no receipt before their client gave up", v.Committed-n, v.Committed))
	}
	return v
}

// checkReads checks the roots verified reads named against the history
// (with c.mu held): a root no block of the run (nor a tip before it) had is
// a read of a state that was never committed. A run that follows no block
// feed (receipts only) cannot tell, and says so.
func (c *checker) checkReads(v *reports.Checker) {
	if len(c.readRoots) == 0 {
		return
	}
	if c.fromReceipts {
		v.Notes = append(v.Notes, "reads not checked against the committed history: the run follows no node's blocks")
		return
	}
	var off []string
	for root, n := range c.readRoots {
		if _, ok := c.history[root]; ok {
			v.ReadsChecked += n
			continue
		}
		v.ReadsOffHistory += n
		if len(off) < maxDivergenceNotes {
			off = append(off, fmt.Sprintf("%x (%d reads)", root[:8], n))
		}
	}
	if v.ReadsOffHistory > 0 {
		slices.Sort(off)
		v.Notes = append(v.Notes, fmt.Sprintf("%d reads named a state root no committed block had: %s", v.ReadsOffHistory, strings.Join(off, ", ")))
	}
}

// indexedAnywhere reports whether a node's index holds the transaction in
// shard.
func indexedAnywhere(nodes []NodeView, id tx.ID, shard uint32) bool {
	for _, n := range nodes {
		if s, ok, err := n.TxShard(id); err == nil && ok && s == shard {
			return true
		}
	}
	return false
}

// observer feeds one workload's outcomes to the recorder and the checker.
type observer struct {
	rec *reports.WorkloadRecorder
	chk *checker
	// Send times by send index, for stamps taken inside the node.
	intended, actual []atomic.Int64 // unix nanoseconds
	// expected, for a closed loop, is its calibrated interval between sends
	// (0 until known); nil for an open loop.
	expected func() time.Duration
	failed   atomic.Int64 // committed with a failed execution status
	resent   atomic.Int64 // sends failed over to another node
	// traced are the traced sends by send index (nil: not traced); nil
	// when the run traces none of this workload's. Set before the load.
	traced *tracedSet
}

// resend counts a send that failed over to another node.
func (o *observer) resend(i uint64) {
	o.resent.Add(1)
	if s := o.tracedSend(i); s != nil {
		s.resend()
	}
}

// tracedSend is send i's trace record, or nil when it is not traced.
func (o *observer) tracedSend(i uint64) *tracedSend { return o.traced.get(i) }

// isTraced reports whether send i is traced: the Submitter then checks
// its receipt's proof too.
func (o *observer) isTraced(i uint64) bool { return o.tracedSend(i) != nil }

func newObserver(rec *reports.WorkloadRecorder, chk *checker, n int) *observer {
	return &observer{rec: rec, chk: chk, intended: make([]atomic.Int64, n), actual: make([]atomic.Int64, n)}
}

func (o *observer) Sent(i uint64, intended, actual time.Time) {
	if i < uint64(len(o.intended)) { // reads keep no send times: only transactions have ingress stamps
		o.intended[i].Store(intended.UnixNano())
		o.actual[i].Store(actual.UnixNano())
	}
	if s := o.tracedSend(i); s != nil {
		s.sentAt(intended, actual)
	}
	o.rec.Sent(intended, actual)
}

// ingress records the node's ingress stamp of send i.
func (o *observer) ingress(i uint64, at time.Time) {
	sent := o.actual[i].Load()
	if sent == 0 {
		return // not one of ours in flight (cannot happen: Sent precedes Submit)
	}
	o.Reached(i, reports.StageIngress, time.Unix(0, o.intended[i].Load()), time.Unix(0, sent), at)
}

func (o *observer) Reached(i uint64, st reports.Stage, intended, actual, at time.Time) {
	if s := o.tracedSend(i); s != nil {
		s.reached(st, at)
	}
	if o.expected != nil {
		o.rec.RecordExpected(st, actual, at, o.expected())
		return
	}
	o.rec.Record(st, intended, actual, at)
}

func (o *observer) Failed(i uint64, st reports.Stage, intended time.Time, err error) {
	now := time.Now()
	if s := o.tracedSend(i); s != nil {
		s.failedAt(st, err, now)
	}
	o.rec.Error(errorKind(st, err), intended, now)
}

func (o *observer) Accepted(i uint64, a p2p.Accepted) { o.chk.onAccepted(a) }

func (o *observer) Committed(i uint64, c p2p.Committed) {
	o.chk.receipts.Add(1)
	if o.chk.fromReceipts {
		o.chk.commitIDs(c.ID)
		o.chk.mu.Lock()
		o.chk.history[c.Root] = max(o.chk.history[c.Root], c.Height)
		o.chk.mu.Unlock()
	}
	if c.Status == p2p.StatusFailed {
		o.failed.Add(1)
	}
}

// dropped counts a send the open loop could not start (too many in flight):
// an error, never a silent skip.
func (o *observer) dropped(i uint64, intended time.Time) {
	o.rec.Error("dropped", intended, time.Now())
}

// errorKind names a failure for errors_by_kind.
func errorKind(st reports.Stage, err error) string {
	var (
		rej    *p2p.RejectError
		apiErr *loadgen.APIError
		nerr   net.Error
	)
	switch {
	case errors.As(err, &rej):
		return st.String() + ": rejected (" + rej.Code.String() + ")"
	case errors.As(err, &apiErr) && apiErr.Code == loadgen.CodeConnectionLost:
		return st.String() + ": connection lost"
	case errors.As(err, &apiErr) && apiErr.Code == api.CodeTimeout:
		return st.String() + ": timeout"
	case errors.As(err, &apiErr):
		return st.String() + ": rejected (" + apiErr.Code + ")"
	case errors.Is(err, loadgen.ErrNotConnected):
		return st.String() + ": node unreachable (redialing)"
	case loadgen.ConnBroken(err):
		return st.String() + ": connection lost"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &nerr) && nerr.Timeout():
		return st.String() + ": timeout"
	case st == reports.StageProofVerify:
		return "proof_verify: failed"
	case errors.Is(err, loadgen.ErrProof):
		return st.String() + ": proof failed"
	default:
		return st.String() + ": error"
	}
}
