package tracing

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/credentials"
)

// Config configures tracing for one process (a node, or the harness). The
// zero value traces nothing.
type Config struct {
	// Endpoint, if set, exports spans over OTLP: grpc://HOST:PORT (OTLP
	// gRPC, plaintext; grpcs:// with TLS) or http://HOST:PORT[/PATH] (OTLP
	// HTTP/protobuf, path /v1/traces unless given; https:// with TLS).
	Endpoint string
	// Processors receive every span too (the harness collects in-process
	// nodes' spans with one). A processor shared between providers should
	// ignore Shutdown (see Shared).
	Processors []sdktrace.SpanProcessor
	// Sample is the share of transactions traced (Sampled). Zero means
	// DefaultSample (1%); negative traces none.
	Sample float64
}

// On reports whether c traces anything: it exports or has processors, and
// its sample is not negative.
func (c Config) On() bool {
	return (c.Endpoint != "" || len(c.Processors) > 0) && c.Sample >= 0
}

// Share is the sample share c traces: Sample, DefaultSample for 0, and 0
// when c is off.
func (c Config) Share() float64 {
	switch {
	case !c.On():
		return 0
	case c.Sample == 0:
		return DefaultSample
	}
	return min(c.Sample, 1)
}

// Validate checks the endpoint and the share.
func (c Config) Validate() error {
	if c.Sample > 1 {
		return fmt.Errorf("tracing: sample %v: want a share in 0..1", c.Sample)
	}
	if c.Endpoint != "" {
		if _, err := parseEndpoint(c.Endpoint); err != nil {
			return err
		}
	}
	return nil
}

// Process describes the process whose spans a provider records (its
// resource).
type Process struct {
	Service  string // service.name: ServiceNode or ServiceHarness
	Instance string // service.instance.id: the node's id ("node-1")
	Key      []byte // the node's public key (rustorium.node.key), or nil
}

func (r Process) attrs() []attribute.KeyValue {
	attrs := []attribute.KeyValue{AttrServiceName.String(r.Service)}
	if r.Instance != "" {
		attrs = append(attrs, AttrServiceInstance.String(r.Instance))
	}
	if len(r.Key) > 0 {
		attrs = append(attrs, AttrNodeKey.String(fmt.Sprintf("%x", r.Key)))
	}
	return attrs
}

// NewProvider builds the tracer provider of c for the process r describes:
// every span it records goes to c's processors and, with an endpoint, to a
// batching OTLP exporter. It samples every span it is asked for (the
// Tracer decides which transactions are traced) and derives the anchor
// spans' ids (IDGenerator). Shut it down to flush the exporter. Nil (and no
// error) when c is off.
func NewProvider(ctx context.Context, c Config, r Process) (*sdktrace.TracerProvider, error) {
	if !c.On() {
		return nil, nil
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(resource.NewSchemaless(r.attrs()...)),
		sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithIDGenerator(IDGenerator()),
	}
	for _, p := range c.Processors {
		opts = append(opts, sdktrace.WithSpanProcessor(p))
	}
	if c.Endpoint != "" {
		exp, err := NewExporter(ctx, c.Endpoint)
		if err != nil {
			return nil, err
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	return sdktrace.NewTracerProvider(opts...), nil
}

// NewExporter returns an OTLP span exporter to endpoint (see
// Config.Endpoint).
func NewExporter(ctx context.Context, endpoint string) (*otlptrace.Exporter, error) {
	cl, err := NewClient(endpoint)
	if err != nil {
		return nil, err
	}
	return otlptrace.New(ctx, cl)
}

// NewClient returns an OTLP trace client to endpoint (see
// Config.Endpoint): what an exporter sends through, and what a Receiver
// forwards with.
func NewClient(endpoint string) (otlptrace.Client, error) {
	u, err := parseEndpoint(endpoint)
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "grpc", "grpcs":
		opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(u.Host), otlptracegrpc.WithTimeout(10 * time.Second)}
		if u.Scheme == "grpc" {
			opts = append(opts, otlptracegrpc.WithInsecure())
		} else {
			opts = append(opts, otlptracegrpc.WithTLSCredentials(credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})))
		}
		return otlptracegrpc.NewClient(opts...), nil
	default: // http, https
		opts := []otlptracehttp.Option{otlptracehttp.WithEndpoint(u.Host), otlptracehttp.WithTimeout(10 * time.Second)}
		if u.Scheme == "http" {
			opts = append(opts, otlptracehttp.WithInsecure())
		}
		if p := strings.TrimSuffix(u.Path, "/"); p != "" {
			opts = append(opts, otlptracehttp.WithURLPath(p))
		}
		return otlptracehttp.NewClient(opts...), nil
	}
}

