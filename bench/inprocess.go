package bench

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/rustorium/rustorium/cluster"
	"github.com/rustorium/rustorium/internal/retry"
	"github.com/rustorium/rustorium/loadgen"
	"github.com/rustorium/rustorium/netem"
	"github.com/rustorium/rustorium/node"
	"github.com/rustorium/rustorium/node/api"
	"github.com/rustorium/rustorium/node/consensus"
	"github.com/rustorium/rustorium/node/ordering"
	"github.com/rustorium/rustorium/node/p2p"
	"github.com/rustorium/rustorium/node/tx"
	"github.com/rustorium/rustorium/scenarios"
)

// InProcess is the Target that runs the scenario's cluster in this
// process: the broker (embedded kfake unless Brokers or the scenario names
// a real one), the emulated network, the nodes (a kill is a graceful
// Node.Close), and the load generator's connections spread over the nodes.
// It has every capability. The zero value is ready to use.
type InProcess struct {
	// Brokers, if set, overrides the scenario's broker with a real
	// Kafka-protocol cluster.
	Brokers []string
	// BrokerCtl, if set, is the command that stops and starts the given
	// brokers for a timeline's `kill: broker`: the run calls `BrokerCtl
	// stop` and `BrokerCtl resume` through sh (the broker must come back
	// on its address with its log; scripts/kafka.sh does). Empty: a
	// given broker cannot be restarted. The embedded broker needs none.
	BrokerCtl string
	// Logger receives the nodes' logs. Nil discards them.
	Logger *slog.Logger
	// ClientConns is the number of client connections of each protocol,
	// round-robin over the nodes. Zero means 4, or two per node if that is
	// more.
	ClientConns int
	// AlterRoot is fault injection for tests: a node named here ("node-i")
	// attests the root the function returns instead of the one it computed.
	AlterRoot map[string]func(shard uint32, height uint64, root [32]byte) [32]byte

	clusterRun
	nw        *netem.Network
	endpoints []string                                                          // the emulated network's: clients, node-1…node-N, broker
	dialer    func(ctx context.Context, network, host string) (net.Conn, error) // node-1's broker path (floors): the broker's dial, through netem when it impairs
	nodes     []*nodeSlot
	peers     []p2p.Peer
}

// nodeSlot is one node of the cluster across its incarnations: a kill
// closes the running node, a restart starts a new one with the same
// identity, data directory and QUIC address.
type nodeSlot struct {
	name string // node-i
	key  ed25519.PrivateKey
	dir  string
	addr string // the QUIC address, fixed for the run

	// apiAddr is the node's HTTP APIs' address, fixed for the run, when a
	// workload uses them ("" otherwise). No workload subscribes to the
	// block feed, so the harness's APIs serve none.
	apiAddr string

	mu      sync.Mutex
	n       *node.Node           // nil while killed
	reg     *prometheus.Registry // n's metrics
	inc     uint64               // n's incarnation: 1, then one more each restart
	pc      net.PacketConn       // the node's QUIC socket (the node does not close it)
	apiLn   net.Listener         // the API's socket until the first incarnation serves it
	apiStop func()               // stops this incarnation's API server; nil without one
	stopped chan struct{}        // closed when this incarnation is stopped on purpose
	// disk fails the store's writes while on (a timeline's disk_full); nil
	// when the scenario fills no disk: the store is on the plain disk.
	disk *errorfs.Toggle
}

// diskFull is the error a full disk gives every write.
var diskFull = errorfs.InjectorFunc(func(op errorfs.Op) error {
	if op.Kind.ReadOrWrite() == errorfs.OpIsWrite {
		return fmt.Errorf("%w (disk_full)", syscall.ENOSPC)
	}
	return nil
})

