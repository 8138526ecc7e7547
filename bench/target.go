package bench

import (
	"context"
	"crypto/ed25519"
	"time"

	"github.com/rustorium/rustorium/loadgen"
	"github.com/rustorium/rustorium/node"
	"github.com/rustorium/rustorium/node/ordering"
	"github.com/rustorium/rustorium/node/tx"
	"github.com/rustorium/rustorium/scenarios"
)

// A Target is the system a run measures. Run is one pipeline for every
// Target: it checks that the target can run the scenario (Caps), starts it,
// measures its floors, drives the load over its connections, carries out
// the timeline with its Faults, drains, and checks what it committed by
// reading its Nodes. InProcess runs the scenario's cluster in this process,
// Processes runs it as `rustorium node` OS processes, External drives nodes
// that run elsewhere (one, or every node of a cluster file).
type Target interface {
	// Caps says what the target can do; Run refuses, before it starts
	// anything, a scenario that needs more.
	Caps() Caps
	// Start brings the target up for sc and wires the run's hooks into
	// it. Start is called once; Close releases what it started, also
	// after a failed Start.
	Start(ctx context.Context, sc *scenarios.Scenario, h Hooks) error
	// Conns returns the client connections a workload speaking protocol
	// sends over. The target owns them (Close closes them).
	Conns(protocol scenarios.Client) ([]loadgen.TxConn, error)
	// Nodes returns the target's running nodes, which the checker reads at
	// the end (heights, roots, indexes, balances), for Caps.Inspect targets.
	Nodes() []NodeView
	// FloorPaths returns the target's own paths the floors time, for
	// Caps.Floors targets.
	FloorPaths() (FloorPaths, error)
	// Faults returns what the timeline acts through, for Caps.Faults
	// targets; nil otherwise.
	Faults() Faults
	// Failed delivers the error of a part of the target that stopped on
	// its own (a node whose pipeline failed): a run must not go on
	// measuring a cluster that stopped committing. Nil never delivers.
	Failed() <-chan error
	// Close stops everything Start started. It is safe to call twice.
	Close() error
}

// FloorPaths are the round trips a run's floors time, on a Caps.Floors
// target's own paths: a bare QUIC echo through node-1's server, and a bare
// produce→ack on a log of the floors' own on the run's broker. The run
// times them before the load (floors.quic_echo, produce_ack) and, sparsely,
// while the measured phase's load runs (quic_echo_loaded,
// produce_ack_loaded).
type FloorPaths struct {
	// Echo sends a payload through node-1's QUIC server and waits for it
	// back on the first connection to node-1 (the target owns it; a
	// failed echo that broke it starts a redial, so the loaded floors
	// find node-1 again after it restarts).
	Echo func(ctx context.Context, payload []byte) error
	// Log is a one-shard log of the floors' own on the run's broker,
	// reached as node-1 reaches it (in memory to an embedded broker in
	// this process, through netem when it impairs).
	Log ordering.Config
}

// Caps is what a Target can do.
type Caps struct {
	// Broker names what the nodes order through, for the report's
	// environment: "kfake", "kafka" or "external".
	Broker string
	// Protocols lists the client protocols the target's nodes can be
	// reached with.
	Protocols []scenarios.Client
	// Blocks: the target reports every node's committed blocks through
	// Hooks.OnBlock, so the checker counts commits from the nodes (and
	// times fail-over and catch-up from them). Without it commits are
	// counted from the clients' receipts.
	Blocks bool
	// Inspect: Nodes can be read at the end, so the checker compares
	// every node's roots and heights, looks every committed transaction up
	// in every node's index and checks balances. Without it roots are not
	// checked (roots_unchecked).
	Inspect bool
	// Genesis: the target starts its nodes with Hooks.Genesis, so
	// workloads whose accounts must exist from the start can run.
	Genesis bool
	// Floors: Floors measures the floors on the target's paths.
	Floors bool
	// Faults: Faults carries out timeline events on nodes.
	Faults bool
	// DiskFull: Faults can fail a node's store writes (`disk_full`): its
	// nodes run in this process, on a filesystem the run wraps.
	DiskFull bool
	// BrokerRestart: Faults can stop and start the broker (`kill: broker`):
	// an embedded one always, a given one through a control command.
	BrokerRestart bool
	// Network: the target emulates the scenario's network (impairments,
	// partitions).
	Network bool
	// Shards is the number of shards the target's nodes run, when the
	// target knows it better than the scenario (a cluster file's); 0 means
	// the scenario's cluster.shards.
	Shards int
	// ChainID is the chain the target's nodes take transactions for; the
	// run signs its transactions for it.
	ChainID uint32
}

