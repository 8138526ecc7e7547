package netem

import (
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"
)

// memNet is an in-memory, lossless packet network. Its conns block on
// channels only, so they work inside a synctest bubble, where time is
// virtual and a delay is measured exactly.
type memNet struct {
	mu    sync.Mutex
	conns map[netip.AddrPort]*memConn
	next  byte
}

func newMemNet() *memNet { return &memNet{conns: make(map[netip.AddrPort]*memConn)} }

type memPkt struct {
	b    []byte
	from net.Addr
	at   time.Time
}

type memConn struct {
	net    *memNet
	addr   *net.UDPAddr
	in     chan memPkt
	closed chan struct{}
	once   sync.Once

	mu       sync.Mutex
	deadline time.Time
	writes   int // WriteTo calls that reached this (underlying) conn
}

// listen returns a conn with a fresh address 10.0.0.N:9000.
func (m *memNet) listen() *memConn {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.next++
	a := &net.UDPAddr{IP: net.IPv4(10, 0, 0, m.next).To4(), Port: 9000}
	c := &memConn{net: m, addr: a, in: make(chan memPkt, 1<<16), closed: make(chan struct{})}
	m.conns[a.AddrPort()] = c
	return c
}

func (c *memConn) ReadFrom(b []byte) (int, net.Addr, error) {
	p, err := c.read()
	if err != nil {
		return 0, nil, err
	}
	return copy(b, p.b), p.from, nil
}

func (c *memConn) read() (memPkt, error) {
	c.mu.Lock()
	dl := c.deadline
	c.mu.Unlock()
	var timeout <-chan time.Time
	if !dl.IsZero() {
		t := time.NewTimer(time.Until(dl))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case p := <-c.in:
		return p, nil
	case <-c.closed:
		return memPkt{}, net.ErrClosed
	case <-timeout:
		return memPkt{}, os.ErrDeadlineExceeded
	}
}

func (c *memConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	c.mu.Lock()
	c.writes++
	c.mu.Unlock()
	ua := addr.(*net.UDPAddr)
	c.net.mu.Lock()
	dst := c.net.conns[ua.AddrPort()]
	c.net.mu.Unlock()
	if dst == nil {
		return len(b), nil
	}
	p := memPkt{b: append([]byte(nil), b...), from: c.addr, at: time.Now()}
	select {
	case dst.in <- p:
	case <-dst.closed:
	}
	return len(b), nil
}

func (c *memConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

func (c *memConn) LocalAddr() net.Addr { return c.addr }
func (c *memConn) SetDeadline(t time.Time) error {
	return c.SetReadDeadline(t)
}
func (c *memConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return nil
}
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

// pair is a sender and a receiver endpoint on a Network over a memNet.
type pair struct {
	nw       *Network
	src, dst net.PacketConn
	srcRaw   *memConn
	dstRaw   *memConn
}

// newPair wraps two memNet conns as endpoints "a" and "b" and sets a→b.
func newPair(t testing.TB, seed int64, imp Impairment) *pair {
	t.Helper()
	m := newMemNet()
	nw := New(Options{Seed: seed})
	p := &pair{nw: nw, srcRaw: m.listen(), dstRaw: m.listen()}
	var err error
	if p.src, err = nw.PacketConn("a", p.srcRaw); err != nil {
		t.Fatal(err)
	}
	if p.dst, err = nw.PacketConn("b", p.dstRaw); err != nil {
		t.Fatal(err)
	}
	if err := nw.SetLink("a", "b", imp); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		nw.Close()
		p.src.Close()
		p.dst.Close()
	})
	return p
}

// arrival is one received datagram: its sequence number, payload and the
// time it took.
type arrival struct {
	seq     int
	payload []byte
	latency time.Duration
}

// run sends count datagrams of size bytes (seq in the first 4 bytes) from a
// to b, every gap (0: all at once), and returns what arrived in arrival
// order, waiting until nothing is in flight. Call it inside a bubble.
func (p *pair) run(t testing.TB, count, size int, gap time.Duration) []arrival {
	t.Helper()
	size = max(size, 4)
	// sent is locked: a corrupted sequence number may name a packet not
	// sent yet.
	var sentMu sync.Mutex
	sent := make([]time.Time, count)
	done := make(chan []arrival)
	stop := make(chan struct{})
	go func() {
		var got []arrival
		record := func(pk memPkt) {
			seq := int(pk.b[0])<<24 | int(pk.b[1])<<16 | int(pk.b[2])<<8 | int(pk.b[3])
			var lat time.Duration
			sentMu.Lock()
			if seq >= 0 && seq < count {
				lat = pk.at.Sub(sent[seq])
			}
			sentMu.Unlock()
			got = append(got, arrival{seq: seq, payload: pk.b, latency: lat})
		}
		for {
			select {
			case pk := <-p.dstRaw.in:
				record(pk)
			case <-stop:
				for {
					select {
					case pk := <-p.dstRaw.in:
						record(pk)
					default:
						done <- got
						return
					}
				}
			}
		}
	}()
	buf := make([]byte, size)
	for i := range count {
		buf[0], buf[1], buf[2], buf[3] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
		for j := 4; j < size; j++ {
			buf[j] = byte(i + j)
		}
		sentMu.Lock()
		sent[i] = time.Now()
		sentMu.Unlock()
		if _, err := p.src.WriteTo(buf, p.dst.LocalAddr()); err != nil {
			t.Fatalf("WriteTo %d: %v", i, err)
		}
		if gap > 0 {
			time.Sleep(gap)
		}
	}
	// Everything is delivered once the scheduler is idle; in a bubble a
	// long sleep ends only after every timer before it has fired.
	time.Sleep(time.Hour)
	close(stop)
	return <-done
}
