package bench

import (
	"context"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/rustorium/rustorium/node/tracing"
	"github.com/rustorium/rustorium/node/tx"
	"github.com/rustorium/rustorium/reports"
)

// TraceHooks is what a target needs to trace its nodes with the run's
// tracing (Hooks.Trace): the sampled transactions are the same everywhere
// (tracing.Sampled at Share), so the nodes' spans join the client's.
type TraceHooks struct {
	// Share is the share of transactions traced.
	Share float64
	// Node is the tracing of an in-process node: the run's collector and,
	// with an OTLP endpoint, its exporter.
	Node tracing.Config
	// Receiver starts (once) and returns the OTLP/HTTP endpoint that node
	// processes export to: the run collects their spans there.
	Receiver func() (endpoint string, err error)
	// Exported says node processes' spans come over OTLP: the run waits
	// for them before it writes traces.json.
	Exported func()
}

// runTraces is a run's tracing: which sends are traced, their client
// spans, the spans the nodes recorded (collected in process or received
// over OTLP), traces.json and the result's traces summary.
type runTraces struct {
	share    float64
	coll     *tracing.Collector
	shared   *tracing.SharedProcessor // the OTLP exporter (--otlp), shared with in-process nodes; nil without
	tp       *sdktrace.TracerProvider // the harness's
	tracer   *tracing.Tracer          // nil: tracing off
	endpoint string                   // --otlp

	mu       sync.Mutex
	sends    []*tracedSend
	keep     map[trace.TraceID]bool
	receiver *tracing.Receiver
	recvURL  string
	exported bool // node spans arrive over OTLP
}

// tracedSend is what the client saw of one traced send.
type tracedSend struct {
	id       tx.ID
	workload string
	kind     string
	i        uint64
	load     *workloadRun // its measured is the start of measuring: a send intended before it is warmup

	mu                                       sync.Mutex
	intended, sent, accepted, committed      time.Time
	proofStart, proofEnd, visibleEnd, failed time.Time
	failStage                                reports.Stage
	failErr                                  string
	resent                                   int
}

// newRunTraces sets up a run's tracing: share of the transactions (0: none).
func newRunTraces(ctx context.Context, share float64, endpoint string) (*runTraces, error) {
	t := &runTraces{share: share, endpoint: endpoint, coll: tracing.NewCollector(0), keep: map[trace.TraceID]bool{}}
	t.coll.SetKeep(t.kept)
	if share <= 0 {
		return t, nil
	}
	procs := []sdktrace.SpanProcessor{t.coll}
	if endpoint != "" {
		exp, err := tracing.NewExporter(ctx, endpoint)
		if err != nil {
			return nil, fmt.Errorf("bench: --otlp: %w", err)
		}
		t.shared = tracing.Shared(sdktrace.NewBatchSpanProcessor(exp))
		procs = append(procs, t.shared)
	}
	tp, err := tracing.NewProvider(ctx, tracing.Config{Processors: procs, Sample: share}, tracing.Process{Service: tracing.ServiceHarness})
	if err != nil {
		return nil, err
	}
	t.tp, t.tracer = tp, tracing.New(tp, share)
	return t, nil
}

// hooks are the TraceHooks of the run (nil when tracing is off).
func (t *runTraces) hooks() *TraceHooks {
	if t.tracer == nil {
		return nil
	}
	procs := []sdktrace.SpanProcessor{t.coll}
	if t.shared != nil {
		procs = append(procs, t.shared)
	}
	return &TraceHooks{
		Share:    t.share,
		Node:     tracing.Config{Processors: procs, Sample: t.share},
		Receiver: t.listen,
		Exported: func() { t.mu.Lock(); t.exported = true; t.mu.Unlock() },
	}
}

// listen starts the OTLP receiver node processes export to, once.
func (t *runTraces) listen() (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.receiver != nil {
		return t.recvURL, nil
	}
	r := &tracing.Receiver{Collector: t.coll}
	if t.endpoint != "" {
		cl, err := tracing.NewClient(t.endpoint)
		if err != nil {
			return "", err
		}
		r.Forward = cl
	}
	url, err := r.Listen("127.0.0.1:0")
	if err != nil {
		return "", err
	}
	t.receiver, t.recvURL = r, url
	return url, nil
}

func (t *runTraces) kept(id trace.TraceID) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.keep[id]
}

// markOne marks send i of l, whose id is id, as traced when the id is
// sampled.
func (t *runTraces) markOne(l *workloadRun, i uint64, id tx.ID) {
	if t.tracer == nil || !t.tracer.Sampled(id) {
		return
	}
	s := &tracedSend{id: id, workload: l.name, kind: string(l.kind), i: i, load: l}
	l.traced.put(s)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sends = append(t.sends, s)
	t.keep[tracing.TraceID(s.id)] = true
}

// tracedSet holds a workload's traced sends by send index (about 1% of
// them: a map, not a slice of every send). The zero value is empty.
type tracedSet struct {
	mu sync.Mutex
	m  map[uint64]*tracedSend
}

func (ts *tracedSet) put(s *tracedSend) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.m == nil {
		ts.m = map[uint64]*tracedSend{}
	}
	ts.m[s.i] = s
}