// live returns the running node, or nil while it is killed.
func (s *nodeSlot) live() *node.Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// nodeKey derives node i's identity (1-based) from the scenario seed, so a
// run is reproducible and a restarted node keeps its key.
func nodeKey(seed int64, i int) ed25519.PrivateKey {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(seed))
	binary.BigEndian.PutUint64(b[8:], uint64(i))
	s := sha256.Sum256(append([]byte("rustorium/bench/node-key/"), b[:]...))
	return ed25519.NewKeyFromSeed(s[:])
}

// Caps implements Target: an in-process cluster can do everything.
func (c *InProcess) Caps() Caps {
	caps := clusterCaps(c.Brokers, c.brokerKind, c.BrokerCtl)
	caps.DiskFull = true
	return caps
}

// Start implements Target: the broker, the emulated network, the nodes
// (with h's genesis and hooks), their HTTP APIs when a workload speaks
// one, and the client connections.
func (c *InProcess) Start(ctx context.Context, sc *scenarios.Scenario, h Hooks) error {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if err := c.begin(ctx, sc, h, c.Brokers, c.BrokerCtl, c.Logger); err != nil {
		return err
	}
	c.endpoints = []string{scenarios.EndpointClients}
	for i := 1; i <= sc.Cluster.Nodes; i++ {
		c.endpoints = append(c.endpoints, scenarios.NodeName(i))
	}
	c.endpoints = append(c.endpoints, scenarios.EndpointBroker)
	// The emulated network, when the scenario impairs anything: QUIC between
	// the clients and the nodes and between the nodes, TCP between each
	// node and the broker.
	if usesNetwork(sc) {
		c.nw = netem.New(netem.Options{Seed: sc.Seed})
		c.closers = append(c.closers, c.nw)
		if err := c.nw.SetLinks(sc.NetworkAt(0).NetemLinks(c.endpoints)); err != nil {
			return err
		}
		c.dialer = c.nw.Dialer(scenarios.NodeName(1), scenarios.EndpointBroker, c.broker.dial)
	} else {
		c.dialer = c.broker.dial
	}
	c.closers = append(c.closers, closerFunc(c.stopNodes))
	if err := c.openSockets(); err != nil {
		return err
	}
	if err := c.startNodes(ctx); err != nil {
		return err
	}
	c.startTrimmer(c.Nodes)
	return c.dialClients(ctx)
}

// openSockets opens every node's QUIC socket (and API listener) first: the
// peer list names every node's address before any node starts.
func (c *InProcess) openSockets() error {
	api := usesAPI(c.sc)
	for i := 1; i <= c.sc.Cluster.Nodes; i++ {
		s := &nodeSlot{name: scenarios.NodeName(i), key: nodeKey(c.sc.Seed, i), dir: filepath.Join(c.hooks.Dir, scenarios.NodeName(i))}
		c.nodes = append(c.nodes, s)
		// Every run starts a fresh cluster: a node directory left by an
		// earlier run into the same folder would resume from offsets of
		// another log.
		if err := os.RemoveAll(s.dir); err != nil {
			return err
		}
		var err error
		if s.pc, err = c.listenNode(s.name, "127.0.0.1:0"); err != nil {
			return err
		}
		s.addr = s.pc.LocalAddr().String()
		if api {
			if s.apiLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
				return err
			}
			s.apiAddr = s.apiLn.Addr().String()
		}
		c.peers = append(c.peers, p2p.Peer{Key: s.key.Public().(ed25519.PublicKey), Addr: s.addr})
	}
	return nil
}

// startNodes creates every node, then starts them: each joins the shard
// leadership group as it starts.
func (c *InProcess) startNodes(ctx context.Context) error {
	sc := c.sc
	c.hooks.Printf("starting %d node(s), %d shards, quorum %d, broker %s (%s)", sc.Cluster.Nodes, sc.Cluster.Shards, sc.Cluster.Quorum, c.brokerKind, strings.Join(c.brokers, ","))
	nodes := make([]*node.Node, len(c.nodes))
	for i, s := range c.nodes {
		n, reg, err := c.newNode(ctx, s)
		if err != nil {
			return fmt.Errorf("bench: %s: %w", s.name, err)
		}
		nodes[i], s.n, s.reg, s.stopped = n, n, reg, make(chan struct{})
		s.inc++
	}
	for i, s := range c.nodes {
		if err := nodes[i].Start(ctx); err != nil {
			return fmt.Errorf("bench: %s: %w", s.name, err)
		}
		c.watchNode(s, nodes[i], s.stopped)
		if err := c.serveAPI(s, nodes[i]); err != nil {
			return fmt.Errorf("bench: %s: %w", s.name, err)
		}
	}
	return nil
}

