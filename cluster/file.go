// Package cluster is the cluster file — what every node of a cluster
// shares: chain, shards, brokers, block bounds, leadership timeouts,
// genesis and every validator's id, key and address — and the one way a
// node's Settings become its node.Config, whether they come from a
// cluster file, from rustorium node's flags or from a scenario's cluster.
package cluster

import (
	"cmp"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/rustorium/rustorium/node"
	"github.com/rustorium/rustorium/node/consensus"
	"github.com/rustorium/rustorium/node/ordering"
	"github.com/rustorium/rustorium/node/p2p"
	"github.com/rustorium/rustorium/scenarios"
)

// File is a cluster configuration: what every node of a cluster
// shares. Each node process gets the same file plus its own --id and
// --key-file. Decoded strictly (unknown fields are errors with their line).
// A field left out takes the node's default (ordering.DefaultShards,
// consensus.DefaultQuorum, consensus.DefaultMaxTxs, DefaultMaxBytes,
// DefaultMaxWait); a shard count, quorum or block bound written as 0 is an
// error, as `--shards 0` is.
//
//	chain_id: 1
//	shards: 4                 # optional: 4
//	quorum: 2                 # optional: ⌊2N/3⌋+1
//	brokers: [kafka-1:9092]
//	topic_prefix: prod-       # optional
//	block: {max_txs: 1000, max_bytes: 1048576, max_wait: 20ms}   # optional, these defaults
//	leadership: {session_timeout: 6s, transaction_timeout: 10s} # optional
//	storage: {sync: true}     # optional
//	genesis:                  # optional accounts with balances
//	  - {account: <ed25519 public key, hex>, balance: 1000000}
//	nodes:
//	  - {id: node-1, key: <ed25519 public key, hex>, addr: 10.0.0.1:7400}
//	  - {id: node-2, key: …, addr: 10.0.0.2:7400}
//	  - {id: node-3, key: …, addr: 10.0.0.3:7400}
type File struct {
	// ChainID is the chain every transaction must name.
	ChainID uint32 `yaml:"chain_id"`
	// Shards is the number of shards; every node must use the same.
	// Absent: ordering.DefaultShards.
	Shards int `yaml:"shards"`
	// Quorum is how many matching attestations make a block final.
	// Absent: consensus.DefaultQuorum of the nodes, ⌊2N/3⌋+1.
	Quorum int `yaml:"quorum"`
	// Brokers are the Kafka-protocol seed brokers all nodes share. Required:
	// a node's embedded broker cannot be shared between processes.
	Brokers []string `yaml:"brokers"`
	// TopicPrefix is prepended to every topic name.
	TopicPrefix string `yaml:"topic_prefix"`
	// Block bounds blocks; absent fields take consensus's defaults.
	Block struct {
		MaxTxs   int                `yaml:"max_txs"`
		MaxBytes int                `yaml:"max_bytes"`
		MaxWait  scenarios.Duration `yaml:"max_wait"`
		// Hold is shard or leader (consensus.Hold); absent: shard, and
		// Marshal leaves the default out, so that a node binary older than
		// the field (rustorium run --node-bin) reads the file.
		Hold string `yaml:"hold,omitempty"`
	} `yaml:"block"`
	// Leadership tunes the shard leaders' consumer group; zero fields take
	// the node's defaults (6s, 10s). The broker bounds the session timeout
	// (group.min.session.timeout.ms).
	Leadership struct {
		SessionTimeout     scenarios.Duration `yaml:"session_timeout"`
		TransactionTimeout scenarios.Duration `yaml:"transaction_timeout"`
	} `yaml:"leadership"`
	// Storage: sync (default true) fsyncs every committed block.
	Storage struct {
		Sync *bool `yaml:"sync"`
	} `yaml:"storage"`
	// Genesis are accounts that exist before the first block.
	Genesis []GenesisEntry `yaml:"genesis"`
	// Nodes are the validators: a unique id, the public key it proves with
	// its key file, and the QUIC address its clients and peers dial.
	Nodes []Node `yaml:"nodes"`

	file  string
	lines map[string]int
	keys  []ed25519.PublicKey   // Nodes' keys, decoded
	gen   []node.GenesisAccount // Genesis, decoded
}

