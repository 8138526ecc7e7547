// Package node is Rustorium's reference node: it takes signed transactions
// over QUIC, orders them in the sharded Kafka log, and commits blocks under a
// Poseidon sparse Merkle tree in Pebble, answering each client with an
// accepted receipt (log offset) and a committed receipt (height, state root,
// Merkle proof).
//
// Nodes form a cluster. A Kafka consumer group makes one node the leader of
// each shard: it cuts blocks and publishes them with their cross-shard
// credits in one Kafka transaction (leader.go). Every node re-executes every
// block, attests its root to its peers over QUIC, and commits a block once
// a quorum agrees with it (shard.go, voter.go). A one-node cluster runs the
// same path with a quorum of one.
//
// New builds a node from a Config; Start runs it until Close.
package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/rustorium/rustorium/node/cache"
	"github.com/rustorium/rustorium/node/consensus"
	"github.com/rustorium/rustorium/node/metrics"
	"github.com/rustorium/rustorium/node/ordering"
	"github.com/rustorium/rustorium/node/p2p"
	"github.com/rustorium/rustorium/node/sigverify"
	"github.com/rustorium/rustorium/node/state"
	"github.com/rustorium/rustorium/node/storage"
	"github.com/rustorium/rustorium/node/tracing"
	"github.com/rustorium/rustorium/node/tx"
)

// Config configures a node. Zero fields take the defaults their comments
// state; EnsureDefaults fills them and Validate checks the result.
type Config struct {
	// ChainID is the chain every transaction must name. Zero is valid.
	ChainID uint32
	// Key is the node's identity. Nil generates one.
	Key ed25519.PrivateKey
	// Shards is the number of shards. Zero means ordering.DefaultShards (4).
	Shards int
	// Brokers are the Kafka-protocol seed brokers. Empty starts an embedded
	// broker (franz-go's kfake) in process, owned by the node.
	Brokers []string
	// TopicPrefix is prepended to every topic name. Empty by default.
	TopicPrefix string
	// BrokerDialer, if set, dials every broker connection (netem wraps the
	// broker path with it). Nil dials directly: over TCP, or in memory to the
	// node's own embedded broker (when Brokers is empty).
	BrokerDialer func(ctx context.Context, network, host string) (net.Conn, error)
	// DataDir is the node's directory: its Pebble store lives in
	// DataDir/state, and the embedded broker's log (when Brokers is empty)
	// in DataDir/broker, so a restarted node finds both. Required.
	DataDir string
	// Storage tunes the store; see storage.Options for its defaults.
	Storage storage.Options
	// Block bounds blocks; see consensus.CutterConfig for its defaults.
	Block consensus.CutterConfig
	// Listen is the QUIC address for clients when PacketConn is nil. Empty
	// means "127.0.0.1:0".
	Listen string
	// MaxClientConns bounds the open QUIC client connections
	// (p2p.ServerConfig.MaxConns); one more is closed with
	// p2p.CodeTooManyConns. Zero means p2p.DefaultMaxConns (1024).
	MaxClientConns int
	// MaxStreamsPerConn bounds one QUIC client connection's concurrent
	// streams, a transaction in flight each (p2p.ServerConfig.MaxStreams).
	// Zero means p2p.DefaultMaxStreams (16384).
	MaxStreamsPerConn int64
	// MaxClientStreams bounds the QUIC client streams served at once over
	// all connections (p2p.ServerConfig.MaxClientStreams); one more is
	// answered overloaded. Zero means p2p.DefaultMaxClientStreams (65536).
	MaxClientStreams int64
	// PacketConn, if set, is the QUIC socket (netem impairs it). The node
	// does not close it.
	PacketConn net.PacketConn
	// OnBlock, if set, is called after each block commits, on the shard's
	// goroutine. The harness's checker counts committed transactions with it.
	OnBlock func(BlockEvent)
	// OnIngress, if set, is called when a statelessly valid transaction
	// reaches the node, before it is appended to the log, on the client's
	// stream goroutine. The harness stamps the ingress stage with it.
	OnIngress func(id tx.ID, at time.Time)
	// Logger receives the node's logs. Nil discards them.
	Logger *slog.Logger
	// Registerer receives the node's Prometheus collectors. Nil keeps them
	// unregistered.
	Registerer prometheus.Registerer
	// Genesis are the accounts that exist before the first block. They are
	// written once, when a shard has no block yet. Every node of a cluster
	// must be given the same list.
	Genesis []GenesisAccount

	// NodeID names the node in its cluster: it is part of the node's Kafka
	// transactional id, so it must be unique among live nodes and stable
	// across restarts of one node ([a-zA-Z0-9._-]). "" means "node-" and
	// the first 8 bytes of the public key in hex.
	NodeID string
	// Peers is the cluster: every validator's key and QUIC address (the
	// address its clients dial; the peer protocol shares the listener).
	// The entry with this node's own key is skipped, so every node can be
	// given the same list. Empty means a cluster of this node alone.
	Peers []p2p.Peer
	// Quorum is how many matching attestations make a block final. Zero
	// means ⌊2N/3⌋+1 for N validators (this node and Peers).
	Quorum int
	// Leadership tunes the consumer group that assigns shard leaders; zero
	// fields take the defaults documented on LeadershipConfig.
	Leadership LeadershipConfig
	// AttestationRetain is how many of its own attestations per shard the
	// node keeps in memory for peers that missed them; a peer that asks
	// for older heights gets them signed again from the committed headers,
	// so a node down for any time can catch up. Default (0): 16384.
	AttestationRetain int
	// Tracing traces sampled transactions with OpenTelemetry (node/tracing):
	// the share Tracing.Sample of transaction ids (default 1% when tracing
	// is on), decided from the id alone so every node and the client agree,
	// exported to Tracing.Endpoint and handed to Tracing.Processors. The
	// zero value traces nothing, at no cost.
	Tracing tracing.Config
}

