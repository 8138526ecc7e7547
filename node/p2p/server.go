package p2p

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"go.opentelemetry.io/otel/trace"

	"github.com/rustorium/rustorium/internal/workers"
	"github.com/rustorium/rustorium/node/sigverify"
	"github.com/rustorium/rustorium/node/tracing"
	"github.com/rustorium/rustorium/node/tx"
)

// Ingress is what the server hands validated transactions to: the node.
type Ingress interface {
	// Submit orders a statelessly valid transaction. It returns when the log
	// has acknowledged it, with a channel that yields its commit receipt once
	// and is then closed (closed without a value if the node stops first).
	// raw is the transaction's canonical encoding and id its hash.
	Submit(ctx context.Context, t *tx.Tx, id tx.ID, raw []byte) (Accepted, <-chan Committed, error)
}

// Reader is implemented by an Ingress that also serves reads (MsgGet).
type Reader interface {
	// Get returns a state key's committed value with its proof.
	Get(ctx context.Context, stateKey []byte) (Value, error)
}

// ServerConfig's defaults.
const (
	// DefaultMaxStreams is ServerConfig.MaxStreams's default.
	DefaultMaxStreams = 16384
	// DefaultMaxClientStreams is ServerConfig.MaxClientStreams's default.
	DefaultMaxClientStreams = 65536
	// DefaultMaxConns is ServerConfig.MaxConns's default.
	DefaultMaxConns = 1024
)

// CodeTooManyConns closes a client connection over ServerConfig.MaxConns.
const CodeTooManyConns quic.ApplicationErrorCode = 0x10

// ErrOverloaded may be returned (wrapped) by Ingress.Submit to tell the client
// to back off; it is sent as tx.CodeOverloaded.
var ErrOverloaded = errors.New("p2p: node overloaded")

// ServerConfig configures a Server.
type ServerConfig struct {
	// Key is the node's identity; its self-signed certificate is served.
	// Required.
	Key ed25519.PrivateKey
	// ChainID is checked on every transaction. Zero is a valid chain id.
	ChainID uint32
	// Ingress receives valid transactions. Required.
	Ingress Ingress
	// PacketConn is the socket to serve on; the server does not close it. Nil
	// listens on a new UDP socket at Addr, which the server owns.
	PacketConn net.PacketConn
	// Addr is used when PacketConn is nil. Empty means "127.0.0.1:0".
	Addr string
	// MaxFrame bounds every frame read. Zero means DefaultMaxFrame.
	MaxFrame int
	// MaxStreams bounds concurrent client streams per connection (each in
	// flight transaction holds one; quic.Config.MaxIncomingStreams). Zero
	// means DefaultMaxStreams (16384).
	MaxStreams int64
	// MaxClientStreams bounds the client streams served at once over all
	// client connections: each holds a goroutine until its last answer
	// (8 KiB of stack and about 6 KiB of heap a stream waiting for its
	// receipt, the client's side included: 1000 such streams in one
	// process, session 48), and a stream's first frame may take 10 s to
	// come, so MaxConns times
	// MaxStreams alone would let a few clients hold millions. A stream over
	// it is answered tx.CodeOverloaded at once and closed, without a
	// goroutine of its own. Zero means DefaultMaxClientStreams (65536).
	MaxClientStreams int64
	// MaxConns bounds the open client connections; one more is closed at
	// once with CodeTooManyConns. Peer connections are not counted (the
	// peer set bounds them). Zero means DefaultMaxConns (1024).
	MaxConns int
	// ReceiptTimeout bounds how long a stream waits for its commit receipt.
	// Zero means 60s.
	ReceiptTimeout time.Duration
	// Logger receives connection-level errors. Nil discards them.
	Logger *slog.Logger
	// OnReject, if set, is called with the code of every rejected request.
	OnReject func(tx.Code)
	// Verifier checks the signatures of submitted transactions, batching
	// concurrent ones. A given one stays the caller's (a node shares its
	// one with its HTTP API). Nil: the server starts one with sigverify's
	// defaults and closes it with itself.
	Verifier *sigverify.Verifier
	// Peer enables the peer protocol (ALPNPeer) on the same socket, with
	// pinned mutual TLS: see PeerConfig and Server.Peers. Nil refuses every
	// peer connection.
	Peer *PeerConfig
	// Tracer traces the submissions of sampled transactions: node.ingress
	// (with node.sigverify, the Ingress's own spans, and node.accept) and
	// node.receipt. Nil traces nothing.
	Tracer *tracing.Tracer
}

