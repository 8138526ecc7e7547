package tracing

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
)

func txID(i int) [32]byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(i))
	return sha256.Sum256(b[:])
}

// TestSampledAgreesWithOTel: Sampled is OpenTelemetry's TraceIDRatioBased
// on the derived trace id, so any OTel sampler at the same share agrees,
// and the share holds.
func TestSampledAgreesWithOTel(t *testing.T) {
	for _, share := range []float64{0, 0.01, 0.1, 0.5, 1} {
		s := sdktrace.TraceIDRatioBased(share)
		n := 0
		for i := range 20000 {
			id := txID(i)
			got := Sampled(id, share)
			want := s.ShouldSample(sdktrace.SamplingParameters{TraceID: TraceID(id)}).Decision == sdktrace.RecordAndSample
			if got != want {
				t.Fatalf("share %v, id %d: sampled %v, OTel says %v", share, i, got, want)
			}
			if got {
				n++
			}
		}
		if d := float64(n)/20000 - share; d > 0.01 || d < -0.01 {
			t.Errorf("share %v: sampled %d of 20000", share, n)
		}
	}
}

func TestIDs(t *testing.T) {
	id := txID(1)
	if got := TraceID(id); !bytes.Equal(got[:], id[:16]) {
		t.Fatalf("trace id %v", got)
	}
	seen := map[trace.SpanID]bool{}
	for _, a := range []Anchor{AnchorRoot, AnchorSend, AnchorCommit} {
		s := SpanID(id, a)
		if !s.IsValid() || seen[s] {
			t.Fatalf("anchor %d: span id %v", a, s)
		}
		seen[s] = true
	}
	if c := SpanID(id, AnchorCommit); binary.BigEndian.Uint64(c[:]) != binary.BigEndian.Uint64(id[16:24])+2 {
		t.Fatal("the commit anchor is not bytes 16..23 + 2")
	}
	var zero [32]byte
	if !SpanID(zero, AnchorRoot).IsValid() {
		t.Fatal("a zero span id")
	}
}

// TestNilTracerCostsNothing: a nil Tracer samples nothing and allocates
// nothing, and neither does asking an untraced context.
func TestNilTracerCostsNothing(t *testing.T) {
	var tr *Tracer
	id := txID(3)
	ctx := context.Background()
	allocs := testing.AllocsPerRun(1000, func() {
		if tr.Sampled(id) || Recording(ctx) || SampledIDs(tr, [][32]byte{id}) != nil {
			t.Fatal("sampled")
		}
		Child(ctx, SpanProduce, time.Time{}, time.Time{})
	})
	if allocs != 0 {
		t.Fatalf("%v allocations", allocs)
	}
	if New(nil, 1) != nil || New(sdktrace.NewTracerProvider(), 0) != nil {
		t.Fatal("a tracer that traces nothing is not nil")
	}
	on := New(sdktrace.NewTracerProvider(), 0.01)
	var unsampled [32]byte
	for i := 0; ; i++ {
		if unsampled = txID(i); !on.Sampled(unsampled) {
			break
		}
	}
	if a := testing.AllocsPerRun(1000, func() { _ = on.Sampled(unsampled) }); a != 0 {
		t.Fatalf("an unsampled id costs %v allocations", a)
	}
}