// LeadershipConfig tunes shard leadership (ordering.PublisherConfig).
type LeadershipConfig struct {
	// SessionTimeout is how long a silent leader keeps its shards before
	// the group gives them to another node. Zero means 6s; the broker
	// bounds it (Kafka's group.min.session.timeout.ms).
	SessionTimeout time.Duration
	// TransactionTimeout is how long the broker lets a leader's block
	// transaction stay open; it bounds fail-over time after a crash. Zero
	// means 10s.
	TransactionTimeout time.Duration
}

// BlockEvent describes a committed block.
type BlockEvent struct {
	Header consensus.Header
	IDs    []tx.ID // the block's transactions in order, duplicates excluded
}

// EnsureDefaults fills zero fields with their defaults.
func (c *Config) EnsureDefaults() {
	if c.Shards == 0 {
		c.Shards = ordering.DefaultShards
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:0"
	}
	if c.NodeID == "" && len(c.Key) == ed25519.PrivateKeySize {
		c.NodeID = "node-" + hex.EncodeToString(c.Key.Public().(ed25519.PublicKey)[:8])
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Block.EnsureDefaults()
}

// Validate reports a configuration the node cannot run with.
func (c *Config) Validate() error {
	var errs []error
	if c.Shards < 1 || c.Shards > ordering.MaxShards {
		errs = append(errs, fmt.Errorf("shards %d not in 1..%d", c.Shards, ordering.MaxShards))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data dir is required"))
	}
	if c.Key != nil && len(c.Key) != ed25519.PrivateKeySize {
		errs = append(errs, errors.New("key is not an ed25519 private key"))
	}
	if c.MaxClientConns < 0 || c.MaxStreamsPerConn < 0 || c.MaxClientStreams < 0 {
		errs = append(errs, errors.New("negative MaxClientConns, MaxStreamsPerConn or MaxClientStreams"))
	}
	if err := c.Block.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Tracing.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("node: config: %w", err)
	}
	return nil
}

