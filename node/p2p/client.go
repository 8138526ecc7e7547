package p2p

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
)

// ClientConfig configures a client connection.
type ClientConfig struct {
	// ServerKey pins the node's identity. Nil accepts any node that presents a
	// self-signed ed25519 certificate.
	ServerKey ed25519.PublicKey
	// Key is the client's identity, presented as a client certificate. Nil
	// generates a fresh one.
	Key ed25519.PrivateKey
	// PacketConn is the socket to dial from; the client does not close it.
	// Nil opens a new UDP socket on 127.0.0.1:0 (or [::]:0 for non-loopback
	// servers), which the client owns.
	PacketConn net.PacketConn
	// MaxFrame bounds every frame read. Zero means DefaultMaxFrame.
	MaxFrame int
}

// Client is one QUIC connection to a node speaking the client protocol. It
// is safe for concurrent use: each Submit opens its own stream.
type Client struct {
	conn     *quic.Conn
	tr       *quic.Transport
	ownPC    net.PacketConn
	maxFrame int
	once     sync.Once
}

// Dial connects to the node at addr ("host:port").
func Dial(ctx context.Context, addr string, cfg ClientConfig) (*Client, error) {
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("p2p: resolve %s: %w", addr, err)
	}
	key := cfg.Key
	if key == nil {
		if _, key, err = ed25519.GenerateKey(rand.Reader); err != nil {
			return nil, err
		}
	}
	cert, err := Certificate(key)
	if err != nil {
		return nil, err
	}
	c := &Client{maxFrame: cfg.MaxFrame}
	if c.maxFrame <= 0 {
		c.maxFrame = DefaultMaxFrame
	}
	pc := cfg.PacketConn
	if pc == nil {
		local := "127.0.0.1:0"
		if !raddr.IP.IsLoopback() {
			local = ":0"
		}
		if pc, err = net.ListenPacket("udp", local); err != nil {
			return nil, fmt.Errorf("p2p: client socket: %w", err)
		}
		c.ownPC = pc
	}
	c.tr = &quic.Transport{Conn: pc}
	var pinned []ed25519.PublicKey
	if cfg.ServerKey != nil {
		pinned = []ed25519.PublicKey{cfg.ServerKey}
	}
	tlsConf := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{ALPNClient},
		ServerName:   "rustorium",
		// The certificate is self-signed: identity is the pinned key, checked
		// by VerifyPeerCertificate, not a CA chain.
		InsecureSkipVerify:    true,
		VerifyPeerCertificate: pinnedVerifier(pinned),
	}
	c.conn, err = c.tr.Dial(ctx, raddr, tlsConf, &quic.Config{KeepAlivePeriod: 5 * time.Second})
	if err != nil {
		c.closeSockets()
		return nil, fmt.Errorf("p2p: dial %s: %w", addr, err)
	}
	return c, nil
}

// ServerKey returns the key the node presented.
func (c *Client) ServerKey() ed25519.PublicKey { return RemoteKey(c.conn.ConnectionState().TLS) }

// Call is one submitted transaction's stream.
type Call struct {
	st       *quic.Stream
	maxFrame int
	// ctx, when set, ends the stream when it is done (stop unregisters
	// that): a Submit's calls are bounded by their context this way rather
	// than by a stream deadline, for which quic-go arms a timer on every
	// blocking read.
	ctx  context.Context
	stop func() bool
}

// Submit opens a stream and sends the encoded transaction. Read the receipts
// with Accepted and then Committed. The context bounds the whole call: when
// it ends, the stream is cancelled and a waiting read fails with the
// context's error.
func (c *Client) Submit(ctx context.Context, raw []byte) (*Call, error) {
	st, err := c.conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, fmt.Errorf("p2p: open stream: %w", err)
	}
	k := &Call{st: st, maxFrame: c.maxFrame, ctx: ctx}
	k.stop = context.AfterFunc(ctx, func() {
		st.CancelRead(0)
		st.CancelWrite(0)
	})
	if err := WriteFrame(st, MsgSubmit, raw); err != nil {
		k.end()
		return nil, fmt.Errorf("p2p: send: %w", k.cause(err))
	}
	_ = st.Close() // nothing more to send
	return k, nil
}

// end releases the call's stream: no more reads.
func (k *Call) end() {
	if k.stop != nil {
		k.stop()
	}
	k.st.CancelRead(0)
}

// cause adds the call's context error to a stream error it caused.
func (k *Call) cause(err error) error {
	if k.ctx != nil && k.ctx.Err() != nil {
		return fmt.Errorf("%w: %w", k.ctx.Err(), err)
	}
	return err
}

// next reads the next frame and turns an error frame into a *RejectError.
func (k *Call) next(want MsgType) ([]byte, error) {
	typ, p, err := ReadFrame(k.st, k.maxFrame)
	if err != nil {
		k.end()
		return nil, k.cause(err)
	}
	switch typ {
	case want:
		return p, nil
	case MsgError:
		k.end()
		rej, err := DecodeError(p)
		if err != nil {
			return nil, err
		}
		return nil, rej
	default:
		k.end()
		return nil, fmt.Errorf("%w: %v, want %v", ErrUnexpected, typ, want)
	}
}

// Accepted waits for the node to acknowledge that the log holds the
// transaction.
func (k *Call) Accepted() (Accepted, error) {
	p, err := k.next(MsgAccepted)
	if err != nil {
		return Accepted{}, err
	}
	return DecodeAccepted(p)
}

// Committed waits for the commit receipt. Call it after Accepted.
func (k *Call) Committed() (Committed, error) {
	p, err := k.next(MsgCommitted)
	if err != nil {
		return Committed{}, err
	}
	k.end()
	return DecodeCommitted(p)
}

// Abort gives up on the call.
func (k *Call) Abort() { k.end() }

// Echo sends payload and waits for the node to send it back: one QUIC round
// trip through the node's server with no node logic.
func (c *Client) Echo(ctx context.Context, payload []byte) error {
	st, err := c.conn.OpenStreamSync(ctx)
	if err != nil {
		return fmt.Errorf("p2p: open stream: %w", err)
	}
	defer st.CancelRead(0)
	if d, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(d)
	}
	if err := WriteFrame(st, MsgEcho, payload); err != nil {
		return err
	}
	_ = st.Close()
	k := &Call{st: st, maxFrame: c.maxFrame}
	p, err := k.next(MsgEcho)
	if err != nil {
		return err
	}
	if !bytes.Equal(p, payload) {
		return errors.New("p2p: echo came back different")
	}
	return nil
}

// Get reads a state key's committed value, with its proof, on a stream of
// its own.
func (c *Client) Get(ctx context.Context, stateKey []byte) (Value, error) {
	st, err := c.conn.OpenStreamSync(ctx)
	if err != nil {
		return Value{}, fmt.Errorf("p2p: open stream: %w", err)
	}
	defer st.CancelRead(0)
	if d, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(d)
	}
	if err := WriteFrame(st, MsgGet, stateKey); err != nil {
		return Value{}, err
	}
	_ = st.Close()
	k := &Call{st: st, maxFrame: c.maxFrame}
	p, err := k.next(MsgValue)
	if err != nil {
		return Value{}, err
	}
	return DecodeValue(p)
}

// Close closes the connection. It is safe to call more than once.
func (c *Client) Close() error {
	c.once.Do(func() {
		_ = c.conn.CloseWithError(0, "")
		c.closeSockets()
	})
	return nil
}

func (c *Client) closeSockets() {
	_ = c.tr.Close()
	if c.ownPC != nil {
		_ = c.ownPC.Close()
	}
}
