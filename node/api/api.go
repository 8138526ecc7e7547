// Package api serves a node over HTTP: a REST API, a WebSocket API (submit
// with streamed receipts, reads, and a feed of committed blocks) and a
// GraphQL API, all over the same ingress checks and reads as the QUIC
// client protocol. Reads come from the node's materialized views (accounts,
// latest blocks, recent transactions) and, for other keys, from storage,
// always with a Merkle proof against the shard root.
//
// A Server is an http.Handler; Serve runs it on a listener until the
// context ends. Signatures are checked on the node's own Verifier, so
// submissions over the API batch with those over QUIC.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/rustorium/rustorium/node/cache"
	"github.com/rustorium/rustorium/node/consensus"
	"github.com/rustorium/rustorium/node/health"
	"github.com/rustorium/rustorium/node/p2p"
	"github.com/rustorium/rustorium/node/sigverify"
	"github.com/rustorium/rustorium/node/storage"
	"github.com/rustorium/rustorium/node/tracing"
	"github.com/rustorium/rustorium/node/tx"
)

// Backend is the node the API serves; *node.Node implements it. Besides
// submissions, it offers the reads the API makes, never its store.
type Backend interface {
	p2p.Ingress
	p2p.Reader
	// Shards is the number of shards.
	Shards() int
	// Views are the node's materialized views.
	Views() *cache.Views
	// ShardMeta is a shard's committed position (the zero Meta before its
	// first block).
	ShardMeta(shard uint32) (storage.Meta, error)
	// Block is a shard's committed header at a height; false if none.
	Block(shard uint32, height uint64) (consensus.Header, bool, error)
	// Receipt is a committed transaction's stored receipt, without its
	// proof; false if the transaction is not committed there.
	Receipt(id tx.ID) (p2p.Committed, bool, error)
	// Verifier checks submitted signatures; the node's own, so that the
	// API's submissions batch with QUIC's. The node closes it.
	Verifier() *sigverify.Verifier
	// Ready runs the node's readiness checks (GET /readyz).
	Ready(ctx context.Context) []health.Check
}

// Config configures a Server.
type Config struct {
	// Backend is the node. Required.
	Backend Backend
	// ChainID is checked on every submitted transaction. Zero is a valid
	// chain id.
	ChainID uint32
	// Feed carries committed blocks to WebSocket subscribers. Nil: a
	// subscription is refused.
	Feed *Feed
	// ReceiptTimeout bounds how long a submission waits for its commit
	// receipt. Zero means 60s.
	ReceiptTimeout time.Duration
	// MaxInflight bounds the requests one WebSocket connection has under
	// way (a submission until its receipt); more are refused as
	// overloaded. Zero means 16384.
	MaxInflight int
	// Limits bound connections, requests and GraphQL queries; zero fields
	// take the defaults documented on Limits.
	Limits Limits
	// Logger receives connection-level errors. Nil discards them.
	Logger *slog.Logger
	// Registerer, if set, gets the API's collectors: requests by route and
	// status, open WebSocket connections, subscribers dropped for lagging.
	// Nil: not registered.
	Registerer prometheus.Registerer
	// Tracer traces submissions of sampled transactions (node.ingress,
	// node.sigverify, node.produce): the node's (Node.Tracer). Nil traces
	// nothing.
	Tracer *tracing.Tracer
}

// Errors returned by New.
var (
	// ErrConfig is returned (wrapped) for a Config that cannot work.
	ErrConfig = errors.New("api: bad config")
)

// Server serves the REST, WebSocket and GraphQL APIs. The zero value is not
// usable; call New.
type Server struct {
	cfg    Config
	verify *sigverify.Verifier
	mux    *http.ServeMux
	m      apiMetrics
	ctx    context.Context // ends at Close: ends waits and WebSocket connections
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup // requests under way (a WebSocket connection is one)
}

// New returns a Server over cfg.Backend.
func New(cfg Config) (*Server, error) {
	if cfg.Backend == nil {
		return nil, fmt.Errorf("%w: Backend is required", ErrConfig)
	}
	if cfg.ReceiptTimeout == 0 {
		cfg.ReceiptTimeout = 60 * time.Second
	}
	if cfg.MaxInflight == 0 {
		cfg.MaxInflight = 16384
	}
	if cfg.ReceiptTimeout < 0 || cfg.MaxInflight < 0 {
		return nil, fmt.Errorf("%w: negative ReceiptTimeout or MaxInflight", ErrConfig)
	}
	if err := cfg.Limits.ensureDefaults(cfg.ReceiptTimeout); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := newAPIMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	if cfg.Feed != nil {
		cfg.Feed.onDrop = m.dropped.Inc
	}
	s := &Server{cfg: cfg, verify: cfg.Backend.Verifier(), mux: http.NewServeMux(), m: m}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.routes()
	gql, err := newGraphQL(s)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.mux.Handle("POST /graphql", gql)
	return s, nil
}