// validators are the cluster's validator keys, sorted, this node included.
func (c *Config) validators() []ed25519.PublicKey {
	self := c.Key.Public().(ed25519.PublicKey)
	out := []ed25519.PublicKey{self}
	for _, p := range c.Peers {
		if !p.Key.Equal(self) {
			out = append(out, p.Key)
		}
	}
	slices.SortFunc(out, func(a, b ed25519.PublicKey) int { return bytes.Compare(a, b) })
	return out
}

// alarmKinds are the kinds of rustorium_alarms_total: the finality
// tracker's, the replica's (shard.go) and the hanging-transaction sweep's
// (hanging.go).
var alarmKinds = []string{
	consensus.AlarmDivergence.String(), consensus.AlarmEquivocation.String(), consensus.AlarmStalled.String(),
	"invalid_block", "conflicting_block", "log_behind", alarmHangingTxn,
}

// Node is a running reference node.
type Node struct {
	cfg      Config
	log      *slog.Logger
	embedded *ordering.Embedded
	ocfg     ordering.Config
	wire     ordering.WireBytes // every broker client's bytes (ocfg.Wire)
	prod     *ordering.Producer
	db       *storage.DB
	srv      *p2p.Server
	verify   *sigverify.Verifier // shared by the QUIC server and any HTTP API
	waiters  waiters
	gate     *gate
	metrics  *metrics.Node
	views    *cache.Views
	voter    *voter
	progress *progress
	handoff  *handoff
	leader   *leader
	faults   Faults
	ready    readiness
	appends  appendHealth // the log's answers to Submit's appends, for readiness
	lock     *os.File     // the data directory's lock, held until Close
	rlog     *rateLog     // rate-limited logs of failures that repeat (storage errors)
	tp       *sdktrace.TracerProvider
	tracer   *tracing.Tracer // nil: tracing off

	cancel context.CancelFunc
	wg     sync.WaitGroup
	errc   chan error
	once   sync.Once
}

