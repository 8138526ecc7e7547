package loadgen

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/rustorium/rustorium/internal/retry"
	"github.com/rustorium/rustorium/node/p2p"
	"github.com/rustorium/rustorium/node/state"
)

// ErrNotConnected: the connection broke and is being dialed again; the send
// fails at once instead of waiting for it.
var ErrNotConnected = errors.New("loadgen: not connected (redialing)")

// DialFunc dials one client connection. release, if not nil, frees what the
// connection used besides itself (an emulated socket); it is called after
// the client is closed.
type DialFunc func(ctx context.Context) (c *p2p.Client, release func(), err error)

// Conn is one client connection that is dialed again when it breaks (its
// node was stopped or restarted). Sends on a broken connection fail at once
// with ErrNotConnected, so they count as errors instead of stalling the
// load, while a background loop redials with exponential backoff. A Conn
// without a DialFunc (Fixed) never redials.
type Conn struct {
	dial        DialFunc
	backoff     retry.Backoff // a copy per redial
	dialTimeout time.Duration

	mu      sync.Mutex
	cur     *p2p.Client
	release func()
	closed  bool
	redials int // successful redials
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// ConnOptions tunes a Conn's redialing. Zero fields mean 50ms, 1s and 1s.
type ConnOptions struct {
	// MinBackoff is the wait after the first failed redial; each failure
	// doubles it up to MaxBackoff (a retry.Backoff without jitter).
	MinBackoff, MaxBackoff time.Duration
	// DialTimeout bounds one dial attempt.
	DialTimeout time.Duration
}

// Backoff returns the redial backoff o describes, its zero fields
// defaulted.
func (o ConnOptions) Backoff() retry.Backoff {
	if o.MinBackoff <= 0 {
		o.MinBackoff = 50 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = time.Second
	}
	return retry.Backoff{Min: o.MinBackoff, Max: o.MaxBackoff, Factor: 2}
}

// Dial dials the first connection and returns a Conn that redials with dial
// after it breaks.
func Dial(ctx context.Context, dial DialFunc, opts ConnOptions) (*Conn, error) {
	c := newConn(dial, opts)
	cl, rel, err := dial(ctx)
	if err != nil {
		c.cancel()
		return nil, err
	}
	c.cur, c.release = cl, rel
	return c, nil
}

func newConn(dial DialFunc, opts ConnOptions) *Conn {
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = time.Second
	}
	c := &Conn{dial: dial, backoff: opts.Backoff(), dialTimeout: opts.DialTimeout}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c
}

// Client returns the connection's current client, or ErrNotConnected while
// it is being redialed.
func (c *Conn) Client() (*p2p.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil {
		if c.closed {
			return nil, net.ErrClosed
		}
		return nil, ErrNotConnected
	}
	return c.cur, nil
}

// Submit implements TxConn on the current client; an error that broke
// the connection, then or while waiting for the answers, starts a redial.
func (c *Conn) Submit(ctx context.Context, raw []byte) (Call, error) {
	cl, err := c.Client()
	if err != nil {
		return nil, err
	}
	call, err := cl.Submit(ctx, raw)
	if err != nil {
		c.Failed(cl, err)
		return nil, err
	}
	return &quicCall{call: call, conn: c, cl: cl}, nil
}

// quicCall tells its Conn of a failed answer.
type quicCall struct {
	call *p2p.Call
	conn *Conn
	cl   *p2p.Client
}

func (q *quicCall) Accepted() (p2p.Accepted, error) {
	a, err := q.call.Accepted()
	if err != nil {
		q.conn.Failed(q.cl, err)
	}
	return a, err
}

func (q *quicCall) Committed() (p2p.Committed, error) {
	com, err := q.call.Committed()
	if err != nil {
		q.conn.Failed(q.cl, err)
	}
	return com, err
}

// Get implements TxConn on the current client (MsgGet).
func (c *Conn) Get(ctx context.Context, stateKey []byte) (p2p.Value, error) {
	cl, err := c.Client()
	if err != nil {
		return p2p.Value{}, err
	}
	v, err := cl.Get(ctx, stateKey)
	if err != nil {
		c.Failed(cl, err)
	}
	return v, err
}

// Echo sends payload over the current client's echo stream and waits for
// it back (the floors' bare QUIC round trip). Like
// Submit, an error that broke the connection starts a redial, so a probe
// that only echoes finds the node again after it restarts.
func (c *Conn) Echo(ctx context.Context, payload []byte) error {
	cl, err := c.Client()
	if err != nil {
		return err
	}
	if err := cl.Echo(ctx, payload); err != nil {
		c.Failed(cl, err)
		return err
	}
	return nil
}

// Account implements TxConn: over QUIC, a read of the account's state key,
// which the node answers from its account view.
func (c *Conn) Account(ctx context.Context, pub []byte) (p2p.Value, error) {
	return c.Get(ctx, state.AccountKey(pub))
}

// Redials is how many times the connection was dialed again successfully.
func (c *Conn) Redials() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.redials
}

// Failed tells the Conn that a call on cl failed with err. If err means the
// connection itself is gone (closed by the node, timed out, reset) and cl
// is still the current client, the Conn drops it and starts redialing.
func (c *Conn) Failed(cl *p2p.Client, err error) {
	if !ConnBroken(err) {
		return
	}
	c.mu.Lock()
	if c.cur != cl || c.closed {
		c.mu.Unlock()
		return
	}
	old, rel := c.cur, c.release
	c.cur, c.release = nil, nil
	c.wg.Add(1)
	c.mu.Unlock()
	drop(old, rel)
	go c.redial()
}

func drop(cl *p2p.Client, release func()) {
	_ = cl.Close()
	if release != nil {
		release()
	}
}

// redial dials until a dial succeeds or the Conn is closed, waiting the
// backoff between attempts.
func (c *Conn) redial() {
	defer c.wg.Done()
	_ = retry.Do(c.ctx, c.backoff, 0, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, c.dialTimeout)
		cl, rel, err := c.dial(ctx)
		cancel()
		if err != nil {
			return err
		}
		c.mu.Lock()
		closed := c.closed
		if !closed {
			c.cur, c.release = cl, rel
			c.redials++
		}
		c.mu.Unlock()
		if closed {
			drop(cl, rel)
		}
		return nil
	})
}

// Close closes the current client and stops redialing. Safe to call more
// than once.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	cl, rel := c.cur, c.release
	c.cur, c.release = nil, nil
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	if cl != nil {
		drop(cl, rel)
	}
	return nil
}

// ConnBroken reports whether err means the QUIC connection is gone (closed
// by either side, idle timeout, stateless reset, a transport error), as
// opposed to one stream failing or a deadline.
func ConnBroken(err error) bool {
	var (
		app   *quic.ApplicationError
		idle  *quic.IdleTimeoutError
		reset *quic.StatelessResetError
		trans *quic.TransportError
		hs    *quic.HandshakeTimeoutError
	)
	return errors.As(err, &app) || errors.As(err, &idle) || errors.As(err, &reset) ||
		errors.As(err, &trans) || errors.As(err, &hs) || errors.Is(err, net.ErrClosed)
}
