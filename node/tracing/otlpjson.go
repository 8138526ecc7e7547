package tracing

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// TracesFile is the report folder's file of traces: OTLP/JSON, one
// ExportTraceServiceRequest (Request) per line, each holding one trace.
const TracesFile = "traces.json"

// Request is an OTLP ExportTraceServiceRequest in OTLP/JSON: trace and
// span ids in hex, 64-bit integers as decimal strings, lowerCamelCase
// field names.
type Request struct {
	ResourceSpans []ResourceSpans `json:"resourceSpans"`
}

// ResourceSpans are the spans of one resource (a process).
type ResourceSpans struct {
	Resource   Resource     `json:"resource"`
	ScopeSpans []ScopeSpans `json:"scopeSpans"`
}

// Resource describes a process by its attributes.
type Resource struct {
	Attributes []KeyValue `json:"attributes,omitempty"`
}

// ScopeSpans are the spans of one instrumentation scope.
type ScopeSpans struct {
	Scope Scope  `json:"scope"`
	Spans []Span `json:"spans"`
}

// Scope is an instrumentation scope.
type Scope struct {
	Name    string `json:"name,omitempty"`
	Version string `json:"version,omitempty"`
}

// Span is one span.
type Span struct {
	TraceID           string     `json:"traceId"`
	SpanID            string     `json:"spanId"`
	ParentSpanID      string     `json:"parentSpanId,omitempty"`
	Name              string     `json:"name"`
	Kind              int        `json:"kind"`
	StartTimeUnixNano string     `json:"startTimeUnixNano"`
	EndTimeUnixNano   string     `json:"endTimeUnixNano"`
	Attributes        []KeyValue `json:"attributes,omitempty"`
	Status            *Status    `json:"status,omitempty"`
}

// Start and End are the span's times in unix nanoseconds (0 when
// unreadable).
func (s Span) Start() int64 { return parseNanos(s.StartTimeUnixNano) }
func (s Span) End() int64   { return parseNanos(s.EndTimeUnixNano) }

func parseNanos(v string) int64 {
	n, _ := strconv.ParseInt(v, 10, 64)
	return n
}

// Attr returns the attribute named key, and whether it is there.
func (s Span) Attr(key attribute.Key) (AnyValue, bool) { return attr(s.Attributes, key) }

// Attr returns the resource's attribute named key, and whether it is there.
func (r *Resource) Attr(key attribute.Key) (AnyValue, bool) { return attr(r.Attributes, key) }

func attr(kvs []KeyValue, key attribute.Key) (AnyValue, bool) {
	for _, kv := range kvs {
		if kv.Key == string(key) {
			return kv.Value, true
		}
	}
	return AnyValue{}, false
}

// Status is a span's status: code 2 is an error.
type Status struct {
	Message string `json:"message,omitempty"`
	Code    int    `json:"code,omitempty"`
}

// StatusError is Status.Code of a span that failed.
const StatusError = 2

// KeyValue is an attribute.
type KeyValue struct {
	Key   string   `json:"key"`
	Value AnyValue `json:"value"`
}

// AnyValue is an attribute's value: exactly one field is set.
type AnyValue struct {
	StringValue *string     `json:"stringValue,omitempty"`
	BoolValue   *bool       `json:"boolValue,omitempty"`
	IntValue    *string     `json:"intValue,omitempty"`
	DoubleValue *float64    `json:"doubleValue,omitempty"`
	ArrayValue  *ArrayValue `json:"arrayValue,omitempty"`
}

// ArrayValue is a list of values.
type ArrayValue struct {
	Values []AnyValue `json:"values"`
}

// String is the value written as text (a list joined with ", ").
func (v AnyValue) String() string {
	switch {
	case v.StringValue != nil:
		return *v.StringValue
	case v.BoolValue != nil:
		return strconv.FormatBool(*v.BoolValue)
	case v.IntValue != nil:
		return *v.IntValue
	case v.DoubleValue != nil:
		return strconv.FormatFloat(*v.DoubleValue, 'g', -1, 64)
	case v.ArrayValue != nil:
		parts := make([]string, len(v.ArrayValue.Values))
		for i, e := range v.ArrayValue.Values {
			parts[i] = e.String()
		}
		return strings.Join(parts, ", ")
	}
	return ""
}

