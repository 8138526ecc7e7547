package netem

import (
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/rustorium/rustorium/internal/deadline"
)

// Conn wraps c, a connection from endpoint from to endpoint to, so that the
// bytes written are impaired on the link from→to and the bytes read on the
// link to→from (see Impairment for what applies to a stream). While both
// links are unimpaired, Read and Write go straight to c; the first time a
// direction is impaired it switches, for the conn's life, to a goroutine that
// times its segments. Deadlines and Close keep net.Conn semantics: Close
// closes c, unblocks Read and Write and stops the goroutines; bytes not yet
// delivered are discarded.
func (n *Network) Conn(from, to string, c net.Conn) (net.Conn, error) {
	if from == "" || to == "" {
		return nil, ErrEndpoint
	}
	return n.wrapConn(c, n.link(from, to), n.link(to, from)), nil
}

func (n *Network) wrapConn(c net.Conn, out, in *link) net.Conn {
	sc := &streamConn{Conn: c, n: n, done: make(chan struct{})}
	sc.out = newPipe(n, out)
	sc.in = newPipe(n, in)
	return sc
}

type streamConn struct {
	net.Conn
	n       *Network
	out, in *pipe

	wmu      sync.Mutex // serializes Write
	mu       sync.Mutex // guards the two flags and the forwarding of deadlines
	wPumped  bool
	rPumped  bool
	rdl, wdl deadline.Deadline

	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup
}

func (c *streamConn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if direct, err := c.pump(&c.wPumped, c.out, c.Conn.SetWriteDeadline, c.writeLoop); direct {
		return c.Conn.Write(b)
	} else if err != nil {
		return 0, err
	}
	if len(b) == 0 {
		return 0, nil
	}
	data := make([]byte, len(b))
	copy(data, b)
	if err := c.out.put(data, c.done, c.wdl.Done()); err != nil {
		return 0, err
	}
	return len(b), nil
}

// pump starts the pump of one direction (its pipe p, its flag pumped, the
// underlying conn's deadline setter for it, its loop) on the first use that
// finds the link impaired. direct: the link is unimpaired and was never
// pumped, so the caller uses the underlying conn as it is; err is
// net.ErrClosed after Close.
func (c *streamConn) pump(pumped *bool, p *pipe, setDeadline func(time.Time) error, loop func()) (direct bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case *pumped:
		return false, nil
	case p.l.fast.Load():
		return true, nil
	case deadline.Closed(c.done):
		return false, net.ErrClosed
	}
	*pumped = true
	_ = setDeadline(time.Time{}) // from now on c's deadlines bound the pipe, not the pump
	c.wg.Go(loop)
	return false, nil
}

// writeLoop writes the due segments to the underlying conn.
func (c *streamConn) writeLoop() {
	var scratch [][]byte
	for {
		segs, err := c.out.take(0, c.done, nil, scratch[:0])
		if err != nil {
			return
		}
		bufs := net.Buffers(segs)
		_, err = bufs.WriteTo(c.Conn)
		clear(segs)
		scratch = segs[:0]
		if err != nil {
			c.out.fail(err)
			return
		}
	}
}

func (c *streamConn) Read(b []byte) (int, error) {
	if direct, err := c.pump(&c.rPumped, c.in, c.Conn.SetReadDeadline, c.readLoop); direct {
		return c.Conn.Read(b)
	} else if err != nil {
		return 0, err
	}
	if len(b) == 0 {
		return 0, nil
	}
	segs, err := c.in.take(len(b), c.done, c.rdl.Done(), nil)
	n := 0
	for _, s := range segs {
		n += copy(b[n:], s)
	}
	if n > 0 {
		return n, nil
	}
	return 0, err
}

// readLoop reads the underlying conn into the in pipe as data arrives.
func (c *streamConn) readLoop() {
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Conn.Read(buf)
		if n > 0 {
			data := make([]byte, n)
			copy(data, buf[:n])
			if perr := c.in.put(data, c.done, nil); perr != nil {
				return
			}
		}
		if err != nil {
			select {
			case <-c.done:
				err = net.ErrClosed
			default:
			}
			c.in.fail(err)
			return
		}
	}
}

func (c *streamConn) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock() // orders with the start of the goroutines
		close(c.done)
		c.mu.Unlock()
		c.closeErr = c.Conn.Close()
	})
	c.wg.Wait()
	return c.closeErr
}

func (c *streamConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rdl.Set(t)
	c.wdl.Set(t)
	return c.forward(t, !c.rPumped, !c.wPumped)
}

func (c *streamConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rdl.Set(t)
	return c.forward(t, !c.rPumped, false)
}

func (c *streamConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wdl.Set(t)
	return c.forward(t, false, !c.wPumped)
}

// forward sets the deadline on the underlying conn for the directions that
// still go straight to it. c.mu is held.
func (c *streamConn) forward(t time.Time, read, write bool) error {
	switch {
	case read && write:
		return c.Conn.SetDeadline(t)
	case read:
		return c.Conn.SetReadDeadline(t)
	case write:
		return c.Conn.SetWriteDeadline(t)
	}
	return nil
}