// parseEndpoint checks an OTLP endpoint string.
func parseEndpoint(endpoint string) (*url.URL, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("tracing: OTLP endpoint %q: want grpc://HOST:PORT or http://HOST:PORT[/PATH] (grpcs://, https:// with TLS)", endpoint)
	}
	switch u.Scheme {
	case "grpc", "grpcs":
		if u.Path != "" && u.Path != "/" {
			return nil, fmt.Errorf("tracing: OTLP endpoint %q: a gRPC endpoint has no path", endpoint)
		}
	case "http", "https":
	default:
		return nil, fmt.Errorf("tracing: OTLP endpoint %q: scheme %q, want grpc, grpcs, http or https", endpoint, u.Scheme)
	}
	return u, nil
}

// idsKey carries the ids StartAnchor asks for.
type idsKey struct{}

type forcedIDs struct {
	trace trace.TraceID
	span  trace.SpanID
}

func withIDs(ctx context.Context, t trace.TraceID, s trace.SpanID) context.Context {
	return context.WithValue(ctx, idsKey{}, forcedIDs{t, s})
}

// IDGenerator returns the providers' id generator: random ids, except for
// the anchor spans, whose ids StartAnchor derives from the transaction id.
func IDGenerator() sdktrace.IDGenerator { return idGenerator{} }

type idGenerator struct{}

func (idGenerator) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	if f, ok := ctx.Value(idsKey{}).(forcedIDs); ok {
		return f.trace, f.span
	}
	var t trace.TraceID
	for !t.IsValid() {
		binary.NativeEndian.PutUint64(t[:8], rand.Uint64())
		binary.NativeEndian.PutUint64(t[8:], rand.Uint64())
	}
	return t, randomSpanID()
}

func (idGenerator) NewSpanID(ctx context.Context, _ trace.TraceID) trace.SpanID {
	if f, ok := ctx.Value(idsKey{}).(forcedIDs); ok {
		return f.span
	}
	return randomSpanID()
}

func randomSpanID() trace.SpanID {
	var s trace.SpanID
	for !s.IsValid() {
		binary.NativeEndian.PutUint64(s[:], rand.Uint64())
	}
	return s
}

// Shared wraps a span processor that several providers use (the harness's
// exporter, shared by its in-process nodes): their Shutdown does not shut
// it down, its owner does, with Close.
func Shared(p sdktrace.SpanProcessor) *SharedProcessor { return &SharedProcessor{p: p} }

// SharedProcessor is a span processor shared by several providers.
type SharedProcessor struct {
	p    sdktrace.SpanProcessor
	once sync.Once
}

// OnStart implements sdktrace.SpanProcessor.
func (s *SharedProcessor) OnStart(ctx context.Context, sp sdktrace.ReadWriteSpan) {
	s.p.OnStart(ctx, sp)
}

// OnEnd implements sdktrace.SpanProcessor.
func (s *SharedProcessor) OnEnd(sp sdktrace.ReadOnlySpan) { s.p.OnEnd(sp) }

// ForceFlush implements sdktrace.SpanProcessor.
func (s *SharedProcessor) ForceFlush(ctx context.Context) error { return s.p.ForceFlush(ctx) }

// Shutdown implements sdktrace.SpanProcessor: nothing (see Close).
func (s *SharedProcessor) Shutdown(context.Context) error { return nil }

// Close shuts the processor down, once.
func (s *SharedProcessor) Close(ctx context.Context) error {
	err := errors.ErrUnsupported
	s.once.Do(func() { err = s.p.Shutdown(ctx) })
	if errors.Is(err, errors.ErrUnsupported) {
		return nil
	}
	return err
}
