package bench

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rustorium/rustorium/cluster"
	"github.com/rustorium/rustorium/internal/retry"
	"github.com/rustorium/rustorium/loadgen"
	"github.com/rustorium/rustorium/netem"
	"github.com/rustorium/rustorium/node"
	"github.com/rustorium/rustorium/node/ordering"
	"github.com/rustorium/rustorium/node/p2p"
	"github.com/rustorium/rustorium/reports"
	"github.com/rustorium/rustorium/scenarios"
)

// Processes is the Target that runs the scenario's cluster as `rustorium
// node` OS processes (cluster.mode: process): the harness writes a cluster
// file and the nodes' key files into the report folder and starts one
// process per node on it, each with its HTTP API (which the checker reads)
// and metrics. A timeline kill is SIGKILL (a crash: the node's broker
// session times out, its open block transaction aborts), a pause SIGSTOP
// then SIGCONT, a restart a new process on the same data directory. The
// harness follows every node's committed blocks through its API's block
// feed. The broker is the embedded one, in the harness's process, unless
// Brokers or the scenario name a real one.
//
// With network emulation every node's QUIC address in the cluster file is
// a netem.Relay's, in front of the port its process listens on, so the
// links between the clients and the nodes and between the nodes, their
// loss and their partitions, apply as in process; the HTTP API clients
// dial through the emulated network too. Each node's broker connections go
// through a Kafka relay of its own on the emulated node→broker link (the
// node reads a cluster file that names the relay as its brokers; the relay
// rewrites the broker addresses in the answers a Kafka client follows).
type Processes struct {
	// Bin is the rustorium binary the nodes run. Empty means this
	// process's own executable (right for `rustorium run`).
	Bin string
	// Brokers, if set, overrides the scenario's broker with a real
	// Kafka-protocol cluster.
	Brokers []string
	// BrokerCtl, if set, is the command that stops and starts the given
	// brokers for a timeline's `kill: broker`: the run calls `BrokerCtl
	// stop` and `BrokerCtl resume` through sh (the broker must come back
	// on its address with its log; scripts/kafka.sh does). Empty: a
	// given broker cannot be restarted. The embedded broker needs none.
	BrokerCtl string
	// Logger receives the embedded broker's logs. Nil discards them. The
	// nodes log into node-i.log in the report folder.
	Logger *slog.Logger
	// ClientConns is the number of client connections of each protocol,
	// round-robin over the nodes. Zero means 4, or two per node if that is
	// more.
	ClientConns int
	// StartTimeout bounds the wait for a node process to serve its API.
	// Zero means 30s.
	StartTimeout time.Duration

	clusterRun
	clusterCfg string        // the cluster file's path
	file       *cluster.File // what it holds
	nodes      []*procSlot
	nw         *netem.Network // nil without emulation
	endpoints  []string       // the emulated network's: clients, node-1…node-N, broker
	stopFeeds  context.CancelFunc
	feeds      sync.WaitGroup
}

// procSlot is one node across its processes.
type procSlot struct {
	name, keyFile, dir, log string
	addr, api, metrics      string // QUIC (the cluster file's), HTTP API and metrics addresses, fixed for the run
	listen                  string // the QUIC address the process listens on: addr, or behind a relay its own
	clusterCfg              string // the cluster file the process reads: the run's, or with emulation its own (its brokers behind its relay)
	key                     ed25519.PrivateKey

	mu       sync.Mutex
	cmd      *exec.Cmd     // nil while killed
	exited   chan struct{} // closed when cmd exits
	stopping bool          // cmd is being stopped on purpose
	paused   bool
}

// Caps implements Target.
func (c *Processes) Caps() Caps {
	return clusterCaps(c.Brokers, c.brokerKind, c.BrokerCtl)
}