// Int is an integer value (0 when it is not one).
func (v AnyValue) Int() int64 {
	if v.IntValue == nil {
		return 0
	}
	n, _ := strconv.ParseInt(*v.IntValue, 10, 64)
	return n
}

// Strings is a list of strings (one for a single string).
func (v AnyValue) Strings() []string {
	switch {
	case v.ArrayValue != nil:
		out := make([]string, len(v.ArrayValue.Values))
		for i, e := range v.ArrayValue.Values {
			out[i] = e.String()
		}
		return out
	case v.StringValue != nil:
		return []string{*v.StringValue}
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

// fromAttribute converts an SDK attribute value.
func fromAttribute(v attribute.Value) AnyValue {
	switch v.Type() {
	case attribute.BOOL:
		return AnyValue{BoolValue: ptr(v.AsBool())}
	case attribute.INT64:
		return AnyValue{IntValue: ptr(strconv.FormatInt(v.AsInt64(), 10))}
	case attribute.FLOAT64:
		return AnyValue{DoubleValue: ptr(v.AsFloat64())}
	case attribute.STRINGSLICE:
		var a ArrayValue
		for _, s := range v.AsStringSlice() {
			a.Values = append(a.Values, AnyValue{StringValue: ptr(s)})
		}
		return AnyValue{ArrayValue: &a}
	case attribute.INT64SLICE:
		var a ArrayValue
		for _, n := range v.AsInt64Slice() {
			a.Values = append(a.Values, AnyValue{IntValue: ptr(strconv.FormatInt(n, 10))})
		}
		return AnyValue{ArrayValue: &a}
	default:
		return AnyValue{StringValue: ptr(v.Emit())}
	}
}

func fromAttributes(kvs []attribute.KeyValue) []KeyValue {
	if len(kvs) == 0 {
		return nil
	}
	out := make([]KeyValue, len(kvs))
	for i, kv := range kvs {
		out[i] = KeyValue{Key: string(kv.Key), Value: fromAttribute(kv.Value)}
	}
	return out
}

// fromReadOnly converts an SDK span with its resource and scope.
func fromReadOnly(s sdktrace.ReadOnlySpan) (res Resource, scope Scope, sp Span) {
	sc := s.SpanContext()
	sp = Span{
		TraceID: sc.TraceID().String(), SpanID: sc.SpanID().String(), Name: s.Name(), Kind: int(s.SpanKind()),
		StartTimeUnixNano: strconv.FormatInt(s.StartTime().UnixNano(), 10),
		EndTimeUnixNano:   strconv.FormatInt(s.EndTime().UnixNano(), 10),
		Attributes:        fromAttributes(s.Attributes()),
	}
	if p := s.Parent(); p.SpanID().IsValid() {
		sp.ParentSpanID = p.SpanID().String()
	}
	if st := s.Status(); st.Code == 1 || st.Code == 2 { // codes.Error is 1 in the SDK, 2 on the wire; Ok is 2 in the SDK
		switch st.Code {
		case 1:
			sp.Status = &Status{Code: StatusError, Message: st.Description}
		case 2:
			sp.Status = &Status{Code: 1}
		}
	}
	if r := s.Resource(); r != nil {
		res.Attributes = fromAttributes(r.Attributes())
	}
	is := s.InstrumentationScope()
	return res, Scope{Name: is.Name, Version: is.Version}, sp
}

// fromProtoValue converts an OTLP protobuf value.
func fromProtoValue(v *commonpb.AnyValue) AnyValue {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return AnyValue{StringValue: ptr(x.StringValue)}
	case *commonpb.AnyValue_BoolValue:
		return AnyValue{BoolValue: ptr(x.BoolValue)}
	case *commonpb.AnyValue_IntValue:
		return AnyValue{IntValue: ptr(strconv.FormatInt(x.IntValue, 10))}
	case *commonpb.AnyValue_DoubleValue:
		return AnyValue{DoubleValue: ptr(x.DoubleValue)}
	case *commonpb.AnyValue_ArrayValue:
		var a ArrayValue
		for _, e := range x.ArrayValue.GetValues() {
			a.Values = append(a.Values, fromProtoValue(e))
		}
		return AnyValue{ArrayValue: &a}
	case *commonpb.AnyValue_BytesValue:
		return AnyValue{StringValue: ptr(hex.EncodeToString(x.BytesValue))}
	}
	return AnyValue{StringValue: ptr("")}
}

func fromProtoAttrs(kvs []*commonpb.KeyValue) []KeyValue {
	if len(kvs) == 0 {
		return nil
	}
	out := make([]KeyValue, len(kvs))
	for i, kv := range kvs {
		out[i] = KeyValue{Key: kv.GetKey(), Value: fromProtoValue(kv.GetValue())}
	}
	return out
}

func fromProtoSpan(s *tracepb.Span) Span {
	sp := Span{
		TraceID: hex.EncodeToString(s.GetTraceId()), SpanID: hex.EncodeToString(s.GetSpanId()), Name: s.GetName(), Kind: int(s.GetKind()),
		StartTimeUnixNano: strconv.FormatUint(s.GetStartTimeUnixNano(), 10),
		EndTimeUnixNano:   strconv.FormatUint(s.GetEndTimeUnixNano(), 10),
		Attributes:        fromProtoAttrs(s.GetAttributes()),
	}
	if p := s.GetParentSpanId(); len(p) > 0 && !bytes.Equal(p, make([]byte, len(p))) {
		sp.ParentSpanID = hex.EncodeToString(p)
	}
	if st := s.GetStatus(); st != nil && st.GetCode() != 0 {
		sp.Status = &Status{Code: int(st.GetCode()), Message: st.GetMessage()}
	}
	return sp
}

// resourceKey identifies a resource by its attributes.
func resourceKey(r Resource) string {
	var b strings.Builder
	for _, kv := range r.Attributes {
		b.WriteString(kv.Key)
		b.WriteByte('=')
		b.WriteString(kv.Value.String())
		b.WriteByte(';')
	}
	return b.String()
}

// WriteFile writes traces.json: each request on a line of its own.
func WriteFile(path string, reqs []Request) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	if err := Encode(w, reqs); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Encode writes reqs as OTLP/JSON, one per line.
func Encode(w io.Writer, reqs []Request) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for i := range reqs {
		if err := enc.Encode(&reqs[i]); err != nil {
			return err
		}
	}
	return nil
}