// New opens the node's store and connects to the log. It does not serve
// until Start.
func New(ctx context.Context, cfg Config) (_ *Node, err error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Key == nil {
		if _, cfg.Key, err = ed25519.GenerateKey(rand.Reader); err != nil {
			return nil, err
		}
		cfg.EnsureDefaults() // the NodeID follows the key
	}
	n := &Node{cfg: cfg, log: cfg.Logger.With("node", cfg.NodeID), errc: make(chan error, cfg.Shards+3), gate: newGate(), progress: newProgress(cfg.Shards), handoff: newHandoff()}
	// The data directory is locked, then its layout checked, before
	// anything in it is opened.
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("node: data directory: %w", err)
	}
	if n.lock, err = lockDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil && n.lock != nil {
			n.lock.Close()
		}
		if err != nil && n.tp != nil {
			_ = n.tp.Shutdown(context.Background())
		}
	}()
	if err := checkLayout(cfg.DataDir, Layout{Format: LayoutFormat, ChainID: cfg.ChainID, Shards: cfg.Shards, TopicPrefix: cfg.TopicPrefix}); err != nil {
		return nil, err
	}
	if n.tp, err = tracing.NewProvider(ctx, cfg.Tracing, tracing.Process{Service: tracing.ServiceNode, Instance: cfg.NodeID, Key: cfg.Key.Public().(ed25519.PublicKey)}); err != nil {
		return nil, fmt.Errorf("node: tracing: %w", err)
	}
	if n.tp != nil {
		n.tracer = tracing.New(n.tp, cfg.Tracing.Share())
	}
	n.leader = newLeader(n)
	n.waiters.m = make(map[tx.ID][]chan p2p.Committed)
	if n.metrics, err = metrics.New(cfg.Registerer); err != nil {
		return nil, fmt.Errorf("node: metrics: %w", err)
	}
	n.waiters.gauge = n.metrics.Waiting
	n.metrics.InitShards(cfg.Shards, alarmKinds)
	n.rlog = newRateLog(n.log, logEvery)
	// The broker's and the Kafka clients' warnings repeat once per failed
	// request (a full disk: every produce): at most one a second per kind.
	brokerLog := slog.New(rateHandler{cfg.Logger.Handler(), n.rlog})
	if err := n.watchStorage(&cfg.Storage); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	brokers, dial := cfg.Brokers, cfg.BrokerDialer
	if len(brokers) == 0 {
		opts := ordering.EmbeddedOptions{DataDir: filepath.Join(cfg.DataDir, "broker"), Logger: brokerLog, SyncWrites: !cfg.Storage.NoSync}
		if n.embedded, err = ordering.StartEmbedded(ctx, opts); err != nil {
			return nil, err
		}
		brokers = n.embedded.Addrs()
		if dial == nil {
			dial = n.embedded.Dial // in memory: the broker is in this process
		}
	}
	n.ocfg = ordering.Config{Brokers: brokers, TopicPrefix: cfg.TopicPrefix, Shards: cfg.Shards, Dialer: dial, Logger: brokerLog, Wire: &n.wire}
	if _, err = ordering.EnsureTopics(ctx, n.ocfg); err != nil {
		return nil, err
	}
	if n.prod, err = ordering.Open(ctx, n.ocfg); err != nil {
		return nil, err
	}
	if n.db, err = storage.Open(filepath.Join(cfg.DataDir, "state"), cfg.Storage); err != nil {
		return nil, err
	}
	if err := n.checkLogEnds(ctx); err != nil {
		return nil, err
	}
	if n.views, err = cache.New(n.db, cfg.Shards, cache.Options{Registerer: cfg.Registerer}); err != nil {
		return nil, err
	}
	if n.voter, err = newVoter(cfg.Key, cfg.validators(), cfg.Quorum, cfg.Shards, cfg.AttestationRetain, n.committedAttestations, n.log, n.metrics); err != nil {
		return nil, err
	}
	if n.tracer != nil {
		n.voter.keepSigners()
	}
	n.verify = sigverify.New(sigverify.Options{OnBatch: func(size int) { n.metrics.SigBatch.Observe(float64(size)) }})
	scfg := p2p.ServerConfig{
		Key: cfg.Key, ChainID: cfg.ChainID, Ingress: n, PacketConn: cfg.PacketConn, Addr: cfg.Listen, Logger: n.log,
		OnReject: func(c tx.Code) { n.metrics.Rejected.WithLabelValues(c.String()).Inc() },
		Verifier: n.verify, MaxConns: cfg.MaxClientConns, MaxStreams: cfg.MaxStreamsPerConn,
		MaxClientStreams: cfg.MaxClientStreams,
		Tracer:           n.tracer,
	}
	if len(cfg.validators()) > 1 {
		scfg.Peer = &p2p.PeerConfig{Peers: cfg.Peers, Handler: n.voter.receive, OnConnect: n.voter.resend}
	}
	if n.srv, err = p2p.Listen(scfg); err != nil {
		return nil, err
	}
	n.voter.peers = n.srv.Peers()
	if cfg.Registerer != nil {
		err = metrics.RegisterSources(cfg.Registerer, metrics.Sources{
			PoseidonPermutations: n.db.PoseidonPermutations,
			KeysHashed:           n.db.KeysHashed,
			Wire:                 n.wireBytes,
			Pebble: func() metrics.Pebble {
				w := n.db.WriteStats()
				return metrics.Pebble{BytesIn: w.BytesIn, BytesWritten: w.BytesWritten, BytesFlushed: w.BytesFlushed, MemtablesFlushed: w.MemtablesFlushed, L0Rounds: w.L0Rounds,
					WALSyncs: w.WALSyncs, WALSyncSeconds: w.WALSyncSeconds}
			},
			Prepares: n.db.PrepareBatches,
		})
		if err != nil {
			return nil, fmt.Errorf("node: metrics: %w", err)
		}
	}
	return n, nil
}

