package p2p

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/rustorium/rustorium/internal/retry"
)

// Peer protocol messages (ALPNPeer). They are numbered from 16 up so that
// no client protocol message is ever valid on a peer stream (and the
// client server rejects these).
//
// The protocol: the dialer presents its certificate; the accepting node
// checks its key against the peer set and, if it is a peer, opens a
// unidirectional stream carrying the one byte peerWelcome. Only then does
// the dialer count the connection as up (in TLS 1.3 the client finishes
// its handshake before the server has checked the client's certificate, so
// without it a refused dialer could not tell). The dialer then opens one
// long-lived bidirectional stream and writes frames on it; the accepting
// node never answers on it.
const (
	// MsgAttest carries one consensus.Attestation encoding.
	MsgAttest MsgType = 16
	// MsgAttestWant asks a peer for its attestations of one shard from a
	// height up: 4 bytes shard, 8 bytes height, big-endian. A node whose
	// shard waits for a height to become final sends it, so it catches up
	// on votes it missed while it was down or cut off.
	MsgAttestWant MsgType = 17
)

// firstPeerMsg is the lowest peer protocol message type.
const firstPeerMsg = MsgAttest

// peerWelcome is the accepting node's one-byte welcome, its protocol
// version.
const peerWelcome = 1

// Errors of the peer protocol.
var (
	// ErrUnknownPeer: a key outside the configured peer set.
	ErrUnknownPeer = errors.New("p2p: unknown peer")
	// ErrQueueFull: a peer's send queue is full; the frame was dropped (and
	// counted in PeerStats.Dropped).
	ErrQueueFull = errors.New("p2p: peer queue full")
	// ErrClosed: the peer set is closed.
	ErrClosed = errors.New("p2p: closed")
)

// Stream and connection error codes the peer protocol uses.
const (
	peerCodeClosing    quic.ApplicationErrorCode = 0
	peerCodeBadFrame   quic.StreamErrorCode      = 1
	peerCodeWriteStuck quic.StreamErrorCode      = 2
	peerCodeNotAPeer   quic.ApplicationErrorCode = 3
)

// Peer is one member of the cluster as this node sees it.
type Peer struct {
	// Key pins the peer's identity: only a connection presenting it is
	// accepted from it, and a dial to Addr succeeds only if it presents it.
	Key ed25519.PublicKey
	// Addr is the peer's QUIC listener, "host:port". It is resolved at each
	// dial, so a restarted peer may come back under a new address only if
	// the name resolves to it.
	Addr string
}

// PeerHandler receives a frame from a peer whose key TLS verified. It is
// called from one goroutine per incoming stream, so concurrently for
// different peers, in order for one peer; it should hand the message off
// quickly (a blocked handler stalls that peer's stream, and then its sender
// drops frames). payload is the handler's to keep. A non-nil error counts
// the frame as bad (PeerStats.BadFrames) and resets that stream; the peer
// reconnects the stream and goes on.
type PeerHandler func(from ed25519.PublicKey, typ MsgType, payload []byte) error

// PeerConfig enables the peer protocol on a Server (ServerConfig.Peer).
//
// Each node sends on the connection it dialed and receives on the
// connections it accepted, so a pair of nodes holds two QUIC connections,
// one per direction, and simultaneous dials never need to be resolved.
// Delivery is best-effort: frames queued or in flight when a connection
// fails are lost (and counted), so the protocol above must tolerate loss,
// e.g. by sending its open state again from OnConnect.
type PeerConfig struct {
	// Peers is the cluster. An entry with the server's own key is skipped,
	// so every node can be given the same list. Keys must be distinct
	// ed25519 public keys and Addr is required. Empty means no peers: every
	// peer connection is refused.
	Peers []Peer
	// Handler receives peer frames. Required.
	Handler PeerHandler
	// QueueLen bounds each peer's send queue, in frames. A frame sent to a
	// full queue is dropped and counted. Zero means 1024.
	QueueLen int
	// DialTimeout bounds one connection attempt. Zero means 3s.
	DialTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between failed connection
	// attempts, which doubles from Min to Max. Zero means 50ms and 5s.
	MinBackoff, MaxBackoff time.Duration
	// WriteTimeout bounds how long a sender waits for a peer to take a
	// batch of frames (QUIC flow control); then the stream is reset and the
	// batch dropped. Zero means 10s.
	WriteTimeout time.Duration
	// OnConnect, if set, is called with a peer's key each time a connection
	// to it is established (the first time and after every reconnect), from
	// that peer's sender goroutine. It may call Send and Broadcast (they do
	// not block) but must not block itself.
	OnConnect func(peer ed25519.PublicKey)
}