// ServeHTTP implements http.Handler. Every request is tracked until it
// returns (Close waits for them), and its context also ends at Close.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		writeRefusal(w, refuse(http.StatusServiceUnavailable, tx.CodeInternal.String(), "the API is closing"))
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(s.ctx, cancel)()
	r = r.WithContext(ctx)
	if r.Method == http.MethodGet && r.URL.Path == "/v1/ws" {
		// The WebSocket handshake hijacks the connection: no wrapping
		// (serveWS counts the request).
		s.mux.ServeHTTP(w, r)
		return
	}
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	if h, pattern := s.mux.Handler(r); pattern == "" {
		unmatched(sw, r, h)
	} else {
		s.mux.ServeHTTP(sw, r)
	}
	pattern := r.Pattern // set by the mux
	if pattern == "" {
		pattern = "unmatched"
	}
	s.m.requests.WithLabelValues(pattern, strconv.Itoa(sw.status)).Inc()
}

// unmatched answers a request no route matches: the mux's own answer (h)
// is plain text, so a 404 or 405 becomes an Error (405 keeps its Allow
// header); any other answer (a redirect to a cleaned path) is the mux's.
func unmatched(w http.ResponseWriter, r *http.Request, h http.Handler) {
	c := &captureWriter{header: http.Header{}}
	h.ServeHTTP(c, r)
	switch c.status {
	case http.StatusNotFound:
		writeRefusal(w, refuse(http.StatusNotFound, CodeNotFound, "no route for %s %s", r.Method, r.URL.Path))
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", c.header.Get("Allow"))
		writeRefusal(w, refuse(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "%s %s: allowed %s", r.Method, r.URL.Path, c.header.Get("Allow")))
	default:
		h.ServeHTTP(w, r)
	}
}

// captureWriter records the status a handler answers, discarding its body.
type captureWriter struct {
	header http.Header
	status int
}

func (c *captureWriter) Header() http.Header { return c.header }

func (c *captureWriter) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
}

func (c *captureWriter) Write(b []byte) (int, error) {
	c.WriteHeader(http.StatusOK)
	return len(b), nil
}

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

// Unwrap lets http.ResponseController reach the connection (Flush).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// apiMetrics are the API's collectors.
type apiMetrics struct {
	requests *prometheus.CounterVec
	ws       prometheus.Gauge
	dropped  prometheus.Counter
}

func newAPIMetrics(reg prometheus.Registerer) (apiMetrics, error) {
	m := apiMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rustorium_api_requests_total", Help: "HTTP API requests, by route pattern and status (a WebSocket upgrade counts as 101).",
		}, []string{"route", "status"}),
		ws: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rustorium_api_websocket_connections", Help: "Open WebSocket connections.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rustorium_api_feed_dropped_total", Help: "Block-feed subscribers dropped for falling a full buffer behind.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.ws, m.dropped} {
			if err := reg.Register(c); err != nil {
				return apiMetrics{}, fmt.Errorf("api: %w", err)
			}
		}
	}
	return m, nil
}

// Serve serves on ln until ctx ends or the Server is closed, then shuts
// the HTTP server down (requests under way get a second to finish; Close
// first to end them at once) and closes ln. Connections are held to the
// Config's Limits: its timeouts, and its caps on open connections.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	l := s.cfg.Limits
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadTimeout,
		WriteTimeout:      l.WriteTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    l.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelWarn),
	}
	ln = newLimitListener(ln, l.MaxConns, l.MaxConnsPerIP)
	failed := make(chan struct{}) // Serve returned on its own
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-ctx.Done():
		case <-s.ctx.Done():
		case <-failed:
		}
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if hs.Shutdown(sctx) != nil {
			hs.Close()
		}
	}()
	err := hs.Serve(ln)
	if !errors.Is(err, http.ErrServerClosed) {
		close(failed)
	}
	<-done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close refuses new requests, ends every wait and WebSocket connection,
// and waits for the requests under way to return. It is safe to call more
// than once.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// refusal is a request refused with an HTTP status and an Error body.
type refusal struct {
	status int
	body   Error
}

func (r *refusal) Error() string { return r.body.Code + ": " + r.body.Error }

func refuse(status int, code, format string, args ...any) *refusal {
	return &refusal{status: status, body: Error{Code: code, Error: fmt.Sprintf(format, args...)}}
}

// refuseTx maps a refused transaction onto an HTTP status.
func refuseTx(err error) *refusal {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || errors.Is(err, sigverify.ErrClosed) {
		return refuse(http.StatusServiceUnavailable, CodeTimeout, "not checked: %v", err)
	}
	code := tx.CodeOf(err)
	if errors.Is(err, p2p.ErrOverloaded) {
		code = tx.CodeOverloaded
	}
	status := http.StatusBadRequest
	switch code {
	case tx.CodeTooLarge:
		status = http.StatusRequestEntityTooLarge
	case tx.CodeOverloaded:
		status = http.StatusServiceUnavailable
	case tx.CodeInternal:
		status = http.StatusInternalServerError
	}
	return refuse(status, code.String(), "%v", err)
}