// GenesisEntry is an account that exists before the first block.
type GenesisEntry struct {
	// Account is the account's ed25519 public key, hex.
	Account string `yaml:"account"`
	// Balance is its balance at genesis.
	Balance uint64 `yaml:"balance"`
}

// Node is one validator of a cluster file.
type Node struct {
	// ID names the node (node-1, …); its key file proves it is the node.
	ID string `yaml:"id"`
	// Key is the node's ed25519 public key, hex.
	Key string `yaml:"key"`
	// Addr is the QUIC address, host:port, its clients and peers dial.
	Addr string `yaml:"addr"`
	// API is the address of the node's HTTP APIs, host:port (as given to
	// rustorium node --api). Optional: the node does not read it; a load
	// generator driving the cluster (rustorium loadgen --cluster) sends
	// REST, WebSocket and GraphQL workloads there and checks the nodes'
	// roots, indexes and balances through it.
	API string `yaml:"api,omitempty"`
}

// APIURL is the base URL of the node's HTTP APIs, or "" without one.
func (n Node) APIURL() string {
	if n.API == "" {
		return ""
	}
	return "http://" + n.API
}

// nodeIDRE is what a node id may hold (it is part of Kafka ids).
var nodeIDRE = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,64}$`)

// Load reads, decodes and checks a cluster file. Errors are
// *scenarios.Error values naming the file, line and field (several joined).
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

func Parse(name string, data []byte) (*File, error) {
	cf := &File{file: name}
	lines, err := scenarios.DecodeStrict(name, data, cf)
	if err != nil {
		return nil, err
	}
	cf.lines = lines
	if err := cf.validate(); err != nil {
		return nil, err
	}
	cf.ensureDefaults()
	return cf, nil
}

// given reports whether the file sets field (a path such as
// "block.max_txs"), 0 included.
func (cf *File) given(field string) bool {
	_, ok := cf.lines[field]
	return ok
}

// ensureDefaults fills the fields the file leaves out with the node's
// defaults, the same the flags of `rustorium node` default to.
func (cf *File) ensureDefaults() {
	for _, d := range []struct {
		field string
		v     *int
		def   int
	}{
		{"shards", &cf.Shards, ordering.DefaultShards},
		{"quorum", &cf.Quorum, consensus.DefaultQuorum(len(cf.Nodes))},
		{"block.max_txs", &cf.Block.MaxTxs, consensus.DefaultMaxTxs},
		{"block.max_bytes", &cf.Block.MaxBytes, consensus.DefaultMaxBytes},
	} {
		if !cf.given(d.field) {
			*d.v = d.def
		}
	}
	if !cf.given("block.max_wait") {
		cf.Block.MaxWait = scenarios.Duration(consensus.DefaultMaxWait)
	}
}

// invalid is a validation error located at field's line.
func (cf *File) invalid(field, format string, args ...any) error {
	return &scenarios.Error{File: cf.file, Line: scenarios.LineOf(cf.lines, field), Field: field, Msg: fmt.Sprintf(format, args...), Err: scenarios.ErrInvalid}
}

func (cf *File) validate() error {
	var errs []error
	add := func(field, format string, args ...any) { errs = append(errs, cf.invalid(field, format, args...)) }
	if cf.given("shards") && (cf.Shards < 1 || cf.Shards > ordering.MaxShards) {
		add("shards", "%d is out of range (1..%d; leave it out for %d)", cf.Shards, ordering.MaxShards, ordering.DefaultShards)
	}
	if len(cf.Brokers) == 0 {
		add("brokers", "required: the Kafka or Redpanda brokers every node shares (host:port, …)")
	}
	for i, b := range cf.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			add(fmt.Sprintf("brokers[%d]", i), "%q is not host:port", b)
		}
	}
	n := len(cf.Nodes)
	if n == 0 {
		add("nodes", "required: every validator's id, key and addr")
	}
	if cf.given("quorum") && (cf.Quorum < 1 || cf.Quorum > n) {
		add("quorum", "%d is out of range (1..%d nodes; leave it out for ⌊2N/3⌋+1)", cf.Quorum, n)
	}
	if cf.given("block.max_txs") && cf.Block.MaxTxs < 1 {
		add("block.max_txs", "%d: must be ≥ 1 (leave it out for %d)", cf.Block.MaxTxs, consensus.DefaultMaxTxs)
	}
	if cf.given("block.max_bytes") && cf.Block.MaxBytes < 1 {
		add("block.max_bytes", "%d: must be ≥ 1 (leave it out for %d)", cf.Block.MaxBytes, consensus.DefaultMaxBytes)
	}
	if cf.given("block.max_wait") && cf.Block.MaxWait <= 0 {
		add("block.max_wait", "%v: must be > 0 (leave it out for %v)", cf.Block.MaxWait, consensus.DefaultMaxWait)
	}
	if h := consensus.Hold(cf.Block.Hold); h != "" && !h.Known() {
		add("block.hold", "%q: want %s or %s (leave it out for %s)", cf.Block.Hold, consensus.HoldShard, consensus.HoldLeader, consensus.DefaultHold)
	}
	if cf.Leadership.SessionTimeout < 0 {
		add("leadership.session_timeout", "must be ≥ 0")
	}
	if cf.Leadership.TransactionTimeout < 0 {
		add("leadership.transaction_timeout", "must be ≥ 0")
	}
	ids, keys, addrs := map[string]int{}, map[string]int{}, map[string]int{}
	for i, nd := range cf.Nodes {
		p := fmt.Sprintf("nodes[%d]", i)
		switch {
		case nd.ID == "":
			add(p+".id", "required")
		case !nodeIDRE.MatchString(nd.ID):
			add(p+".id", "%q: use letters, digits, '.', '_' and '-' (at most 64)", nd.ID)
		}
		if j, dup := ids[nd.ID]; dup && nd.ID != "" {
			add(p+".id", "%q is also nodes[%d]'s id", nd.ID, j)
		}
		ids[nd.ID] = i
		key, err := parsePublicKey(nd.Key)
		if err != nil {
			add(p+".key", "%v", err)
		} else if j, dup := keys[string(key)]; dup {
			add(p+".key", "the same key as nodes[%d]", j)
		}
		keys[string(key)] = i
		cf.keys = append(cf.keys, key)
		if _, _, err := net.SplitHostPort(nd.Addr); err != nil {
			add(p+".addr", "%q is not host:port (the QUIC address clients and peers dial)", nd.Addr)
		} else if j, dup := addrs[nd.Addr]; dup {
			add(p+".addr", "%q is also nodes[%d]'s address", nd.Addr, j)
		}
		addrs[nd.Addr] = i
		if _, _, err := net.SplitHostPort(nd.API); nd.API != "" && err != nil {
			add(p+".api", "%q is not host:port (the address rustorium node --api serves)", nd.API)
		}
	}
	for i, g := range cf.Genesis {
		key, err := parsePublicKey(g.Account)
		if err != nil {
			add(fmt.Sprintf("genesis[%d].account", i), "%v", err)
		}
		cf.gen = append(cf.gen, node.GenesisAccount{Key: key, Balance: g.Balance})
	}
	return errors.Join(errs...)
}

// parsePublicKey decodes a hex ed25519 public key.
func parsePublicKey(s string) (ed25519.PublicKey, error) {
	if s == "" {
		return nil, errors.New("required (an ed25519 public key in hex, as `rustorium node keygen` prints)")
	}
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%q is not an ed25519 public key (%d bytes in hex)", s, ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

// NodeOptions are one node process's own settings besides the cluster file.
type NodeOptions struct {
	ID     string             // which of the file's nodes this process is
	Key    ed25519.PrivateKey // its identity, matching the file's key for ID
	Data   string             // data directory; "" means rustorium-data/<id>
	Listen string             // QUIC listen address; "" means the file's addr
	Logger *slog.Logger
}

// settings are the settings of node o.ID of the cluster.
func (cf *File) Settings(o NodeOptions) (Settings, error) {
	idx := -1
	var known []string
	for i, nd := range cf.Nodes {
		known = append(known, nd.ID)
		if nd.ID == o.ID {
			idx = i
		}
	}
	if idx < 0 {
		return Settings{}, fmt.Errorf("--id %q is not a node of %s (nodes: %s)", o.ID, cf.file, strings.Join(known, ", "))
	}
	if len(o.Key) != ed25519.PrivateKeySize {
		return Settings{}, errors.New("a node key is required (--key-file)")
	}
	if pub := o.Key.Public().(ed25519.PublicKey); !pub.Equal(cf.keys[idx]) {
		return Settings{}, fmt.Errorf("the key file's public key %x is not %s's key in %s (%s)", []byte(pub), o.ID, cf.file, cf.Nodes[idx].Key)
	}
	peers := make([]p2p.Peer, len(cf.Nodes))
	for i, nd := range cf.Nodes {
		peers[i] = p2p.Peer{Key: cf.keys[i], Addr: nd.Addr}
	}
	data := o.Data
	if data == "" {
		data = filepath.Join("rustorium-data", o.ID)
	}
	listen := o.Listen
	if listen == "" {
		listen = cf.Nodes[idx].Addr
	}
	return Settings{
		ChainID: cf.ChainID, Key: o.Key, NodeID: o.ID,
		Shards: cf.Shards, Brokers: cf.Brokers, TopicPrefix: cf.TopicPrefix,
		DataDir: data, Listen: listen,
		Sync:  cf.Storage.Sync == nil || *cf.Storage.Sync,
		Block: consensus.CutterConfig{MaxTxs: cf.Block.MaxTxs, MaxBytes: cf.Block.MaxBytes, MaxWait: cf.Block.MaxWait.Std(), Hold: cmp.Or(consensus.Hold(cf.Block.Hold), consensus.DefaultHold)},
		Peers: peers, Quorum: cf.Quorum,
		Leadership: node.LeadershipConfig{
			SessionTimeout: cf.Leadership.SessionTimeout.Std(), TransactionTimeout: cf.Leadership.TransactionTimeout.Std(),
		},
		Genesis: cf.gen,
		Logger:  o.Logger,
	}, nil
}

// Keys returns the nodes' public keys, decoded, in the file's order.
func (cf *File) Keys() []ed25519.PublicKey { return cf.keys }

// GenesisAccounts returns the genesis accounts, decoded.
func (cf *File) GenesisAccounts() []node.GenesisAccount { return cf.gen }

// Marshal encodes the file as YAML that Parse reads back.
func (cf *File) Marshal() ([]byte, error) { return yaml.Marshal(cf) }

// ReadKeyFile reads a hex ed25519 seed (as `rustorium node keygen` writes).
// Like ssh with a private key, it refuses (ErrKeyFileMode) a file that
// group or others may read, except on Windows.
func ReadKeyFile(path string) (ed25519.PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("%w: %s has mode %04o: group or others can read the node's private key (chmod 600 %s)", ErrKeyFileMode, path, perm, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, 1<<10))
	if err != nil {
		return nil, err
	}
	seed, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%s: want %d hex-encoded bytes (an ed25519 seed, as `rustorium node keygen` writes)", path, ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// LoadOrCreateKey reads a hex ed25519 seed from path, creating it if absent.
func LoadOrCreateKey(path string) (ed25519.PrivateKey, error) {
	key, err := ReadKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return WriteKeyFile(path)
	}
	return key, err
}

// WriteKeyFile writes a new random ed25519 seed to path in hex (mode 0600)
// and returns its key.
func WriteKeyFile(path string) (ed25519.PrivateKey, error) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, []byte(hex.EncodeToString(seed)+"\n"), 0o600); err != nil {
		return nil, err
	}
	return ed25519.NewKeyFromSeed(seed), nil
}