// Start implements Target: the broker, the cluster file and key files,
// one process per node, the block feeds and the client connections.
func (c *Processes) Start(ctx context.Context, sc *scenarios.Scenario, h Hooks) error {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if err := c.begin(ctx, sc, h, c.Brokers, c.BrokerCtl, c.Logger); err != nil {
		return err
	}
	if c.Bin == "" {
		bin, err := os.Executable()
		if err != nil {
			return fmt.Errorf("bench: the node binary: %w", err)
		}
		c.Bin = bin
	}
	if err := c.writeCluster(); err != nil {
		return err
	}
	if err := c.emulate(); err != nil {
		return err
	}
	c.closers = append(c.closers, closerFunc(c.stopAll))
	h.Printf("starting %d node processes (%s), %d shards, quorum %d, broker %s (%s)", sc.Cluster.Nodes, c.Bin, sc.Cluster.Shards, sc.Cluster.Quorum, c.brokerKind, strings.Join(c.brokers, ","))
	for _, s := range c.nodes {
		if err := c.launch(s); err != nil {
			return err
		}
	}
	for _, s := range c.nodes {
		if err := c.waitServing(s); err != nil {
			return err
		}
	}
	feedCtx, stop := context.WithCancel(context.Background())
	c.stopFeeds = stop
	c.closers = append(c.closers, closerFunc(func() { stop(); c.feeds.Wait() }))
	for _, s := range c.nodes {
		c.feeds.Go(func() {
			followBlocks(feedCtx, "http://"+s.api, func(ev node.BlockEvent) {
				if c.hooks.OnBlock != nil {
					c.hooks.OnBlock(s.name, ev)
				}
			})
		})
	}
	c.startTrimmer(c.Nodes)
	return c.dialClients(ctx)
}

// freePort reserves a port on 127.0.0.1 for network ("udp" or "tcp") by
// binding and releasing it.
func freePort(network string) (string, error) {
	if network == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		defer pc.Close()
		return pc.LocalAddr().String(), nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// writeCluster writes the nodes' key files and the cluster file into the
// report folder (cluster.yaml, keys/node-i.key) and prepares the slots.
func (c *Processes) writeCluster() error {
	sc, dir := c.sc, c.hooks.Dir
	if err := os.MkdirAll(filepath.Join(dir, "keys"), 0o700); err != nil {
		return err
	}
	cl := sc.Cluster
	f := cluster.File{
		ChainID: chainID, Shards: cl.Shards, Quorum: cl.Quorum, Brokers: c.brokers, TopicPrefix: c.prefix,
	}
	f.Block.MaxTxs, f.Block.MaxBytes, f.Block.MaxWait = cl.Block.MaxTxs, cl.Block.MaxBytes, cl.Block.MaxWait
	f.Leadership.SessionTimeout, f.Leadership.TransactionTimeout = cl.Leadership.SessionTimeout, cl.Leadership.TransactionTimeout
	sync := cl.Storage.SyncEnabled()
	f.Storage.Sync = &sync
	for _, g := range c.hooks.Genesis {
		f.Genesis = append(f.Genesis, cluster.GenesisEntry{Account: hex.EncodeToString(g.Key), Balance: g.Balance})
	}
	for i := 1; i <= cl.Nodes; i++ {
		s := &procSlot{name: scenarios.NodeName(i), key: nodeKey(sc.Seed, i)}
		s.dir = filepath.Join(dir, s.name)
		s.log = filepath.Join(dir, s.name+".log")
		s.keyFile = filepath.Join(dir, "keys", s.name+".key")
		if err := os.RemoveAll(s.dir); err != nil { // a fresh cluster every run
			return err
		}
		if err := os.WriteFile(s.keyFile, []byte(hex.EncodeToString(s.key.Seed())+"\n"), 0o600); err != nil {
			return err
		}
		var err error
		if s.addr, err = freePort("udp"); err == nil {
			s.listen = s.addr
			if usesNetwork(sc) {
				s.listen, err = freePort("udp")
			}
		}
		if err == nil {
			if s.api, err = freePort("tcp"); err == nil {
				s.metrics, err = freePort("tcp")
			}
		}
		if err != nil {
			return err
		}
		f.Nodes = append(f.Nodes, cluster.Node{ID: s.name, Key: hex.EncodeToString(s.key.Public().(ed25519.PublicKey)), Addr: s.addr, API: s.api})
		c.nodes = append(c.nodes, s)
	}
	c.file, c.clusterCfg = &f, filepath.Join(dir, "cluster.yaml")
	for _, s := range c.nodes {
		s.clusterCfg = c.clusterCfg
	}
	return writeClusterFile(c.clusterCfg, &f)
}

// writeClusterFile writes f to path, and reads it back as a node will.
func writeClusterFile(path string, f *cluster.File) error {
	data, err := f.Marshal()
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return err
	}
	_, err = cluster.Load(path)
	return err
}

