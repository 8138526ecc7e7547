package bench

import (
	"context"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/rustorium/rustorium/internal/retry"
	"github.com/rustorium/rustorium/node"
	"github.com/rustorium/rustorium/scenarios"
)

// inprocFaults is the Faults of an InProcess cluster: a kill is a graceful
// Node.Close (an in-process kill cannot be a crash), a pause stalls the
// node's gate, the network faults act on the emulated network.
type inprocFaults InProcess

// LeaderOf implements Faults.
func (f *inprocFaults) LeaderOf(ctx context.Context, shard uint32, wait time.Duration) (string, error) {
	c := (*InProcess)(f)
	var name string
	err := retry.Poll(ctx, 20*time.Millisecond, wait, func() (bool, error) {
		for _, s := range c.nodes {
			if n := s.live(); n != nil && slices.Contains(n.Leading(), shard) {
				name = s.name
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return "", fmt.Errorf("no running node leads shard %d: %w", shard, err)
	}
	return name, nil
}

// Kill implements Faults: Close (the node leaves the broker's group and
// closes its connections gracefully), then its socket.
func (f *inprocFaults) Kill(name string) error {
	s, err := (*InProcess)(f).node(name)
	if err != nil {
		return err
	}
	s.mu.Lock()
	n, pc := s.n, s.pc
	if n == nil {
		s.mu.Unlock()
		return fmt.Errorf("%s is not running", name)
	}
	close(s.stopped)
	stopAPI := s.apiStop
	s.n, s.pc, s.apiStop = nil, nil, nil
	s.mu.Unlock()
	if stopAPI != nil {
		stopAPI()
	}
	n.Close()
	pc.Close()
	return nil
}

// Restart implements Faults: the same key, NodeID, data directory and
// QUIC address (the port is bound again).
func (f *inprocFaults) Restart(name string) (map[uint32]uint64, error) {
	c := (*InProcess)(f)
	s, err := c.node(name)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n != nil {
		return nil, fmt.Errorf("%s is running", name)
	}
	var pc net.PacketConn
	err = retry.Do(c.ctx, rebind, rebindAttempts, func(context.Context) (err error) {
		pc, err = c.listenNode(s.name, s.addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("re-listening on %s: %w", s.addr, err)
	}
	s.pc = pc
	n, reg, err := c.newNode(c.ctx, s)
	if err != nil {
		s.pc = nil
		pc.Close()
		return nil, err
	}
	own := map[uint32]uint64{}
	view := inprocNode{s.name, n}
	for shard := range uint32(c.sc.Cluster.Shards) {
		if m, err := view.Tip(shard); err == nil {
			own[shard] = m.Height
		}
	}
	if err := n.Start(c.ctx); err == nil {
		err = c.serveAPI(s, n)
	}
	if err != nil {
		// A node its clients cannot reach would only fail every send: it
		// stays down, and the timeline reports why.
		n.Close()
		s.pc = nil
		pc.Close()
		return nil, err
	}
	s.n, s.reg, s.stopped = n, reg, make(chan struct{})
	s.inc++
	c.watchNode(s, n, s.stopped)
	return own, nil
}

// Pause implements Faults.
func (f *inprocFaults) Pause(name string) error {
	n, err := f.running(name)
	if err == nil {
		n.Pause()
	}
	return err
}

// Resume implements Faults.
func (f *inprocFaults) Resume(name string) error {
	n, err := f.running(name)
	if err == nil {
		n.Resume()
	}
	return err
}

func (f *inprocFaults) running(name string) (*node.Node, error) {
	s, err := (*InProcess)(f).node(name)
	if err != nil {
		return nil, err
	}
	if n := s.live(); n != nil {
		return n, nil
	}
	return nil, fmt.Errorf("%s is not running", name)
}

// SetNetwork implements Faults.
func (f *inprocFaults) SetNetwork(n scenarios.Network) error {
	return f.nw.SetLinks(n.NetemLinks(f.endpoints))
}

// Partition implements Faults.
func (f *inprocFaults) Partition(groups ...[]string) (heal func()) {
	return f.nw.Partition(groups...)
}

// FillDisk implements Faults.
func (f *inprocFaults) FillDisk(name string, full bool) error {
	s, err := (*InProcess)(f).node(name)
	if err != nil {
		return err
	}
	if s.disk == nil {
		return fmt.Errorf("%s's store is on the plain disk", name)
	}
	if full {
		s.disk.On()
	} else {
		s.disk.Off()
	}
	return nil
}

// APIAddr implements Faults.
func (f *inprocFaults) APIAddr(name string) (string, error) {
	s, err := (*InProcess)(f).node(name)
	if err != nil {
		return "", err
	}
	if s.apiAddr == "" {
		return "", fmt.Errorf("%s serves no HTTP API", name)
	}
	return s.apiAddr, nil
}

// Delivery implements Faults: every action is a call in process.
func (f *inprocFaults) Delivery(scenarios.Op) string { return "" }

// Settle implements Faults.
func (f *inprocFaults) Settle() {
	for _, s := range f.nodes {
		if n := s.live(); n != nil {
			n.Resume()
		}
	}
	if f.nw != nil {
		f.nw.Heal()
	}
}