// wireBytes is what the node sent and received on each path so far.
func (n *Node) wireBytes() metrics.Wire {
	c, p, k := n.srv.ClientBytes(), n.srv.PeerBytes(), n.wire.Totals()
	return metrics.Wire{
		ClientSent: c.Sent, ClientReceived: c.Received,
		PeerSent: p.Sent, PeerReceived: p.Received,
		ProduceSent: k.ProduceWritten, ProduceReceived: k.ProduceRead,
		FetchSent: k.FetchWritten, FetchReceived: k.FetchRead,
		OtherSent: k.OtherWritten, OtherReceived: k.OtherRead,
	}
}

// checkLogEnds refuses a log that ends before the store's committed
// position (ErrLogBehind): for every shard, the end of its transactions
// topic must not be before the stored NextOffset, nor the end of its
// blocks topic before the stored BlockOffset. Each shard behind raises
// the alarm log_behind and an ERROR line naming both offsets.
func (n *Node) checkLogEnds(ctx context.Context) error {
	var errs []error
	for _, st := range []struct {
		stream ordering.Stream
		stored func(storage.Meta) int64
		what   string
	}{
		{ordering.Transactions, func(m storage.Meta) int64 { return m.NextOffset }, "committed transactions up to"},
		{ordering.Blocks, func(m storage.Meta) int64 { return m.BlockOffset }, "applied blocks up to"},
	} {
		ends, err := ordering.EndOffsets(ctx, n.ocfg, st.stream)
		if err != nil {
			return fmt.Errorf("node: checking the log's end: %w", err)
		}
		for s := range uint32(n.cfg.Shards) {
			meta, _, err := n.db.ShardMeta(s)
			if err != nil {
				return err
			}
			if stored := st.stored(meta); ends[s] < stored {
				topic := n.ocfg.Topic(st.stream, s)
				n.metrics.Alarms.WithLabelValues(strconv.FormatUint(uint64(s), 10), "log_behind").Inc()
				n.log.Error("ALARM: the log ends before the store's committed offset: refusing to start", "shard", s, "topic", topic, "log_end", ends[s], "committed_offset", stored)
				errs = append(errs, fmt.Errorf("%w: shard %d: %s ends at offset %d, but the store %s offset %d (height %d): its tail was lost; restore the log or the data directory",
					ErrLogBehind, s, topic, ends[s], st.what, stored, meta.Height))
			}
		}
	}
	return errors.Join(errs...)
}

// Start runs the shard pipelines and the QUIC server in the background. They
// stop on Close or when ctx ends; Err reports a pipeline that failed.
func (n *Node) Start(ctx context.Context) error {
	if err := n.applyGenesis(); err != nil {
		return err
	}
	ctx, n.cancel = context.WithCancel(ctx)
	for s := range uint32(n.cfg.Shards) {
		meta, _, err := n.db.ShardMeta(s)
		if err == nil {
			err = n.voter.restore(s, meta.Height)
		}
		if err != nil {
			n.cancel()
			return err
		}
		n.progress.set(s, meta)
	}
	for s := 0; s < n.cfg.Shards; s++ {
		r, err := n.newReplica(ctx, uint32(s))
		if err != nil {
			n.cancel()
			return err
		}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			defer r.close()
			err := r.run(ctx)
			switch {
			case ctx.Err() != nil:
			case errors.Is(err, errHalted):
				// Safety before liveness: the shard stays where it is on
				// this node (the alarm is raised); the others go on.
			case err != nil:
				n.ready.shardStopped(r.shard, err)
				n.log.Error("shard pipeline stopped", "shard", r.shard, "err", err)
				n.errc <- fmt.Errorf("node: shard %d: %w", r.shard, err)
			}
		}()
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.leader.run(ctx)
	}()
	if n.embedded != nil {
		n.wg.Go(func() { n.watchEmbedded(ctx) })
	}
	n.wg.Go(func() { n.sweepHanging(ctx) })
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.srv.Serve(ctx); err != nil {
			n.errc <- err
		}
	}()
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		t := time.NewTicker(optimizeEvery)
		defer t.Stop()
		r := time.NewTicker(readyEvery)
		defer r.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				n.views.Optimize()
			case <-r.C:
				n.Ready(ctx)
			}
		}
	}()
	n.ready.start(ctx)
	return nil
}