// submit checks raw as the QUIC ingress does (decoding, stateless checks,
// the signature) and hands it to the node. The channel yields its commit
// receipt once (closed without one if the node stops first).
func (s *Server) submit(ctx context.Context, raw []byte) (p2p.Accepted, <-chan p2p.Committed, *refusal) {
	id := tx.IDOf(raw)
	if s.cfg.Tracer.Sampled(id) {
		var span trace.Span
		ctx, span = s.cfg.Tracer.Start(ctx, id, tracing.AnchorSend, tracing.SpanIngress, time.Now(), tracing.AttrTransport.String("http"))
		defer func() { tracing.End(span, nil) }()
	}
	t, err := p2p.Admit(ctx, s.verify, s.cfg.ChainID, raw)
	if err != nil {
		return p2p.Accepted{}, nil, refuseTx(err)
	}
	acc, ch, err := s.cfg.Backend.Submit(ctx, t, id, raw)
	switch {
	case errors.Is(err, p2p.ErrOverloaded):
		return p2p.Accepted{}, nil, refuseTx(err)
	case err != nil: // the node's failure (the log, a pause), not the client's
		return p2p.Accepted{}, nil, refuse(http.StatusServiceUnavailable, tx.CodeInternal.String(), "%v", err)
	}
	return acc, ch, nil
}

// receipt waits for a submission's commit receipt, at most ReceiptTimeout.
func (s *Server) receipt(ctx context.Context, ch <-chan p2p.Committed) (p2p.Committed, *refusal) {
	t := time.NewTimer(s.cfg.ReceiptTimeout)
	defer t.Stop()
	select {
	case c, ok := <-ch:
		if !ok {
			return p2p.Committed{}, refuse(http.StatusServiceUnavailable, tx.CodeInternal.String(), "the node stopped before the transaction committed")
		}
		return c, nil
	case <-t.C:
		return p2p.Committed{}, refuse(http.StatusGatewayTimeout, CodeTimeout, "no commit receipt after %v", s.cfg.ReceiptTimeout)
	case <-s.ctx.Done():
		return p2p.Committed{}, refuse(http.StatusServiceUnavailable, tx.CodeInternal.String(), "the API is closing")
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return p2p.Committed{}, refuse(http.StatusGatewayTimeout, CodeTimeout, "no commit receipt after %v", s.cfg.ReceiptTimeout)
		}
		return p2p.Committed{}, refuse(http.StatusServiceUnavailable, CodeTimeout, "no commit receipt: %v", ctx.Err())
	}
}

// get reads a state key's committed value with its proof.
func (s *Server) get(ctx context.Context, stateKey []byte) (p2p.Value, *refusal) {
	if len(stateKey) < 2 || len(stateKey) > p2p.MaxStateKey {
		return p2p.Value{}, refuse(http.StatusBadRequest, CodeBadRequest, "state key of %d bytes (2..%d)", len(stateKey), p2p.MaxStateKey)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := s.cfg.Backend.Get(ctx, stateKey)
	if err != nil {
		return p2p.Value{}, refuse(http.StatusServiceUnavailable, tx.CodeInternal.String(), "%v", err)
	}
	return v, nil
}

// readiness runs the node's checks.
func (s *Server) readiness(ctx context.Context) Readiness {
	checks := s.cfg.Backend.Ready(ctx)
	failed := health.Failing(checks)
	r := Readiness{Ready: len(failed) == 0, Checks: checks}
	if !r.Ready {
		var msgs []string
		for _, c := range failed {
			msgs = append(msgs, c.Name+": "+c.Error)
		}
		r.Code, r.Error = CodeNotReady, strings.Join(msgs, "; ")
	}
	return r
}

// status is every shard's committed position, the account view's
// counters and the node's readiness.
func (s *Server) status(ctx context.Context) (Status, *refusal) {
	r := s.readiness(ctx)
	st := Status{Ready: r.Ready, Checks: r.Checks}
	for i := range s.cfg.Backend.Shards() {
		m, err := s.cfg.Backend.ShardMeta(uint32(i))
		if err != nil {
			return Status{}, refuse(http.StatusServiceUnavailable, tx.CodeInternal.String(), "%v", err)
		}
		root := m.Root.Bytes()
		st.Shards = append(st.Shards, ShardStatus{Shard: uint32(i), Height: m.Height, BlockHash: hexOf(m.BlockHash[:]), Root: hexOf(root[:]), NextOffset: m.NextOffset})
	}
	cs := s.cfg.Backend.Views().Stats()
	st.Cache = CacheStatus{Hits: cs.Hits, Misses: cs.Misses, Entries: cs.Entries, Capacity: cs.Capacity}
	return st, nil
}
