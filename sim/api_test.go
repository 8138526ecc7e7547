package sim

import (
	"context"
	"strings"
	"testing"

	"github.com/rustorium/rustorium/calib"
	"github.com/rustorium/rustorium/reports"
)

// apiClients runs the same puts and queries over every client protocol.
const apiClients = `
name: api
seed: 5
warmup: 500ms
duration: 3s
drain: 2s
cluster: {nodes: 1, shards: 2, cores_per_node: 4}
workload:
  - {name: quic, kind: put, rate: 200/s, accounts: 1000}
  - {name: rest, kind: put, rate: 200/s, accounts: 1000, client: rest}
  - {name: ws, kind: put, rate: 200/s, accounts: 1000, client: ws}
  - {name: graphql, kind: put, rate: 200/s, accounts: 1000, client: graphql}
  - {name: rest-queries, kind: query, rate: 100/s, client: rest}
  - {name: graphql-gets, kind: get, rate: 100/s, accounts: 1000, client: graphql}
`

// TestAPIClientsAreSimulated: workloads over REST, WebSocket and GraphQL
// are simulated with their calibrated costs: a protocol whose round trip
// is 2 ms longer than QUIC's commits that much later (every message of it
// pays half of it), its requests show as the node's "api" work, GraphQL's
// submissions have no accepted stage (answered once, at the commit) and
// its gets go through REST. A calibration without the API figures
// estimates them from QUIC's, and the result says so.
func TestAPIClientsAreSimulated(t *testing.T) {
	ref := reference(t)
	c := *ref
	q := ref.Ops.QUICRoundTrip.P50Ns
	c.Ops.Ed25519VerifyNs = ref.Ops.Ed25519VerifyNs
	c.Ops.API = []calib.APICost{
		{Protocol: "rest", RoundTrip: calib.Latency{P50Ns: q + 2e6 + c.Ops.Ed25519VerifyNs, P99Ns: 1e7, MeanNs: 3e6}, RequestNs: 200_000},
		{Protocol: "ws", RoundTrip: calib.Latency{P50Ns: q + c.Ops.Ed25519VerifyNs, P99Ns: 1e7, MeanNs: 3e6}, RequestNs: 30_000},
		{Protocol: "graphql", RoundTrip: calib.Latency{P50Ns: q + 4e6 + c.Ops.Ed25519VerifyNs, P99Ns: 1e7, MeanNs: 3e6}, RequestNs: 400_000},
	}
	run := func(c *calib.Calibration) *reports.Result {
		o, err := Run(context.Background(), load(t, apiClients), Options{Calib: c})
		if err != nil {
			t.Fatal(err)
		}
		return o.Result
	}
	r := run(&c)
	p50 := map[string]int64{}
	for _, name := range []string{"quic", "rest", "ws", "graphql"} {
		w := r.Workloads[name]
		st := w.Stages["committed"]
		if st == nil || st.Count != w.Sent || w.Errors != 0 {
			t.Fatalf("%s: sent %d, errors %d, committed %+v", name, w.Sent, w.Errors, st)
		}
		p50[name] = st.Corrected.P50
		if _, ok := w.Stages["accepted"]; ok == (name == "graphql") {
			t.Errorf("%s: accepted stage %v, want one unless graphql", name, w.Stages["accepted"])
		}
	}
	// REST's commit: its request's half way in and the receipt's half way
	// out, 1 ms more each, and its request's CPU; GraphQL's 2 ms each;
	// WebSocket's as QUIC's. (The halves stretch with the node's load ρ,
	// by 1/(1 − ρ).)
	stream := int64(ref.Ops.QUICStreamNs / 1e3)
	stretch := 1 / (1 - r.Simulation.Utilisation["node-1"]["total"])
	for name, extra := range map[string]int64{"rest": 2000 + 200, "graphql": 4000 + 400, "ws": 30} {
		if d := p50[name] - p50["quic"]; d < extra-stream-300 || float64(d) > float64(extra)*stretch*1.1+500 {
			t.Errorf("%s: committed p50 %d µs against QUIC's %d µs, want about %d µs more (%.0f stretched)", name, p50[name], p50["quic"], extra, float64(extra)*stretch)
		}
	}
	for _, name := range []string{"rest-queries", "graphql-gets"} {
		if st := r.Workloads[name].Stages["read"]; st == nil || st.Count != r.Workloads[name].Sent {
			t.Fatalf("%s: read %+v of %d sent", name, st, r.Workloads[name].Sent)
		}
	}
	// GraphQL gets go through REST: 1 ms more each way than QUIC would be.
	if g := r.Workloads["graphql-gets"].Stages["read"].Corrected.P50; g < 2000 || float64(g) > 3500*stretch {
		t.Errorf("graphql gets: read p50 %d µs, want REST's 2 ms more than QUIC's", g)
	}
	// --against shows no accepted rows for GraphQL, which has none.
	acc := map[string]int{}
	for _, row := range Compare(r, r) {
		if strings.HasPrefix(row.Metric, "accepted") {
			acc[row.Workload]++
		}
	}
	if acc["graphql"] != 0 || acc["rest"] != 2 {
		t.Errorf("accepted rows by workload %v, want none for graphql, two for rest", acc)
	}
	if u := r.Simulation.Utilisation["node-1"]["api"]; !(u > 0) {
		t.Errorf("no api work in node-1's utilisation: %v", r.Simulation.Utilisation["node-1"])
	}
	for _, n := range r.Checker.Notes {
		if strings.Contains(n, "estimate from the QUIC figures") {
			t.Errorf("a calibration with every protocol noted an estimate: %q", n)
		}
	}
	est := 0
	for _, n := range run(ref).Checker.Notes {
		if strings.Contains(n, "estimate from the QUIC figures") {
			est++
		}
	}
	if est != 3 {
		t.Errorf("the reference calibration (no api figures): %d estimate notes, want one per protocol (rest, ws, graphql)", est)
	}
}