// optimizeEvery is how often the node lets its views adapt their capacity.
const optimizeEvery = 30 * time.Second

// Verifier is the node's signature checker, shared by every ingress (QUIC
// and the HTTP API), so concurrent submissions batch together whichever
// way they came.
func (n *Node) Verifier() *sigverify.Verifier { return n.verify }

// Tracer is the node's tracer of sampled transactions, which its HTTP API
// shares; nil when tracing is off.
func (n *Node) Tracer() *tracing.Tracer { return n.tracer }

// Views are the node's materialized views over committed state: reads of
// accounts (with proofs), latest blocks and recent transactions.
func (n *Node) Views() *cache.Views { return n.views }

// Err returns a channel that yields an error if a pipeline of the node
// fails while it runs.
func (n *Node) Err() <-chan error { return n.errc }

// How a node watches its embedded broker: a connection attempt every
// brokerWatchEvery; brokerWatchFails failures in a row make it fail with
// ErrBrokerDown.
var (
	brokerWatchEvery = time.Second
	brokerWatchFails = 5
)

// watchEmbedded fails the node, on Err, when its embedded broker stops
// accepting connections, until ctx ends.
func (n *Node) watchEmbedded(ctx context.Context) {
	t := time.NewTicker(brokerWatchEvery)
	defer t.Stop()
	fails := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := n.embedded.Ping(brokerWatchEvery)
		if err == nil {
			fails = 0
			continue
		}
		if fails++; fails < brokerWatchFails {
			continue
		}
		n.log.Error("the embedded broker accepts no connections: the node stops", "err", err)
		n.errc <- fmt.Errorf("%w: %d checks in a row: %v", ErrBrokerDown, fails, err)
		return
	}
}

// Addr is the QUIC address clients dial.
func (n *Node) Addr() net.Addr { return n.srv.Addr() }

// PublicKey is the node's identity, which clients pin.
func (n *Node) PublicKey() ed25519.PublicKey { return n.cfg.Key.Public().(ed25519.PublicKey) }

// Brokers are the seed brokers the node uses (the embedded one's address when
// it runs one).
func (n *Node) Brokers() []string { return n.ocfg.Brokers }

// ShardMeta is the shard's committed position: its height, last block
// hash, state root and log offsets (the zero Meta before its first
// block). It reads the store, so it answers while the node is paused.
func (n *Node) ShardMeta(shard uint32) (storage.Meta, error) {
	m, _, err := n.db.ShardMeta(shard)
	if err != nil {
		return storage.Meta{}, fmt.Errorf("node: shard %d: %w", shard, err)
	}
	return m, nil
}

// Block returns the shard's committed block header at height, with the
// state root the quorum attested; false if no block is committed there.
func (n *Node) Block(shard uint32, height uint64) (consensus.Header, bool, error) {
	raw, err := n.db.Block(shard, height)
	if ok, err := found(err); !ok || err != nil {
		return consensus.Header{}, false, err
	}
	h, err := consensus.DecodeHeader(raw)
	if err != nil {
		return consensus.Header{}, false, fmt.Errorf("node: stored header %d of shard %d: %w", height, shard, err)
	}
	return h, true, nil
}

// Receipt returns a committed transaction's stored commit receipt, without
// its proof; false if the transaction is not committed here.
func (n *Node) Receipt(id tx.ID) (p2p.Committed, bool, error) {
	raw, err := n.db.Receipt(id)
	if ok, err := found(err); !ok || err != nil {
		return p2p.Committed{}, false, err
	}
	c, err := p2p.DecodeCommitted(raw)
	if err != nil {
		return p2p.Committed{}, false, fmt.Errorf("node: stored receipt of %v: %w", id, err)
	}
	return c, true, nil
}

