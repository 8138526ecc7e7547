package reports

import (
	"strconv"
	"strings"
	"testing"

	"github.com/rustorium/rustorium/node/tracing"
)

// goldenTraces is the golden report's traces section.
func goldenTraces() *Traces {
	return &Traces{File: "traces.json", Sample: 0.01, Count: 40, Complete: 39, Nodes: []string{"node-1", "node-2"},
		P50: &TraceBreakdown{TraceID: "0123456789abcdef0123456789abcdef", TotalUs: 25000, Stages: []StageTime{
			{"client.send", 800}, {"node.produce", 1200}, {"client.commit_wait", 9000}, {"replica.merkle", 4000}, {"replica.quorum", 10000}}},
		P99: &TraceBreakdown{TraceID: "fedcba9876543210fedcba9876543210", TotalUs: 45000, Stages: []StageTime{
			{"client.send", 900}, {"node.produce", 2100}, {"client.commit_wait", 30000}, {"replica.merkle", 12000}}},
		Spans: []SpanStat{{Span: "client.send", Count: 40, P50Us: 800, P99Us: 3000}, {Span: "replica.quorum", Count: 78, P50Us: 9000, P99Us: 12000}},
		Slowest: []Waterfall{{TraceID: "fedcba9876543210fedcba9876543210", Workload: "puts", TotalUs: 45000, Spans: []WaterfallSpan{
			{Name: "tx", Node: "client", DurUs: 45000, Critical: true},
			{Name: "client.send", Node: "client", Depth: 1, DurUs: 3000, Critical: true},
			{Name: "node.sigverify", Node: "node-1", Depth: 2, StartUs: 500, DurUs: 40, Detail: "batch of 3"},
			{Name: "replica.quorum", Node: "node-2", Depth: 1, StartUs: 30000, DurUs: 12000, Detail: "quorum: node-1, node-2", Error: "halted"},
		}}},
	}
}

// span is a test span of trace tid: name, node ("" for the client),
// parent span id, start and end in µs.
type span struct {
	id, parent, name, node string
	start, end             int64
}

func ptrTo(s string) *string { return &s }

// TestCriticalPath: the breakdown follows the critical path — the
// replica spans of the node that answered, the leader's overlapping
// Kafka transaction, the waits between — and adds up to the trace.
func TestCriticalPath(t *testing.T) {
	spans := []span{
		{"r", "", "tx", "", 0, 1000},
		{"s", "r", "client.send", "", 0, 100},
		{"i", "s", "node.ingress", "n1", 10, 90},
		{"v", "i", "node.sigverify", "n1", 20, 30},
		{"p", "i", "node.produce", "n1", 30, 80},
		{"w", "r", "client.commit_wait", "", 100, 900},
		{"c", "w", "leader.cut", "n2", 150, 160},
		{"b", "w", "leader.publish", "n2", 160, 400},
		{"x1", "w", "replica.read", "n1", 300, 310},
		{"m1", "w", "replica.merkle", "n1", 310, 500},
		{"q1", "w", "replica.quorum", "n1", 500, 700},
		{"k1", "w", "replica.commit", "n1", 700, 800},
		// node-2 runs at the same time and ends after node-1's commit
		// began: not the cause of node-1's receipt.
		{"x2", "w", "replica.read", "n2", 300, 310},
		{"m2", "w", "replica.merkle", "n2", 310, 690},
		{"q2", "w", "replica.quorum", "n2", 690, 695},
		{"k2", "w", "replica.commit", "n2", 695, 750},
		{"e", "w", "node.receipt", "n1", 850, 860},
		{"f", "r", "client.proof_verify", "", 900, 1000},
	}
	req := buildRequest("00112233445566778899aabbccddeeff", spans)
	sum := SummarizeTraces([]tracing.Request{req})
	if sum.Count != 1 || sum.Complete != 1 || sum.P50 == nil || len(sum.Slowest) != 1 || strings.Join(sum.Nodes, ",") != "n1,n2" {
		t.Fatalf("summary %+v", sum)
	}
	got := map[string]int64{}
	var total int64
	for _, s := range sum.P50.Stages {
		got[s.Stage] = s.Us
		total += s.Us
	}
	want := map[string]int64{
		"client.send": 20, "node.ingress": 20, "node.sigverify": 10, "node.produce": 50,
		"client.commit_wait": (150 - 100) + (850 - 800) + (900 - 860),
		"leader.cut":         10, "leader.publish": 300 - 160,
		"replica.read": 10, "replica.merkle": 190, "replica.quorum": 200, "replica.commit": 100,
		"node.receipt": 10, "client.proof_verify": 100,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %dµs on the critical path, want %d (all: %v)", k, got[k], v, got)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok && v != 0 {
			t.Errorf("%s: %dµs on the critical path, want none", k, v)
		}
	}
	if total != 1000 || sum.P50.TotalUs != 1000 {
		t.Errorf("the breakdown adds up to %dµs, the trace is %dµs", total, sum.P50.TotalUs)
	}
	crit := map[string]bool{}
	for _, w := range sum.Slowest[0].Spans {
		if w.Critical {
			crit[w.Name+"@"+w.Node] = true
		}
	}
	if crit["replica.merkle@n2"] || !crit["replica.merkle@n1"] || !crit["leader.publish@n2"] {
		t.Errorf("critical spans %v", crit)
	}
}