func (c *PeerConfig) ensureDefaults(self ed25519.PublicKey) ([]Peer, error) {
	if c.Handler == nil {
		return nil, errors.New("p2p: PeerConfig.Handler is required")
	}
	if c.QueueLen <= 0 {
		c.QueueLen = 1024
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 3 * time.Second
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = 50 * time.Millisecond
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 5 * time.Second
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = c.MinBackoff
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	var errs []error
	var peers []Peer
	seen := map[string]bool{}
	for i, p := range c.Peers {
		if len(p.Key) != ed25519.PublicKeySize {
			errs = append(errs, fmt.Errorf("peer %d: key is not an ed25519 public key", i))
			continue
		}
		if seen[string(p.Key)] {
			errs = append(errs, fmt.Errorf("peer %d: key %x listed twice", i, []byte(p.Key)))
		}
		seen[string(p.Key)] = true
		if p.Key.Equal(self) {
			continue
		}
		if p.Addr == "" {
			errs = append(errs, fmt.Errorf("peer %d: address is required", i))
		}
		peers = append(peers, Peer{Key: append(ed25519.PublicKey(nil), p.Key...), Addr: p.Addr})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("p2p: peer config: %w", err)
	}
	return peers, nil
}

// PeerStats describes one peer.
type PeerStats struct {
	Key       ed25519.PublicKey
	Addr      string
	Connected bool   // an outgoing connection is up
	Queued    int    // frames waiting in the send queue
	Sent      uint64 // frames written to the outgoing stream
	Dropped   uint64 // frames dropped: queue full, or lost with a failed stream
	Received  uint64 // frames delivered to the handler
	BadFrames uint64 // frames that broke the protocol or that the handler refused
	Dials     uint64 // connections established
	DialFails uint64 // connection attempts that failed
}

// Peers is the peer side of a Server: one sender per peer, owning the
// outgoing connection (dialed lazily from the server's socket, redialed
// with backoff once it was up), and the readers of the peer connections the
// server accepts. Get it from Server.Peers; the server closes it.
type Peers struct {
	cfg      PeerConfig
	self     ed25519.PublicKey
	cert     tls.Certificate
	tr       *quic.Transport
	maxFrame int
	log      *slog.Logger
	list     []*peer
	byKey    map[string]*peer
	io       connMeter // the peer connections' bytes, dialed and accepted

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // senders
}

type peer struct {
	Peer
	q         chan []byte
	connected atomic.Bool
	// counters, see PeerStats
	sent, dropped, received, bad, dials, dialFails atomic.Uint64
}

func newPeers(cfg PeerConfig, peers []Peer, self ed25519.PublicKey, cert tls.Certificate, tr *quic.Transport, maxFrame int, log *slog.Logger) *Peers {
	p := &Peers{cfg: cfg, self: self, cert: cert, tr: tr, maxFrame: maxFrame, log: log, byKey: map[string]*peer{}}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	for _, x := range peers {
		pc := &peer{Peer: x, q: make(chan []byte, cfg.QueueLen)}
		p.list = append(p.list, pc)
		p.byKey[string(x.Key)] = pc
	}
	for _, pc := range p.list {
		p.wg.Add(1)
		go p.sender(pc)
	}
	return p
}

// Keys returns the peers' keys, in configuration order (without this node).
func (p *Peers) Keys() []ed25519.PublicKey {
	out := make([]ed25519.PublicKey, len(p.list))
	for i, pc := range p.list {
		out[i] = pc.Key
	}
	return out
}

// Broadcast queues one frame for every peer without blocking: a peer whose
// queue is full misses it (PeerStats.Dropped). It returns an error only for
// a frame that can never be sent: a type below MsgAttest (the client
// protocol), a frame larger than the server's MaxFrame, or a closed set.
func (p *Peers) Broadcast(typ MsgType, payload []byte) error {
	f, err := p.frame(typ, payload)
	if err != nil {
		return err
	}
	for _, pc := range p.list {
		pc.enqueue(f)
	}
	return nil
}

// Send queues one frame for the peer with key to, without blocking. It
// returns ErrQueueFull when the frame was dropped, ErrUnknownPeer for a key
// outside the set, and Broadcast's errors.
func (p *Peers) Send(to ed25519.PublicKey, typ MsgType, payload []byte) error {
	pc := p.byKey[string(to)]
	if pc == nil {
		return fmt.Errorf("%w: %x", ErrUnknownPeer, []byte(to))
	}
	f, err := p.frame(typ, payload)
	if err != nil {
		return err
	}
	if !pc.enqueue(f) {
		return fmt.Errorf("%w: %x", ErrQueueFull, []byte(to))
	}
	return nil
}

func (p *Peers) frame(typ MsgType, payload []byte) ([]byte, error) {
	switch {
	case p.ctx.Err() != nil:
		return nil, ErrClosed
	case typ < firstPeerMsg:
		return nil, fmt.Errorf("%w: %v is not a peer message", ErrUnexpected, typ)
	case 1+len(payload) > p.maxFrame:
		return nil, fmt.Errorf("%w: %d bytes > %d", ErrFrameTooLarge, 1+len(payload), p.maxFrame)
	}
	return AppendFrame(make([]byte, 0, frameHeader+1+len(payload)), typ, payload), nil
}

func (pc *peer) enqueue(f []byte) bool {
	select {
	case pc.q <- f:
		return true
	default:
		pc.dropped.Add(1)
		return false
	}
}

// Stats returns a snapshot of every peer's counters, in configuration order.
func (p *Peers) Stats() []PeerStats {
	out := make([]PeerStats, len(p.list))
	for i, pc := range p.list {
		out[i] = PeerStats{
			Key: pc.Key, Addr: pc.Addr, Connected: pc.connected.Load(), Queued: len(pc.q),
			Sent: pc.sent.Load(), Dropped: pc.dropped.Load(), Received: pc.received.Load(),
			BadFrames: pc.bad.Load(), Dials: pc.dials.Load(), DialFails: pc.dialFails.Load(),
		}
	}
	return out
}

// close stops the senders, closing their connections, and waits for them;
// it also closes the accepted peer connections, whose readers run on (and
// are waited for by) the server's goroutines. Safe to call more than once.
func (p *Peers) close() {
	p.cancel()
	p.wg.Wait()
}

// verify is the peer TLS config's VerifyPeerCertificate: the remote must
// present a self-signed ed25519 certificate over one of the peers' keys.
// Unlike pinnedVerifier, an empty set refuses everyone.
func (p *Peers) verify(raw [][]byte, _ [][]*x509.Certificate) error {
	pub, err := certKey(raw)
	if err != nil {
		return err
	}
	if p.byKey[string(pub)] == nil {
		return fmt.Errorf("%w: %x is not a peer", ErrPeerKey, []byte(pub))
	}
	return nil
}

// sender owns pc's outgoing connection: it dials when the first frame is
// queued, writes queued frames in batches on one stream, and once it has
// been connected, reconnects with backoff whenever the connection ends.
func (p *Peers) sender(pc *peer) {
	defer p.wg.Done()
	l := &link{p: p, pc: pc, backoff: retry.Backoff{Min: p.cfg.MinBackoff, Max: p.cfg.MaxBackoff}}
	var (
		batch   []byte // frames taken from the queue, not yet written
		nframes uint64
	)
	defer func() {
		l.drop()
		pc.dropped.Add(nframes)
	}()
	for {
		if l.conn == nil && (nframes > 0 || l.wasUp) {
			if !l.dial() {
				return
			}
			if l.conn == nil {
				continue // failed: again after the backoff
			}
		}
		if nframes == 0 {
			select {
			case <-p.ctx.Done():
				return
			case f := <-pc.q:
				batch, nframes = append(batch[:0], f...), 1
			case <-l.dead():
				l.lost()
			}
			continue
		}
		batch, nframes = p.more(pc, batch, nframes)
		if l.st == nil {
			if !l.openStream() {
				return
			}
			if l.st == nil {
				continue // lost: the batch goes on the next connection
			}
		}
		l.write(batch, nframes)
		batch, nframes = batch[:0], 0
		if cap(batch) > 4*p.maxFrame {
			batch = nil // do not keep a burst's buffer
		}
	}
}

// more appends to batch what else is queued for pc, up to about a frame's
// worth more.
func (p *Peers) more(pc *peer, batch []byte, nframes uint64) ([]byte, uint64) {
	for len(batch) < p.maxFrame {
		select {
		case f := <-pc.q:
			batch = append(batch, f...)
			nframes++
		default:
			return batch, nframes
		}
	}
	return batch, nframes
}

// link is a sender's connection to its peer, owned by the sender's
// goroutine. Its methods that report a bool report false once the Peers
// close.
type link struct {
	p       *Peers
	pc      *peer
	conn    *quic.Conn // nil while down
	st      *quic.Stream
	unhook  func() bool
	untrack func() // keeps the connection's final bytes (connMeter.track)
	backoff retry.Backoff
	wait    bool // the last dial failed or the connection was lost: back off first
	wasUp   bool // connected once: reconnect even with nothing to send
}

// dial connects to the peer, after the backoff if it is due. A failed
// attempt leaves conn nil.
func (l *link) dial() bool {
	p, pc := l.p, l.pc
	if l.wait && retry.Sleep(p.ctx, l.backoff.Next()) != nil {
		return false
	}
	c, err := p.dial(pc)
	if err != nil {
		if p.ctx.Err() != nil {
			return false
		}
		pc.dialFails.Add(1)
		p.log.Debug("peer dial failed", "peer", fmt.Sprintf("%x", []byte(pc.Key[:8])), "addr", pc.Addr, "err", err)
		l.wait = true
		return true
	}
	l.conn, l.wait, l.wasUp = c, false, true
	l.untrack = p.io.track(c)
	l.backoff.Reset()
	// Close unblocks a write stuck on a peer that does not read.
	l.unhook = context.AfterFunc(p.ctx, func() { _ = c.CloseWithError(peerCodeClosing, "") })
	pc.dials.Add(1)
	pc.connected.Store(true)
	if p.cfg.OnConnect != nil {
		p.cfg.OnConnect(pc.Key)
	}
	return true
}

// dead is closed when the connection ends; nil while down.
func (l *link) dead() <-chan struct{} {
	if l.conn == nil {
		return nil
	}
	return l.conn.Context().Done()
}

// drop closes the connection, if any.
func (l *link) drop() {
	if l.conn != nil {
		l.unhook()
		_ = l.conn.CloseWithError(peerCodeClosing, "")
		l.untrack()
	}
	l.conn, l.st = nil, nil
	l.pc.connected.Store(false)
}

// lost drops a connection that ended or failed: the next dial backs off
// from the minimum.
func (l *link) lost() {
	l.drop()
	l.backoff.Reset()
	l.wait = true
}

// openStream opens the stream frames go on. A connection that cannot open
// one is of no use: it is dropped, leaving st nil.
func (l *link) openStream() bool {
	ctx, cancel := context.WithTimeout(l.p.ctx, l.p.cfg.DialTimeout)
	s, err := l.conn.OpenStreamSync(ctx)
	cancel()
	if err != nil {
		if l.p.ctx.Err() != nil {
			return false
		}
		l.lost()
		return true
	}
	l.st = s
	return true
}

// write writes a batch of nframes frames on the stream. A batch the peer
// does not take within WriteTimeout is dropped with its stream.
func (l *link) write(batch []byte, nframes uint64) {
	_ = l.st.SetWriteDeadline(time.Now().Add(l.p.cfg.WriteTimeout))
	if _, err := l.st.Write(batch); err != nil {
		l.pc.dropped.Add(nframes)
		l.st.CancelWrite(peerCodeWriteStuck)
		l.st = nil
		if l.conn.Context().Err() != nil {
			l.lost()
		}
		return
	}
	l.pc.sent.Add(nframes)
}

func (p *Peers) dial(pc *peer) (*quic.Conn, error) {
	addr, err := net.ResolveUDPAddr("udp", pc.Addr)
	if err != nil {
		return nil, fmt.Errorf("p2p: resolve %s: %w", pc.Addr, err)
	}
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.DialTimeout)
	defer cancel()
	pinned := pc.Key
	tlsConf := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{p.cert},
		NextProtos:   []string{ALPNPeer},
		ServerName:   "rustorium",
		// Self-signed: the identity is the pinned key, checked here, not a
		// CA chain.
		InsecureSkipVerify:    true,
		VerifyPeerCertificate: pinnedVerifier([]ed25519.PublicKey{pinned}),
	}
	conn, err := p.tr.Dial(ctx, addr, tlsConf, &quic.Config{
		HandshakeIdleTimeout:  p.cfg.DialTimeout,
		MaxIdleTimeout:        10 * time.Second,
		KeepAlivePeriod:       2 * time.Second,
		MaxIncomingStreams:    -1, // the accepting side opens only the welcome
		MaxIncomingUniStreams: 1,
	})
	if err != nil {
		return nil, err
	}
	if err := awaitWelcome(ctx, conn); err != nil {
		_ = conn.CloseWithError(peerCodeClosing, "")
		return nil, fmt.Errorf("p2p: peer %s did not accept this node: %w", pc.Addr, err)
	}
	return conn, nil
}

