package tracing

import (
	"compress/gzip"
	"context"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// DefaultMaxSpans is a Collector's default bound on the spans it holds.
const DefaultMaxSpans = 500_000

// Collector gathers spans by trace, in memory, for traces.json: it is a
// span processor of in-process providers (OnEnd), and takes the OTLP
// requests a Receiver decodes (AddProto). It keeps the spans of the traces
// Keep accepts, at most MaxSpans, and counts the rest as dropped. It is
// safe for concurrent use.
type Collector struct {
	max int

	mu      sync.Mutex
	keep    func(trace.TraceID) bool
	traces  map[trace.TraceID]*collected
	spans   int
	dropped int64
	last    time.Time // when a span last arrived
}

// collected is one trace's spans: the SDK's snapshots as they ended (in
// process: converted only when the trace is read, off the traced paths)
// and those received over OTLP, converted.
type collected struct {
	sdk      []sdktrace.ReadOnlySpan
	received []receivedSpan
}

type receivedSpan struct {
	res   Resource
	scope Scope
	span  Span
}

// NewCollector returns a Collector holding at most maxSpans spans (0:
// DefaultMaxSpans) of every trace, until SetKeep narrows them.
func NewCollector(maxSpans int) *Collector {
	if maxSpans <= 0 {
		maxSpans = DefaultMaxSpans
	}
	return &Collector{max: maxSpans, traces: map[trace.TraceID]*collected{}}
}

// SetKeep makes the Collector keep only the traces keep accepts from now
// on (nil: every trace).
func (c *Collector) SetKeep(keep func(trace.TraceID) bool) {
	c.mu.Lock()
	c.keep = keep
	c.mu.Unlock()
}

// trace returns the trace's record to add a span to, or nil when the span
// is not kept. c.mu is held.
func (c *Collector) trace(tid trace.TraceID) *collected {
	c.last = time.Now()
	if c.keep != nil && !c.keep(tid) {
		return nil
	}
	if c.spans >= c.max {
		c.dropped++
		return nil
	}
	t := c.traces[tid]
	if t == nil {
		t = &collected{}
		c.traces[tid] = t
	}
	c.spans++
	return t
}

// OnStart implements sdktrace.SpanProcessor.
func (c *Collector) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd implements sdktrace.SpanProcessor: it keeps the span.
func (c *Collector) OnEnd(s sdktrace.ReadOnlySpan) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := c.trace(s.SpanContext().TraceID()); t != nil {
		t.sdk = append(t.sdk, s)
	}
}

// ForceFlush implements sdktrace.SpanProcessor.
func (c *Collector) ForceFlush(context.Context) error { return nil }

// Shutdown implements sdktrace.SpanProcessor: the spans stay.
func (c *Collector) Shutdown(context.Context) error { return nil }

// AddProto keeps the spans of OTLP protobuf resource spans.
func (c *Collector) AddProto(rss []*tracepb.ResourceSpans) {
	for _, rs := range rss {
		res := Resource{Attributes: fromProtoAttrs(rs.GetResource().GetAttributes())}
		for _, ss := range rs.GetScopeSpans() {
			scope := Scope{Name: ss.GetScope().GetName(), Version: ss.GetScope().GetVersion()}
			for _, s := range ss.GetSpans() {
				var tid trace.TraceID
				if len(s.GetTraceId()) != len(tid) {
					continue
				}
				copy(tid[:], s.GetTraceId())
				sp := fromProtoSpan(s)
				c.mu.Lock()
				if t := c.trace(tid); t != nil {
					t.received = append(t.received, receivedSpan{res, scope, sp})
				}
				c.mu.Unlock()
			}
		}
	}
}

// Trace returns the spans of a trace as one request, grouped by resource,
// and whether any were kept.
func (c *Collector) Trace(tid trace.TraceID) (Request, bool) {
	c.mu.Lock()
	t := c.traces[tid]
	var sdk []sdktrace.ReadOnlySpan
	var received []receivedSpan
	if t != nil {
		sdk, received = slices.Clone(t.sdk), slices.Clone(t.received) // spans may still arrive
	}
	c.mu.Unlock()
	if t == nil {
		return Request{}, false
	}
	var req Request
	index := map[string]int{} // resourceKey → index in req.ResourceSpans
	add := func(res Resource, scope Scope, sp Span) {
		k := resourceKey(res)
		i, ok := index[k]
		if !ok {
			i = len(req.ResourceSpans)
			index[k] = i
			req.ResourceSpans = append(req.ResourceSpans, ResourceSpans{Resource: res, ScopeSpans: []ScopeSpans{{Scope: scope}}})
		}
		ss := &req.ResourceSpans[i].ScopeSpans[0]
		ss.Spans = append(ss.Spans, sp)
	}
	for _, s := range sdk {
		add(fromReadOnly(s))
	}
	for _, r := range received {
		add(r.res, r.scope, r.span)
	}
	return req, true
}

// Stats returns how many spans the Collector holds and how many it dropped
// over its bound.
func (c *Collector) Stats() (spans int, dropped int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.spans, c.dropped
}

// Quiet waits until no span arrived for quiet, or until ctx ends: spans
// exported by other processes come in batches after the fact.
func (c *Collector) Quiet(ctx context.Context, quiet time.Duration) {
	for {
		c.mu.Lock()
		since := time.Since(c.last)
		c.mu.Unlock()
		if since >= quiet {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(quiet - since):
		}
	}
}

// Receiver is a minimal OTLP/HTTP trace receiver (POST /v1/traces,
// protobuf, optionally gzipped) that hands every request to a Collector
// and, when Forward is set, sends it on (to the endpoint the harness was
// given).
type Receiver struct {
	Collector *Collector
	// Forward, if set, receives every request too.
	Forward otlptrace.Client

	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// MaxRequest bounds one OTLP request's body.
const MaxRequest = 64 << 20

// ServeHTTP implements http.Handler.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" {
		http.Error(w, "POST /v1/traces only", http.StatusNotFound)
		return
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		http.Error(w, "protobuf (application/x-protobuf) only", http.StatusUnsupportedMediaType)
		return
	}
	var body io.Reader = http.MaxBytesReader(w, req.Body, MaxRequest)
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		defer zr.Close()
		body = io.LimitReader(zr, MaxRequest)
	}
	data, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var msg coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(data, &msg); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.Collector.AddProto(msg.GetResourceSpans())
	if r.Forward != nil {
		ctx, cancel := context.WithTimeout(req.Context(), 10*time.Second)
		_ = r.Forward.UploadTraces(ctx, msg.GetResourceSpans()) // best effort: traces.json has them
		cancel()
	}
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// Listen serves the receiver on addr ("127.0.0.1:0" for any port) until
// Close, and returns its endpoint, http://HOST:PORT.
func (r *Receiver) Listen(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	if r.Forward != nil {
		if err := r.Forward.Start(context.Background()); err != nil {
			ln.Close()
			return "", err
		}
	}
	r.ln, r.done = ln, make(chan struct{})
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		defer close(r.done)
		_ = r.srv.Serve(ln)
	}()
	return "http://" + ln.Addr().String(), nil
}

// Close stops serving.
func (r *Receiver) Close() error {
	if r.srv == nil {
		return nil
	}
	err := r.srv.Close()
	<-r.done
	if r.Forward != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = r.Forward.Stop(ctx)
		cancel()
	}
	return err
}