// buildRequest is one trace of spans, grouped by node.
func buildRequest(tid string, spans []span) tracing.Request {
	var req tracing.Request
	index := map[string]int{}
	for _, s := range spans {
		i, ok := index[s.node]
		if !ok {
			attrs := []tracing.KeyValue{{Key: "service.name", Value: tracing.AnyValue{StringValue: ptrTo(tracing.ServiceHarness)}}}
			if s.node != "" {
				attrs = []tracing.KeyValue{{Key: "service.name", Value: tracing.AnyValue{StringValue: ptrTo(tracing.ServiceNode)}},
					{Key: "service.instance.id", Value: tracing.AnyValue{StringValue: ptrTo(s.node)}}}
			}
			i = len(req.ResourceSpans)
			index[s.node] = i
			req.ResourceSpans = append(req.ResourceSpans, tracing.ResourceSpans{Resource: tracing.Resource{Attributes: attrs}, ScopeSpans: []tracing.ScopeSpans{{}}})
		}
		ss := &req.ResourceSpans[i].ScopeSpans[0]
		ss.Spans = append(ss.Spans, tracing.Span{TraceID: tid, SpanID: s.id, ParentSpanID: s.parent, Name: s.name,
			StartTimeUnixNano: strconv.FormatInt(1e12+s.start*1000, 10), EndTimeUnixNano: strconv.FormatInt(1e12+s.end*1000, 10)})
	}
	return req
}

