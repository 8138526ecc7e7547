package bench

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/rustorium/rustorium/cluster"
	"github.com/rustorium/rustorium/loadgen"
	"github.com/rustorium/rustorium/node/p2p"
	"github.com/rustorium/rustorium/scenarios"
)

// External is the Target of nodes that the harness does not run
// (rustorium loadgen): one node, reached over QUIC at Addr and over its
// HTTP APIs at API, or every node of a Cluster file. Commits are counted
// from the clients' receipts; there are no floors, no timeline and no
// network emulation.
//
// With one node the harness has no view into it: roots are not checked
// and there is no genesis of the run's accounts (puts, gets of put keys
// and queries of absent accounts only). With a cluster file whose nodes
// name their APIs, the end-of-run checks read every node: roots and
// heights equal, every accepted transaction in every node's index, and —
// when the file's genesis holds the scenario's accounts (a cluster file
// the harness wrote for the same scenario) — balances conserved, so
// transfers run too.
type External struct {
	// Addr is the node's QUIC address, host:port. Required when a
	// workload speaks QUIC and Cluster is nil.
	Addr string
	// ServerKey pins the node's identity. Nil accepts any node.
	ServerKey ed25519.PublicKey
	// API is the base URL of the node's HTTP APIs (http://host:port, as
	// rustorium node --api serves them). Required when a workload speaks
	// REST, WebSocket or GraphQL and Cluster is nil.
	API string
	// Cluster, if set, is the cluster file of the nodes to drive (instead
	// of Addr, ServerKey and API): every node, each pinned to its key,
	// reached at its addr and, when given, its api.
	Cluster *cluster.File
	// ClientConns is the number of client connections of each protocol,
	// round-robin over the nodes. Zero means 4, or two per node if that is
	// more.
	ClientConns int

	conns   map[scenarios.Client][]loadgen.TxConn
	closers []io.Closer
}

// extNode is one node an External drives.
type extNode struct {
	name, addr, api string // api: a base URL, "" without one
	key             ed25519.PublicKey
}

func (e *External) nodes() []extNode {
	if e.Cluster == nil {
		return []extNode{{name: "node", addr: e.Addr, api: strings.TrimSuffix(e.API, "/"), key: e.ServerKey}}
	}
	out := make([]extNode, len(e.Cluster.Nodes))
	for i, n := range e.Cluster.Nodes {
		out[i] = extNode{name: n.ID, addr: n.Addr, api: n.APIURL(), key: e.Cluster.Keys()[i]}
	}
	return out
}

// Caps implements Target.
func (e *External) Caps() Caps {
	c := Caps{Broker: "external", ChainID: chainID}
	nodes := e.nodes()
	quic, apis := true, true
	for _, n := range nodes {
		quic = quic && n.addr != ""
		apis = apis && n.api != ""
	}
	if quic {
		c.Protocols = append(c.Protocols, scenarios.ClientQUIC)
	}
	if apis {
		c.Protocols = append(c.Protocols, scenarios.ClientREST, scenarios.ClientWS, scenarios.ClientGraphQL)
	}
	c.Inspect = e.Cluster != nil && apis
	if e.Cluster != nil {
		c.Shards, c.ChainID = e.Cluster.Shards, e.Cluster.ChainID
	}
	c.Genesis = c.Inspect && len(e.Cluster.GenesisAccounts()) > 0
	return c
}

// Start implements Target: it checks that the cluster's genesis holds the
// run's accounts, and connects the clients of every protocol the
// scenario's workloads speak, round-robin over the nodes.
func (e *External) Start(ctx context.Context, sc *scenarios.Scenario, h Hooks) error {
	if err := e.checkGenesis(h); err != nil {
		return err
	}
	nodes := e.nodes()
	n := e.ClientConns
	if n <= 0 {
		n = max(defaultClientConns, 2*len(nodes))
	}
	e.conns = map[scenarios.Client][]loadgen.TxConn{}
	for _, w := range sc.Workload {
		if e.conns[w.Client] != nil {
			continue
		}
		h.Printf("%d %s clients of %d node(s)", n, w.Client, len(nodes))
		var err error
		if w.Client == scenarios.ClientQUIC {
			err = e.dialQUIC(ctx, n, nodes)
		} else {
			e.conns[w.Client], err = dialAPIs(ctx, w.Client, n, &e.closers, func(i int) (string, dialFunc) { return nodes[i%len(nodes)].api, nil })
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// checkGenesis refuses a cluster whose genesis lacks an account the run
// spends from: its transfers could only fail.
func (e *External) checkGenesis(h Hooks) error {
	if len(h.Genesis) == 0 {
		return nil
	}
	have := map[string]uint64{}
	if e.Cluster != nil {
		for _, g := range e.Cluster.GenesisAccounts() {
			have[string(g.Key)] = g.Balance
		}
	}
	for _, g := range h.Genesis {
		if b, ok := have[string(g.Key)]; !ok || b != g.Balance {
			return fmt.Errorf("%w: the cluster's genesis does not hold the scenario's account %x with balance %d (the seed derives the accounts: write the cluster file for this scenario)", ErrUnsupported, []byte(g.Key[:8]), g.Balance)
		}
	}
	return nil
}

func (e *External) dialQUIC(ctx context.Context, n int, nodes []extNode) error {
	for i := range n {
		nd := nodes[i%len(nodes)]
		dial := func(ctx context.Context) (*p2p.Client, func(), error) {
			cl, err := p2p.Dial(ctx, nd.addr, p2p.ClientConfig{ServerKey: nd.key})
			return cl, nil, err
		}
		cl, err := loadgen.Dial(ctx, dial, loadgen.ConnOptions{})
		if err != nil {
			return fmt.Errorf("bench: client %d to %s (%s): %w", i, nd.name, nd.addr, err)
		}
		e.closers = append(e.closers, cl)
		e.conns[scenarios.ClientQUIC] = append(e.conns[scenarios.ClientQUIC], cl)
	}
	return nil
}

// Conns implements Target.
func (e *External) Conns(protocol scenarios.Client) ([]loadgen.TxConn, error) {
	if conns := e.conns[protocol]; conns != nil {
		return conns, nil
	}
	return nil, fmt.Errorf("bench: no %s clients of the external node(s)", protocol)
}

// Nodes implements Target: a cluster's nodes read over their APIs.
func (e *External) Nodes() []NodeView {
	if !e.Caps().Inspect {
		return nil
	}
	var out []NodeView
	for _, n := range e.nodes() {
		out = append(out, newAPINode(n.name, n.api))
	}
	return out
}

// FloorPaths implements Target: external nodes offer none.
func (e *External) FloorPaths() (FloorPaths, error) {
	return FloorPaths{}, errors.New("bench: external nodes have no floors")
}

// Faults implements Target: none.
func (e *External) Faults() Faults { return nil }

// Failed implements Target: an external node's failure shows as errors.
func (e *External) Failed() <-chan error { return nil }

// Close implements Target.
func (e *External) Close() error {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i].Close()
	}
	e.closers = nil
	return nil
}
