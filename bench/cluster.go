package bench

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rustorium/rustorium/loadgen"
	"github.com/rustorium/rustorium/netem"
	"github.com/rustorium/rustorium/node"
	"github.com/rustorium/rustorium/node/api"
	"github.com/rustorium/rustorium/node/consensus"
	"github.com/rustorium/rustorium/node/ordering"
	"github.com/rustorium/rustorium/node/p2p"
	"github.com/rustorium/rustorium/node/state"
	"github.com/rustorium/rustorium/node/storage"
	"github.com/rustorium/rustorium/scenarios"
)

// cluster is what a run measures: the broker (embedded unless the scenario
// or the caller names one), the emulated network, the nodes, and the load
// generator's QUIC connections, spread over the nodes, with the checker
// watching every node's blocks.
type cluster struct {
	sc         *scenarios.Scenario
	ctx        context.Context // the run's: restarted nodes live in it
	opts       Options
	brokers    []string
	brokerKind string
	prefix     string // topic prefix of this run
	nw         *netem.Network
	endpoints  []string                                                          // the emulated network's: clients, node-1…node-N, broker
	dialer     func(ctx context.Context, network, host string) (net.Conn, error) // node-1's broker path (floors); nil: direct
	nodes      []*nodeSlot
	peers      []p2p.Peer
	clients    []*loadgen.Conn
	apis       map[scenarios.Client][]loadgen.TxConn // per HTTP API protocol a workload speaks: as many as clients, over the same nodes
	chk        *checker
	ingress    *ingressIndex
	genesis    []node.GenesisAccount
	failc      chan error  // a node's pipeline failed
	closers    []io.Closer // in acquisition order; closed in reverse
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
	n       *node.Node     // nil while killed
	pc      net.PacketConn // the node's QUIC socket (the node does not close it)
	apiLn   net.Listener   // the API's socket until the first incarnation serves it
	apiStop func()         // stops this incarnation's API server; nil without one
	stopped chan struct{}  // closed when this incarnation is stopped on purpose
}

// live returns the running node, or nil while it is killed.
func (s *nodeSlot) live() *node.Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// embeddedMinSession is the embedded broker's minimum group session
// timeout: below the scenarios' default leadership session (1s), as
// scripts/kafka.sh configures its broker (500 ms).
const embeddedMinSession = 500 * time.Millisecond

// nodeKey derives node i's identity (1-based) from the scenario seed, so a
// run is reproducible and a restarted node keeps its key.
func nodeKey(seed int64, i int) ed25519.PrivateKey {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(seed))
	binary.BigEndian.PutUint64(b[8:], uint64(i))
	s := sha256.Sum256(append([]byte("rustorium/bench/node-key/"), b[:]...))
	return ed25519.NewKeyFromSeed(s[:])
}

