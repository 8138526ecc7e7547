package netem

import (
	"maps"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// PacketConn wraps pc as endpoint's socket and registers pc's local address
// as endpoint's, so that datagrams other wrapped conns send to it are
// impaired on the link to endpoint.
//
// The wrapper impairs WriteTo on the link from endpoint to the endpoint that
// owns the destination address; datagrams to unknown addresses, and on
// unimpaired links, go straight to pc.WriteTo in the caller's goroutine.
// Reads, deadlines and LocalAddr are pc's own. Close closes pc.
//
// When pc is a *net.UDPConn (or has SyscallConn, SetReadBuffer and
// SetWriteBuffer), the wrapper has them too, so quic-go can size the socket
// buffers and set the don't-fragment bit (its path MTU discovery then sees
// the MTU drops). It never has ReadMsgUDP/WriteMsgUDP: quic-go falls back to
// plain ReadFrom/WriteTo, without GSO or ECN, so every datagram passes here.
func (n *Network) PacketConn(endpoint string, pc net.PacketConn) (net.PacketConn, error) {
	if endpoint == "" {
		return nil, ErrEndpoint
	}
	c := &packetConn{PacketConn: pc, n: n, endpoint: endpoint}
	c.routes.Store(&routeTable{})
	if la := pc.LocalAddr(); la != nil {
		if _, ok := addrPort(la); ok {
			if err := n.Register(endpoint, la); err != nil {
				return nil, err
			}
		}
	}
	if s, ok := pc.(sysConn); ok {
		return &udpPacketConn{packetConn: c, sys: s}, nil
	}
	return c, nil
}

type packetConn struct {
	net.PacketConn
	n        *Network
	endpoint string

	mu     sync.Mutex // serializes updates of routes
	routes atomic.Pointer[routeTable]

	closeOnce sync.Once
	closeErr  error
}

// route returns the link that datagrams to addr take, or nil.
func (c *packetConn) route(addr net.Addr) *link {
	var k addrKey
	if ua, ok := addr.(*net.UDPAddr); ok {
		// The hot path: no netip conversion until the cache misses.
		if ip4 := ua.IP.To4(); ip4 != nil {
			k.ip[10], k.ip[11] = 0xff, 0xff
			copy(k.ip[12:], ip4)
		} else {
			copy(k.ip[:], ua.IP)
		}
		k.port = uint16(ua.Port)
	} else {
		ap, ok := addrPort(addr)
		if !ok {
			return nil
		}
		k = keyOf(ap)
	}
	gen := c.n.gen.Load()
	rt := c.routes.Load()
	if l, ok := rt.links[k]; ok && rt.gen == gen {
		return l
	}
	var l *link
	ap := netip.AddrPortFrom(netip.AddrFrom16(k.ip).Unmap(), k.port)
	if to := c.n.endpointOf(ap); to != "" {
		l = c.n.link(c.endpoint, to)
	}
	// Copy on write: lookups take no lock.
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.routes.Load()
	next := &routeTable{gen: gen, links: make(map[addrKey]*link, len(old.links)+1)}
	if old.gen == gen {
		maps.Copy(next.links, old.links)
	}
	next.links[k] = l
	c.routes.Store(next)
	return l
}

// routeTable caches which link datagrams to an address take, for one
// generation of the Network's address registry. A nil link means no
// endpoint owns the address.
type routeTable struct {
	gen   uint64
	links map[addrKey]*link
}

// addrKey is an IP (IPv4 mapped into IPv6) and port, cheap to hash.
type addrKey struct {
	ip   [16]byte
	port uint16
}

func keyOf(ap netip.AddrPort) addrKey {
	return addrKey{ip: ap.Addr().As16(), port: ap.Port()}
}

// WriteTo sends b to addr through the link's impairment. Like UDP, a
// datagram dropped on the way still counts as written.
func (c *packetConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	l := c.route(addr)
	if l == nil || l.fast.Load() {
		if l != nil {
			l.stats.packets.Add(1)
			l.stats.bytes.Add(uint64(len(b)))
		}
		return c.PacketConn.WriteTo(b, addr)
	}
	now := time.Now()
	var plans [2]copyPlan
	k := l.decidePacket(now, len(b), addr, &plans)
	for _, p := range plans[:k] {
		if p.bit < 0 && !p.at.After(now) {
			if _, err := c.PacketConn.WriteTo(b, addr); err != nil {
				return 0, err
			}
			continue
		}
		buf := getBuf(len(b))
		copy(*buf, b)
		if p.bit >= 0 {
			(*buf)[p.bit/8] ^= 1 << (p.bit % 8)
		}
		if !p.at.After(now) {
			_, err := c.PacketConn.WriteTo(*buf, addr)
			putBuf(buf)
			if err != nil {
				return 0, err
			}
			continue
		}
		if !l.schedule(p.at, c, addr, buf) {
			putBuf(buf)
			return 0, ErrClosed
		}
	}
	return len(b), nil
}

// Close closes the underlying conn and unregisters its address. Datagrams
// still in flight from it are dropped.
func (c *packetConn) Close() error {
	c.closeOnce.Do(func() {
		if la := c.PacketConn.LocalAddr(); la != nil {
			c.n.unregister(c.endpoint, la)
		}
		c.closeErr = c.PacketConn.Close()
	})
	return c.closeErr
}

// sysConn is what quic-go looks for besides net.PacketConn (short of OOB).
type sysConn interface {
	SyscallConn() (syscall.RawConn, error)
	SetReadBuffer(bytes int) error
	SetWriteBuffer(bytes int) error
}

// udpPacketConn is a packetConn over a socket with sysConn's methods.
type udpPacketConn struct {
	*packetConn
	sys sysConn
}

// SyscallConn returns the underlying socket's raw conn (for socket options).
func (c *udpPacketConn) SyscallConn() (syscall.RawConn, error) { return c.sys.SyscallConn() }

// SetReadBuffer sets the underlying socket's receive buffer size.
func (c *udpPacketConn) SetReadBuffer(bytes int) error { return c.sys.SetReadBuffer(bytes) }

// SetWriteBuffer sets the underlying socket's send buffer size.
func (c *udpPacketConn) SetWriteBuffer(bytes int) error { return c.sys.SetWriteBuffer(bytes) }