func (c *ServerConfig) ensureDefaults() error {
	if len(c.Key) != ed25519.PrivateKeySize {
		return errors.New("p2p: ServerConfig.Key is required")
	}
	if c.Ingress == nil {
		return errors.New("p2p: ServerConfig.Ingress is required")
	}
	if c.Addr == "" {
		c.Addr = "127.0.0.1:0"
	}
	if c.MaxFrame <= 0 {
		c.MaxFrame = DefaultMaxFrame
	}
	if c.MaxStreams <= 0 {
		c.MaxStreams = DefaultMaxStreams
	}
	if c.MaxClientStreams <= 0 {
		c.MaxClientStreams = DefaultMaxClientStreams
	}
	if c.MaxConns <= 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.ReceiptTimeout <= 0 {
		c.ReceiptTimeout = 60 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Server serves the client protocol over QUIC and, when configured, the
// peer protocol on the same UDP socket. The TLS handshake picks the
// protocol by ALPN: a connection offering ALPNPeer must present a client
// certificate over a configured peer's key, and is served only peer frames;
// every other connection is a client's and is served only client frames.
type Server struct {
	cfg       ServerConfig
	verify    *sigverify.Verifier
	ownVerify bool // verify was started by the server: it closes it
	peers     *Peers
	tr        *quic.Transport
	ownPC     net.PacketConn
	ln        *quic.Listener
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	once      sync.Once
	clients   atomic.Int64 // open client connections
	streams   atomic.Int64 // client streams being served
	clientIO  connMeter    // the client connections' bytes

	mu sync.Mutex // orders Serve's wg.Add before Close's cancel (and so its wg.Wait)
}

// Listen starts listening. Call Serve to accept connections and Close to stop.
func Listen(cfg ServerConfig) (*Server, error) {
	if err := cfg.ensureDefaults(); err != nil {
		return nil, err
	}
	cert, err := Certificate(cfg.Key)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg}
	pc := cfg.PacketConn
	if pc == nil {
		if pc, err = net.ListenPacket("udp", cfg.Addr); err != nil {
			return nil, fmt.Errorf("p2p: listen %s: %w", cfg.Addr, err)
		}
		s.ownPC = pc
	}
	// The reset key is derived from the identity, so a node restarted with
	// it resets its peers' connections to its previous run at once.
	resetKey := quic.StatelessResetKey(sha256.Sum256(append([]byte("rustorium/quic-stateless-reset/v1"), cfg.Key.Seed()...)))
	s.tr = &quic.Transport{Conn: pc, StatelessResetKey: &resetKey}
	tlsConf := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{ALPNClient},
		ClientAuth:   tls.RequestClientCert,
		// Clients are not pinned; a certificate they present must still be
		// a well-formed self-signed ed25519 one.
		VerifyPeerCertificate: func(raw [][]byte, chains [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return nil
			}
			return pinnedVerifier(nil)(raw, chains)
		},
	}
	if cfg.Peer != nil {
		self := cfg.Key.Public().(ed25519.PublicKey)
		pcfg := *cfg.Peer
		list, err := pcfg.ensureDefaults(self)
		if err != nil {
			s.closeSockets()
			return nil, err
		}
		s.peers = newPeers(pcfg, list, self, cert, s.tr, cfg.MaxFrame, cfg.Logger)
		tlsConf = serverTLS(tlsConf, &tls.Config{
			MinVersion:   tls.VersionTLS13,
			Certificates: []tls.Certificate{cert},
			NextProtos:   []string{ALPNPeer},
			ClientAuth:   tls.RequireAnyClientCert,
			// No resumption: every peer handshake shows its certificate.
			SessionTicketsDisabled: true,
			VerifyPeerCertificate:  s.peers.verify,
		})
	}
	s.ln, err = s.tr.Listen(tlsConf, &quic.Config{
		MaxIncomingStreams:    cfg.MaxStreams,
		MaxIncomingUniStreams: -1,
		// A client stream's credit goes back with a later reply (credits);
		// a peer connection releases each stream's as it accepts it.
		RequireStreamCreditRelease: true,
		Allow0RTT:                  false,
		KeepAlivePeriod:            10 * time.Second,
	})
	if err != nil {
		if s.peers != nil {
			s.peers.close()
		}
		s.closeSockets()
		return nil, fmt.Errorf("p2p: listen: %w", err)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if s.verify = cfg.Verifier; s.verify == nil {
		s.verify, s.ownVerify = sigverify.New(sigverify.Options{}), true
	}
	return s, nil
}

// serverTLS returns the listener's TLS config: a ClientHello offering
// ALPNPeer gets the peer config (client certificate required and pinned),
// any other gets the client config, whose only protocol is ALPNClient.
func serverTLS(client, peer *tls.Config) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			if slices.Contains(hello.SupportedProtos, ALPNPeer) {
				return peer, nil
			}
			return client, nil
		},
	}
}