func startCluster(ctx context.Context, sc *scenarios.Scenario, opts Options, genesis []node.GenesisAccount, p *progress) (_ *cluster, err error) {
	c := &cluster{sc: sc, ctx: ctx, opts: opts, chk: newChecker(), ingress: &ingressIndex{}, brokerKind: "kafka", genesis: genesis, failc: make(chan error, 1)}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	c.brokers = opts.Brokers
	if len(c.brokers) == 0 {
		c.brokers = sc.Cluster.Broker.Addrs
	}
	if len(c.brokers) == 0 {
		emb, err := ordering.StartEmbedded(ctx, ordering.EmbeddedOptions{Logger: opts.Logger, GroupMinSessionTimeout: min(embeddedMinSession, sc.Cluster.Leadership.SessionTimeout.Std())})
		if err != nil {
			return nil, err
		}
		c.closers = append(c.closers, closerFunc(emb.Close))
		c.brokers, c.brokerKind = emb.Addrs(), "kfake"
	}
	// A prefix of its own keeps this run's topics apart from any other's on
	// a shared broker.
	runID := fmt.Sprintf("%x", sha256.Sum256(fmt.Appendf(nil, "%s/%d/%d", sc.Name, sc.Seed, time.Now().UnixNano())))[:10]
	c.prefix = "rustorium-" + runID + "-"

	n := sc.Cluster.Nodes
	c.endpoints = []string{scenarios.EndpointClients}
	for i := 1; i <= n; i++ {
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
			return nil, err
		}
		c.dialer = c.nw.Dialer(scenarios.NodeName(1), scenarios.EndpointBroker, nil)
	}

	// Every node's QUIC socket is opened first: the peer list names every
	// node's address before any node starts.
	c.closers = append(c.closers, closerFunc(c.stopNodes))
	for i := 1; i <= n; i++ {
		s := &nodeSlot{name: scenarios.NodeName(i), key: nodeKey(sc.Seed, i), dir: filepath.Join(opts.Out, scenarios.NodeName(i))}
		// Every run starts a fresh cluster: a node directory left by an
		// earlier run into the same folder would resume from offsets of
		// another log.
		if err := os.RemoveAll(s.dir); err != nil {
			return nil, err
		}
		if s.pc, err = c.listenNode(s.name, "127.0.0.1:0"); err != nil {
			return nil, err
		}
		s.addr = s.pc.LocalAddr().String()
		if usesAPI(sc) {
			if s.apiLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
				return nil, err
			}
			s.apiAddr = s.apiLn.Addr().String()
		}
		c.nodes = append(c.nodes, s)
		c.peers = append(c.peers, p2p.Peer{Key: s.key.Public().(ed25519.PublicKey), Addr: s.addr})
	}

	p.printf("starting %d node(s), %d shards, quorum %d, broker %s (%s)", n, sc.Cluster.Shards, sc.Cluster.Quorum, c.brokerKind, strings.Join(c.brokers, ","))
	// New for every node first, then Start: each joins the shard
	// leadership group as it starts.
	nodes := make([]*node.Node, n)
	for i, s := range c.nodes {
		if nodes[i], err = node.New(ctx, c.nodeConfig(s)); err != nil {
			return nil, fmt.Errorf("bench: %s: %w", s.name, err)
		}
		s.n, s.stopped = nodes[i], make(chan struct{})
	}
	for i, s := range c.nodes {
		if err := nodes[i].Start(ctx); err != nil {
			return nil, fmt.Errorf("bench: %s: %w", s.name, err)
		}
		c.watchNode(s, nodes[i], s.stopped)
		if err := c.serveAPI(s, nodes[i]); err != nil {
			return nil, fmt.Errorf("bench: %s: %w", s.name, err)
		}
	}

	conns := opts.ClientConns
	if conns <= 0 {
		conns = max(defaultClientConns, 2*n)
	}
	c.clients = make([]*loadgen.Conn, conns)
	for i := range c.clients {
		s := c.nodes[i%n] // round-robin over the nodes
		if c.clients[i], err = loadgen.Dial(ctx, c.dialNode(s), loadgen.ConnOptions{}); err != nil {
			return nil, fmt.Errorf("bench: client %d to %s: %w", i, s.name, err)
		}
		c.closers = append(c.closers, c.clients[i])
	}
	for _, w := range sc.Workload {
		if w.Client == scenarios.ClientQUIC || c.apis[w.Client] != nil {
			continue
		}
		err := c.dialAPIs(ctx, w.Client, len(c.clients), func(i int) (string, dialFunc) {
			s := c.nodes[i%n] // as the QUIC clients: routed transfers stay on one node
			if c.nw == nil {
				return "http://" + s.apiAddr, nil
			}
			return "http://" + s.apiAddr, c.nw.Dialer(scenarios.EndpointClients, s.name, nil)
		})
		if err != nil {
			return nil, err
		}
	}
	return c, nil
}

// defaultClientConns is the number of client connections without
// Options.ClientConns, at least two per node.
const defaultClientConns = 4