// TestSpanStats: every copy of a span counts (the replica spans of both
// nodes), the percentiles are nearest-rank in µs, the order is the
// pipeline's, and a trace without a root still counts its spans.
func TestSpanStats(t *testing.T) {
	var reqs []tracing.Request
	for i := range 4 {
		d := int64(100 * (i + 1)) // 100, 200, 300, 400 µs
		reqs = append(reqs, buildRequest(strconv.Itoa(i), []span{
			{"r", "", "tx", "", 0, 5000},
			{"s", "r", "client.send", "", 0, d},
			{"q1", "r", "replica.quorum", "n1", 1000, 1000 + d},
			{"q2", "r", "replica.quorum", "n2", 1000, 1000 + 2*d},
		}))
	}
	reqs = append(reqs, buildRequest("orphan", []span{{"s", "x", "client.send", "", 0, 900}}))
	got := SummarizeTraces(reqs).Spans
	want := []SpanStat{
		{Span: "tx", Count: 4, P50Us: 5000, P99Us: 5000},
		{Span: "client.send", Count: 5, P50Us: 300, P99Us: 900},
		{Span: "replica.quorum", Count: 8, P50Us: 300, P99Us: 800},
	}
	if len(got) != len(want) {
		t.Fatalf("spans %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("span %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestSimulationMarkdownSpans: a simulated run's report.md lists the
// steps its model timed as spans, with their percentiles.
func TestSimulationMarkdownSpans(t *testing.T) {
	r := &Result{Simulated: true, Simulation: &Simulation{Host: "shared", Spans: []SpanStat{{Span: "leader.publish", Count: 3000, P50Us: 428, P99Us: 1430}}}}
	var b strings.Builder
	if err := simulationMarkdown(&b, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "| leader.publish | 3000 | 428µs | 1.43ms |") {
		t.Fatalf("report.md's simulation section:\n%s", b.String())
	}
}

// FuzzSummarizeTraces: whatever traces.json holds (simulate --against
// reads a real run's), its summary never panics, counts no more complete
// traces than traces, orders its p50 and p99 transactions, and splits
// each one's time among its critical path's steps without adding time:
// the steps add up to the transaction's total, less at most a µs each of
// rounding, however its spans overlap, repeat ids, loop their parents or
// end before they start.
func FuzzSummarizeTraces(f *testing.F) {
	seed := func(spans []span) {
		var b strings.Builder
		if err := tracing.Encode(&b, []tracing.Request{buildRequest("00112233445566778899aabbccddeeff", spans)}); err != nil {
			f.Fatal(err)
		}
		f.Add([]byte(b.String()))
	}
	seed([]span{{"r", "", "tx", "", 0, 1000}, {"s", "r", "client.send", "", 0, 100}, {"i", "s", "node.ingress", "n1", 10, 90},
		{"w", "r", "client.commit_wait", "", 100, 900}, {"m1", "w", "replica.merkle", "n1", 310, 500}, {"m2", "w", "replica.merkle", "n2", 310, 690},
		{"k1", "w", "replica.commit", "n1", 700, 800}, {"f", "r", "client.proof_verify", "", 900, 1000}})
	// A step that ends before it starts, one outside the root, a loop of
	// parents, a repeated id.
	seed([]span{{"r", "", "tx", "", 0, 1000}, {"a", "r", "client.send", "", 900, 800}, {"b", "r", "node.produce", "n1", -50, 200},
		{"c", "d", "leader.cut", "n1", 10, 20}, {"d", "c", "leader.publish", "n1", 10, 30}, {"b", "b", "replica.commit", "n1", 5, 7},
		{"w", "r", "client.commit_wait", "", 100, 150}, {"x", "r", "client.proof_verify", "", 950, 3000}})
	seed([]span{{"r", "", "tx", "", 1000, 0}, {"s", "r", "client.send", "", 0, 100}})
	f.Add([]byte("{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"name\":\"tx\",\"startTimeUnixNano\":\"x\"}]}]}]}\n\n{}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		reqs, err := tracing.Decode(strings.NewReader(string(data)))
		if err != nil && len(reqs) == 0 {
			return
		}
		sum := SummarizeTraces(reqs)
		if sum.Count != len(reqs) || sum.Complete > sum.Count {
			t.Fatalf("%d traces, %d complete, of %d requests", sum.Count, sum.Complete, len(reqs))
		}
		if (sum.P50 == nil) != (sum.P99 == nil) || sum.P50 != nil && sum.P50.TotalUs > sum.P99.TotalUs {
			t.Fatalf("p50 %+v, p99 %+v", sum.P50, sum.P99)
		}
		for _, b := range []*TraceBreakdown{sum.P50, sum.P99} {
			if b == nil || b.TotalUs < 0 {
				continue
			}
			var steps int64
			for _, s := range b.Stages {
				if s.Us < 0 {
					t.Fatalf("%s: %d µs", s.Stage, s.Us)
				}
				steps += s.Us
			}
			if steps > b.TotalUs || steps < b.TotalUs-int64(len(b.Stages)) {
				t.Fatalf("the steps add up to %d µs of a %d µs transaction: %+v", steps, b.TotalUs, b.Stages)
			}
		}
		_ = newTracesView(sum)
	})
}

// TestTraceSpanBound: a trace of more than maxTraceSpans spans (here a
// chain of parents, each the next one's) gets no tree — no breakdown, no
// waterfall, not complete — while its spans still count in the span
// statistics; at the bound it is summarised.
func TestTraceSpanBound(t *testing.T) {
	trace := func(tid string, n int) tracing.Request {
		spans := []span{{"r", "", "tx", "", 0, 10_000}, {"w", "r", "client.commit_wait", "n1", 0, 10_000}}
		parent := "w"
		for i := len(spans); i < n; i++ {
			id := "s" + strconv.Itoa(i)
			spans = append(spans, span{id, parent, "replica.merkle", "n1", int64(i), 10_000})
			parent = id
		}
		return buildRequest(tid, spans)
	}
	for _, c := range []struct {
		spans    int
		complete int
	}{{maxTraceSpans, 1}, {maxTraceSpans + 1, 0}} {
		sum := SummarizeTraces([]tracing.Request{trace("00112233445566778899aabbccddeeff", c.spans)})
		if sum.Complete != c.complete || (sum.P50 != nil) != (c.complete == 1) || len(sum.Slowest) != c.complete {
			t.Errorf("%d spans: complete %d, p50 %v, %d waterfalls; want %d complete", c.spans, sum.Complete, sum.P50 != nil, len(sum.Slowest), c.complete)
		}
		var merkle int
		for _, s := range sum.Spans {
			if s.Span == "replica.merkle" {
				merkle = s.Count
			}
		}
		if merkle != c.spans-2 {
			t.Errorf("%d spans: replica.merkle counted %d times, want %d", c.spans, merkle, c.spans-2)
		}
	}
}