// Hooks is what a run asks a Target to do for it.
type Hooks struct {
	// Genesis are the accounts the nodes start with (Caps.Genesis).
	Genesis []node.GenesisAccount
	// OnBlock is called for every block a node commits (Caps.Blocks).
	OnBlock func(nodeName string, ev node.BlockEvent)
	// OnIngress is called when a node takes in a transaction, to stamp
	// the ingress stage. A target may not call it.
	OnIngress func(id tx.ID, at time.Time)
	// Dir is a folder the target may keep its nodes' data in (the run's
	// report folder).
	Dir string
	// Printf prints a line of the run's progress. Never nil.
	Printf func(format string, args ...any)
	// Trace, if set, is the run's tracing, which the target's nodes join;
	// nil when the run traces nothing.
	Trace *TraceHooks
}

// NodeView is what the checker reads of one running node.
type NodeView interface {
	// Name is the node's name, node-i.
	Name() string
	// Tip is the node's committed position on shard.
	Tip(shard uint32) (Tip, error)
	// TxShard returns the shard whose committed block holds the
	// transaction, with ok false when the node's index has none.
	TxShard(id tx.ID) (shard uint32, ok bool, err error)
	// Balance returns the committed balance of the account key, with ok
	// false when it does not exist.
	Balance(key ed25519.PublicKey) (balance uint64, ok bool, err error)
	// Halted reports whether the node halted shard after a divergence.
	Halted(shard uint32) bool
}

// processTarget is a Target whose nodes are OS processes: a run samples
// each one's CPU and RSS (result.json's node_resources).
type processTarget interface {
	// nodePIDs returns, by node name, a function giving the node's
	// current process id (0 while it is not running).
	nodePIDs() map[string]func() int
}

// Tip is a node's committed position on a shard: the height, hash and
// state root of its last committed block, and the offset of the shard's
// transactions topic it resumes from (every record below it is in a block
// the node committed).
type Tip struct {
	Height      uint64
	Block, Root [32]byte
	NextOffset  int64
}

// Faults is how the timeline acts on a Target. Node names are node-i.
type Faults interface {
	// LeaderOf returns the running node that leads shard, waiting up to
	// wait for one.
	LeaderOf(ctx context.Context, shard uint32, wait time.Duration) (string, error)
	// Kill stops a node.
	Kill(name string) error
	// Restart starts a killed node again on its data and address, and
	// returns the heights its store held on each shard then.
	Restart(name string) (own map[uint32]uint64, err error)
	// StopBroker stops the run's broker (`kill: broker`); StartBroker
	// starts it again on its log and address. One implementation serves
	// every target that runs a cluster (clusterRun).
	StopBroker() error
	StartBroker() error
	// Pause stalls a node's ingress and processing; Resume ends it.
	Pause(name string) error
	Resume(name string) error
	// SetNetwork makes the emulated network impair as n says.
	SetNetwork(n scenarios.Network) error
	// Partition splits the endpoints into groups that cannot reach each
	// other, until the returned heal is called.
	Partition(groups ...[]string) (heal func())
	// Settle undoes every pause and partition still in force, so the
	// drain can finish. A killed node stays down.
	Settle()
	// FillDisk makes every write of a node's store fail with ENOSPC (full)
	// or succeed again.
	FillDisk(name string, full bool) error
	// APIAddr returns a node's HTTP API address (host:port), which a
	// timeline's flood opens its connections to.
	APIAddr(name string) (string, error)
	// Delivery names how an action on a node is delivered, for the report
	// ("SIGKILL", "SIGSTOP"); "" when it is a call in process.
	Delivery(op scenarios.Op) string
}

// closerFunc makes a func a Closer.
type closerFunc func()

func (f closerFunc) Close() error { f(); return nil }