// TxLocation returns where a transaction committed; false if it is not
// committed here.
func (n *Node) TxLocation(id tx.ID) (storage.TxLocation, bool, error) {
	loc, err := n.db.TxLocation(id)
	if ok, err := found(err); !ok || err != nil {
		return storage.TxLocation{}, false, err
	}
	return loc, true, nil
}

// Account returns an account's committed state, read from the store (not
// the account view, and also while the node is paused); false if the
// account does not exist.
func (n *Node) Account(key ed25519.PublicKey) (state.Account, bool, error) {
	v, ok, err := n.db.Get(ordering.ShardOf(key, n.cfg.Shards), state.AccountKey(key))
	if err != nil || !ok {
		return state.Account{}, false, err
	}
	a, err := state.DecodeAccount(v)
	if err != nil {
		return state.Account{}, false, fmt.Errorf("node: stored account %x: %w", []byte(key), err)
	}
	return a, true, nil
}

// found maps a store read's storage.ErrNotFound to false.
func found(err error) (bool, error) {
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Shards is the number of shards.
func (n *Node) Shards() int { return n.cfg.Shards }

// Halted reports whether this node stopped applying the shard after its
// state root diverged from the quorum's.
func (n *Node) Halted(shard uint32) bool { return n.voter.halted(shard) }

// Leading returns the shards this node currently leads (proposes blocks
// for), sorted.
func (n *Node) Leading() []uint32 { return n.leader.leading() }

// Submit implements p2p.Ingress: it appends a validated transaction to its
// shard's log and returns once the broker acknowledged it.
func (n *Node) Submit(ctx context.Context, t *tx.Tx, id tx.ID, raw []byte) (p2p.Accepted, <-chan p2p.Committed, error) {
	if err := n.gate.wait(ctx); err != nil {
		return p2p.Accepted{}, nil, err
	}
	n.metrics.Ingress.Inc()
	if n.cfg.OnIngress != nil {
		n.cfg.OnIngress(id, time.Now())
	}
	shard := ordering.ShardOf(t.RoutingKey(), n.cfg.Shards)
	ch := n.waiters.add(id)
	var t0 time.Time
	traced := n.tracer != nil && tracing.Recording(ctx)
	if traced {
		t0 = time.Now()
	}
	off, err := n.prod.Append(ctx, shard, id[:], raw)
	if ctx.Err() == nil {
		n.appends.done(err)
	}
	if traced {
		tracing.Child(ctx, tracing.SpanProduce, t0, time.Now(), tracing.AttrShard.Int64(int64(shard)), tracing.AttrOffset.Int64(off))
	}
	if err != nil {
		n.waiters.remove(id, ch)
		return p2p.Accepted{}, nil, err
	}
	n.metrics.Accepted.Inc()
	return p2p.Accepted{ID: id, Shard: shard, Offset: off}, ch, nil
}

// Close stops the node and releases everything it owns, in reverse order of
// acquisition. Safe to call more than once.
func (n *Node) Close() error {
	n.once.Do(func() {
		n.ready.stop()
		if n.metrics != nil {
			n.metrics.Ready.Set(0)
		}
		if n.cancel != nil {
			n.cancel()
		}
		if n.srv != nil {
			n.srv.Close()
		}
		if n.verify != nil {
			n.verify.Close()
		}
		n.wg.Wait()
		n.waiters.closeAll()
		if n.prod != nil {
			n.prod.Close()
		}
		if n.db != nil {
			if err := n.db.Close(); err != nil {
				n.log.Error("closing store", "err", err)
			}
		}
		if n.embedded != nil {
			n.embedded.Close()
		}
		if n.lock != nil {
			n.lock.Close()
		}
		if n.tp != nil {
			// Flushes what the exporter still holds.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := n.tp.Shutdown(ctx); err != nil {
				n.log.Warn("flushing traces", "err", err)
			}
			cancel()
		}
	})
	return nil
}

