package node

import (
	"sync/atomic"

	"github.com/rustorium/rustorium/node/tx"
)

// Faults is a node's fault injection, for tests and the harness: a fault
// set here makes the node misbehave in one deliberate way, as franz-go's
// kfake.Cluster.Control makes its broker misbehave. A fault may be set
// or cleared at any time, also between New and Start (a harness that
// restarts a node sets it again on the new one); the node's pipelines
// read each with one atomic load. The zero value injects nothing, and a
// production node never sets one.
type Faults struct {
	alterRoot atomic.Pointer[func(shard uint32, height uint64, root [32]byte) [32]byte]
	seenTx    atomic.Pointer[func(id tx.ID) bool]
	noHandoff atomic.Pointer[func(shard uint32, height uint64) bool]
}

// Faults is the node's fault injection handle.
func (n *Node) Faults() *Faults { return &n.faults }

// SetAlterRoot makes the node attest the root fn returns instead of the
// one it computed: a node that executes wrongly. Nil clears the fault.
func (f *Faults) SetAlterRoot(fn func(shard uint32, height uint64, root [32]byte) [32]byte) {
	if fn == nil {
		f.alterRoot.Store(nil)
		return
	}
	f.alterRoot.Store(&fn)
}

// SetSeenTx makes the node's replicas take the transactions fn reports
// as committed before: a node whose view of the committed set differs
// from the leader's. Nil clears the fault.
func (f *Faults) SetSeenTx(fn func(id tx.ID) bool) {
	if fn == nil {
		f.seenTx.Store(nil)
		return
	}
	f.seenTx.Store(&fn)
}

// SetNoHandoff makes the node's replicas read the transactions of the
// blocks fn reports from the log, not from what this node's leader handed
// over when it cut them: a replica that alternates between the two ways
// (as one whose shard changes leaders does). Nil clears the fault.
func (f *Faults) SetNoHandoff(fn func(shard uint32, height uint64) bool) {
	if fn == nil {
		f.noHandoff.Store(nil)
		return
	}
	f.noHandoff.Store(&fn)
}

// attested is the root to attest for a block whose computed root is root.
func (f *Faults) attested(shard uint32, height uint64, root [32]byte) [32]byte {
	if fn := f.alterRoot.Load(); fn != nil {
		return (*fn)(shard, height, root)
	}
	return root
}

// seen reports whether a fault makes the node take id as committed.
func (f *Faults) seen(id tx.ID) bool {
	if fn := f.seenTx.Load(); fn != nil {
		return (*fn)(id)
	}
	return false
}

// handoffOff reports whether a fault makes the replica of shard read block
// height's transactions from the log.
func (f *Faults) handoffOff(shard uint32, height uint64) bool {
	if fn := f.noHandoff.Load(); fn != nil {
		return (*fn)(shard, height)
	}
	return false
}