func awaitWelcome(ctx context.Context, conn *quic.Conn) error {
	st, err := conn.AcceptUniStream(ctx)
	if err != nil {
		return err
	}
	defer st.CancelRead(0)
	var b [1]byte
	if _, err := io.ReadFull(st, b[:]); err != nil {
		return err
	}
	if b[0] != peerWelcome {
		return fmt.Errorf("%w: welcome %d", ErrUnexpected, b[0])
	}
	return nil
}

// serveConn reads an accepted peer connection until it or ctx ends. It runs
// on a server goroutine.
func (p *Peers) serveConn(ctx context.Context, conn *quic.Conn) {
	pc := p.byKey[string(RemoteKey(conn.ConnectionState().TLS))]
	if pc == nil { // TLS verification makes this unreachable
		_ = conn.CloseWithError(peerCodeNotAPeer, "not a peer")
		return
	}
	var wg sync.WaitGroup
	defer p.io.track(conn)() // after the readers ended
	defer wg.Wait()          // after the close below, which ends the readers
	defer conn.CloseWithError(peerCodeClosing, "")
	stop := context.AfterFunc(p.ctx, func() { _ = conn.CloseWithError(peerCodeClosing, "") })
	defer stop()
	w, err := conn.OpenUniStream()
	if err != nil {
		return
	}
	_, _ = w.Write([]byte{peerWelcome})
	_ = w.Close()
	for {
		st, err := conn.AcceptStream(ctx)
		if err != nil {
			return
		}
		st.ReleaseStreamCredit() // the listener's config defers it (credits)
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.readStream(pc, st)
		}()
	}
}

// readStream delivers one incoming stream's frames. A frame that breaks the
// protocol resets this stream only.
func (p *Peers) readStream(pc *peer, st *quic.Stream) {
	defer st.CancelWrite(0) // the receiver never writes
	for {
		typ, payload, err := ReadFrame(st, p.maxFrame)
		switch {
		case err == io.EOF:
			return
		case errors.Is(err, ErrFrameTooLarge) || errors.Is(err, ErrFrameEmpty) || errors.Is(err, ErrFrameTruncated):
		case err != nil:
			return // the stream or connection ended
		case typ < firstPeerMsg:
			err = fmt.Errorf("%w: %v on a peer stream", ErrUnexpected, typ)
		default:
			if err = p.cfg.Handler(pc.Key, typ, payload); err == nil {
				pc.received.Add(1)
				continue
			}
		}
		pc.bad.Add(1)
		p.log.Warn("bad frame from peer", "peer", fmt.Sprintf("%x", []byte(pc.Key[:8])), "err", err)
		st.CancelRead(peerCodeBadFrame)
		return
	}
}