// dialClients connects the clients, over the emulated network when the
// run emulates it.
func (c *InProcess) dialClients(ctx context.Context) error {
	return c.clusterRun.dialClients(ctx, c.ClientConns, len(c.nodes),
		func(i int) (string, loadgen.DialFunc) { return c.nodes[i].name, c.dialNode(c.nodes[i]) },
		func(i int) (string, dialFunc) {
			s := c.nodes[i]
			if c.nw == nil {
				return "http://" + s.apiAddr, nil
			}
			return "http://" + s.apiAddr, c.nw.Dialer(scenarios.EndpointClients, s.name, nil)
		})
}

// newNode creates an incarnation of s, with the faults the tests inject,
// and the registry of its metrics.
func (c *InProcess) newNode(ctx context.Context, s *nodeSlot) (*node.Node, *prometheus.Registry, error) {
	cfg, err := c.nodeConfig(s)
	if err != nil {
		return nil, nil, err
	}
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	n, err := node.New(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	if alter := c.AlterRoot[s.name]; alter != nil {
		n.Faults().SetAlterRoot(alter)
	}
	return n, reg, nil
}

// nodeMetrics implements metricsTarget: each running node's registry.
func (c *InProcess) nodeMetrics() (string, map[string]metricsReader) {
	out := map[string]metricsReader{}
	for _, s := range c.nodes {
		out[s.name] = func(context.Context) ([]*dto.MetricFamily, uint64, error) {
			s.mu.Lock()
			n, reg, inc := s.n, s.reg, s.inc
			s.mu.Unlock()
			if n == nil || reg == nil {
				return nil, 0, errors.New("not running")
			}
			fams, err := reg.Gather()
			return fams, inc, err
		}
	}
	return "registry", out
}

// nodeConfig is the configuration of every incarnation of s: the
// scenario's cluster as cluster.Settings (the one way the CLI's flags and a
// cluster file become a node.Config too), with the in-process wiring on
// top: the node's (emulated) sockets and the run's hooks.
func (c *InProcess) nodeConfig(s *nodeSlot) (node.Config, error) {
	cl := c.sc.Cluster
	cfg, err := cluster.Settings{
		ChainID: chainID, Key: s.key, NodeID: s.name,
		Shards: cl.Shards, Brokers: c.brokers, TopicPrefix: c.prefix,
		DataDir: s.dir, Sync: cl.Storage.SyncEnabled(),
		Block: consensus.CutterConfig{MaxTxs: cl.Block.MaxTxs, MaxBytes: cl.Block.MaxBytes, MaxWait: cl.Block.MaxWait.Std(), Hold: consensus.Hold(cl.Block.Hold)},
		Peers: c.peers, Quorum: cl.Quorum,
		Leadership: node.LeadershipConfig{
			SessionTimeout:     cl.Leadership.SessionTimeout.Std(),
			TransactionTimeout: cl.Leadership.TransactionTimeout.Std(),
		},
		Genesis: c.hooks.Genesis,
		Logger:  c.Logger, // the node names itself (NodeID) in its logs
	}.Config()
	if err != nil {
		return cfg, err
	}
	cfg.PacketConn = s.pc
	if c.sc.FillsDisks() {
		if s.disk == nil {
			s.disk = &errorfs.Toggle{Injector: diskFull}
		}
		cfg.Storage.FS = errorfs.Wrap(vfs.Default, s.disk)
	}
	cfg.BrokerDialer = c.broker.dial
	if c.nw != nil {
		cfg.BrokerDialer = c.nw.Dialer(s.name, scenarios.EndpointBroker, c.broker.dial)
	}
	cfg.OnIngress = c.hooks.OnIngress
	if tr := c.hooks.Trace; tr != nil {
		cfg.Tracing = tr.Node // the run's collector: the nodes' spans join the client's
	}
	if on := c.hooks.OnBlock; on != nil {
		cfg.OnBlock = func(ev node.BlockEvent) { on(s.name, ev) }
	}
	return cfg, nil
}

// usesAPI reports whether a workload speaks one of the nodes' HTTP APIs.
func usesAPI(sc *scenarios.Scenario) bool {
	for _, w := range sc.Workload {
		if w.Client != scenarios.ClientQUIC {
			return true
		}
	}
	return false
}

// rebind is the backoff of binding an address again that a killed node
// just released: the OS may be slow to let it go.
var rebind = retry.Backoff{Min: 50 * time.Millisecond, Max: 50 * time.Millisecond}

const rebindAttempts = 21

// serveAPI serves the HTTP APIs of n, s's new incarnation, on s.apiAddr
// (nothing when s has no API); s.apiStop stops them. Called with s.mu held
// or before the run shares s.
func (c *InProcess) serveAPI(s *nodeSlot, n *node.Node) error {
	if s.apiAddr == "" {
		return nil
	}
	ln := s.apiLn
	s.apiLn = nil
	if ln == nil { // a restart binds the address again
		err := retry.Do(c.ctx, rebind, rebindAttempts, func(context.Context) (err error) {
			ln, err = net.Listen("tcp", s.apiAddr)
			return err
		})
		if err != nil {
			return fmt.Errorf("API on %s: %w", s.apiAddr, err)
		}
	}
	srv, err := api.New(api.Config{Backend: n, ChainID: chainID, Logger: c.Logger, Tracer: n.Tracer()})
	if err != nil {
		ln.Close()
		return err
	}
	ctx, cancel := context.WithCancel(c.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ctx, ln) // closes ln
	}()
	s.apiStop = func() {
		cancel()
		<-done
		srv.Close()
	}
	return nil
}

