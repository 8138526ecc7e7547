package main

import (
	"math"
	"strconv"
	"testing"

	"github.com/rustorium/rustorium/node/tracing"
)

// apiTrace is one traced submission of workload: its spans' start and end
// offsets (ns) from a base time, the node's in a resource of their own as
// traces.json holds them.
func apiTrace(workload string, base int64, client, node map[tracing.SpanName][2]int64) tracing.Request {
	ts := func(v int64) string { return strconv.FormatInt(base+v, 10) }
	spans := func(m map[tracing.SpanName][2]int64, root bool) []tracing.Span {
		var out []tracing.Span
		if root {
			w := workload
			out = append(out, tracing.Span{Name: string(tracing.SpanTx), StartTimeUnixNano: ts(0), EndTimeUnixNano: ts(5_000_000),
				Attributes: []tracing.KeyValue{{Key: string(tracing.AttrWorkload), Value: tracing.AnyValue{StringValue: &w}}}})
		}
		for name, se := range m {
			out = append(out, tracing.Span{Name: string(name), StartTimeUnixNano: ts(se[0]), EndTimeUnixNano: ts(se[1])})
		}
		return out
	}
	return tracing.Request{ResourceSpans: []tracing.ResourceSpans{
		{ScopeSpans: []tracing.ScopeSpans{{Spans: spans(client, true)}}},
		{ScopeSpans: []tracing.ScopeSpans{{Spans: spans(node, false)}}},
	}}
}

// apiWays takes each protocol's ways from its own transactions' spans:
// the request from the send to the node's admission, the accepted answer
// from the produce→ack to the client's accepted receipt (none for
// GraphQL), the receipt from the block's commit to the client holding it
// — medians, at the run's load; a protocol with too few committed traces
// is left out, and so are the transactions that did not commit.
func TestAPIWays(t *testing.T) {
	sc, err := apiScenarioAt(apiRunRate, apiRunSeconds)
	if err != nil {
		t.Fatal(err)
	}
	var reqs []tracing.Request
	add := func(workload string, n int, request, accepted, receipt int64, committed bool) {
		for i := range n {
			j := int64(i % 3) // medians of 0, 1, 2 µs more: the middle one
			client := map[tracing.SpanName][2]int64{tracing.SpanClientSend: {0, request + 200_000 + accepted + j*1000}}
			node := map[tracing.SpanName][2]int64{
				tracing.SpanIngress: {request + j*1000, request + 150_000},
				tracing.SpanProduce: {request + 100_000, request + 200_000},
			}
			if committed {
				client[tracing.SpanClientCommit] = [2]int64{500_000, 2_000_000 + receipt + j*1000}
				node[tracing.SpanCommit] = [2]int64{1_500_000, 2_000_000}
			}
			reqs = append(reqs, apiTrace(workload, int64(len(reqs))*10_000_000, client, node))
		}
	}
	add("rest", apiMinTraces+1, 90_000, 100_000, 130_000, true)
	add("rest", 200, 1, 1, 1, false) // not committed: left out
	add("ws", apiMinTraces+1, 95_000, 94_000, 135_000, true)
	add("graphql", apiMinTraces-1, 130_000, 0, 150_000, true) // too few
	ways := apiWays(sc, reqs, 0.45)
	if len(ways) != 2 {
		t.Fatalf("ways of %d protocols, want rest and ws: %+v", len(ways), ways)
	}
	for p, want := range map[string][3]float64{"rest": {91_000, 101_000, 131_000}, "ws": {96_000, 95_000, 136_000}} {
		w := ways[p]
		if w.HostBusy != 0.45 || math.Abs(w.RequestWayNs-want[0]) > 0.5 || math.Abs(w.AcceptedWayNs-want[1]) > 0.5 || math.Abs(w.ReceiptWayNs-want[2]) > 0.5 {
			t.Errorf("%s: %+v, want request %v, accepted %v, receipt %v at 0.45", p, w, want[0], want[1], want[2])
		}
	}
	add("graphql", 2, 130_000, 0, 150_000, true)
	if w, ok := apiWays(sc, reqs, 0.45)["graphql"]; !ok || w.AcceptedWayNs != 0 || math.Abs(w.RequestWayNs-131_000) > 0.5 {
		t.Errorf("graphql: %+v %v, want its request's way and no accepted answer's", w, ok)
	}
}
