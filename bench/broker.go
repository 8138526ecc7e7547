package bench

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rustorium/rustorium/internal/retry"
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
	broker     *brokerRun
	prefix     string                                // topic prefix of this run
	failc      chan error                            // a node failed
	closers    []io.Closer                           // in acquisition order; released in reverse
	conns      map[scenarios.Client][]loadgen.TxConn // per protocol a workload speaks, over the nodes round-robin
	quic       []*loadgen.Conn                       // the QUIC ones (the floors use the first)
	trimmer    *logTrimmer                           // the embedded broker's (nil for given brokers); read after release
}

// begin starts a run of sc: the broker (given brokers, the scenario's, or
// an embedded one, logged to logger) and the run's topic prefix.
func (r *clusterRun) begin(ctx context.Context, sc *scenarios.Scenario, h Hooks, given []string, ctl string, logger *slog.Logger) error {
	if r.sc != nil {
		return errors.New("bench: a target started twice")
	}
	r.sc, r.ctx, r.hooks, r.failc = sc, ctx, h, make(chan error, 1)
	b, err := startBroker(ctx, sc, given, ctl, logger)
	if err != nil {
		return err
	}
	r.broker, r.brokers, r.brokerKind = b, b.addrs, b.kind
	r.closers = append(r.closers, b)
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

// brokerRun is a run's broker: given (real) brokers, or an embedded one it
// started. A timeline's `kill: broker` stops it and its restart_after
// starts it again: the embedded one on its port and its log (kept in a
// folder of its own when the timeline restarts it); given ones through
// ctl, a command run as `CTL stop` and `CTL resume`.
type brokerRun struct {
	addrs []string
	kind  string // "kfake" or "kafka"
	ctl   string

	mu   sync.Mutex
	emb  *ordering.Embedded // nil while stopped, and for given brokers
	opts ordering.EmbeddedOptions
	down bool
}

// StopBroker implements Faults for the targets that embed clusterRun.
func (r *clusterRun) StopBroker() error { return r.broker.stop(r.ctx) }

// StartBroker implements Faults for the targets that embed clusterRun.
func (r *clusterRun) StartBroker() error { return r.broker.start(r.ctx) }

// brokerCtlTimeout bounds one run of a broker control command.
const brokerCtlTimeout = 2 * time.Minute

// startBroker returns the brokers a run's nodes order through: given ones
// (a real cluster: kind "kafka"), the scenario's, or else an embedded broker
// it starts (kind "kfake"). Close stops what it started.
func startBroker(ctx context.Context, sc *scenarios.Scenario, given []string, ctl string, logger *slog.Logger) (*brokerRun, error) {
	if len(given) == 0 {
		given = sc.Cluster.Broker.Addrs
	}
	if len(given) > 0 {
		return &brokerRun{addrs: given, kind: "kafka", ctl: ctl}, nil
	}
	b := &brokerRun{kind: "kfake", opts: ordering.EmbeddedOptions{Logger: logger, GroupMinSessionTimeout: min(embeddedMinSession, sc.Cluster.Leadership.SessionTimeout.Std())}}
	// The log lives in a folder of its own, removed with the broker: on
	// disk (the page cache), not in the run's heap, where kfake keeps a
	// log without one (about 450 B per put, growing with the run); a
	// timeline's restart reloads it from there.
	dir, err := os.MkdirTemp("", "rustorium-broker-")
	if err != nil {
		return nil, err
	}
	b.opts.DataDir = dir
	emb, err := ordering.StartEmbedded(ctx, b.opts)
	if err != nil {
		b.Close()
		return nil, err
	}
	b.emb, b.addrs = emb, emb.Addrs()
	for _, a := range b.addrs { // a restart listens where the nodes look
		_, port, _ := net.SplitHostPort(a)
		p, _ := strconv.Atoi(port)
		b.opts.Ports = append(b.opts.Ports, p)
	}
	return b, nil
}

// dial connects to a broker of the run (for ordering.Config.Dialer): to
// the embedded one in memory (ordering.Embedded.Dial), to given ones and to
// the embedded one while it is stopped over TCP, as any client would.
func (b *brokerRun) dial(ctx context.Context, network, address string) (net.Conn, error) {
	b.mu.Lock()
	emb := b.emb
	b.mu.Unlock()
	if emb != nil {
		return emb.Dial(ctx, network, address)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, address)
}

// stopped reports whether a timeline's kill: broker has the broker down.
func (b *brokerRun) stopped() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.down
}

// restartable reports whether stop and start can act on the broker.
func (b *brokerRun) restartable() bool { return b.kind == "kfake" || b.ctl != "" }

// stop stops the broker (kill: broker).
func (b *brokerRun) stop(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.down {
		return errors.New("the broker is not running")
	}
	if b.kind == "kfake" {
		b.emb.Close()
		b.emb = nil
	} else if err := b.run(ctx, "stop"); err != nil {
		// Stopped or not, it is in doubt: the restart (or Close) resumes
		// it, which a running broker takes as a no-op.
		b.down = true
		return err
	}
	b.down = true
	return nil
}

// start starts the stopped broker again, on its address and its log.
func (b *brokerRun) start(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.down {
		return errors.New("the broker is running")
	}
	if b.kind == "kfake" {
		err := retry.Do(ctx, rebind, rebindAttempts, func(ctx context.Context) (err error) {
			b.emb, err = ordering.StartEmbedded(ctx, b.opts)
			return err
		})
		if err != nil {
			return err
		}
	} else if err := b.run(ctx, "resume"); err != nil {
		return err
	}
	b.down = false
	return nil
}

// run runs the control command with op.
func (b *brokerRun) run(ctx context.Context, op string) error {
	if b.ctl == "" {
		return errors.New("a given broker is restarted through a control command (--broker-ctl), and none was given")
	}
	// The command runs to its end even when the run stops meanwhile (the
	// timeline ends): a broker half stopped is worse than one stopped.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), brokerCtlTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "sh", "-c", b.ctl+" "+op).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", b.ctl, op, err, strings.TrimSpace(lastLines(string(out), 5)))
	}
	return nil
}

// Close stops an embedded broker and removes its log folder; a given broker
// a timeline left stopped is resumed, to leave it as the run found it.
// Safe to call twice.
func (b *brokerRun) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.emb != nil {
		b.emb.Close()
		b.emb = nil
	}
	if b.opts.DataDir != "" {
		os.RemoveAll(b.opts.DataDir)
	}
	if b.kind == "kafka" && b.down {
		b.down = b.run(context.Background(), "resume") != nil
	}
	return nil
}

// lastLines is the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// clusterCaps are the Caps of a target that runs the scenario's cluster
// (in process or as processes): everything. Its broker kind is the one it
// started (started, once known), else what given brokers make it.
func clusterCaps(given []string, started string, ctl string) Caps {
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
		BrokerRestart: kind == "kfake" || ctl != "",
		ChainID:       chainID,
	}
}

// topicPrefix is a run's own topic prefix: it keeps the run's topics apart
// from any other's on a shared broker.
func topicPrefix(sc *scenarios.Scenario) string {
	runID := fmt.Sprintf("%x", sha256.Sum256(fmt.Appendf(nil, "%s/%d/%d", sc.Name, sc.Seed, time.Now().UnixNano())))[:10]
	return "rustorium-" + runID + "-"
}
