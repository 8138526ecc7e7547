// Package netem emulates an impaired network between named endpoints, after
// Linux's tc netem: per directed link, delay with jitter, loss (Bernoulli or
// Gilbert-Elliott), duplication, corruption, reordering, a rate limit with a
// bounded queue, an MTU, and partitions, all changeable while traffic flows.
// It wraps a net.PacketConn (the QUIC path) and a net.Conn or dialer (the
// broker path); every random decision comes from one seed.
//
// Impairments apply where traffic is sent: a wrapped PacketConn impairs what
// it writes (so wrap both ends), and a wrapped net.Conn impairs both
// directions, since the far end (a broker) is usually not wrapped. Reads of a
// PacketConn are the underlying socket's own, so deadlines and Close behave
// exactly as without netem.
//
// netem keeps time with the time package only (no clock to inject): tests run
// it inside a testing/synctest bubble over in-memory conns (net.Pipe, or a
// channel-based PacketConn) to measure emulated delays exactly in virtual
// time, as this package's own tests do.
package netem

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures a Network. The zero value is ready to use (seed 0).
type Options struct {
	// Seed drives every random decision. Each link draws from its own
	// streams derived from Seed and the link's endpoint names, so traffic on
	// one link never changes the decisions on another: the same seed and the
	// same sequence of packets on a link give the same decisions. (Rate
	// limiting and queue drops depend on timing too.) 0 is a seed like any
	// other.
	Seed int64
	// StreamBuffer is how many bytes a wrapped net.Conn holds per direction
	// before Write (or reading from the underlying conn) waits. 0 means 4 MiB.
	StreamBuffer int
	// Retransmit is the extra delay of a lost or corrupted stream segment,
	// standing for TCP's retransmission timeout. 0 means 200ms (Linux's
	// minimum RTO).
	Retransmit time.Duration
}

func (o Options) streamBuffer() int {
	if o.StreamBuffer <= 0 {
		return 4 << 20
	}
	return o.StreamBuffer
}

func (o Options) retransmit() time.Duration {
	if o.Retransmit <= 0 {
		return 200 * time.Millisecond
	}
	return o.Retransmit
}

// A Network is a set of named endpoints and the impaired links between them.
// All its methods are safe for concurrent use, including while traffic flows.
type Network struct {
	opts Options

	mu      sync.Mutex // guards links and parts; taken before any link's mu
	links   map[[2]string]*link
	parts   []*partition
	partSeq uint64
	topo    atomic.Pointer[chan struct{}] // closed and replaced when partitions change

	addrMu sync.RWMutex
	addrs  map[netip.AddrPort]string // local addresses of wrapped conns
	ports  map[uint16]string         // ports bound to unspecified addresses
	gen    atomic.Uint64             // bumped when addrs or ports change

	runMu  sync.Mutex // guards closed and wg.Add
	closed bool
	done   chan struct{}
	wg     sync.WaitGroup
}

// New returns an empty Network: no endpoints, every link unimpaired.
func New(opts Options) *Network {
	n := &Network{
		opts:  opts,
		links: make(map[[2]string]*link),
		addrs: make(map[netip.AddrPort]string),
		ports: make(map[uint16]string),
		done:  make(chan struct{}),
	}
	ch := make(chan struct{})
	n.topo.Store(&ch)
	return n
}

// Close stops the delivery of delayed datagrams (they are dropped) and waits
// for the Network's goroutines. It does not close the conns it wrapped: their
// owners do. After Close, unimpaired traffic still passes; a datagram that
// would need the scheduler fails with ErrClosed. Close is safe to call twice.
func (n *Network) Close() error {
	n.runMu.Lock()
	if n.closed {
		n.runMu.Unlock()
		return nil
	}
	n.closed = true
	close(n.done)
	n.runMu.Unlock()
	n.wg.Wait()
	return nil
}

// startLink starts l's scheduler unless the Network is closed.
func (n *Network) startLink(l *link) bool {
	n.runMu.Lock()
	defer n.runMu.Unlock()
	if n.closed {
		return false
	}
	n.wg.Go(func() { l.run(n.done) })
	return true
}

