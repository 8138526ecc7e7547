// Package memnet connects goroutines of one process through in-memory,
// buffered, full-duplex net.Conns: what a loopback TCP connection does,
// without its system calls, its socket buffers' copies through the kernel
// and the netpoller's wake-ups. The embedded broker takes the Kafka clients
// of its own process this way (ordering.Embedded.Dial), and keeps taking
// other processes' over TCP (Listen wraps its TCP listener).
//
// A Conn keeps net.Conn's semantics: Read returns what is buffered (io.EOF
// once the peer closed and everything it wrote was read), Write returns once
// all its bytes are buffered and waits while the peer's unread bytes reach
// the buffer's limit, deadlines end waiting Reads and Writes with an error
// matching os.ErrDeadlineExceeded, Close ends both (net.ErrClosed) and makes
// the peer's later Writes fail with ErrPeerClosed. Close is safe to call more
// than once.
package memnet

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rustorium/rustorium/internal/deadline"
)

// DefaultBuffer is how many bytes one direction of a Pipe holds unread before
// a Write waits for the reader: 4 MiB, about what Linux lets a loopback TCP
// socket buffer.
const DefaultBuffer = 4 << 20

// ErrPeerClosed is the error of a Write after the other end closed, as a TCP
// connection's EPIPE: it wraps syscall.EPIPE.
var ErrPeerClosed = fmt.Errorf("memnet: the peer closed the connection: %w", syscall.EPIPE)

// keepCap is the largest buffer capacity a drained direction keeps: a burst
// (a big fetch response) does not hold its memory for the connection's life.
const keepCap = 64 << 10

// Addr is a memnet endpoint's address. Its network is "memnet".
type Addr string

// Network returns "memnet".
func (Addr) Network() string { return "memnet" }

func (a Addr) String() string { return string(a) }

// buffer is one direction of a pipe: bytes written by one end, not yet read
// by the other.
type buffer struct {
	mu     sync.Mutex
	data   []byte
	off    int  // data[off:] is unread
	limit  int  // unread bytes at most
	eof    bool // the writing end closed: io.EOF once drained
	broken bool // the reading end closed: writes fail

	// One token each: a waiter that takes one and leaves something for
	// another waiter passes it on, so none waits while it could go on.
	readable chan struct{}
	writable chan struct{}
}

func newBuffer(limit int) *buffer {
	return &buffer{limit: limit, readable: make(chan struct{}, 1), writable: make(chan struct{}, 1)}
}

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Conn is one end of a Pipe.
type Conn struct {
	rd, wr        *buffer // rd: the peer writes, we read; wr: the other way
	rdl, wdl      deadline.Deadline
	local, remote net.Addr
	closed        chan struct{}
	closeOnce     sync.Once
}

// Pipe returns the two ends of a connection whose directions each buffer
// up to buf bytes (DefaultBuffer if buf <= 0). a's LocalAddr is aAddr and its
// RemoteAddr bAddr, and the other way round for b.
func Pipe(aAddr, bAddr net.Addr, buf int) (a, b *Conn) {
	if buf <= 0 {
		buf = DefaultBuffer
	}
	ab, ba := newBuffer(buf), newBuffer(buf)
	a = &Conn{rd: ba, wr: ab, local: aAddr, remote: bAddr, closed: make(chan struct{})}
	b = &Conn{rd: ab, wr: ba, local: bAddr, remote: aAddr, closed: make(chan struct{})}
	return a, b
}

// Read reads what the peer wrote, waiting until there is something, the
// peer closed (io.EOF), the read deadline passed or c closed.
func (c *Conn) Read(p []byte) (int, error) {
	b := c.rd
	for {
		if err := c.check(&c.rdl); err != nil || len(p) == 0 {
			return 0, err
		}
		b.mu.Lock()
		if b.off < len(b.data) {
			n := copy(p, b.data[b.off:])
			b.off += n
			more := b.off < len(b.data)
			if !more {
				b.data, b.off = b.data[:0], 0
				if cap(b.data) > keepCap {
					b.data = nil
				}
			}
			b.mu.Unlock()
			notify(b.writable)
			if more {
				notify(b.readable)
			}
			return n, nil
		}
		eof := b.eof
		b.mu.Unlock()
		if eof {
			notify(b.readable) // for another reader
			return 0, io.EOF
		}
		select {
		case <-b.readable:
		case <-c.rdl.Done():
		case <-c.closed:
		}
	}
}