// waiters holds the commit-receipt channels of in-flight transactions.
type waiters struct {
	mu    sync.Mutex
	m     map[tx.ID][]chan p2p.Committed
	gauge prometheus.Gauge // waiting channels
}

func (w *waiters) add(id tx.ID) chan p2p.Committed {
	ch := make(chan p2p.Committed, 1)
	w.mu.Lock()
	w.m[id] = append(w.m[id], ch)
	w.mu.Unlock()
	w.gauge.Inc()
	return ch
}

func (w *waiters) remove(id tx.ID, ch chan p2p.Committed) {
	w.mu.Lock()
	defer w.mu.Unlock()
	chs := w.m[id]
	for i, c := range chs {
		if c == ch {
			chs = append(chs[:i], chs[i+1:]...)
			w.gauge.Dec()
			break
		}
	}
	if len(chs) == 0 {
		delete(w.m, id)
	} else {
		w.m[id] = chs
	}
}

// deliver sends c to every waiter of its transaction. The gauge drops
// first: once a client holds its receipt, it is no longer counted as
// waiting (it could read the gauge before a later decrement).
func (w *waiters) deliver(c p2p.Committed) {
	w.mu.Lock()
	chs := w.m[c.ID]
	delete(w.m, c.ID)
	w.mu.Unlock()
	w.gauge.Sub(float64(len(chs)))
	for _, ch := range chs {
		ch <- c
		close(ch)
	}
}

func (w *waiters) closeAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.gauge.Set(0)
	for id, chs := range w.m {
		for _, ch := range chs {
			close(ch)
		}
		delete(w.m, id)
	}
}

// pollBackoff is the pause after a transient broker error.
const pollBackoff = 100 * time.Millisecond

// Get implements p2p.Reader: a state key's committed value with its Merkle
// proof. Accounts come from the account view (filled on a miss); other keys
// are read from storage.
func (n *Node) Get(ctx context.Context, stateKey []byte) (p2p.Value, error) {
	if err := n.gate.wait(ctx); err != nil {
		return p2p.Value{}, err
	}
	shard := ordering.ShardOf(stateKey[1:], n.cfg.Shards)
	if state.IsAccountKey(stateKey) {
		a, err := n.views.Account(ctx, shard, stateKey[1:])
		if err != nil {
			return p2p.Value{}, err
		}
		v := p2p.Value{Found: a.Exists, Root: a.Root, Proof: a.Proof}
		if a.Exists {
			v.Value = a.Account.Encode()
		}
		return v, nil
	}
	val, proof, root, err := n.db.Read(shard, stateKey)
	found := err == nil
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return p2p.Value{}, err
	}
	pb, err := proof.MarshalBinary()
	if err != nil {
		return p2p.Value{}, err
	}
	return p2p.Value{Found: found, Root: root.Bytes(), Value: val, Proof: pb}, nil
}

// committedAttestations signs this node's attestations of the committed
// heights [from, to) of a shard again, from the stored headers (a committed
// header carries the root the quorum attested). ed25519 is deterministic,
// so each is the attestation the node sent when the block was new.
func (n *Node) committedAttestations(shard uint32, from, to uint64) ([]consensus.Attestation, error) {
	meta, _, err := n.db.ShardMeta(shard)
	if err != nil {
		return nil, err
	}
	to = min(to, meta.Height+1)
	var out []consensus.Attestation
	for h := max(from, 1); h < to; h++ {
		raw, err := n.db.Block(shard, h)
		if err != nil {
			return out, err
		}
		hdr, err := consensus.DecodeHeader(raw)
		if err != nil {
			return out, err
		}
		a := consensus.Attestation{Shard: shard, Height: h, BlockHash: hdr.Hash(), StateRoot: hdr.StateRoot}
		a.Sign(n.cfg.Key)
		out = append(out, a)
	}
	return out, nil
}