// link returns the link from→to, creating it unimpaired.
func (n *Network) link(from, to string) *link {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.linkLocked(from, to)
}

func (n *Network) linkLocked(from, to string) *link {
	k := [2]string{from, to}
	l := n.links[k]
	if l == nil {
		l = newLink(n, from, to)
		if n.blockedLocked(from, to) {
			l.setBlocked(true)
		}
		n.links[k] = l
	}
	return l
}

// SetLink sets the impairment of the traffic sent from endpoint from to
// endpoint to (one direction). It takes effect for the next packet; packets
// already in flight keep their fate.
func (n *Network) SetLink(from, to string, imp Impairment) error {
	return n.SetLinks([]LinkImpairment{{From: from, To: to, Impairment: imp}})
}

// LinkImpairment is the impairment of the traffic sent one way on a link.
type LinkImpairment struct {
	From, To   string // endpoint names
	Impairment Impairment
}

// check validates l: ErrEndpoint, or an *ImpairmentError naming the link.
func (l LinkImpairment) check() error {
	if l.From == "" || l.To == "" {
		return ErrEndpoint
	}
	if err := l.Impairment.Validate(); err != nil {
		if ie, ok := errors.AsType[*ImpairmentError](err); ok {
			ie.Link = l.From + "→" + l.To
		}
		return err
	}
	return nil
}

// SetLinks sets every link of links in order, as SetLink does, after
// checking them all: an empty endpoint (ErrEndpoint) or an invalid
// impairment (an *ImpairmentError naming the link) changes no link.
func (n *Network) SetLinks(links []LinkImpairment) error {
	for _, l := range links {
		if err := l.check(); err != nil {
			return err
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, l := range links {
		n.linkLocked(l.From, l.To).set(l.Impairment)
	}
	return nil
}

// Link returns the impairment from endpoint from to endpoint to.
func (n *Network) Link(from, to string) Impairment {
	return n.link(from, to).cfg.Load().Impairment
}

// Stats returns what the link from→to has done so far.
func (n *Network) Stats(from, to string) LinkStats {
	return n.link(from, to).stats.snapshot()
}

// partition is one active split: endpoint → group index.
type partition struct {
	id    uint64
	group map[string]int
}

func (p *partition) separates(a, b string) bool {
	ga, oka := p.group[a]
	gb, okb := p.group[b]
	return oka && okb && ga != gb
}

// Partition splits the listed endpoints into groups that cannot reach each
// other: every packet between two different groups is dropped (on a wrapped
// net.Conn, held until the partition heals, as TCP would resend it), including
// packets already in flight. Endpoints not listed are not affected; an
// endpoint listed twice belongs to its first group. Partitions overlap: two
// endpoints are cut off while any active partition separates them.
//
// heal ends this partition (safe to call twice); Heal ends all of them.
func (n *Network) Partition(groups ...[]string) (heal func()) {
	p := &partition{group: make(map[string]int)}
	for i, g := range groups {
		for _, e := range g {
			if _, ok := p.group[e]; !ok {
				p.group[e] = i
			}
		}
	}
	n.mu.Lock()
	n.partSeq++
	p.id = n.partSeq
	n.parts = append(n.parts, p)
	n.partitionsChangedLocked()
	n.mu.Unlock()
	return func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		if i := slices.Index(n.parts, p); i >= 0 {
			n.parts = slices.Delete(n.parts, i, i+1)
			n.partitionsChangedLocked()
		}
	}
}

// Heal ends every partition.
func (n *Network) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.parts) > 0 {
		n.parts = nil
		n.partitionsChangedLocked()
	}
}

func (n *Network) blockedLocked(a, b string) bool {
	for _, p := range n.parts {
		if p.separates(a, b) {
			return true
		}
	}
	return false
}

func (n *Network) partitionsChangedLocked() {
	for k, l := range n.links {
		l.setBlocked(n.blockedLocked(k[0], k[1]))
	}
	ch := make(chan struct{})
	close(*n.topo.Swap(&ch))
}