// Peers is the peer protocol's side of the server, or nil when
// ServerConfig.Peer was nil.
func (s *Server) Peers() *Peers { return s.peers }

// ClientBytes is what the client protocol's connections (ALPNClient) sent
// and received since the server started, the open ones included. A
// connection refused over MaxConns is not counted.
func (s *Server) ClientBytes() WireBytes { return s.clientIO.total() }

// PeerBytes is what the peer protocol's connections sent and received since
// the server started: the ones this node dialed and the ones it accepted,
// the open ones included. Zero without the peer protocol.
func (s *Server) PeerBytes() WireBytes {
	if s.peers == nil {
		return WireBytes{}
	}
	return s.peers.io.total()
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve accepts connections until ctx is done or the server is closed. It
// returns nil in both cases.
func (s *Server) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, s.cancel)
	defer stop()
	for {
		conn, err := s.ln.Accept(s.ctx)
		if err != nil {
			if s.ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, quic.ErrServerClosed) {
				return nil
			}
			return fmt.Errorf("p2p: accept: %w", err)
		}
		s.mu.Lock()
		if s.ctx.Err() != nil { // closing
			s.mu.Unlock()
			_ = conn.CloseWithError(0, "server closing")
			return nil
		}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.serveConn(conn)
		}()
	}
}

func (s *Server) serveConn(conn *quic.Conn) {
	if conn.ConnectionState().TLS.NegotiatedProtocol == ALPNPeer {
		if s.peers == nil { // the handshake refuses it first
			_ = conn.CloseWithError(peerCodeNotAPeer, "no peer protocol")
			return
		}
		s.peers.serveConn(s.ctx, conn)
		return
	}
	if s.clients.Add(1) > int64(s.cfg.MaxConns) {
		s.clients.Add(-1)
		_ = conn.CloseWithError(CodeTooManyConns, "too many connections")
		return
	}
	defer s.clients.Add(-1)
	defer s.clientIO.track(conn)() // after the close below
	defer conn.CloseWithError(0, "")
	cr := newCredits(s.cfg.MaxStreams)
	streams := workers.New(idleStreamWorkers, &s.wg, s.serveStream)
	defer streams.Close() // the idle workers end; busy ones when done
	for {
		st, err := conn.AcceptStream(s.ctx)
		if err != nil {
			return
		}
		cs := clientStream{st: st, credits: cr}
		if s.streams.Add(1) > s.cfg.MaxClientStreams {
			s.streams.Add(-1)
			s.refuse(cs)
			continue
		}
		streams.Go(cs)
	}
}

