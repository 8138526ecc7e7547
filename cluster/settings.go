package cluster

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"

	"github.com/rustorium/rustorium/node"
	"github.com/rustorium/rustorium/node/consensus"
	"github.com/rustorium/rustorium/node/ordering"
	"github.com/rustorium/rustorium/node/p2p"
	"github.com/rustorium/rustorium/node/storage"
	"github.com/rustorium/rustorium/node/tracing"
)

// Settings are a node process's settings, whichever way they came:
// `rustorium node`'s flags (a node of its own) or a cluster file with the
// node's --id fill one, and Config alone makes the node.Config of
// either. Every field is explicit: the defaults (ordering.DefaultShards,
// consensus.DefaultMaxTxs, DefaultMaxBytes, DefaultMaxWait,
// DefaultQuorum) are the flags' defaults and what the cluster file's
// loader fills in for a field it does not give, so an explicit 0 is an
// error, never a silent default.
type Settings struct {
	ChainID     uint32
	Key         ed25519.PrivateKey
	NodeID      string // "": derived from the key
	Shards      int
	Brokers     []string // empty: an embedded broker
	TopicPrefix string
	DataDir     string
	Listen      string
	Sync        bool // fsync every committed block
	Block       consensus.CutterConfig
	Quorum      int
	Peers       []p2p.Peer // every validator, this node included; empty: a cluster of one
	Leadership  node.LeadershipConfig
	Genesis     []node.GenesisAccount
	Logger      *slog.Logger
	// Tracing is the node's tracing (node.Config.Tracing): rustorium
	// node's --otlp and --trace-sample, or the harness's. The zero value
	// traces nothing.
	Tracing tracing.Config
}

// Errors of the package, wrapped by the errors returned.
var (
	// ErrSettings is wrapped by every settings error Config returns.
	ErrSettings = errors.New("node settings")
	// ErrKeyFileMode: ReadKeyFile was given a key file that group or
	// others may read; chmod 600 it.
	ErrKeyFileMode = errors.New("key file readable by others")
)

// Config checks the settings and returns the node's configuration.
func (s Settings) Config() (node.Config, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if s.Shards < 1 || s.Shards > ordering.MaxShards {
		bad("shards %d: want 1..%d", s.Shards, ordering.MaxShards)
	}
	if s.Block.MaxTxs < 1 {
		bad("block max txs %d: want at least 1", s.Block.MaxTxs)
	}
	if s.Block.MaxBytes < 1 {
		bad("block max bytes %d: want at least 1", s.Block.MaxBytes)
	}
	if s.Block.MaxWait <= 0 {
		bad("block max wait %v: want more than 0", s.Block.MaxWait)
	}
	if h := s.Block.Hold; h != "" && !h.Known() {
		bad("block hold %q: want %s or %s", h, consensus.HoldShard, consensus.HoldLeader)
	}
	if n := max(len(s.Peers), 1); s.Quorum < 1 || s.Quorum > n {
		bad("quorum %d: want 1..%d (the validators)", s.Quorum, n)
	}
	if err := s.Tracing.Validate(); err != nil {
		bad("%v", err)
	}
	if err := errors.Join(errs...); err != nil {
		return node.Config{}, fmt.Errorf("%w: %w", ErrSettings, err)
	}
	return node.Config{
		ChainID: s.ChainID, Key: s.Key, NodeID: s.NodeID,
		Shards: s.Shards, Brokers: s.Brokers, TopicPrefix: s.TopicPrefix,
		DataDir: s.DataDir, Listen: s.Listen,
		Storage:    storage.Options{NoSync: !s.Sync},
		Block:      s.Block,
		Peers:      s.Peers,
		Quorum:     s.Quorum,
		Leadership: s.Leadership,
		Genesis:    s.Genesis,
		Logger:     s.Logger,
		Tracing:    s.Tracing,
	}, nil
}