// topologyChanged returns a channel closed at the next partition change.
func (n *Network) topologyChanged() <-chan struct{} { return *n.topo.Load() }

// Register says that addr belongs to endpoint, for peers that are not
// wrapped (a wrapped PacketConn registers its local address itself).
// Datagrams to an address no endpoint owns pass unchanged. An address bound
// to an unspecified IP (0.0.0.0, ::) matches every IP with its port.
func (n *Network) Register(endpoint string, addr net.Addr) error {
	if endpoint == "" {
		return ErrEndpoint
	}
	ap, ok := addrPort(addr)
	if !ok {
		return &net.AddrError{Err: "netem: not an IP address and port", Addr: addr.String()}
	}
	n.addrMu.Lock()
	defer n.addrMu.Unlock()
	if ap.Addr().IsUnspecified() {
		n.ports[ap.Port()] = endpoint
	} else {
		n.addrs[ap] = endpoint
	}
	n.gen.Add(1)
	return nil
}

// unregister removes addr if it still belongs to endpoint.
func (n *Network) unregister(endpoint string, addr net.Addr) {
	ap, ok := addrPort(addr)
	if !ok {
		return
	}
	n.addrMu.Lock()
	defer n.addrMu.Unlock()
	if ap.Addr().IsUnspecified() {
		if n.ports[ap.Port()] == endpoint {
			delete(n.ports, ap.Port())
		}
	} else if n.addrs[ap] == endpoint {
		delete(n.addrs, ap)
	}
	n.gen.Add(1)
}

// endpointOf returns the endpoint owning ap, or "".
func (n *Network) endpointOf(ap netip.AddrPort) string {
	n.addrMu.RLock()
	defer n.addrMu.RUnlock()
	if e, ok := n.addrs[ap]; ok {
		return e
	}
	return n.ports[ap.Port()]
}

func addrPort(a net.Addr) (netip.AddrPort, bool) {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.UDPAddr:
		ap = a.AddrPort()
	case *net.TCPAddr:
		ap = a.AddrPort()
	case nil:
		return ap, false
	default:
		var err error
		if ap, err = netip.ParseAddrPort(a.String()); err != nil {
			return ap, false
		}
	}
	if !ap.IsValid() {
		return ap, false
	}
	return netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port()), true
}

// ListenPacket opens a packet socket like net.ListenPacket and wraps it as
// endpoint's (see PacketConn).
func (n *Network) ListenPacket(endpoint, network, address string) (net.PacketConn, error) {
	if endpoint == "" {
		return nil, ErrEndpoint
	}
	pc, err := net.ListenPacket(network, address)
	if err != nil {
		return nil, err
	}
	return n.PacketConn(endpoint, pc)
}

// DialFunc dials a stream connection, as net.Dialer.DialContext does.
type DialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// Dialer returns a dial function for franz-go's kgo.Dialer (or any
// DialContext user) whose connections carry traffic from endpoint from to
// endpoint to, whatever address they dial, impaired both ways (see Conn).
// The dial itself takes one round trip of the links' base delays, as a TCP
// handshake, and waits while a partition separates the two. dial makes the
// underlying connection; nil means a zero net.Dialer's.
func (n *Network) Dialer(from, to string, dial DialFunc) DialFunc {
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		if from == "" || to == "" {
			return nil, ErrEndpoint
		}
		out, in := n.link(from, to), n.link(to, from)
		if err := n.handshake(ctx, out, in); err != nil {
			return nil, err
		}
		c, err := dial(ctx, network, address)
		if err != nil {
			return nil, err
		}
		return n.wrapConn(c, out, in), nil
	}
}

// handshake waits out a partition between out's endpoints and one round trip.
func (n *Network) handshake(ctx context.Context, out, in *link) error {
	for out.blocked.Load() || in.blocked.Load() {
		ch := n.topologyChanged()
		if !out.blocked.Load() && !in.blocked.Load() {
			break
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	rtt := out.cfg.Load().Delay + in.cfg.Load().Delay
	if rtt <= 0 {
		return nil
	}
	t := time.NewTimer(rtt)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
