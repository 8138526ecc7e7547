package bench

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/rustorium/rustorium/loadgen"
	"github.com/rustorium/rustorium/node/ordering"
	"github.com/rustorium/rustorium/scenarios"
)

// embeddedMinSession is the embedded broker's minimum group session
// timeout: below the scenarios' default leadership session (1s), as
// scripts/kafka.sh configures its broker (500 ms).
const embeddedMinSession = 500 * time.Millisecond

// clusterRun is what a target that runs the scenario's cluster (InProcess,
// Processes) keeps of its run: the scenario, the run's context and hooks,
// the brokers and the topic prefix, its nodes' failures, and what to
// release, in acquisition order.
type clusterRun struct {
	sc         *scenarios.Scenario
	ctx        context.Context // the run's: restarted nodes live in it
	hooks      Hooks
	brokers    []string
	brokerKind string
	prefix     string                                // topic prefix of this run
	failc      chan error                            // a node failed
	closers    []io.Closer                           // in acquisition order; released in reverse
	conns      map[scenarios.Client][]loadgen.TxConn // per protocol a workload speaks, over the nodes round-robin
	quic       []*loadgen.Conn                       // the QUIC ones (the floors use the first)
}

// begin starts a run of sc: the broker (given brokers, the scenario's, or
// an embedded one, logged to logger) and the run's topic prefix.
func (r *clusterRun) begin(ctx context.Context, sc *scenarios.Scenario, h Hooks, given []string, logger *slog.Logger) error {
	if r.sc != nil {
		return errors.New("bench: a target started twice")
	}
	r.sc, r.ctx, r.hooks, r.failc = sc, ctx, h, make(chan error, 1)
	var closer io.Closer
	var err error
	if r.brokers, r.brokerKind, closer, err = startBroker(ctx, sc, given, logger); err != nil {
		return err
	}
	if closer != nil {
		r.closers = append(r.closers, closer)
	}
	r.prefix = topicPrefix(sc)
	return nil
}

// dialClients connects the clients of every protocol the scenario's
// workloads speak (QUIC always: the floors use it), clients of them in all,
// client i to node i mod nodes: over quic(i) (the node's name and dial),
// or to the API at the base URL and through the dialer api(i) returns.
// Routed transfers stay on one node, as client i does.
func (r *clusterRun) dialClients(ctx context.Context, clients, nodes int, quic func(i int) (string, loadgen.DialFunc), api func(i int) (string, dialFunc)) error {
	if clients <= 0 {
		clients = max(defaultClientConns, 2*nodes)
	}
	r.conns = map[scenarios.Client][]loadgen.TxConn{}
	for i := range clients {
		name, dial := quic(i % nodes)
		cl, err := loadgen.Dial(ctx, dial, loadgen.ConnOptions{})
		if err != nil {
			return fmt.Errorf("bench: client %d to %s: %w", i, name, err)
		}
		r.quic = append(r.quic, cl)
		r.closers = append(r.closers, cl)
		r.conns[scenarios.ClientQUIC] = append(r.conns[scenarios.ClientQUIC], cl)
	}
	for _, w := range r.sc.Workload {
		if r.conns[w.Client] != nil {
			continue
		}
		conns, err := dialAPIs(ctx, w.Client, clients, &r.closers, func(i int) (string, dialFunc) { return api(i % nodes) })
		if err != nil {
			return err
		}
		r.conns[w.Client] = conns
	}
	return nil
}

// defaultClientConns is the number of client connections of each
// protocol without a setting, at least two per node.
const defaultClientConns = 4

// Conns implements Target.
func (r *clusterRun) Conns(protocol scenarios.Client) ([]loadgen.TxConn, error) {
	if conns := r.conns[protocol]; conns != nil {
		return conns, nil
	}
	return nil, fmt.Errorf("bench: no %s clients (no workload of the scenario speaks it)", protocol)
}

// release closes everything acquired, in reverse order.
func (r *clusterRun) release() error {
	for i := len(r.closers) - 1; i >= 0; i-- {
		r.closers[i].Close()
	}
	r.closers = nil
	return nil
}

// startBroker returns the brokers a run's nodes order through: given ones
// (a real cluster: kind "kafka", no closer), the scenario's, or else an
// embedded broker it starts (kind "kfake"; closer stops it).
func startBroker(ctx context.Context, sc *scenarios.Scenario, given []string, logger *slog.Logger) (addrs []string, kind string, closer io.Closer, err error) {
	if len(given) == 0 {
		given = sc.Cluster.Broker.Addrs
	}
	if len(given) > 0 {
		return given, "kafka", nil, nil
	}
	emb, err := ordering.StartEmbedded(ctx, ordering.EmbeddedOptions{Logger: logger, GroupMinSessionTimeout: min(embeddedMinSession, sc.Cluster.Leadership.SessionTimeout.Std())})
	if err != nil {
		return nil, "", nil, err
	}
	return emb.Addrs(), "kfake", closerFunc(emb.Close), nil
}

// clusterCaps are the Caps of a target that runs the scenario's cluster
// (in process or as processes): everything. Its broker kind is the one it
// started (started, once known), else what given brokers make it.
func clusterCaps(given []string, started string) Caps {
	kind := "kfake"
	if len(given) > 0 {
		kind = "kafka"
	}
	if started != "" {
		kind = started
	}
	return Caps{
		Broker:    kind,
		Protocols: []scenarios.Client{scenarios.ClientQUIC, scenarios.ClientREST, scenarios.ClientWS, scenarios.ClientGraphQL},
		Blocks:    true, Inspect: true, Genesis: true, Floors: true, Faults: true, Network: true,
		ChainID: chainID,
	}
}

// topicPrefix is a run's own topic prefix: it keeps the run's topics apart
// from any other's on a shared broker.
func topicPrefix(sc *scenarios.Scenario) string {
	runID := fmt.Sprintf("%x", sha256.Sum256(fmt.Appendf(nil, "%s/%d/%d", sc.Name, sc.Seed, time.Now().UnixNano())))[:10]
	return "rustorium-" + runID + "-"
}