// idleStreamWorkers is how many goroutines a client connection keeps
// waiting for its next stream. Its streams are served by goroutines that
// outlive them (internal/workers), instead of a fresh goroutine for every
// stream (until session 44): a stream's handler grows its stack three
// times (quic-go's read, the signature check's point decoding and lattice
// reduction), and on a fresh goroutine each growth copies the stack — 9%
// of `make run`'s CPU in Go's profile, 3.7% in perf's — where a worker
// keeps the stack it grew. One accept loop hands them out: quic-go's
// AcceptStream wakes one waiter per signal, so concurrent callers could
// leave an accepted stream waiting.
const idleStreamWorkers = 16

// clientStream is a client's request stream and its connection's credits.
type clientStream struct {
	st      *quic.Stream
	credits *credits
}

// write writes one reply frame, releasing the credits due with it.
func (cs clientStream) write(typ MsgType, p []byte) error {
	cs.credits.reply()
	return WriteFrame(cs.st, typ, p)
}

// serveStream answers one request. Any malformed input ends this stream
// only, with an error frame when the stream can still carry one.
func (s *Server) serveStream(cs clientStream) {
	st := cs.st
	defer s.streams.Add(-1)
	defer cs.credits.finish(st)
	defer st.Close()
	now := time.Now()
	_ = st.SetReadDeadline(now.Add(10 * time.Second))
	typ, p, err := ReadFrame(st, s.cfg.MaxFrame)
	if err != nil {
		s.reject(cs, tx.CodeEncoding, err.Error())
		st.CancelRead(1)
		return
	}
	switch typ {
	case MsgEcho:
		_ = cs.write(MsgEcho, p)
	case MsgSubmit:
		s.submit(cs, p, now)
	case MsgGet:
		s.get(cs, p)
	default:
		s.reject(cs, tx.CodeEncoding, fmt.Sprintf("%v: %v", ErrUnexpected, typ))
	}
}

// Admit runs a submitted transaction's ingress checks, the same for every
// transport: its encoding, the stateless checks for chainID, and its
// signature on v (batched with whatever else v is checking). An error is
// one of tx's (map it with tx.CodeOf), or ctx's, or sigverify.ErrClosed.
func Admit(ctx context.Context, v *sigverify.Verifier, chainID uint32, raw []byte) (*tx.Tx, error) {
	t, err := tx.Decode(raw)
	if err != nil {
		return nil, err
	}
	if err := t.Check(chainID); err != nil {
		return nil, err
	}
	var t0 time.Time
	traced := tracing.Recording(ctx)
	if traced {
		t0 = time.Now()
	}
	ok, batch, err := v.VerifyBatch(ctx, t.From, t.SigningBytes(), t.Sig)
	if traced {
		tracing.Child(ctx, tracing.SpanSigVerify, t0, time.Now(), tracing.AttrBatch.Int(batch))
	}
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, tx.ErrSignature
	}
	return t, nil
}

