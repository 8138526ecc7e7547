package main

import (
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/rustorium/rustorium/cluster"
	"github.com/rustorium/rustorium/node"
	"github.com/rustorium/rustorium/node/consensus"
	"github.com/rustorium/rustorium/node/ordering"
	"github.com/rustorium/rustorium/node/storage"
)

// flagConfig is the node.Config `rustorium node` makes of args.
func flagConfig(t *testing.T, args ...string) (node.Config, error) {
	t.Helper()
	var nf nodeFlags
	cmd := &cobra.Command{Use: "node"}
	nf.register(cmd)
	if err := cmd.ParseFlags(append([]string{"--data", t.TempDir()}, args...)); err != nil {
		t.Fatal(err)
	}
	return nf.config(cmd, nil)
}

func TestNodeFlagZeros(t *testing.T) {
	for _, tc := range []struct{ args, want string }{
		{"--shards 0", "--shards 0: must be more than 0 (leave the flag out for the default, 4)"},
		{"--shards -2", "--shards -2: must be more than 0"},
		{fmt.Sprintf("--shards %d", ordering.MaxShards+1), fmt.Sprintf("--shards %d: at most %d", ordering.MaxShards+1, ordering.MaxShards)},
		{"--block-max-txs 0", "--block-max-txs 0: must be more than 0 (leave the flag out for the default, 1000)"},
		{"--block-max-bytes 0", "--block-max-bytes 0: must be more than 0 (leave the flag out for the default, 1048576)"},
		{"--block-max-wait 0s", "--block-max-wait 0s: must be more than 0 (leave the flag out for the default, 20ms)"},
		{"--api-max-conns 0", "--api-max-conns 0: must be more than 0 (leave the flag out for the default, 4096)"},
		{"--api-max-conns-per-ip -1", "--api-max-conns-per-ip -1: must be more than 0"},
		{"--api-idle-timeout 0s", "--api-idle-timeout 0s: must be more than 0 (leave the flag out for the default, 1m0s)"},
		{"--api-graphql-max-selections 0", "--api-graphql-max-selections 0: must be more than 0 (leave the flag out for the default, 256)"},
		{"--quic-max-conns 0", "--quic-max-conns 0: must be more than 0 (leave the flag out for the default, 1024)"},
		{"--quic-max-streams 0", "--quic-max-streams 0: must be more than 0 (leave the flag out for the default, 16384)"},
		{"--quic-max-streams-total 0", "--quic-max-streams-total 0: must be more than 0 (leave the flag out for the default, 65536)"},
	} {
		t.Run(tc.args, func(t *testing.T) {
			_, err := flagConfig(t, strings.Fields(tc.args)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	// Each flag taken alone is accepted above 0.
	if _, err := flagConfig(t, "--shards", "1", "--block-max-txs", "1", "--block-max-bytes", "1", "--block-max-wait", "1ms"); err != nil {
		t.Fatal(err)
	}
	cfg, err := flagConfig(t, "--quic-max-conns", "7", "--quic-max-streams", "9", "--quic-max-streams-total", "11")
	if err != nil || cfg.MaxClientConns != 7 || cfg.MaxStreamsPerConn != 9 || cfg.MaxClientStreams != 11 {
		t.Fatalf("QUIC limits: %d %d %d (%v), want 7 9 11", cfg.MaxClientConns, cfg.MaxStreamsPerConn, cfg.MaxClientStreams, err)
	}
}

// oneNodeCluster writes a key file and a cluster file of one node (with
// extra lines) and returns the node's configuration from them.
func oneNodeCluster(t *testing.T, extra string) node.Config {
	t.Helper()
	dir := t.TempDir()
	kf := filepath.Join(dir, "node.key")
	key, err := cluster.WriteKeyFile(kf)
	if err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprintf("%snodes:\n  - {id: node-1, key: %x, addr: 127.0.0.1:7401}\n", extra, []byte(key.Public().(ed25519.PublicKey)))
	path := filepath.Join(dir, "cluster.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := clusterNodeConfig(path, "node-1", kf, filepath.Join(dir, "data"), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// shared is what a node's flags and a cluster file both set: a Config
// without what only one of them can (identity, peers, places, genesis).
func shared(c node.Config) node.Config {
	return node.Config{
		ChainID: c.ChainID, Shards: c.Shards, Brokers: c.Brokers, TopicPrefix: c.TopicPrefix,
		Storage: c.Storage, Block: c.Block, Quorum: c.Quorum, Leadership: c.Leadership,
	}
}

// TestFlagsClusterFileParity: the flags and a one-node cluster file make
// the same configuration, given the same settings or none.
func TestFlagsClusterFileParity(t *testing.T) {
	defaults, err := flagConfig(t, "--chain-id", "0", "--brokers", "127.0.0.1:9092")
	if err != nil {
		t.Fatal(err)
	}
	want := node.Config{
		Shards: ordering.DefaultShards, Brokers: []string{"127.0.0.1:9092"}, Quorum: consensus.DefaultQuorum(1),
		Block: consensus.CutterConfig{MaxTxs: consensus.DefaultMaxTxs, MaxBytes: consensus.DefaultMaxBytes, MaxWait: consensus.DefaultMaxWait, Hold: consensus.DefaultHold},
	}
	if got := shared(defaults); !reflect.DeepEqual(got, want) {
		t.Fatalf("flag defaults %+v\nwant %+v", got, want)
	}
	if got := shared(oneNodeCluster(t, "brokers: [127.0.0.1:9092]\n")); !reflect.DeepEqual(got, want) {
		t.Fatalf("cluster file defaults %+v\nwant %+v", got, want)
	}

	flags, err := flagConfig(t, "--chain-id", "7", "--shards", "3", "--brokers", "127.0.0.1:9092,127.0.0.1:9093", "--topic-prefix", "p-",
		"--block-max-txs", "50", "--block-max-bytes", "2048", "--block-max-wait", "5ms", "--block-hold", "leader", "--no-sync")
	if err != nil {
		t.Fatal(err)
	}
	file := oneNodeCluster(t, "chain_id: 7\nshards: 3\nbrokers: [127.0.0.1:9092, 127.0.0.1:9093]\ntopic_prefix: p-\n"+
		"block: {max_txs: 50, max_bytes: 2048, max_wait: 5ms, hold: leader}\nstorage: {sync: false}\n")
	want = node.Config{
		ChainID: 7, Shards: 3, Brokers: []string{"127.0.0.1:9092", "127.0.0.1:9093"}, TopicPrefix: "p-", Quorum: 1,
		Storage: storage.Options{NoSync: true}, Block: consensus.CutterConfig{MaxTxs: 50, MaxBytes: 2048, MaxWait: 5e6, Hold: consensus.HoldLeader},
	}
	if got := shared(flags); !reflect.DeepEqual(got, want) {
		t.Fatalf("flags %+v\nwant %+v", got, want)
	}
	if got := shared(file); !reflect.DeepEqual(got, want) {
		t.Fatalf("cluster file %+v\nwant %+v", got, want)
	}
}

// TestNodeTracingFlags: --otlp turns tracing on at --trace-sample (1% by
// default); without it nothing is traced; bad values are refused.
func TestNodeTracingFlags(t *testing.T) {
	cfg, err := flagConfig(t)
	if err != nil || cfg.Tracing.On() {
		t.Fatalf("no --otlp: tracing %+v, %v", cfg.Tracing, err)
	}
	cfg, err = flagConfig(t, "--otlp", "grpc://127.0.0.1:4317")
	if err != nil || !cfg.Tracing.On() || cfg.Tracing.Share() != 0.01 || cfg.Tracing.Endpoint != "grpc://127.0.0.1:4317" {
		t.Fatalf("--otlp: tracing %+v, %v", cfg.Tracing, err)
	}
	cfg, err = flagConfig(t, "--otlp", "http://127.0.0.1:4318", "--trace-sample", "0.25")
	if err != nil || cfg.Tracing.Share() != 0.25 {
		t.Fatalf("--trace-sample 0.25: tracing %+v, %v", cfg.Tracing, err)
	}
	if cfg, err = flagConfig(t, "--otlp", "http://127.0.0.1:4318", "--trace-sample", "0"); err != nil || cfg.Tracing.On() {
		t.Fatalf("--trace-sample 0: tracing %+v, %v", cfg.Tracing, err)
	}
	for _, bad := range [][]string{{"--trace-sample", "1.5"}, {"--trace-sample", "-0.1"}, {"--otlp", "127.0.0.1:4317"}, {"--otlp", "ftp://x:1"}} {
		if _, err := flagConfig(t, bad...); err == nil {
			t.Errorf("%v: accepted", bad)
		}
	}
}