// A pipe holds one direction's segments until their arrival times.
type pipe struct {
	n     *Network
	l     *link
	limit int

	mu      sync.Mutex
	segs    []seg // FIFO from head
	head    int
	bytes   int
	last    time.Time     // latest arrival handed out: segments stay in order
	err     error         // terminal; returned once the segments are gone
	changed chan struct{} // closed and replaced on every change
}

type seg struct {
	b       []byte
	at      time.Time
	stalled bool // written into a partition: held until it heals
}

func newPipe(n *Network, l *link) *pipe {
	return &pipe{n: n, l: l, limit: n.opts.streamBuffer(), changed: make(chan struct{})}
}

func (p *pipe) signal() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// put queues b (owned by the pipe from now on), cut into segments, waiting
// while the pipe holds limit bytes or more.
func (p *pipe) put(b []byte, cancel, expired <-chan struct{}) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		if deadline.Closed(expired) {
			return os.ErrDeadlineExceeded
		}
		if p.err != nil {
			return p.err
		}
		if p.bytes < p.limit {
			break
		}
		ch := p.changed
		p.mu.Unlock()
		select {
		case <-ch:
		case <-cancel:
			p.mu.Lock()
			return net.ErrClosed
		case <-expired:
		}
		p.mu.Lock()
	}
	now := time.Now()
	mss := segmentSize(p.l.cfg.Load())
	for len(b) > 0 {
		k := min(mss, len(b))
		at, stalled := p.l.decideSegment(now, k)
		if !stalled {
			if at.Before(p.last) {
				at = p.last
			}
			p.last = at
		}
		p.segs = append(p.segs, seg{b: b[:k:k], at: at, stalled: stalled})
		p.bytes += k
		b = b[k:]
	}
	p.signal()
	return nil
}

// fail ends the pipe with err after the queued segments (first error wins).
func (p *pipe) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		if err == nil {
			err = io.EOF
		}
		p.err = err
		p.signal()
	}
}

// take waits for due segments at the head and returns them appended to dst:
// up to max bytes (splitting a segment) or all that are due if max is 0.
func (p *pipe) take(max int, cancel, expired <-chan struct{}, dst [][]byte) ([][]byte, error) {
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		if deadline.Closed(cancel) {
			return dst, net.ErrClosed
		}
		if deadline.Closed(expired) {
			return dst, os.ErrDeadlineExceeded
		}
		if p.head == len(p.segs) {
			if p.err != nil {
				return dst, p.err
			}
			if err := p.wait(nil, cancel, expired, nil); err != nil {
				return dst, err
			}
			continue
		}
		h := &p.segs[p.head]
		if h.stalled || p.l.blocked.Load() {
			topo := p.n.topologyChanged()
			if p.l.blocked.Load() {
				if err := p.wait(topo, cancel, expired, nil); err != nil {
					return dst, err
				}
				continue
			}
			p.healedLocked()
		}
		now := time.Now()
		if wait := h.at.Sub(now); wait > 0 {
			if t == nil {
				t = time.NewTimer(wait)
			} else {
				t.Reset(wait)
			}
			if err := p.wait(nil, cancel, expired, t.C); err != nil {
				return dst, err
			}
			continue
		}
		return p.popLocked(max, now, dst), nil
	}
}

// healedLocked releases the segments held by a partition that healed: they
// arrive one delay after the heal, as TCP's retransmission would bring them.
func (p *pipe) healedLocked() {
	resume := time.Now().Add(p.l.cfg.Load().Delay)
	for i := p.head; i < len(p.segs); i++ {
		s := &p.segs[i]
		s.stalled = false
		if s.at.Before(resume) {
			s.at = resume
		}
	}
	if p.last.Before(resume) {
		p.last = resume
	}
}

// popLocked removes the segments due at now from the head and returns them
// appended to dst: up to max bytes (splitting a segment) or all if max is 0.
func (p *pipe) popLocked(max int, now time.Time, dst [][]byte) [][]byte {
	got := 0
	for p.head < len(p.segs) {
		s := &p.segs[p.head]
		if s.stalled || s.at.After(now) {
			break
		}
		if max > 0 && got+len(s.b) > max {
			k := max - got
			if k == 0 {
				break
			}
			dst = append(dst, s.b[:k])
			s.b = s.b[k:]
			got += k
			break
		}
		dst = append(dst, s.b)
		got += len(s.b)
		*s = seg{}
		p.head++
	}
	p.bytes -= got
	if p.head == len(p.segs) {
		p.segs, p.head = p.segs[:0], 0
	} else if p.head > 1024 && p.head > len(p.segs)/2 {
		p.segs = append(p.segs[:0], p.segs[p.head:]...)
		p.head = 0
	}
	p.signal()
	return dst
}

// wait releases p.mu until the pipe changes, extra or timer fires, or it is
// cancelled or past its deadline.
func (p *pipe) wait(extra, cancel, expired <-chan struct{}, timer <-chan time.Time) error {
	ch := p.changed
	p.mu.Unlock()
	defer p.mu.Lock()
	select {
	case <-ch:
	case <-extra:
	case <-timer:
	case <-cancel:
		return net.ErrClosed
	case <-expired:
		return os.ErrDeadlineExceeded
	}
	return nil
}
