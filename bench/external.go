package bench

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/rustorium/rustorium/loadgen"
	"github.com/rustorium/rustorium/node/p2p"
	"github.com/rustorium/rustorium/reports"
	"github.com/rustorium/rustorium/scenarios"
)

// External is the Target of a node that the harness does not run
// (rustorium loadgen): it is reached over QUIC at Addr and over its HTTP
// APIs at API. With no view into the node, the checker works from the
// receipts (a transaction is committed when its client got a committed
// receipt, duplicated when it got two) and leaves roots unchecked; there
// are no floors, no timeline and no network emulation, and no genesis of
// the run's accounts (puts, gets of put keys and queries of absent
// accounts only).
type External struct {
	// Addr is the node's QUIC address, host:port. Required when a
	// workload speaks QUIC.
	Addr string
	// ServerKey pins the node's identity. Nil accepts any node.
	ServerKey ed25519.PublicKey
	// API is the base URL of the node's HTTP APIs (http://host:port, as
	// rustorium node --api serves them). Required when a workload speaks
	// REST, WebSocket or GraphQL.
	API string
	// ClientConns is the number of client connections of each protocol.
	// Zero means 4.
	ClientConns int

	conns   map[scenarios.Client][]loadgen.TxConn
	closers []io.Closer
}

// Caps implements Target.
func (e *External) Caps() Caps {
	c := Caps{Broker: "external"}
	if e.Addr != "" {
		c.Protocols = append(c.Protocols, scenarios.ClientQUIC)
	}
	if e.API != "" {
		c.Protocols = append(c.Protocols, scenarios.ClientREST, scenarios.ClientWS, scenarios.ClientGraphQL)
	}
	return c
}

// Start implements Target: it connects the clients of every protocol the
// scenario's workloads speak.
func (e *External) Start(ctx context.Context, sc *scenarios.Scenario, h Hooks) error {
	n := e.ClientConns
	if n <= 0 {
		n = defaultClientConns
	}
	e.conns = map[scenarios.Client][]loadgen.TxConn{}
	for _, w := range sc.Workload {
		if e.conns[w.Client] != nil {
			continue
		}
		var err error
		if w.Client == scenarios.ClientQUIC {
			h.Printf("connecting %d QUIC clients to %s", n, e.Addr)
			err = e.dialQUIC(ctx, n)
		} else {
			h.Printf("%d %s clients of %s", n, w.Client, e.API)
			base := strings.TrimSuffix(e.API, "/")
			e.conns[w.Client], err = dialAPIs(ctx, w.Client, n, &e.closers, func(int) (string, dialFunc) { return base, nil })
		}
		if err != nil {
			return err
		}
	}
	h.Printf("running against %s", strings.Trim(e.Addr+" "+e.API, " "))
	return nil
}

func (e *External) dialQUIC(ctx context.Context, n int) error {
	dial := func(ctx context.Context) (*p2p.Client, func(), error) {
		cl, err := p2p.Dial(ctx, e.Addr, p2p.ClientConfig{ServerKey: e.ServerKey})
		return cl, nil, err
	}
	for range n {
		cl, err := loadgen.Dial(ctx, dial, loadgen.ConnOptions{})
		if err != nil {
			return err
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
	return nil, fmt.Errorf("bench: no %s clients of the external node", protocol)
}

// Nodes implements Target: an external node cannot be read.
func (e *External) Nodes() []NodeView { return nil }

// Floors implements Target: an external node offers none.
func (e *External) Floors(context.Context, *scenarios.Scenario) (reports.Floors, error) {
	return reports.Floors{}, errors.New("bench: an external node has no floors")
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