// ReadFile reads a traces.json.
func ReadFile(path string) ([]Request, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Decode(f)
}

// Decode reads OTLP/JSON requests, one per line; blank lines are skipped.
func Decode(r io.Reader) ([]Request, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 256<<20)
	var out []Request
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var req Request
		if err := json.Unmarshal(b, &req); err != nil {
			return out, fmt.Errorf("tracing: line %d: %w", line, err)
		}
		out = append(out, req)
	}
	return out, sc.Err()
}

// FlatSpan is a span with what its resource says of the process that
// recorded it.
type FlatSpan struct {
	Span
	Service  string // service.name
	Instance string // service.instance.id: the node ("" for the harness)
	NodeKey  string // rustorium.node.key, hex
}

// Flatten lists a request's spans with their resources, sorted by start
// time (then name).
func (r *Request) Flatten() []FlatSpan {
	var out []FlatSpan
	for _, rs := range r.ResourceSpans {
		var svc, inst, key string
		if v, ok := rs.Resource.Attr(AttrServiceName); ok {
			svc = v.String()
		}
		if v, ok := rs.Resource.Attr(AttrServiceInstance); ok {
			inst = v.String()
		}
		if v, ok := rs.Resource.Attr(AttrNodeKey); ok {
			key = v.String()
		}
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				out = append(out, FlatSpan{Span: sp, Service: svc, Instance: inst, NodeKey: key})
			}
		}
	}
	slices.SortStableFunc(out, func(a, b FlatSpan) int {
		if c := a.Start() - b.Start(); c != 0 {
			if c < 0 {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}