// listenNode opens a node's UDP socket on addr, emulated when the run
// emulates the network.
func (c *InProcess) listenNode(name, addr string) (net.PacketConn, error) {
	if c.nw != nil {
		return c.nw.ListenPacket(name, "udp", addr)
	}
	return net.ListenPacket("udp", addr)
}

// dialNode returns the dial function of a client connection to s: a fresh
// (emulated) socket each time, s's pinned key.
func (c *InProcess) dialNode(s *nodeSlot) loadgen.DialFunc {
	return func(ctx context.Context) (*p2p.Client, func(), error) {
		var pc net.PacketConn
		if c.nw != nil {
			var err error
			if pc, err = c.nw.ListenPacket(scenarios.EndpointClients, "udp", "127.0.0.1:0"); err != nil {
				return nil, nil, err
			}
		}
		cl, err := p2p.Dial(ctx, s.addr, p2p.ClientConfig{ServerKey: s.key.Public().(ed25519.PublicKey), PacketConn: pc})
		release := func() {
			if pc != nil {
				pc.Close()
			}
		}
		if err != nil {
			release()
			return nil, nil, err
		}
		return cl, release, nil
	}
}

// Nodes implements Target: the running nodes.
func (c *InProcess) Nodes() []NodeView {
	var out []NodeView
	for _, s := range c.nodes {
		if n := s.live(); n != nil {
			out = append(out, inprocNode{s.name, n})
		}
	}
	return out
}

// inprocNode is a NodeView of an in-process node.
type inprocNode struct {
	name string
	n    *node.Node
}

