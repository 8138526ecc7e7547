package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"syscall"
	"time"

	"github.com/rustorium/rustorium/internal/retry"
	"github.com/rustorium/rustorium/scenarios"
)

// procFaults is the Faults of a process cluster: signals to the node
// processes.
type procFaults Processes

// leaderSeries matches the node's rustorium_shard_leader gauge of a shard
// it leads.
var leaderSeries = regexp.MustCompile(`(?m)^rustorium_shard_leader\{shard="(\d+)"\} 1$`)

// LeaderOf implements Faults: the running node whose metrics say it leads
// shard.
func (f *procFaults) LeaderOf(ctx context.Context, shard uint32, wait time.Duration) (string, error) {
	client := &http.Client{Timeout: time.Second}
	var name string
	err := retry.Poll(ctx, 20*time.Millisecond, wait, func() (bool, error) {
		for _, s := range f.nodes {
			if leads(client, s.metrics, shard) {
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

// leads reports whether the node serving metrics at addr leads shard.
func leads(client *http.Client, addr string, shard uint32) bool {
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return false
	}
	for _, m := range leaderSeries.FindAllSubmatch(body, -1) {
		if sh, err := strconv.ParseUint(string(m[1]), 10, 32); err == nil && uint32(sh) == shard {
			return true
		}
	}
	return false
}

// slot returns the named node.
func (f *procFaults) slot(name string) (*procSlot, error) {
	for _, s := range f.nodes {
		if s.name == name {
			return s, nil
		}
	}
	return nil, fmt.Errorf("no node %q", name)
}

// Kill implements Faults: SIGKILL, a crash.
func (f *procFaults) Kill(name string) error {
	s, err := f.slot(name)
	if err != nil {
		return err
	}
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	if cmd == nil {
		s.mu.Unlock()
		return fmt.Errorf("%s is not running", name)
	}
	s.stopping = true
	s.mu.Unlock()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-exited
	s.mu.Lock()
	s.cmd = nil
	s.mu.Unlock()
	return nil
}

// Restart implements Faults: a new process on the same data directory,
// key and addresses; it returns the heights the node reported once it
// served again.
func (f *procFaults) Restart(name string) (map[uint32]uint64, error) {
	c := (*Processes)(f)
	s, err := f.slot(name)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	running := s.cmd != nil
	s.mu.Unlock()
	if running {
		return nil, fmt.Errorf("%s is running", name)
	}
	if err := c.launch(s); err != nil {
		return nil, err
	}
	if err := c.waitServing(s); err != nil {
		return nil, err
	}
	own := map[uint32]uint64{}
	view := newAPINode(s.name, "http://"+s.api)
	for shard := range uint32(c.sc.Cluster.Shards) {
		if t, err := view.Tip(shard); err == nil {
			own[shard] = t.Height
		}
	}
	return own, nil
}

// Pause implements Faults: SIGSTOP.
func (f *procFaults) Pause(name string) error { return f.signal(name, syscall.SIGSTOP, true) }

// Resume implements Faults: SIGCONT.
func (f *procFaults) Resume(name string) error { return f.signal(name, syscall.SIGCONT, false) }

func (f *procFaults) signal(name string, sig syscall.Signal, paused bool) error {
	s, err := f.slot(name)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return fmt.Errorf("%s is not running", name)
	}
	s.paused = paused
	return s.cmd.Process.Signal(sig)
}

// SetNetwork implements Faults, on the relays' emulated network.
func (f *procFaults) SetNetwork(n scenarios.Network) error {
	if f.nw == nil {
		return fmt.Errorf("%w: the run started without network emulation", ErrUnsupported)
	}
	return f.nw.SetLinks(n.NetemLinks(f.endpoints))
}

// Partition implements Faults, on the relays' emulated network.
func (f *procFaults) Partition(groups ...[]string) func() {
	if f.nw == nil {
		return func() {}
	}
	return f.nw.Partition(groups...)
}

// Settle implements Faults: every paused process continues, every
// partition heals.
func (f *procFaults) Settle() {
	if f.nw != nil {
		f.nw.Heal()
	}
	for _, s := range f.nodes {
		s.mu.Lock()
		if s.cmd != nil && s.paused {
			_ = s.cmd.Process.Signal(syscall.SIGCONT)
			s.paused = false
		}
		s.mu.Unlock()
	}
}

// FillDisk implements Faults: node processes' disks are their own.
func (f *procFaults) FillDisk(string, bool) error {
	return fmt.Errorf("%w: a full disk is emulated for nodes in process only", ErrUnsupported)
}

// APIAddr implements Faults.
func (f *procFaults) APIAddr(name string) (string, error) {
	s, err := f.slot(name)
	if err != nil {
		return "", err
	}
	return s.api, nil
}

// Delivery implements Faults.
func (f *procFaults) Delivery(op scenarios.Op) string {
	switch op {
	case scenarios.OpKill:
		return "SIGKILL"
	case scenarios.OpPause:
		return "SIGSTOP"
	case scenarios.OpResume:
		return "SIGCONT"
	}
	return ""
}