// TestSpansJoinOneTrace: spans recorded by two providers (a client and a
// node) for one transaction land in one trace, under its anchors, and
// traces.json round-trips them.
func TestSpansJoinOneTrace(t *testing.T) {
	ctx := context.Background()
	coll := NewCollector(0)
	client, err := NewProvider(ctx, Config{Processors: []sdktrace.SpanProcessor{coll}}, Process{Service: ServiceHarness})
	if err != nil {
		t.Fatal(err)
	}
	node, err := NewProvider(ctx, Config{Processors: []sdktrace.SpanProcessor{coll}}, Process{Service: ServiceNode, Instance: "node-1", Key: []byte{1, 2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	ct, nt := New(client, 1), New(node, 1)
	id := txID(7)
	t0 := time.Unix(1000, 0)
	nctx, ing := nt.Start(ctx, id, AnchorSend, SpanIngress, t0.Add(time.Millisecond), AttrTransport.String("quic"))
	if !Recording(nctx) {
		t.Fatal("the ingress span is not recording")
	}
	Child(nctx, SpanSigVerify, t0.Add(2*time.Millisecond), t0.Add(3*time.Millisecond), AttrBatch.Int(4))
	ing.End(trace.WithTimestamp(t0.Add(4 * time.Millisecond)))
	nt.Record(id, AnchorCommit, SpanQuorum, t0.Add(6*time.Millisecond), t0.Add(7*time.Millisecond), AttrQuorumSigners.StringSlice([]string{"aa", "bb"}))
	root := ct.StartAnchor(id, AnchorRoot, SpanTx, t0, attribute.String("k", "v"))
	send := ct.StartAnchor(id, AnchorSend, SpanClientSend, t0)
	send.End(trace.WithTimestamp(t0.Add(5 * time.Millisecond)))
	wait := ct.StartAnchor(id, AnchorCommit, SpanClientCommit, t0.Add(5*time.Millisecond))
	wait.End(trace.WithTimestamp(t0.Add(8 * time.Millisecond)))
	root.End(trace.WithTimestamp(t0.Add(9 * time.Millisecond)))

	req, ok := coll.Trace(TraceID(id))
	if !ok || len(req.ResourceSpans) != 2 {
		t.Fatalf("trace %+v", req)
	}
	var buf bytes.Buffer
	if err := Encode(&buf, []Request{req}); err != nil {
		t.Fatal(err)
	}
	if strings.Count(buf.String(), "\n") != 1 || !strings.Contains(buf.String(), `"traceId":"`+TraceID(id).String()+`"`) ||
		!strings.Contains(buf.String(), `"intValue":"4"`) {
		t.Fatalf("OTLP/JSON: %s", buf.String())
	}
	back, err := Decode(&buf)
	if err != nil || len(back) != 1 {
		t.Fatal(back, err)
	}
	spans := back[0].Flatten()
	by := map[string]FlatSpan{}
	for _, s := range spans {
		by[s.Name] = s
	}
	rootID, sendID, commitID := SpanID(id, AnchorRoot).String(), SpanID(id, AnchorSend).String(), SpanID(id, AnchorCommit).String()
	for name, want := range map[SpanName][2]string{
		SpanTx: {rootID, ""}, SpanClientSend: {sendID, rootID}, SpanClientCommit: {commitID, rootID},
		SpanIngress: {"", sendID}, SpanSigVerify: {"", by[string(SpanIngress)].SpanID}, SpanQuorum: {"", commitID},
	} {
		s, ok := by[string(name)]
		if !ok || (want[0] != "" && s.SpanID != want[0]) || s.ParentSpanID != want[1] || s.TraceID != TraceID(id).String() {
			t.Errorf("%s: %+v, want id %q parent %q", name, s, want[0], want[1])
		}
	}
	if s := by[string(SpanQuorum)]; s.Instance != "node-1" || s.Service != ServiceNode || s.NodeKey != "010203" {
		t.Errorf("quorum span's resource: %+v", s)
	}
	if v, _ := by[string(SpanQuorum)].Attr(AttrQuorumSigners); strings.Join(v.Strings(), ",") != "aa,bb" {
		t.Errorf("signers %v", v)
	}
	if by[string(SpanSigVerify)].End()-by[string(SpanSigVerify)].Start() != int64(time.Millisecond) {
		t.Error("sigverify's times")
	}
}

// TestReceiver: spans a node process exports over OTLP/HTTP reach the
// collector, and the keep rule narrows them.
func TestReceiver(t *testing.T) {
	ctx := context.Background()
	coll := NewCollector(0)
	keepID := txID(1)
	coll.SetKeep(func(tid trace.TraceID) bool { return tid == TraceID(keepID) })
	r := &Receiver{Collector: coll}
	url, err := r.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	tp, err := NewProvider(ctx, Config{Endpoint: url}, Process{Service: ServiceNode, Instance: "node-2"})
	if err != nil {
		t.Fatal(err)
	}
	tr := New(tp, 1)
	now := time.Now()
	tr.Record(keepID, AnchorCommit, SpanCommit, now, now.Add(time.Millisecond), AttrHeight.Int64(9))
	tr.Record(txID(2), AnchorCommit, SpanCommit, now, now.Add(time.Millisecond))
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	req, ok := coll.Trace(TraceID(keepID))
	if !ok {
		t.Fatal("the exported span did not arrive")
	}
	s := req.Flatten()
	if len(s) != 1 || s[0].Name != string(SpanCommit) || s[0].Instance != "node-2" || s[0].ParentSpanID != SpanID(keepID, AnchorCommit).String() {
		t.Fatalf("spans %+v", s)
	}
	if _, ok := coll.Trace(TraceID(txID(2))); ok {
		t.Fatal("a trace the keep rule refuses was kept")
	}
	resp, err := http.Post(url+"/v1/traces", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("JSON body: %d", resp.StatusCode)
	}
}

func TestEndpoints(t *testing.T) {
	for _, ok := range []string{"grpc://localhost:4317", "http://localhost:4318", "https://collector:4318/custom/v1/traces", "grpcs://c:4317"} {
		if err := (Config{Endpoint: ok}).Validate(); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
		if _, err := NewClient(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"localhost:4317", "udp://x:1", "grpc://x:1/path", "http://"} {
		if err := (Config{Endpoint: bad}).Validate(); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
	if err := (Config{Sample: 2}).Validate(); err == nil {
		t.Error("a share of 2 accepted")
	}
	c := Config{Endpoint: "grpc://x:1"}
	if !c.On() || c.Share() != DefaultSample {
		t.Errorf("default share %v", c.Share())
	}
	if c := (Config{Endpoint: "grpc://x:1", Sample: -1}); c.On() || c.Share() != 0 {
		t.Error("a negative share traces")
	}
}

// BenchmarkTracedTransaction is what tracing one transaction costs a
// one-node cluster and its client: the spans node/p2p, the node, its
// leader and replica and the harness record for it, collected in memory
// (as a run does), with the OTel SDK. At a sample of R the cost per
// transaction is R times this; an untraced transaction costs a hash
// comparison (BenchmarkUntraced).
func BenchmarkTracedTransaction(b *testing.B) {
	ctx := context.Background()
	coll := NewCollector(1 << 30)
	tp, _ := NewProvider(ctx, Config{Processors: []sdktrace.SpanProcessor{coll}}, Process{Service: ServiceNode, Instance: "node-1"})
	tr := New(tp, 1)
	now := time.Now()
	b.ReportAllocs()
	for i := range b.N {
		id := txID(i)
		sctx, ing := tr.Start(ctx, id, AnchorSend, SpanIngress, now, AttrTransport.String("quic"))
		Child(sctx, SpanSigVerify, now, now, AttrBatch.Int(1))
		Child(sctx, SpanProduce, now, now, AttrShard.Int64(1), AttrOffset.Int64(int64(i)))
		Child(sctx, SpanAccept, now, now)
		ing.End(trace.WithTimestamp(now))
		block := []attribute.KeyValue{AttrShard.Int64(1), AttrHeight.Int64(9), AttrBlockTxs.Int(50), AttrSampledInBlock.Int(1)}
		for _, n := range []SpanName{SpanLeaderPoll, SpanBlockCut, SpanPublish, SpanReplicaRead, SpanExecute, SpanMerkle, SpanAttest, SpanQuorum, SpanCommit, SpanReceipt} {
			tr.Record(id, AnchorCommit, n, now, now, block...)
		}
		root := tr.StartAnchor(id, AnchorRoot, SpanTx, now, AttrTxID.String("x"), AttrWorkload.String("puts"))
		for _, a := range []Anchor{AnchorSend, AnchorCommit} {
			sp := tr.StartAnchor(id, a, SpanClientSend, now)
			sp.End(trace.WithTimestamp(now))
		}
		tr.Record(id, AnchorRoot, SpanProofVerify, now, now)
		root.End(trace.WithTimestamp(now))
	}
}

// BenchmarkUntraced is what tracing costs an untraced transaction when
// tracing is on: the sampling decision.
func BenchmarkUntraced(b *testing.B) {
	tr := New(sdktrace.NewTracerProvider(), DefaultSample)
	ids := make([][32]byte, 1024)
	for i := range ids {
		ids[i] = txID(i)
	}
	b.ReportAllocs()
	n := 0
	for i := range b.N {
		if tr.Sampled(ids[i%len(ids)]) {
			n++
		}
	}
	_ = n
}

// traceService is an OTLP gRPC trace receiver for TestGRPCExport.
type traceService struct {
	coltracepb.UnimplementedTraceServiceServer
	coll *Collector
}

func (s *traceService) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	s.coll.AddProto(req.GetResourceSpans())
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// TestGRPCExport: a grpc:// endpoint exports over OTLP gRPC.
func TestGRPCExport(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	coll := NewCollector(0)
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, &traceService{coll: coll})
	go srv.Serve(ln)
	defer srv.Stop()
	ctx := context.Background()
	tp, err := NewProvider(ctx, Config{Endpoint: "grpc://" + ln.Addr().String()}, Process{Service: ServiceNode, Instance: "node-3"})
	if err != nil {
		t.Fatal(err)
	}
	id := txID(5)
	now := time.Now()
	New(tp, 1).Record(id, AnchorCommit, SpanMerkle, now, now.Add(time.Millisecond))
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	req, ok := coll.Trace(TraceID(id))
	if s := req.Flatten(); !ok || len(s) != 1 || s[0].Name != string(SpanMerkle) || s[0].Instance != "node-3" {
		t.Fatalf("received %+v", req)
	}
}