// Write buffers p for the peer, waiting while its buffer is full, until all
// of p is buffered, the peer closed (ErrPeerClosed), the write deadline
// passed or c closed. It returns how many bytes it buffered.
func (c *Conn) Write(p []byte) (int, error) {
	b := c.wr
	n := 0
	for {
		if err := c.check(&c.wdl); err != nil || len(p) == 0 {
			return n, err
		}
		b.mu.Lock()
		if b.broken {
			b.mu.Unlock()
			notify(b.writable) // for another writer
			return n, &net.OpError{Op: "write", Net: "memnet", Source: c.local, Addr: c.remote, Err: ErrPeerClosed}
		}
		if space := b.limit - (len(b.data) - b.off); space > 0 {
			k := min(space, len(p)-n)
			if b.off > 0 && len(b.data)+k > cap(b.data) {
				b.data = b.data[:copy(b.data, b.data[b.off:])]
				b.off = 0
			}
			b.data = append(b.data, p[n:n+k]...)
			n += k
			room := len(b.data)-b.off < b.limit
			b.mu.Unlock()
			notify(b.readable)
			if room {
				notify(b.writable)
			}
			if n == len(p) {
				return n, nil
			}
			continue
		}
		b.mu.Unlock()
		select {
		case <-b.writable:
		case <-c.wdl.Done():
		case <-c.closed:
		}
	}
}

// check returns the error that ends a Read or Write now, if any.
func (c *Conn) check(d *deadline.Deadline) error {
	switch {
	case deadline.Closed(c.closed):
		return net.ErrClosed
	case deadline.Closed(d.Done()):
		return os.ErrDeadlineExceeded
	}
	return nil
}

// Close ends c: its waiting and later Reads and Writes return net.ErrClosed,
// the peer reads what c wrote and then io.EOF, and the peer's Writes fail.
// Safe to call more than once.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		close(c.closed)
		c.wr.mu.Lock()
		c.wr.eof = true
		c.wr.mu.Unlock()
		notify(c.wr.readable)
		c.rd.mu.Lock()
		c.rd.broken = true
		c.rd.data, c.rd.off = nil, 0 // never read now
		c.rd.mu.Unlock()
		notify(c.rd.writable)
	})
	return nil
}

// LocalAddr returns this end's address.
func (c *Conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr returns the other end's address.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline sets both the read and the write deadline.
func (c *Conn) SetDeadline(t time.Time) error {
	c.rdl.Set(t)
	c.wdl.Set(t)
	return nil
}

// SetReadDeadline sets the deadline of waiting and later Reads; the zero
// time clears it.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.rdl.Set(t)
	return nil
}

// SetWriteDeadline sets the deadline of waiting and later Writes; the zero
// time clears it.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.wdl.Set(t)
	return nil
}

// Listener accepts the in-memory connections its Dial makes and, when it
// wraps a network listener, that listener's connections too. Close closes
// both; it is safe to call more than once.
type Listener struct {
	inner  net.Listener // nil: in memory only
	addr   net.Addr
	buf    int
	conns  chan net.Conn // Dial's and the pump's hand-off to Accept
	failed chan struct{} // closed when inner's Accept failed for good
	err    error         // inner's error, set before failed closes
	done   chan struct{} // closed by Close
	once   sync.Once
	wg     sync.WaitGroup // the pump
	dialed atomic.Uint64  // in-memory connections made, for their addresses
}

// Listen returns a Listener at inner's address that also accepts inner's
// connections (a goroutine of the Listener's own takes them until Close).
// inner nil makes an in-memory listener at addr.
func Listen(inner net.Listener, addr net.Addr, buf int) *Listener {
	l := &Listener{inner: inner, addr: addr, buf: buf, conns: make(chan net.Conn),
		failed: make(chan struct{}), done: make(chan struct{})}
	if inner != nil {
		l.addr = inner.Addr()
		l.wg.Add(1)
		go l.pump()
	}
	return l
}

// pump hands inner's connections to Accept until inner fails or l closes.
func (l *Listener) pump() {
	defer l.wg.Done()
	for {
		c, err := l.inner.Accept()
		if err != nil {
			l.err = err
			close(l.failed)
			return
		}
		select {
		case l.conns <- c:
		case <-l.done:
			_ = c.Close()
			return
		}
	}
}

// Accept returns the next connection, dialled in memory or accepted by the
// wrapped listener. It fails once l is closed (net.ErrClosed) or the wrapped
// listener failed (its error).
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-l.failed:
		return nil, l.err
	}
}

// Dial connects to l in memory, waiting until Accept takes the connection
// or ctx ends. A closed listener refuses it (an error wrapping
// syscall.ECONNREFUSED, as a TCP port nobody listens on does).
func (l *Listener) Dial(ctx context.Context) (net.Conn, error) {
	refused := &net.OpError{Op: "dial", Net: "memnet", Addr: l.addr, Err: syscall.ECONNREFUSED}
	if deadline.Closed(l.done) || deadline.Closed(l.failed) {
		return nil, refused
	}
	client, server := Pipe(Addr("memnet-"+strconv.FormatUint(l.dialed.Add(1), 10)), l.addr, l.buf)
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		return nil, refused
	case <-l.failed:
		return nil, refused
	case <-ctx.Done():
		return nil, &net.OpError{Op: "dial", Net: "memnet", Addr: l.addr, Err: ctx.Err()}
	}
}

// Addr returns the listener's address: the wrapped listener's, or the one
// Listen was given.
func (l *Listener) Addr() net.Addr { return l.addr }

// Close stops accepting, closes the wrapped listener and waits for the
// goroutine that took its connections.
func (l *Listener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		if l.inner != nil {
			err = l.inner.Close()
			l.wg.Wait()
		}
	})
	return err
}
