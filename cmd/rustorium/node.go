package main

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
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/rustorium/rustorium/cluster"
	"github.com/rustorium/rustorium/node"
	"github.com/rustorium/rustorium/node/api"
	"github.com/rustorium/rustorium/node/consensus"
	"github.com/rustorium/rustorium/node/health"
	"github.com/rustorium/rustorium/node/ordering"
	"github.com/rustorium/rustorium/node/p2p"
	"github.com/rustorium/rustorium/node/tracing"
)

func newNodeCmd() *cobra.Command {
	var nf nodeFlags
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Run a reference node until interrupted",
		Long: `Run a reference node: clients submit signed transactions over QUIC, the node
orders them in the sharded Kafka log (an embedded broker unless --brokers is
given), commits blocks to Pebble under a Poseidon Merkle tree and answers with
accepted and committed receipts. The node's identity is kept in DATA/node.key.

Cluster mode: --cluster FILE --id ID --key-file PATH runs node ID of the
cluster described in FILE (YAML: chain_id, shards, quorum, brokers, nodes with
id, key and addr, …; see README.md). Every node gets the same file; its key
file must hold the private key of its entry (` + "`rustorium node keygen`" + ` makes
one). The shard and broker settings then come from the file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tuneGCForNodes()
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelInfo}))
			cfg, err := nf.config(cmd, log)
			if err != nil {
				return err
			}
			raiseFileLimit(log, uint64(nf.limits.MaxConns+fdReserve))
			stopProfile, err := startProfile(nf.profile, filepath.Join(cfg.DataDir, "profile"), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer stopProfile()
			return serveNode(cmd.Context(), cfg, serveOptions{Metrics: nf.metrics, API: nf.api, APILimits: nf.limits})
		},
	}
	nf.register(cmd)
	cmd.AddCommand(newKeygenCmd())
	return cmd
}

// nodeFlags are `rustorium node`'s flags.
type nodeFlags struct {
	dataDir, listen, brokers, prefix, profile, metrics, api string
	cluster, id, keyFile                                    string
	shards                                                  int
	chainID                                                 uint32
	block                                                   consensus.CutterConfig
	noSync                                                  bool
	limits                                                  api.Limits // the API's
	quicConns                                               int
	quicStreams, quicStreamsTotal                           int64
	otlp                                                    string  // --otlp: the OTLP endpoint
	traceSample                                             float64 // --trace-sample
}

// register defines the flags on cmd. The defaults of the shard count and
// the block bounds are the node's own (ordering, consensus).
func (nf *nodeFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&nf.dataDir, "data", "rustorium-data", "data directory (store and node key); in cluster mode rustorium-data/ID")
	f.StringVar(&nf.listen, "listen", "127.0.0.1:7400", "QUIC address for clients (and peers); in cluster mode the node's addr in the cluster file")
	f.StringVar(&nf.brokers, "brokers", "", "Kafka/Redpanda seed brokers host:port,…; empty runs an embedded broker")
	f.StringVar(&nf.prefix, "topic-prefix", "", "prefix of every topic name")
	f.IntVar(&nf.shards, "shards", ordering.DefaultShards, fmt.Sprintf("number of shards, 1..%d (part of the data layout)", ordering.MaxShards))
	f.Uint32Var(&nf.chainID, "chain-id", 1, "chain id transactions must carry")
	f.IntVar(&nf.block.MaxTxs, "block-max-txs", consensus.DefaultMaxTxs, "close a block at this many transactions")
	f.IntVar(&nf.block.MaxBytes, "block-max-bytes", consensus.DefaultMaxBytes, "close a block at this many bytes of transactions")
	f.DurationVar(&nf.block.MaxWait, "block-max-wait", consensus.DefaultMaxWait, "the longest a leader holds a block open, from its first transaction, while a block is in flight (at low load blocks are cut at once)")
	f.StringVar((*string)(&nf.block.Hold), "block-hold", string(consensus.DefaultHold), "which in-flight blocks hold a shard's block open: shard (its own previous block) or leader (any block its leader published)")
	f.BoolVar(&nf.noSync, "no-sync", false, "do not fsync each block (faster, not crash safe)")
	f.StringVar(&nf.metrics, "metrics", "", "serve Prometheus metrics on this address (e.g. 127.0.0.1:9400)")
	f.StringVar(&nf.api, "api", "", "serve the REST, WebSocket and GraphQL APIs on this address (e.g. 127.0.0.1:7480); empty: off")
	f.BoolVar(&nf.limits.Introspection, "api-introspection", false, "serve GraphQL introspection (__schema, __type); off, a query naming them is refused (\"introspection disabled\")")
	f.IntVar(&nf.limits.MaxConns, "api-max-conns", api.DefaultMaxConns, "API connections open at once; one more is answered 503 \"too many connections\" and closed")
	f.IntVar(&nf.limits.MaxConnsPerIP, "api-max-conns-per-ip", api.DefaultMaxConnsPerIP, "API connections open at once from one IP address")
	f.DurationVar(&nf.limits.ReadTimeout, "api-read-timeout", api.DefaultReadTimeout, "longest read of an API request, its body included")
	f.DurationVar(&nf.limits.IdleTimeout, "api-idle-timeout", api.DefaultIdleTimeout, "how long an idle keep-alive API connection is kept")
	f.IntVar(&nf.limits.GraphQLMaxSelections, "api-graphql-max-selections", api.DefaultGraphQLMaxSelections, "a GraphQL query's most field selections, aliases counted, fragments expanded (\"too complex\")")
	f.DurationVar(&nf.limits.GraphQLTimeout, "api-graphql-timeout", api.DefaultGraphQLTimeout, "longest GraphQL request (\"timeout\"); a document with a mutation gets the receipt timeout + 5s")
	f.IntVar(&nf.quicConns, "quic-max-conns", p2p.DefaultMaxConns, "QUIC client connections open at once; one more is closed (peers not counted)")
	f.Int64Var(&nf.quicStreams, "quic-max-streams", p2p.DefaultMaxStreams, "concurrent streams (transactions in flight) per QUIC client connection")
	f.Int64Var(&nf.quicStreamsTotal, "quic-max-streams-total", p2p.DefaultMaxClientStreams, "QUIC client streams served at once over all connections; one more is answered overloaded")
	f.StringVar(&nf.profile, "profile", "", "profile the run: cpu|mem|mutex|block|trace|perf (written under DATA/profile)")
	f.StringVar(&nf.otlp, "otlp", "", "export traces of sampled transactions over OTLP: grpc://HOST:PORT or http://HOST:PORT[/PATH] (grpcs://, https:// with TLS); empty: tracing off")
	f.Float64Var(&nf.traceSample, "trace-sample", tracing.DefaultSample, "with --otlp: the share of transactions traced, 0..1, picked from the transaction id (so every node and the client pick the same ones); 0 traces none")
	f.StringVar(&nf.cluster, "cluster", "", "cluster file (YAML): run as one validator of that cluster")
	f.StringVar(&nf.id, "id", "", "cluster mode: this node's id in the cluster file")
	f.StringVar(&nf.keyFile, "key-file", "", "cluster mode: this node's ed25519 seed in hex (rustorium node keygen)")
}

// fdReserve is the file descriptors the node keeps for its store, its
// broker (embedded: its log segments and its clients' connections) and its
// own sockets, beside its API's connection cap (QUIC's connections share
// one socket).
const fdReserve = 4096

// checkLimits refuses a limit flag (the API's and QUIC's) given as 0 or
// less: leaving the flag out is how to get the default, as with --shards.
func (nf *nodeFlags) checkLimits(cmd *cobra.Command) error {
	l := nf.limits
	for _, c := range []struct {
		name string
		v    int64
	}{
		{"api-max-conns", int64(l.MaxConns)}, {"api-max-conns-per-ip", int64(l.MaxConnsPerIP)},
		{"api-read-timeout", int64(l.ReadTimeout)}, {"api-idle-timeout", int64(l.IdleTimeout)},
		{"api-graphql-max-selections", int64(l.GraphQLMaxSelections)}, {"api-graphql-timeout", int64(l.GraphQLTimeout)},
		{"quic-max-conns", int64(nf.quicConns)}, {"quic-max-streams", nf.quicStreams}, {"quic-max-streams-total", nf.quicStreamsTotal},
	} {
		if c.v <= 0 {
			fl := cmd.Flags().Lookup(c.name)
			return fmt.Errorf("--%s %s: must be more than 0 (leave the flag out for the default, %s)", c.name, fl.Value, fl.DefValue)
		}
	}
	return nil
}

// fileFlags are the flags a cluster file sets instead.
var fileFlags = []string{"brokers", "topic-prefix", "shards", "chain-id", "block-max-txs", "block-max-bytes", "block-max-wait", "block-hold", "no-sync"}

// config is the node's configuration: from the cluster file in cluster
// mode, else from the flags (cmd's, parsed); the QUIC limits from the
// flags in both.
func (nf *nodeFlags) config(cmd *cobra.Command, log *slog.Logger) (node.Config, error) {
	if err := nf.checkLimits(cmd); err != nil {
		return node.Config{}, err
	}
	cfg, err := nf.baseConfig(cmd, log)
	cfg.MaxClientConns, cfg.MaxStreamsPerConn, cfg.MaxClientStreams = nf.quicConns, nf.quicStreams, nf.quicStreamsTotal
	if err == nil {
		cfg.Tracing, err = nf.tracing()
	}
	return cfg, err
}

// tracing is the node's tracing from --otlp and --trace-sample.
func (nf *nodeFlags) tracing() (tracing.Config, error) {
	if nf.traceSample < 0 || nf.traceSample > 1 {
		return tracing.Config{}, fmt.Errorf("--trace-sample %v: want a share in 0..1", nf.traceSample)
	}
	if nf.otlp == "" {
		return tracing.Config{}, nil
	}
	c := tracing.Config{Endpoint: nf.otlp, Sample: nf.traceSample}
	if nf.traceSample == 0 {
		c.Sample = -1 // none
	}
	return c, c.Validate()
}

// baseConfig is config without the QUIC limits.
func (nf *nodeFlags) baseConfig(cmd *cobra.Command, log *slog.Logger) (node.Config, error) {
	f := cmd.Flags()
	if nf.cluster != "" {
		for _, name := range fileFlags {
			if f.Changed(name) {
				return node.Config{}, fmt.Errorf("--%s: set in the cluster file %s in cluster mode", name, nf.cluster)
			}
		}
		var data, listen string // "": the cluster mode defaults
		if f.Changed("data") {
			data = nf.dataDir
		}
		if f.Changed("listen") {
			listen = nf.listen
		}
		return clusterNodeConfig(nf.cluster, nf.id, nf.keyFile, data, listen, log)
	}
	s, err := nf.settings(cmd, log)
	if err != nil {
		return node.Config{}, err
	}
	return s.Config()
}

// settings are the settings of a node of its own. A shard count or block
// bound given as 0 (or less) is refused: leaving the flag out is how to
// get the default.
func (nf *nodeFlags) settings(cmd *cobra.Command, log *slog.Logger) (cluster.Settings, error) {
	if nf.id != "" || nf.keyFile != "" {
		return cluster.Settings{}, errors.New("--id and --key-file need --cluster")
	}
	for _, c := range []struct {
		name string
		v    int64
	}{{"shards", int64(nf.shards)}, {"block-max-txs", int64(nf.block.MaxTxs)}, {"block-max-bytes", int64(nf.block.MaxBytes)}, {"block-max-wait", int64(nf.block.MaxWait)}} {
		if c.v <= 0 {
			fl := cmd.Flags().Lookup(c.name)
			return cluster.Settings{}, fmt.Errorf("--%s %s: must be more than 0 (leave the flag out for the default, %s)", c.name, fl.Value, fl.DefValue)
		}
	}
	if nf.shards > ordering.MaxShards {
		return cluster.Settings{}, fmt.Errorf("--shards %d: at most %d", nf.shards, ordering.MaxShards)
	}
	if err := os.MkdirAll(nf.dataDir, 0o755); err != nil {
		return cluster.Settings{}, err
	}
	key, err := cluster.LoadOrCreateKey(filepath.Join(nf.dataDir, "node.key"))
	if err != nil {
		return cluster.Settings{}, err
	}
	s := cluster.Settings{
		ChainID: nf.chainID, Key: key, Shards: nf.shards, TopicPrefix: nf.prefix,
		DataDir: nf.dataDir, Listen: nf.listen, Block: nf.block, Sync: !nf.noSync,
		Quorum: consensus.DefaultQuorum(1), Logger: log,
	}
	if nf.brokers != "" {
		s.Brokers = strings.Split(nf.brokers, ",")
	}
	return s, nil
}

// clusterNodeConfig is the configuration of node id of the cluster file at
// clusterPath, with its key from keyFile. data and listen override the
// defaults (rustorium-data/ID, the file's addr) when not empty.
func clusterNodeConfig(clusterPath, id, keyFile, data, listen string, log *slog.Logger) (node.Config, error) {
	if id == "" || keyFile == "" {
		return node.Config{}, errors.New("cluster mode needs --id and --key-file")
	}
	cf, err := cluster.Load(clusterPath)
	if err != nil {
		return node.Config{}, err
	}
	key, err := cluster.ReadKeyFile(keyFile)
	if err != nil {
		return node.Config{}, err
	}
	s, err := cf.Settings(cluster.NodeOptions{ID: id, Key: key, Data: data, Listen: listen, Logger: log})
	if err != nil {
		return node.Config{}, err
	}
	return s.Config()
}

// serveOptions are what serveNode serves besides the node's QUIC port.
type serveOptions struct {
	// Metrics is the address of the Prometheus endpoint; empty: none.
	Metrics string
	// API is the address of the REST, WebSocket and GraphQL APIs; empty:
	// none.
	API string
	// APILimits bound the API (see api.Limits for the defaults).
	APILimits api.Limits
	// Ready, if set, is called with the running node and its API address
	// (nil without an API).
	Ready func(n *node.Node, api net.Addr)
}

// serveMetrics serves a Prometheus registry of the node's metrics (set as
// cfg.Registerer) and the Go runtime's on addr, until stop.
func serveMetrics(addr string, cfg *node.Config) (stop func(), err error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cfg.Registerer = reg
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics: %w", err)
	}
	srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln) // ends with Close
	}()
	cfg.Logger.Info("metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	return func() { srv.Close(); <-done }, nil
}

// serveNode runs a node until ctx ends (nil) or the node fails (its
// error), with what opts asks for beside it.
func serveNode(ctx context.Context, cfg node.Config, opts serveOptions) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	log := cfg.Logger
	// Deferred first, so it runs last: the stop budget ends with the
	// cleanup of everything deferred below.
	var budget *time.Timer
	defer func() {
		if budget != nil {
			budget.Stop()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return err
	}
	if opts.Metrics != "" {
		stop, err := serveMetrics(opts.Metrics, &cfg)
		if err != nil {
			return err
		}
		defer stop()
	}
	var feed *api.Feed
	var apiLn net.Listener
	if opts.API != "" {
		var err error
		if apiLn, err = net.Listen("tcp", opts.API); err != nil {
			return fmt.Errorf("--api: %w", err)
		}
		defer apiLn.Close()
		feed = api.NewFeed()
		onBlock := cfg.OnBlock
		cfg.OnBlock = func(ev node.BlockEvent) {
			if onBlock != nil {
				onBlock(ev)
			}
			feed.Publish(ev)
		}
	}
	n, err := node.New(ctx, cfg)
	if err != nil {
		return err
	}
	defer n.Close()
	if err := n.Start(ctx); err != nil {
		return err
	}
	attrs := []any{"quic", n.Addr().String(), "key", hex.EncodeToString(n.PublicKey()),
		"brokers", strings.Join(n.Brokers(), ","), "shards", n.Shards()}
	var apiAddr net.Addr
	if apiLn != nil {
		srv, err := api.New(api.Config{Backend: n, ChainID: cfg.ChainID, Feed: feed, Limits: opts.APILimits, Logger: log, Registerer: cfg.Registerer, Tracer: n.Tracer()})
		if err != nil {
			return err
		}
		defer srv.Close()
		apiCtx, stopAPI := context.WithCancel(ctx)
		served := make(chan struct{})
		go func() {
			defer close(served)
			if err := srv.Serve(apiCtx, apiLn); err != nil {
				log.Error("API stopped", "err", err)
			}
		}()
		defer func() { stopAPI(); <-served }()
		apiAddr = apiLn.Addr()
		attrs = append(attrs, "api", "http://"+apiAddr.String())
	}
	if len(cfg.Peers) > 0 {
		attrs = append(attrs, "id", cfg.NodeID, "validators", len(cfg.Peers))
	}
	if cfg.Tracing.On() {
		attrs = append(attrs, "otlp", cfg.Tracing.Endpoint, "trace_sample", cfg.Tracing.Share())
	}
	log.Info("node running", attrs...)
	if opts.Ready != nil {
		opts.Ready(n, apiAddr)
	}
	select {
	case <-ctx.Done():
		log.Info("stopping")
		// A node told to stop while its store waits for the disk (a
		// stalled WAL without sync: storage.ErrStalled) has commits that
		// cannot end until the disk takes writes: its cleanup is given
		// stopBudget, then the process ends anyway, saying why.
		budget = time.AfterFunc(stopBudget, func() {
			why := "its goroutines did not end"
			var failing []string
			for _, c := range health.Failing(n.Ready(context.Background())) {
				if c.Name != "started" { // stopping: never started any more
					failing = append(failing, c.Name+": "+c.Error)
				}
			}
			if len(failing) > 0 {
				why = strings.Join(failing, "; ")
			}
			fmt.Fprintf(os.Stderr, "rustorium: the node did not stop within %v (%s): exiting\n", stopBudget, why)
			os.Exit(1)
		})
		return nil
	case err := <-n.Err():
		// A node that failed may have goroutines stuck where its cause
		// left them (a wedged store: storage.ErrWedged): its cleanup is
		// given stopBudget, then the process ends anyway, with the cause.
		budget = time.AfterFunc(stopBudget, func() {
			fmt.Fprintf(os.Stderr, "rustorium: %v\nrustorium: the node did not stop within %v of failing: exiting\n", err, stopBudget)
			os.Exit(1)
		})
		return err
	}
}

// stopBudget bounds how long a node takes to stop, told to or failed,
// before its process exits regardless (status 1).
const stopBudget = 10 * time.Second

func newKeygenCmd() *cobra.Command {
	var out string
	var force bool
	cmd := &cobra.Command{
		Use:   "keygen --out FILE",
		Short: "Create a node key file and print its public key",
		Long: `Create an ed25519 node identity: the seed, in hex, goes to FILE (mode 0600; an
existing file is kept unless --force), the public key to stdout, in hex, as
the key of the node's entry in a cluster file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return errors.New("--out is required")
			}
			if _, err := os.Stat(out); err == nil && !force {
				return fmt.Errorf("%s exists (use --force to replace it)", out)
			}
			key, err := cluster.WriteKeyFile(out)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), hex.EncodeToString(key.Public().(ed25519.PublicKey)))
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to write the key to")
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing file")
	return cmd
}
