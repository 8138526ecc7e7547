package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/rustorium/rustorium/bench"
	"github.com/rustorium/rustorium/calib"
	"github.com/rustorium/rustorium/node/tracing"
	"github.com/rustorium/rustorium/reports"
	"github.com/rustorium/rustorium/scenarios"
)

// apiScenario is calibrate's API run: one node on the embedded broker with
// a client of each HTTP API protocol (REST, WebSocket, GraphQL) sending
// side by side, so that each protocol's ways between its clients and the
// node are measured in a loaded process (calib.APICost.Loaded). One at a
// time on an idle machine (ops.api's round trips) the protocols' ways
// differ by their own work: on session 35's host a WebSocket request took
// half a REST one's. In a loaded process a way is mostly goroutine
// hand-offs that wait for a P, and the real REST and WebSocket ways of the
// api validation were alike (about 90 µs each for the request); the model,
// stretching the idle ways, sent the WebSocket request ahead by 20–40 µs
// every time, onto a leader round of its own.
const apiScenario = `
name: calibrate-api
seed: 1
warmup: 2s
duration: %ds
drain: 5s
cluster: {nodes: 1, shards: 4}
workload:
  - {name: rest, kind: put, accounts: 100000, rate: %[2]d/s, client: rest}
  - {name: ws, kind: put, accounts: 100000, rate: %[2]d/s, client: ws}
  - {name: graphql, kind: put, accounts: 100000, rate: %[2]d/s, client: graphql}
report: {formats: [json]}
`

// The API run: 200 puts/s over each protocol (600/s in all; the api
// validation sends 300/s each) for 10 s, with one transaction in ten
// traced (about 200 of each protocol).
const (
	apiRunRate    = 200
	apiRunSeconds = 10
	apiRunSample  = 0.1
	// apiMinTraces is the fewest traced transactions of a protocol whose
	// ways the run takes medians from.
	apiMinTraces = 50
)

// addAPIWays runs apiScenario and writes each protocol's loaded ways into
// c's ops.api entries, noting a run that shared the machine in c.Busy.
func addAPIWays(cmd *cobra.Command, c *calib.Calibration, dir string) error {
	t0 := time.Now()
	ways, shared, err := measureAPIWays(cmd.Context(), dir, c.Machine.Cores, cmd.ErrOrStderr())
	if err != nil {
		return fmt.Errorf("calibrate: API run: %w", err)
	}
	for i := range c.Ops.API {
		if l, ok := ways[c.Ops.API[i].Protocol]; ok {
			c.Ops.API[i].Loaded = &l
		}
	}
	if shared != "" {
		c.Busy = append(c.Busy, fmt.Sprintf("the API run at %d/s a protocol: %s", apiRunRate, shared))
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "calibrate: %-12s %v\n", "API ways", time.Since(t0).Round(time.Millisecond))
	return nil
}

// measureAPIWays runs apiScenario for real and returns each protocol's
// ways in it (apiWays), and why the run was not alone on the machine
// ("": it was).
func measureAPIWays(ctx context.Context, dir string, cores int, progress io.Writer) (map[string]calib.APILoaded, string, error) {
	sc, err := apiScenarioAt(apiRunRate, apiRunSeconds)
	if err != nil {
		return nil, "", err
	}
	tmp, err := os.MkdirTemp(dir, "rustorium-calibrate-")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(tmp)
	res, err := bench.Run(ctx, sc, bench.Options{Out: tmp, SkipFloors: true, TraceSample: apiRunSample})
	if err != nil {
		return nil, "", err
	}
	if res.Resources == nil || res.Resources.CPUPercentMean <= 0 {
		return nil, "", errors.New("the run measured no CPU")
	}
	reqs, err := tracing.ReadFile(filepath.Join(tmp, tracing.TracesFile))
	if err != nil {
		return nil, "", err
	}
	busy := hostBusy(res.Resources, cores)
	ways := apiWays(sc, reqs, busy)
	for _, w := range sc.Workload {
		l, ok := ways[string(w.Client)]
		if !ok {
			return nil, "", fmt.Errorf("the %s client's transactions: fewer than %d traced whole", w.Client, apiMinTraces)
		}
		if progress != nil {
			fmt.Fprintf(progress, "calibrate: API run at %d/s a protocol: %s request %.0f µs, accepted answer %.0f µs, receipt %.0f µs; %.0f%% of the cores busy\n",
				apiRunRate, w.Client, l.RequestWayNs/1000, l.AcceptedWayNs/1000, l.ReceiptWayNs/1000, busy*100)
		}
	}
	shared := res.Resources.Busy()
	if shared != "" && progress != nil {
		fmt.Fprintf(progress, "calibrate: warning: the API run shared the machine: %s\n", shared)
	}
	return ways, shared, nil
}

