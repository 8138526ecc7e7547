package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
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

	"github.com/rustorium/rustorium/node"
	"github.com/rustorium/rustorium/node/consensus"
	"github.com/rustorium/rustorium/node/storage"
)

func newNodeCmd() *cobra.Command {
	var (
		dataDir, listen, brokers, prefix, profile, metricsAddr string
		shards                                                 int
		chainID                                                uint32
		block                                                  consensus.CutterConfig
		noSync                                                 bool
	)
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Run a reference node until interrupted",
		Long: `Run a reference node: clients submit signed transactions over QUIC, the node
orders them in the sharded Kafka log (an embedded broker unless --brokers is
given), commits blocks to Pebble under a Poseidon Merkle tree and answers with
accepted and committed receipts. The node's identity is kept in DATA/node.key.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			stopProfile, err := startProfile(profile, filepath.Join(dataDir, "profile"))
			if err != nil {
				return err
			}
			defer stopProfile()
			if err := os.MkdirAll(dataDir, 0o755); err != nil {
				return err
			}
			key, err := loadOrCreateKey(filepath.Join(dataDir, "node.key"))
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelInfo}))
			cfg := node.Config{
				ChainID: chainID, Key: key, Shards: shards, TopicPrefix: prefix,
				DataDir: dataDir, Listen: listen, Block: block,
				Storage: storage.Options{NoSync: noSync}, Logger: log,
			}
			if brokers != "" {
				cfg.Brokers = strings.Split(brokers, ",")
			}
			ctx := cmd.Context()
			if metricsAddr != "" {
				reg := prometheus.NewRegistry()
				reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
				cfg.Registerer = reg
				ln, err := net.Listen("tcp", metricsAddr)
				if err != nil {
					return fmt.Errorf("--metrics: %w", err)
				}
				srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
				go srv.Serve(ln) //nolint:errcheck // ends with Close below
				defer srv.Close()
				log.Info("metrics", "url", "http://"+ln.Addr().String()+"/metrics")
			}
			n, err := node.New(ctx, cfg)
			if err != nil {
				return err
			}
			defer n.Close()
			if err := n.Start(ctx); err != nil {
				return err
			}
			log.Info("node running", "quic", n.Addr().String(), "key", hex.EncodeToString(n.PublicKey()),
				"brokers", strings.Join(n.Brokers(), ","), "shards", shards)
			select {
			case <-ctx.Done():
				log.Info("stopping")
				return nil
			case err := <-n.Err():
				return err
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data", "rustorium-data", "data directory (store and node key)")
	f.StringVar(&listen, "listen", "127.0.0.1:7400", "QUIC address for clients")
	f.StringVar(&brokers, "brokers", "", "Kafka/Redpanda seed brokers host:port,…; empty runs an embedded broker")
	f.StringVar(&prefix, "topic-prefix", "", "prefix of every topic name")
	f.IntVar(&shards, "shards", 4, "number of shards (part of the data layout)")
	f.Uint32Var(&chainID, "chain-id", 1, "chain id transactions must carry")
	f.IntVar(&block.MaxTxs, "block-max-txs", 1000, "close a block at this many transactions")
	f.DurationVar(&block.MaxWait, "block-max-wait", 20*time.Millisecond, "close a non-empty block after this long")
	f.BoolVar(&noSync, "no-sync", false, "do not fsync each block (faster, not crash safe)")
	f.StringVar(&metricsAddr, "metrics", "", "serve Prometheus metrics on this address (e.g. 127.0.0.1:9400)")
	f.StringVar(&profile, "profile", "", "profile the run: cpu|mem|mutex|block|trace (written under DATA/profile)")
	return cmd
}

// loadOrCreateKey reads a hex ed25519 seed from path, creating it if absent.
func loadOrCreateKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		seed := make([]byte, ed25519.SeedSize)
		if _, err := rand.Read(seed); err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, []byte(hex.EncodeToString(seed)+"\n"), 0o600); err != nil {
			return nil, err
		}
		return ed25519.NewKeyFromSeed(seed), nil
	}
	if err != nil {
		return nil, err
	}
	seed, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%s: want %d hex-encoded bytes (an ed25519 seed)", path, ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}
