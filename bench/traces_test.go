package bench_test

import (
	"path/filepath"
	"slices"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/rustorium/rustorium/bench"
	"github.com/rustorium/rustorium/node/tracing"
)

// stageChains are the spans every committed, proof-checked put's trace
// holds, in chains each in the order they start: what the client sees,
// and what happens to the transaction in the log and the blocks (which
// runs while the accepted receipt travels back: a leader may cut the
// block, or the node even commit it, before the client holds its accepted
// receipt).
var stageChains = [][]tracing.SpanName{
	{tracing.SpanTx, tracing.SpanClientSend, tracing.SpanIngress, tracing.SpanSigVerify, tracing.SpanProduce, tracing.SpanAccept,
		tracing.SpanClientCommit, tracing.SpanProofVerify},
	{tracing.SpanProduce, tracing.SpanBlockCut, tracing.SpanPublish,
		tracing.SpanReplicaQueue, tracing.SpanReplicaRead, tracing.SpanExecute, tracing.SpanMerkle, tracing.SpanAttest, tracing.SpanQuorum, tracing.SpanCommit,
		tracing.SpanReceipt, tracing.SpanProofVerify},
}

// checkTraces reads the report folder's traces.json and checks that every
// trace of a committed send holds the client's and the nodes' stage spans,
// in pipeline order, with the replica spans of every node in nodes; it
// returns the traces.
func checkTraces(t *testing.T, out string, nodes []string) []tracing.Request {
	t.Helper()
	reqs, err := tracing.ReadFile(filepath.Join(out, tracing.TracesFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(reqs) == 0 {
		t.Fatal("traces.json holds no trace")
	}
	complete := 0
	for _, req := range reqs {
		spans := req.Flatten()
		first := map[string]int64{} // earliest start by name
		byNode := map[string]map[string]bool{}
		traceID := ""
		for _, s := range spans {
			if traceID == "" {
				traceID = s.TraceID
			}
			if s.TraceID != traceID {
				t.Fatalf("a request holds two traces: %s and %s", traceID, s.TraceID)
			}
			if s.End() < s.Start() {
				t.Fatalf("span %s ends before it starts", s.Name)
			}
			if v, ok := first[s.Name]; !ok || s.Start() < v {
				first[s.Name] = s.Start()
			}
			if byNode[s.Instance] == nil {
				byNode[s.Instance] = map[string]bool{}
			}
			byNode[s.Instance][s.Name] = true
		}
		if _, ok := first[string(tracing.SpanProofVerify)]; !ok {
			continue // not committed, or its proof not checked (a superseded put)
		}
		complete++
		for _, chain := range stageChains {
			prev, prevName := int64(0), ""
			for _, name := range chain {
				at, ok := first[string(name)]
				if !ok {
					t.Fatalf("trace %s: no %s span; has %v", traceID, name, names(spans))
				}
				if at < prev {
					t.Fatalf("trace %s: %s starts %dµs before %s", traceID, name, (prev-at)/1000, prevName)
				}
				prev, prevName = at, string(name)
			}
		}
		// The leader's poll may start before the transaction was appended
		// (a long poll), but returns it after.
		var pollEnd int64
		for _, s := range spans {
			if s.Name == string(tracing.SpanLeaderPoll) {
				pollEnd = max(pollEnd, s.End())
			}
		}
		if pollEnd == 0 || pollEnd < first[string(tracing.SpanProduce)] || pollEnd > first[string(tracing.SpanBlockCut)] {
			t.Fatalf("trace %s: leader.poll ends at %d, produce starts at %d, the cut at %d", traceID, pollEnd, first[string(tracing.SpanProduce)], first[string(tracing.SpanBlockCut)])
		}
		for _, n := range nodes {
			for _, name := range []tracing.SpanName{tracing.SpanReplicaQueue, tracing.SpanReplicaRead, tracing.SpanExecute, tracing.SpanMerkle, tracing.SpanAttest, tracing.SpanQuorum, tracing.SpanCommit} {
				if !byNode[n][string(name)] {
					t.Fatalf("trace %s: no %s span from %s", traceID, name, n)
				}
			}
		}
	}
	if complete == 0 {
		t.Fatalf("none of %d traces is complete", len(reqs))
	}
	return reqs
}

func names(spans []tracing.FlatSpan) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Instance+"/"+s.Name)
	}
	return out
}