// apiScenarioAt is apiScenario at rate a protocol for seconds measured.
func apiScenarioAt(rate, seconds int) (*scenarios.Scenario, error) {
	return calibScenario("calibrate-api", apiScenario, seconds, rate)
}

// apiWays is each HTTP API protocol's ways (by its scenario name: rest, ws,
// graphql) in a run's traces, at the run's load busy: the medians over its
// workloads' traced transactions that committed, each taken from the
// transaction's own spans — the request from client.send's start to
// node.ingress's, the accepted answer from node.produce's end to
// client.send's (none for GraphQL, answered once), the receipt from
// replica.commit's end to client.commit_wait's. A protocol with fewer than
// apiMinTraces such transactions is left out.
func apiWays(sc *scenarios.Scenario, reqs []tracing.Request, busy float64) map[string]calib.APILoaded {
	protocol := map[string]string{}
	for _, w := range sc.Workload {
		if w.Client != "" && w.Client != scenarios.ClientQUIC {
			protocol[w.Name] = string(w.Client)
		}
	}
	type legs struct{ request, accepted, receipt []float64 }
	by := map[string]*legs{}
	for i := range reqs {
		spans := map[tracing.SpanName]tracing.Span{}
		var workload string
		for _, s := range reqs[i].Flatten() {
			name := tracing.SpanName(s.Name)
			if _, seen := spans[name]; seen {
				continue // the first copy (one node here)
			}
			spans[name] = s.Span
			if name == tracing.SpanTx {
				if v, ok := s.Attr(tracing.AttrWorkload); ok {
					workload = v.String()
				}
			}
		}
		p, ok := protocol[workload]
		if !ok {
			continue
		}
		send, ok1 := spans[tracing.SpanClientSend]
		ingress, ok2 := spans[tracing.SpanIngress]
		commit, ok3 := spans[tracing.SpanCommit]
		wait, ok4 := spans[tracing.SpanClientCommit]
		if !ok1 || !ok2 || !ok3 || !ok4 {
			continue // not committed, or a span missing
		}
		l := by[p]
		if l == nil {
			l = &legs{}
			by[p] = l
		}
		l.request = append(l.request, float64(ingress.Start()-send.Start()))
		l.receipt = append(l.receipt, float64(wait.End()-commit.End()))
		if produce, ok := spans[tracing.SpanProduce]; ok && p != string(scenarios.ClientGraphQL) {
			l.accepted = append(l.accepted, float64(send.End()-produce.End()))
		}
	}
	out := map[string]calib.APILoaded{}
	for p, l := range by {
		if len(l.request) < apiMinTraces {
			continue
		}
		w := calib.APILoaded{HostBusy: busy, RequestWayNs: math.Round(reports.Median(l.request)), ReceiptWayNs: math.Round(reports.Median(l.receipt))}
		if len(l.accepted) >= apiMinTraces {
			w.AcceptedWayNs = max(math.Round(reports.Median(l.accepted)), 0)
		}
		if w.RequestWayNs > 0 && w.ReceiptWayNs > 0 && busy > 0 {
			out[p] = w
		}
	}
	return out
}