// submit admits a transaction that arrived at arrived, hands it to the
// Ingress and answers accepted, then committed.
func (s *Server) submit(cs clientStream, raw []byte, arrived time.Time) {
	id := tx.IDOf(raw)
	ctx := s.ctx
	var span trace.Span
	if s.cfg.Tracer.Sampled(id) {
		ctx, span = s.cfg.Tracer.Start(ctx, id, tracing.AnchorSend, tracing.SpanIngress, arrived, tracing.AttrTransport.String("quic"))
	}
	t, err := Admit(ctx, s.verify, s.cfg.ChainID, raw)
	if err != nil {
		s.reject(cs, tx.CodeOf(err), err.Error())
		tracing.End(span, err)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ReceiptTimeout)
	defer cancel()
	acc, receipts, err := s.cfg.Ingress.Submit(ctx, t, id, raw)
	if err != nil {
		code := tx.CodeInternal
		if errors.Is(err, ErrOverloaded) {
			code = tx.CodeOverloaded
		}
		s.reject(cs, code, err.Error())
		tracing.End(span, err)
		return
	}
	var t0 time.Time
	if span != nil {
		t0 = time.Now()
	}
	err = cs.write(MsgAccepted, acc.AppendTo(nil))
	if span != nil {
		now := time.Now()
		tracing.Child(ctx, tracing.SpanAccept, t0, now)
		tracing.End(span, err, trace.WithTimestamp(now))
	}
	if err != nil {
		return
	}
	select {
	case c, ok := <-receipts:
		if !ok {
			s.reject(cs, tx.CodeInternal, "node stopped before the transaction committed")
			return
		}
		if span != nil {
			t0 = time.Now()
		}
		_ = cs.write(MsgCommitted, c.AppendTo(nil))
		if span != nil {
			s.cfg.Tracer.Record(id, tracing.AnchorCommit, tracing.SpanReceipt, t0, time.Now(), tracing.AttrHeight.Int64(int64(c.Height)))
		}
	case <-cs.st.Context().Done():
		// The client stopped reading (Call.Abort, its context ended): no
		// one waits for the receipt, and the stream's goroutine and its
		// place under MaxClientStreams go back now, not at ReceiptTimeout.
	case <-ctx.Done():
		s.reject(cs, tx.CodeInternal, "no commit receipt: "+ctx.Err().Error())
	}
}

func (s *Server) get(cs clientStream, key []byte) {
	r, ok := s.cfg.Ingress.(Reader)
	switch {
	case !ok:
		s.reject(cs, tx.CodeUnknownKind, "this node serves no reads")
		return
	case len(key) < 2 || len(key) > MaxStateKey:
		s.reject(cs, tx.CodeEncoding, fmt.Sprintf("state key of %d bytes (2..%d)", len(key), MaxStateKey))
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	v, err := r.Get(ctx, key)
	if err != nil {
		s.reject(cs, tx.CodeOf(err), err.Error())
		return
	}
	_ = cs.write(MsgValue, v.AppendTo(nil))
}

// refuse answers a stream over MaxClientStreams overloaded, on the
// connection's accept loop: the frame is small, and a client that does not
// read it holds the loop at most refuseTimeout.
func (s *Server) refuse(cs clientStream) {
	_ = cs.st.SetWriteDeadline(time.Now().Add(refuseTimeout))
	s.reject(cs, tx.CodeOverloaded, fmt.Sprintf("%d client streams in flight, the node's most", s.cfg.MaxClientStreams))
	cs.st.CancelRead(0)
	_ = cs.st.Close()
	cs.credits.finish(cs.st)
}

// refuseTimeout bounds the write of a refusal on a connection's accept loop.
const refuseTimeout = 100 * time.Millisecond

func (s *Server) reject(cs clientStream, code tx.Code, msg string) {
	if s.cfg.OnReject != nil {
		s.cfg.OnReject(code)
	}
	e := RejectError{Code: code, Msg: msg}
	_ = cs.write(MsgError, e.AppendTo(nil))
}

// Close stops accepting, ends every connection and waits for the server's
// goroutines. It is safe to call more than once.
func (s *Server) Close() error {
	s.once.Do(func() {
		s.mu.Lock()
		s.cancel() // under mu: Serve adds to wg only before this
		s.mu.Unlock()
		_ = s.ln.Close()
		if s.peers != nil {
			s.peers.close()
		}
		s.wg.Wait()
		if s.ownVerify {
			_ = s.verify.Close()
		}
		s.closeSockets()
	})
	return nil
}

func (s *Server) closeSockets() {
	_ = s.tr.Close()
	if s.ownPC != nil {
		_ = s.ownPC.Close()
	}
}
