package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rustorium/rustorium/node"
	"github.com/rustorium/rustorium/node/p2p"
	"github.com/rustorium/rustorium/node/tx"
	"github.com/rustorium/rustorium/reports"
)

// checker is the end-to-end consistency check. It learns what clients were
// told (accepted receipts) from the load generator, and what the node
// committed from the node's block hook, independently of the receipts, so a
// lost or duplicated transaction cannot hide behind a receipt.
type checker struct {
	mu        sync.Mutex
	accepted  map[tx.ID]p2p.Accepted
	committed map[tx.ID]int // times seen in committed blocks
	receipts  atomic.Int64  // committed receipts received by clients
	changed   chan struct{} // poked when committed changes

	proofsChecked, proofsFailed atomic.Int64
	// fromReceipts counts commits from clients' receipts instead of the
	// node's block hook (the node is not ours to watch).
	fromReceipts bool
}

func newChecker() *checker {
	return &checker{
		accepted:  map[tx.ID]p2p.Accepted{},
		committed: map[tx.ID]int{},
		changed:   make(chan struct{}, 1),
	}
}

func (c *checker) onAccepted(a p2p.Accepted) {
	c.mu.Lock()
	c.accepted[a.ID] = a
	c.mu.Unlock()
}

// onBlock is the node's OnBlock hook.
func (c *checker) onBlock(ev node.BlockEvent) {
	c.mu.Lock()
	for _, id := range ev.IDs {
		c.committed[id]++
	}
	c.mu.Unlock()
	select {
	case c.changed <- struct{}{}:
	default:
	}
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

// verdict compares what was accepted with what the node committed and with
// what its store indexes.
func (c *checker) verdict(n *node.Node) reports.Checker {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := reports.Checker{
		Accepted:      int64(len(c.accepted)),
		RootsEqual:    true, // one node: nothing to disagree with
		ProofsChecked: c.proofsChecked.Load(),
		ProofsFailed:  c.proofsFailed.Load(),
	}
	var unindexed int
	for id, a := range c.accepted {
		switch k := c.committed[id]; {
		case k == 0:
			v.Lost++
			continue
		case k > 1:
			v.Duplicated++
		}
		v.Committed++
		if n == nil {
			continue // an external node: nothing to look into
		}
		loc, err := n.DB().TxLocation(id)
		if err != nil || loc.Shard != a.Shard {
			unindexed++
		}
	}
	for id, k := range c.committed {
		if _, ok := c.accepted[id]; !ok && k > 1 {
			v.Duplicated++ // committed twice without a receipt ever reaching a client
		}
	}
	if unindexed > 0 {
		v.Lost += int64(unindexed)
		v.Notes = append(v.Notes, fmt.Sprintf("%d committed transactions missing from the store's index", unindexed))
	}
	if n := c.receipts.Load(); n < v.Committed {
		v.Notes = append(v.Notes, fmt.Sprintf("%d of %d committed transactions got no receipt before their client gave up", v.Committed-n, v.Committed))
	}
	return v
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
}

func newObserver(rec *reports.WorkloadRecorder, chk *checker, n int) *observer {
	return &observer{rec: rec, chk: chk, intended: make([]atomic.Int64, n), actual: make([]atomic.Int64, n)}
}

func (o *observer) Sent(i uint64, intended, actual time.Time) {
	o.intended[i].Store(intended.UnixNano())
	o.actual[i].Store(actual.UnixNano())
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
	if o.expected != nil {
		o.rec.RecordExpected(st, actual, at, o.expected())
		return
	}
	o.rec.Record(st, intended, actual, at)
}

func (o *observer) Failed(i uint64, st reports.Stage, intended time.Time, err error) {
	o.rec.Error(errorKind(st, err), intended, time.Now())
}

func (o *observer) Accepted(i uint64, a p2p.Accepted) { o.chk.onAccepted(a) }

func (o *observer) Committed(i uint64, c p2p.Committed) {
	o.chk.receipts.Add(1)
	if o.chk.fromReceipts {
		o.chk.onBlock(node.BlockEvent{IDs: []tx.ID{c.ID}})
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
		rej  *p2p.RejectError
		nerr net.Error
	)
	switch {
	case errors.As(err, &rej):
		return st.String() + ": rejected (" + rej.Code.String() + ")"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &nerr) && nerr.Timeout():
		return st.String() + ": timeout"
	case st == reports.StageProofVerify:
		return "proof_verify: failed"
	default:
		return st.String() + ": error"
	}
}
