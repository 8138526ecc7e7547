package bench

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
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
	beforeExec func(node, api string) // tests: called as a process is about to start, its ports released
}

// procSlot is one node across its processes.
type procSlot struct {
	name, keyFile, dir, log string
	addr, api, metrics      string      // QUIC (the cluster file's), HTTP API and metrics addresses, fixed for the run
	listen                  string      // the QUIC address the process listens on: addr, or behind a relay its own
	holds                   []*portHold // the ports above while no process of s has bound them yet
	addrHold                *portHold   // addr's, until a relay or s's first process takes it
	clusterCfg              string      // the cluster file the process reads: the run's, or with emulation its own (its brokers behind its relay)
	key                     ed25519.PrivateKey

	mu       sync.Mutex
	cmd      *exec.Cmd     // nil while killed
	exited   chan struct{} // closed when cmd exits
	stopping bool          // cmd is being stopped on purpose
	paused   bool
	served   bool // cmd answered on its API
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
	c.closers = append(c.closers, closerFunc(func() { // the ports of a start that failed before its launches
		for _, s := range c.nodes {
			s.releasePorts()
		}
	}))
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
		if err := c.startServing(s); err != nil {
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

// A portHold keeps a port on 127.0.0.1 bound from the moment the run picks
// it until the process that will listen there starts, so that nothing the
// run opens in between (the Kafka relays, the traces receiver, another
// node's ports) is handed the same port by the kernel.
type portHold struct {
	addr string
	ln   net.Listener   // tcp
	pc   net.PacketConn // udp
}

// holdPort binds a free port on 127.0.0.1 for network ("udp" or "tcp").
func holdPort(network string) (*portHold, error) {
	if network == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		return &portHold{addr: pc.LocalAddr().String(), pc: pc}, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	return &portHold{addr: ln.Addr().String(), ln: ln}, nil
}

// release unbinds the port; safe to call twice and on nil.
func (h *portHold) release() {
	if h == nil {
		return
	}
	if h.ln != nil {
		h.ln.Close()
	}
	if h.pc != nil {
		h.pc.Close()
	}
}

// takeConn hands the held UDP socket over to its new owner, who closes it.
func (h *portHold) takeConn() net.PacketConn {
	pc := h.pc
	h.pc = nil
	return pc
}

// pickPorts binds the ports s's process will serve on: its QUIC address
// (the cluster file's, which the other nodes read), and behind a relay the
// port it listens on (the relay's target); then its HTTP API and metrics.
func (s *procSlot) pickPorts(behindRelay bool) error {
	if err := s.hold("udp", &s.addr); err != nil {
		return err
	}
	s.addrHold, s.listen = s.holds[0], s.addr
	if behindRelay {
		if err := s.hold("udp", &s.listen); err != nil {
			return err
		}
	}
	return s.pickHTTPPorts()
}

// pickHTTPPorts binds new ports for s's HTTP API and metrics: at first,
// and after a process lost one of them to another program between the
// run's release of it and its own bind.
func (s *procSlot) pickHTTPPorts() error {
	if err := s.hold("tcp", &s.api); err != nil {
		return err
	}
	return s.hold("tcp", &s.metrics)
}

// hold binds a free port for network, held in s.holds, and sets *addr to it.
func (s *procSlot) hold(network string, addr *string) error {
	h, err := holdPort(network)
	if err != nil {
		s.releasePorts()
		return fmt.Errorf("bench: %s: a free %s port: %w", s.name, network, err)
	}
	s.holds = append(s.holds, h)
	*addr = h.addr
	return nil
}

// releasePorts lets go of the ports s holds, for its process to bind them.
func (s *procSlot) releasePorts() {
	for _, h := range s.holds {
		h.release()
	}
	s.holds = nil
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
	if cl.Block.Hold != scenarios.DefaultBlockHold {
		f.Block.Hold = string(cl.Block.Hold) // the default left out: a --node-bin older than the field reads the file
	}
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
		c.nodes = append(c.nodes, s)
		if err := s.pickPorts(usesNetwork(sc)); err != nil {
			return err
		}
		f.Nodes = append(f.Nodes, cluster.Node{ID: s.name, Key: hex.EncodeToString(s.key.Public().(ed25519.PublicKey)), Addr: s.addr, API: s.api})
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
		public := s.addrHold.takeConn() // the relay serves the cluster file's address
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
	k := newKafkaRelay(c.ctx, c.nw.Dialer(s.name, scenarios.EndpointBroker, c.broker.dial))
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
	s.releasePorts() // the process binds them now
	if c.beforeExec != nil {
		c.beforeExec(s.name, s.api)
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
	s.cmd, s.exited, s.stopping, s.paused, s.served = cmd, exited, false, false, false
	s.mu.Unlock()
	go func() {
		err := cmd.Wait()
		logf.Close()
		s.mu.Lock()
		onPurpose, served := s.stopping, s.served
		s.mu.Unlock()
		close(exited)
		if !onPurpose && served { // before, waitServing says why
			select {
			case c.failc <- fmt.Errorf("bench: %s exited: %v (see %s)", s.name, err, s.log):
			default:
			}
		}
	}()
	return nil
}

// errPortTaken is waitServing's error when a process exited before it
// served because one of its ports was taken.
var errPortTaken = errors.New("a port it was to serve on was taken")

// waitServing waits until s's process answers on its API. A process that
// exits first is reported with the end of its log.
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
			tail := logTail(s.log, 8)
			if strings.Contains(tail, "address already in use") {
				return false, fmt.Errorf("exited before serving: %w:\n%s", errPortTaken, tail)
			}
			return false, fmt.Errorf("exited before serving; its log ends:\n%s", tail)
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
	s.mu.Lock()
	s.served = true
	s.mu.Unlock()
	return nil
}

// startServing waits for the first process of s to serve. One that lost
// its HTTP API's or metrics' port to another program, in the moment
// between the run's release of it and its own bind, is started again on
// new ones, up to three times. (Its QUIC ports are fixed: the cluster
// file and the relays name them.)
func (c *Processes) startServing(s *procSlot) error {
	for attempt := 1; ; attempt++ {
		err := c.waitServing(s)
		if err == nil || !errors.Is(err, errPortTaken) || attempt == 3 ||
			!(strings.Contains(err.Error(), s.api) || strings.Contains(err.Error(), s.metrics)) {
			return err
		}
		c.hooks.Printf("%s: %v; starting it again on new ports", s.name, err)
		if err := s.pickHTTPPorts(); err != nil {
			return err
		}
		if err := c.launch(s); err != nil {
			return err
		}
	}
}

// logTail is the last n lines of the file at path, or why it cannot be read.
func logTail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
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

// FloorPaths implements Target: the first client's QUIC path to node-1 and
// a one-shard log of its own on the run's broker.
func (c *Processes) FloorPaths() (FloorPaths, error) {
	return FloorPaths{Echo: c.quic[0].Echo, Log: ordering.Config{Brokers: c.brokers, TopicPrefix: c.prefix + "floor-", Shards: 1}}, nil
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