// nodeConfig is the configuration of every incarnation of s.
func (c *cluster) nodeConfig(s *nodeSlot) node.Config {
	sc := c.sc
	var dialer func(ctx context.Context, network, host string) (net.Conn, error)
	if c.nw != nil {
		dialer = c.nw.Dialer(s.name, scenarios.EndpointBroker, nil)
	}
	return node.Config{
		ChainID: chainID, Key: s.key, NodeID: s.name,
		Shards: sc.Cluster.Shards, Brokers: c.brokers, TopicPrefix: c.prefix,
		DataDir: s.dir,
		Storage: storage.Options{NoSync: !sc.Cluster.Storage.SyncEnabled()},
		Block: consensus.CutterConfig{
			MaxTxs: sc.Cluster.Block.MaxTxs, MaxBytes: sc.Cluster.Block.MaxBytes, MaxWait: sc.Cluster.Block.MaxWait.Std(),
		},
		PacketConn: s.pc, BrokerDialer: dialer,
		Peers: c.peers, Quorum: sc.Cluster.Quorum,
		Leadership: node.LeadershipConfig{
			SessionTimeout:     sc.Cluster.Leadership.SessionTimeout.Std(),
			TransactionTimeout: sc.Cluster.Leadership.TransactionTimeout.Std(),
		},
		AlterRoot: c.opts.AlterRoot[s.name],
		OnBlock:   c.chk.onBlockOf(s.name),
		OnIngress: c.ingress.stamp,
		Genesis:   c.genesis,
		Logger:    c.opts.Logger, // the node names itself (NodeID) in its logs
	}
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

// serveAPI serves the HTTP APIs of n, s's new incarnation, on s.apiAddr
// (nothing when s has no API); s.apiStop stops them. Called with s.mu held
// or before the run shares s.
func (c *cluster) serveAPI(s *nodeSlot, n *node.Node) error {
	if s.apiAddr == "" {
		return nil
	}
	ln := s.apiLn
	s.apiLn = nil
	var err error
	for try := 0; ln == nil; try++ { // a restart binds the address again
		if ln, err = net.Listen("tcp", s.apiAddr); err != nil {
			if try == 20 {
				return fmt.Errorf("API on %s: %w", s.apiAddr, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	srv, err := api.New(api.Config{Backend: n, ChainID: chainID, Logger: c.opts.Logger})
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
func (c *cluster) listenNode(name, addr string) (net.PacketConn, error) {
	if c.nw != nil {
		return c.nw.ListenPacket(name, "udp", addr)
	}
	return net.ListenPacket("udp", addr)
}

// dialNode returns the dial function of a client connection to s: a fresh
// (emulated) socket each time, s's pinned key.
func (c *cluster) dialNode(s *nodeSlot) loadgen.DialFunc {
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

// node returns the slot named name ("node-i").
func (c *cluster) node(name string) *nodeSlot {
	for _, s := range c.nodes {
		if s.name == name {
			return s
		}
	}
	return nil
}

// leaderOf returns the name of the running node that leads shard, waiting
// up to d for one (leadership moves during a rebalance).
func (c *cluster) leaderOf(ctx context.Context, shard uint32, d time.Duration) (string, error) {
	deadline := time.Now().Add(d)
	for {
		names, nodes := c.live()
		for i, n := range nodes {
			if slices.Contains(n.Leading(), shard) {
				return names[i], nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return "", fmt.Errorf("no running node leads shard %d", shard)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// live returns the running nodes with their names.
func (c *cluster) live() (names []string, nodes []*node.Node) {
	for _, s := range c.nodes {
		if n := s.live(); n != nil {
			names, nodes = append(names, s.name), append(nodes, n)
		}
	}
	return names, nodes
}

// watchNode forwards a failure of this incarnation of s (not its stop on
// purpose) to the run's watcher.
func (c *cluster) watchNode(s *nodeSlot, n *node.Node, stopped chan struct{}) {
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

// kill stops a node as `kill` does: Close (the node leaves the broker's
// group and closes its connections gracefully; an in-process kill cannot be
// a crash), then its socket.
func (c *cluster) kill(name string) error {
	s := c.node(name)
	if s == nil {
		return fmt.Errorf("no node %q", name)
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

// restart starts a killed node again with the same key, NodeID, data
// directory and QUIC address (the port is bound again). It returns the
// heights the node's store held on each shard when it started.
func (c *cluster) restart(name string) (map[uint32]uint64, error) {
	s := c.node(name)
	if s == nil {
		return nil, fmt.Errorf("no node %q", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n != nil {
		return nil, fmt.Errorf("%s is running", name)
	}
	var (
		pc  net.PacketConn
		err error
	)
	// The port was just released; retry briefly in case the OS is slow to
	// let it go.
	for try := 0; ; try++ {
		if pc, err = c.listenNode(s.name, s.addr); err == nil || try == 20 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		return nil, fmt.Errorf("re-listening on %s: %w", s.addr, err)
	}
	s.pc = pc
	n, err := node.New(c.ctx, c.nodeConfig(s))
	if err != nil {
		s.pc = nil
		pc.Close()
		return nil, err
	}
	own := map[uint32]uint64{}
	for shard := range uint32(c.sc.Cluster.Shards) {
		if m, _, err := n.DB().ShardMeta(shard); err == nil {
			own[shard] = m.Height
		}
	}
	if err := n.Start(c.ctx); err != nil {
		n.Close()
		s.pc = nil
		pc.Close()
		return nil, err
	}
	if err := c.serveAPI(s, n); err != nil {
		// A node its clients cannot reach would only fail every send:
		// it stays down, and the timeline reports why.
		n.Close()
		s.pc = nil
		pc.Close()
		return nil, err
	}
	s.n, s.stopped = n, make(chan struct{})
	c.watchNode(s, n, s.stopped)
	return own, nil
}

// stopNodes closes every running node and its socket.
func (c *cluster) stopNodes() {
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

// watch returns a context that ends, with the node's error as its cause,
// when a pipeline of a running node fails: a run must not go on measuring a
// cluster that stopped committing. stop releases the watcher.
func (c *cluster) watch(ctx context.Context) (_ context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		select {
		case err := <-c.failc:
			cancel(err)
		case <-done:
		}
	}()
	return ctx, func() { close(done); cancel(nil) }
}

// txConns are the connections a workload speaking protocol sends over:
// the QUIC clients, or as many clients of the nodes' HTTP API.
func (c *cluster) txConns(protocol scenarios.Client) []loadgen.TxConn {
	var out []loadgen.TxConn
	if protocol == scenarios.ClientQUIC {
		for _, cl := range c.clients {
			out = append(out, cl)
		}
		return out
	}
	return c.apis[protocol]
}

// dialFunc dials a TCP connection (nil: directly).
type dialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)

// dialAPIs makes n clients of protocol, client i of the API at the base
// URL target(i) returns, through its dialer; they close with the cluster.
func (c *cluster) dialAPIs(ctx context.Context, protocol scenarios.Client, n int, target func(i int) (base string, dial dialFunc)) error {
	if c.apis == nil {
		c.apis = map[scenarios.Client][]loadgen.TxConn{}
	}
	conns := make([]loadgen.TxConn, n)
	for i := range conns {
		base, dial := target(i)
		conn, err := loadgen.NewAPIConn(ctx, loadgen.Protocol(protocol), base, dial)
		if err != nil {
			return err
		}
		c.closers = append(c.closers, conn)
		conns[i] = conn
	}
	c.apis[protocol] = conns
	return nil
}

// client returns the current client of connection i, for the floors.
func (c *cluster) client(i int) (*p2p.Client, error) { return c.clients[i].Client() }

// floorLog is a one-shard log of its own on the run's broker and broker path.
func (c *cluster) floorLog() ordering.Config {
	return ordering.Config{Brokers: c.brokers, TopicPrefix: c.prefix + "floor-", Shards: 1, Dialer: c.dialer}
}

// Close releases everything in reverse order of acquisition.
func (c *cluster) Close() {
	for i := len(c.closers) - 1; i >= 0; i-- {
		c.closers[i].Close()
	}
	c.closers = nil
}

type closerFunc func()

func (f closerFunc) Close() error { f(); return nil }

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

// conserved checks on every running node that the genesis accounts'
// balances add up to their genesis total. Credits of cross-shard transfers
// may still be on their way when the load ends, so it waits up to d for the
// sums to settle.
func (c *cluster) conserved(ctx context.Context, d time.Duration) (bool, []string) {
	var want uint64
	for _, a := range c.genesis {
		want += a.Balance
	}
	deadline := time.Now().Add(d)
	for {
		names, nodes := c.live()
		var notes []string
		for i, n := range nodes {
			got, err := c.balances(n)
			switch {
			case err != nil:
				notes = append(notes, fmt.Sprintf("%s: balances: %v", names[i], err))
			case got != want:
				notes = append(notes, fmt.Sprintf("%s: balances add up to %d, genesis gave %d", names[i], got, want))
			}
		}
		if len(nodes) == 0 {
			notes = append(notes, "no node running to check balances on")
		}
		if len(notes) == 0 {
			return true, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false, notes
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *cluster) balances(n *node.Node) (uint64, error) {
	var sum uint64
	shards := c.sc.Cluster.Shards
	for _, a := range c.genesis {
		v, ok, err := n.DB().Get(ordering.ShardOf(a.Key, shards), state.AccountKey(a.Key))
		if err != nil {
			return 0, err
		}
		if !ok {
			continue
		}
		acct, err := state.DecodeAccount(v)
		if err != nil {
			return 0, err
		}
		sum += acct.Balance
	}
	return sum, nil
}

// rootsEqual waits up to d until every running node reports the same
// height, block hash and state root on every shard, and says which node and
// shard differ if they do not converge.
func (c *cluster) rootsEqual(ctx context.Context, d time.Duration) (bool, []string) {
	deadline := time.Now().Add(d)
	for {
		notes := c.rootDiffs()
		if len(notes) == 0 {
			return true, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false, notes
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *cluster) rootDiffs() []string {
	names, nodes := c.live()
	if len(nodes) == 0 {
		return []string{"roots: no node running"}
	}
	var notes []string
	for shard := range uint32(c.sc.Cluster.Shards) {
		metas := make([]storage.Meta, len(nodes))
		var errs []error
		for i, n := range nodes {
			m, _, err := n.DB().ShardMeta(shard)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", names[i], err))
			}
			metas[i] = m
		}
		if err := errors.Join(errs...); err != nil {
			notes = append(notes, fmt.Sprintf("roots: shard %d: %v", shard, err))
			continue
		}
		for i := 1; i < len(nodes); i++ {
			a, b := metas[0], metas[i]
			if a.Height == b.Height && a.BlockHash == b.BlockHash && a.Root.Equal(&b.Root) {
				continue
			}
			notes = append(notes, fmt.Sprintf("roots: shard %d: %s at height %d (block %x, root %s) but %s at height %d (block %x, root %s)%s",
				shard, names[0], a.Height, a.BlockHash[:4], shortRoot(a), names[i], b.Height, b.BlockHash[:4], shortRoot(b), haltedNote(nodes[i], names[i], shard)+haltedNote(nodes[0], names[0], shard)))
		}
	}
	return notes
}

func shortRoot(m storage.Meta) string {
	b := m.Root.Bytes()
	return fmt.Sprintf("%x…", b[:4])
}

func haltedNote(n *node.Node, name string, shard uint32) string {
	if n.Halted(shard) {
		return fmt.Sprintf("; %s halted shard %d after a root divergence", name, shard)
	}
	return ""
}