func (v inprocNode) Name() string { return v.name }
func (v inprocNode) Tip(shard uint32) (Tip, error) {
	m, err := v.n.ShardMeta(shard)
	return Tip{Height: m.Height, Block: m.BlockHash, Root: m.Root.Bytes(), NextOffset: m.NextOffset}, err
}
func (v inprocNode) Halted(shard uint32) bool { return v.n.Halted(shard) }

func (v inprocNode) TxShard(id tx.ID) (uint32, bool, error) {
	loc, ok, err := v.n.TxLocation(id)
	return loc.Shard, ok, err
}

func (v inprocNode) Balance(key ed25519.PublicKey) (uint64, bool, error) {
	acct, ok, err := v.n.Account(key)
	return acct.Balance, ok, err
}

// FloorPaths implements Target: the first client's QUIC path to node-1 and
// a one-shard log of its own on the run's broker and broker path.
func (c *InProcess) FloorPaths() (FloorPaths, error) {
	return FloorPaths{Echo: c.quic[0].Echo, Log: ordering.Config{Brokers: c.brokers, TopicPrefix: c.prefix + "floor-", Shards: 1, Dialer: c.dialer}}, nil
}

// Faults implements Target.
func (c *InProcess) Faults() Faults { return (*inprocFaults)(c) }

// Failed implements Target.
func (c *InProcess) Failed() <-chan error { return c.failc }

// Close implements Target: it releases everything in reverse order of
// acquisition.
func (c *InProcess) Close() error { return c.release() }

// node returns the slot named name ("node-i").
func (c *InProcess) node(name string) (*nodeSlot, error) {
	for _, s := range c.nodes {
		if s.name == name {
			return s, nil
		}
	}
	return nil, fmt.Errorf("no node %q", name)
}

// watchNode forwards a failure of this incarnation of s (not its stop on
// purpose) to Failed.
func (c *InProcess) watchNode(s *nodeSlot, n *node.Node, stopped chan struct{}) {
	go func() {
		select {
		case err := <-n.Err():
			select {
			case <-stopped: // killed on purpose meanwhile
			case c.failc <- fmt.Errorf("bench: %s failed: %w", s.name, err):
			default:
			}
		case <-stopped:
		}
	}()
}

// stopNodes closes every running node and its socket.
func (c *InProcess) stopNodes() {
	for _, s := range c.nodes {
		s.mu.Lock()
		n, pc, stopAPI, apiLn := s.n, s.pc, s.apiStop, s.apiLn
		if s.stopped != nil && n != nil {
			close(s.stopped)
		}
		s.n, s.pc, s.apiStop, s.apiLn = nil, nil, nil, nil
		s.mu.Unlock()
		if stopAPI != nil {
			stopAPI()
		}
		if apiLn != nil {
			apiLn.Close()
		}
		if n != nil {
			n.Close()
		}
		if pc != nil {
			pc.Close()
		}
	}
}

// dialFunc dials a TCP connection (nil: directly).
type dialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)

// dialAPIs makes n clients of protocol, client i of the API at the base
// URL target(i) returns, through its dialer; each is added to closers.
func dialAPIs(ctx context.Context, protocol scenarios.Client, n int, closers *[]io.Closer, target func(i int) (base string, dial dialFunc)) ([]loadgen.TxConn, error) {
	conns := make([]loadgen.TxConn, n)
	for i := range conns {
		base, dial := target(i)
		conn, err := loadgen.NewAPIConn(ctx, loadgen.Protocol(protocol), base, dial)
		if err != nil {
			return nil, err
		}
		*closers = append(*closers, conn)
		conns[i] = conn
	}
	return conns, nil
}

// usesNetwork reports whether the scenario impairs the network at any time.
func usesNetwork(sc *scenarios.Scenario) bool {
	if sc.Network.Default != nil || len(sc.Network.Links) > 0 || sc.Network.Broker != nil {
		return true
	}
	for _, a := range sc.Schedule() {
		switch a.Op {
		case scenarios.OpNetwork, scenarios.OpPartition, scenarios.OpHeal:
			return true
		}
	}
	return false
}
