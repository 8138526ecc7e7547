package node

import (
	"context"
	"sync"
)

// gate stalls the node's ingress and block processing while paused. The zero
// value is not usable; newGate returns an open gate.
type gate struct {
	mu   sync.Mutex
	open chan struct{} // closed while the gate is open
}

func newGate() *gate {
	ch := make(chan struct{})
	close(ch)
	return &gate{open: ch}
}

func (g *gate) pause() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
		g.open = make(chan struct{})
	default: // already paused
	}
}

func (g *gate) resume() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
	default:
		close(g.open)
	}
}

// paused reports whether the gate is closed.
func (g *gate) paused() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
		return false
	default:
		return true
	}
}

// wait returns when the gate is open or ctx is done.
func (g *gate) wait(ctx context.Context) error {
	g.mu.Lock()
	ch := g.open
	g.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Pause stalls the node as a stop-the-world pause would (a long GC, a VM
// steal, SIGSTOP): new transactions wait at ingress and no block is cut or
// committed until Resume. Connections stay open. Pausing a paused node does
// nothing.
func (n *Node) Pause() { n.gate.pause() }

// Resume ends a Pause.
func (n *Node) Resume() { n.gate.resume() }