// get returns send i's record, nil when it is not traced (or ts is nil).
func (ts *tracedSet) get(i uint64) *tracedSend {
	if ts == nil {
		return nil
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.m[i]
}

// The observer's side: what the client saw of a traced send.

func (s *tracedSend) sentAt(intended, actual time.Time) {
	s.mu.Lock()
	s.intended, s.sent = intended, actual
	s.mu.Unlock()
}

func (s *tracedSend) reached(st reports.Stage, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch st {
	case reports.StageAccepted:
		s.accepted = at
	case reports.StageCommitted:
		s.committed = at
	case reports.StageProofVerify:
		s.proofStart, s.proofEnd = s.committed, at
	case reports.StageVisible:
		s.visibleEnd = at
	}
}

func (s *tracedSend) failedAt(st reports.Stage, err error, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failed, s.failStage = at, st
	if err != nil {
		s.failErr = err.Error()
	}
}

func (s *tracedSend) resend() {
	s.mu.Lock()
	s.resent++
	s.mu.Unlock()
}

// clientSpans records the client's spans of a send that went out: the
// root, its send up to the accepted receipt, its wait for the commit
// receipt, and its proof check and read-back.
func (t *runTraces) clientSpans(s *tracedSend) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, tr := s.id, t.tracer
	end := latest(s.accepted, s.committed, s.proofEnd, s.visibleEnd, s.failed)
	if end.IsZero() {
		end = s.sent // never answered (the run was cut short)
	}
	attrs := []attribute.KeyValue{tracing.AttrTxID.String(hex.EncodeToString(id[:])), tracing.AttrWorkload.String(s.workload),
		tracing.AttrKind.String(s.kind), tracing.AttrSend.Int64(int64(s.i)), tracing.AttrLagUs.Int64(s.sent.Sub(s.intended).Microseconds())}
	if s.resent > 0 {
		attrs = append(attrs, tracing.AttrResent.Int(s.resent))
	}
	root := tr.StartAnchor(id, tracing.AnchorRoot, tracing.SpanTx, s.sent, attrs...)
	if !s.failed.IsZero() {
		root.SetStatus(codes.Error, fmt.Sprintf("%s: %s", s.failStage, s.failErr))
	}
	accepted := s.accepted
	if accepted.IsZero() && !s.committed.IsZero() {
		// Acceptance is not answered on its own (GraphQL answers both at
		// the commit): the whole wait is the commit wait.
		accepted = s.sent
	}
	sendEnd := accepted
	if sendEnd.IsZero() {
		sendEnd = latest(s.failed, s.sent)
	}
	send := tr.StartAnchor(id, tracing.AnchorSend, tracing.SpanClientSend, s.sent)
	if accepted.IsZero() && !s.failed.IsZero() {
		send.SetStatus(codes.Error, s.failErr)
	}
	send.End(trace.WithTimestamp(sendEnd))
	if !accepted.IsZero() {
		waitEnd := latest(s.committed, s.failed)
		if s.committed.IsZero() && waitEnd.IsZero() {
			waitEnd = accepted
		}
		wait := tr.StartAnchor(id, tracing.AnchorCommit, tracing.SpanClientCommit, accepted)
		if s.committed.IsZero() && !s.failed.IsZero() {
			wait.SetStatus(codes.Error, s.failErr)
		}
		wait.End(trace.WithTimestamp(waitEnd))
	}
	if !s.proofEnd.IsZero() {
		tr.Record(id, tracing.AnchorRoot, tracing.SpanProofVerify, s.proofStart, s.proofEnd)
	}
	if !s.visibleEnd.IsZero() {
		from := latest(s.proofEnd, s.committed)
		tr.Record(id, tracing.AnchorRoot, tracing.SpanVisible, from, s.visibleEnd)
	}
	root.End(trace.WithTimestamp(end))
}

func latest(ts ...time.Time) time.Time {
	var out time.Time
	for _, t := range ts {
		if t.After(out) {
			out = t
		}
	}
	return out
}

// write records the client spans of the measured traced sends, waits for
// the spans of node processes, writes traces.json into dir and returns the
// result's traces summary. Nil when tracing is off.
func (t *runTraces) write(ctx context.Context, dir string) (*reports.Traces, error) {
	if t.tracer == nil {
		if err := tracing.WriteFile(filepath.Join(dir, tracing.TracesFile), nil); err != nil {
			return nil, err
		}
		return nil, nil
	}
	t.mu.Lock()
	sends, exported := slices.Clone(t.sends), t.exported
	t.mu.Unlock()
	var measured []*tracedSend
	for _, s := range sends {
		s.mu.Lock()
		ok := !s.sent.IsZero() && !s.intended.Before(s.load.measured)
		s.mu.Unlock()
		if ok {
			t.clientSpans(s)
			measured = append(measured, s)
		}
	}
	if exported {
		// Node processes export in batches (every 200ms, see
		// Processes): wait until they have gone quiet.
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		t.coll.Quiet(wctx, time.Second)
		cancel()
	}
	slices.SortFunc(measured, func(a, b *tracedSend) int { return a.sent.Compare(b.sent) })
	reqs := make([]tracing.Request, 0, len(measured))
	for _, s := range measured {
		if req, ok := t.coll.Trace(tracing.TraceID(s.id)); ok {
			reqs = append(reqs, req)
		}
	}
	if err := tracing.WriteFile(filepath.Join(dir, tracing.TracesFile), reqs); err != nil {
		return nil, err
	}
	sum := reports.SummarizeTraces(reqs)
	sum.File, sum.Sample = tracing.TracesFile, t.share
	_, sum.DroppedSpans = t.coll.Stats()
	return sum, nil
}

// close flushes the exporter and stops the receiver.
func (t *runTraces) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if t.tp != nil {
		_ = t.tp.Shutdown(ctx)
	}
	if t.shared != nil {
		_ = t.shared.Close(ctx)
	}
	t.mu.Lock()
	r := t.receiver
	t.mu.Unlock()
	if r != nil {
		_ = r.Close()
	}
}