// TestTracesInProcess: a small in-process run writes traces.json whose
// traces span the client's and the node's stages in order, and result.json
// summarises them.
func TestTracesInProcess(t *testing.T) {
	out := t.TempDir()
	res := run(t, smallScenario, bench.Options{Out: out, SkipFloors: true, TraceSample: 0.05})
	reqs := checkTraces(t, out, []string{"node-1"})
	tr := res.Traces
	if tr == nil || tr.Count != len(reqs) || tr.Complete == 0 || tr.P50 == nil || tr.P99 == nil || tr.Sample != 0.05 {
		t.Fatalf("result traces %+v", tr)
	}
	if !slices.Contains(res.Files, tracing.TracesFile) {
		t.Fatalf("files %v", res.Files)
	}
	if len(tr.Slowest) == 0 || tr.P99.TotalUs < tr.P50.TotalUs {
		t.Fatalf("slowest %d, p50 %d, p99 %d", len(tr.Slowest), tr.P50.TotalUs, tr.P99.TotalUs)
	}
	var sum int64
	for _, s := range tr.P50.Stages {
		sum += s.Us
	}
	if d := sum - tr.P50.TotalUs; d < -int64(len(tr.P50.Stages)) || d > int64(len(tr.P50.Stages)) {
		t.Fatalf("p50 breakdown adds up to %dµs, the trace is %dµs", sum, tr.P50.TotalUs)
	}
}

const threeNodeScenario = `
name: three
seed: 5
warmup: 500ms
duration: 2s
drain: 10s
cluster: {nodes: 3, shards: 2, block: {max_txs: 100, max_wait: 10ms}, storage: {sync: false}}
workload:
  - {name: puts, kind: put, accounts: 1000, rate: 200/s, verify_proofs: 20%}
slo:
  - {metric: lost, max: 0}
report: {formats: [json, md, html]}
`

// TestTracesThreeNodes: in a 3-node in-process run every trace holds the
// replica spans of all three nodes, and the quorum's signers.
func TestTracesThreeNodes(t *testing.T) {
	out := t.TempDir()
	res := run(t, threeNodeScenario, bench.Options{Out: out, SkipFloors: true, TraceSample: 0.05})
	nodes := []string{"node-1", "node-2", "node-3"}
	reqs := checkTraces(t, out, nodes)
	if tr := res.Traces; tr == nil || !slices.Equal(tr.Nodes, nodes) {
		t.Fatalf("result traces %+v", res.Traces)
	}
	quorums := 0
	for _, req := range reqs {
		for _, s := range req.Flatten() {
			if s.Name != string(tracing.SpanQuorum) {
				continue
			}
			v, ok := s.Attr(tracing.AttrQuorumSigners)
			if !ok || len(v.Strings()) < 2 {
				t.Fatalf("quorum span of %s without its signers: %+v", s.Instance, s.Attributes)
			}
			quorums++
		}
	}
	if quorums == 0 {
		t.Fatal("no quorum span")
	}
}

// TestTracesExportOTLP: with Options.OTLP the client's and the in-process
// nodes' spans also reach that endpoint.
func TestTracesExportOTLP(t *testing.T) {
	coll := tracing.NewCollector(0)
	recv := &tracing.Receiver{Collector: coll}
	endpoint, err := recv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	out := t.TempDir()
	run(t, smallScenario, bench.Options{Out: out, SkipFloors: true, TraceSample: 0.05, OTLP: endpoint})
	reqs, err := tracing.ReadFile(filepath.Join(out, tracing.TracesFile))
	if err != nil || len(reqs) == 0 {
		t.Fatal(reqs, err)
	}
	// Run flushed the exporter before it returned.
	for _, req := range reqs {
		spans := req.Flatten()
		tid, err := trace.TraceIDFromHex(spans[0].TraceID)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := coll.Trace(tid)
		if !ok {
			t.Fatalf("trace %s was not exported", tid)
		}
		services := map[string]bool{}
		for _, s := range got.Flatten() {
			services[s.Service] = true
		}
		if !services[tracing.ServiceHarness] || !services[tracing.ServiceNode] {
			t.Fatalf("trace %s exported from %v", tid, services)
		}
	}
}