// emulate starts the emulated network, when the scenario impairs anything:
// a relay in front of every node's process, at the node's address in the
// cluster file, and a Kafka relay for each node's broker connections (the
// node reads a cluster file of its own that names it as the brokers).
func (c *Processes) emulate() error {
	sc := c.sc
	if !usesNetwork(sc) {
		return nil
	}
	c.nw = netem.New(netem.Options{Seed: sc.Seed})
	c.closers = append(c.closers, c.nw)
	c.endpoints = []string{scenarios.EndpointClients}
	for _, s := range c.nodes {
		c.endpoints = append(c.endpoints, s.name)
	}
	c.endpoints = append(c.endpoints, scenarios.EndpointBroker)
	if err := c.nw.SetLinks(sc.NetworkAt(0).NetemLinks(c.endpoints)); err != nil {
		return err
	}
	for _, s := range c.nodes {
		if err := c.brokerPath(s); err != nil {
			return err
		}
		public, err := net.ListenPacket("udp", s.addr)
		if err != nil {
			return fmt.Errorf("bench: %s's relay: %w", s.name, err)
		}
		target, err := net.ResolveUDPAddr("udp", s.listen)
		if err != nil {
			public.Close()
			return err
		}
		relay, err := c.nw.Relay(s.name, public, target, scenarios.EndpointClients)
		if err != nil {
			public.Close()
			return err
		}
		c.closers = append(c.closers, relay)
	}
	return nil
}

// brokerPath puts s's broker connections behind a Kafka relay on the
// emulated link s→broker, and writes the cluster file s reads: the run's,
// with the relay as its brokers.
func (c *Processes) brokerPath(s *procSlot) error {
	k := newKafkaRelay(c.ctx, c.nw.Dialer(s.name, scenarios.EndpointBroker, nil))
	c.closers = append(c.closers, k)
	f := *c.file
	f.Brokers = nil
	for _, b := range c.brokers {
		addr, err := k.front(b)
		if err != nil {
			return err
		}
		f.Brokers = append(f.Brokers, addr)
	}
	s.clusterCfg = filepath.Join(c.hooks.Dir, s.name+".cluster.yaml")
	return writeClusterFile(s.clusterCfg, &f)
}

// launch starts a process of s on its data directory, its log appended to
// s.log.
func (c *Processes) launch(s *procSlot) error {
	logf, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	args := []string{"node", "--cluster", s.clusterCfg, "--id", s.name, "--key-file", s.keyFile,
		"--data", s.dir, "--listen", s.listen, "--api", s.api, "--metrics", s.metrics}
	var env []string
	if tr := c.hooks.Trace; tr != nil {
		// The nodes export their spans to the run's receiver, in batches
		// of at most 200ms, and trace the run's sample.
		endpoint, err := tr.Receiver()
		if err != nil {
			logf.Close()
			return fmt.Errorf("bench: the traces receiver: %w", err)
		}
		tr.Exported()
		args = append(args, "--otlp", endpoint, "--trace-sample", strconv.FormatFloat(tr.Share, 'g', -1, 64))
		env = append(os.Environ(), "OTEL_BSP_SCHEDULE_DELAY=200")
	}
	cmd := exec.Command(c.Bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("bench: %s: %w", s.name, err)
	}
	exited := make(chan struct{})
	s.mu.Lock()
	s.cmd, s.exited, s.stopping, s.paused = cmd, exited, false, false
	s.mu.Unlock()
	go func() {
		err := cmd.Wait()
		logf.Close()
		s.mu.Lock()
		onPurpose := s.stopping
		s.mu.Unlock()
		close(exited)
		if !onPurpose {
			select {
			case c.failc <- fmt.Errorf("bench: %s exited: %v (see %s)", s.name, err, s.log):
			default:
			}
		}
	}()
	return nil
}