// TestAPIAcceptedAnswerBeforeTheReceipt: an HTTP API's round trip to the
// accepted answer, when calibrated shorter than the one to the receipt,
// makes the accepted stage that much shorter, and the committed one no
// longer: the request and the accepted answer take halves of the shorter
// round trip, the receipt the rest of the longer one.
func TestAPIAcceptedAnswerBeforeTheReceipt(t *testing.T) {
	const d = 2e6 // ns the receipt adds beyond the accepted answer
	sc := `
name: accepted
seed: 5
warmup: 500ms
duration: 3s
cluster: {nodes: 1, shards: 2, cores_per_node: 4}
workload:
  - {name: rest, kind: put, rate: 200/s, accounts: 1000, client: rest}
`
	p50s := func(accepted bool) (acc, com int64) {
		c := reference(t)
		rt := c.Ops.QUICRoundTrip.P50Ns + d + c.Ops.Ed25519VerifyNs
		a := calib.APICost{Protocol: "rest", RoundTrip: calib.Latency{P50Ns: rt, P99Ns: 2 * rt, MeanNs: rt}, RequestNs: 50_000}
		if accepted {
			a.Accepted = &calib.Latency{P50Ns: rt - d, P99Ns: 2 * rt, MeanNs: rt - d}
		}
		c.Ops.API = []calib.APICost{a}
		o, err := Run(context.Background(), load(t, sc), Options{Calib: c})
		if err != nil {
			t.Fatal(err)
		}
		st := o.Result.Workloads["rest"].Stages
		return st["accepted"].Corrected.P50, st["committed"].Corrected.P50
	}
	acc0, com0 := p50s(false)
	acc1, com1 := p50s(true)
	if got := acc0 - acc1; got < int64(0.9*d/1e3) || got > int64(1.3*d/1e3) {
		t.Errorf("accepted p50 %d → %d µs: %d µs shorter, want about %d", acc0, acc1, got, int64(d/1e3))
	}
	if got := com1 - com0; got < -100 || got > 100 {
		t.Errorf("committed p50 %d → %d µs, want about the same", com0, com1)
	}
}

// TestAPIWaysUnderLoad: on a shared host, an HTTP API client whose
// protocol's ways calibrate measured in a loaded process (APICost.Loaded)
// takes those ways — 1 ms more on the request and the accepted answer
// makes the accepted stage about 2 ms longer, and with 1 ms more on the
// receipt the committed one 2 ms too (the request and the receipt: the
// accepted answer is not on its way) — whatever its idle round trips; on a
// dedicated host (no load generator beside the node) it keeps them.
func TestAPIWaysUnderLoad(t *testing.T) {
	sc := `
name: loaded
seed: 5
warmup: 500ms
duration: 3s
cluster: {nodes: 1, shards: 2, cores_per_node: 4}
workload:
  - {name: ws, kind: put, rate: 200/s, accounts: 1000, client: ws}
`
	p50s := func(host Host, extra float64) (acc, com int64) {
		c := reference(t)
		rt := c.Ops.QUICRoundTrip.P50Ns + c.Ops.Ed25519VerifyNs
		a := calib.APICost{Protocol: "ws", RoundTrip: calib.Latency{P50Ns: rt, P99Ns: 2 * rt, MeanNs: rt}, RequestNs: 50_000,
			Loaded: &calib.APILoaded{HostBusy: 0.3, RequestWayNs: 50e3 + extra, AcceptedWayNs: 50e3 + extra, ReceiptWayNs: 50e3 + extra}}
		c.Ops.API = []calib.APICost{a}
		o, err := Run(context.Background(), load(t, sc), Options{Calib: c, Host: host})
		if err != nil {
			t.Fatal(err)
		}
		st := o.Result.Workloads["ws"].Stages
		return st["accepted"].Corrected.P50, st["committed"].Corrected.P50
	}
	const ms = 1e6
	acc0, com0 := p50s(Shared, 0)
	acc1, com1 := p50s(Shared, ms)
	if d := acc1 - acc0; d < 1800 || d > 2400 {
		t.Errorf("shared host: accepted p50 %d → %d µs with ways 1 ms longer, want about 2 ms more", acc0, acc1)
	}
	if d := com1 - com0; d < 1800 || d > 2400 {
		t.Errorf("shared host: committed p50 %d → %d µs with ways 1 ms longer, want about 2 ms more", com0, com1)
	}
	dacc0, dcom0 := p50s(Dedicated, 0)
	dacc1, dcom1 := p50s(Dedicated, ms)
	if dacc0 != dacc1 || dcom0 != dcom1 {
		t.Errorf("dedicated host: accepted %d → %d, committed %d → %d µs: the loaded ways are a shared host's", dacc0, dacc1, dcom0, dcom1)
	}
}
