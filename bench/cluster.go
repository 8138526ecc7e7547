package bench

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rustorium/rustorium/netem"
	"github.com/rustorium/rustorium/node"
	"github.com/rustorium/rustorium/node/consensus"
	"github.com/rustorium/rustorium/node/ordering"
	"github.com/rustorium/rustorium/node/p2p"
	"github.com/rustorium/rustorium/node/state"
	"github.com/rustorium/rustorium/node/storage"
	"github.com/rustorium/rustorium/scenarios"
)

// cluster is what a run measures: the broker (embedded unless the scenario
// or the caller names one), the emulated network, the node, and the load
// generator's QUIC connections, with the checker watching the node's blocks.
type cluster struct {
	sc         *scenarios.Scenario
	brokers    []string
	brokerKind string
	prefix     string // topic prefix of this run
	nw         *netem.Network
	dialer     func(ctx context.Context, network, host string) (net.Conn, error) // broker path; nil: direct
	node       *node.Node
	clients    []*p2p.Client
	chk        *checker
	ingress    *ingressIndex
	genesis    []node.GenesisAccount
	closers    []io.Closer // in acquisition order; closed in reverse
}

func startCluster(ctx context.Context, sc *scenarios.Scenario, opts Options, genesis []node.GenesisAccount, p *progress) (_ *cluster, err error) {
	c := &cluster{sc: sc, chk: newChecker(), ingress: &ingressIndex{}, brokerKind: "kafka", genesis: genesis}
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
		emb, err := ordering.StartEmbedded(ctx, ordering.EmbeddedOptions{Logger: opts.Logger})
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

	// The emulated network, when the scenario impairs anything: QUIC between
	// the clients and the node, TCP between the node and the broker.
	if usesNetwork(sc) {
		c.nw = netem.New(netem.Options{Seed: sc.Seed})
		c.closers = append(c.closers, c.nw)
		if err := c.nw.SetScenario(sc.NetworkAt(0), endpoints); err != nil {
			return nil, err
		}
		c.dialer = c.nw.Dialer("node-1", netem.EndpointBroker, nil)
	}
	nodePC, err := c.listen("node-1")
	if err != nil {
		return nil, err
	}

	p.printf("starting %d node(s), %d shards, broker %s (%s)", sc.Cluster.Nodes, sc.Cluster.Shards, c.brokerKind, strings.Join(c.brokers, ","))
	// Every run starts a fresh cluster: a node directory left by an earlier
	// run into the same folder would resume from offsets of another log.
	nodeDir := filepath.Join(opts.Out, "node-1")
	if err := os.RemoveAll(nodeDir); err != nil {
		return nil, err
	}
	c.node, err = node.New(ctx, node.Config{
		ChainID: chainID, Shards: sc.Cluster.Shards, Brokers: c.brokers, TopicPrefix: c.prefix,
		DataDir: nodeDir,
		Storage: storage.Options{NoSync: !sc.Cluster.Storage.SyncEnabled()},
		Block: consensus.CutterConfig{
			MaxTxs: sc.Cluster.Block.MaxTxs, MaxBytes: sc.Cluster.Block.MaxBytes, MaxWait: sc.Cluster.Block.MaxWait.Std(),
		},
		PacketConn: nodePC, BrokerDialer: c.dialer,
		OnBlock:   c.chk.onBlock,
		OnIngress: c.ingress.stamp,
		Genesis:   genesis,
		Logger:    opts.Logger,
	})
	if err != nil {
		return nil, err
	}
	c.closers = append(c.closers, c.node)
	if err := c.node.Start(ctx); err != nil {
		return nil, err
	}
	c.clients = make([]*p2p.Client, opts.ClientConns)
	for i := range c.clients {
		pc, err := c.listen("clients")
		if err != nil {
			return nil, err
		}
		if c.clients[i], err = p2p.Dial(ctx, c.node.Addr().String(), p2p.ClientConfig{ServerKey: c.node.PublicKey(), PacketConn: pc}); err != nil {
			return nil, err
		}
		c.closers = append(c.closers, c.clients[i])
	}
	return c, nil
}

// watch returns a context that ends, with the node's error as its cause,
// when a pipeline of the node fails: a run must not go on measuring a node
// that stopped committing. stop releases the watcher.
func (c *cluster) watch(ctx context.Context) (_ context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		select {
		case err := <-c.node.Err():
			cancel(fmt.Errorf("bench: node-1 failed: %w", err))
		case <-done:
		}
	}()
	return ctx, func() { close(done); cancel(nil) }
}

// listen opens an emulated UDP socket for endpoint, or returns nil (the
// caller opens its own) without network emulation.
func (c *cluster) listen(endpoint string) (net.PacketConn, error) {
	if c.nw == nil {
		return nil, nil
	}
	pc, err := c.nw.ListenPacket(endpoint, "udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	c.closers = append(c.closers, pc)
	return pc, nil
}

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

// endpoints are the emulated network's endpoints in a one-node run.
var endpoints = []string{"clients", "node-1", netem.EndpointBroker}

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

// conserved checks that the genesis accounts' balances add up to their
// genesis total. Credits of cross-shard transfers may still be on their way
// when the load ends, so it waits up to d for the sum to settle.
func (c *cluster) conserved(ctx context.Context, d time.Duration) (bool, string) {
	var want uint64
	for _, a := range c.genesis {
		want += a.Balance
	}
	deadline := time.Now().Add(d)
	for {
		got, err := c.balances()
		switch {
		case err != nil:
			return false, fmt.Sprintf("balances: %v", err)
		case got == want:
			return true, ""
		case time.Now().After(deadline) || ctx.Err() != nil:
			return false, fmt.Sprintf("balances add up to %d, genesis gave %d", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *cluster) balances() (uint64, error) {
	var sum uint64
	shards := c.sc.Cluster.Shards
	for _, a := range c.genesis {
		v, ok, err := c.node.DB().Get(ordering.ShardOf(a.Key, shards), state.AccountKey(a.Key))
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
