package bench

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/rustorium/rustorium/loadgen"
	"github.com/rustorium/rustorium/node/p2p"
	"github.com/rustorium/rustorium/reports"
	"github.com/rustorium/rustorium/scenarios"
)

// External names a node that the harness does not run: rustorium loadgen
// drives it over QUIC.
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
}

// RunExternal drives a scenario's workloads against a running node and
// writes the report like Run. With no view into the node, the checker
// works from the receipts: a transaction is committed when its client got
// a committed receipt, duplicated when it got two; the floors are skipped,
// and so are the cluster, network and timeline sections of the scenario
// (it refuses scenarios that need them).
func RunExternal(ctx context.Context, sc *scenarios.Scenario, target External, opts Options) (*reports.Result, error) {
	var errs []error
	if len(sc.Timeline) > 0 || usesNetwork(sc) {
		errs = append(errs, errors.New("timeline events and network emulation need the harness's own cluster"))
	}
	for i, w := range sc.Workload {
		if w.Kind == scenarios.KindTransfer {
			errs = append(errs, fmt.Errorf("workload[%d] %q: kind %s (an external node has no genesis from this run: puts, gets of put keys and queries of absent accounts only)", i, w.Name, w.Kind))
		}
		if w.Mode() == scenarios.ModeMaxRate {
			errs = append(errs, fmt.Errorf("workload[%d] %q: max-rate search", i, w.Name))
		}
		if w.Client == scenarios.ClientQUIC && target.Addr == "" {
			errs = append(errs, fmt.Errorf("workload[%d] %q: client quic needs the node's QUIC address", i, w.Name))
		}
		if w.Client != scenarios.ClientQUIC && target.API == "" {
			errs = append(errs, fmt.Errorf("workload[%d] %q: client %s needs the node's API address", i, w.Name, w.Client))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	opts.ensureDefaults()
	p := newProgress(opts.Progress)
	if err := os.MkdirAll(opts.Out, 0o755); err != nil {
		return nil, err
	}
	c := &cluster{sc: sc, chk: newChecker(), ingress: &ingressIndex{}, brokerKind: "external"}
	c.chk.fromReceipts = true
	defer c.Close()
	if opts.ClientConns <= 0 {
		opts.ClientConns = defaultClientConns
	}
	for _, w := range sc.Workload {
		switch {
		case w.Client == scenarios.ClientQUIC && c.clients == nil:
			p.printf("connecting %d QUIC clients to %s", opts.ClientConns, target.Addr)
			c.clients = make([]*loadgen.Conn, opts.ClientConns)
			dial := func(ctx context.Context) (*p2p.Client, func(), error) {
				cl, err := p2p.Dial(ctx, target.Addr, p2p.ClientConfig{ServerKey: target.ServerKey})
				return cl, nil, err
			}
			for i := range c.clients {
				cl, err := loadgen.Dial(ctx, dial, loadgen.ConnOptions{})
				if err != nil {
					return nil, err
				}
				c.clients[i] = cl
				c.closers = append(c.closers, cl)
			}
		case w.Client != scenarios.ClientQUIC && c.apis[w.Client] == nil:
			p.printf("%d %s clients of %s", opts.ClientConns, w.Client, target.API)
			base := strings.TrimSuffix(target.API, "/")
			if err := c.dialAPIs(ctx, w.Client, opts.ClientConns, func(int) (string, dialFunc) { return base, nil }); err != nil {
				return nil, err
			}
		}
	}

	warmup, measure := sc.Warmup.Std(), sc.Duration.Std()
	loads, err := prepareAll(ctx, sc, nil, warmup+measure, p)
	if err != nil {
		return nil, err
	}
	start := time.Now().Add(50 * time.Millisecond)
	rec := reports.NewRecorder(reports.RecorderOptions{Start: start.Add(warmup)})
	p.printf("running against %s: %v warmup, %v measured", strings.Trim(target.Addr+" "+target.API, " "), warmup, measure)
	stopProgress := p.live(ctx, rec, c.chk, start, warmup, measure)
	runLoads(ctx, c, loads, rec, start, warmup+measure)
	stopProgress()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	snap := rec.Snapshot()
	res := reports.NewResult(snap, measure)
	label(res, loads)
	notes := []string{"external node: commits counted from receipts; the node's store and roots were not inspected; floors skipped"}
	return c.finish(ctx, res, snap, reports.Floors{}, notes, nil, opts, p)
}