// waitServing waits until s's process answers on its API.
func (c *Processes) waitServing(s *procSlot) error {
	wait := c.StartTimeout
	if wait <= 0 {
		wait = 30 * time.Second
	}
	s.mu.Lock()
	exited := s.exited
	s.mu.Unlock()
	client := &http.Client{Timeout: time.Second}
	err := retry.Poll(c.ctx, 20*time.Millisecond, wait, func() (bool, error) {
		select {
		case <-exited:
			return false, fmt.Errorf("exited before serving")
		default:
		}
		resp, err := client.Get("http://" + s.api + "/v1/status")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return fmt.Errorf("bench: %s: %w (see %s)", s.name, err, s.log)
	}
	return nil
}

// dialClients connects the clients: QUIC to each node's address (its
// relay's under emulation), the APIs through the emulated network when
// there is one.
func (c *Processes) dialClients(ctx context.Context) error {
	return c.clusterRun.dialClients(ctx, c.ClientConns, len(c.nodes),
		func(i int) (string, loadgen.DialFunc) {
			s := c.nodes[i]
			return s.name, func(ctx context.Context) (*p2p.Client, func(), error) {
				cl, err := p2p.Dial(ctx, s.addr, p2p.ClientConfig{ServerKey: s.key.Public().(ed25519.PublicKey)})
				return cl, nil, err
			}
		},
		func(i int) (string, dialFunc) {
			s := c.nodes[i]
			if c.nw == nil {
				return "http://" + s.api, nil
			}
			return "http://" + s.api, c.nw.Dialer(scenarios.EndpointClients, s.name, nil)
		})
}

// Nodes implements Target: the running processes, read over their APIs.
func (c *Processes) Nodes() []NodeView {
	var out []NodeView
	for _, s := range c.nodes {
		s.mu.Lock()
		up := s.cmd != nil
		s.mu.Unlock()
		if up {
			out = append(out, newAPINode(s.name, "http://"+s.api))
		}
	}
	return out
}

// Floors implements Target: on the first client's QUIC path to node-1 and
// on a one-shard log of its own on the run's broker.
func (c *Processes) Floors(ctx context.Context, sc *scenarios.Scenario) (reports.Floors, error) {
	cl, err := c.quic[0].Client()
	if err != nil {
		return reports.Floors{}, err
	}
	return measureFloors(ctx, cl, ordering.Config{Brokers: c.brokers, TopicPrefix: c.prefix + "floor-", Shards: 1}, sc)
}

// Faults implements Target.
func (c *Processes) Faults() Faults { return (*procFaults)(c) }

// nodePIDs implements processTarget: each node's current process id, 0
// while it is killed.
func (c *Processes) nodePIDs() map[string]func() int {
	out := map[string]func() int{}
	for _, s := range c.nodes {
		out[s.name] = func() int {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.cmd == nil {
				return 0
			}
			return s.cmd.Process.Pid
		}
	}
	return out
}

// nodeMetrics implements metricsTarget: each node process's /metrics, its
// process id the incarnation.
func (c *Processes) nodeMetrics() (string, map[string]metricsReader) {
	client := &http.Client{Timeout: costTimeout}
	pids := c.nodePIDs()
	out := map[string]metricsReader{}
	for _, s := range c.nodes {
		out[s.name] = scrapeMetrics(client, s.metrics, pids[s.name])
	}
	return "metrics", out
}

// Failed implements Target: a node process that exits on its own.
func (c *Processes) Failed() <-chan error { return c.failc }

// Close implements Target: it stops the processes (SIGTERM, then SIGKILL
// after 10s), the feeds, the clients and the broker.
func (c *Processes) Close() error { return c.release() }

// stopTimeout bounds a node process's graceful stop.
const stopTimeout = 10 * time.Second

// stopAll stops every running process: SIGCONT (a paused one cannot
// stop), SIGTERM, and SIGKILL if it has not exited within stopTimeout.
func (c *Processes) stopAll() {
	for _, s := range c.nodes {
		s.mu.Lock()
		cmd, exited := s.cmd, s.exited
		s.stopping = true
		s.mu.Unlock()
		if cmd == nil {
			continue
		}
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(stopTimeout):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
}
